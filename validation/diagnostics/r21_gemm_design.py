"""Round 21 design (session 31): the H100's GEMM forms in-sample on every listed fit row. Since fit suite 11
(validation/fit11_rules.md) is round 21's validation set, the listed fit rows (the part s16 and s36 scored as carved
validation included) are its train rows; no fit11 row is read (none is listed) and no held-out suite.

s36 (round 20) found the nvjet-like tile menu lowers bf16's p90 while fp8, which kept the committed tiles, got worse
through the shared parameters (gemm.tile_c 4.56 -> 9.79); s36_fp8_tile_c: a tile constant of fp8's own does not
keep fp8's fit. Here: does fp8 keep its fit if it takes the same menu (cuBLAS's fp8 GEMMs on Hopper are nvjet kernels
too; the fp8 profile, h100_fp8_kernel_profile_cases.csv, has not been measured, so this is a hypothesis the rows test)?

Each variant re-fits the GEMM group (gemm_choice_probe.refit: common.fit_group, r18_h100 terms, from fit.INITIAL) on
the rows and prints each class's in-sample |pred / meas - 1| median / p90 % (GEMM rows with m.reliable):
  A    the committed form;
  M    bf16 from the nvjet-like menu (gemm_choice_probe.MENU), stream-K kept; fp8 the committed tiles (s36's M);
  MN   M without stream-K for bf16 (s36's MN);
  M8   both formats from the menu, stream-K kept for both (as the committed switches have it);
  M8N  both from the menu, no stream-K for either.

  PYTHONPATH=. python validation/diagnostics/r21_gemm_design.py [<out.txt>]
"""
import sys
import time
from pathlib import Path

from cosim.calibrate import dataset, fit
from hwmodels import gpu
from hwmodels.gpu import GpuParams
from validation.diagnostics.gemm_choice_probe import MENU, MODEL_GEMM_TIME, priced, refit
from validation.model_selection.common import CSV, stats

HW = "h100_sxm"


def menu_both(menu, stream_k):
    """gemm_time with every format's tiles from `menu` (no tile set adds 192 x 192), stream-K on or off."""
    def gemm_time(P, m, n, k, b, peak, e_in, e_out=2.0, fmt="bf16", details=False, bw=None):
        P = GpuParams(values={**P.values, "gemm.tile_set": 0.0,
                              "gemm.stream_k": P.values.get("gemm.stream_k", 0.0) if stream_k else 0.0},
                      sm_count=P.sm_count, l2_bytes=P.l2_bytes, provenance="diagnostic", attention_default="fa2")
        base = gpu.TILES
        gpu.TILES = menu
        try:
            return MODEL_GEMM_TIME(P, m, n, k, b, peak, e_in, e_out, fmt, details, bw)
        finally:
            gpu.TILES = base
    return gemm_time


VARIANTS = (("A committed form", None), ("M bf16 menu, stream-K kept", priced(MENU, True)),
            ("MN M without stream-K", priced(MENU, False)), ("M8 both from the menu", menu_both(MENU, True)),
            ("M8N both, no stream-K", menu_both(MENU, False)))


def main(argv):
    hw = fit.base_spec(HW)
    meas = [m for m in dataset.load_ops(CSV[HW]) if m.split == "fit" and m.op is not None]
    rows = [m for m in meas if m.cls in ("gemm_bf16", "gemm_fp8") and m.reliable]
    assert not {m.row.get("suite") for m in rows} & {"fit11"}
    lines = [f"# {Path(__file__).name}: H100 GEMM fit rows {len(rows)} "
             f"(bf16 {sum(m.cls == 'gemm_bf16' for m in rows)}, fp8 {sum(m.cls == 'gemm_fp8' for m in rows)}); "
             "in-sample median / p90 % per class",
             "variant | bf16 | fp8 | both | gemm.tile_c | gemm.mma_eff.bf16 | gemm.mma_eff.fp8_e4m3 | fit s"]
    for label, form in VARIANTS:
        t0 = time.time()
        values, pred = refit(form, rows, rows, hw)
        cells = []
        for cls in ("gemm_bf16", "gemm_fp8", None):
            sel = [i for i, m in enumerate(rows) if cls is None or m.cls == cls]
            cells.append("%5.2f / %5.2f" % stats(pred[sel], [rows[i] for i in sel]))
        lines.append(f"{label:<27} | " + " | ".join(cells) + f" | {values['gemm.tile_c']:6.2f} | "
                     f"{values['gemm.mma_eff.bf16']:.3f} | {values.get('gemm.mma_eff.fp8_e4m3', float('nan')):.3f} | "
                     f"{time.time() - t0:.0f}")
        print(lines[-1], flush=True)
    if len(argv) > 1:
        # the record leaves out the fit's wall time (the machine's, not the model's)
        Path(argv[1]).write_text("\n".join([lines[0]] + [ln.rsplit(" | ", 1)[0] for ln in lines[1:]]) + "\n")


if __name__ == "__main__":
    main(sys.argv)
