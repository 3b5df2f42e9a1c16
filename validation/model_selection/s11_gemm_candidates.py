"""Session-11 model selection (issue 11, round 6) for GEMMs, on the fit rows only: heldout10 missed fp8
GEMM (median / p90 6.9 / 15.5 %; bf16 met, 4.9 / 12.7). Candidate terms for fp8 GEMMs, each fitted
(cosim.calibrate.fit's own code, through common.score_group) on the train part of the fit split and
scored once on the validation part carved from it (dataset.carve_validation, crc32 mod 5). No held-out
suite (test .. test11) is read: heldout10's published per-class scores named the class; the train rows
named the candidates.

What the H200 train rows (1,618 GEMM rows: 808 bf16, 810 fp8) showed with the session-10 model (GEMM group
refitted on them: train median / p90 5.2 / 14.2; bf16 4.3 / 13.2, fp8 6.2 / 15.3):
- fp8's misfit is scatter, not bias (signed median +0.8 %): fp8 rows priced with stream-K and deep K
  (>= 16 K) p90 21.1 (bf16's 6.6). Among the 636 shapes measured in both formats, fp8 rows of m >= 64,
  few tiles (< 100 tiles of 128 x 128) and deep K (> 8 K) run up to as slowly as bf16's (225 x 1152 x 32256:
  fp8 40.5 us, bf16 33.7 us; priced 22.3 us, -45 %; 528 x 2176 x 22656: 78.2 vs 79.6 us, -39 %), while
  fp8 rows of many tiles run faster than priced (+12 to +29 %: the fp8 efficiency, fitted through both,
  sits between). Fraction of fp8's peak reached (compute-bound rows, m >= 64) by tiles of 128 x 128:
  24-48 tiles 0.36-0.48 (bf16 0.45-0.62 of its own), 48-96 tiles 0.51-0.57 (bf16 0.57-0.74), >= 96 tiles
  0.6-0.78 (bf16 0.75-0.86): fp8 gains less from spreading K over the SMs (split-K, stream-K) than bf16.
- Structure tried on the train rows (GEMM group refitted each time; pooled train med / p90, fp8's):
  fp8 without stream-K 5.2 / 14.6 (fp8 6.2 / 16.1); fp8 with neither stream-K nor split-K 4.9 / 15.2
  (fp8 5.3 / 18.4: the deep-K rows now priced too slow, K >= 16 K p90 34.8); fp8 restricted to tiles
  >= 128 rows 5.6 / 14.7 (fp8 6.7 / 16.6); fp8's own tile_c, floor or bandwidth: fp8 p90 15.3-15.5 (no
  gain); fp8's own overlap exponent 5.2 / 14.0 (fp8 6.3 / 15.4; fitted 3.3 against bf16's 4.8).
- fp8 K-parallel slices (split-K slices and stream-K shares) at least D deep instead of SPLITK_MIN_K
  (512), D on a grid (train pooled p90, fp8 med / p90): 1024 14.3 (6.2 / 15.5), 2048 14.5 (6.3 / 15.4),
  4096 14.2 (6.1 / 14.9), 6144 13.8 (5.8 / 14.9), 8192 14.0 (5.6 / 15.1), 12288 13.9 (5.1 / 15.1),
  16384 14.1 (5.0 / 15.7), 32768 14.7 (5.0 / 17.4): D = 6144 (gpu_params.FP8_KPAR_MIN_K), the grid's
  lowest train p90; counted as one parameter (chosen on the rows, like a fitted one).
- H100 train rows (649; its set has no stream-K): session-10 form 4.2 / 10.6 (fp8 4.5 / 10.7); fp8
  slices >= 6144 deep 4.2 / 10.1 (fp8 4.2 / 10.0); fp8's own overlap exponent 4.2 / 10.5 (fp8 4.5 / 10.8,
  fitted 9.4 against bf16's 7.9: the opposite direction of the H200's).

Candidates (H200): A the session-10 form; B + fp8 GEMMs without stream-K (gemm.fp8_no_stream_k, the
session-10 observation that stream-K helped bf16 only; no parameter); C + fp8 K-parallel slices >= 6144
deep (gemm.fp8_kpar_deep; one parameter: the grid's constant); D + fp8's own overlap exponent
(gemm.overlap_p_fp8; one fitted parameter); E = C + D. H100: A, C, D.

Rule (fixed before any candidate was scored, as in sessions 3-10): on the GEMM group's rows (bf16 and
fp8 together: they share one fit), the candidate with the lowest validation p90; a candidate with fewer
parameters within 2 points of it is preferred (common.choose). The per-format lines are information,
not used by the rule. Candidates whose term the rule does not choose are removed from the model after
this record (they stay at the commit named in the .txt).

Run from the repository root: PYTHONPATH=. python validation/model_selection/s11_gemm_candidates.py [hw ...]
Writes validation/model_selection/s11_gemm_candidates.txt.

FROZEN RECORD of commit 6819d38: fp8 K-parallel slices >= 6144 deep and fp8's own overlap exponent (rejected
here) left the model after this record; run it at that commit to reproduce s11_gemm_candidates.txt (running
it here says so and exits).
"""
if __name__ == "__main__":  # before the imports: the rejected terms' code is gone from the model
    from validation.model_selection.common import frozen_record
    frozen_record(__file__, "6819d38")

from pathlib import Path

from cosim.calibrate import fit
from validation.model_selection.common import rows_of, run_selection, score_candidates, score_group

OUT = Path("validation/model_selection/s11_gemm_candidates.txt")
NEW_KEYS = ("gemm.fp8_no_stream_k", "gemm.fp8_kpar_deep", "gemm.overlap_p_fp8")
BASE_TERMS = {"h200": dict(fit.TERMS), "h100_sxm": dict(fit.TERMS_BY_HW["h100_sxm"])}
CANDIDATES = {
    "h200": (({}, "A session-10 form (stream-K for both formats)", 0),
             ({"gemm_fp8_no_stream_k": True}, "B + fp8 GEMMs without stream-K", 0),
             ({"gemm_fp8_kpar_deep": True}, "C + fp8 K-parallel slices >= 6144 deep", 1),
             ({"gemm_fp8_overlap": True}, "D + fp8's own overlap exponent", 0),
             ({"gemm_fp8_kpar_deep": True, "gemm_fp8_overlap": True}, "E = C + D", 1)),
    "h100_sxm": (({}, "A session-10 form (no stream-K)", 0),
                 ({"gemm_fp8_kpar_deep": True}, "C + fp8 K-parallel slices >= 6144 deep", 1),
                 ({"gemm_fp8_overlap": True}, "D + fp8's own overlap exponent", 0)),
}


def run_gemm(hw_name, train, val, hw, lines):
    tr, va = rows_of(train, val, ("gemm_bf16", "gemm_fp8"))
    extra = {label: n for _on, label, n in CANDIDATES[hw_name]}

    def score(on, label):
        return score_group(hw_name, hw, tr, va, "gemm", {**BASE_TERMS[hw_name], **fit.S11_GEMM_OFF, **on}, lines,
                           label, drop=NEW_KEYS, by_class=True, n_extra=extra[label])

    return score_candidates(tr, va, [(on, label) for on, label, _n in CANDIDATES[hw_name]], score, lines,
                            f"{hw_name} GEMM fit rows (bf16 + fp8)")


def main():
    run_selection(OUT, run_gemm)


if __name__ == "__main__":
    main()
