"""Round 20 candidates (session 29), the H100's bf16 GEMMs: the tiles the model chooses from. Fitted on the train part
of the H100's fit rows and scored once on the validation part carved from them (dataset.carve_validation, crc32
mod 5). No held-out suite is read.

Why. The H100's GEMM bf16 class missed its p90 goal on seen held-out suites (heldout24: 4.2 / 15.0, over by 0.003
points; heldout21 5.4 / 15.7; heldout19 4.5 / 16.2; validation/heldout_tables.txt): read before this script was
written, they motivate a round for this class and choose nothing in it. What the train rows showed (session 28,
validation/diagnostics/gemm_choice_probe.txt, train rows only; gemm_choice_map, a profile of 53,555 shapes' kernel
names): cuBLAS runs nvjet kernels whose token tile is a multiple of 8 from 8 to 256 and whose weight tile is one of
a short list (64 - 512), in either orientation, while the model chooses among six tiles of 64 - 256 plus 192 x 192;
none of the profiled bf16 kernels is stream-K (each is data-parallel or split-K). Re-fitting the GEMM group on the
train rows with each row at its profiled tile gives bf16 3.75 / 12.48 in-sample (the committed form 4.30 / 14.34):
the choice is worth about two points of p90, and a menu like nvjet's with the model's own choice 4.36 / 13.31
(without stream-K 4.36 / 13.66). No rule that predicts cuBLAS's choice itself was found (the nearest profiled shape's
kernel prices worse than the committed form, 6.12 / 29.10), so the candidates keep the model's choice (the fastest
priced tile) and change only the menu.

Candidates (each re-fits the GEMM group, fit.GROUPS["gemm"], from fit.INITIAL with the H100's term set r18_h100, as
common.score_group does; fp8 GEMMs keep the committed tiles in every candidate: only bf16 kernels were profiled):
  A   the committed form (gemm.tile_set 1's list: six tiles plus 192 x 192; stream-K among the choices);
  M   bf16 GEMMs choose from the nvjet-like menu (gemm_choice_probe.MENU: token tiles 8 - 256 in steps of 8 x the
      weight tiles the profile shows, either way round), stream-K kept;
  MN  M without stream-K for bf16 (as profiled: no stream-K kernel).
Neither adds a parameter. Candidate code: gemm_choice_probe.priced (the probe's own), patched into hwmodels.gpu for
the fit and the scores, restored after.

Disclosed: the H100's GEMM validation rows were scored once before with a carved split, as a second opinion in s16
(fewer fit suites then; nothing was chosen on them); the residual selections s18, s19, s26 and s29 read every H100
GEMM fit row (the validation part included) leave-one-suite-out. The session-28 probe read train rows only.

Rule: RULE_round7.md (common.choose_resolved), on the GEMM group's validation rows (bf16 and fp8 together: they share
one fit, as s11 scored them): the target statistic is the median where only the median misses the goal on A's
validation figures, else the p90; a candidate is eligible only if its gain is resolved (95 % paired-bootstrap
interval of candidate - A below 0); among A and the eligible, the lowest target statistic, one with fewer parameters
within the margin preferred (here all three have the same count: the lowest wins). The per-class lines are
information, not read by the rule.

Run from the repository root: PYTHONPATH=. python validation/model_selection/s36_h100_gemm_menu.py
Writes validation/model_selection/s36_h100_gemm_menu.txt.
"""
from pathlib import Path

from cosim.calibrate import fit
from hwmodels import gpu
from validation.diagnostics.gemm_choice_probe import MENU, MODEL_GEMM_TIME, priced
from validation.model_selection.common import choose_resolved, rows_of, run_one_gpu, score_candidates, score_group

OUT = Path("validation/model_selection/s36_h100_gemm_menu.txt")  # relative: no machine path in the record
H100_SET = "r18_h100"  # the H100's committed term set (fit.DEFAULT_SET) at the time of this selection

CANDIDATES = ((None, "A committed form (r18_h100: tile set 1, stream-K)"),
              ((MENU, True), "M bf16 from an nvjet-like menu, stream-K kept"),
              ((MENU, False), "MN M without stream-K for bf16"))


def run_gemm(hw_name, train, val, hw, lines):
    tr, va = rows_of(train, val, ("gemm_bf16", "gemm_fp8"))

    def score(menu, label):
        gpu.gemm_time = MODEL_GEMM_TIME if menu is None else priced(*menu)
        try:
            return score_group(hw_name, hw, tr, va, "gemm", fit.TERM_SETS[H100_SET], lines, label, by_class=True)
        finally:
            gpu.gemm_time = MODEL_GEMM_TIME

    return score_candidates(tr, va, CANDIDATES, score, lines, f"{hw_name} GEMM fit rows", rule=choose_resolved)


if __name__ == "__main__":
    run_one_gpu(OUT, run_gemm, "h100_sxm", "s36 scores the H100 only (the profile and the class that misses are the "
                                           "H100's)")
