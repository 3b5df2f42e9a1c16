"""Functional twins of the eviction / sparse-attention recipes, as cache policies.

The selection logic follows each method's description (compression-methods.md §1.2);
it runs per KV head with the GQA group's queries pooled, as the GQA-aware
implementations do.
"""

from __future__ import annotations

import math

import numpy as np

from cosim.functional.compression.attention import CachePolicy, CacheView, causal_column_sums
from cosim.functional.compression.metrics import softmax

__all__ = ["StreamingPolicy", "H2OPolicy", "SnapKVPolicy", "RocketKVPolicy", "rocketkv_split", "CompensatedWindowPolicy", "snapkv_select"]


def _probs(q, K):
    return softmax(q.astype(np.float64) @ K.astype(np.float64).T / np.sqrt(q.shape[-1]), axis=-1)


class _Selecting(CachePolicy):
    def prefill(self, keys, values, queries):
        self.K, self.V = keys.astype(np.float32), values.astype(np.float32)
        self.keep = self.select_prompt(keys, values, queries)  # sorted positions

    def select_prompt(self, keys, values, queries):
        return np.arange(keys.shape[0])

    def step(self, t, key, value, queries):
        self.K = np.concatenate([self.K, key[None]])
        self.V = np.concatenate([self.V, value[None]])
        self.keep = np.append(self.keep, self.K.shape[0] - 1)
        self.keep = self.after_append(self.keep, queries)
        return self.view(queries)

    def after_append(self, keep, queries):
        return keep

    def view(self, queries):
        return CacheView(self.K[self.keep], self.V[self.keep], self.keep)


class StreamingPolicy(_Selecting):
    """Attention sinks + the most recent tokens."""

    def __init__(self, sink_tokens=4, recent_tokens=2000):
        self.sinks, self.recent = sink_tokens, recent_tokens

    def _window(self, n):
        if n <= self.sinks + self.recent:
            return np.arange(n)
        return np.concatenate([np.arange(self.sinks), np.arange(n - self.recent, n)])

    def select_prompt(self, keys, values, queries):
        return self._window(keys.shape[0])

    def after_append(self, keep, queries):
        return self._window(self.K.shape[0])


class H2OPolicy(_Selecting):
    """Heavy hitters (largest accumulated attention) + a recent window; budget fixed at
    (heavy + recent)·prompt; one eviction per step once full."""

    def __init__(self, heavy_ratio=0.1, recent_ratio=0.1, budget=0, forgetting_factor=0.0):
        self.hr, self.rr, self.budget, self.alpha = heavy_ratio, recent_ratio, budget, forgetting_factor

    def select_prompt(self, keys, values, queries):
        P = keys.shape[0]
        from workloads.compression.eviction import h2o_kept_tokens
        self.C = h2o_kept_tokens(self.hr, self.rr, self.budget, P)  # pricing's rule (and its refusal of 0 tokens)
        self.n_recent = int(self.rr * P) if not self.budget else self.C // 2
        # column sums of the prompt's (causal) attention, group pooled; A2SF weights
        # query i by α^(P−1−i) (older queries forgotten)
        P = keys.shape[0]
        weights = self.alpha ** (P - 1 - np.arange(P)) if self.alpha else None
        self.score = causal_column_sums(queries, keys, row_weights=weights)
        return self._trim(np.arange(P))

    def _trim(self, keep):
        if keep.size <= self.C:
            return keep
        recent = keep[-self.n_recent:] if self.n_recent else keep[:0]
        older = keep[:keep.size - self.n_recent]
        n_heavy = self.C - recent.size
        heavy = older[np.argsort(-self.score[older], kind="stable")[:n_heavy]]
        return np.sort(np.concatenate([heavy, recent]))

    def after_append(self, keep, queries):
        self.score = np.append(self.score, 0.0)
        return self._trim(keep)

    def view(self, queries):
        v = super().view(queries)
        if self.alpha:
            self.score *= self.alpha
        self.score[self.keep] += _probs(queries, v.keys).sum(axis=0)  # accumulate this step
        return v


def snapkv_select(keys, queries, capacity, window, kernel, pooling="max"):
    """SnapKV: the last `window` prompt queries vote (softmax attention summed over the
    window and the GQA group), votes are 1-D pooled, the top (capacity − window) prefix
    positions are kept together with the window."""
    P = keys.shape[0]
    if P <= capacity:
        return np.arange(P)
    W = min(window, P)
    votes = causal_column_sums(queries, keys, np.arange(P - W, P))[:P - W]
    pad = kernel // 2
    padded = np.pad(votes, pad, mode="edge" if pooling == "max" else "constant")
    win = np.lib.stride_tricks.sliding_window_view(padded, kernel)
    pooled = win.max(axis=1) if pooling == "max" else win.mean(axis=1)
    top = np.argsort(-pooled, kind="stable")[:capacity - W]
    return np.sort(np.concatenate([top, np.arange(P - W, P)]))


class SnapKVPolicy(_Selecting):
    def __init__(self, capacity=1024, window=32, kernel=7, pooling="max"):
        self.C, self.W, self.kernel, self.pool = capacity, window, kernel, pooling

    def select_prompt(self, keys, values, queries):
        return snapkv_select(keys, queries, self.C, self.W, self.kernel, self.pool)


