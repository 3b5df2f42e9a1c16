"""After s36 (session 29; its validation lines read): would fp8 GEMMs keep their fit under the nvjet-like bf16 menu
if they had a tile constant of their own? Train rows only (the H100's GEMM fit rows, the validation part carved by
dataset.carve_validation dropped unread); not a candidate, nothing chosen: s36's record stands.

Each variant re-fits the GEMM group (gemm_choice_probe.refit: common.fit_group, r18_h100 terms); "+ fp8 tile_c" adds gemm.tile_c_fp8 (from
gemm.tile_c's start value), used by fp8 GEMMs in place of gemm.tile_c. Prints each class's train median / p90 %.

  PYTHONPATH=. python validation/diagnostics/s36_fp8_tile_c.py [<out.txt>]
"""
import sys
from pathlib import Path

from cosim.calibrate import dataset, fit
from hwmodels.gpu import GpuParams
from validation.diagnostics.gemm_choice_probe import MENU, MODEL_GEMM_TIME, priced, refit
from validation.model_selection.common import CSV, stats

HW = "h100_sxm"


def own_fp8(inner):
    """`inner` for bf16; fp8 priced by the model's own form with gemm.tile_c_fp8 in place of gemm.tile_c."""
    def gemm_time(P, m, n, k, b, peak, e_in, e_out=2.0, fmt="bf16", details=False, bw=None):
        if fmt != "bf16" and "gemm.tile_c_fp8" in P.values:
            P = GpuParams(values={**P.values, "gemm.tile_c": P.values["gemm.tile_c_fp8"]}, sm_count=P.sm_count,
                          l2_bytes=P.l2_bytes, provenance="diagnostic", attention_default="fa2")
            return MODEL_GEMM_TIME(P, m, n, k, b, peak, e_in, e_out, fmt, details, bw)
        return inner(P, m, n, k, b, peak, e_in, e_out, fmt, details, bw)
    return gemm_time


def main(argv):
    hw = fit.base_spec(HW)
    meas = [m for m in dataset.load_ops(CSV[HW]) if m.split == "fit" and m.op is not None]
    train, _ = dataset.carve_validation(meas)  # the validation part is dropped here, unread
    tr = [m for m in train if m.cls in ("gemm_bf16", "gemm_fp8") and m.reliable]
    lines = [f"# {Path(__file__).name}: H100 GEMM train rows {len(tr)}; train median / p90 % per class",
             "variant | bf16 | fp8 | both | gemm.tile_c | gemm.tile_c_fp8"]
    for label, inner, own in (("A committed form", MODEL_GEMM_TIME, False),
                              ("A + fp8 tile_c", MODEL_GEMM_TIME, True),
                              ("M bf16 menu, stream-K kept", priced(MENU, True), False),
                              ("M + fp8 tile_c", priced(MENU, True), True),
                              ("MN + fp8 tile_c", priced(MENU, False), True)):
        extra = {"gemm.tile_c_fp8": fit.INITIAL["gemm.tile_c"]} if own else None
        values, pred = refit(own_fp8(inner), tr, tr, hw, extra)
        cells = []
        for cls in ("gemm_bf16", "gemm_fp8", None):
            sel = [i for i, m in enumerate(tr) if cls is None or m.cls == cls]
            cells.append("%5.2f / %5.2f" % stats(pred[sel], [tr[i] for i in sel]))
        fp8_c = f"{values['gemm.tile_c_fp8']:6.2f}" if own else "     -"
        lines.append(f"{label:<27} | " + " | ".join(cells) + f" | {values['gemm.tile_c']:6.2f} | {fp8_c}")
        print(lines[-1], flush=True)
    if len(argv) > 1:
        Path(argv[1]).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(sys.argv)
