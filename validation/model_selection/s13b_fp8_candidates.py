"""Session-13 model selection (issue 11, round 8, second script), fp8 GEMM, on the fit rows only: the class the last
fresh suite missed on the p90. The candidate is fitted (cosim.calibrate.fit's own code, common.score_group) on the
train part of the fit split and scored once on the validation part carved from it (dataset.carve_validation, crc32
mod 5). No held-out suite (test .. test13) is read: the published per-class miss named the class; the train rows
named the candidate.

Disclosure: s13_fp8ew_candidates.py (committed and scored before this file) said no fp8 GEMM candidate would be
scored there; its record holds the fp8 train residual table only (no fp8 validation figure was computed by it; its
elementwise candidate was scored and not resolved). This script was written after that, from further train-row
analysis (below); it scores one candidate, once.

rule: RULE_round7.md (common.choose_resolved), on the GEMM group's rows (bf16 and fp8 share one fit, as in
s11_gemm_candidates.py); per-format lines are information, not used by the rule. The target statistic is the median
where only the median misses the goal on the current form's validation figures, else the p90; a candidate is
eligible only if its gain on that statistic is resolved (95 % paired-bootstrap interval of candidate - current below
0, 4,000 resamples, seed 20261206); among the current form and the eligible, the lowest target statistic, one with
fewer parameters within 2 points (p90) / 1 point (median) preferred.

What the H200 train rows showed (GEMM group refitted on 1,618 train rows with common.fit_group; signed errors
predicted / measured - 1; s13_fp8ew_candidates.txt has the current form's table):
- The current form (session 11: fp8 GEMMs never take stream-K) prices fp8 rows 6.2 / 16.1 (pooled 5.1 / 14.6).
  Its largest over-pricings are multi-wave launches whose last wave is partly filled: 1046 x 2048 x 18560 (544
  tiles of 64 x 64, priced five waves for 4.1 waves of work) +30 %, 285 x 3584 x 21248 (280 tiles, three waves for
  2.1) +28 %, 198 x 11136 x 18816 (three waves of 128 x 64) +36 %: the measured library evens the last wave out,
  as stream-K does (bf16 keeps stream-K). Its largest under-pricings are launches of fewer tiles than SMs with
  deep K (291 x 1664 x 20096 -41 %, 225 x 1152 x 32256 -39 %): session 11 took fp8 off stream-K for these (with
  stream-K their K was spread over all SMs and priced as fast as bf16's).
- Train-only structure checks (refitted each time; fp8 med / p90, pooled p90): stream-K for fp8 everywhere (the
  session-10 form) 6.2 / 15.3, 14.2; stream-K for fp8 only where the tiles exceed the SMs (the last wave of a
  multi-wave launch; single-wave launches keep split-K) 6.2 / 15.1, 14.0. What stays: compute-bound deep-K
  (> 8 K) launches of one wave or few waves priced 11-34 % fast, both with split-K and without.
- Also tried on the train rows and not made candidates (no train gain): fp8's own tile cost gemm.tile_c_fp8
  (fitted 0.87 against bf16's 0.04; fp8 6.2 / 16.1), a fixed fp8 accumulator-promotion time per 512 of a CTA's K
  depth gemm.fp8_promote (torch._scaled_mm's default use_fast_accum=False promotes the tensor cores' partial sums
  to fp32 on the CUDA cores; cosim/calibrate/microbench.py measures fp8 so; fitted to 6 ns, fp8 6.1 / 16.1). Their
  code is in this script's first commit, off in every term set.

Candidates (H200; the H100's set has no stream-K, so the candidate is moot there and it is not scored):
  A the current form (fp8 GEMMs never take stream-K: gemm.fp8_no_stream_k);
  B fp8 GEMMs take stream-K only where their tiles exceed the SMs (gemm.fp8_sk_multiwave; fit's
    gemm_fp8_sk_multiwave switch with gemm_fp8_no_stream_k off; structure, no fitted parameter). A measured
    regularity of cuBLASLt's fp8 dispatch on the H200 (no committed profile names an fp8 GEMM kernel), not read
    off the library.

Run from the repository root: PYTHONPATH=. python validation/model_selection/s13b_fp8_candidates.py
Writes validation/model_selection/s13b_fp8_candidates.txt.

Result (s13b_fp8_candidates.txt): GEMM group, target the p90 (A 4.3 / 13.2; fp8 4.9 / 14.0): B 13.1 (-0.04 points,
95 % [-0.71, +0.79]; fp8 5.1 / 13.9), not resolved: the rule keeps the current form.

FROZEN RECORD of commit 2023a82: the rejected structure (gemm.fp8_sk_multiwave with fit's gemm_fp8_sk_multiwave
switch) and the train-only checks (gemm.tile_c_fp8, gemm.fp8_promote) left the model after this record; run the
script at that commit to reproduce s13b_fp8_candidates.txt (running it here says so and exits).
"""
if __name__ == "__main__":  # before the imports: the candidate's code is gone from the model
    from validation.model_selection.common import frozen_record
    frozen_record(__file__, "2023a82")

from pathlib import Path

from cosim.calibrate import fit
from validation.model_selection.common import choose_resolved, rows_of, run_selection, score_candidates, score_group

OUT = Path("validation/model_selection/s13b_fp8_candidates.txt")
NEW_KEYS = ("gemm.fp8_sk_multiwave", "gemm.fp8_no_stream_k", "gemm.tile_c_fp8", "gemm.fp8_promote")
CANDIDATES = (({}, "A current form (fp8 never stream-K)"),
              ({"gemm_fp8_no_stream_k": False, "gemm_fp8_sk_multiwave": True},
               "B fp8 stream-K only where tiles exceed the SMs"))


def run(hw_name, train, val, hw, lines):
    if hw_name != "h200":
        lines += [f"{hw_name}: its term set has no stream-K: the candidate is moot, nothing scored", ""]
        return None
    tr, va = rows_of(train, val, ("gemm_bf16", "gemm_fp8"))
    return score_candidates(
        tr, va, CANDIDATES,
        lambda on, label: score_group(hw_name, hw, tr, va, "gemm", {**fit.TERMS, **on}, lines, label, drop=NEW_KEYS,
                                      by_class=True),
        lines, f"{hw_name} GEMM fit rows (bf16 + fp8)", rule=choose_resolved)


def main():
    run_selection(OUT, run)


if __name__ == "__main__":
    main()
