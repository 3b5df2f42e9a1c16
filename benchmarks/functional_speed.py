"""Speed of the numba functional core, side by side with numpy in one run; says pass/fail
for each issue-14 goal.

    PYTHONPATH=. python benchmarks/functional_speed.py [--size 4096] [--gemm 1024] [--repeat 9]
                                                       [--no-first-call]

Measures, in one run on this machine:
- quantize -> dequantize throughput (GB/s of float32 input) on a size x size N(0,1)
  tensor under both allocation policies, each against numpy doing the same memory work
  (read the array once, write a copy once) under the same policy: a fresh output
  (`quantize(x, f)` against `x.copy()`: both allocate their result, so both pay for the
  OS mapping and zeroing new pages) and a reused one (`quantize(x, f, out=buf)` against
  `np.copyto(dst, x)`: both write into an array allocated once). The 50 %-of-memcpy
  goal is judged on both; fresh quantize against np.copyto (mixed policies, the reading
  of sessions 3-6) is kept as context;
- fast (dequantize + BLAS) and exact (integer block dot products) GEMM on gemm^3 for
  mxfp4 and mxfp8_e4m3, each repetition next to numpy's float32 matmul of the
  dequantized operands; the exact mxfp4 GEMM also on one numba thread (does it use both?).
  The exact GEMM's GMAC/s (its goal) comes from a loop of its own, since OpenBLAS threads
  keep spinning after each numpy call; its share of numpy is from the interleaved loop;
- first-call times: in a child process with an empty numba cache (compile) and again
  with that cache filled (load), next to the warm steady-state time.
Repetitions alternate cosim and baseline calls (the quantize repetitions go round-robin
over the formats, so a burst of load hits one sample of each); each ratio is the median of the
per-repetition ratios (neighbours in time see the same machine load), times are
medians. The load average before and after is recorded: other processes on this
2-core machine move the ratios (at load 8 a fast-GEMM ratio read 94 % that was 62 %
quiet), so goals are judged on a quiet machine.
Writes benchmarks/results/functional_speed.json and .md; prints PASS/FAIL per goal.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# every MX / BFP / shared-microexponent format (the 50 %-of-memcpy goal), plus two others for context
QUANT_FORMATS = ["mxfp4", "mxfp6_e2m3", "mxfp6_e3m2", "mxfp8_e4m3", "mxfp8_e5m2", "mxint8", "mxint4", "mxint2",
                 "bfp16", "bfp12", "msfp16", "msfp12", "mx9", "mx6", "mx4", "int4_g128", "bf16"]
MX_FAMILIES = ("mx", "bfp", "microexp")  # shared-exponent block formats: the 50 %-of-memcpy goal
QUANT_GOAL = 0.50  # of memcpy (issue 14)
EXACT_GOAL_GMACS = 5.0  # exact MX GEMM on 2 cores (issue 14)
FAST_GOAL = 0.70  # fast MX GEMM / numpy float32 matmul on the dequantized operands (issue 14)
GEMM_FORMATS = ["mxfp4", "mxfp8_e4m3"]
RESULTS = Path(__file__).resolve().parent / "results"


def _interleaved(fns: dict, repeat: int) -> dict:
    """{name: [seconds per repetition]}, the calls of one repetition back to back."""
    ts = {k: [] for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            ts[k].append(time.perf_counter() - t0)
    return ts


def _ratio(num, den) -> float:
    """Median over repetitions of num[i] / den[i] (a share of the baseline's speed)."""
    return float(np.median(np.asarray(num) / np.asarray(den)))


def _first_calls(size, gemm):
    """Child mode: time the first call of each kernel family in this process."""
    t0 = time.perf_counter()
    from cosim.functional import matmul, quantize
    out = {"import_s": time.perf_counter() - t0}
    rng = np.random.default_rng(0)
    x = rng.standard_normal((size, size)).astype(np.float32)
    for f in QUANT_FORMATS:
        t0 = time.perf_counter()
        quantize(x, f)
        out[f"quantize:{f}"] = time.perf_counter() - t0
    a = rng.standard_normal((gemm, gemm)).astype(np.float32)
    b = rng.standard_normal((gemm, gemm)).astype(np.float32)
    for f in GEMM_FORMATS:
        for mode in ("fast", "exact"):
            t0 = time.perf_counter()
            matmul(a, b, f, mode=mode)
            out[f"matmul:{f}:{mode}"] = time.perf_counter() - t0
    print(json.dumps(out))


def _child(cache_dir, size, gemm):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir))
    root = Path(__file__).resolve().parents[1]
    env["PYTHONPATH"] = str(root) + os.pathsep + env.get("PYTHONPATH", "")
    r = subprocess.run([sys.executable, __file__, "--child", "--size", str(size), "--gemm", str(gemm)],
                       env=env, capture_output=True, text=True, check=True, cwd=root)
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--gemm", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--no-first-call", action="store_true", help="skip the compile / cache-load child processes")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        _first_calls(args.size, args.gemm)
        return 0

    cold, loaded = {}, {}
    if not args.no_first_call:
        with tempfile.TemporaryDirectory() as d:
            cold = _child(d, args.size, args.gemm)  # empty cache: numba compiles
            loaded = _child(d, args.size, args.gemm)  # same cache: numba loads

    import numba

    from cosim.functional import matmul, quantize
    from workloads.formats import get_format

    load0 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    rng = np.random.default_rng(0)
    rows = _quantize_rows(args, rng, cold, loaded, quantize, get_format)
    gemm = _gemm_rows(args, rng, cold, loaded, matmul, quantize, numba)
    load1 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    info = dict(machine=platform.processor() or platform.machine(), cpus=os.cpu_count(),
                cpus_usable=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
                load_average=max(load0, load1), load_average_start=load0, load_average_end=load1,
                numba_threads=numba.get_num_threads(), numba=numba.__version__, numpy=np.__version__,
                python=platform.python_version(), tensor=[args.size, args.size], repeat=args.repeat,
                import_s_compile=cold.get("import_s", float("nan")),
                import_s_cached=loaded.get("import_s", float("nan")),
                note="quantize repetitions run round-robin over the formats (each next to its own memcpy and "
                     "copy); times are medians of interleaved repetitions and each ratio the median of per-repetition "
                     "ratios (the exact GEMM's GMAC/s: a loop of its own, OpenBLAS threads spin after numpy "
                     "calls); memcpy is np.copyto of the same float32 array into a preallocated one, compared with "
                     "quantize(out=) into a preallocated one; copy is x.copy() which allocates its result, compared "
                     "with quantize(), which allocates its result; the goal is checked under both policies; "
                     "'compile' = first call with an empty numba cache, 'cached' = first call of a new process "
                     "with the cache filled; calls run in table order, so a kernel shared by several formats "
                     "(the MX/BFP plan and apply passes) is compiled by the first of them")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "functional_speed.json").write_text(json.dumps(dict(info=info, quantize=rows, gemm=gemm), indent=2))
    md = _markdown(info, rows, gemm)
    (RESULTS / "functional_speed.md").write_text(md)
    print(md)
    print("\n".join(_verdicts(rows, gemm, info)))
    return 0


