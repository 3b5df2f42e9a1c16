"""Which kernel runs each bf16 GEMM and FA2-pinned prefill fit shape on the H100: name, grid, block, registers,
shared memory, grid CTAs per SM (kineto's "blocks per SM": grid / SMs, not residency), kernel time (a diagnostic,
issue 11).

The H100's bf16 GEMM rows flip by about 30 % between neighbouring few-tile long-K shapes, which an analytical
tile/wave model cannot follow without knowing the kernel cuBLAS's heuristic picked (tile shape, split-K, cluster);
FA2-pinned prefill misses on short launches, where the kernel and its waves decide the time. This script records
both, on fit shapes only (held-out shapes are never profiled, so nothing chosen from this record has seen them).

Two steps (three with the fp8 list):
  shapes (here):   python validation/diagnostics/kernel_profile.py shapes <shapes.csv>
                   every distinct bf16 F.linear (m, n, k) of the H100's fit rows (validation/h100_runs.csv's fit
                   suites and validation/h100_ops.csv, split by dataset.split_of) and N_FA2 of its FA2-pinned
                   prefill fit shapes, in one fixed shuffle (a profile cut off by its budget still covers both)
  shapes-fp8 (here): python validation/diagnostics/kernel_profile.py shapes-fp8 <shapes.csv>
                   (session 29) every distinct fp8 torch._scaled_mm (m, n, k) of the H100's fit rows in
                   validation/h100_runs.csv, the TRAIN part only (dataset.carve_validation's validation part is
                   left out: a candidate designed from this profile must not have seen those shapes' kernels), in one
                   fixed shuffle
  profile (GPU):   python3 validation/diagnostics/kernel_profile.py profile <shapes.csv> <out.csv> [budget_s]
                   runs each case as microbench does (F.linear on bf16 weights randn(n, k); torch._scaled_mm on
                   fp8 e4m3 operands with unit fp32 scales, bf16 out, no fast accumulation; SDPA pinned to
                   FLASH_ATTENTION with native GQA), two warm calls, then two calls under torch.profiler; writes one
                   row per kernel as it goes and resumes where <out.csv> stops.
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

N_FA2 = 160
FIELDS = ["case", "dims", "call", "seq", "kernel", "grid", "block", "registers", "shared_bytes", "blocks_per_sm",
          "dur_us"]


def fit_cases(repo: Path) -> list[tuple[str, str]]:
    sys.path.insert(0, str(repo))
    from cosim.calibrate import dataset

    gemm, fa2 = set(), set()
    for path in (repo / "validation/h100_runs.csv", repo / "validation/h100_ops.csv"):
        for m in dataset.load_ops(path):
            if m.split != "fit":
                continue
            dims = json.dumps(json.loads(m.row["dims"]), sort_keys=True)
            if m.cls == "gemm_bf16" and m.impl == "F.linear":
                gemm.add(("gemm_bf16", dims))
            elif m.impl == "sdpa:FLASH_ATTENTION:gqa" and m.row.get("name") == "prefill":
                fa2.add(("fa2_prefill", dims))
    rng = random.Random(0)
    return _shuffled(sorted(gemm) + rng.sample(sorted(fa2), min(N_FA2, len(fa2))), rng)


def _shuffled(cases: list, rng=None) -> list:
    """The cases in one fixed shuffle (a profile cut off by its budget still covers every kind)."""
    rng = rng or random.Random(0)
    return [cases[i] for i in rng.sample(range(len(cases)), len(cases))]


def fp8_train_cases(repo: Path) -> list[tuple[str, str]]:
    sys.path.insert(0, str(repo))
    from cosim.calibrate import dataset

    fit_rows = [m for m in dataset.load_ops(repo / "validation/h100_runs.csv") if m.split == "fit"]
    train, _ = dataset.carve_validation(fit_rows)  # the validation part is left out, unread
    cases = sorted({("gemm_fp8", json.dumps(json.loads(m.row["dims"]), sort_keys=True)) for m in train
                    if m.cls == "gemm_fp8" and m.impl == "torch._scaled_mm"})
    return _shuffled(cases)


def write_cases(out: Path, fp8: bool = False) -> None:
    repo = Path(__file__).resolve().parents[2]
    cases = fp8_train_cases(repo) if fp8 else fit_cases(repo)
    with open(out, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["case", "dims"])
        w.writerows(cases)
    n_fa2 = sum(c == "fa2_prefill" for c, _ in cases)
    n_fp8 = sum(c == "gemm_fp8" for c, _ in cases)
    print(f"{len(cases) - n_fa2 - n_fp8} bf16 F.linear, {n_fp8} fp8 torch._scaled_mm (train part) and {n_fa2} "
          f"FA2-pinned prefill fit shapes -> {out}")


def _kernels(trace_path: str) -> list[dict]:
    with open(trace_path) as fh:
        events = json.load(fh).get("traceEvents", [])
    return sorted((e for e in events if e.get("ph") == "X" and e.get("cat") == "kernel"), key=lambda e: e["ts"])


def _call(torch, case: str, d: dict):
    """The measured call of one case, as microbench's section_gemm / section_attention make it."""
    import torch.nn.functional as F
    if case == "gemm_bf16":
        w = torch.randn(d["n"], d["k"], device="cuda", dtype=torch.bfloat16) * 0.02
        a = torch.randn(d["m"], d["k"], device="cuda", dtype=torch.bfloat16)
        return lambda: F.linear(a, w)
    if case == "gemm_fp8":
        w8 = torch.randn(d["n"], d["k"], device="cuda").to(torch.float8_e4m3fn)
        a8 = torch.randn(d["m"], d["k"], device="cuda").to(torch.float8_e4m3fn)
        one = torch.ones((), device="cuda", dtype=torch.float32)
        return lambda: torch._scaled_mm(a8, w8.t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16,
                                        use_fast_accum=False)
    from torch.nn.attention import SDPBackend, sdpa_kernel
    b, h, kvh, ql, kl, hd = (d[x] for x in ("batch", "heads", "kv_heads", "q_len", "kv_len", "head_dim"))
    q = torch.randn(b, h, ql, hd, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(b, kvh, kl, hd, device="cuda", dtype=torch.bfloat16)
    v = torch.randn(b, kvh, kl, hd, device="cuda", dtype=torch.bfloat16)

    def run():
        with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
            return F.scaled_dot_product_attention(q, k, v, is_causal=d["causal"], enable_gqa=(h != kvh))
    return run


def profile(cases_csv: Path, out_csv: Path, budget_s: float) -> None:
    import torch
    from torch.profiler import ProfilerActivity, profile as tprofile

    cases = [(r["case"], r["dims"]) for r in csv.DictReader(open(cases_csv))]
    done = {(r["case"], r["dims"]) for r in csv.DictReader(open(out_csv))} if out_csv.exists() else set()
    new = not out_csv.exists()
    fh = open(out_csv, "a", newline="")
    w = csv.DictWriter(fh, FIELDS)
    if new:
        w.writeheader()
    t0, n_done = time.time(), 0
    trace = os.path.join(tempfile.mkdtemp(), "t.json")
    for case, dims in cases:
        if (case, dims) in done:
            continue
        if time.time() - t0 > budget_s:
            print(f"budget {budget_s:.0f} s reached after {n_done} cases this run", flush=True)
            break
        fn = _call(torch, case, json.loads(dims))
        for _ in range(2):
            fn()
        torch.cuda.synchronize()
        with tprofile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(2):
                fn()
            torch.cuda.synchronize()
        prof.export_chrome_trace(trace)
        ks = _kernels(trace)
        half = len(ks) // 2 if len(ks) % 2 == 0 else len(ks)  # odd: one call's kernels can't be told apart
        for i, e in enumerate(ks):
            args = e.get("args", {})
            w.writerow({"case": case, "dims": dims, "call": int(i >= half), "seq": i % half, "kernel": e["name"],
                        "grid": json.dumps(args.get("grid")), "block": json.dumps(args.get("block")),
                        "registers": args.get("registers per thread"), "shared_bytes": args.get("shared memory"),
                        "blocks_per_sm": args.get("blocks per SM"), "dur_us": e.get("dur")})
        fh.flush()
        fn = None
        torch.cuda.empty_cache()
        n_done += 1
        if n_done % 100 == 0:
            print(f"{n_done} cases, {time.time() - t0:.0f} s", flush=True)
    fh.close()
    print(f"profiled {n_done} cases in {time.time() - t0:.0f} s -> {out_csv}", flush=True)


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] in ("shapes", "shapes-fp8"):
        write_cases(Path(argv[1]), fp8=argv[0] == "shapes-fp8")
        return 0
    if len(argv) >= 3 and argv[0] == "profile":
        profile(Path(argv[1]), Path(argv[2]), float(argv[3]) if len(argv) > 3 else 240.0)
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
