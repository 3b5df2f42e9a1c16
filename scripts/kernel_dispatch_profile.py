"""Which CUDA kernels the FIT suites' fp8/bf16 GEMMs and softmax / RMSNorm cases dispatch (issue 11).

Round 8 (validation/model_selection/s13b_fp8_candidates.txt, s13_fp8ew_candidates.txt) left the fp8 GEMM
tail (torch._scaled_mm, e4m3) and the elementwise tail (wide softmax rows, RMSNorm) needing kernel-level
facts: the cuBLASLt kernel (tile, split-K / stream-K, cluster) a GEMM shape dispatches, and the kernels and
grids PyTorch's softmax / rms_norm and the Triton fused add+RMSNorm launch. This tool records them:

    python3 scripts/kernel_dispatch_profile.py --out-dir DIR [--suites default,fit3,...] [--budget-s 240]

Cases: microbench.py's own case lists of the fit suites (default, fit3..fit8: GEMM bf16 F.linear, fp8
torch._scaled_mm with and without fast accumulation where section_gemm measures it; elementwise softmax,
rmsnorm, add_rmsnorm), built exactly as microbench builds them. Held-out suites are refused by name.
Method: per case 2 warm-up calls, then one torch.profiler session (CPU + CUDA activities) of `reps` calls,
each preceded by microbench's L2 read-flush (outside the call) and wrapped, with a synchronize, in
record_function("kdp_rep<i>"); the Chrome trace is parsed: a kernel / memset belongs to a call when its CUDA
launch (runtime or driver event, same correlation id) lies inside that call's annotation (or, when the trace
has no launch event for it, when it ran inside it), so the flush's kernel is not counted.
Output (streamed, flushed per case; a killed run keeps what it measured):
  kernel_dispatch.csv   one row per (case, kernel name, grid, block): launches per call, median device time
                        per call of that kernel over the reps; failed cases get a FAILED row
  kernel_dispatch_env.json  microbench's env record + the tool's settings and done / failed / skipped counts
  kernel_dispatch_first_trace.json  the raw Chrome trace of the first case (to check the trace format)
Needs torch with CUDA (and triton for add_rmsnorm); imports microbench.py by path, not the cosim package.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_MB_DIR = ROOT / "cosim" / "calibrate"
if str(_MB_DIR) not in sys.path:
    sys.path.append(str(_MB_DIR))  # microbench.py runs as a plain script module (no cosim, numba or simpy)
import microbench as mb  # noqa: E402

FIT_SUITES = ("default", "fit3", "fit4", "fit5", "fit6", "fit7", "fit8")
EW_KINDS = ("softmax", "rmsnorm", "add_rmsnorm")
FIELDS = ["suite", "kind", "fmt", "impl", "dims", "kernel", "grid", "block", "n_kernels", "count",
          "kernel_time_s", "call_kernel_time_s", "reps", "regs_per_thread", "shared_mem_bytes", "args", "note"]
ANNOT = "kdp_rep"
# trace args already in columns, or per-launch bookkeeping that says nothing about the kernel
_ARGS_DROP = {"grid", "block", "correlation", "External id", "registers per thread", "shared memory", "device",
              "context", "queued", "stream", "ts", "dur"}


@dataclass
class Case:
    suites: list
    kind: str        # gemm | softmax | rmsnorm | add_rmsnorm
    fmt: str         # bf16 | fp8_e4m3
    impl: str
    dims: dict = field(default_factory=dict)

    def key(self):
        return (self.kind, self.fmt, self.impl, json.dumps(self.dims, sort_keys=True))


def parse_suites(text):
    """The suites to profile: fit suites only. A held-out (or retired, or unknown) name is refused."""
    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names:
        raise SystemExit("kernel_dispatch_profile: --suites: empty; expected some of " + ",".join(FIT_SUITES))
    for s in names:
        if "heldout" in s.lower() or s in mb.RETIRED_SUITES:
            raise SystemExit(f"kernel_dispatch_profile: --suites: {s!r} is a held-out suite; this tool profiles "
                             f"fit suites only ({','.join(FIT_SUITES)}): held-out shapes are never measured "
                             f"outside their one scored run")
        if s not in FIT_SUITES:
            raise SystemExit(f"kernel_dispatch_profile: --suites: unknown suite {s!r}; expected some of "
                             + ",".join(FIT_SUITES))
    return names


def _gemm_mnk(suite):
    """section_gemm's (m, n, k) list of a suite (fit4 and default share GEMM_NK x GEMM_M + squares)."""
    if suite in mb.GEMM_SUITES:
        h = mb.GEMM_SUITES[suite]
        return ([(m, n, k) for (n, k) in h["gemm_nk"] for m in h["gemm_m"]] + [(s, s, s) for s in h["gemm_square"]]
                + list(h.get("gemm_mnk", ())))
    return [(m, n, k) for (n, k) in mb.GEMM_NK for m in mb.GEMM_M] + [(s, s, s) for s in mb.GEMM_SQUARE]


