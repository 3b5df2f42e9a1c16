"""Functional twins of the KV-cache quantization recipes, as cache policies.

Each policy stores what the method stores (codes dequantized back to floats, fp16
windows, sinks, outliers) and hands the attention the dequantized cache every step.
"""

from __future__ import annotations

import numpy as np

from cosim.functional.compression.attention import CachePolicy, CacheView, causal_column_sums
from cosim.functional.compression.quant import (asym_group_quant, codebook_quant, lloyd_codebook,
                                                rope)
from cosim.functional.softmax import softmax
from workloads.compression.kv_quant import mikv_demoted_tokens, zipcache_lo_count, zipcache_probe_counts

__all__ = ["KIVIPolicy", "KVQuantPolicy", "FormatKVPolicy", "MixedPrecisionPolicy", "GEARPolicy"]


class _Accumulating(CachePolicy):
    """Keeps the raw history; subclasses turn it into the stored view each step."""

    def prefill(self, keys, values, queries):
        self.K = keys.astype(np.float32)
        self.V = values.astype(np.float32)
        self.prompt_queries = queries
        self.on_prefill()

    def on_prefill(self):
        pass

    def step(self, t, key, value, queries):
        self.K = np.concatenate([self.K, key[None]])
        self.V = np.concatenate([self.V, value[None]])
        k, v = self.view()
        return CacheView(k, v, np.arange(k.shape[0]))


class KIVIPolicy(_Accumulating):
    """KIVI: keys per channel (groups of G tokens), the last n mod R keys fp16; values
    per token (groups of G channels), the last R values fp16. `key_mode="token"`
    quantizes keys per token instead (the ablation the paper argues against)."""

    def __init__(self, k_bits=2, v_bits=2, group_size=32, residual_length=128, key_mode="channel"):
        self.kb, self.vb, self.G, self.R, self.mode = k_bits, v_bits, group_size, residual_length, key_mode
        self._kq = None

    def on_prefill(self):
        self._kq = self.K[:0]  # quantized key chunks of this sequence (a reused policy starts afresh)

    def view(self):
        n = self.K.shape[0]
        rk = n % self.R if self.R else 0
        nq = n - rk
        # chunks of R keys are quantized once; re-quantize only when a chunk completes
        if self._kq.shape[0] != nq:
            new = self.K[self._kq.shape[0]:nq]
            if self.mode == "channel":
                q = asym_group_quant(new, self.kb, self.G, axis=0) if new.shape[0] else new
            else:
                q = asym_group_quant(new, self.kb, self.G, axis=1) if new.shape[0] else new
            self._kq = np.concatenate([self._kq, q])
        k = np.concatenate([self._kq, self.K[nq:]])
        rv = min(n, self.R)
        vq = asym_group_quant(self.V[:n - rv], self.vb, self.G, axis=1) if n - rv else self.V[:0]
        v = np.concatenate([vq, self.V[n - rv:]])
        return k, v


class KVQuantPolicy(_Accumulating):
    """KVQuant: per-channel non-uniform keys (a Lloyd codebook per channel fitted on the
    prompt, after per-channel normalisation), per-token non-uniform values (one
    codebook on per-token-normalised values), 1 % largest-magnitude outliers kept
    exactly, the first `first_few_fp16` tokens exact. Synthetic heads carry no RoPE
    unless `rope_theta` is given (then keys are taken as post-RoPE)."""

    def __init__(self, bits=3, outlier_fraction=0.01, first_few_fp16=1, rope_theta=None, pre_rope=True):
        self.b, self.f, self.sink = bits, outlier_fraction, first_few_fp16
        # rope_theta set: the keys arriving are post-RoPE (position = index); pre_rope
        # un-rotates them, quantizes, and re-applies RoPE (what KVQuant does each step)
        self.theta, self.pre = rope_theta, pre_rope

    def _keys(self):
        if self.theta and self.pre:
            return rope(self.K, np.arange(self.K.shape[0]), self.theta, inverse=True)
        return self.K

    def on_prefill(self):
        K = self._keys()[self.sink:]
        self.k_lo, self.k_hi = np.percentile(K, 1, axis=0), np.percentile(K, 99, axis=0)
        kn = self._knorm(K)
        self.k_books = [lloyd_codebook(kn[:, c], self.b) for c in range(K.shape[1])]
        vn = self._vnorm(self.V[self.sink:])
        self.v_book = lloyd_codebook(vn, self.b)
        self.k_cut = np.quantile(np.abs(kn), 1 - self.f) if self.f > 0 else np.inf
        self.v_cut = np.quantile(np.abs(vn), 1 - self.f) if self.f > 0 else np.inf

    def _knorm(self, K):
        mid, half = (self.k_hi + self.k_lo) / 2, np.maximum((self.k_hi - self.k_lo) / 2, 1e-6)
        return (K - mid) / half

    def _vnorm(self, V):
        return V / np.maximum(np.abs(V).max(axis=1, keepdims=True), 1e-6)

    def view(self):
        s = self.sink
        K, V = self._keys()[s:], self.V[s:]
        kn = self._knorm(K)
        kq = np.stack([codebook_quant(kn[:, c], self.k_books[c]) for c in range(K.shape[1])], axis=1)
        kq = np.where(np.abs(kn) > self.k_cut, kn, kq)  # dense-and-sparse: outliers exact
        mid, half = (self.k_hi + self.k_lo) / 2, np.maximum((self.k_hi - self.k_lo) / 2, 1e-6)
        kd = kq * half + mid
        vmax = np.float16(np.maximum(np.abs(V).max(axis=1, keepdims=True), 1e-6)).astype(np.float64)
        vn = V / vmax
        vq = np.where(np.abs(vn) > self.v_cut, vn, codebook_quant(vn, self.v_book))
        vd = vq * vmax
        if self.theta and self.pre:
            kd = rope(kd, np.arange(s, self.K.shape[0]), self.theta)
        return (np.concatenate([self.K[:s], kd]).astype(np.float32),
                np.concatenate([self.V[:s], vd]).astype(np.float32))