def rocketkv_split(context: int, token_budget: int, head_dim: int, new_tokens: int) -> dict | None:
    """What RocketKV keeps for a run of `context` tokens: None when the context fits the token budget (the
    method does nothing: every token kept and read), else the priced split (capacity, prompt budget, k, chunk,
    r) -- the one place the twin takes it from pricing's workloads.compression.eviction derivation."""
    from workloads.compression.eviction import rocketkv_budget
    q = rocketkv_budget(context, token_budget, head_dim, new_tokens)
    return q.as_dict() if q.applies else None


class RocketKVPolicy(_Selecting):
    """Stage 1: SnapKV++ to the prompt budget. Stage 2 each step, as the authors' kernel
    (NVlabs/RocketKV@63637c8 gpt-fast/rocket.py, `rocket_attn`): per-chunk min/max key
    summaries; the r channels with the largest |q| summed over the GQA group; per selected
    channel ONE summary element per chunk, the max where the group's summed q is positive
    and the min otherwise (`i1_sign`), so r·ceil(C/chunk) elements are read, the count
    pricing's approx_scores charges (`RocketKVBudget.read_elements`); scores q̂·k̂ of each
    query broadcast to the chunk's tokens, softmax over the tokens with the scale
    sqrt(d·Σ|q̂|/Σ|q|) of each query, summed over the group; exact attention over the top-k
    tokens. The split comes from rocketkv_split
    for the run's whole context (`begin_run`, called by the driver before prefill: the
    prompt plus the decode steps; not called: the prompt alone), as the priced trace
    derives it from its context when no prompt length is given (given one, pricing splits from the prompt, as the
    reference does: the twin's split is larger by its decode steps' share); a context within the budget is left
    whole."""

    def __init__(self, token_budget=1024, window=32, kernel=63, new_tokens=256):
        self.B, self.W, self.kernel, self.new = token_budget, window, kernel, new_tokens
        self.run_length = None

    def begin_run(self, context: int) -> None:
        self.run_length = int(context)

    def select_prompt(self, keys, values, queries):
        P, d = keys.shape
        self.p = rocketkv_split(self.run_length or P, self.B, d, self.new)
        if self.p is None:
            return np.arange(P)
        pb = max(self.W, self.p["prompt_budget"])
        return snapkv_select(keys, queries, pb, self.W, self.kernel, "max")

    def view(self, queries):
        keep = self.keep
        K = self.K[keep]
        if self.p is None:
            return CacheView(K, self.V[keep], keep)
        chunk, r, k = self.p["chunk"], self.p["r"], self.p["k"]
        if keep.size <= k:
            return CacheView(K, self.V[keep], keep)
        n_chunks = math.ceil(keep.size / chunk)
        pad = n_chunks * chunk - keep.size
        Kp = np.concatenate([K, np.repeat(K[-1:], pad, axis=0)]).reshape(n_chunks, chunk, -1)
        kmin, kmax = Kp.min(axis=1), Kp.max(axis=1)
        q64 = queries.astype(np.float64)
        ch = np.argsort(-np.abs(q64).sum(axis=0), kind="stable")[:r]
        q = q64[:, ch]  # (g, r)
        # one summary element per chunk and selected channel: the max where the group's q sums positive
        k_hat = np.where(q.sum(axis=0) > 0, kmax[:, ch], kmin[:, ch]).astype(np.float64)  # (n_chunks, r)
        approx = np.repeat(q @ k_hat.T, chunk, axis=1)[:, :keep.size]  # (g, tokens)
        self.summary_reads = k_hat.size  # what this step read of the summaries (pricing: r·ceil(C/chunk))
        scale = np.sqrt(K.shape[1] * np.abs(q).sum(axis=1, keepdims=True)
                        / np.maximum(np.abs(q64).sum(axis=1, keepdims=True), 1e-300))
        scale = np.where(scale > 0, scale, 1.0)  # a zero query scores every token alike
        tok = softmax(approx / scale, axis=-1).sum(axis=0)
        sel = np.sort(np.argsort(-tok, kind="stable")[:k])
        return CacheView(K[sel], self.V[keep][sel], keep[sel])


class CompensatedWindowPolicy(StreamingPolicy):
    """RazorAttention's non-retrieval heads: sinks + recent window + one compensation
    token, the mean of every dropped key and value (a running mean in the real cache).
    The token stands for the m dropped tokens, so its score gets + log m (its softmax
    mass is that of m copies) [U: the paper's exact weighting is not in the abstract]."""

    def view(self, queries):
        keep = self.keep
        n = self.K.shape[0]
        dropped = np.setdiff1d(np.arange(n), keep)
        if dropped.size == 0:
            return super().view(queries)
        k = np.concatenate([self.K[keep], self.K[dropped].mean(axis=0, keepdims=True)])
        v = np.concatenate([self.V[keep], self.V[dropped].mean(axis=0, keepdims=True)])
        # the compensation token stands for the dropped positions; credit it to the first one
        lw = np.zeros(keep.size + 1)
        lw[-1] = np.log(dropped.size)
        return CacheView(k, v, np.append(keep, dropped[0]), lw)
