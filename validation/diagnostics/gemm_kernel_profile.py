"""Which cuBLAS kernel runs each bf16 GEMM fit shape: name, grid, block, kernel time (a diagnostic, issue 11).

The H100's bf16 GEMM rows flip by about 30 % between neighbouring few-tile long-K shapes, which an analytical
tile/wave model cannot follow without knowing the kernel cuBLAS's heuristic picked (tile shape, split-K, cluster).
This script records it, on the fit shapes only (held-out shapes are never profiled, so nothing chosen from this
record sees them).

Two steps:
  shapes (here):   python validation/diagnostics/gemm_kernel_profile.py shapes <shapes.csv>
                   writes every distinct bf16 F.linear (m, n, k) of the H100's fit runs (validation/h100_runs.csv's
                   fit suites and validation/h100_ops.csv's rows, split by dataset.split_of), in a fixed shuffle.
  profile (GPU):   python3 validation/diagnostics/gemm_kernel_profile.py profile <shapes.csv> <out.csv> [budget_s]
                   runs each shape as microbench.section_gemm does (F.linear, bf16 weights randn(n, k)), two warm
                   calls, then two calls under torch.profiler; writes one row per kernel as it goes (a cut-off run
                   keeps what it measured) and resumes where <out.csv> stops.
"""
from __future__ import annotations

import csv
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

FIELDS = ["m", "n", "k", "call", "seq", "kernel", "grid", "block", "registers", "shared_bytes", "dur_us"]


def fit_shapes(repo: Path) -> list[tuple[int, int, int]]:
    sys.path.insert(0, str(repo))
    from cosim.calibrate import dataset

    shapes = set()
    for path in (repo / "validation/h100_runs.csv", repo / "validation/h100_ops.csv"):
        for _src, row in dataset._sourced_rows(path, "ops"):
            if row.get("kind") != "gemm" or row.get("fmt") != "bf16" or row.get("impl") != "F.linear":
                continue
            if dataset.split_of(row) != "fit":
                continue
            d = json.loads(row["dims"])
            shapes.add((int(d["m"]), int(d["n"]), int(d["k"])))
    shapes = sorted(shapes)
    # a fixed shuffle: a profile cut off by its time budget still covers every region of the fit shapes
    return [shapes[i] for i in random.Random(0).sample(range(len(shapes)), len(shapes))]


def write_shapes(out: Path) -> None:
    shapes = fit_shapes(Path(__file__).resolve().parents[2])
    with open(out, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["m", "n", "k"])
        w.writerows(shapes)
    print(f"{len(shapes)} bf16 F.linear fit shapes -> {out}")


def _kernels(trace_path: str) -> list[dict]:
    with open(trace_path) as fh:
        events = json.load(fh).get("traceEvents", [])
    ks = [e for e in events if e.get("ph") == "X" and e.get("cat") == "kernel"]
    return sorted(ks, key=lambda e: e["ts"])


def profile(shapes_csv: Path, out_csv: Path, budget_s: float) -> None:
    import torch
    import torch.nn.functional as F
    from torch.profiler import ProfilerActivity, profile as tprofile

    shapes = [(int(r["m"]), int(r["n"]), int(r["k"])) for r in csv.DictReader(open(shapes_csv))]
    done = set()
    if out_csv.exists():
        done = {(int(r["m"]), int(r["n"]), int(r["k"])) for r in csv.DictReader(open(out_csv))}
    new = not out_csv.exists()
    fh = open(out_csv, "a", newline="")
    w = csv.DictWriter(fh, FIELDS)
    if new:
        w.writeheader()
    t0 = time.time()
    tmp = tempfile.mkdtemp()
    trace = os.path.join(tmp, "t.json")
    weights = {}
    n_done = 0
    for (m, n, k) in shapes:
        if (m, n, k) in done:
            continue
        if time.time() - t0 > budget_s:
            print(f"budget {budget_s:.0f} s reached after {n_done} shapes this run", flush=True)
            break
        if (n, k) not in weights:
            weights.clear()
            torch.cuda.empty_cache()
            weights[(n, k)] = torch.randn(n, k, device="cuda", dtype=torch.bfloat16) * 0.02
        wt = weights[(n, k)]
        a = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
        for _ in range(2):
            F.linear(a, wt)
        torch.cuda.synchronize()
        with tprofile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(2):
                F.linear(a, wt)
            torch.cuda.synchronize()
        prof.export_chrome_trace(trace)
        ks = _kernels(trace)
        half = len(ks) // 2 if len(ks) % 2 == 0 else len(ks)
        for i, e in enumerate(ks):
            args = e.get("args", {})
            w.writerow({"m": m, "n": n, "k": k, "call": 0 if i < half else 1, "seq": i % half if half else i,
                        "kernel": e["name"], "grid": json.dumps(args.get("grid")),
                        "block": json.dumps(args.get("block")), "registers": args.get("registers per thread"),
                        "shared_bytes": args.get("shared memory"), "dur_us": e.get("dur")})
        fh.flush()
        del a
        n_done += 1
        if n_done % 100 == 0:
            print(f"{n_done} shapes, {time.time() - t0:.0f} s", flush=True)
    fh.close()
    print(f"profiled {n_done} shapes in {time.time() - t0:.0f} s -> {out_csv}", flush=True)


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "shapes":
        write_shapes(Path(argv[1]))
        return 0
    if len(argv) >= 3 and argv[0] == "profile":
        profile(Path(argv[1]), Path(argv[2]), float(argv[3]) if len(argv) > 3 else 240.0)
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
