"""Functional twins of the low-rank / shared KV recipes, as cache policies.

Palu factorises the K/V projections; on a cache alone (no hidden states) the
equivalent is a rank-r basis fitted on the prompt's keys and values (its top right
singular vectors) that every token — prompt and decode — is projected onto. With a
checkpoint, `palu_weight_sqnr` factorises the real W_k instead.
"""

from __future__ import annotations

import numpy as np

from cosim.functional.compression.attention import CachePolicy, CacheView

__all__ = ["LowRankPolicy", "low_rank_basis", "whitening", "truncated_low_rank", "grouped_low_rank", "WHITENING_DAMP"]


def low_rank_basis(X: np.ndarray, rank: int) -> np.ndarray:
    """(d, rank) orthonormal basis of the top right singular vectors of X."""
    _, _, vt = np.linalg.svd(np.asarray(X, np.float64), full_matrices=False)
    return vt[:rank].T


class LowRankPolicy(CachePolicy):
    """Keys and values cached as rank-r latents (Palu: separate K and V ranks; MLA-style
    `joint=True`: one latent for [K | V]); reconstruction each step. `rope_theta` set (Eigen
    Attention's rope_reconstruct on a RoPE model): the keys arriving are post-RoPE at positions
    0, 1, ...; the key basis is fitted on the pre-RoPE keys (un-rotated with the checkpoint's
    theta), the cache holds their pre-RoPE latents, and each step rebuilds them and applies
    RoPE at their positions -- what the priced trace's up-projection + RoPE per step does.
    None: the basis is fitted on the keys as they arrive (post-RoPE)."""

    def __init__(self, key_rank_ratio=0.25, value_rank_ratio=0.75, joint=False, joint_rank_ratio=0.5,
                 rope_theta=None):
        self.rk, self.rv, self.joint, self.rj = key_rank_ratio, value_rank_ratio, joint, joint_rank_ratio
        self.theta = rope_theta

    def _pre(self, keys):
        if self.theta is None:
            return keys
        from cosim.functional.compression.quant import rope
        return rope(keys, np.arange(keys.shape[0]), self.theta, inverse=True)

    def prefill(self, keys, values, queries):
        d = keys.shape[1]
        if self.joint:
            self.B = low_rank_basis(np.concatenate([keys, values], axis=1), max(1, int(round(self.rj * 2 * d))))
        else:
            self.Bk = low_rank_basis(self._pre(keys), max(1, int(round(self.rk * d))))
            self.Bv = low_rank_basis(values, max(1, int(round(self.rv * d))))
        self.K, self.V = keys, values

    def step(self, t, key, value, queries):
        self.K = np.concatenate([self.K, key[None]])
        self.V = np.concatenate([self.V, value[None]])
        d = self.K.shape[1]
        if self.joint:
            X = np.concatenate([self.K, self.V], axis=1) @ self.B @ self.B.T
            k, v = X[:, :d], X[:, d:]
        else:
            k, v = self._pre(self.K) @ self.Bk @ self.Bk.T, self.V @ self.Bv @ self.Bv.T
            if self.theta is not None:
                from cosim.functional.compression.quant import rope
                k = rope(k, np.arange(k.shape[0]), self.theta)
        return CacheView(k.astype(np.float32), v.astype(np.float32), np.arange(k.shape[0]))


WHITENING_DAMP = 0.01  # x mean diagonal, GPTQ's usual damping fraction


def whitening(x: np.ndarray, damp: float = WHITENING_DAMP) -> np.ndarray:
    """Lower-triangular S with S Sᵀ = XᵀX + λI (SVD-LLM's truncation-aware whitening, as
    Palu computes it from calibration inputs): truncating the SVD of Sᵀ·A then minimises
    the output error ||X·A - X·A'|| rather than the weight error. λ = `damp` x mean
    diagonal keeps S invertible when the calibration has fewer tokens than channels."""
    g = np.asarray(x, np.float64).T @ np.asarray(x, np.float64)
    g[np.diag_indices_from(g)] += damp * max(float(np.mean(np.diag(g))), 1e-12)
    return np.linalg.cholesky(g)


def truncated_low_rank(a: np.ndarray, rank: int, s: np.ndarray | None = None) -> np.ndarray:
    """Best rank-`rank` A' for A (in, out): plain truncated SVD, or whitened when S is given."""
    a = np.asarray(a, np.float64)
    m = a if s is None else s.T @ a
    u, sv, vt = np.linalg.svd(m, full_matrices=False)
    mr = (u[:, :rank] * sv[:rank]) @ vt[:rank]
    return (mr if s is None else np.linalg.solve(s.T, mr)).astype(np.float32)


def grouped_low_rank(w: np.ndarray, head_dim: int, group_size: int, rank_ratio: float,
                     s: np.ndarray | None = None) -> np.ndarray:
    """Palu's G-LRD on a (k, n) projection W: columns are KV heads of `head_dim`;
    each group of `group_size` heads is replaced by its best rank-r approximation,
    r = rank_ratio · group width (the truncated SVD Palu initialises from; whitened by
    S = whitening(X) when given, as Palu's code decomposes)."""
    w = np.asarray(w, np.float64)
    width = head_dim * group_size
    if w.shape[1] % width:
        raise ValueError(f"{w.shape[1]} output columns are not whole groups of {group_size} heads x {head_dim}")
    out = np.empty(w.shape, dtype=np.float32)
    r = max(1, int(round(rank_ratio * width)))
    for g0 in range(0, w.shape[1], width):
        out[:, g0:g0 + width] = truncated_low_rank(w[:, g0:g0 + width], r, s)
    return out
