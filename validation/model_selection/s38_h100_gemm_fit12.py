"""Round 22 candidates (session 32), the H100's GEMMs, scored once on fit suite 12 (validation/fit12_rules.md): fresh
GEMM rows of the held-out GEMM distribution that no choice has read. Written and committed with the rules, before any
fit12 row exists.

Why. The H100's GEMM bf16 class sits on its goals (heldout24 4.2 / 15.003). Round 21 (s37) scored bf16 tile menus on
fit11 and chose nothing: fp8, sharing the fit, got worse. Read before this script (so fit11 is seen and is fitted
here, not used to choose): the fp8 kernel profile (nvjet qqtst, token tiles 8 - 160), r22_gemm_fp8_menu.txt (in-sample)
and r23_fit11_probe.txt (fitted on the listed rows, scored on fit11: F, there "M8f", group p90 15.24 -> 14.27, both
classes lower).

Candidates (each re-fits the GEMM group, fit.GROUPS["gemm"], from fit.INITIAL with the H100's term set r18_h100 on every
listed H100 GEMM fit row and fit11's, as common.score_group does; six parameters each):
  A   the committed form (gemm.tile_set 1's list: six tiles plus 192 x 192; stream-K among the choices);
  F   bf16 GEMMs choose from the nvjet-like menu (gemm_choice_probe.MENU), stream-K kept; fp8 GEMMs from an fp8 menu
      (r22_gemm_fp8_menu.FP8_MENU), stream-K as the committed switches say;
  FN  F without stream-K for bf16.
Candidate code: r22_gemm_fp8_menu.menus, patched into hwmodels.gpu for the fit and the scores.

Validation rows: fit12's run (validation/raw_h100_run25/ops.csv), GEMM classes of split fit, reliable rows, nothing
else dropped (fit12_rules.md item 2).

Rule: RULE_round7.md (common.choose_resolved) on the GEMM group's fit12 rows (bf16 and fp8 together): the target
statistic is the median where only the median misses the goal on A's fit12 figures, else the p90; a candidate is
eligible only if its gain is resolved (95 % paired-bootstrap interval of candidate - A below 0); among A and the
eligible, the lowest target statistic. Per-class lines are information, not read by the rule.

Run from the repository root: PYTHONPATH=. python validation/model_selection/s38_h100_gemm_fit12.py
Writes validation/model_selection/s38_h100_gemm_fit12.txt.

FROZEN RECORD of commit ae39ad4: round 22 then listed fit11 and fit12 as fit rows, so on a later commit rows() refuses
(its assertion); reproduce the record at ae39ad4 in a git worktree.
"""
import json
import os
import time
from pathlib import Path

from cosim.calibrate import dataset, fit
from hwmodels import gpu
from validation.diagnostics.gemm_choice_probe import MENU, MODEL_GEMM_TIME
from validation.diagnostics.r22_gemm_fp8_menu import FP8_MENU, menus
from validation.model_selection.common import CSV, choose_resolved, rows_of, score_candidates, score_group

OUT = Path("validation/model_selection/s38_h100_gemm_fit12.txt")  # relative: no machine path in the record
FIT11_RUN, FIT12_RUN = Path("validation/raw_h100_run24/ops.csv"), Path("validation/raw_h100_run25/ops.csv")
HW, H100_SET = "h100_sxm", "r18_h100"  # the H100's committed term set (fit.DEFAULT_SET) at the time of this selection
CLASSES = ("gemm_bf16", "gemm_fp8")
CANDIDATES = ((None, "A committed form (r18_h100: tile set 1, stream-K)"),
              ((MENU, FP8_MENU, True), "F bf16 and fp8 menus, stream-K kept"),
              ((MENU, FP8_MENU, False), "FN F without stream-K for bf16"))


def rows():
    """(train, validation): every listed H100 GEMM fit row and fit11's; fit12's GEMM rows of split fit."""
    if not FIT12_RUN.exists():
        raise SystemExit(f"error: {FIT12_RUN}: got missing; expected fit suite 12's run (validation/fit12_rules.md)")
    listed = [m for m in dataset.load_ops(CSV[HW]) if m.split == "fit" and m.op is not None]
    assert not {"fit11", "fit12"} & {m.suite for m in listed}, "fit11 / fit12 listed: merged only after this record"
    fit11, fresh = ([m for m in dataset.load_ops(p) if m.split == "fit" and m.op is not None]
                    for p in (FIT11_RUN, FIT12_RUN))
    for run, suite in ((FIT11_RUN, "fit11"), (FIT12_RUN, "fit12")):  # a raw run's rows carry no suite name
        variant = json.loads((run.parent / "env.json").read_text()).get("variant")
        if variant != suite:
            raise SystemExit(f"error: {run.parent / 'env.json'}: variant {variant!r}; expected {suite!r}")
    return rows_of(listed + fit11, fresh, CLASSES)


def main():
    t0 = time.time()
    hw = fit.base_spec(HW)
    tr, va = rows()
    lines = [f"# {OUT.with_suffix('.py')} (train: every listed H100 GEMM fit row and fit11's; validation: fit suite "
             f"12, {FIT12_RUN}; rule in the script's docstring)", ""]

    def score(form, label):
        gpu.gemm_time = MODEL_GEMM_TIME if form is None else menus(*form)
        try:
            return score_group(HW, hw, tr, va, "gemm", fit.TERM_SETS[H100_SET], lines, label, by_class=True)
        finally:
            gpu.gemm_time = MODEL_GEMM_TIME

    score_candidates(tr, va, CANDIDATES, score, lines, f"{HW} GEMM rows (fit12 as validation)", rule=choose_resolved)
    lines.append(f"(load {os.getloadavg()[0]:.1f}, {time.time() - t0:.0f} s)")
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
