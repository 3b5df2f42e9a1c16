"""Round 18 candidate (session 26), FA2-pinned prefill on the H100: the uneven-length cost only where the one-pass
kernel runs. Fitted on the train part of the H100's fit rows and scored once on the validation part carved from them
(dataset.carve_validation, crc32 mod 5). No held-out suite is read.

Why. The model adds `attn.ragged` (fixed) and `attn.ragged_wave` (single-wave launches, in proportion to their fill)
to every causal FA2 prefill whose query length is no multiple of the 128-row block (hwmodels.gpu.ragged_time). Two
device records of fit shapes only say where that time is:
- validation/diagnostics/h100_kernel_profile.txt (session 25): PyTorch's FA2 runs the split-KV kernel, not the
  one-pass kernel, where num_splits_heuristic(batch x heads x ceil(q / 64), 2 x SMs, ceil(kv / Bn)) > 1
  (19 of 160 profiled shapes; kernel_profile_compare.fa2_prefill_splits);
- validation/diagnostics/h100_fa2_uneven_probe.txt (session 26): the FA2 kernels' device time after microbench's L2
  flush minus without it is 10.8 us (d 128) and 7.7 us (d 64) for uneven causal one-pass launches, 0.3 - 1.8 us for
  the split-KV kernel at uneven lengths (12 + 2 shapes), for even lengths and for non-causal launches; no host gap
  (1.1 - 1.3 us from the flush's end to the kernel in every class).
So the uneven cost belongs to the one-pass kernel; the split-KV launches pay none of it, and the model charges them.
The lead printed, before writing this docstring, the committed model's signed errors on the FA2 fit rows (all of
them, train and validation) by split / one-pass, even / uneven, head dim and time band (disclosed; fit rows only):
split-rule rows +3.8 % signed (|err| 10.2 / 27.0), one-pass -0.0 % (6.7 / 16.5).

Candidates (each re-fits the FA2 prefill group from fit.INITIAL, as s27 / s30 did; `attn.ragged` and
`attn.ragged_wave` restart from their start values in every candidate):
  A   the current form (round 14: ragged + ragged_wave on every uneven causal prefill);
  R   the same two terms only on launches FA2's rule runs on the one-pass kernel (splits == 1); a split-KV launch is
      priced as now without them. No parameter added: the rule is the library's;
  R1  R without `attn.ragged_wave` (the probe's cost is per launch, single wave or not): one parameter fewer.
The candidates' code lives in this script (`candidate_code` patches hwmodels.gpu.attention_prefill_time and
cosim.calibrate.fit._prefill_optional for this process only); it enters the model only if the rule chooses it. The
H200 is not scored (no probe there; its form stays).

Disclosed: these validation rows (171 FA2 prefill rows of the H100's fit suites) were scored before by s27 / s28
(round 15, the waves and masking-step forms) and s30 (round 18's first candidate, the split-KV dispatch); this is
their fourth scoring. s30's record and the two diagnostics above were read before this script was written.

Rule: RULE_round7.md (common.choose_resolved), as s27 / s30: the target statistic is the median where only the median
misses the goal on the current form's validation figures, else the p90; a candidate is eligible only if its gain on
that statistic is resolved (95 % paired-bootstrap interval of candidate - current below 0); among the current form
and the eligible, the lowest target statistic, one with fewer parameters within 1 point (median) / 2 points (p90)
preferred.

Run from the repository root: PYTHONPATH=. python validation/model_selection/s31_fa2_uneven_onepass.py
Writes validation/model_selection/s31_fa2_uneven_onepass.txt.
"""
from pathlib import Path

from hwmodels import gpu
from hwmodels.spec import load_hw
from validation.model_selection import s27_fa2_waves as s27
from validation.model_selection.common import (flag_term, prefill_candidate, r17_h100_terms, rows_of, run_one_gpu,
                                               score_fa2_prefill)

OUT = Path("validation/model_selection/s31_fa2_uneven_onepass.txt")  # relative: no machine path in the record
FLAG = "attn.ragged_onepass_only"
ORIGINAL = gpu.attention_prefill_time
ORIGINAL_RAGGED = gpu.ragged_time


splits_of = gpu.fa2_prefill_splits  # FA2's dispatch rule (the model's since round 18)


def _no_ragged(P, ctas, q_len, bq, causal):
    return 0.0


def prefill_time_candidate(P, batch, heads, q_len, kv_len, d, dv, causal, peak, details=False, blocks=None):
    """hwmodels.gpu.attention_prefill_time (as committed); where P carries the flag, the backend is FA2 (blocks None:
    cuDNN passes its own) and the library's rule runs the split-KV kernel, without the uneven-length terms."""
    if blocks is None and P.values.get(FLAG) and causal and splits_of(P, batch, heads, q_len, kv_len, d) > 1:
        gpu.ragged_time = _no_ragged
        try:
            return ORIGINAL(P, batch, heads, q_len, kv_len, d, dv, causal, peak, details=details, blocks=blocks)
        finally:
            gpu.ragged_time = ORIGINAL_RAGGED
    return ORIGINAL(P, batch, heads, q_len, kv_len, d, dv, causal, peak, details=details, blocks=blocks)


def candidate_code():
    """The candidate's code for this process: the prefill time above, and the flag set where the terms switch it on."""
    return prefill_candidate(prefill_time_candidate, flag_term("ragged_onepass_only", FLAG))


FA2 = ("fa2",)
PREFILL = (({}, "A current form (round 14)", 0),
           ({"ragged_onepass_only": FA2}, "R uneven cost on one-pass launches only", 0),
           ({"ragged_onepass_only": FA2, "ragged_wave": False}, "R1 = R without the single-wave time", 0))


def run_prefill(hw_name, train, val, hw, lines):
    tr, va = rows_of(train, val, ("attention_prefill_fa2",))
    P = gpu.analytical_params(load_hw(hw_name))
    dims = [m.op.dims for m in va]
    n_split = sum(bool(d.get("causal")) and int(d["q_len"]) % 128 != 0 and splits_of(
        P, int(d["batch"]), int(d["heads"]), int(d["q_len"]), int(d["kv_len"]), int(d["head_dim"])) > 1 for d in dims)
    lines.append(f"{hw_name}: {n_split} of {len(va)} FA2 prefill validation rows are uneven causal launches the rule "
                 f"runs on the split-KV kernel")
    with candidate_code():
        return score_fa2_prefill(hw_name, hw, tr, va, lines, PREFILL, r17_h100_terms(), s27.PRE_KEYS + (FLAG,))


if __name__ == "__main__":
    run_one_gpu(OUT, run_prefill, "h100_sxm", "s31 scores the H100 only (its probe and profile are the H100's)")