def _quantize_rows(args, rng, cold, loaded, quantize, get_format) -> list:
    """quantize -> dequantize of every format, fresh and into a reused output, next to
    x.copy() / np.copyto of the same array (same policy, same bytes read and written)."""
    x = rng.standard_normal((args.size, args.size)).astype(np.float32)
    dst = np.empty_like(x)
    buf = np.empty_like(x)  # quantize's reused output, allocated once like np.copyto's dst
    for f in QUANT_FORMATS:
        quantize(x, f)  # warm
        quantize(x, f, out=buf)
    # round-robin: each repetition visits every format, so a load burst of a few seconds
    # from another process lands on one sample of each format, not on all of one format's
    ts = {f: {"memcpy": [], "copy": [], "q": [], "q_out": []} for f in QUANT_FORMATS}
    for _ in range(args.repeat):
        for f in QUANT_FORMATS:
            t = _interleaved({"memcpy": lambda: np.copyto(dst, x),  # reused: into an array allocated once
                              "q_out": lambda f=f: quantize(x, f, out=buf),  # reused, as np.copyto
                              "copy": lambda: x.copy(),  # fresh: allocates its result, as quantize does
                              "q": lambda f=f: quantize(x, f)}, 1)  # fresh
            for k, v in t.items():
                ts[f][k] += v
    return [_quantize_row(f, ts[f], x.nbytes, cold, loaded, get_format(f).family) for f in QUANT_FORMATS]


