"""Analytical GPU model (level="analytical"): what makes real kernels miss the roofline.

`estimate(op, hw) -> OpCost` for one instance of an op, from the parameters in
``hw.sections["analytical"]`` (a calibration file written by cosim/calibrate/fit.py and
named by the hardware YAML's ``calibration:`` key). Each mechanism is one formula with
named parameters; every parameter is fitted to measurements on a real device whose
name, date and software the calibration file records.

Mechanisms
- GEMM: output tiles (BM x BN from a candidate list, the fastest chosen as cuBLAS's
  heuristic would) quantised into waves over the SMs; split-K when there are fewer tiles
  than SMs; per-format tensor-core efficiency `gemm.mma_eff.<fmt>` of the datasheet peak;
  a smaller tile pays `gemm.tile_c * (1/BM + 1/BN)` more time per MAC (more operand
  traffic per MAC through shared memory); memory time over the achievable bandwidth
  `gemm.bw`; compute and memory overlap imperfectly, combined as a p-norm
  (`gemm.overlap_p`; p -> inf is a perfect max); a kernel never takes less than
  `gemm.floor` (launch + pipeline fill + DRAM latency).
- Attention prefill (flash-style): Bq x Bk score blocks; causal masking skips the blocks
  above the diagonal (block granularity, so the diagonal blocks count in full); the time
  is the total work spread over the SMs plus a last-wave tail, a fitted fraction of the
  longest CTA (the last query block of a long causal sequence), plus a per-CTA overhead.
- Attention decode (q_len 1): bandwidth-bound over the KV cache; GQA shares each KV head
  across its query group (FlashAttention-2 swaps the group into the query-length axis,
  so KV is streamed once per KV head); the KV sequence is split across CTAs by
  FlashAttention-2's num_splits heuristic when (batch x heads) would not fill the GPU,
  otherwise each CTA streams its whole head at a per-CTA rate (`attn.cta_bw_*`).
- Elementwise/reduction kernels: per kind, a launch floor plus (compulsory bytes x a
  traffic multiplier) over the achievable streaming bandwidth `ew.bw`, combined as a
  p-norm (`ew.overlap_p`); the multiplier captures implementations that make several
  passes (silu(g)*u is two kernels, rotate-half RoPE five per tensor).
- Energy: static power x latency + energy per FLOP (per format; attention separately,
  its softmax runs on the CUDA cores) + energy per streamed HBM byte (decode attention's
  KV stream its own). Power cap: when that energy over the op's time would exceed the
  board limit (700 W on the H100), the op is stretched to dynamic energy / (cap - static)
  — big GEMMs and long prefills run at reduced clocks (measured: 1500-1750 MHz in
  sustained prefill vs 1980 MHz idle boost).

`OpCost.latency_s` is the op's time inside a running workload: power-capped, then less
the launch latency a predecessor hides in a stream or CUDA graph (`launch.overlap` per
kernel) and, where calibrated, `launch.stream_speedup` of its time (round 14), never below the in-graph
tiny-kernel time (`in_stream_time`). ``details["isolated_s"]`` is the op
launched alone in a short burst (boost clocks), which is what the microbenchmarks time;
the op-level validation compares that, the end-to-end and energy validations the rest.

A spec without an ``analytical`` section is not silently modelled: `applicable` says
so (hwmodels.estimate then falls back to the roofline with a note) and `estimate`
itself returns the roofline cost with provenance "fallback:uncalibrated".
"""

from __future__ import annotations

import dataclasses

import math
from functools import lru_cache

import numpy as np

from hwmodels.cost import OpCost
from hwmodels.spec import HardwareError, HardwareSpec
from workloads.ops import Op, attended_pairs

__all__ = ["GpuParams", "PARAMS", "applicable", "params_for", "estimate", "estimate_trace",
           "gemm_time", "attention_prefill_time", "attention_decode_time", "fa2_num_splits",
           "elementwise_time", "energy_j", "kernels_of", "EW_KINDS", "EW_ALIAS"]

from hwmodels import gpu_library as _lib
from hwmodels import gpu_params as _gp
from hwmodels.gpu_params import (ATTN_BACKEND_KEYS, ATTN_BACKENDS, ATTN_BLOCKS, BANDWIDTH_PARAMS, EW_ALIAS,  # noqa: F401
                                 EW_KINDS, FA2_BQ, FA2_DEC_BM, KERNELS, OPTIONAL_PARAMS, PARAMS, ROW_KINDS, UNFUSED_ALIGN,
                                 SPLITK_MIN_K, SPLITK_WS_BYTES, TILES, UNFUSED_KEYS, WARP_SOFTMAX_MAX_COLS, GpuParams,
                                 DEC_FILL_BLOCKS, DEC_FILL_ROWS, DEC_FILL_VALIDATED_HEAD_DIM, FA2_SLOTS_PER_SM,
                                 FA2_SPLIT_BQ, SKV_PARTIAL_BYTES)


def params_for(hw: HardwareSpec) -> GpuParams | None:
    """Calibrated parameters of this spec, or None when it has no analytical section.
    Compute peaks enter through the spec directly (efficiencies are relative to them);
    bandwidths are rescaled when the spec's main-memory bandwidth differs from the one
    the calibration was fitted against."""
    P = calibrated_params(hw)
    return None if P is None else scaled_to(P, hw.main_memory.bandwidth_Bps)


def analytical_params(hw: HardwareSpec) -> GpuParams | None:
    """params_for without the calibration's measured-residual correction: the fitted analytical model alone (what
    a residual table is built on and what model selection compares a correction against)."""
    P = params_for(hw)
    return None if P is None else dataclasses.replace(P, residuals=None)


def calibrated_params(hw: HardwareSpec) -> GpuParams | None:
    """The spec's calibration as fitted (a sibling's transferred to this GPU), before params_for rescales its
    bandwidths to the spec's main memory; None without an analytical section."""
    sec = hw.sections.get("analytical") if hw.sections else None
    if not sec:
        return None
    from hwmodels.gpu_calibration import parse_section
    P = parse_section(sec, hw.source or hw.name)
    if sec.get("transfer"):  # a sibling's calibration (calibration: {from: ...}): scale to this GPU
        from hwmodels.gpu_transfer import transfer
        P = transfer(P, sec["transfer"], hw)
    return P


def scaled_to(P: GpuParams, bandwidth_Bps: float) -> GpuParams:
    ref = P.reference_bandwidth
    if not ref or bandwidth_Bps == ref:
        return P
    r = bandwidth_Bps / ref
    values = {**P.values, **{k: P.values[k] * r for k in _bandwidth_keys(P.values)}}
    return GpuParams(values=values, sm_count=P.sm_count, l2_bytes=P.l2_bytes,
                     provenance=f"{P.provenance}; bandwidths x{r:.4g} (datasheet {bandwidth_Bps / 1e12:.4g} "
                                f"vs calibrated {ref / 1e12:.4g} TB/s)",
                     reference_bandwidth=bandwidth_Bps, attention_default=P.attention_default, residuals=P.residuals)


def _bandwidth_keys(values):
    extra = [f"attn_{b}.{k[5:]}" for b in ATTN_BACKENDS for k in BANDWIDTH_PARAMS if k.startswith("attn.")]
    return [k for k in BANDWIDTH_PARAMS + tuple(extra) if k in values]


def attention_backend(op: Op, P: GpuParams) -> str:
    """The op's backend (dims["backend"]; "default" or none: the calibration's default)."""
    b = op.dims.get("backend") or "default"
    return P.attention_default if b == "default" else b


def for_backend(P: GpuParams, backend: str, where: str = "") -> GpuParams:
    """P with the attn.* parameters of `backend` (fa2: as is)."""
    if backend == "fa2":
        return P
    if backend not in ATTN_BACKENDS:
        raise HardwareError(f"{where}attention backend: got {backend!r}; expected one of {ATTN_BACKENDS} or default")
    keys = list(UNFUSED_KEYS) if backend == "unfused" else [f"attn_{backend}.{k}" for k in ATTN_BACKEND_KEYS]
    if any(k not in P.values for k in keys):
        have = (["fa2"] + [b for b in ATTN_BACKENDS[1:-1] if f"attn_{b}.eff" in P.values]
                + (["unfused"] if UNFUSED_KEYS[0] in P.values else []))
        raise HardwareError(f"{where}attention backend {backend!r}: this calibration ({P.provenance[:80]}...) did not "
                            f"measure it; calibrated backends: {', '.join(have)}")
    if backend == "unfused":
        return P
    values = {**P.values, **{f"attn.{k}": P.values[f"attn_{backend}.{k}"] for k in ATTN_BACKEND_KEYS}}
    for k in _gp.ATTN_OPTIONAL_KEYS:  # a backend's optional term is its own or absent, never FA2's
        if f"attn_{backend}.{k}" in P.values:
            values[f"attn.{k}"] = P.values[f"attn_{backend}.{k}"]
        else:
            values.pop(f"attn.{k}", None)
    return GpuParams(values=values,
                     sm_count=P.sm_count, l2_bytes=P.l2_bytes, provenance=P.provenance,
                     reference_bandwidth=P.reference_bandwidth, attention_default=P.attention_default,
                     residuals=P.residuals)


def applicable(hw: HardwareSpec):
    """GPUs only. An uncalibrated GPU is still 'applicable': estimate() then answers with
    the roofline under provenance "fallback:uncalibrated" and a note naming the file, so
    the report says why (hwmodels.estimate would otherwise tag it generically)."""
    if hw.kind != "gpu":
        return False, f"the analytical GPU model needs kind gpu, {hw.name} is {hw.kind}"
    return True, ""