def select_cases(suites):
    """Every GEMM (bf16, fp8, fp8 fast-accum where section_gemm measures it) and softmax / rmsnorm /
    add_rmsnorm case of the given fit suites, a shape in several suites once (its suites joined by '+'),
    then interleaved in proportion over (kind, fmt, impl, first suite) groups, each shuffled with a fixed
    seed, so that the first cases cover every group and a budget cut after a fraction f of the cases
    keeps about f of every group."""
    parse_suites(",".join(suites))  # the guard again: no caller gets held-out cases
    cases = {}

    def add(suite, c):
        k = c.key()
        if k in cases:
            if suite not in cases[k].suites:
                cases[k].suites.append(suite)
        else:
            cases[k] = c

    for s in suites:
        for (m, n, k) in _gemm_mnk(s):
            d = {"m": m, "n": n, "k": k}
            add(s, Case([s], "gemm", "bf16", "F.linear", d))
            add(s, Case([s], "gemm", "fp8_e4m3", "torch._scaled_mm", d))
            if m in (16, 1024, 8192) and n <= 14336:  # as section_gemm: fast accumulation measured there too
                add(s, Case([s], "gemm", "fp8_e4m3", "torch._scaled_mm+fast_accum", d))
        for (kind, cols, sz) in mb._elementwise_cases(s):
            if kind not in EW_KINDS:
                continue
            rows = (sz // 2) // cols  # as section_elementwise: sz = bytes of the bf16 main input
            if rows >= 1:
                impl = {"softmax": "torch.softmax", "rmsnorm": "F.rms_norm",
                        "add_rmsnorm": "triton:fused_add_rmsnorm"}[kind]
                add(s, Case([s], kind, "bf16", impl, {"rows": rows, "cols": cols}))
    groups = {}
    for c in cases.values():
        groups.setdefault((c.kind, c.fmt, c.impl, c.suites[0]), []).append(c)
    rng = random.Random(0)  # fixed: the same order on every run
    order = []
    for gi, g in enumerate(groups.values()):
        rng.shuffle(g)  # within a group a cut keeps a spread sample, not the first shapes of a loop
        order += [(i / len(g), gi, c) for i, c in enumerate(g)]
    return [c for _, _, c in sorted(order, key=lambda t: t[:2])]


def case_fn(torch, case):
    """The call microbench times for this case (same tensors, same API)."""
    import torch.nn.functional as F
    dev = "cuda"
    d = case.dims
    if case.kind == "gemm":
        m, n, k = d["m"], d["n"], d["k"]
        if case.fmt == "bf16":
            a = torch.randn(m, k, device=dev, dtype=torch.bfloat16)
            w = torch.randn(n, k, device=dev, dtype=torch.bfloat16) * 0.02
            return lambda: F.linear(a, w)
        one = torch.ones((), device=dev, dtype=torch.float32)
        a8 = torch.randn(m, k, device=dev).to(torch.float8_e4m3fn)
        w8 = torch.randn(n, k, device=dev).to(torch.float8_e4m3fn)
        fast = case.impl.endswith("+fast_accum")
        return lambda: torch._scaled_mm(a8, w8.t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16,
                                        use_fast_accum=fast)
    rows, cols = d["rows"], d["cols"]
    x = torch.randn(rows, cols, device=dev, dtype=torch.bfloat16)
    if case.kind == "softmax":
        return lambda: torch.softmax(x, dim=-1)
    w = torch.ones(cols, device=dev, dtype=torch.bfloat16)
    if case.kind == "rmsnorm":
        return lambda: F.rms_norm(x, (cols,), w, 1e-5)
    r = torch.randn_like(x)
    tk = mb.triton_fused_kernels()
    return lambda: tk["add_rmsnorm"](x, r, w)


def parse_trace(events, reps, annot=ANNOT):
    """Per-call kernels from a Chrome trace's event list: [(rep, name, grid, block, dur_s, args)] in GPU start
    order, and a note. A GPU kernel / memset / memcpy belongs to call i when its launch (runtime or driver API
    event, same correlation id) lies inside the CPU annotation `annot<i>`; a GPU op whose launch the trace
    lacks belongs to call i when it ran inside that annotation (profile_case synchronizes inside it, so a
    call's GPU work ends before its annotation does) and the note counts those; GPU ops launched outside
    every call (the L2 flush) are dropped. Without any annotation every GPU op is returned as rep -1 and
    the note says so (nothing is dropped silently)."""
    spans = []
    for e in events:
        if e.get("ph") == "X" and e.get("cat") == "user_annotation" and str(e.get("name", "")).startswith(annot):
            try:
                i = int(e["name"][len(annot):])
            except ValueError:
                continue
            spans.append((float(e["ts"]), float(e["ts"]) + float(e.get("dur", 0)), i))

    def span_of(ts):
        for (a, b, i) in spans:
            if a <= ts <= b:
                return i
        return None
    launch_rep = {}  # correlation id -> call index (None: launched outside every call)
    for e in events:
        if e.get("cat") in ("cuda_runtime", "cuda_driver") and "correlation" in e.get("args", {}):
            launch_rep[e["args"]["correlation"]] = span_of(float(e["ts"]))
    out, by_time, orphans = [], 0, 0
    gpu = sorted((e for e in events if e.get("ph") == "X" and e.get("cat") in ("kernel", "gpu_memset", "gpu_memcpy")),
                 key=lambda e: float(e["ts"]))
    for e in gpu:
        args = e.get("args", {})
        if not spans:
            rep = -1
        elif args.get("correlation") in launch_rep:
            rep = launch_rep[args["correlation"]]
        else:
            rep = span_of(float(e["ts"]))
            by_time += rep is not None
            orphans += rep is None
        if rep is None or rep >= reps:
            continue  # launched outside the measured calls: the L2 flush
        out.append((rep, e.get("name", "?"), args.get("grid", ""), args.get("block", ""),
                    float(e.get("dur", 0.0)) * 1e-6, args))
    notes = []
    if not spans:
        notes.append(f"UNATTRIBUTED: no {annot}<i> annotation in the trace; every GPU op of the session counted "
                     f"(the L2 flush's included), per-call figures = totals / reps")
    if by_time:
        notes.append(f"{by_time} GPU ops without a launch event in the trace attributed by their GPU time")
    if orphans:
        notes.append(f"{orphans} GPU ops without a launch event outside every call: not counted")
    return out, "; ".join(notes)


def aggregate(kernels, reps):
    """Rows of one case: per (name, grid, block) in first-launch order: launches per call and the median
    over the reps of that kernel's summed device time per call; with them the case's kernels per call
    and kernel time per call (medians over the reps). Unattributed kernels (rep -1): totals / reps."""
    unattributed = any(k[0] == -1 for k in kernels)
    per_rep_n, per_rep_t = [0] * reps, [0.0] * reps
    groups = {}
    for (rep, name, grid, block, dur, args) in kernels:
        g = groups.setdefault((name, json.dumps(grid), json.dumps(block)),
                              {"n": 0, "t_rep": [0.0] * reps, "t_all": 0.0, "args": args})
        g["n"] += 1
        g["t_all"] += dur
        if not unattributed:
            g["t_rep"][rep] += dur
            per_rep_n[rep] += 1
            per_rep_t[rep] += dur
    if unattributed:
        n_call, t_call = len(kernels) / reps, sum(k[4] for k in kernels) / reps
    else:
        n_call, t_call = statistics.median(per_rep_n), statistics.median(per_rep_t)
    rows = []
    for (name, grid, block), g in groups.items():
        rows.append({"kernel": name, "grid": grid, "block": block, "n_kernels": n_call, "count": g["n"] / reps,
                     "kernel_time_s": g["t_all"] / reps if unattributed else statistics.median(g["t_rep"]),
                     "call_kernel_time_s": t_call,
                     "regs_per_thread": g["args"].get("registers per thread", ""),
                     "shared_mem_bytes": g["args"].get("shared memory", ""),
                     "args": json.dumps({k: v for k, v in g["args"].items() if k not in _ARGS_DROP},
                                        sort_keys=True)})
    return rows


def write_case(out, case, reps, rows, note=""):
    base = {"suite": "+".join(case.suites), "kind": case.kind, "fmt": case.fmt, "impl": case.impl,
            "dims": json.dumps(case.dims, sort_keys=True), "reps": reps}
    if not rows:
        out.row(**base, n_kernels=0, note=note or "no GPU kernel recorded")
    for r in rows:
        out.row(**base, **r, note=note)


def profile_case(torch, bench, case, reps, trace_path):
    from torch.profiler import ProfilerActivity, profile, record_function
    fn = case_fn(torch, case)
    for _ in range(2):  # warm-up: cuBLASLt heuristics, Triton compile
        fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for i in range(reps):
            if bench is not None:
                bench.flush()
            torch.cuda.synchronize()  # the flush ends before the call's annotation starts
            with record_function(f"{ANNOT}{i}"):
                fn()
                torch.cuda.synchronize()  # the call's GPU work ends inside its annotation (parse_trace)
    prof.export_chrome_trace(trace_path)
    with open(trace_path) as f:
        events = json.load(f).get("traceEvents", [])
    return parse_trace(events, reps)


def _need_cuda():
    try:
        import torch
    except ImportError as exc:
        raise SystemExit(f"kernel_dispatch_profile: needs PyTorch with CUDA on a GPU machine "
                         f"(import torch failed: {exc})")
    if not torch.cuda.is_available():
        raise SystemExit(f"kernel_dispatch_profile: needs a CUDA GPU; torch {torch.__version__} sees none "
                         f"(torch.cuda.is_available() is False)")
    return torch


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--suites", default=",".join(FIT_SUITES), help="fit suites only; held-out names are refused")
    ap.add_argument("--budget-s", type=float, default=240.0, help="stop starting new cases after this many seconds")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--flush-mb", type=int, default=1024, help="L2 read-flush before each call, as microbench; 0: none")
    a = ap.parse_args(argv)
    suites = parse_suites(a.suites)
    if a.reps < 1:
        raise SystemExit(f"kernel_dispatch_profile: --reps: got {a.reps}, expected >= 1")
    cases = select_cases(suites)
    csv_path = os.path.join(a.out_dir, "kernel_dispatch.csv")
    mb.refuse_existing(csv_path)
    torch = _need_cuda()  # before anything is written
    os.makedirs(a.out_dir, exist_ok=True)
    t0 = time.time()
    nvml = mb.Nvml()
    env = mb.env_record(torch, nvml, src_dir=str(ROOT))
    env.update(tool="scripts/kernel_dispatch_profile.py", suites=suites, reps=a.reps, flush_mb=a.flush_mb,
               budget_s=a.budget_s, cases_total=len(cases), status="running")
    env_path = os.path.join(a.out_dir, "kernel_dispatch_env.json")

    def dump_env():
        with open(env_path, "w") as f:
            json.dump(env, f, indent=1, default=str)
    dump_env()
    out = mb.CsvOut(csv_path, FIELDS)
    bench = mb.Bench(torch, nvml, flush_mb=a.flush_mb) if a.flush_mb > 0 else None
    done = failed = 0
    tmp = tempfile.mkdtemp(prefix="kdp_")
    mb.log(f"kernel_dispatch_profile: {len(cases)} cases of {','.join(suites)}, budget {a.budget_s:.0f} s")
    for i, case in enumerate(cases):
        if time.time() - t0 > a.budget_s:
            break
        trace = os.path.join(tmp, "trace.json")
        try:
            kernels, note = profile_case(torch, bench, case, a.reps, trace)
        except Exception as exc:  # noqa: BLE001 - one failed case must not lose the others; the row says so
            failed += 1
            write_case(out, case, a.reps, [], "FAILED: " + (str(exc).splitlines() or ["?"])[0][:200])
            torch.cuda.empty_cache()
        else:
            write_case(out, case, a.reps, aggregate(kernels, a.reps), note)
            if i == 0 and os.path.exists(trace):
                os.replace(trace, os.path.join(a.out_dir, "kernel_dispatch_first_trace.json"))
        done += 1
        if done % 100 == 0:
            mb.log(f"{done}/{len(cases)} cases, {time.time() - t0:.0f} s")
    shutil.rmtree(tmp, ignore_errors=True)
    skipped = len(cases) - done
    env.update(status="finished", cases_done=done, cases_failed=failed, cases_skipped_budget=skipped,
               elapsed_s=round(time.time() - t0, 1), nvml_state_end=nvml.state())
    dump_env()
    mb.log(f"kernel_dispatch_profile: {done} cases profiled ({failed} failed), {skipped} skipped by the "
           f"{a.budget_s:.0f} s budget; {out.n} rows in {csv_path}")


if __name__ == "__main__":
    main()
