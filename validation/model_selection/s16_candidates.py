"""Session-16 model selection (issue 11, round 9), elementwise softmax and fp8 GEMM, on the fit rows only, from the
kernel dispatch facts of validation/logs/kdp_h100/SUMMARY.md (the fit suites profiled on an H100: the same 132 SMs,
clocks, PyTorch and cuBLASLt as the H200 fit; on the H200 these are HYPOTHESES, its dispatch is not profiled).
Candidates are fitted (cosim.calibrate.fit's own code, common.fit_group) on the train part of the H200 fit split and
scored once on the validation part carved from it (dataset.carve_validation, crc32 mod 5). No held-out suite (test ..
test14) is read: the published per-class misses of the last fresh suite named the classes; the train rows and the
dispatch facts named the candidates. The H100's fit rows (validation/h100_runs.csv, split 'fit' only, the term set its
committed re-fit used: h200) are scored the same way as a second opinion: reported, not used to choose.

rule: RULE_round7.md (common.choose_resolved), per group (elementwise, GEMM), unchanged.

What the H200 train rows showed (the current form, the session-12 h200 term set, each group refitted on its train
rows with common.fit_group; signed errors are predicted / measured - 1; /tmp scripts, numbers copied here):

Elementwise (918 reliable train rows, 4.5 / 15.7): softmax is the worst kind (258 rows, 8.2 / 20.6; rmsnorm 135 rows
6.2 / 21.7, the unaligned copy 95 rows 5.5 / 25.3). Grouped by the kernel the H100 profile saw at each row width:
  warp kernel (<= 2,048)                        53 rows  signed med +1.3  |e| 5.5 / 14.3
  register kernel (2,049-9,216, any alignment)  46 rows  signed med -0.2  |e| 10.9 / 24.7
  shared-memory kernel (9,217-24,511, mult. 8)  33 rows  signed med +7.3  |e| 7.3 / 33.8
  multi-pass, unaligned > 9,216                 76 rows  signed med -4.5  |e| 7.2 / 18.9
  multi-pass, >= 24,512                         50 rows  signed med +6.6  |e| 9.0 / 15.7
The register kernel's rows are the worst and split in two by the facts: its aligned rows (3,072-6,144 elements,
i.e. priced single-pass) with >= 32 MB moved are priced 13-27 % fast (3,072 x 174,762: -26.1 %, 4,096 x 131,072:
-19.0 %, 6,144 x 87,381: -13.0 %; 3,072 x 2,730 -21.4 %), while its unaligned rows (4,725-9,102 elements) are priced
+10 .. +30 % slow (4,725 x 11,410 +30.0 %, 6,814 x 1,143 +29.8 %, 6,652 x 484 +23.3 %, 9,102 x 753 +19.2 %): the
current form prices unaligned rows as multi-pass (x ew.softmax.multipass, fitted 1.23), but the H100 ran every width
from 2,842 to 9,128 with cunn_SoftMaxForwardReg, one pass at any alignment (ATen SoftMax.cu: a 1024-thread block,
ceil(cols / 1024) < 10 elements per thread), and at the lowest bytes per second of the block kernels (0.90-1.30 TB/s
vs 1.49-1.86): on the train rows the measured aligned register rows run at 1.1-1.4 TB/s (3,072: 1.19, 4,096: 1.30,
6,144: 1.40, 8,192: 1.07 TB/s). Session 11 scored the one-pass dispatch alone (structure, no parameter: validation
p90 14.1 -> 14.2, not chosen); the facts add the kernel's own (low) bandwidth, which that candidate lacked.
Looked at on the train rows and NOT made candidates: the register kernel's 1024-thread block in the row waves (on top
of the candidate below: elementwise train p90 13.7 -> 15.4, register rows 7.0 / 14.0 -> 8.8 / 21.0); the register
multiplier started from softmax's own start (it stays at 1.0: the stream term loses max() against the row waves,
where it has no gradient; train 14.9), hence the stream-bound start below (from 2.5 and from 4.0 it fits to 3.43-3.44,
i.e. ew.bw / 3.43 ~ the register kernel's measured 1.1-1.4 TB/s).
Train-only check of candidate B: elementwise 4.4 / 13.7, softmax 7.2 / 15.3, register rows 7.0 / 14.0.

fp8 GEMM (810 reliable fp8 train rows, 6.2 / 16.1; GEMM group 1,618 rows 5.2 / 14.6): by the facts' split-K regimes,
the rows the model prices with split-K where the H100 never split an fp8 GEMM: m > 128 (22 rows, signed med +1.6,
p10 -28.1, |e| 13.1 / 28.1) and k <= 2,048 (15 rows, +8.6, |e| 8.6 / 16.6); split-K priced at m <= 128, k > 2,048
(200 rows) -4.7 signed (the reduce kernel's ~2.1 us launch is not priced; its fixed time was rejected in s8b and s9
and is not re-scored); unsplit rows at m <= 128 +2.9 (175), at m > 128 +0.6 (400, |e| 6.6 / 17.6: the spread the
facts' 76 distinct fp8 tiles suggest, which no single term captures). Train-only check of candidate D: fp8 6.0 / 16.4,
group 5.1 / 14.6 (no train gain; the 22 m > 128 rows 14.1 / 20.6). It is scored because it is the one fp8 dispatch
fact that maps onto a model term without new parameters; the rule's resolved-gain test guards a chance gain.

Candidates (each group's current form first; every candidate term starts from its fit start, no candidate from a
fitted value of itself):
  elementwise: A the current form (session-12 h200 term set);
               B + the register block softmax (`softmax_reg`): rows of 2,049-9,216 elements never multi-pass, and
                 their own bytes multiplier `ew.softmax_reg.mult` (one fitted parameter, started stream-bound at
                 fit.SOFTMAX_REG_MULT_START = 2.5; identified where >= 3 train softmax rows lie in the regime).
  GEMM:        A the current form;
               D + cuBLASLt's fp8 split-K rule (`gemm_fp8_splitk_rule`): fp8 GEMMs split K only at m <= 128 and
                 k > 2,048 (structure, no parameter; bf16 unchanged).

Run from the repository root: PYTHONPATH=. python validation/model_selection/s16_candidates.py [hw ...]
Writes validation/model_selection/s16_candidates.txt.

Result (s16_candidates.txt, scored once; added after scoring): target the p90 in both H200 groups (the current
form's validation figures meet the median: elementwise 4.4 / 14.1, GEMM 4.3 / 13.2). Elementwise B 4.3 / 13.7
(-0.41 points, paired-bootstrap 95 % [-2.40, +1.12]; softmax rows 8.2 / 18.8 -> 7.9 / 17.3, register widths 13.4 /
27.2 -> 16.1 / 17.6, ew.softmax_reg.mult fitted 3.436); GEMM D 4.3 / 13.0 (-0.20, [-0.74, +0.29]; fp8 rows 4.9 / 14.0
-> 4.7 / 13.9). Neither gain is resolved: the rule keeps the current form in both groups. The H100's fit rows (second
opinion, not used to choose) agree: elementwise B -0.12 ([-1.68, +1.27]; its multiplier fits to 2.518), GEMM D -0.07
([-0.83, +0.14]), neither resolved.

FROZEN RECORD of commit ade8184: both candidate terms (ew.softmax_reg.mult with fit's softmax_reg switch and
gpu_library.softmax_reg; gemm.fp8_splitk_rule with fit's gemm_fp8_splitk_rule switch and gpu_library.fp8_no_split)
were rejected and left the model after this record; run the script at that commit to reproduce s16_candidates.txt
(running it here says so and exits).
"""
if __name__ == "__main__":  # before the imports: the candidates' code is gone from the model
    from validation.model_selection.common import frozen_record
    frozen_record(__file__, "ade8184")