# ---------------------------------------------------------------------------- GEMM

GEMM_CELLS = 1 << 20  # rows x candidate configurations priced at once (bounds memory on long sweeps)
SWEEP_PRUNE_MIN = 64  # tile lists longer than this (the nvjet menus) are pruned per shape on the sweep path
SWEEP_MARGIN = 1e-9  # relative: a dropped configuration is slower by this much at every variant (rounding ~1e-15)

def gemm_time(P, m, n, k, b, peak, e_in, e_out=2.0, fmt="bf16", details=False, bw=None, tiles=None):
    """Vectorised GEMM latency (s). m, n, k, b arrays; peak FLOP/s of the format (a scalar, or an
    array broadcast with m: one peak per row); bw: the GEMM bandwidth per row (default
    P["gemm.bw"]; the sweep path passes one per variant so the tile and split are re-chosen per
    bandwidth-to-peak ratio, as `estimate` does on each variant spec). `tiles`: the candidate tiles
    (default: the calibration's; the sweep path passes `sweep_tiles`, which picks the same)."""
    m, n, k, b = (np.asarray(x, dtype=float) for x in (m, n, k, b))
    bw = P["gemm.bw"] if bw is None else np.asarray(bw, dtype=float)
    peak = np.asarray(peak, dtype=float)
    shape = np.broadcast_shapes(m.shape, n.shape, k.shape, b.shape, peak.shape, np.shape(bw))
    m, n, k, b = (np.broadcast_to(x, shape) for x in (m, n, k, b))
    rows = [np.broadcast_to(x, shape).ravel() for x in (m, n, k, b, peak, bw)]
    if tiles is None:
        tiles = _lib.tiles(TILES, P.values.get("gemm.tile_set"), fmt)
    bm, bn = (np.array(x, dtype=float) for x in zip(*tiles))
    stream_k = _stream_k(P, fmt)
    # rows per chunk: a menu of ~1,000 tiles (2 configurations each with stream-K) must not hold rows x tiles at once
    step = max(1, GEMM_CELLS // len(bm))
    parts = [_gemm_best(P, *(x[i:i + step] for x in rows), fmt, bm, bn, stream_k)
             for i in range(0, max(1, m.size), step)]
    best, best_red, best_tile = (np.concatenate([q[j] for q in parts]).reshape(shape + tail)
                                 for j, tail in ((0, ()), (1, ()), (2, (5,))))
    nbytes = b * (e_in * (m * k + n * k) + e_out * m * n)
    t_mem = nbytes / bw
    p = P["gemm.overlap_p"]
    t = P["gemm.floor"] + (best ** p + t_mem ** p) ** (1.0 / p) + best_red
    if details:
        return t, {"t_compute": best, "t_memory": t_mem, "tile": best_tile, "bytes": nbytes, "t_reduce": best_red}
    return t


def _stream_k(P, fmt) -> bool:
    """Whether the calibration offers stream-K to GEMMs of `fmt`; session 11: a calibration may take fp8 GEMMs off it
    (gemm.fp8_no_stream_k; s11_gemm_candidates)."""
    return bool(P.values.get("gemm.stream_k")) and not (fmt.startswith("fp8") and P.values.get("gemm.fp8_no_stream_k"))


def _gemm_configs(P, m, n, k, b, peak, bw, fmt, bm, bn, stream_k):
    """Every configuration of each row (1-D arrays) over the candidate tiles (bm, bn), in the order tile 1
    data-parallel, tile 1 stream-K (with stream-K on), tile 2 ...: (MAC time, split-K or stream-K reduction time,
    (BM, BN, waves, split, stream-K?)), each of shape (rows, configurations). A tile is priced data-parallel (with
    split-K where the tiles do not fill the SMs) and, with stream-K on, stream-K (inf where it cannot run)."""
    sms = P.sm_count
    eff = P[f"gemm.mma_eff.{fmt}"]
    m, n, k, b, peak, bw = (x[:, None] for x in (m, n, k, b, peak, bw))
    tiles = b * np.ceil(m / bm) * np.ceil(n / bn)
    # split-K: as many K-slices as fill the SMs, none shallower than SPLITK_MIN_K (a
    # continuous split keeps the slice depth, and so the time, monotonic in k)
    split = np.where(tiles >= sms, 1.0, np.maximum(1.0, np.minimum(np.floor(sms / tiles), k / SPLITK_MIN_K)))
    waves = np.ceil(tiles * split / sms)
    rate = peak / sms * eff / (1.0 + P["gemm.tile_c"] * (1.0 / bm + 1.0 / bn))  # FLOP/s per SM
    t = waves * 2.0 * bm * bn * (k / split) / rate
    red = splitk_reduce_time(P, m, n, b, split, bw)
    one = np.ones(t.shape)
    cand = [(t, red, np.stack([bm * one, bn * one, waves, split, 0.0 * one], -1))]
    if stream_k:  # session-9 candidate (gpu_library.streamk_time): the tile's MAC work spread evenly over the SMs
        t_sk, red_sk, ok = _lib.streamk_time(bm, bn, tiles, k, sms, rate, bw, SPLITK_WS_BYTES, SPLITK_MIN_K)
        cand.append((np.where(ok, t_sk, np.inf), red_sk, np.stack([bm * one, bn * one, tiles / sms, one, one], -1)))
    return tuple(np.stack([c[j] for c in cand], 2).reshape(len(m), -1, *((5,) if j == 2 else ())) for j in range(3))


def _gemm_best(P, m, n, k, b, peak, bw, fmt, bm, bn, stream_k):
    """The library's configuration of each row: the fastest, its reduction included, the first listed on a tie
    (argmin keeps the first of equals)."""
    if len(m) == 0:  # no rows: nothing to choose
        return np.zeros(0), np.zeros(0), np.zeros((0, 5))
    t, red, det = _gemm_configs(P, m, n, k, b, peak, bw, fmt, bm, bn, stream_k)
    pick = np.argmin(t + red, axis=1)
    rows = np.arange(len(m))
    return t[rows, pick], red[rows, pick], det[rows, pick]


def sweep_tiles(P, m, n, k, b, peak, fmt, bw=None) -> tuple:
    """The candidate tiles worth pricing for one GEMM shape over hardware variants that scale its peak by 1 / c and
    its bandwidth by 1 / b (the sweep path). A configuration's time is then a c + r b (MAC time a, reduction r at the
    base); one that another beats by SWEEP_MARGIN in both a and r can win at no (c, b), so its tile is dropped unless
    another configuration of it stays. The margin is far above rounding, so the pick over the kept tiles is the whole
    menu's to the bit; short lists (tile sets 0 and 1) are returned whole."""
    cand = _lib.tiles(TILES, P.values.get("gemm.tile_set"), fmt)
    if len(cand) <= SWEEP_PRUNE_MIN:
        return cand
    stream_k = _stream_k(P, fmt)
    bm, bn = (np.array(x, dtype=float) for x in zip(*cand))
    row = [np.array([float(x)]) for x in (m, n, k, b, peak, P["gemm.bw"] if bw is None else bw)]
    a, r, _ = (x[0] for x in _gemm_configs(P, *row, fmt, bm, bn, stream_k))
    order = np.argsort(a, kind="stable")
    best_r = np.minimum.accumulate(r[order])  # the least reduction among the configurations up to each MAC time
    beaten = np.searchsorted(a[order], a * (1.0 - SWEEP_MARGIN), side="left")  # how many are faster by the margin
    dominated = (beaten > 0) & (best_r[np.maximum(beaten - 1, 0)] <= r * (1.0 - SWEEP_MARGIN))
    keep = np.isfinite(a) & ~dominated
    per_tile = 2 if stream_k else 1
    kept = sorted({int(j) // per_tile for j in np.flatnonzero(keep)})
    return tuple(cand[i] for i in kept) or cand  # none kept (no finite time): the whole menu, priced as estimate does


def splitk_reduce_time(P, m, n, b, split, bw=None):
    """Split-K's reduction (session 8, second round; when a calibration records `gemm.splitk_ws`): each
    of the `split` K-slices writes its fp32 partial tile to a workspace and a reduction reads them back,
    2 x split x M x N x 4 bytes at the GEMM bandwidth (a fixed time of the reduction was scored twice
    on the validation split, s8b and s9, and rejected both times). No split, no reduction."""
    if not P.values.get("gemm.splitk_ws"):  # absent or 0: not priced
        return np.zeros(np.shape(split))
    bw = P["gemm.bw"] if bw is None else bw
    ws = 2.0 * split * b * m * n * SPLITK_WS_BYTES / bw
    return np.where(split > 1, ws, 0.0)


# ---------------------------------------------------------------------------- attention

def _fa2_blocks(d):
    """(Bq, Bk) of the FlashAttention-2 forward kernel for a head dim (PyTorch's vendored FA2:
    128x128 up to d=64, 128x64 above)."""
    return (FA2_BQ, 128) if d <= 64 else (FA2_BQ, 64)


def attention_prefill_time(P, batch, heads, q_len, kv_len, d, dv, causal, peak, details=False, blocks=None):
    """Flash-style prefill: block-level causal skipping, work over SMs vs critical path. FA2 (blocks None) under a
    calibration carrying `attn.prefill_kernels`: the kernel FlashAttention-2 runs (fa2_prefill_kernels_time)."""
    if blocks is None and P.values.get("attn.prefill_kernels"):
        return fa2_prefill_kernels_time(P, batch, heads, q_len, kv_len, d, dv, causal, peak, details)
    bq, bk = blocks or _fa2_blocks(d)
    nq = math.ceil(q_len / bq)
    nk = math.ceil(kv_len / bk)
    offset = kv_len - q_len
    i = np.arange(nq)
    if causal:
        vis = np.minimum(offset + (i + 1) * bq, kv_len)
        blocks = np.ceil(vis / bk)
    else:
        blocks = np.full(nq, float(nk))
    # softmax of a score block runs on the CUDA cores whatever the head dim: `attn.soft_c` (when
    # calibrated) is its time in units of a d = 128 block's per-column MMA time (gpu_params)
    t_blk = 2.0 * bq * bk * (d + dv + P.values.get("attn.soft_c", 0.0) * (128 + 128)) / (peak / P.sm_count * P["attn.eff"])
    t_cta = blocks * t_blk + P["attn.cta_overhead"]
    work = batch * heads * t_cta.sum()
    # greedy CTA scheduling: the work spread over the SMs, plus the tail of the last wave,
    # a fitted fraction of the longest CTA (causal: the last query block sees every key)
    t_comp = work / P.sm_count + P["attn.tail"] * t_cta.max()
    if _gp.ATTN_WAVE_CAP:  # a greedy schedule never outlasts its waves at the longest CTA's time
        t_comp = min(t_comp, math.ceil(batch * heads * nq / P.sm_count) * float(t_cta.max()))
    t = P["attn.floor"] + t_comp + ragged_time(P, batch * heads * nq, q_len, bq, causal)
    if details:
        return t, {"t_compute_s": t_comp, "score_blocks": float(blocks.sum()) * batch * heads,
                   "block_q_k": (bq, bk), "critical_path_s": float(t_cta.max()), "splits": 1}
    return t


def fa2_prefill_splits(P, batch, heads, q_len, kv_len, d) -> int:
    """FlashAttention-2's prefill dispatch (mha_fwd -> set_params_splitkv): the split-KV kernel runs when
    num_splits_heuristic(batch x heads x ceil(q / 64), 2 x SMs, ceil(kv / Bn)) gives more than one split."""
    bn = _lib.fa2_split_block_n(d)
    return fa2_num_splits(batch * heads * math.ceil(q_len / FA2_SPLIT_BQ), _gp.FA2_SPLIT_SMS_X * P.sm_count,
                          math.ceil(kv_len / bn))


def _visible_blocks(q_len, kv_len, bq, bk, causal):
    """Score blocks each query block's CTA computes (causal: those at or left of the bottom-right-aligned diagonal;
    none for a query block above it, when q > kv: FA2 exits such a CTA early)."""
    nq, nk = math.ceil(q_len / bq), math.ceil(kv_len / bk)
    if not causal:
        return np.full(nq, float(nk))
    return np.maximum(np.ceil(np.minimum(kv_len - q_len + (np.arange(nq) + 1) * bq, kv_len) / bk), 0.0)


def _slot_schedule(P, works, repeats, t_blk):
    """Compute time of `repeats` copies of the CTA works (score blocks, dispatch order) under round 18's schedule: one
    CTA per SM alone when they fit, else the greedy makespan over FA2_SLOTS_PER_SM slots per SM at 1 / slots of an
    SM's rate; `attn.cta_overhead` once per wave of slots."""
    ctas = len(works) * repeats
    if ctas <= P.sm_count:
        return float(max(works)) * t_blk + P["attn.cta_overhead"]
    slots = FA2_SLOTS_PER_SM * P.sm_count
    span = _lib.greedy_makespan(tuple(float(w) for w in works), repeats, slots)
    return FA2_SLOTS_PER_SM * t_blk * span + P["attn.cta_overhead"] * math.ceil(ctas / slots)


def _score_block_time(P, bq, bk, d, dv, peak):
    soft = P.values.get("attn.soft_c", 0.0) * (128 + 128)
    return 2.0 * bq * bk * (d + dv + soft) / (peak / P.sm_count * P["attn.eff"])


def fa2_prefill_kernels_time(P, batch, heads, q_len, kv_len, d, dv, causal, peak, details=False):
    """Round 18 (gpu_params, validation/model_selection/s33_fa2_kernels.txt): FA2 prefill priced as the kernel
    FlashAttention-2 runs. Split launches: the split-KV kernel (64-row query blocks, one CTA per query block and KV
    slice) plus its combine kernel over the fp32 partial outputs. One-pass launches: 128-row query blocks, the
    uneven-length terms only past the kernel's masking steps."""
    splits = fa2_prefill_splits(P, batch, heads, q_len, kv_len, d)
    if splits > 1:
        bq, bk = FA2_SPLIT_BQ, _lib.fa2_split_block_n(d)
        per = math.ceil(math.ceil(kv_len / bk) / splits)
        vis = _visible_blocks(q_len, kv_len, bq, bk, causal)
        blocks = np.clip(vis[:, None] - (np.arange(splits) * per)[None, :], 0, per)  # (query block, KV slice)
        # grid (query blocks, splits, batch x heads): query block fastest
        t_comp = _slot_schedule(P, blocks.T.reshape(-1), batch * heads, _score_block_time(P, bq, bk, d, dv, peak))
        # FA2 stores out_accum at the rounded head dim and needs dv == d; its LSE reads and the output write are small
        # beside it, and the fitted rate absorbs a constant factor
        partial = splits * batch * heads * q_len * dv * SKV_PARTIAL_BYTES
        extra = P["attn.skv_combine"] + partial / P["attn.skv_combine_bw"]
    else:
        bq, bk = _fa2_blocks(d)
        blocks = _visible_blocks(q_len, kv_len, bq, bk, causal)
        t_comp = _slot_schedule(P, blocks, batch * heads, _score_block_time(P, bq, bk, d, dv, peak))
        masking_steps = math.ceil(bq / bk) + 1  # flash_fwd_kernel.h n_masking_steps at an uneven length
        past_masking = math.ceil(kv_len / bk) > masking_steps
        extra = ragged_time(P, batch * heads * len(blocks), q_len, bq, causal) if past_masking else 0.0
    t = P["attn.floor"] + t_comp + extra
    if details:
        return t, {"t_compute_s": t_comp, "score_blocks": float(np.sum(blocks)) * batch * heads,
                   "block_q_k": (bq, bk), "critical_path_s": float(np.max(blocks)) * _score_block_time(
                       P, bq, bk, d, dv, peak), "splits": splits}
    return t


def ragged_time(P, ctas, q_len, bq, causal):
    """FA2 causal prefill whose length is no multiple of the 128-row query block (session 8, second
    round; when a calibration carries `attn.ragged`): the kernel's uneven instantiation (Is_even_MN
    false: predicated loads, one more masking step) costs a fixed time; `attn.ragged_wave` adds the part
    measured on single-wave launches that fill more than half the SMs, in proportion to that fill."""
    if not causal or q_len % bq == 0 or "attn.ragged" not in P.values:
        return 0.0
    fill = min(1.0, max(0.0, 2.0 * ctas / P.sm_count - 1.0)) if ctas <= P.sm_count else 0.0
    return P["attn.ragged"] + P.values.get("attn.ragged_wave", 0.0) * fill


@lru_cache(maxsize=65536)
def fa2_num_splits(batch_nheads_mblocks, num_sms, num_n_blocks, max_splits=128):
    """FlashAttention-2's split-KV heuristic (flash_api.cpp, num_splits_heuristic)."""
    if batch_nheads_mblocks >= 0.8 * num_sms:
        return 1
    max_splits = min(max_splits, num_sms, num_n_blocks)
    ceildiv = lambda a, b: (a + b - 1) // b  # noqa: E731

    def eligible(s):
        return s == 1 or ceildiv(num_n_blocks, s) != ceildiv(num_n_blocks, s - 1)

    effs = []
    for s in range(1, max_splits + 1):
        if not eligible(s):
            effs.append(0.0)
            continue
        waves = batch_nheads_mblocks * s / num_sms
        effs.append(waves / math.ceil(waves))
    best = max(effs) if effs else 1.0
    for s in range(1, max_splits + 1):
        if eligible(s) and effs[s - 1] >= 0.85 * best:
            return s
    return 1


def attention_decode_time(P, batch, heads, kv_heads, q_len, kv_len, d, dv, e_kv=2.0, details=False, split_sms_x=1):
    """Decode attention: KV streamed once per KV head (GQA shared), split-KV parallelism.
    split_sms_x: the SM multiple the backend's split heuristic is called with (FlashAttention-2:
    FA2_SPLIT_SMS_X = 2; gpu_params)."""
    # FA2 packs a decode's query group into one CTA (seqlenq_ngroups_swapped); a calibration carrying
    # attn.dec_qhead_ctas (cuDNN, session 8 second round) prices one CTA per query head instead
    swapped = q_len == 1 and heads > kv_heads and not P.values.get("attn.dec_qhead_ctas")
    h_eff = kv_heads if swapped else heads
    q_eff = heads // kv_heads if swapped else q_len
    bn = 256 if d <= 64 else 128
    bnm = batch * h_eff * math.ceil(q_eff / FA2_DEC_BM)
    n_blocks = math.ceil(kv_len / bn)
    splits = fa2_num_splits(bnm, split_sms_x * P.sm_count, n_blocks)
    ctas = bnm * splits
    kv_bytes = batch * kv_heads * kv_len * (d + dv) * e_kv
    per_cta = kv_len * (d + dv) * e_kv / splits
    fast = splits > 1 or swapped
    cta_bw = P["attn.cta_bw_split"] if fast else P["attn.cta_bw_nosplit"]
    # per wave of CTAs: its stream plus, when calibrated, a CTA's fixed time (Q load, output write)
    t_stream = math.ceil(ctas / P.sm_count) * (per_cta / cta_bw + P.values.get("attn.dec_cta_lat", 0.0))
    # several CTAs per SM without split-KV stream at their own rate, when calibrated (gpu_params)
    multi = splits == 1 and ctas > P.sm_count and "attn.dec_bw_multi" in P.values
    t_bw = kv_bytes / P["attn.dec_bw_multi" if multi else "attn.dec_bw"]
    # the split-KV combine kernel loops over the splits one after another (FA2's
    # combine_attn_seqk_parallel): when calibrated, a time per split on top of its fixed cost
    combine = P["attn.combine"] + P.values.get("attn.combine_split", 0.0) * splits if splits > 1 else 0.0
    # session-9 term (cuDNN): the KV pipeline's fill, a time per DEC_FILL_ROWS-row KV block beyond the first, up
    # to DEC_FILL_BLOCKS (a measured regularity of the fit rows, all head dim 128: gpu_params), when calibrated;
    # its blocks are the fill's own, not FA2's bn above (which is 256 at head dim <= 64); none for an empty cache
    fill_blocks = math.ceil(kv_len / DEC_FILL_ROWS)
    fill = P.values.get("attn.dec_fill", 0.0) * max(0, min(fill_blocks, DEC_FILL_BLOCKS) - 1)
    t = P["attn.dec_floor"] + fill + max(t_bw, t_stream) + combine
    if details:
        return t, {"splits": splits, "ctas": ctas, "swapped_gqa": swapped, "kv_bytes": kv_bytes,
                   "t_bandwidth": t_bw, "t_cta_stream": t_stream}
    return t


def split_sms_x(backend: str, P: GpuParams) -> int:
    """SM multiple of the backend's split-KV heuristic: FlashAttention-2 calls it with 2 x SMs
    (flash_api.cpp), recorded as `attn.split_sms_x` by a calibration whose validation split
    chose it (absent: 1, the session-4 form); cuDNN's decode keeps the session-4 form."""
    return int(P.values.get("attn.split_sms_x", 1)) if backend == "fa2" else 1


def _is_decode(op: Op) -> bool:
    d = op.dims
    return int(d["q_len"]) * max(1, int(d["heads"]) // max(1, int(d["kv_heads"]))) <= FA2_DEC_BM and int(d["q_len"]) <= 16


# ---------------------------------------------------------------------------- elementwise

def _ew_kind(kind, P=None):
    """The kind whose parameters price `kind`: its own; an engine-fused kind's own when the
    calibration P measured it; else its alias (the note on the row says so)."""
    if kind in EW_KINDS:
        return kind
    if kind in _gp.FUSED_EW_KINDS and P is not None and f"ew.{kind}.mult" in P.values:
        return kind
    return EW_ALIAS.get(kind)


def ew_regime(P, kind, cols=0.0) -> str | None:
    """The parameter set pricing an elementwise kind: its own, an alias's, or (softmax rows of
    <= WARP_SOFTMAX_MAX_COLS elements, when the calibration measured them) PyTorch's
    warp-per-row softmax kernel, which keeps a row in registers instead of one CTA reducing it
    through shared memory (ATen's SoftMax.cu dispatch)."""
    k = _ew_kind(kind, P)
    if k == "softmax" and float(np.max(cols)) <= _gp.WARP_SOFTMAX_MAX_COLS and "ew.softmax_warp.mult" in P.values:
        return "softmax_warp"
    return k


def row_waves(P, k, cols, rows):
    """Wave time of a CTA-per-row reduction kernel (gpu_params, "row waves"), or 0 when the
    calibration has no wave term for kind k. Vectorised over cols and rows."""
    lat = P.values.get(f"ew.{k}.row_lat")
    if lat is None:
        return 0.0
    cols, rows = np.asarray(cols, dtype=float), np.asarray(rows, dtype=float)
    threads = np.clip(np.ceil(np.ceil(cols / 8.0) / 32.0) * 32.0, 32.0, _gp.ROW_THREADS_MAX)
    resident = np.maximum(1.0, np.floor(np.minimum(65536.0 / (_gp.ROW_REGS * threads), 2048.0 / threads)))
    iters = np.ceil(cols / (threads * 8.0))
    waves = np.ceil(rows / (P.sm_count * resident))
    return waves * (lat + P.values.get(f"ew.{k}.row_lat_iter", 0.0) * np.maximum(iters - 1.0, 0.0))


def softmax_path_waves(P, cols, rows):
    """Wave time of PyTorch's block softmax by kernel path (round 13, gpu_params): one 1,024-thread CTA per SM,
    ceil(rows / SMs) waves of ew.softmax.<path>_lat + <path>_col x cols. Vectorised over cols and rows."""
    cols, rows = np.asarray(cols, dtype=float), np.asarray(rows, dtype=float)
    path = _lib.softmax_path(cols)
    lat = np.choose(path, [P[f"ew.softmax.{p}_lat"] for p in _lib.SOFTMAX_PATHS])
    col = np.choose(path, [P[f"ew.softmax.{p}_col"] for p in _lib.SOFTMAX_PATHS])
    return np.ceil(rows / P.sm_count) * (lat + col * cols)


def rmsnorm_reread(P, cols):
    """RMSNorm's stream (and bytes) factor for its re-read of wide rows (round 13, gpu_params); 1 without the term."""
    reread = P.values.get("ew.rmsnorm.reread")
    if not reread:
        return 1.0
    c = np.maximum(np.asarray(cols, dtype=float), 1.0)
    return 1.0 + reread * np.clip(np.log2(c / P["ew.rmsnorm.reread_cols"]), 0.0, 1.0)


def ew_terms(P, kind, nbytes, tensors=1, cols=0.0, rows=0.0):
    """(regime, floor, bandwidth-bound stream time, fixed stream time, row-wave time, p) of an
    elementwise op; its time is (floor^p + max(stream + fixed, waves)^p)^(1/p). Block-per-row
    kernels (rmsnorm, softmax over long rows) pay either a per-row serial cost on top of the
    bytes (`ew.<k>.per_row`) or run in row waves (`row_waves`), whichever the calibration has."""
    k = ew_regime(P, kind, cols)
    floor = P[f"ew.{k}.floor"] * tensors
    if k in ROW_KINDS or k == "softmax_warp":
        floor = floor + P.values.get(f"ew.{k}.floor_per_col", 0.0) * np.asarray(cols, dtype=float)
    stream = P[f"ew.{k}.mult"] * np.asarray(nbytes, dtype=float) / P["ew.bw"]
    fixed = P.values.get(f"ew.{k}.per_row", 0.0) * np.asarray(rows, dtype=float)
    paths = k == "softmax" and "ew.softmax.reg_lat" in P.values  # round 13: ATen's three block kernels
    waves = softmax_path_waves(P, cols, rows) if paths else row_waves(P, k, cols, rows)
    multipass = P.values.get("ew.softmax.multipass") if k == "softmax" else None
    if multipass:  # no shared-memory row cache: the row is read from memory once per pass (gpu_library)
        again = _lib.softmax_path(cols) == 2 if paths else _lib.softmax_multipass(cols)  # register rows: read once
        f = np.where(again, multipass, 1.0)
        stream, waves = stream * f, waves * f
    if paths:  # the register and shared-memory kernels are priced by their waves, yet still read and write each byte
        # once: at a bandwidth below the calibrated one (a what-if, a transfer) their traffic binds (gpu_params)
        once = _lib.softmax_traffic(cols) * np.asarray(nbytes, dtype=float) / P["ew.bw"]
        stream = np.maximum(stream, np.where(_lib.softmax_path(cols) < 2, once, 0.0))
    if k == "rmsnorm":  # wide rows: the row's second read misses the cache (gpu_params, round 13)
        stream = stream * rmsnorm_reread(P, cols)
    odd = P.values.get("ew.copy.unaligned") if k == "copy" else None
    if odd:  # a large tensor whose size is no multiple of 4 KiB (gpu_params, round 13)
        fixed = fixed + np.where(_lib.copy_unaligned(nbytes), odd, 0.0)
    small = P.values.get("ew.embedding.small_idx") if k == "embedding" else None
    if small:  # <= 16 rows: the small-index gather walks its rows one after another (gpu_library)
        fixed = fixed + np.where(_lib.index_select_small(rows), small * np.asarray(rows, dtype=float), 0.0)
    return k, floor, stream, fixed, waves, P["ew.overlap_p"]


def ew_combine(floor, stream, fixed, waves, p):
    return (floor ** p + np.maximum(stream + fixed, waves) ** p) ** (1.0 / p)


def elementwise_time(P, kind, nbytes, tensors=1, cols=0, rows=0):
    """Vectorised over nbytes (compulsory bytes of the op); cols = row length of reductions,
    rows = their count."""
    _, floor, stream, fixed, waves, p = ew_terms(P, kind, nbytes, tensors, cols, rows)
    return ew_combine(floor, stream, fixed, waves, p)


def kernels_of(op: Op, P=None, split_k=None) -> int:
    """Kernel launches this op costs in the measured PyTorch implementation. A calibrated GEMM's
    count follows the split-K of the GEMM as priced (`split_k`: det["split_k"] of `_gemm_part`, at
    the op's own format, peak and bandwidth; split-K adds a reduction kernel). Unfused attention
    is counted kernel by kernel where its parts are priced (`_unfused_attention`)."""
    if op.kind == "attention":
        if P is not None and attention_backend(op, P) == "unfused":
            raise HardwareError(f"{op.name}: unfused attention's kernels are counted where its parts are priced "
                                f"(hwmodels.gpu._unfused_attention), not by kernels_of")
        if P is not None and not _is_decode(op) and P.values.get("attn.prefill_kernels") \
                and attention_backend(op, P) == "fa2":  # round 18: the split-KV kernel adds its combine kernel
            d = op.dims
            splits = fa2_prefill_splits(P, int(d["batch"]), int(d["heads"]), int(d["q_len"]), int(d["kv_len"]),
                                        int(d["head_dim"]))
            return 2 if splits > 1 else 1
        if P is not None and _is_decode(op):
            backend = attention_backend(op, P)
            P = for_backend(P, backend)
            d = op.dims
            _, det = attention_decode_time(P, int(d["batch"]), int(d["heads"]), int(d["kv_heads"]), int(d["q_len"]),
                                           int(d["kv_len"]), int(d["head_dim"]),
                                           int(d.get("v_head_dim", d["head_dim"])), details=True,
                                           split_sms_x=split_sms_x(backend, P))
            return 2 if det["splits"] > 1 else 1
        return 1
    if op.kind == "gemm":
        if split_k is not None:
            return 2 if split_k > 1 else 1  # split-K adds a reduction kernel
        if P is None:
            return 1
        raise HardwareError(f"{op.name}: a calibrated GEMM's kernel count follows the split-K it is priced with; "
                            f"pass split_k (details['split_k'] of the priced GEMM)")
    k = _ew_kind(op.kind, P)
    if k is None:
        return 1
    n = KERNELS[k]
    if k == "rope":
        n *= int(op.dims.get("tensors", 2))
    return n


# ---------------------------------------------------------------------------- energy

def energy_j(P, latency_s, flops=0.0, flop_class=None, stream_bytes=0.0, kv_bytes=0.0):
    """Energy of one op: static power over its time, per-byte energy of the HBM traffic it
    streams (time-equivalent bytes: compulsory x the kernel's traffic multiplier), per-FLOP
    energy of its format (attention: its own class), per-byte energy of decode attention's
    KV stream. No cap: a power-limited kernel runs longer at lower clocks for about the same
    dynamic energy, which static x (model) time + dynamic energy tracks better than cap x time."""
    e = P["energy.static"] * latency_s + P["energy.per_byte"] * stream_bytes + P["energy.per_kv_byte"] * kv_bytes
    if flop_class and flops:
        e += P[f"energy.per_flop.{flop_class}"] * flops
    return e


def power_limited_time(P, t, e_dyn):
    """Latency under the board power cap: at least the dynamic energy over the power the cap
    leaves above static power (vectorised)."""
    head = P["energy.power_cap"] - P["energy.static"]
    if head <= 0:
        return t
    return np.maximum(t, np.asarray(e_dyn, dtype=float) / head) if np.ndim(t) else max(t, float(e_dyn) / head)


# ---------------------------------------------------------------------------- per op

def _peak(hw, fmt, compute_fallback):
    if hw.supports(fmt):
        return fmt, hw.peak(fmt), ""
    if not compute_fallback:
        hw.peak(fmt)  # raises UnsupportedFormatError naming the file and the format
    used = hw.fallback_format(fmt)
    return used, hw.peak(used), f"{hw.name} has no {fmt} unit; computed at the {used} rate (explicit fallback)"


def _gemm_fmt(fmt):
    return "fp8_e4m3" if fmt.startswith("fp8") or fmt == "int8" else "bf16"


def _uncalibrated(op, hw, compute_fallback):
    from hwmodels import roofline
    c = roofline.estimate(op, hw, compute_fallback)
    note = (f"{op.name}: {hw.source or hw.name} has no analytical calibration (no `calibration:` key; "
            f"make one with `cosim calibrate`); roofline used (fallback:uncalibrated)")
    return OpCost(**{**c.__dict__, "provenance": "fallback:uncalibrated", "notes": tuple(c.notes) + (note,)})


def _fused(op, hw, compute_fallback, P):
    """Work a recipe fused into another kernel (a dequantize inside the attention GEMV):
    no launch, no floor, no traffic of its own (its host op streams the bytes), only its
    arithmetic at the unit's peak — the roofline's compute term — plus its static energy."""
    from hwmodels import roofline
    c = roofline.estimate(op, hw, compute_fallback)
    t = c.details["t_compute_s"]
    return OpCost(latency_s=t, energy_j=P["energy.static"] * t, bound="compute", utilization=1.0 if t else 0.0,
                  flops=op.flops, bytes_by_level={hw.memory[0].name: 0.0}, provenance=P.provenance,
                  notes=tuple(c.notes), details={"fused": True, "kernels": 0, "isolated_s": t})


def unfused_parts(op: Op) -> list:
    """Hugging Face eager attention as the kernels it launches (microbench.unfused_attention,
    profiled in validation/logs/h200_attn_kernels.txt): repeat_kv copies of K and V (GQA),
    Q K^T (batched GEMM), the scale, the additive mask (causal), fp32 softmax, the cast back
    to bf16, P V (batched GEMM)."""
    from workloads.ops import TensorSpec
    d = op.dims
    B, H, KV, q, kv, hd = (int(d[k]) for k in ("batch", "heads", "kv_heads", "q_len", "kv_len", "head_dim"))
    dv = int(d.get("v_head_dim", hd))
    bh, e = B * H, op.compute_fmt if op.compute_fmt in ("bf16", "fp16") else "bf16"

    def t(name, shape, fmt=e, role="activation"):
        return TensorSpec(name, shape, fmt, role)

    def ew(name, kind, rows, cols, ins, out_fmt=e):
        return Op(name, kind, {"rows": rows, "cols": cols}, ins, (t(f"{name}.out", (rows, cols), out_fmt),), e)
    parts = []
    mqa = _lib.mqa_copies(B, H, KV) if _gp.UNFUSED_MQA_VIEW else None
    if mqa is not None:  # MQA: repeat_kv is a view; matmul clones the broadcast K^T and V when B > 1
        copy_kt, copy_v = mqa
        parts += ([ew("bcast_kT", "copy", bh * kv, hd, (t("k", (B * kv, hd)),))] if copy_kt else []) \
            + ([ew("bcast_v", "copy", bh * kv, dv, (t("v", (B * kv, dv)),))] if copy_v else [])
    elif H != KV:
        parts += [ew("repeat_k", "copy", bh * kv, hd, (t("k", (B * KV * kv, hd)),)),
                  ew("repeat_v", "copy", bh * kv, dv, (t("v", (B * KV * kv, dv)),))]
    scores = t("s", (bh, q, kv))
    parts.append(Op("qk", "gemm", {"b": bh, "m": q, "n": kv, "k": hd}, (t("q", (bh, q, hd)), t("k", (bh, kv, hd), e, "kv")),
                    (scores,), e))
    parts.append(ew("scale", "mul", bh * q, kv, (scores,)))
    if d.get("causal", True) and q > 1:
        parts.append(ew("mask", "add", bh * q, kv, (scores, t("mask", (q, kv)))))
    parts.append(ew("softmax", "softmax", bh * q, kv, (scores,), out_fmt="fp32"))
    parts.append(ew("cast", "copy", bh * q, kv, (t("p32", (bh, q, kv), "fp32"),)))
    parts.append(Op("pv", "gemm", {"b": bh, "m": q, "n": dv, "k": kv}, (scores, t("v", (bh, kv, dv), e, "kv")),
                    (t("o", (bh, q, dv)),), e))
    return parts


_GATHER, _SCORE = ("repeat_k", "repeat_v", "bcast_v", "bcast_kT"), ("scale", "mask", "softmax", "cast")


def unfused_scaled(op: Op, P: GpuParams) -> list:
    """(kernel, parameters pricing it) pairs of HF eager attention. The gather and score
    passes are not the kernels the elementwise model was fitted on: repeat_kv's
    expand().reshape() is a strided gather, the score passes stream (bh*q, kv) matrices with
    a broadcast mask and fp32 output. Each carries its fitted multiplier on its *streaming*
    term (slow per byte; its launch floor is the plain kernel's)."""
    out = []
    # rows of kv_len bf16 elements that are no multiple of 16 bytes: the score GEMMs and passes
    # lose their vectorised / TMA loads (`unfused.unaligned_mult`, when calibrated; gpu_params)
    # decode (q_len 1) takes its own unaligned multiplier when calibrated (session 10, gpu_params)
    dec = int(op.dims["q_len"]) == 1
    ukey = "unfused.dec_unaligned_mult" if dec and "unfused.dec_unaligned_mult" in P.values else "unfused.unaligned_mult"
    u = P.values.get(ukey, 1.0) if int(op.dims["kv_len"]) % UNFUSED_ALIGN else 1.0
    for p in unfused_parts(op):
        f = P["unfused.gather_mult"] if p.name in _GATHER else P["unfused.score_mult"] if p.name in _SCORE else None
        if p.name == "bcast_kT":  # MQA's transposing copy, its own multiplier when calibrated
            f = P.values.get("unfused.transpose_mult", f)
        if p.name == "softmax":  # the score softmax (bf16 in, fp32 out), its own multiplier when calibrated
            f = P.values.get("unfused.softmax_mult", f)
        if f is None:
            if p.kind == "gemm" and u != 1.0:  # throughput / u: the time above the floor x u
                fmt = _gemm_fmt(p.compute_fmt)
                out.append((p, dataclasses.replace(P, values={**P.values, f"gemm.mma_eff.{fmt}": P[f"gemm.mma_eff.{fmt}"] / u,
                                                              "gemm.bw": P["gemm.bw"] / u})))
            else:
                out.append((p, P))
            continue
        key = f"ew.{ew_regime(P, p.kind, float(p.dims.get('cols', 0)))}.mult"
        out.append((p, dataclasses.replace(P, values={**P.values, key: P[key] * f * (1.0 if p.name in _GATHER else u)})))
    return out


def _unfused_attention(op, hw, compute_fallback, P, factor=1.0, notes=()):
    """Sum of the eager-attention kernels, each priced by its own calibrated model. Event-timed
    alone, the sequence pays one launch latency: every kernel after the first is issued while
    its predecessor runs and hides `launch.overlap` (floored at the in-stream gap). `factor`: the
    whole attention's measured-residual correction: its fit rows time the whole sequence, so it scales the
    sequence's time (isolated and in the workload), and the parts carry none of their own."""
    for_backend(P, "unfused", f"{hw.source or hw.name}: {op.name}: ")  # raises when not calibrated
    costs = [_estimate(p, hw, compute_fallback, Pp, 1.0) for p, Pp in unfused_scaled(op, P)]
    iso = factor * (costs[0].details["isolated_s"] + sum(
        max(c.details["isolated_s"] - P["launch.overlap"] * c.details["kernels"], P["graph.gap"] * c.details["kernels"])
        for c in costs[1:]))
    raw = sum(c.latency_s for c in costs)
    lat = factor * raw
    parts = {"static": P["energy.static"] * (lat - raw)}  # the corrected time's static energy beyond the parts'
    for c in costs:
        for k, v in c.energy_breakdown.items():
            parts[k] = parts.get(k, 0.0) + v
    return OpCost(latency_s=lat, energy_j=sum(parts.values()), bound="hbm",
                  utilization=op.flops / lat / hw.peak_flops.get("bf16", 1.0) if lat else 0.0, flops=op.flops,
                  bytes_by_level={hw.memory[0].name: sum(c.bytes_by_level.get(hw.memory[0].name, 0.0) for c in costs)},
                  energy_breakdown=parts, provenance=P.provenance,
                  notes=(f"{op.name}: unfused (Hugging Face eager) attention priced as {len(costs)} separate kernels",
                         *notes),
                  details={"attention_backend": "unfused", "isolated_s": iso,
                           **({"residual_factor": factor} if factor != 1.0 else {}),
                           "power_capped_s": factor * sum(c.details["power_capped_s"] for c in costs),
                           "kernels": sum(c.details["kernels"] for c in costs)})


def _gemm_elem_bytes(op: Op):
    """Bytes per input element (A and W, format + scales) and per output element of a GEMM."""
    d = op.dims
    b = int(d.get("b", 1))
    e_in = sum(t.nbytes for t in op.inputs) / max(1.0, b * (d["m"] * d["k"] + d["n"] * d["k"]))
    e_out = sum(t.nbytes for t in op.outputs) / max(1.0, b * d["m"] * d["n"])
    return b, e_in, e_out


def _gemm_part(op, hw, P, compute_fallback, notes):
    """(isolated time, details, bound, peak, flop class) of a GEMM."""
    fmt, peak, note = _peak(hw, op.compute_fmt, compute_fallback)
    gf = _gemm_fmt(fmt)
    if gf != fmt:  # int8 (and any fp8 other than e4m3) is priced as the calibrated fp8 e4m3 class (1-byte operands)
        dispatch = (" and fp8's measured dispatch: no stream-K (gemm.fp8_no_stream_k)"
                    if gf.startswith("fp8") and P.values.get("gemm.stream_k") and P.values.get("gemm.fp8_no_stream_k")
                    else "")
        notes.append(f"{op.name}: {fmt} GEMM uses the calibrated {gf} tensor-core efficiency{dispatch}; {fmt} itself "
                     f"is not measured")
    # a weight stored in another format than the kernel computes in (int4_g128, mxfp4, ... on a bf16 GEMM) is priced
    # as the calibrated gf kernel streaming that format's bytes: no dequantizing GEMM (Marlin, AWQ/GPTQ kernels) is
    # measured, so say so rather than let the calibrated label stand for it
    stored = sorted({t.fmt for t in op.inputs if t.role == "weight" and t.fmt not in (fmt, gf)})
    if stored:
        notes.append(f"{op.name}: weight-only {'/'.join(stored)} GEMM priced as the calibrated {gf} kernel with the "
                     f"stored format's bytes; no dequantizing {'/'.join(stored)} kernel is measured")
    d = op.dims
    b, e_in, e_out = _gemm_elem_bytes(op)
    t, det = gemm_time(P, [d["m"]], [d["n"]], [d["k"]], [b], peak, e_in, e_out, gf, details=True)
    det = {"tile_bm_bn": tuple(int(x) for x in det["tile"][0][:2]), "waves": float(det["tile"][0][2]),
           "split_k": int(det["tile"][0][3]), "stream_k": bool(det["tile"][0][4]), "t_compute_s": float(det["t_compute"][0]),
           "t_memory_s": float(det["t_memory"][0])}
    bound = "compute" if det["t_compute_s"] >= det["t_memory_s"] else "hbm"
    if note:
        notes.append(f"{op.name}: {note}")
    return float(t[0]), det, bound, peak, gf


def _reads_v(stored) -> bool | None:
    """Whether a decode attention reads a value cache besides its keys, from its stored operands' names: a `v` /
    `v_cache...` operand is one; named keys without one are a shared latent (MLA reads it once, whatever pieces a
    recipe splits it into: a review finding, session 19, where MiKV / ZipCache pieces made MLA read its latent twice).
    None when no operand is named either way (the caller falls back to counting operands, with a note)."""
    names = [t.name for t in stored[1:]]
    if any(n == "v" or n.startswith("v_cache") for n in names):
        return True
    if any(n == "k" or n.startswith("k_cache") for n in names):
        return False
    return None


def _attention_part(op, hw, P, backend, compute_fallback, notes):
    """(isolated time, details, bound, peak, KV bytes) of a fused attention on P's backend."""
    fmt, peak, note = _peak(hw, op.compute_fmt, compute_fallback)
    d = op.dims
    dv = int(d.get("v_head_dim", d["head_dim"]))
    if _is_decode(op):
        # per-head scale tensors (`<cache>.scale`) are no cache of their own
        stored = [t for t in op.inputs if not t.name.endswith(".scale")]
        reads_v = _reads_v(stored)
        if reads_v is None:  # a trace from elsewhere: a third stored operand is taken as the V cache, and said so
            reads_v = len(stored) > 2
            how = "the third operand read as V" if reads_v else "one cache operand read (no V)"
            notes.append(f"{op.name}: no k/v-named cache operand; {how} by operand count")
        dv_read = dv if reads_v else 0
        # bytes per cached element: every cache piece the kernel reads (codes, scales, residual windows, outliers;
        # a review finding, session 19: the first piece alone priced MiKV's bf16 "hi" part as the whole cache)
        n_el = int(d["batch"]) * int(d["kv_heads"]) * int(d["kv_len"]) * (int(d["head_dim"]) + dv_read)
        e_kv = sum(t.nbytes for t in op.inputs[1:]) / max(1, n_el)
        t, det = attention_decode_time(P, int(d["batch"]), int(d["heads"]), int(d["kv_heads"]), int(d["q_len"]),
                                       int(d["kv_len"]), int(d["head_dim"]), dv_read,
                                       e_kv, details=True, split_sms_x=split_sms_x(backend, P))
        bound, kv_bytes = "hbm", det["kv_bytes"]
        kv_fmts = sorted({t.fmt for t in stored[1:] if t.role == "kv" and t.fmt not in ("bf16", "fp16")})
        if kv_fmts:  # the calibrated decode kernels read a bf16 cache; a quantized-KV kernel is not measured
            notes.append(f"{op.name}: {'/'.join(kv_fmts)} KV cache priced as the calibrated {backend} bf16 decode "
                         f"kernel reading the stored format's bytes; no {'/'.join(kv_fmts)}-KV attention kernel is "
                         f"measured")
        if "attn.dec_fill" in P.values and int(d["head_dim"]) != DEC_FILL_VALIDATED_HEAD_DIM:
            notes.append(f"{op.name}: {backend} decode KV pipeline fill (dec_fill) priced per {DEC_FILL_ROWS}-row "
                         f"KV block at head dim {int(d['head_dim'])}; validated at head dim "
                         f"{DEC_FILL_VALIDATED_HEAD_DIM} only (every fit and held-out row)")
    else:
        window = int(d.get("window", 0) or 0)
        if window:
            notes.append(f"{op.name}: sliding window modelled by its attended pairs only")
        if backend == "fa2" and P.values.get("attn.prefill_kernels") and int(d["head_dim"]) not in (64, 128):
            notes.append(f"{op.name}: FA2 prefill priced as round 18's kernels (two CTAs per SM, 128-row one-pass "
                         f"blocks, the masking steps) at head dim {int(d['head_dim'])}; validated at head dims 64 and "
                         f"128 only (FA2's larger head dims run other blocks, one CTA per SM at 192 and above)")
        t, det = attention_prefill_time(P, int(d["batch"]), int(d["heads"]), int(d["q_len"]), int(d["kv_len"]),
                                        int(d["head_dim"]), dv, bool(d.get("causal", True)), peak, details=True,
                                        blocks=ATTN_BLOCKS.get(backend))
        if window:
            full = attended_pairs({**d, "window": 0})
            t = P["attn.floor"] + (t - P["attn.floor"]) * attended_pairs(d) / max(full, 1.0)
        bound, kv_bytes = "compute", 0.0
    if note:
        notes.append(f"{op.name}: {note}")
    return t, det, bound, peak, kv_bytes


def _elementwise_part(op, hw, P, notes):
    """(isolated time, details, bound, peak, streamed bytes) of an elementwise / row kernel."""
    k = _ew_kind(op.kind, P)
    hbm = op.bytes
    if k != op.kind:
        notes.append(f"{op.name}: {op.kind} not measured; modelled with the {k} kernel's parameters")
    tensors = int(op.dims.get("tensors", 2)) if k == "rope" else 1
    cols, rows = float(op.dims.get("cols", 0)), float(op.dims.get("rows", 0))
    k, floor, stream, fixed, waves, p = ew_terms(P, op.kind, hbm, tensors, cols, rows)
    t = float(ew_combine(floor, stream, fixed, waves, p))
    bound = "hbm" if stream > max(floor, fixed, waves) else "latency"
    det = {"regime": "softmax warp-per-row kernel (rows <= 1024 elements)"} if k == "softmax_warp" else {}
    traffic = P[f"ew.{k}.mult"]
    if k == "softmax" and "ew.softmax.reg_lat" in P.values:
        # round 13: with per-path waves the fitted stream multiplier is a latency fit (~0.01: the register and
        # shared-memory kernels' waves bind), not bytes; energy counts what the kernel moves (gpu_library)
        traffic = float(_lib.softmax_traffic(cols))
    if k == "rmsnorm":  # the re-read of a wide row is moved bytes too
        traffic = traffic * float(rmsnorm_reread(P, cols))
    return t, det, bound, hw.peak_flops.get("fp32", 0.0), traffic * hbm


def in_stream_time(P: GpuParams, t, kernels):
    """An op's time inside a stream or CUDA graph from its power-capped isolated time `t` (s; scalars or arrays):
    `launch.stream_speedup` faster (round 14; 0 where the calibration has none), less the launch latency each of its
    `kernels` hides behind its predecessor, never below the in-graph tiny-kernel time."""
    speedup = P.values.get("launch.stream_speedup", 0.0)
    return np.maximum(t * (1.0 - speedup) - P["launch.overlap"] * kernels, P["graph.gap"] * kernels)


def _in_workload(op, hw, P, t, det, bound, peak_used, flop_class, stream_bytes, kv_bytes, notes):
    """The OpCost of an op whose isolated time is `t`. `t` is the op launched alone in a short
    burst (what the microbenchmarks time: ~0.1 s of repeats, clocks at boost). Inside a
    workload two things change:
    1. the board's power limit: an op whose dynamic energy over its time would push the
       power above the cap runs at lower clocks until it does not (big GEMMs, long prefills);
    2. inside a stream or a CUDA graph each kernel hides its launch latency behind its
       predecessor, and (round 14, where calibrated) runs a fraction faster (`in_stream_time`)."""
    flops = op.flops
    kernels = kernels_of(op, P, det.get("split_k") if op.kind == "gemm" else None)
    isolated = t
    e_dyn = energy_j(P, 0.0, flops, flop_class, stream_bytes, kv_bytes)
    t_cap = power_limited_time(P, t, e_dyn)
    if t_cap > t:
        det["power_limited"] = True
        bound = "power"
    t = float(in_stream_time(P, t_cap, kernels))
    energy = energy_j(P, t, flops, flop_class, stream_bytes, kv_bytes)
    util = flops / t / peak_used if (peak_used and t > 0) else 0.0
    det.update({"kernels": kernels, "isolated_s": isolated, "power_capped_s": t_cap})
    parts = {"static": P["energy.static"] * t, "hbm": P["energy.per_byte"] * stream_bytes,
             "kv_stream": P["energy.per_kv_byte"] * kv_bytes}
    if flop_class and flops:
        parts[f"flops_{flop_class}"] = P[f"energy.per_flop.{flop_class}"] * flops
    return OpCost(latency_s=t, energy_j=energy, bound=bound, utilization=util, flops=flops,
                  bytes_by_level={hw.memory[0].name: op.bytes}, energy_breakdown=parts,
                  provenance=P.provenance, notes=tuple(notes), details=det)


def residual_class(op: Op) -> str | None:
    """The measurement class an op's kernel belongs to (cosim.calibrate.dataset's names: gemm_bf16, gemm_fp8,
    attention_<prefill|decode>[_<requested backend>], elementwise), None for kinds the model does not price."""
    if op.kind == "gemm":
        return "gemm_fp8" if _gemm_fmt(op.compute_fmt).startswith("fp8") else "gemm_bf16"
    if op.kind == "attention":
        requested = op.dims.get("backend") or "default"
        phase = "decode" if int(op.dims["q_len"]) == 1 else "prefill"  # the microbenchmark's decode is q_len 1
        return f"attention_{phase}" + ("" if requested == "default" else f"_{requested}")
    return "elementwise" if _ew_kind(op.kind) is not None else None


def stored_formats(op: Op) -> tuple:
    """The formats a measured-residual lookup compares with its class's fit rows: a GEMM's compute format and every
    stored weight or KV operand's, scale tensors (`<tensor>.scale`, fp32 per head or group) aside."""
    stored = tuple(t.fmt for t in op.inputs if t.role in ("weight", "kv") and not t.name.endswith(".scale"))
    return ((op.compute_fmt,) if op.kind == "gemm" else ()) + stored


def residual_correction(op: Op, P: GpuParams):
    """(time factor, note or None) of the calibration's measured-residual correction for one op
    (hwmodels.gpu_residuals): (1.0, None) when the calibration has none or the op's class is not corrected."""
    if P.residuals is None:
        return 1.0, None
    cls = residual_class(op)
    if cls is None or cls not in P.residuals.rules:
        return 1.0, None
    c = P.residuals.correction(cls, op.kind, op.dims, stored_formats(op))
    if isinstance(c, str):
        return 1.0, f"{op.name}: analytical price without the measured-residual correction: {c}"
    return c.factor, None


def estimate(op: Op, hw: HardwareSpec, compute_fallback: bool = False, params: GpuParams | None = None) -> OpCost:
    """Cost of one instance of `op`; `params` overrides the spec's calibration (the fitter
    evaluates trial parameters through this same code path)."""
    P = params if params is not None else params_for(hw)
    if P is None:
        return _uncalibrated(op, hw, compute_fallback)
    return _estimate(op, hw, compute_fallback, P)


def _estimate(op: Op, hw: HardwareSpec, compute_fallback: bool, P: GpuParams, factor: float | None = None) -> OpCost:
    """estimate() with P given. `factor`: the isolated-time factor to use instead of the op's own measured-residual
    correction (1.0 prices the analytical model alone: an unfused attention's parts, the variant terms)."""
    if op.dims.get("fused"):
        return _fused(op, hw, compute_fallback, P)
    notes = []
    if factor is None:
        factor, why_not = residual_correction(op, P)
        notes += [why_not] if why_not else []
    stream_bytes, kv_bytes = op.bytes, 0.0
    if op.kind == "gemm":
        t, det, bound, peak_used, flop_class = _gemm_part(op, hw, P, compute_fallback, notes)
    elif op.kind == "attention":
        backend = attention_backend(op, P)
        if backend == "unfused":
            return _unfused_attention(op, hw, compute_fallback, P, factor, notes)
        P = for_backend(P, backend, f"{hw.source or hw.name}: {op.name}: ")
        t, det, bound, peak_used, kv_bytes = _attention_part(op, hw, P, backend, compute_fallback, notes)
        stream_bytes = max(0.0, op.bytes - kv_bytes)
        flop_class = "attention"
        det["attention_backend"] = backend
    elif _ew_kind(op.kind) is None:
        from hwmodels import roofline
        c = roofline.estimate(op, hw, compute_fallback)
        return OpCost(**{**c.__dict__, "provenance": f"fallback:roofline (no analytical model for {op.kind})",
                         "notes": tuple(c.notes) + (f"{op.name}: kind {op.kind} has no analytical model; roofline used",)})
    else:
        t, det, bound, peak_used, stream_bytes = _elementwise_part(op, hw, P, notes)
        flop_class = None
    if factor != 1.0:
        det["residual_factor"] = factor
        t *= factor
    return _in_workload(op, hw, P, t, det, bound, peak_used, flop_class, stream_bytes, kv_bytes, notes)


def estimate_trace(ops, hw: HardwareSpec, compute_fallback: bool = False, params: GpuParams | None = None):
    ops = list(ops)
    P = params if params is not None else params_for(hw)
    if P is None:
        costs = [_uncalibrated(op, hw, compute_fallback) for op in ops]
        return costs, (f"level=analytical: {hw.name} has no calibration; every op used the roofline "
                       f"(fallback:uncalibrated)",)
    costs = [estimate(op, hw, compute_fallback, P) for op in ops]
    notes = tuple(dict.fromkeys(n for c in costs for n in c.notes))
    return costs, notes


def require_calibrated(hw: HardwareSpec) -> GpuParams:
    P = params_for(hw)
    if P is None:
        raise HardwareError(f"{hw.source or hw.name}: analytical: missing; expected a calibration file "
                            f"(hardware YAML key `calibration:`), made by `cosim calibrate`")
    return P


# ---------------------------------------------------------------------------- many variants

def _op_terms(op: Op, hw: HardwareSpec, P: GpuParams, compute_fallback: bool):
    """Split one op's isolated latency into the parts that scale with 1/peak (c) and with
    1/bandwidth (b) at the base spec (attention, elementwise: exact, because their block and
    split choices do not depend on the peak and the bandwidth parameters all scale by the same
    ratio). A GEMM is re-priced per variant instead (`_gemm_variants`): with split-K's workspace
    reduction priced (bandwidth-bound) against the slices' compute (peak-bound), the library's
    tile and split choice depends on the bandwidth-to-peak ratio. Returns (form, terms, fmt)
    with form in gemm | prefill | decode | ew."""
    d = op.dims
    if op.kind == "gemm":
        fmt, peak, _ = _peak(hw, op.compute_fmt, compute_fallback)
        b, e_in, e_out = _gemm_elem_bytes(op)
        return "gemm", (P, d["m"], d["n"], d["k"], b, peak, e_in, e_out, _gemm_fmt(fmt)), fmt
    if op.kind == "attention":
        fmt, peak, _ = _peak(hw, op.compute_fmt, compute_fallback)
        t1 = _estimate(op, hw, compute_fallback, P, 1.0).details["isolated_s"]
        if _is_decode(op):
            # floor + max(KV stream, CTA stream) + combine: both streams scale with 1/bandwidth
            t2 = _estimate(op, hw, compute_fallback, _double_bw(P), 1.0).details["isolated_s"]
            slope = 2.0 * (t1 - t2)
            return "decode", (t1 - slope, slope), fmt
        # prefill: t - floor is affine in 1/peak; two evaluations give slope and intercept
        hw2 = HardwareSpec(**{**hw.__dict__, "peak_flops": {k: 2 * v for k, v in hw.peak_flops.items()}})
        t2 = _estimate(op, hw2, compute_fallback, P, 1.0).details["isolated_s"]
        slope = 2.0 * (t1 - t2)
        return "prefill", (t1 - slope, slope), fmt
    tensors = int(d.get("tensors", 2)) if _ew_kind(op.kind, P) == "rope" else 1
    _, floor, stream, fixed, waves, p = ew_terms(P, op.kind, op.bytes, tensors, float(d.get("cols", 0)),
                                                 float(d.get("rows", 0)))
    return "ew", (float(floor), float(stream), float(fixed), float(waves), p), None


def _double_bw(P: GpuParams) -> GpuParams:
    return GpuParams(values={**P.values, **{k: 2 * P.values[k] for k in _bandwidth_keys(P.values)}},
                     sm_count=P.sm_count, l2_bytes=P.l2_bytes, provenance=P.provenance,
                     attention_default=P.attention_default)


def _expand_unfused(ops, base: HardwareSpec, P: GpuParams):
    """(op, parameters, factor on its isolated time, factor on its workload time) of every op: an
    attention op on the unfused backend becomes its separate kernels, each scaled after its launch
    overlap by the whole op's measured-residual factor (as `_unfused_attention` scales the sequence);
    every other op is itself, its own factor on its isolated time."""
    for op in ops:
        factor = residual_correction(op, P)[0] if not op.dims.get("fused") else 1.0
        if op.kind == "attention" and not op.dims.get("fused") and attention_backend(op, P) == "unfused":
            for_backend(P, "unfused", f"{base.source or base.name}: {op.name}: ")  # raises when not calibrated
            for part, Pp in unfused_scaled(op, P):
                yield dataclasses.replace(part, repeat=op.repeat), Pp, 1.0, factor
        else:
            yield op, P, factor, 1.0


def _variant_axes(base: HardwareSpec, overrides: dict):
    """(variants, main-memory bandwidths, clock ratios, {fmt: peaks}) of a variant table."""
    main = base.memory[0].name
    n = len(next(iter(overrides.values()))) if overrides else 1
    bw = np.full(n, base.main_memory.bandwidth_Bps)
    clock = np.ones(n)
    peaks = {}
    for key, val in overrides.items():
        parts = key.split(".")
        if key == f"memory.{main}.bandwidth":
            bw = np.asarray(val, dtype=float)
        elif key == "clock":
            clock = np.asarray(val, dtype=float) / base.clock_hz
        elif parts[0] == "compute" and len(parts) == 2 and parts[1] in base.peak_flops:
            peaks[parts[1]] = np.asarray(val, dtype=float)
        elif parts[0] == "memory" or parts[0] == "energy":
            # capacities, inner-level bandwidths and energies do not enter the calibrated
            # model (as in estimate()); the roofline-answered kinds below still see them
            continue
        else:
            raise KeyError(f"override {key!r}: the analytical model varies clock, compute.<fmt>, "
                           f"memory.<level>.<field> and energy.* (not {key!r})")
    return n, bw, clock, peaks


def _gemm_variants(terms, c, b):
    """(isolated time, kernels) of one GEMM over the variants: priced by `gemm_time` at each
    variant's peak (base / c) and GEMM bandwidth (base / b), so tile and split-K are chosen per
    variant exactly as `estimate` chooses them on the variant spec; split-K adds a kernel."""
    P, m, n, k, nb, peak, e_in, e_out, gf = terms
    c, b = np.broadcast_arrays(np.asarray(c, dtype=float), np.asarray(b, dtype=float))
    ones = np.ones(b.shape)
    t, det = gemm_time(P, m * ones, n * ones, k * ones, nb * ones, peak / c, e_in, e_out, gf, details=True,
                       bw=P["gemm.bw"] / b, tiles=sweep_tiles(P, m, n, k, nb, peak, gf))
    return t, np.where(det["tile"][..., 3] > 1, 2, 1)


def _variant_time(form, terms, c, b):
    """Isolated time of one op over the variants from its `_op_terms`: c multiplies the
    compute-bound terms (1/peak), b the bandwidth-bound ones (1/bandwidth)."""
    if form == "gemm":
        return _gemm_variants(terms, c, b)[0]
    if form == "prefill":
        floor, slope = terms
        return floor + slope * c * np.ones_like(b)
    if form == "decode":
        floor, slope = terms
        return floor + slope * b
    floor, stream, fixed, waves, p = terms  # per-row cost and row waves do not scale with bandwidth
    return ew_combine(floor, stream * b, fixed, waves, p)


def evaluate_variants(ops, base: HardwareSpec, overrides: dict, compute_fallback: bool = False) -> dict:
    """Totals of one trace over many variants of a calibrated GPU, vectorised:
    {"total_latency_s": (V,), "total_energy_j": (V,)}, equal (to rounding) to calling
    `estimate_trace` on each variant spec. Varies ``compute.<fmt>`` (peaks) and
    ``clock`` (scales every peak), ``memory.<main level>.bandwidth`` (the fitted bandwidths
    scale with it). Energies, capacities and inner-level bandwidths are calibrated or unused
    by this model, and so do not move it — exactly as in `estimate`."""
    from hwmodels import roofline

    ops = list(ops)
    P = params_for(base)
    if P is None:  # uncalibrated: the roofline answers, as estimate() does
        r = roofline.evaluate_tables(roofline.op_table(ops, base, compute_fallback),
                                     roofline.hw_table_variants(base, overrides))
        return r
    n, bw, clock, peaks = _variant_axes(base, overrides)
    b = base.main_memory.bandwidth_Bps / bw  # time multiplier of bandwidth-bound terms
    lat = np.zeros(n)
    en = np.zeros(n)
    head = P["energy.power_cap"] - P["energy.static"]
    rest, fused_rest = [], []
    P0 = P
    for op, P, factor, after in _expand_unfused(ops, base, P0):
        if op.dims.get("fused"):
            fused_rest.append(op)
            continue
        if op.kind not in ("gemm", "attention") and _ew_kind(op.kind) is None:
            rest.append(op)
            continue
        form, terms, fmt = _op_terms(op, base, P, compute_fallback)
        c = (base.peak_flops[fmt] / peaks[fmt] if fmt in peaks else 1.0) / clock
        c0 = _estimate(op, base, compute_fallback, P, factor)  # energy terms do not vary
        e_dyn = c0.energy_j - P["energy.static"] * c0.latency_s
        if form == "gemm":  # a GEMM's split-K (and so its kernel count) is chosen per variant
            t, kernels = _gemm_variants(terms, c, b)
        else:
            t, kernels = _variant_time(form, terms, c, b), c0.details["kernels"]
        t = t * factor  # the measured-residual correction, as estimate() applies it on every variant spec
        if head > 0:
            t = np.maximum(t, e_dyn / head)
        t = in_stream_time(P, t, kernels) * after
        lat += t * op.repeat
        en += (P["energy.static"] * t + e_dyn) * op.repeat
    P = P0  # (the loop above rebinds P per op)
    for op in fused_rest:  # compute-only, at the (possibly varied) peak of its format
        c0 = _fused(op, base, compute_fallback, P)
        fmt = roofline.compute_format_for(op, base, compute_fallback)[0]
        c = (base.peak_flops[fmt] / peaks[fmt] if fmt in peaks else 1.0) / clock
        t = c0.latency_s * c
        lat += t * op.repeat
        en += P["energy.static"] * t * op.repeat
    if rest:  # kinds the analytical model answers with the roofline
        r = roofline.evaluate_tables(roofline.op_table(rest, base, compute_fallback),
                                     roofline.hw_table_variants(base, {k: v for k, v in overrides.items()
                                                                       if not k.endswith(".capacity")} or {}))
        lat, en = lat + r["total_latency_s"], en + r["total_energy_j"]
    return {"total_latency_s": lat, "total_energy_j": en}
