"""Round 18 candidate (session 26), FA2-pinned prefill on the H100: price the kernel FlashAttention-2 actually runs.
Fitted on the train part of the H100's fit rows and scored once on the validation part carved from them
(dataset.carve_validation, crc32 mod 5). No held-out suite is read.

Why. Three device records of fit shapes only (no held-out shape was profiled) say what the committed form
(hwmodels.gpu.attention_prefill_time: one one-pass kernel for every prefill, plus `attn.ragged` and
`attn.ragged_wave` on every causal launch of uneven length) gets wrong:
- the split-KV kernel (validation/diagnostics/h100_kernel_profile.txt, session 25): where FA2's rule gives
  splits > 1 (kernel_profile_compare.fa2_prefill_splits) PyTorch runs flash_fwd_splitkv_kernel (64-row query
  blocks, Bn-key blocks, one CTA per query block and KV slice) and then the combine kernel, which reads the
  splits x batch x heads x q x d fp32 partial outputs: 3.6 us at 1.3 MB of partials, 8.7 - 10.1 us at 8 - 20 MB
  (19 shapes; the lead read those kernel times before writing this, disclosed). s30 priced the combine at the decode
  constants (about 1 us) and was weak evidence;
- the uneven-length cost (validation/diagnostics/h100_fa2_uneven_probe.txt, session 26): inside the one-pass kernel
  and only after the L2 flush; the lead split the probe's uneven causal one-pass shapes by whether the longest CTA
  iterates more KV blocks than the uneven kernel's masking steps (ceil(Bq / Bk) + 1, flash_fwd_kernel.h
  n_masking_steps) before writing this (disclosed): more: 8.2 / 12.0 us (d 64 multi-wave / single-wave), 10.6 / 15.1
  us (d 128); not more: 3.0 us (d 64, 10 shapes), 6.1 (d 128, 1); even lengths, non-causal launches and the split
  kernel 0.3 - 1.8 us;
- the CTA schedule: s32's greedy dispatch onto two slots per SM fits the one-pass kernels' device times (3.0 - 3.2 %
  median) far better than the work-over-SMs form, though on the op rows alone it lost to A (s32).
The lead also fitted s32's G with the uneven terms restricted to one-pass launches on the train rows only (train
figures only, no validation row) before writing this; its largest train misses were one-query-block d 64 launches
(priced +80 - 90 % by the uneven terms) and split-KV launches (-40 to -48 %): this candidate set answers both.

Candidates (each re-fits the FA2 prefill group from fit.INITIAL, as s27 / s30 - s32 did; `attn.ragged`,
`attn.ragged_wave` and the candidate terms restart from their start values in every candidate):
  A    the current form (round 14);
  M    the uneven-length terms only where the one-pass kernel runs (splits == 1) and its longest CTA iterates more
       KV blocks than the masking steps (ceil(kv / Bk) > ceil(Bq / Bk) + 1); no parameter added;
  MS   M, and split-KV launches priced as the split kernel: CTAs batch x heads x ceil(q / 64) x splits, each CTA's
       score blocks (64 x Bn, causal: visible) inside its KV slice, the one-pass kernel's per-block time (by area),
       CTA overhead, tail and wave cap (the committed form's schedule applied to those CTAs), no uneven terms; plus
       the combine kernel, `attn.skv_combine` + partial bytes (splits x batch x heads x q x dv x 4) /
       `attn.skv_combine_bw` (two fitted parameters);
  GMS  MS with s32's schedule for both kernels: the greedy makespan of the CTAs' score blocks in dispatch order over
       two slots per SM (one CTA per SM alone when CTAs <= SMs) + `attn.cta_overhead` x waves; `attn.tail` has no
       effect and is counted out.
The candidates' code lives in this script (`candidate_code` patches hwmodels.gpu.attention_prefill_time and
cosim.calibrate.fit._prefill_optional for this process only); it enters the model only if the rule chooses it. The
H200 is not scored (no probe or profile there; its form stays).

Disclosed: these validation rows were scored before by s27 / s28, s30, s31 and s32 (this is their sixth scoring).

Rule: RULE_round7.md (common.choose_resolved), as s27 / s30 - s32: the target statistic is the median where only the
median misses the goal on the current form's validation figures, else the p90; a candidate is eligible only if its
gain on that statistic is resolved (95 % paired-bootstrap interval of candidate - current below 0); among the current
form and the eligible, the lowest target statistic, one with fewer parameters within 1 point (median) / 2 points (p90)
preferred.

Run from the repository root: PYTHONPATH=. python validation/model_selection/s33_fa2_kernels.py
Writes validation/model_selection/s33_fa2_kernels.txt.
"""
import math
from pathlib import Path

