"""Decode-sequence evaluation of a compressed KV cache against the exact one.

A *cache policy* sees the prompt once (`prefill`) and then, at each decode step, the
new token's key/value and the step's queries; it answers with the keys and values the
attention will actually use and the positions they stand for (`CacheView`). The driver
runs exact attention over the full history next to attention over the view and
reports, over the whole decode run:

- ``attn_rel_error``: ‖o − ô‖ / ‖o‖ of the attention outputs (all steps, all heads);
- ``attn_kl``: mean KL(p ‖ p̂) of the attention distributions over all positions
  (positions a policy dropped get probability 0, floored at 1e-10);
- ``mass_kept``: mean attention mass (under the exact distribution) on the positions
  the view contains — 1 for quantization, < 1 for eviction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cosim.functional.compression.metrics import kl_divergence, softmax
from cosim.functional.compression.synthetic import KVSequence

__all__ = ["CacheView", "CachePolicy", "FullCache", "LatentCachePolicy", "evaluate_policy", "attend", "causal_column_sums"]


@dataclass(frozen=True)
class CacheView:
    keys: np.ndarray  # (n, d) as the attention sees them (dequantized, reconstructed …)
    values: np.ndarray  # (n, dv)
    positions: np.ndarray  # (n,) sequence positions they stand for
    log_weights: np.ndarray | None = None  # (n,) added to the scores: a token standing for m tokens gets log m


class CachePolicy:
    """Base: keeps everything exactly. Subclasses override prefill/step. A driver calls
    `begin_run(context)` before `prefill`, with the run's whole context (the prompt plus
    the decode steps)."""

    def begin_run(self, context: int) -> None:
        """The run's whole context, told before prefill; a policy sized from it (RocketKV)
        overrides this, the others ignore it."""

    def prefill(self, keys: np.ndarray, values: np.ndarray, queries: np.ndarray) -> None:
        self.k = [keys]
        self.v = [values]

    def step(self, t: int, key: np.ndarray, value: np.ndarray, queries: np.ndarray) -> CacheView:
        self.k.append(key[None])
        self.v.append(value[None])
        k = np.concatenate(self.k)
        v = np.concatenate(self.v)
        return CacheView(k, v, np.arange(k.shape[0]))


FullCache = CachePolicy


class LatentCachePolicy(CachePolicy):
    """An MLA cache: one latent per token (kv_lora_rank + RoPE dims) is the key, and its
    first `value_width` (kv_lora_rank) dims are the value (absorbed W_uv). The inner
    policy stores the latent once, as its keys (given the latent as values too, so a
    token-selection policy selects it whole); the attention reads that one stored tensor as
    K and its latent part as V -- what pricing stores and reads on an MLA model (one
    latent tensor, `workloads.compression.common.MLA_TOKEN_NOTE`)."""

    def __init__(self, inner: CachePolicy, value_width: int):
        self.inner, self.value_width = inner, int(value_width)

    def __getattr__(self, name):  # the inner policy's labels (kv_scale, …) show through
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def begin_run(self, context: int) -> None:
        self.inner.begin_run(context)

    def prefill(self, keys, values, queries) -> None:
        self.inner.prefill(keys, keys, queries)

    def step(self, t, key, value, queries) -> CacheView:
        v = self.inner.step(t, key, key, queries)
        return CacheView(v.keys, v.keys[:, :self.value_width], v.positions, v.log_weights)


def attend(q: np.ndarray, k: np.ndarray, v: np.ndarray, log_weights: np.ndarray | None = None
           ) -> tuple[np.ndarray, np.ndarray]:
    """q (g, d), k (n, d), v (n, dv) -> output (g, dv), probabilities (g, n)."""
    s = (q.astype(np.float64) @ k.astype(np.float64).T) / np.sqrt(q.shape[-1])
    if log_weights is not None:
        s = s + np.asarray(log_weights, np.float64)[None, :]
    p = softmax(s, axis=-1)
    return p @ v.astype(np.float64), p


def evaluate_policy(policy: CachePolicy, seq: KVSequence) -> dict:
    P = seq.prompt
    policy.begin_run(P + seq.steps)  # the run's whole context, as on the real path
    policy.prefill(seq.keys[:P], seq.values[:P], seq.prompt_queries)
    num = den = 0.0
    kls, mass, read = [], [], []
    for t in range(seq.steps):
        pos = P + t
        q = seq.decode_queries[t]
        o_ref, p_ref = attend(q, seq.keys[:pos + 1], seq.values[:pos + 1])
        view = policy.step(t, seq.keys[pos], seq.values[pos], q)
        o_hat, p_view = attend(q, view.keys, view.values, view.log_weights)
        p_hat = np.zeros_like(p_ref)
        np.add.at(p_hat, (slice(None), view.positions), p_view)
        num += float(np.sum((o_ref - o_hat) ** 2))
        den += float(np.sum(o_ref ** 2))
        kls.append(float(np.mean(kl_divergence(p_ref, p_hat))))
        mass.append(float(np.mean(p_ref[:, np.unique(view.positions)].sum(axis=1))))
        read.append(view.positions.shape[0])
    return {"attn_rel_error": float(np.sqrt(num / den)), "attn_kl": float(np.mean(kls)),
            "mass_kept": float(np.mean(mass)), "tokens_read": float(np.mean(read)),
            "steps": seq.steps}


def causal_column_sums(queries: np.ndarray, keys: np.ndarray, rows: np.ndarray | None = None,
                       block: int = 256, row_weights: np.ndarray | None = None) -> np.ndarray:
    """Σ over query rows i (and the GQA group) of w_i·softmax(q_i·K[:i+1]ᵀ/√d): each
    key's accumulated causal attention, computed in blocks of query rows. queries
    (P, g, d), keys (P, d); `rows` restricts the sum to some query positions;
    `row_weights` (one per row of `rows`, default 1) weights them."""
    P, d = keys.shape
    rows = np.arange(P) if rows is None else np.asarray(rows)
    out = np.zeros(P)
    kT = keys.astype(np.float64).T / np.sqrt(d)
    for b0 in range(0, rows.size, block):
        r = rows[b0:b0 + block]
        s = np.einsum("rgd,dn->rgn", queries[r].astype(np.float64), kT)
        s = np.where(np.arange(P)[None, None, :] <= r[:, None, None], s, -np.inf)
        p = softmax(s, axis=2).sum(axis=1)  # (rows, P)
        w = np.ones(r.size) if row_weights is None else np.asarray(row_weights)[b0:b0 + block]
        out += w @ p
    return out
