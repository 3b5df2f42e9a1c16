"""Was a later lent H100 faster than the calibrated one on the very same shapes? (issue 11, session 22; diagnosis only).

validation/run_offsets.txt shows the committed model over-predicting near shape-free probes by 2 - 3.5 % in the H100
runs of heldout16 - heldout18 only. Two explanations: those GPUs (or their conditions) were faster, or their random
shapes are priced differently from the fit suites'. A re-measurement of the fit suite's own shapes on a later lent
H100 (validation/diagnostics/raw_h100_speed_s22/, not in any manifest, never fitted) answers for that GPU: the
measured time of each shape in h100_run4 (the calibration's default suite) over its time now, minus 1 (positive: the
later GPU is faster), median per probe class, and per fusion for the end-to-end decode steps.

Run from the repository root: PYTHONPATH=. python validation/same_shape_speed.py [BASE LATER OUT]
(default: the folders above, writing validation/diagnostics/h100_speed_s22.txt; any two raw run folders of one
suite compare the same way. The session-22 records (validation/diagnostics/):
  h100_speed_s22.txt               raw_h100_run4  vs raw_h100_speed_s22      (fit shapes, a GPU at 05:27, unit not recorded)
  h100_h18_again_s22.txt           raw_h100_run15 vs raw_h100_h18_again_s22  (heldout18's shapes, unit abb761837cfd)
  h100_pair_default_vs_run4.txt    raw_h100_run4  vs raw_h100_pair_default   (one command on unit abb761837cfd:
  h100_pair_heldout18_vs_run15.txt raw_h100_run15 vs raw_h100_pair_heldout18  fit shapes, then heldout18's)
and heldout19's unit probe (session 23, validation/heldout19_rules.md):
  h100_run16_unit_probe.txt        raw_h100_run4  vs h100_run16_unit_probe   (fit shapes after heldout19, unit
                                                                              c418bbc22083)
and heldout20's (session 24, validation/heldout20_rules.md):
  h100_run18_unit_probe.txt        raw_h100_run4  vs h100_run18_unit_probe   (fit shapes after heldout20, unit
                                                                              b7e8ad6b07e8)
fit suite 10's run (session 24; the fit rows' unit) and heldout21's (validation/heldout21_rules.md):
  h100_run19_unit_probe.txt        raw_h100_run4  vs h100_run19_unit_probe   (fit shapes after fit10, unit
                                                                              0b000e63f731)
  h100_run20_unit_probe.txt        raw_h100_run4  vs h100_run20_unit_probe   (fit shapes after heldout21, unit
                                                                              bddd2d89743f)
heldout22's (session 25, validation/heldout22_rules.md):
  h100_run21_unit_probe.txt        raw_h100_run4  vs h100_run21_unit_probe   (fit shapes after heldout22, unit
                                                                              81fa43c8f9e9)
heldout23's (session 26, validation/heldout23_rules.md):
  h100_run22_unit_probe.txt        raw_h100_run4  vs h100_run22_unit_probe   (fit shapes after heldout23, unit
                                                                              4b0b0417a78e)
heldout24's (session 27, validation/heldout24_rules.md):
  h100_run23_unit_probe.txt        raw_h100_run4  vs h100_run23_unit_probe   (fit shapes after heldout24, unit
                                                                              7f077edb9e6c)
Each record names both runs' GPU (the NVML UUID hash the microbenchmark records since session 22).
"""
import csv
import sys
import json
from pathlib import Path

import numpy as np

BASE = Path("validation/raw_h100_run4")
LATER = Path("validation/diagnostics/raw_h100_speed_s22")
OUT = Path("validation/diagnostics/h100_speed_s22.txt")


def ops(folder):
    out = {}
    with open(folder / "ops.csv", newline="") as f:
        for r in csv.DictReader(f):
            try:
                out[(r["section"], r["kind"], r["name"], r["fmt"], r["dims"], r["impl"])] = float(r["median_s"])
            except ValueError:  # a FAILED row has no time
                continue
    return out


def e2e(folder):
    out = {}
    with open(folder / "e2e.csv", newline="") as f:
        for r in csv.DictReader(f):
            if r.get("median_s") and not r.get("mode", "").startswith("profile"):
                out[(r["model"], r["fusion"], r["phase"], r["mode"], r["batch"], r["ctx"], r.get("seq"))] = float(
                    r["median_s"])
    return out


def _gemv(key):
    d = json.loads(key[4])
    return key[0] == "gemm" and key[3] == "bf16" and d["m"] <= 16 and 2 * d["n"] * d["k"] >= 32e6


def line(name, keys, a, b):
    if not keys:
        return f"| {name} | 0 | - | - |"
    r = 100.0 * (np.array([a[k] / b[k] for k in keys]) - 1.0)
    return f"| {name} | {len(r)} | {np.median(r):+.1f} | {np.percentile(r, 10):+.1f} .. {np.percentile(r, 90):+.1f} |"


def unit(folder) -> str:
    """The run's GPU as its env.json records it: the NVML UUID hash, or why there is none."""
    env = json.loads((folder / "env.json").read_text())
    return env.get("nvml_uuid_sha256") or "not recorded (a run before the microbenchmark recorded it, session 22)"


def main(base=BASE, later=LATER, out=OUT):
    a, b = ops(base), ops(later)
    common = [k for k in a if k in b]
    if not common:
        raise SystemExit(f"error: {base}/ops.csv and {later}/ops.csv share no (section, kind, name, fmt, dims, impl) "
                         f"row; expected two runs of the same suite")
    lines = ["# Same shapes, two lent GPUs: base run time / later run time - 1, % (validation/same_shape_speed.py)",
             "", f"base run: {base}; later run: {later} ({json.loads((later / 'env.json').read_text())['date_utc']})",
             f"GPU (NVML UUID hash): base {unit(base)}; later {unit(later)}", "",
             "| probe | n | median | p10 .. p90 |", "|---|--:|--:|---|",
             line("GEMV: bf16, M <= 16, >= 32 MB of weights", [k for k in common if _gemv(k)], a, b),
             line("GEMM: bf16, >= 100 us", [k for k in common if k[0] == "gemm" and k[3] == "bf16" and a[k] >= 100e-6], a, b),
             line("every GEMM row", [k for k in common if k[0] == "gemm"], a, b),
             line("elementwise rows >= 30 us", [k for k in common if k[0] == "elementwise" and a[k] >= 30e-6], a, b)]
    ea, eb = e2e(base), e2e(later)
    ce = [k for k in ea if k in eb]
    for mode in ("graph", "eager"):
        for fusion in ("eager", "engine"):
            keys = [k for k in ce if k[2] == "decode" and k[3] == mode and k[1] == fusion]
            if keys:
                lines.append(line(f"end to end decode, {mode} mode, {fusion} fusion", keys, ea, eb))
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    if len(sys.argv) not in (1, 4):
        raise SystemExit("usage: python validation/same_shape_speed.py [BASE_RAW_DIR LATER_RAW_DIR OUT_TXT]")
    main(*(Path(x) for x in sys.argv[1:]))
