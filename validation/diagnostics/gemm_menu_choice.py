"""Does the model's own tile choice follow cuBLAS's? (a diagnostic, issue 11, session 29; written after s36's record
was read.) For every shape of the H100 choice map (h100_gemm_choice_map.csv.gz, kernel names only) that is not a
shape of any validation-part or held-out row of either GPU's manifest (the map's grid holds some; their shapes, not
their timings, are read here to leave them out), the tile the model chooses against the tile of the kernel cuBLAS ran:

  A  the committed H100 calibration (gemm.tile_set 1's list, stream-K among the choices; fitted on every fit row);
  M  s36's candidate M (the nvjet-like bf16 menu, stream-K kept) with the GEMM group re-fitted on the train rows as
     s36 fitted it (gemm_choice_probe.refit: the same fit).

Reported: the share of shapes where the model's tile equals cuBLAS's (tokens x weight rows), where the tile counts
are equal, where one wave is run by both, and where the model takes stream-K or split-K while cuBLAS ran a
data-parallel kernel. Nothing is chosen on this record.

  PYTHONPATH=. python validation/diagnostics/gemm_menu_choice.py [<out.txt>]
"""
import csv
import gzip
import json
import math
import sys
from pathlib import Path

import numpy as np

from cosim.calibrate import dataset, fit
from hwmodels.gpu import GpuParams, params_for
from hwmodels.spec import load_hw
from validation.diagnostics import gemm_choice_probe as probe
from validation.diagnostics.gemm_choice_map import main_kernel
from validation.model_selection.common import CSV

MAP = Path("validation/diagnostics/h100_gemm_choice_map.csv.gz")


def left_out_shapes() -> set:
    """(m, n, k) of every GEMM row of either manifest that is not in a fit suite's train part."""
    out = set()
    for path in CSV.values():
        rows = [m for m in dataset.load_ops(path) if m.op is not None and m.cls in ("gemm_bf16", "gemm_fp8")]
        _, val = dataset.carve_validation([m for m in rows if m.split == "fit"])
        for m in val + [m for m in rows if m.split != "fit"]:
            d = json.loads(m.row["dims"])
            out.add((d["m"], d["n"], d["k"]))
    return out


def main(argv):
    with gzip.open(MAP, "rt", newline="") as fh:
        got = {(int(r["m"]), int(r["n"]), int(r["k"])): main_kernel(r["kernels"]) for r in csv.DictReader(fh)}
    skip = left_out_shapes()
    shapes = sorted(s for s, name in got.items() if s not in skip and probe.NAME.search(name))
    m, n, k = (np.array([s[i] for s in shapes], dtype=float) for i in range(3))
    committed = params_for(load_hw(probe.HW))
    hw = fit.base_spec(probe.HW)
    meas = [x for x in dataset.load_ops(CSV[probe.HW]) if x.split == "fit" and x.op is not None]
    train, _ = dataset.carve_validation(meas)
    tr = [x for x in train if x.cls in ("gemm_bf16", "gemm_fp8") and x.reliable]
    menu_time = probe.priced(probe.MENU, True)
    values, _ = probe.refit(menu_time, tr, [x for x in tr if x.cls == "gemm_bf16"], hw)
    fitted = GpuParams(values=values, sm_count=committed.sm_count, l2_bytes=committed.l2_bytes, provenance="diagnostic",
                       attention_default="fa2")
    sms = committed.sm_count
    cub = [tuple(int(x) for x in probe.NAME.search(got[s]).groups()[:2]) for s in shapes]  # (weight rows, tokens)
    cub_split = np.array(["splitK" in got[s] for s in shapes])
    cub_tiles = np.array([math.ceil(s[1] / w) * math.ceil(s[0] / t) for s, (w, t) in zip(shapes, cub)])
    lines = [f"# {Path(__file__).name}: {len(shapes)} map shapes ({len(got) - len(shapes)} left out: validation-part "
             "or held-out shapes of either manifest, or no nvjet name)",
             "model | same tile | same tile count | both one wave | model K-parallel where cuBLAS ran data-parallel "
             "(shares of all shapes)"]
    for label, P, fn in (("A committed calibration", committed, probe.MODEL_GEMM_TIME),
                         ("M s36's menu, train fit", fitted, menu_time)):
        _, det = fn(P, m, n, k, np.ones_like(m), hw.peak("bf16"), 2.0, 2.0, "bf16", True)
        bm, bn, waves, split, sk = (det["tile"][:, i] for i in range(5))
        same = np.mean([(int(a), int(b)) == (t, w) for a, b, (w, t) in zip(bm, bn, cub)])
        tiles = np.ceil(m / bm) * np.ceil(n / bn)
        kpar = ((split > 1) | (sk > 0)) & ~cub_split
        lines.append(f"{label:<26} | {same:6.1%} | {np.mean(tiles == cub_tiles):6.1%} | "
                     f"{np.mean((tiles <= sms) & (cub_tiles <= sms) & (split == 1) & (sk == 0) & ~cub_split):6.1%}"
                     f" of {np.mean((cub_tiles <= sms) & ~cub_split):.1%} | {np.mean(kpar):6.1%}")
        print(lines[-1], flush=True)
    if len(argv) > 1:
        Path(argv[1]).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(sys.argv)