from pathlib import Path

from cosim.calibrate import fit
from hwmodels import gpu_library
from validation.model_selection.common import (HEADER, choose_resolved, fit_group, rows_of, run_selection,
                                               score_fitted)

OUT = Path("validation/model_selection/s16_candidates.txt")
BASE_TERMS = {"h200": dict(fit.TERM_SETS["h200"]), "h100_sxm": dict(fit.TERM_SETS["h200"])}
EW = (({}, "A current form (session-12)"),
      ({"softmax_reg": True}, "B + register softmax: one pass, own multiplier"))
GEMM = (({}, "A current form (session-12)"),
        ({"gemm_fp8_splitk_rule": True}, "D + fp8 split-K only at m <= 128, k > 2048"))
DROP = ("ew.softmax_reg.mult", "gemm.fp8_splitk_rule")


def _score(hw_name, hw, tr, va, group, on, label, lines, info):
    """Fit `group` with the candidate's terms on tr; one record line on all the group's rows (returned to the
    rule) and, for information only, one per subset of `info` (name -> row predicate)."""
    values, sms, l2, names = fit_group(hw_name, hw, tr, group, {**BASE_TERMS[hw_name], **on}, DROP)
    res = score_fitted(values, sms, l2, "fa2", tr, va, hw, len(names), lines, label)
    for name, keep in info.items():
        score_fitted(values, sms, l2, "fa2", [m for m in tr if keep(m)], [m for m in va if keep(m)], hw, len(names),
                     lines, f"  {name}")
    if "ew.softmax_reg.mult" in values:
        lines.append(f"  (ew.softmax_reg.mult fitted {values['ew.softmax_reg.mult']:.3f})")
    return res


def _is_soft(m):
    return m.op.kind == "softmax"


def _is_reg(m):
    return m.op.kind == "softmax" and bool(gpu_library.softmax_reg(m.op.dims["cols"]))


def run(hw_name, train, val, hw, lines):
    tr, va = rows_of(train, val, ("elementwise",))
    n_reg = sum(_is_reg(m) for m in tr)
    lines += [f"{hw_name} elementwise fit rows ({n_reg} train softmax rows of 2,049-9,216 elements): {len(tr)} train, "
              f"{len(va)} validation", HEADER]
    info = {"softmax": _is_soft, "softmax, register kernel's widths": _is_reg}
    choose_resolved([_score(hw_name, hw, tr, va, "elementwise", on, label, lines, info) for on, label in EW], lines)
    tr, va = rows_of(train, val, fit.CLASSES["gemm"])
    lines += [f"{hw_name} GEMM fit rows: {len(tr)} train, {len(va)} validation", HEADER]
    info = {c: (lambda m, c=c: m.cls == c) for c in sorted({m.cls for m in tr})}
    choose_resolved([_score(hw_name, hw, tr, va, "gemm", on, label, lines, info) for on, label in GEMM], lines)


def main():
    run_selection(OUT, run, header=["# h200 chooses; h100_sxm (validation/h100_runs.csv, term set h200 as its committed "
                                    "re-fit) is a second opinion, not used to choose"])


if __name__ == "__main__":
    main()
