"""Speed of the numba functional core, side by side with numpy's memcpy.

    PYTHONPATH=. python benchmarks/functional_speed.py [--size 4096] [--gemm 1024] [--repeat 7]

Measures, in one run on this machine:
- quantize -> dequantize throughput (GB/s of float32 input) on a size x size N(0,1)
  tensor, each next to a memcpy (np.copyto) of the same array timed in the same loop;
- fast (dequantize + BLAS) and exact (integer block dot products) GEMM GFLOP/s on
  gemm^3 for mxfp4 and mxfp8_e4m3;
- first-call times: in a child process with an empty numba cache (compile) and again
  with that cache filled (load), next to the warm steady-state time.
Writes benchmarks/results/functional_speed.json and .md.
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


def _best(fn, repeat):
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return min(ts)


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
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        _first_calls(args.size, args.gemm)
        return 0

    with tempfile.TemporaryDirectory() as d:
        cold = _child(d, args.size, args.gemm)  # empty cache: numba compiles
        loaded = _child(d, args.size, args.gemm)  # same cache: numba loads

    import numba

    from cosim.functional import matmul, quantize
    from workloads.formats import get_format

    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.size, args.size)).astype(np.float32)
    dst = np.empty_like(x)
    memcpy = lambda: np.copyto(dst, x)  # noqa: E731  (into a preallocated array)
    memcpy_alloc = lambda: x.copy()  # noqa: E731  (returns a new array, like quantize)
    rows = []
    for f in QUANT_FORMATS:
        quantize(x, f)  # warm
        t_q, t_m, t_c = [], [], []
        for _ in range(args.repeat):  # interleave so all three see the same machine load
            t_m.append(_best(memcpy, 1))
            t_c.append(_best(memcpy_alloc, 1))
            t_q.append(_best(lambda: quantize(x, f), 1))
        tq, tm, tc = min(t_q), min(t_m), min(t_c)
        fam = get_format(f).family
        rows.append(dict(format=f, family=fam, quantize_GBps=x.nbytes / tq / 1e9, memcpy_GBps=x.nbytes / tm / 1e9,
                         copy_alloc_GBps=x.nbytes / tc / 1e9, fraction_of_memcpy=tm / tq,
                         fraction_of_copy_alloc=tc / tq, warm_s=tq, first_call_compile_s=cold[f"quantize:{f}"],
                         first_call_cached_s=loaded[f"quantize:{f}"],
                         goal=f">= {QUANT_GOAL:.2f} of memcpy" if fam in MX_FAMILIES else "-",
                         meets_goal=(tm / tq >= QUANT_GOAL) if fam in MX_FAMILIES else None))

    n = args.gemm
    a = rng.standard_normal((n, n)).astype(np.float32)
    b = rng.standard_normal((n, n)).astype(np.float32)
    gemm = []
    for f in GEMM_FORMATS:
        # the numpy baseline: float32 matmul of the same operands already dequantized
        aq, bq = quantize(a, f, axis=1), quantize(b, f, axis=0)
        aq @ bq
        for mode in ("fast", "exact"):
            matmul(a, b, f, mode=mode)
            t_mx, t_np = [], []
            for _ in range(args.repeat):  # interleaved: both see the same machine load
                t_np.append(_best(lambda: aq @ bq, 1))
                t_mx.append(_best(lambda: matmul(a, b, f, mode=mode), 1))
            t, tn = min(t_mx), min(t_np)
            gmacs = n ** 3 / t / 1e9
            goal = (f">= {EXACT_GOAL_GMACS:g} GMAC/s" if mode == "exact" else f">= {FAST_GOAL:.2f} of numpy")
            met = gmacs >= EXACT_GOAL_GMACS if mode == "exact" else tn / t >= FAST_GOAL
            gemm.append(dict(format=f, mode=mode, shape=[n, n, n], GFLOPs=2 * n ** 3 / t / 1e9,
                             GMACs=gmacs, numpy_f32_GMACs=n ** 3 / tn / 1e9, fraction_of_numpy=tn / t,
                             warm_s=t, first_call_compile_s=cold[f"matmul:{f}:{mode}"],
                             first_call_cached_s=loaded[f"matmul:{f}:{mode}"], goal=goal, meets_goal=met))

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    info = dict(machine=platform.processor() or platform.machine(), cpus=os.cpu_count(), load_average=load,
                numba_threads=numba.get_num_threads(), numba=numba.__version__, numpy=np.__version__,
                python=platform.python_version(), tensor=[args.size, args.size], repeat=args.repeat,
                import_s_compile=cold["import_s"], import_s_cached=loaded["import_s"],
                note="times are best-of-repeat wall clock; memcpy is np.copyto of the same float32 array into a "
                     "preallocated one (the goal is checked against it), copy is x.copy() which allocates its "
                     "result as quantize does; all three are timed interleaved; 'compile' = first call with an empty numba "
                     "cache, 'cached' = first call of a new process with the cache filled; calls run in table "
                     "order, so a kernel shared by several formats (mx_rows: mxfp4, mxfp8_e4m3, mxint8, msfp12) "
                     "is compiled by the first of them")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "functional_speed.json").write_text(json.dumps(dict(info=info, quantize=rows, gemm=gemm), indent=2))
    md = _markdown(info, rows, gemm)
    (RESULTS / "functional_speed.md").write_text(md)
    print(md)
    return 0


def _markdown(info, rows, gemm) -> str:
    lines = [f"# Functional core speed ({info['cpus']} CPUs, {info['numba_threads']} numba threads, "
             f"numba {info['numba']}, numpy {info['numpy']}, load average {info['load_average']:.1f})", "",
             f"Quantize -> dequantize of a {info['tensor'][0]}x{info['tensor'][1]} float32 N(0,1) tensor "
             f"(GB/s of float32 input), next to np.copyto of the same array in the same loop.", "",
             "| format | quantize GB/s | memcpy GB/s (copyto) | % of memcpy | copy GB/s (alloc) | % of copy | goal | "
             "warm s | first call: compile s | first call: cached s |",
             "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|"]
    for r in rows:
        ok = "" if r["meets_goal"] is None else (" (met)" if r["meets_goal"] else " (MISSED)")
        lines.append(f"| {r['format']} | {r['quantize_GBps']:.2f} | {r['memcpy_GBps']:.2f} | "
                     f"{100 * r['fraction_of_memcpy']:.0f}% | {r['copy_alloc_GBps']:.2f} | "
                     f"{100 * r['fraction_of_copy_alloc']:.0f}% | {r['goal']}{ok} | {r['warm_s']:.4f} | "
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
