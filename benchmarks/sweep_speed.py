"""Sweep throughput: configurations per second through the whole sweep machinery
(plan + hash keys + evaluate + append to the fsync'd store + results table) for a full
Llama-3-8B decode trace (batch 8, 4K context, MXFP4 weights) on H100-SXM variants.

    python benchmarks/sweep_speed.py [--roofline 500000] [--analytical 2000] [--cycle 200]

Levels: roofline and analytical (vectorised batches over hardware variants), cycle (one model call per point;
the level's own model when it is installed, else its documented roofline fallback —
the table says which). Executors: in-process, and the local process pool (2 workers).
Writes benchmarks/results/sweep_speed.{json,md}.
Goals (issue 7): roofline >= 100,000 configs/s; analytical >= 10,000 configs/s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

BASE = {"model": "llama3_8b", "phase": "decode", "batch": 8, "seq": 4096, "weights": "mxfp4", "acts": "bf16",
        "hw": "h100_sxm"}
FIELDS = {"hw.memory.hbm.bandwidth": {"low": "1 TB/s", "high": "10 TB/s", "log": True},
          "hw.compute.bf16": {"low": "200 TFLOP/s", "high": "2400 TFLOP/s", "log": True},
          "hw.memory.l2.bandwidth": {"low": "5 TB/s", "high": "40 TB/s"}}


# the cycle level runs on an MX systolic accelerator: MX formats, its own HBM range
CYCLE_BASE = {**BASE, "weights": "mxfp4", "acts": "mxfp8_e4m3"}
CYCLE_FIELDS = {"hw.memory.hbm.bandwidth": {"low": "0.8 TB/s", "high": "3.2 TB/s", "log": True}}


def spec(level: str, n: int, out: Path, workers: int, hw: str = "h100_sxm") -> dict:
    cycle = level == "cycle"
    return {"name": f"bench_{level}", "base": {**(CYCLE_BASE if cycle else BASE), "hw": hw, "level": level},
            "axes": [{"random": {"samples": n, "seed": 0, "fields": CYCLE_FIELDS if cycle else FIELDS}}],
            "output": str(out), "workers": workers, "batch_size": 8192}


def run(level: str, n: int, workers: int, hw: str = "h100_sxm") -> dict:
    from cosim.dse import sweep
    from hwmodels.estimate import estimate_ops
    import cosim

    d = Path(tempfile.mkdtemp(prefix="sweep_speed_"))
    try:
        t0 = time.perf_counter()
        df = sweep(spec(level, n, d, workers, hw), quiet=True, write=False)
        dt = time.perf_counter() - t0
        ok = int((df["status"] == "ok").sum())
        t1 = time.perf_counter()
        sweep(spec(level, n, d, workers, hw), quiet=True, write=False)  # everything stored: resume cost
        resume = time.perf_counter() - t1
        store_bytes = (d / "results.jsonl").stat().st_size
    finally:
        shutil.rmtree(d, ignore_errors=True)
    b = CYCLE_BASE if level == "cycle" else BASE
    trace = cosim.build_trace(b["model"], "decode", b["batch"], b["seq"], weights=b["weights"], acts=b["acts"])
    _, notes = estimate_ops(trace.ops[:1], cosim.load_hw(hw), level, True)
    model = "roofline (vectorised)" if level == "roofline" else \
        ("roofline fallback: " + next((x for x in notes if "fell back" in x), "")) if any("fell back" in x for x in notes) \
        else f"{level} model"
    return {"level": level, "hw": hw, "workers": workers, "configs": n, "ok": ok, "seconds": dt,
            "configs_per_s": n / dt, "resume_all_done_s": resume, "store_bytes_per_config": store_bytes / n,
            "model": model}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--roofline", type=int, default=500_000)
    ap.add_argument("--analytical", type=int, default=2_000)
    ap.add_argument("--cycle", type=int, default=200)
    ap.add_argument("--cycle-hw", default=None, help="accelerator config for the cycle level (default: first bundled accelerator)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "sweep_speed"))
    args = ap.parse_args(argv)

    from cosim.dse import sweep
    from hwmodels.spec import list_hw, load_hw
    sweep(spec("roofline", 10, Path(tempfile.mkdtemp()), 1), quiet=True, write=False)  # warm imports

    cycle_hw = args.cycle_hw or ("mx_systolic_128" if "mx_systolic_128" in list_hw() else
                                 next((h for h in list_hw() if load_hw(h).kind == "accelerator"), "h100_sxm"))
    rows = [run("roofline", args.roofline, 1), run("roofline", args.roofline, 2),
            run("analytical", args.analytical, 1), run("analytical", args.analytical, 2)]
    try:
        rows += [run("cycle", args.cycle, 1, cycle_hw)]
    except Exception as e:  # noqa: BLE001 - report, do not hide, a level that cannot run here
        rows.append({"level": "cycle", "hw": cycle_hw, "workers": 1, "configs": args.cycle, "ok": 0, "seconds": float("nan"),
                     "configs_per_s": float("nan"), "resume_all_done_s": float("nan"),
                     "store_bytes_per_config": float("nan"), "model": f"failed: {type(e).__name__}: {e}"})
    goals = {"roofline": 100_000, "analytical": 10_000}
    lines = ["| level | hardware | workers | configs | seconds | configs/s | goal | resume (all done) | store B/config | model |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        g = goals.get(r["level"])
        lines.append(f"| {r['level']} | {r['hw']} | {r['workers']} | {r['configs']:,} | {r['seconds']:.3f} | "
                     f"{r['configs_per_s']:,.0f} | {'>= ' + format(g, ',') if g else ''} | {r['resume_all_done_s']:.3f} s | "
                     f"{r['store_bytes_per_config']:.0f} | {r['model']} |")
    table = "\n".join(lines)
    print(table)
    machine = f"{platform.machine()} {platform.processor() or ''} ({os.cpu_count()} cpus), Python {platform.python_version()}"
    head = (f"# sweep_speed\n\nWhole sweep machinery (plan, keys, evaluate, fsync'd JSONL store, results table), "
            f"Llama-3-8B decode batch 8 / 4K context / MXFP4 weights, random H100-SXM variants "
            f"(HBM bandwidth, bf16 peak, L2 bandwidth); cycle level: {cycle_hw} with MXFP4 weights x MXFP8 "
            f"activations, HBM bandwidth varied. {machine}, {time.strftime('%Y-%m-%d')}.\n\n")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out + ".md").write_text(head + table + "\n")
    Path(args.out + ".json").write_text(json.dumps({"benchmark": "sweep_speed", "base": BASE, "fields": FIELDS,
                                                    "cycle_base": {**CYCLE_BASE, "hw": cycle_hw},
                                                    "cycle_fields": CYCLE_FIELDS,
                                                    "machine": machine, "date": time.strftime("%Y-%m-%d"),
                                                    "goals_configs_per_s": goals, "rows": rows}, indent=1))
    print(f"wrote {args.out}.json and .md")


if __name__ == "__main__":
    main()
