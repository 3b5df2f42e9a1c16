"""Speed of cosim's systolic cycle model vs SCALE-Sim 3.0.0 on the same grid of layers,
timed side by side in ONE run.

By default the script installs scalesim==3.0.0 (with numpy<2.4) into a separate virtual
environment (never into this one; ~/.cache/cosim/scalesim-venv or $COSIM_SCALESIM_VENV),
runs it on the first --ref-limit grid points in a subprocess while our closed forms
(compat="scalesim") run on the same points in this process, and reports the same-run
speed-up, checking compute cycles case by case. If SCALE-Sim cannot be installed or run
here, the table says so in its first line and every ratio is against the wall times
RECORDED in the golden set (an earlier run on the same class of machine) — labelled so.
The other grid points (beyond --ref-limit) are listed with the recorded-time ratio,
labelled, and kept out of the same-run summary. Also times a full Llama-3-8B decode
trace at level="cycle" on mx_systolic_128.

Writes benchmarks/results/systolic_speed.{json,md,png} and scalesim_reference.json.
    PYTHONPATH=. python benchmarks/systolic_speed.py [--ref-limit N] [--no-reference]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / ".." / "shared" / "golden" / "scalesim" / "cases.csv"
OUT = ROOT / "benchmarks" / "results"


def load_grid():
    with GOLDEN.open() as f:
        rows = list(csv.DictReader(f))
    grid = {}
    for r in rows:
        key = (r["workload"], int(r["array_rows"]), int(r["array_cols"]), r["dataflow"])
        g = grid.setdefault(key, {"row": r, "ref_wall": [], "compute_cycles": int(r["compute_cycles_excl_stalls"])})
        # only CALC rows time pure compute-side work comparable to ours (USER adds stall modelling)
        if r["bw_mode"] == "CALC":
            g["ref_wall"].append(float(r["sim_wall_s"]))
    return grid


def call(row: dict):
    """(function, args, kwargs) of our model for one grid point, parsed once."""
    from hwmodels.systolic import conv_cycles, gemm_cycles

    i = lambda k: int(row[k])  # noqa: E731
    kw = dict(rows=i("array_rows"), cols=i("array_cols"), dataflow=row["dataflow"], compat="scalesim")
    if row["layer_type"] == "gemm":
        return gemm_cycles, (i("gemm_m"), i("gemm_n"), i("gemm_k")), kw
    return conv_cycles, (i("ifmap_h"), i("ifmap_w"), i("filter_h"), i("filter_w"), i("channels"),
                         i("num_filters"), i("stride_h"), i("stride_w")), kw


def ours(row: dict):
    fn, a, kw = call(row)
    return fn(*a, **kw)


def time_ours(row: dict, repeat: int = 200) -> float:
    """Best of 3 mean times of one model call (the same layer the reference ran)."""
    fn, a, kw = call(row)
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(repeat):
            fn(*a, **kw)
        best = min(best, (time.perf_counter() - t0) / repeat)
    return best


def llama_decode_seconds() -> dict:
    from hwmodels import cycle
    from hwmodels.spec import load_hw
    from workloads.builder import build_trace
    from workloads.models import load_model

    hw = load_hw("mx_systolic_128")
    trace = build_trace(load_model("llama3_8b"), phase="decode", batch=1, seq=4096)
    cycle.estimate_trace(trace.ops, hw)  # warm caches (format registry, context solve)
    t0 = time.perf_counter()
    costs, _ = cycle.estimate_trace(trace.ops, hw)
    dt = time.perf_counter() - t0
    lat = sum(c.latency_s * op.repeat for op, c in zip(trace.ops, costs))
    return {"ops": len(trace.ops), "eval_s": dt, "decode_latency_s": lat}


# --------------------------------------------------------------------------------- reference
_DRIVER = r'''
import sys, json, time, os, tempfile, csv
from scalesim.scale_sim import scalesim
cases = json.load(open(sys.argv[1]))
out = []
for c in cases:
    d = tempfile.mkdtemp()
    cfg = os.path.join(d, "c.cfg"); topo = os.path.join(d, "t.csv"); lay = os.path.join(d, "l.csv")
    open(cfg, "w").write(f"""[general]