def _quantize_row(f, t, nbytes, cold, loaded, fam) -> dict:
    """One format's row: medians of the interleaved times, same-policy ratios, the goal."""
    tq, to, tm, tc = (float(np.median(t[k])) for k in ("q", "q_out", "memcpy", "copy"))
    fresh, reused = _ratio(t["copy"], t["q"]), _ratio(t["memcpy"], t["q_out"])
    goal = fam in MX_FAMILIES
    return dict(format=f, family=fam, quantize_GBps=nbytes / tq / 1e9, quantize_out_GBps=nbytes / to / 1e9,
                memcpy_GBps=nbytes / tm / 1e9, copy_alloc_GBps=nbytes / tc / 1e9,
                fraction_fresh_vs_copy=fresh, fraction_reused_vs_copyto=reused,
                fraction_fresh_vs_copyto=_ratio(t["memcpy"], t["q"]), warm_s=tq, warm_out_s=to,
                first_call_compile_s=cold.get(f"quantize:{f}", float("nan")),
                first_call_cached_s=loaded.get(f"quantize:{f}", float("nan")),
                goal=f">= {QUANT_GOAL:.2f} of memcpy, both policies" if goal else "-",
                meets_goal=(min(fresh, reused) >= QUANT_GOAL) if goal else None)


def _gemm_rows(args, rng, cold, loaded, matmul, quantize, numba) -> list:
    """Fast and exact MX GEMM next to numpy's float32 matmul of the dequantized operands."""
    n = args.gemm
    a = rng.standard_normal((n, n)).astype(np.float32)
    b = rng.standard_normal((n, n)).astype(np.float32)
    out = []
    for f in GEMM_FORMATS:
        aq, bq = quantize(a, f, axis=1), quantize(b, f, axis=0)  # the numpy baseline's operands
        aq @ bq
        modes = [("fast", None), ("exact", None)] + ([("exact", 1)] if f == "mxfp4" else [])
        for mode, threads in modes:
            prev = numba.get_num_threads()
            numba.set_num_threads(threads or prev)
            try:
                matmul(a, b, f, mode=mode)
                # the exact GEMM's own speed in a loop of its own: OpenBLAS threads spin for a
                # while after a numpy matmul and hold a core (1024^3 mxfp4 exact, load 0.2:
                # 116 ms right after a BLAS call, 65 ms after a 0.3 s pause, measured)
                own = _interleaved({"mx": lambda: matmul(a, b, f, mode=mode)}, args.repeat)["mx"]
                t = _interleaved({"np": lambda: aq @ bq, "mx": lambda: matmul(a, b, f, mode=mode)}, args.repeat)
            finally:
                numba.set_num_threads(prev)
            tn = float(np.median(t["np"]))
            tm = float(np.median(own)) if mode == "exact" else float(np.median(t["mx"]))
            gmacs = n ** 3 / tm / 1e9
            frac = _ratio(t["np"], t["mx"])
            if threads:
                goal, met = "- (context: one numba thread)", None
            elif mode == "exact":
                goal, met = f">= {EXACT_GOAL_GMACS:g} GMAC/s", (gmacs >= EXACT_GOAL_GMACS) if f == "mxfp4" else None
                goal = goal if f == "mxfp4" else "-"
            else:
                goal, met = f">= {FAST_GOAL:.2f} of numpy", frac >= FAST_GOAL
            out.append(dict(format=f, mode=mode if not threads else f"{mode}, {threads} thread", shape=[n, n, n],
                            GFLOPs=2 * n ** 3 / tm / 1e9, GMACs=gmacs, numpy_f32_GMACs=n ** 3 / tn / 1e9,
                            fraction_of_numpy=frac, warm_s=tm,
                            GMACs_interleaved_with_numpy=n ** 3 / float(np.median(t["mx"])) / 1e9,
                            first_call_compile_s=cold.get(f"matmul:{f}:{mode}", float("nan")),
                            first_call_cached_s=loaded.get(f"matmul:{f}:{mode}", float("nan")), goal=goal,
                            meets_goal=met))
    return out


