"""After round 21 (session 31): with the fp8 kernel profile read (fp8_kernel_names.txt: nvjet qqtst kernels, token tiles
8 - 160, weight tiles mostly 64 and 128), does an fp8 menu of its own keep fp8's fit while bf16 takes the nvjet-like
menu? In-sample on every listed H100 GEMM fit row (fit11 is not listed and not read: round 21 scored it, so it is no
longer unseen; a round built on these forms needs fresh validation rows). Design information, not a round.

Variants (each re-fits the GEMM group, gemm_choice_probe.refit: common.fit_group, r18_h100 terms, from fit.INITIAL):
  A      the committed form;
  A+c8   A with a tile constant of fp8's own (gemm.tile_c_fp8; one more parameter);
  M8f    bf16 from gemm_choice_probe.MENU, fp8 from FP8_MENU (token tiles 8 - 160 in steps of 8 x the weight tiles
         the fp8 profile shows most, either way round), stream-K kept where the committed switches keep it;
  M8fN   M8f without stream-K for bf16;
  M8f+c8 M8f with gemm.tile_c_fp8 (one more parameter).

  PYTHONPATH=. python validation/diagnostics/r22_gemm_fp8_menu.py [<out.txt>]
"""
import sys
from pathlib import Path

from cosim.calibrate import dataset, fit
from hwmodels import gpu
from hwmodels.gpu import GpuParams
from validation.diagnostics.gemm_choice_probe import MENU, MODEL_GEMM_TIME, priced, refit
from validation.model_selection.common import CSV, stats

HW = "h100_sxm"
FP8_TOKENS, FP8_WEIGHTS = tuple(range(8, 161, 8)), (64, 80, 96, 112, 128, 144, 192, 256)
FP8_MENU = (tuple((t, w) for t in FP8_TOKENS for w in FP8_WEIGHTS)
            + tuple((w, t) for t in FP8_TOKENS for w in FP8_WEIGHTS))


def _with(P, **values):
    return GpuParams(values={**P.values, **values}, sm_count=P.sm_count, l2_bytes=P.l2_bytes, provenance="diagnostic",
                     attention_default="fa2")


def menus(bf16_menu, fp8_menu, stream_k):
    """bf16 priced by gemm_choice_probe.priced(bf16_menu, stream_k); fp8 by the model's own form on fp8_menu alone."""
    bf16 = priced(bf16_menu, stream_k)

    def gemm_time(P, m, n, k, b, peak, e_in, e_out=2.0, fmt="bf16", details=False, bw=None):
        if fmt == "bf16":
            return bf16(P, m, n, k, b, peak, e_in, e_out, fmt, details, bw)
        base = gpu.TILES
        gpu.TILES = fp8_menu
        try:
            return MODEL_GEMM_TIME(_with(P, **{"gemm.tile_set": 0.0}), m, n, k, b, peak, e_in, e_out, fmt, details, bw)
        finally:
            gpu.TILES = base
    return gemm_time


def own_fp8_tile_c(inner):
    def gemm_time(P, m, n, k, b, peak, e_in, e_out=2.0, fmt="bf16", details=False, bw=None):
        if fmt != "bf16":
            P = _with(P, **{"gemm.tile_c": P.values["gemm.tile_c_fp8"]})
        return inner(P, m, n, k, b, peak, e_in, e_out, fmt, details, bw)
    return gemm_time


VARIANTS = (("A committed form", MODEL_GEMM_TIME, False), ("A+c8", own_fp8_tile_c(MODEL_GEMM_TIME), True),
            ("M8f", menus(MENU, FP8_MENU, True), False), ("M8fN", menus(MENU, FP8_MENU, False), False),
            ("M8f+c8", own_fp8_tile_c(menus(MENU, FP8_MENU, True)), True))


def main(argv):
    hw = fit.base_spec(HW)
    rows = [m for m in dataset.load_ops(CSV[HW]) if m.split == "fit" and m.op is not None
            and m.cls in ("gemm_bf16", "gemm_fp8") and m.reliable]
    lines = [f"# {Path(__file__).name}: H100 GEMM fit rows {len(rows)}; in-sample median / p90 % per class",
             "variant | params | bf16 | fp8 | both | gemm.tile_c | gemm.tile_c_fp8"]
    for label, form, c8 in VARIANTS:
        values, pred = refit(form, rows, rows, hw, {"gemm.tile_c_fp8": fit.INITIAL["gemm.tile_c"]} if c8 else None)
        cells = []
        for cls in ("gemm_bf16", "gemm_fp8", None):
            sel = [i for i, m in enumerate(rows) if cls is None or m.cls == cls]
            cells.append("%5.2f / %5.2f" % stats(pred[sel], [rows[i] for i in sel]))
        c8_value = f"{values['gemm.tile_c_fp8']:6.2f}" if c8 else "     -"
        lines.append(f"{label:<16} | {len(fit.GROUPS['gemm']) + c8} | " + " | ".join(cells)
                     + f" | {values['gemm.tile_c']:6.2f} | {c8_value}")
        print(lines[-1], flush=True)
    if len(argv) > 1:
        Path(argv[1]).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(sys.argv)