import numpy as np

from hwmodels import gpu
from hwmodels import gpu_params as _gp
from hwmodels.gpu_library import fa2_split_block_n
from hwmodels.gpu_params import FA2_SPLIT_BQ, SKV_PARTIAL_BYTES
from validation.model_selection import s27_fa2_waves as s27
from validation.model_selection.common import prefill_candidate, r17_h100_terms, rows_of, run_one_gpu, score_fa2_prefill

OUT = Path("validation/model_selection/s33_fa2_kernels.txt")  # relative: no machine path in the record
M_FLAG, S_FLAG, G_FLAG = "attn.ragged_masking_only", "attn.skv_kernel", "attn.greedy_slots"
ORIGINAL = gpu.attention_prefill_time
ORIGINAL_RAGGED = gpu.ragged_time
# the pieces the candidate shared with what round 18 put in the model are the model's own (hwmodels.gpu: the
# dispatch rule, the visible blocks, the score-block time, the greedy two-slot schedule); the record regenerates
splits_of = gpu.fa2_prefill_splits


def _schedule(P, works_blocks, repeats, t_blk, greedy):
    """Compute time of `repeats` copies of the CTA works (score blocks, dispatch order): the committed form (work
    over SMs + tail x the longest CTA, capped at its waves) or s32's greedy two-slot form."""
    works = np.asarray(works_blocks, dtype=float)
    ctas = works.size * repeats
    if greedy:
        return gpu._slot_schedule(P, works, repeats, t_blk)
    t_cta = works * t_blk + P["attn.cta_overhead"]
    t = repeats * float(t_cta.sum()) / P.sm_count + P["attn.tail"] * float(t_cta.max())
    if _gp.ATTN_WAVE_CAP:
        t = min(t, math.ceil(ctas / P.sm_count) * float(t_cta.max()))
    return t


def split_kernel_time(P, batch, heads, q_len, kv_len, d, dv, causal, peak, splits, greedy):
    bq, bk = FA2_SPLIT_BQ, fa2_split_block_n(d)
    per = math.ceil(math.ceil(kv_len / bk) / splits)
    vis = gpu._visible_blocks(q_len, kv_len, bq, bk, causal)
    blocks = np.clip(vis[:, None] - (np.arange(splits) * per)[None, :], 0, per)  # (query block, slice)
    # dispatch order: grid (query blocks, splits, batch x heads), query block fastest
    t_comp = _schedule(P, blocks.T.reshape(-1), batch * heads, gpu._score_block_time(P, bq, bk, d, dv, peak),
                       greedy)
    combine = P["attn.skv_combine"] + splits * batch * heads * q_len * dv * SKV_PARTIAL_BYTES / P["attn.skv_combine_bw"]
    return P["attn.floor"] + t_comp + combine


def one_pass_greedy_time(P, batch, heads, q_len, kv_len, d, dv, causal, peak):
    bq, bk = gpu._fa2_blocks(d)
    vis = gpu._visible_blocks(q_len, kv_len, bq, bk, causal)
    t_comp = gpu._slot_schedule(P, vis, batch * heads, gpu._score_block_time(P, bq, bk, d, dv, peak))
    return P["attn.floor"] + t_comp + gpu.ragged_time(P, batch * heads * len(vis), q_len, bq, causal)