def _verdicts(rows, gemm, info) -> list:
    """One PASS/FAIL line per issue-14 goal of the functional core."""
    q = [r for r in rows if r["meets_goal"] is not None]
    out = [f"load average {info['load_average_start']:.1f} -> {info['load_average_end']:.1f} "
           f"({info['cpus_usable']} usable CPUs, {info['numba_threads']} numba threads)"]
    for key, what in (("fraction_fresh_vs_copy", "fresh output vs x.copy() (both allocate)"),
                      ("fraction_reused_vs_copyto", "out= vs np.copyto (both reuse an output)")):
        miss = [f"{r['format']} {100 * r[key]:.0f}%" for r in q if r[key] < QUANT_GOAL]
        worst = min(q, key=lambda r: r[key])
        out.append(f"{'PASS' if not miss else 'FAIL'}: quantize->dequantize >= {100 * QUANT_GOAL:.0f}% of memcpy for "
                   f"every MX/BFP format, {what} ({len(q)}; worst {worst['format']} {100 * worst[key]:.0f}%"
                   + (f"; below: {', '.join(miss)}" if miss else "") + ")")
    for g in gemm:
        if g["meets_goal"] is None:
            continue
        what = (f"{g['GMACs']:.2f} GMAC/s in a loop of its own ({g['GMACs_interleaved_with_numpy']:.2f} right after "
                f"numpy calls)" if g["mode"] == "exact" else
                f"{100 * g['fraction_of_numpy']:.0f}% of numpy ({g['GMACs']:.1f} vs {g['numpy_f32_GMACs']:.1f} GMAC/s)")
        out.append(f"{'PASS' if g['meets_goal'] else 'FAIL'}: {g['mode']} MX GEMM {g['shape'][0]}^3 {g['format']} "
                   f"{g['goal']}: {what}")
    return out


def _markdown(info, rows, gemm) -> str:
    lines = [f"# Functional core speed ({info['cpus']} CPUs, {info['numba_threads']} numba threads, "
             f"numba {info['numba']}, numpy {info['numpy']}, load average {info['load_average_start']:.1f} at the "
             f"start, {info['load_average_end']:.1f} at the end)", "",
             f"Quantize -> dequantize of a {info['tensor'][0]}x{info['tensor'][1]} float32 N(0,1) tensor "
             f"(GB/s of float32 input), each against numpy's copy of the same array under the SAME allocation "
             f"policy, in the same loop: fresh = `quantize(x, f)` vs `x.copy()` (both allocate their result), "
             f"reused = `quantize(x, f, out=buf)` vs `np.copyto(dst, x)` (both write an array allocated once). "
             f"Both read 64 MiB and write 64 MiB. Mixed = fresh quantize vs np.copyto (context only).", "",
             "| format | fresh: quantize GB/s | x.copy() GB/s | fresh % | reused: quantize(out=) GB/s | "
             "np.copyto GB/s | reused % | mixed % | goal | warm s (fresh / reused) | first call: compile s | "
             "first call: cached s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|"]
    for r in rows:
        ok = "" if r["meets_goal"] is None else (" (met)" if r["meets_goal"] else " (MISSED)")
        lines.append(f"| {r['format']} | {r['quantize_GBps']:.2f} | {r['copy_alloc_GBps']:.2f} | "
                     f"{100 * r['fraction_fresh_vs_copy']:.0f}% | {r['quantize_out_GBps']:.2f} | "
                     f"{r['memcpy_GBps']:.2f} | {100 * r['fraction_reused_vs_copyto']:.0f}% | "
                     f"{100 * r['fraction_fresh_vs_copyto']:.0f}% | {r['goal']}{ok} | "
                     f"{r['warm_s']:.4f} / {r['warm_out_s']:.4f} | "
                     f"{r['first_call_compile_s']:.2f} | {r['first_call_cached_s']:.3f} |")
    lines += ["", f"GEMM {gemm[0]['shape'][0]}^3, operands quantized along K inside the timed call; numpy = "
                  f"float32 matmul of the already dequantized operands, timed interleaved.", "",
              "| format | mode | GFLOP/s | GMAC/s | numpy f32 GMAC/s | of numpy | goal | warm s | first call: compile s "
              "| first call: cached s |",
              "|---|---|---:|---:|---:|---:|---|---:|---:|---:|"]
    for g in gemm:
        ok = "" if g["meets_goal"] is None else (" (met)" if g["meets_goal"] else " (MISSED)")
        lines.append(f"| {g['format']} | {g['mode']} | {g['GFLOPs']:.2f} | {g['GMACs']:.2f} | "
                     f"{g['numpy_f32_GMACs']:.2f} | {100 * g['fraction_of_numpy']:.0f}% | {g['goal']}{ok} | "
                     f"{g['warm_s']:.4f} | {g['first_call_compile_s']:.2f} | {g['first_call_cached_s']:.3f} |")
    lines += ["", f"Import of cosim.functional: {info['import_s_compile']:.2f} s (cold), "
                  f"{info['import_s_cached']:.2f} s (cached).", "", info["note"], ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
