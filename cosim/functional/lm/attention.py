"""Attention for the real-checkpoint forward pass.

`causal_attention` is dense causal GQA attention over a range of query rows, in blocks
of rows so the masked half is skipped; the caller passes its operands already quantized
(prefill: Q, K along head_dim and V along tokens over the prompt only, P along keys).
`decode_attention` runs decode rows step by step when attention operands are quantized,
each step quantizing only what it holds (q[t], K[:t+1], V[:t+1]), so nothing after t
reaches row t; `scaled_decode_attention` gives its numbers bit for bit for formats with
one scale per call (NVFP4, plain intN, bare FP8/FP6/FP4), quantizing once what the
steps share. `policy_attention` replays decode
token by token through a KV-cache policy (the recipes' functional twins in
cosim.functional.compression): the policy sees the real prompt K/V/Q, then each new
token, and returns the keys and values attention actually reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cosim.functional.compression.attention import attend
from cosim.functional.rope import apply_rope
from cosim.functional.softmax import softmax

__all__ = ["causal_attention", "decode_attention", "scaled_decode_attention", "v_tail_delta", "policy_attention",
           "PolicyStats", "streaming_attention"]

ROW_BLOCK = 256


def causal_attention(q, k, v, rows: range, quant_p=None, v_tail=None) -> np.ndarray:
    """q (N, H, d), k/v (N, Hkv, d) -> out (len(rows), H, d) for query rows `rows`, each
    attending to keys 0..row. `quant_p(p)` quantizes probabilities along the key axis.
    Per KV head the GQA group's queries are stacked into one 2-D GEMM (BLAS), in blocks
    of rows so the masked upper triangle is mostly skipped. `v_tail` = (delta, B): v is
    blocked along tokens in blocks of B, and row rows[i] reads its last, partial block
    as quantized from the tokens it holds: delta[i] (B, Hkv, d) is that block minus v's
    (v_tail_delta), added through the row's probabilities on those B keys."""
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
            p = softmax(s, inplace=True)
            if quant_p is not None:
                p = quant_p(p)
            o = (p @ vh[:b1]).reshape(r, g, d)
            if v_tail is not None:
                delta, B = v_tail
                t = np.arange(b0, b1)
                cols = ((t + 1) // B * B)[:, None] + np.arange(B)[None, :]  # (r, B): each row's last block
                live = cols <= t[:, None]
                pw = np.take_along_axis(p.reshape(r, g, b1), np.minimum(cols, b1 - 1)[:, None, :], axis=2)
                pw *= live[:, None, :]
                o += np.einsum("rgb,rbd->rgd", pw, delta[b0 - rows.start:b1 - rows.start, :, h])
            out[b0 - rows.start:b1 - rows.start, h * g:(h + 1) * g] = o
    return out


def v_tail_delta(v, vq, rows: range, quant, B: int) -> np.ndarray:
    """(len(rows), B, Hkv, d): for decode row t, the V block it is still filling,
    V[base:t+1] with base = B*floor((t+1)/B), quantized from those tokens alone (a short,
    zero-padded block) minus what `vq` (V quantized along tokens over all N) holds there;
    zero for a row whose blocks are all full. Exact for formats whose blocks are
    independent and unchanged by zero padding (MX, BFP, shared microexponents, integer
    groups): every partial block of every row comes from one quantize call."""
    hkv, d = v.shape[1], v.shape[2]
    t = np.arange(rows.start, rows.stop)
    base, n = (t + 1) // B * B, (t + 1) % B
    delta = np.zeros((t.size, B, hkv, d), np.float32)
    part = np.flatnonzero(n)
    if part.size == 0:
        return delta
    tok = base[part, None] + np.arange(B)[None, :]  # (p, B)
    keep = np.arange(B)[None, :] < n[part, None]
    x = np.where(keep[..., None, None], v[np.minimum(tok, v.shape[0] - 1)], 0).astype(np.float32)
    xq = quant(x, axis=1)  # each (row, head, channel) column is one block of B tokens
    full = np.where(keep[..., None, None], vq[np.minimum(tok, v.shape[0] - 1)], 0)
    delta[part] = xq - full
    return delta


def decode_attention(q, k, v, rows: range, quant, quant_p=None) -> np.ndarray:
    """Decode rows one step at a time, each step quantizing the operands as they exist at
    that step: q[t]; K[:t+1] along head_dim; V[:t+1] along the token axis (P·V reduces over
    tokens), blocked from token 0, so the last block is short (zero-padded) until it fills;
    P along keys. `quant(x, axis=-1)` is the activation quantizer.

    Why: an MX (or any block / dynamically scaled) attention kernel on hardware can only
    block V along tokens with the tokens it holds. At decode step t that is the cache up to
    t: complete 32-token blocks quantize as they would over the whole sequence, and the
    partial last block is quantized from the tokens present (a later token re-quantizes it
    when it arrives). Quantizing V once over all N teacher-forced tokens instead lets a
    block's scale see later tokens -- the target's own V included -- so an earlier
    position's logits depended on later tokens. A dynamic per-tensor scale (bare FP8/FP6/FP4
    activations) likewise sees only K[:t+1] / V[:t+1] / this step's q and P here."""
    N, H, d = q.shape
    hkv = k.shape[1]
    g = H // hkv
    out = np.empty((len(rows), H, d), dtype=np.float32)
    scale = np.float32(1.0 / np.sqrt(d))
    for i, t in enumerate(rows):
        n = t + 1
        qt = quant(q[t:t + 1])[0].reshape(hkv, g, d)
        kt = quant(k[:n])  # (n, hkv, d)
        vt = quant(v[:n], axis=0)
        s = np.matmul(qt, np.ascontiguousarray(kt.transpose(1, 2, 0)))  # (hkv, g, n)
        s *= scale
        p = softmax(s.reshape(H, n), inplace=True)
        if quant_p is not None:
            p = quant_p(p)
        out[i] = np.matmul(p.reshape(hkv, g, n), np.ascontiguousarray(vt.transpose(1, 0, 2))).reshape(H, d)
    return out


STEP_CHUNK = 64  # decode steps whose P rows are quantized in one call (memory: chunk x H x N floats)


def scaled_decode_attention(q, k, v, rows: range, quant) -> np.ndarray:
    """decode_attention's numbers, bit for bit, for an acts format with one scale per call
    (`quant`: a numerics.CallScaled): a value of such a call depends on the others only
    through the call's max |x|. So step t's K[:t+1] is the first t+1 rows of K[:e+1]
    quantized once, e the last step whose running max of |K| is the same; V likewise, except
    that a format blocked along tokens (NVFP4: 16) re-quantizes the block each step is still
    filling, with the step's scale, all such blocks in one call; the q rows and P rows of
    all steps are one call each (each row / step its own scale). Each step still runs its
    own two matmuls and softmax on the same arrays as decode_attention(q, k, v, rows, quant,
    quant_p=quant): P is always quantized, as every attention operand of a quantized run is
    (DecoderLM.attention, its only caller, calls it only then)."""
    from workloads.formats import get_format
    N, H, d = q.shape
    hkv = k.shape[1]
    g = H // hkv
    t = np.arange(rows.start, rows.stop)
    out = np.empty((t.size, H, d), dtype=np.float32)
    if t.size == 0:
        return out
    scale = np.float32(1.0 / np.sqrt(d))
    qd = quant.rows(q[rows.start:rows.stop])
    f = get_format(quant.fmt)
    B = f.block_size if f.is_block else 0  # V's blocks along tokens (0: elementwise)
    keys, vals = _PrefixCalls(k, t, quant, -1), _PrefixCalls(v, t, quant, 0)
    part = None
    if B:  # the block each step is filling, V[base:t+1] with base = B*floor((t+1)/B), zero-padded
        base = (t + 1) // B * B
        tok = base[:, None] + np.arange(B)[None, :]
        keep = tok <= t[:, None]
        part = np.where(keep[..., None, None], v[np.minimum(tok, N - 1)], np.float32(0))
        part = quant.given(part, vals.amax, axis=1)  # each step's block with the step's scale
    for c0 in range(0, t.size, STEP_CHUNK):
        c1 = min(c0 + STEP_CHUNK, t.size)
        p_all = np.zeros((c1 - c0, H, t[c1 - 1] + 1), np.float32)
        for i in range(c0, c1):
            n = t[i] + 1
            kt = keys.prefix(i)
            s = np.matmul(qd[i].reshape(hkv, g, d), np.ascontiguousarray(kt.transpose(1, 2, 0)))
            s *= scale
            p_all[i - c0, :, :n] = softmax(s.reshape(H, n), inplace=True)
        p_all = quant.rows(p_all)  # each step's P (H, t+1) a call of its own; the zeros beyond t+1 change no scale
        for i in range(c0, c1):
            n = t[i] + 1
            vt = vals.prefix(i)
            if B and n % B:
                vt = vt.copy()
                vt[n - n % B:] = part[i, :n % B]
            p = np.ascontiguousarray(p_all[i - c0, :, :n])
            out[i] = np.matmul(p.reshape(hkv, g, n), np.ascontiguousarray(vt.transpose(1, 0, 2))).reshape(H, d)
    return out


class _PrefixCalls:
    """quant(x[:t+1], axis) for the steps t (increasing), from one call per run of steps
    whose running max |x[:t+1]| is the same (the last of them; earlier steps read its
    first rows). Only the current run's array is held."""

    def __init__(self, x, t: np.ndarray, quant, axis: int):
        from .numerics import row_amax
        self.x, self.t, self.quant, self.axis = x, t, quant, axis
        self.amax = np.maximum.accumulate(row_amax(x))[t]
        self.last = np.searchsorted(self.amax, self.amax, side="right") - 1  # the run's last step
        self._end, self._q = -1, None

    def prefix(self, i: int) -> np.ndarray:
        """quant(x[:t[i]+1], axis) for step i."""
        e = int(self.t[self.last[i]]) + 1
        if e != self._end:
            self._end, self._q = e, self.quant(self.x[:e], axis=self.axis)
        return self._q[:self.t[i] + 1]


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


def policy_attention(q, k, v, prefill: int, make_policy, stats: PolicyStats, k_exact=None) -> np.ndarray:
    """Decode rows prefill..N-1 through one cache policy per KV head -> (N - prefill, H, d).
    `stats` accumulates the exact attention mass on the tokens each step reads (under `k_exact`,
    the unquantized keys, when k is a KV format's stored copy; None: k)."""
    N, H, d = q.shape
    hkv = k.shape[1]
    g = H // hkv
    out = np.empty((N - prefill, H, d), dtype=np.float32)
    scale = 1.0 / np.sqrt(d)
    for h in range(hkv):
        qg = q[:, h * g:(h + 1) * g]  # (N, g, d)
        kh, vh = np.ascontiguousarray(k[:, h]), np.ascontiguousarray(v[:, h])
        pol = make_policy()
        pol.begin_run(N)  # the run's whole context (RocketKV sizes itself from it)
        pol.prefill(kh[:prefill], vh[:prefill], qg[:prefill])
        k64 = (kh if k_exact is None else k_exact[:, h]).astype(np.float64)
        for t in range(prefill, N):
            view = pol.step(t - prefill, kh[t], vh[t], qg[t])
            o, _ = attend(qg[t], view.keys, view.values, view.log_weights)
            out[t - prefill, h * g:(h + 1) * g] = o
            kept = np.unique(view.positions)
            if kept.size < t + 1:  # eviction: how much of the exact attention the cache still holds
                p = softmax((qg[t].astype(np.float64) @ k64[:t + 1].T) * scale, axis=1, inplace=True)
                stats.add(float(p[:, kept].sum(axis=1).mean()), view.positions.size)
            else:
                stats.add(1.0, view.positions.size)
    return out


def streaming_attention(q, k, v, k_pre, cos, sin, sinks: int, recent: int, pos_shift: bool, prefill: int,
                        stats: PolicyStats, k_exact=None) -> np.ndarray:
    """StreamingLLM over every row, the prompt's included (the paper's method, as priced: windowed prefill):
    query t reads the first `sinks` tokens and its last `recent` tokens (t - recent + 1 .. t). `pos_shift`
    (the paper's positions within the cache): keys are cached before RoPE and rotated at their index in the
    cache, the query at the last index, so a recent key keeps its distance to the query and a sink key s of a
    full cache is read at distance (sinks + recent - 1 - s) instead of t - s; False: every key at its original
    position. q, k: post-RoPE (k as stored); k_pre: the stored pre-RoPE keys; cos/sin: RoPE tables of >= N
    rows. `stats` gets, per decode step and KV head, the exact attention mass (under k_exact, default k) on
    the tokens read. -> (N, H, d)."""
    N, H, d = q.shape
    hkv = k.shape[1]
    g = H // hkv
    out = np.empty((N, H, d), np.float32)
    scale = 1.0 / np.sqrt(d)
    ke = (k if k_exact is None else k_exact).astype(np.float64)
    cap = sinks + recent
    for t in range(N):
        if t + 1 <= cap:
            idx = np.arange(t + 1)
            ks = k[:t + 1]
        else:
            idx = np.concatenate([np.arange(sinks), np.arange(t - recent + 1, t + 1)])
            ks = k[idx]
            if pos_shift and sinks:
                shift = t - (cap - 1)  # the query sits at cache index cap - 1 instead of position t
                ks = ks.copy()
                ks[:sinks] = apply_rope(k_pre[:sinks], cos, sin, positions=np.arange(sinks) + shift)
        qt = q[t].reshape(hkv, g, d).astype(np.float64)
        p = softmax(np.einsum("hgd,mhd->hgm", qt, ks.astype(np.float64)) * scale, axis=2, inplace=True)
        out[t] = np.einsum("hgm,mhd->hgd", p, v[idx].astype(np.float64)).reshape(H, d)
        if t >= prefill:
            if idx.size < t + 1:
                pe = softmax(np.einsum("hgd,mhd->hgm", q[t].reshape(hkv, g, d).astype(np.float64), ke[:t + 1])
                             * scale, axis=2, inplace=True)
                for h in range(hkv):
                    stats.add(float(pe[h][:, idx].sum(axis=1).mean()), idx.size)
            else:
                for h in range(hkv):
                    stats.add(1.0, idx.size)
    return out
