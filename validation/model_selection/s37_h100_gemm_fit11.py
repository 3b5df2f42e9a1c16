"""Round 21 candidates (session 31), the H100's GEMMs, scored once on fit suite 11 (validation/fit11_rules.md): fresh
GEMM rows of the held-out GEMM distribution that no choice has read. Written and committed before any fit11 row exists.

Why. The H100's GEMM bf16 class missed its p90 goal on seen held-out suites (heldout24 4.2 / 15.0, over by 0.003
points); round 20 (s36_h100_gemm_menu.py) scored an nvjet-like tile menu for bf16 on the carved validation part of the
fit rows (551 rows, scored twice by then) and its group gains were not resolved (M -0.29 [-1.78, +0.54], MN -0.43
[-1.70, +0.64]). fit11 gives about four times as many validation rows, none seen. What the fit rows show (all listed
H100 GEMM fit rows in-sample, validation/diagnostics/r21_gemm_design.txt, read before this script was written): M lowers
bf16's p90 14.72 -> 13.13 while fp8's rises 15.52 -> 15.85 (group 15.20 -> 14.52); fp8 taking the menu too does not keep
its fit (16.36), so no fp8 menu is a candidate. Re-scoring round 20's two candidates on fresh rows is disclosed: they
are the same forms, not re-tuned; nothing else is tried here.

Candidates (each re-fits the GEMM group, fit.GROUPS["gemm"], from fit.INITIAL with the H100's term set r18_h100 on
every listed H100 GEMM fit row (validation/h100_runs.csv; fit11 is not listed), as common.score_group does; fp8 GEMMs
keep the committed tiles in every candidate):
  A   the committed form (gemm.tile_set 1's list: six tiles plus 192 x 192; stream-K among the choices);
  M   bf16 GEMMs choose from the nvjet-like menu (gemm_choice_probe.MENU), stream-K kept;
  MN  M without stream-K for bf16.
None adds a parameter. Candidate code: gemm_choice_probe.priced, patched into hwmodels.gpu for the fit and the scores.

Validation rows: fit11's run (validation/raw_h100_run24/ops.csv), GEMM classes (bf16 F.linear, fp8 torch._scaled_mm
without fast accumulation: split fit), reliable rows, nothing else dropped (fit11_rules.md item 4).

Rule: RULE_round7.md (common.choose_resolved) on the GEMM group's fit11 rows (bf16 and fp8 together: they share one
fit): the target statistic is the median where only the median misses the goal on A's fit11 figures, else the p90; a
candidate is eligible only if its gain is resolved (95 % paired-bootstrap interval of candidate - A below 0); among A
and the eligible, the lowest target statistic (all three have the same parameter count). Per-class lines are
information, not read by the rule.

Run from the repository root: PYTHONPATH=. python validation/model_selection/s37_h100_gemm_fit11.py
Writes validation/model_selection/s37_h100_gemm_fit11.txt.
"""
import os
import time
from pathlib import Path

from cosim.calibrate import dataset, fit
from hwmodels import gpu
from validation.diagnostics.gemm_choice_probe import MENU, MODEL_GEMM_TIME, priced
from validation.model_selection.common import CSV, choose_resolved, rows_of, score_candidates, score_group

OUT = Path("validation/model_selection/s37_h100_gemm_fit11.txt")  # relative: no machine path in the record
FIT11_RUN = Path("validation/raw_h100_run24/ops.csv")
HW, H100_SET = "h100_sxm", "r18_h100"  # the H100's committed term set (fit.DEFAULT_SET) at the time of this selection
CLASSES = ("gemm_bf16", "gemm_fp8")
CANDIDATES = ((None, "A committed form (r18_h100: tile set 1, stream-K)"),
              ((MENU, True), "M bf16 from an nvjet-like menu, stream-K kept"),
              ((MENU, False), "MN M without stream-K for bf16"))


def rows():
    """(train, validation): every listed H100 GEMM fit row; fit11's GEMM rows of split fit."""
    if not FIT11_RUN.exists():
        raise SystemExit(f"error: {FIT11_RUN}: got missing; expected fit suite 11's run (validation/fit11_rules.md)")
    listed = [m for m in dataset.load_ops(CSV[HW]) if m.split == "fit" and m.op is not None]
    assert "fit11" not in {m.row.get("suite") for m in listed}, "fit11 is listed: its rows are no longer unseen"
    fresh = [m for m in dataset.load_ops(FIT11_RUN) if m.split == "fit" and m.op is not None]
    return rows_of(listed, fresh, CLASSES)


def main():
    t0 = time.time()
    hw = fit.base_spec(HW)
    tr, va = rows()
    lines = [f"# {OUT.with_suffix('.py')} (train: every listed H100 GEMM fit row; validation: fit suite 11, "
             f"{FIT11_RUN}; rule in the script's docstring)", ""]

    def score(menu, label):
        gpu.gemm_time = MODEL_GEMM_TIME if menu is None else priced(*menu)
        try:
            return score_group(HW, hw, tr, va, "gemm", fit.TERM_SETS[H100_SET], lines, label, by_class=True)
        finally:
            gpu.gemm_time = MODEL_GEMM_TIME

    score_candidates(tr, va, CANDIDATES, score, lines, f"{HW} GEMM rows (fit11 as validation)", rule=choose_resolved)
    lines.append(f"(load {os.getloadavg()[0]:.1f}, {time.time() - t0:.0f} s)")
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