def channel_order(calib: np.ndarray) -> np.ndarray:
    """K-sort's permutation: the last-axis channels in ascending RMS over the first axis
    (tokens) of `calib`, independently for every index of the axes between (KV heads)."""
    rms = np.sqrt(np.mean(np.square(np.asarray(calib, np.float64)), axis=0))
    return np.argsort(rms, axis=-1, kind="stable")


def sorted_quantize(x: np.ndarray, order: np.ndarray, quant) -> np.ndarray:
    """`quant` applied to x with its last-axis channels in `order` (blocks then hold
    channels of similar magnitude), the result put back in the original order: the same
    numbers as permuting q and k alike (q·k unchanged) and quantizing the permuted k."""
    idx = np.broadcast_to(order[None], x.shape)
    q = np.asarray(quant(np.ascontiguousarray(np.take_along_axis(x, idx, axis=-1))))
    out = np.empty_like(q)
    np.put_along_axis(out, idx, q, axis=-1)
    return out


class FormatKVPolicy(CachePolicy):
    """K and V stored in registered number formats, written token by token with the
    real-checkpoint path's one KV quantizer (cosim.functional.kvstore.kv_quantizer,
    what `cosim accuracy --kv` and a kv_format part run): block formats blocked along
    head_dim with their own scales; a bare FP8/FP6/FP4 cache with an fp32 scale per KV
    head (`scale="head"`, the default, as fp8_kv prices `k_cache.scale` (kv_heads,)) or
    per tensor (`"tensor"`), amax/max_normal calibrated on the prompt and then fixed, as
    vLLM's fp8 KV cache (`k_scale`/`v_scale`) and TensorRT-LLM's are (decode tokens
    beyond it saturate); `scale="none"` casts unscaled (saturating); plain intN with a
    static scale calibrated on the prompt. Every one of these is per token (scales fixed
    after prefill, blocks within a token's head_dim), so quantizing each token as it is
    written stores exactly what re-quantizing the whole history would. This twin
    simulates one KV head, so per-tensor and per-head scales coincide here.

    `inner`: a token-selection policy (H2O, SnapKV, StreamingLLM, RocketKV) that keeps
    and evicts the STORED tokens and scores them from the stored keys, as pricing stores
    fp8_kv+h2o (or --kv fp8_e4m3 with h2o) and the real path runs it (decoder.attention:
    kv_cache_view, then the policy); None keeps every stored token."""

    def __init__(self, fmt="fp8_e4m3", value_fmt=None, scale="head", channel_sort=False, inner=None):
        from cosim.functional.scaled import GRANULARITIES, scale_label
        if scale not in GRANULARITIES:
            raise ValueError(f"kv scale must be one of {GRANULARITIES}, got {scale!r}")
        self.kf, self.vf, self.scale, self.sort = fmt, value_fmt or fmt, scale, channel_sort
        self.inner = inner if inner is not None else CachePolicy()
        self.scale_label = {"key": scale_label(self.kf, scale), "value": scale_label(self.vf, scale)}

    def begin_run(self, context: int) -> None:
        self.inner.begin_run(context)

    def prefill(self, keys, values, queries):
        from cosim.functional.kvstore import kv_quantizer as _kv_quantizer  # the real path's, not a copy
        keys, values = np.asarray(keys, np.float32), np.asarray(values, np.float32)
        # the twin's tensors are one KV head (n, d): the quantizer's head axis is axis 1
        self._qk = _kv_quantizer(self.kf, keys[:, None, :], self.scale)
        self._qv = _kv_quantizer(self.vf, values[:, None, :], self.scale)
        self.order = channel_order(keys) if self.sort else None  # K-sort: calibrated on the prompt, then fixed
        self.inner.prefill(self._store(keys, self._qk, self.order), self._store(values, self._qv, None), queries)

    @staticmethod
    def _store(x, quant, order):
        """(n, d) tokens as the cache stores them."""
        if quant is None:  # fp32: the reference precision
            return x

        def q(a):
            return np.asarray(quant(a[:, None, :]), np.float32)[:, 0]
        return q(x) if order is None else sorted_quantize(x, order, q)

    def step(self, t, key, value, queries):
        k = self._store(np.asarray(key, np.float32)[None], self._qk, self.order)[0]
        v = self._store(np.asarray(value, np.float32)[None], self._qv, None)[0]
        return self.inner.step(t, k, v, queries)


