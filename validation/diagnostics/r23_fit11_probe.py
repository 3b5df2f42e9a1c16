"""Design information for round 22 (session 32), read before validation/fit12_rules.md and the round's script were
written; fit11 (validation/raw_h100_run24) is no longer unseen (round 21 scored it), so nothing here is a score.

Two questions, residual-free GEMM group prices (common.fit_group via gemm_choice_probe.refit, r18_h100 terms, from
fit.INITIAL), |pred / meas - 1| median / p90 % per class:
  1. Does fitting rows of the held-out GEMM distribution help the committed form? Fit on the listed H100 GEMM fit rows
     with and without half of fit11's draws (even or odd draws, _fit11_draw's seeds), scored on the other half.
  2. r22_gemm_fp8_menu.py's variants, fitted on the listed rows, on all of fit11.

  PYTHONPATH=. python validation/diagnostics/r23_fit11_probe.py [<out.txt>]
"""
import sys
from pathlib import Path

import numpy as np

from cosim.calibrate import dataset, fit
from validation.diagnostics.fit11_committed_model import RUN, draw_of
from validation.diagnostics.gemm_choice_probe import refit
from validation.diagnostics.r22_gemm_fp8_menu import VARIANTS
from validation.model_selection.common import CSV, rows_of, stats

HW = "h100_sxm"


def cells(pred, rows):
    out = []
    for cls in ("gemm_bf16", "gemm_fp8", None):
        sel = [i for i, m in enumerate(rows) if cls is None or m.cls == cls]
        out.append("%5.2f / %5.2f" % stats(pred[sel], [rows[i] for i in sel]))
    return " | ".join(out)


def main(argv):
    hw = fit.base_spec(HW)
    listed = [m for m in dataset.load_ops(CSV[HW]) if m.split == "fit" and m.op is not None]
    fresh = [m for m in dataset.load_ops(RUN) if m.split == "fit" and m.op is not None]
    tr, va = rows_of(listed, fresh, ("gemm_bf16", "gemm_fp8"))
    draw = np.array([draw_of()[(m.op.dims["m"], m.op.dims["n"], m.op.dims["k"])] for m in va])
    lines = [f"# {Path(__file__).name}: listed H100 GEMM fit rows {len(tr)}, fit11 rows {len(va)} ({RUN}); "
             "information, not a score", "", "1. fit rows -> scored rows | bf16 | fp8 | both"]
    for fold in ((0, 2, 4), (1, 3, 5)):
        inn = [m for m, i in zip(va, draw) if i in fold]
        out = [m for m, i in zip(va, draw) if i not in fold]
        for label, rows in ((f"listed -> fit11 draws not in {fold}", tr), (f"listed + draws {fold} -> the rest",
                                                                         tr + inn),
                            (f"draws {fold} alone -> the rest", inn)):
            lines.append(f"{label:<40} | " + cells(refit(None, rows, out, hw)[1], out))
            print(lines[-1], flush=True)
    lines += ["", "2. fitted on the listed rows, scored on all of fit11 | params | bf16 | fp8 | both"]
    for label, form, c8 in VARIANTS:
        extra = {"gemm.tile_c_fp8": fit.INITIAL["gemm.tile_c"]} if c8 else None
        lines.append(f"{label:<16} | {len(fit.GROUPS['gemm']) + c8} | " + cells(refit(form, tr, va, hw, extra)[1], va))
        print(lines[-1], flush=True)
    if len(argv) > 1:
        Path(argv[1]).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(sys.argv)
