"""Attention for the real-checkpoint forward pass.

`causal_attention` is dense causal GQA attention over a range of query rows, in blocks
of rows so the masked half is skipped; its operands (Q, K along head_dim, P along keys,
V along tokens) go through the activation quantizer. `policy_attention` replays decode
token by token through a KV-cache policy (the recipes' functional twins in
cosim.functional.compression): the policy sees the real prompt K/V/Q, then each new
token, and returns the keys and values attention actually reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cosim.functional.compression.attention import attend

__all__ = ["causal_attention", "policy_attention", "PolicyStats"]

ROW_BLOCK = 256


def _softmax_rows(s: np.ndarray) -> np.ndarray:
    s = s - s.max(axis=-1, keepdims=True)
    np.exp(s, out=s)
    s /= s.sum(axis=-1, keepdims=True)
    return s


def causal_attention(q, k, v, rows: range, quant_p=None, v_tail=None) -> np.ndarray:
    """q (N, H, d), k/v (N, Hkv, d) -> out (len(rows), H, d) for query rows `rows`, each
    attending to keys 0..row. `quant_p(p)` quantizes probabilities along the key axis.
    Per KV head the GQA group's queries are stacked into one 2-D GEMM (BLAS), in blocks
    of rows so the masked upper triangle is mostly skipped.

    `v_tail` = (raw V (N, Hkv, d), B, quantize along axis 1): `v` is then V quantized in
    independent blocks of B tokens over the whole sequence, and each query row t reads the
    block holding t as quantized from its tokens up to t only -- the block's later tokens
    do not exist yet at that step, so they cannot set its scale. Computed as a correction
    P[t, s:t+1] @ (V_tail - v[s:t+1]) (s = the block's first token) on the rows whose
    block is still open; rows that close their block read `v` unchanged."""
    N, H, d = q.shape
    hkv = k.shape[1]
    g = H // hkv
    out = np.empty((len(rows), H, d), dtype=np.float32)
    scale = np.float32(1.0 / np.sqrt(d))
    for h in range(hkv):
        kh = np.ascontiguousarray(k[:, h])
        vh = np.ascontiguousarray(v[:, h])
        for b0 in range(rows.start, rows.stop, ROW_BLOCK):
            b1 = min(b0 + ROW_BLOCK, rows.stop)
            r = b1 - b0
            qb = np.ascontiguousarray(q[b0:b1, h * g:(h + 1) * g]).reshape(r * g, d)
            s = qb @ kh[:b1].T  # (r*g, b1); row i is query position b0 + i // g
            s *= scale
            # keys before b0 are visible to every row: only the diagonal block is masked
            pos = np.repeat(np.arange(b0, b1), g)
            diag = s[:, b0:b1]
            diag[np.arange(b0, b1)[None, :] > pos[:, None]] = -np.inf
            p = _softmax_rows(s)
            if quant_p is not None:
                p = quant_p(p)
            o = (p @ vh[:b1]).reshape(r, g, d)
            if v_tail is not None:
                o += _open_block_correction(p.reshape(r, g, b1), vh[:b1], v_tail, h, b0, b1)
            out[b0 - rows.start:b1 - rows.start, h * g:(h + 1) * g] = o
    return out


def _open_block_correction(p, vq, v_tail, h, b0, b1) -> np.ndarray:
    """(r, g, d): what query rows b0..b1-1 of KV head h read differently when the V token
    block holding each row t is quantized from tokens s..t only (s = t // B * B) instead
    of from the whole block (see causal_attention)."""
    v_raw, B, quant = v_tail
    t = np.arange(b0, b1)
    start = t // B * B
    j = np.arange(B)
    idx = start[:, None] + j[None, :]  # (r, B) token of each slot of the row's block
    live = idx <= t[:, None]  # tokens that exist at row t's step
    safe = np.where(live, idx, 0)
    tail = np.where(live[..., None], v_raw[safe, h], 0.0).astype(np.float32)  # (r, B, d), zero-padded
    delta = np.where(live[..., None], quant(tail) - vq[safe], 0.0).astype(np.float32)
    pt = np.where(live[:, None, :], np.take_along_axis(p, np.broadcast_to(safe[:, None, :], (p.shape[0], p.shape[1], B)),
                                                        axis=2), 0.0).astype(np.float32)
    return pt @ delta  # (r, g, B) @ (r, B, d)


@dataclass
class PolicyStats:
    mass_kept_sum: float = 0.0
    tokens_read_sum: float = 0.0
    steps: int = 0

    def add(self, mass: float, read: int) -> None:
        self.mass_kept_sum += mass
        self.tokens_read_sum += read
        self.steps += 1

    @property
    def mass_kept(self) -> float:
        return self.mass_kept_sum / self.steps if self.steps else float("nan")

    @property
    def tokens_read(self) -> float:
        return self.tokens_read_sum / self.steps if self.steps else float("nan")


def policy_attention(q, k, v, prefill: int, make_policy, stats: PolicyStats) -> np.ndarray:
    """Decode rows prefill..N-1 through one cache policy per KV head -> (N - prefill, H, d).
    `stats` accumulates the exact attention mass on the tokens each step reads."""
    N, H, d = q.shape
    hkv = k.shape[1]
    g = H // hkv
    out = np.empty((N - prefill, H, d), dtype=np.float32)
    scale = 1.0 / np.sqrt(d)
    for h in range(hkv):
        qg = q[:, h * g:(h + 1) * g]  # (N, g, d)
        kh, vh = np.ascontiguousarray(k[:, h]), np.ascontiguousarray(v[:, h])
        pol = make_policy()
        pol.prefill(kh[:prefill], vh[:prefill], qg[:prefill])
        k64 = kh.astype(np.float64)
        for t in range(prefill, N):
            view = pol.step(t - prefill, kh[t], vh[t], qg[t])
            o, _ = attend(qg[t], view.keys, view.values, view.log_weights)
            out[t - prefill, h * g:(h + 1) * g] = o
            kept = np.unique(view.positions)
            if kept.size < t + 1:  # eviction: how much of the exact attention the cache still holds
                s = (qg[t].astype(np.float64) @ k64[:t + 1].T) * scale
                s -= s.max(axis=1, keepdims=True)
                p = np.exp(s)
                p /= p.sum(axis=1, keepdims=True)
                stats.add(float(p[:, kept].sum(axis=1).mean()), view.positions.size)
            else:
                stats.add(1.0, view.positions.size)
    return out