class MixedPrecisionPolicy(_Accumulating):
    """Salient tokens at hi_bits, the rest at lo_bits, asymmetric per token (groups of
    `group_size` channels; keys divided by per-channel normalizers calibrated on the
    prompt). The cache stores codes: a token's stored value changes only when it is
    re-quantized from what is stored. Saliency and the decode rule follow each method and
    what workloads.compression.kv_quant.apply_mixed_precision prices:

    - `saliency="probe"` (ZipCache): normalised accumulated attention of probe queries
      (`probe_rows`: half of probe_ratio the most recent prompt queries, half drawn at
      random before them; each token's sum divided by the number of prompt queries that see
      it, as ThisisBillhe/ZipCache@b6932b9 modeling_llama.py does), computed after prefill:
      the int((1 - salient_ratio) x P) least salient prompt tokens (`zipcache_lo_count`, the
      authors' int()) at lo_bits, the rest at hi_bits. With a streaming gap I =
      `requant_interval` > 0 (the bundled recipe: 100, the authors' demo) a decode token waits
      unquantized in the 16-bit buffer (CompressUtils/compress_class.py, `stream: True`);
      after the read of every I-th step the step's queries score the I buffered tokens and
      their int((1 - salient_ratio) x I) least attended go to lo_bits, the rest to hi_bits
      (modeling_llama.py: `streaming_gap`). I = 0: a decode token enters at hi_bits and is
      never re-scored. Pricing's split is `zipcache_token_split`.
    - `saliency="accumulated"` (MiKV, H2O's importance): accumulated attention of every
      prompt query after prefill; a decode token enters the important set at hi_bits
      (MiKV keeps H2O's cache in high precision and stores what H2O would evict at low
      precision); each step its attention probabilities add to the scores and, while the
      important set holds more than round(salient_ratio x n) tokens, its lowest-scored
      token is demoted (re-quantized at lo_bits): mikv_demoted_tokens(n − 1, n) tokens a
      step, 1 − salient_ratio on average, the count pricing's demote_requant charges
      (score_accumulate, demote_requant).

    hi_bits >= 16 keeps salient tokens exact."""

    def __init__(self, hi_bits=4, lo_bits=2, salient_ratio=0.5, group_size=0, saliency="probe", probe_ratio=0.1,
                 channel_normalizers=True, requant_interval=0, probe_seed=0, key_quant="token"):
        self.hb, self.lb, self.ratio, self.G = hi_bits, lo_bits, salient_ratio, group_size
        self.saliency, self.probe, self.norm = saliency, probe_ratio, channel_normalizers
        self.interval, self.probe_seed = requant_interval, probe_seed
        self.key_channel = key_quant == "channel"
        if self.key_channel and (saliency != "probe" or not requant_interval):  # pricing's _mixed_validate
            raise ValueError(f"MixedPrecisionPolicy: key_quant 'channel' needs saliency 'probe' and a streaming gap "
                             f"(got saliency {saliency!r}, requant_interval {requant_interval}); expected key_quant "
                             f"'token' otherwise")

    def probe_rows(self, n: int) -> np.ndarray:
        """The prompt rows ZipCache probes with (zipcache_probe_counts, pricing's counts): the
        last n_recent, then n_random drawn with replacement from the rows before them
        (default_rng(probe_seed): the authors draw torch.randint per layer forward; one fixed
        draw here, so a run repeats)."""
        n_recent, n_random = zipcache_probe_counts(n, self.probe)
        start = n - n_recent
        rand = np.random.default_rng(self.probe_seed).integers(0, start, n_random) if n_random else []
        return np.concatenate([np.arange(start, n), np.asarray(rand, dtype=int)]).astype(int)

    def _probe_scores(self, K, queries):
        n = K.shape[0]
        score = causal_column_sums(queries, K, self.probe_rows(n))
        # ZipCache's normalisation (the authors' code): token j's probe sum over n - j, the number of
        # prompt queries that see it
        return score / (n - np.arange(n))

    def on_prefill(self):
        P, d = self.K.shape
        qs = self.prompt_queries
        if self.key_channel:  # ZipCache (the authors' demo): keys channel-wise; values CST, c = sqrt(max|v|)
            self.cnorm = np.ones(d)
            self.vnorm = np.sqrt(np.maximum(np.abs(self.V).max(axis=0), 1e-12)) if self.norm \
                else np.ones(self.V.shape[1])
        else:
            self.cnorm = np.maximum(np.abs(self.K).max(axis=0), 1e-6) if self.norm else np.ones(d)
            self.vnorm = np.ones(self.V.shape[1])
        if self.saliency == "probe":
            score = self._probe_scores(self.K, qs)
        else:
            score = causal_column_sums(qs, self.K)
        self.score = score
        self.hi = np.zeros(P, bool)
        if self.saliency == "probe":  # the authors' count: int() of the unimportant share, the lowest-scored
            self.hi[np.argsort(score, kind="stable")[zipcache_lo_count(self.ratio, P):]] = True
        else:
            self.hi[np.argsort(-score, kind="stable")[:int(round(self.ratio * P))]] = True
        self.buf = np.zeros(P, bool)  # ZipCache's 16-bit streaming buffer
        self.Ks = self._store_keys(self.K, self.hi)
        self.Vs = self._store(self.V, self.hi, self.vnorm)
        self.steps = 0

    def _store_keys(self, X, hi):
        """Keys of one quantization group (the prompt, or a streaming chunk): per token (after the
        channel normalizers), or with `key_quant="channel"` one asymmetric (min, step) per channel
        over the group's hi tokens and another over its lo tokens (ThisisBillhe/ZipCache@b6932b9,
        `true_mixedprec_compress_channelwise`; pricing: `key_stat_sets`)."""
        if not self.key_channel:
            return self._store(X, hi, self.cnorm)
        Y = np.empty_like(X)
        for mask, bits in ((hi, self.hb), (~hi, self.lb)):
            if mask.any():
                Y[mask] = X[mask] if bits >= 16 else asym_group_quant(X[mask], bits, int(mask.sum()), axis=0)
        return Y

    def _q(self, X, bits, norm):
        if bits >= 16 or X.shape[0] == 0:
            return X
        G = self.G or X.shape[1]
        return asym_group_quant(X / norm, bits, G, axis=1) * norm

    def _store(self, X, hi, norm):
        Y = np.empty_like(X)
        Y[hi] = self._q(X[hi], self.hb, norm)
        Y[~hi] = self._q(X[~hi], self.lb, norm)
        return Y

    def step(self, t, key, value, queries):
        self.K = np.concatenate([self.K, key[None]])
        self.V = np.concatenate([self.V, value[None]])
        # a decode token is stored at hi_bits until scored (MiKV; ZipCache without streaming), or
        # waits unquantized in ZipCache's 16-bit streaming buffer
        buffered = self.saliency == "probe" and self.interval > 0
        k32, v32 = key[None].astype(np.float32), value[None].astype(np.float32)
        mask = np.array([True])
        self.Ks = np.concatenate([self.Ks, k32 if buffered else self._store(k32, mask, self.cnorm)])
        self.Vs = np.concatenate([self.Vs, v32 if buffered else self._store(v32, mask, self.vnorm)])
        self.hi = np.append(self.hi, not buffered)
        self.buf = np.append(self.buf, buffered)
        self.steps += 1
        n = self.K.shape[0]
        if self.saliency == "probe":
            view = CacheView(self.Ks.copy(), self.Vs.copy(), np.arange(n))
            if buffered and self.steps % self.interval == 0:  # the chunk just completed is scored and quantized
                s = queries.astype(np.float64) @ self.Ks.astype(np.float64).T / np.sqrt(self.Ks.shape[1])
                score = softmax(s, axis=1, inplace=True).sum(axis=0)[n - self.interval:]
                chunk_hi = np.ones(self.interval, bool)
                chunk_hi[np.argsort(score, kind="stable")[:zipcache_lo_count(self.ratio, self.interval)]] = False
                self._quantize_chunk(np.arange(n - self.interval, n), chunk_hi)
            return view
        view = CacheView(self.Ks.copy(), self.Vs.copy(), np.arange(n))
        # MiKV / H2O: this step's attention over the stored cache adds to the scores, then the important set is
        # trimmed to its budget for the next step
        self.score = np.append(self.score, 0.0)
        s = queries.astype(np.float64) @ self.Ks.astype(np.float64).T / np.sqrt(self.Ks.shape[1])
        self.score += softmax(s, axis=1, inplace=True).sum(axis=0)
        # pricing's rule (workloads.compression.kv_quant.mikv_demoted_tokens): the set, round(r·(n − 1)) + 1 at the
        # read, is trimmed to round(r·n)
        for _ in range(mikv_demoted_tokens(n - 1, n, self.ratio)):
            idx = np.flatnonzero(self.hi)
            j = idx[np.argmin(self.score[idx])]
            self._requant(j, False)
        return view

    def counts(self) -> tuple[int, int, int]:
        """(hi, lo, 16-bit buffer) tokens stored now (pricing: zipcache_token_split)."""
        return int(self.hi.sum()), int((~self.hi & ~self.buf).sum()), int(self.buf.sum())

    def _quantize_chunk(self, idx, hi):
        """ZipCache's chunk compression: the buffered tokens `idx` quantized from their exact values as
        one group, `hi` of them at hi_bits and the rest at lo_bits."""
        self.Ks[idx] = self._store_keys(self.K[idx], hi)
        self.Vs[idx] = self._store(self.V[idx], hi, self.vnorm)
        self.hi[idx], self.buf[idx] = hi, False

    def _requant(self, j, to_hi):
        bits = self.hb if to_hi else self.lb
        self.Ks[j] = self._q(self.Ks[j:j + 1], bits, self.cnorm)[0]
        self.Vs[j] = self._q(self.Vs[j:j + 1], bits, self.vnorm)[0]
        self.hi[j] = to_hi