def _no_ragged(P, ctas, q_len, bq, causal):
    return 0.0


def prefill_time_candidate(P, batch, heads, q_len, kv_len, d, dv, causal, peak, details=False, blocks=None):
    """hwmodels.gpu.attention_prefill_time (as committed), or the candidate's FA2 form where P carries its flags
    (blocks None: FA2; cuDNN passes its own blocks and keeps the committed form)."""
    v = P.values
    if blocks is not None or not (v.get(M_FLAG) or v.get(S_FLAG) or v.get(G_FLAG)):
        return ORIGINAL(P, batch, heads, q_len, kv_len, d, dv, causal, peak, details=details, blocks=blocks)
    t, splits = _candidate_time(P, batch, heads, q_len, kv_len, d, dv, causal, peak)
    if details:  # estimate() asks for details: the time is the candidate's, the block figures the committed ones
        _, det = ORIGINAL(P, batch, heads, q_len, kv_len, d, dv, causal, peak, details=True)
        return t, {**det, "splits": splits}
    return t


def _candidate_time(P, batch, heads, q_len, kv_len, d, dv, causal, peak):
    v = P.values
    splits = splits_of(P, batch, heads, q_len, kv_len, d)
    greedy = bool(v.get(G_FLAG))
    if v.get(S_FLAG) and splits > 1:
        return split_kernel_time(P, batch, heads, q_len, kv_len, d, dv, causal, peak, splits, greedy), splits
    bq, bk = gpu._fa2_blocks(d)
    masking_steps = math.ceil(bq / bk) + 1
    no_ragged = v.get(M_FLAG) and (splits > 1 or math.ceil(kv_len / bk) <= masking_steps)
    if no_ragged:
        gpu.ragged_time = _no_ragged
    try:
        if greedy:
            return one_pass_greedy_time(P, batch, heads, q_len, kv_len, d, dv, causal, peak), splits
        return ORIGINAL(P, batch, heads, q_len, kv_len, d, dv, causal, peak), splits
    finally:
        gpu.ragged_time = ORIGINAL_RAGGED


def _set_terms(backend, terms, values):
    """The candidate's flags (recorded, not fitted) and, with the split-KV kernel, its two combine parameters."""
    if backend != "fa2":
        return []
    for term, flag in (("masking_only", M_FLAG), ("skv_kernel", S_FLAG), ("greedy", G_FLAG)):
        if terms.get(term):
            values[flag] = 1.0
    if not terms.get("skv_kernel"):
        return []
    values.setdefault("attn.skv_combine", 3e-6)
    values.setdefault("attn.skv_combine_bw", 1.5e12)
    return ["attn.skv_combine", "attn.skv_combine_bw"]


def candidate_code():
    """The candidate's code for this process: the prefill time above; its flags recorded and its combine parameters
    fitted where the terms switch them on."""
    return prefill_candidate(prefill_time_candidate, _set_terms)


PREFILL = (({}, "A current form (round 14)", 0),
           ({"masking_only": True}, "M uneven terms past the masking steps, one-pass", 0),
           ({"masking_only": True, "skv_kernel": True}, "MS = M + the split-KV kernel and its combine", 0),
           ({"masking_only": True, "skv_kernel": True, "greedy": True}, "GMS = MS + greedy two-slot schedule", -1))
KEYS = (M_FLAG, S_FLAG, G_FLAG, "attn.skv_combine", "attn.skv_combine_bw")


def run_prefill(hw_name, train, val, hw, lines):
    tr, va = rows_of(train, val, ("attention_prefill_fa2",))
    with candidate_code():
        return score_fa2_prefill(hw_name, hw, tr, va, lines, PREFILL, r17_h100_terms(), s27.PRE_KEYS + KEYS)


if __name__ == "__main__":
    run_one_gpu(OUT, run_prefill, "h100_sxm", "s33 scores the H100 only (its profile and probe are the H100's)")