run_name = r
[architecture_presets]
ArrayHeight : {c['R']}
ArrayWidth : {c['C']}
IfmapSramSzkB : 256
FilterSramSzkB : 256
OfmapSramSzkB : 128
IfmapOffset : 0
FilterOffset : 10000000
OfmapOffset : 20000000
Bandwidth : 10
Dataflow : {c['df']}
MemoryBanks : 1
ReadRequestBuffer : 32
WriteRequestBuffer : 32
[layout]
IfmapCustomLayout : False
IfmapSRAMBankBandwidth : 10
IfmapSRAMBankNum : 1
IfmapSRAMBankPort : 2
FilterCustomLayout : False
FilterSRAMBankBandwidth : 10
FilterSRAMBankNum : 1
FilterSRAMBankPort : 2
[sparsity]
SparsitySupport : false
SparseRep : ellpack_block
OptimizedMapping : false
BlockSize : 8
RandomNumberGeneratorSeed : 40
[run_presets]
InterfaceBandwidth : CALC
UseRamulatorTrace : False
""")
    open(topo, "w").write("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
                          f"l0, {c['ih']}, {c['iw']}, {c['fh']}, {c['fw']}, {c['ch']}, {c['nf']}, {c['s']},\n")
    open(lay, "w").write("Layer name, IFMAP Height Intraline Factor, IFMAP Width Intraline Factor, Filter Height Intraline Factor, Filter Width Intraline Factor, Channel Intraline Factor, Num Filter Intraline Factor, IFMAP Height Intraline Order, IFMAP Width Intraline Order, Filter Height Intraline Order, Filter Width Intraline Order, Channel Intraline Order, Num Filter Intraline Order,\n"
                         "l0, 1, 1, 1, 1, 1, 1, 0, 1, 2, 3, 4, 5,\n")
    t0 = time.perf_counter()
    s = scalesim(save_disk_space=True, verbose=False, config=cfg, topology=topo, layout=lay, input_type_gemm=False)
    s.run_scale(top_path=d)
    wall = time.perf_counter() - t0
    rep = next(p for p in (os.path.join(r, f) for r, _, fs in os.walk(d) for f in fs) if p.endswith("COMPUTE_REPORT.csv"))
    row = list(csv.reader(open(rep)))[1]
    out.append({"key": c["key"], "wall_s": wall, "total": int(float(row[2])), "stall": int(float(row[3]))})
json.dump(out, open(sys.argv[2], "w"))
'''


def run_reference(grid: dict, limit: int) -> dict:
    env_dir = Path(os.environ.get("COSIM_SCALESIM_VENV", Path.home() / ".cache" / "cosim" / "scalesim-venv"))
    py = env_dir / "bin" / "python"
    if not py.exists():
        print(f"creating a separate environment for the reference at {env_dir}")
        subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "scalesim==3.0.0", "numpy<2.4", "pandas"], check=True)
    cases = []
    for key, g in list(grid.items())[: limit or None]:
        r = g["row"]
        cases.append({"key": "|".join(map(str, key)), "R": int(r["array_rows"]), "C": int(r["array_cols"]),
                      "df": r["dataflow"], "ih": int(r["ifmap_h"]), "iw": int(r["ifmap_w"]),
                      "fh": int(r["filter_h"]), "fw": int(r["filter_w"]), "ch": int(r["channels"]),
                      "nf": int(r["num_filters"]), "s": int(r["stride_h"])})
    with tempfile.TemporaryDirectory() as d:
        src, dst, drv = Path(d) / "in.json", Path(d) / "out.json", Path(d) / "drv.py"
        src.write_text(json.dumps(cases))
        drv.write_text(_DRIVER)
        subprocess.run([str(py), str(drv), str(src), str(dst)], check=True)
        return {c["key"]: c for c in json.loads(dst.read_text())}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ref-limit", type=int, default=40, help="grid points SCALE-Sim runs on in this run (0 = all)")
    ap.add_argument("--no-reference", action="store_true", help="do not run SCALE-Sim: recorded times only")
    ap.add_argument("--with-reference", action="store_true", help=argparse.SUPPRESS)  # the default now
    args = ap.parse_args(argv)
    if not GOLDEN.is_file():
        print(f"golden set not found at {GOLDEN}; nothing to compare against")
        return 1
    grid = load_grid()
    ref, ref_status = {}, "not run (--no-reference)"
    if not args.no_reference:
        try:
            ref = run_reference(grid, args.ref_limit)
            ref_status = f"SCALE-Sim 3.0.0 run in this same run on {len(ref)} grid points"
            OUT.mkdir(parents=True, exist_ok=True)
            (OUT / "scalesim_reference.json").write_text(json.dumps(ref, indent=1))
        except (OSError, subprocess.SubprocessError) as e:
            ref_status = f"SCALE-Sim could not be installed or run here ({type(e).__name__})"
    rows = []
    for key, g in grid.items():
        o = ours(g["row"])
        t = time_ours(g["row"], repeat=50 if o.folds > 10_000 else 200)
        rec = {"layer": key[0], "array": f"{key[1]}x{key[2]}", "dataflow": key[3],
               "compute_cycles_ours": o.compute_cycles, "compute_cycles_golden": g["compute_cycles"],
               "match": o.compute_cycles == g["compute_cycles"], "ours_s": t,
               "scalesim_recorded_s": statistics.median(g["ref_wall"]) if g["ref_wall"] else None}
        k = "|".join(map(str, key))
        if k in ref:
            rec["scalesim_measured_s"] = ref[k]["wall_s"]
            rec["scalesim_measured_cycles"] = ref[k]["total"] - ref[k]["stall"]
            rec["match_measured"] = rec["scalesim_measured_cycles"] == o.compute_cycles
            rec["speedup_same_run"] = ref[k]["wall_s"] / t
        rec["speedup_recorded"] = rec["scalesim_recorded_s"] / t if rec["scalesim_recorded_s"] else None
        rec["speedup"] = rec.get("speedup_same_run") or rec["speedup_recorded"]
        rows.append(rec)
    same = [r["speedup_same_run"] for r in rows if r.get("speedup_same_run")]
    sp = same or [r["speedup_recorded"] for r in rows if r["speedup_recorded"]]
    llama = llama_decode_seconds()
    summary = {"grid_points": len(rows), "all_match_golden": all(r["match"] for r in rows),
               "same_run": bool(same), "same_run_points": len(same), "reference_status": ref_status,
               "speedup_min": min(sp), "speedup_median": statistics.median(sp), "speedup_max": max(sp),
               "ours_total_s": sum(r["ours_s"] for r in rows),
               "scalesim_total_s": sum((r.get("scalesim_measured_s") or r["scalesim_recorded_s"] or 0) for r in rows),
               "reference": (f"SCALE-Sim 3.0.0 timed in this same run on {len(same)} grid points "
                             f"(ratios over those only)") if same
                            else f"RECORDED SCALE-Sim wall times of the golden set (CALC rows, median; an earlier "
                                 f"run, not this one): {ref_status}",
               "reference_measured_match": all(r.get("match_measured", True) for r in rows),
               "llama3_8b_decode_cycle_level": llama}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "systolic_speed.json").write_text(json.dumps({"summary": summary, "rows": rows}, indent=1))
    hdr = ("| layer | array | df | cycles (ours) | golden | ours (µs) | SCALE-Sim this run (s) | speed-up (same run) "
           "| SCALE-Sim recorded (s) | speed-up vs recorded |")
    lines = [hdr, "|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: -(r.get("speedup_same_run") or 0)):
        f = lambda v, fmt: "n/a" if v is None else format(v, fmt)  # noqa: E731
        lines.append(f"| {r['layer']} | {r['array']} | {r['dataflow']} | {r['compute_cycles_ours']} | "
                     f"{r['compute_cycles_golden']} | {r['ours_s'] * 1e6:.1f} | {f(r.get('scalesim_measured_s'), '.3g')} | "
                     f"{f(r.get('speedup_same_run'), ',.0f')}{'x' if r.get('speedup_same_run') else ''} | "
                     f"{f(r['scalesim_recorded_s'], '.3g')} | {f(r['speedup_recorded'], ',.0f')}"
                     f"{'x' if r['speedup_recorded'] else ''} |")
    head = [("Same-run comparison: SCALE-Sim timed in this run." if same else
             f"NOTE: {ref_status}; every ratio below uses SCALE-Sim wall times RECORDED in the golden set."),
            f"Grid points: {summary['grid_points']}; compute cycles identical to SCALE-Sim on all: "
            f"{summary['all_match_golden']}.",
            f"Speed-up (reference {summary['reference']}): min {summary['speedup_min']:,.0f}x, "
            f"median {summary['speedup_median']:,.0f}x, max {summary['speedup_max']:,.0f}x; whole grid "
            f"{summary['ours_total_s'] * 1e3:.1f} ms (ours) vs {summary['scalesim_total_s']:.0f} s.",
            f"Llama-3-8B decode trace ({llama['ops']} ops) at level=cycle on mx_systolic_128: "
            f"{llama['eval_s'] * 1e3:.2f} ms to evaluate.", ""]
    (OUT / "systolic_speed.md").write_text("\n".join(head + lines) + "\n")
    print("\n".join(head))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        pts = [r for r in rows if r["speedup"]]
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.scatter([r.get("scalesim_measured_s") or r["scalesim_recorded_s"] for r in pts],
                   [r["ours_s"] for r in pts], s=10)
        ax.set(xscale="log", yscale="log", xlabel="SCALE-Sim wall time per layer (s)",
               ylabel="cosim closed form (s)", title=f"median speed-up {summary['speedup_median']:,.0f}x")
        fig.tight_layout()
        fig.savefig(OUT / "systolic_speed.png", dpi=110)
    except ImportError:
        pass
    return 0 if summary["all_match_golden"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