class GEARPolicy(_Accumulating):
    """GEAR: outliers S (the largest-|x| fraction, kept exactly), a b-bit backbone of
    X − S (keys per channel in groups of G tokens, values per token in groups of G
    channels), and the rank-r truncated SVD of what the backbone missed. As priced
    (workloads.compression.kv_quant.apply_gear) and as GEAR's streaming mode runs: the
    prompt's whole `gap` chunks are compressed once at prefill with `prefill_rank`; every
    later `gap` tokens (the fp16 streaming buffer, the prompt's remainder first) are
    compressed as one chunk with its own rank-`rank` residual, and compressed chunks are
    never revisited. (GEAR finds the rank-r factors by power iteration; the exact SVD is
    its limit.)"""

    def __init__(self, bits=2, group_size=64, rank=2, outlier_fraction=0.02, streaming_gap=64, prefill_rank=None):
        self.b, self.G, self.r, self.f, self.gap = bits, group_size, rank, outlier_fraction, streaming_gap
        self.r0 = rank if prefill_rank is None else prefill_rank

    def _compress(self, X, key, rank):
        S = np.zeros_like(X, dtype=np.float64)
        if self.f > 0:
            k = int(round(self.f * X.size))
            if k:
                idx = np.argpartition(np.abs(X).ravel(), -k)[-k:]
                S.ravel()[idx] = X.ravel()[idx]
        D = X - S
        Q = asym_group_quant(D, self.b, self.G, axis=0 if key else 1)
        E = D - Q
        if rank:
            u, s, vt = np.linalg.svd(E, full_matrices=False)
            Q = Q + (u[:, :rank] * s[:rank]) @ vt[:rank]
        return (Q + S).astype(np.float32)

    def on_prefill(self):
        nq = self.K.shape[0] - self.K.shape[0] % self.gap
        self._k = self._compress(self.K[:nq], True, self.r0) if nq else self.K[:0]
        self._v = self._compress(self.V[:nq], False, self.r0) if nq else self.V[:0]
        self._nq = nq

    def view(self):
        n = self.K.shape[0]
        if n - self._nq >= self.gap:  # the buffer filled a chunk: compress it alone, at the decode rank
            a, b = self._nq, self._nq + self.gap
            self._k = np.concatenate([self._k, self._compress(self.K[a:b], True, self.r)])
            self._v = np.concatenate([self._v, self._compress(self.V[a:b], False, self.r)])
            self._nq = b
        nq = self._nq
        return np.concatenate([self._k, self.K[nq:]]), np.concatenate([self._v, self.V[nq:]])
