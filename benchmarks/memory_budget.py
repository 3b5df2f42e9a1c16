"""Peak memory of quantize / encode / decode per format family, beside the input size.

Each (format, operation) runs in a fresh Python process on one float32 tensor of
`--mib` MiB (default 256: 8192 x 8192), so peaks do not mix. Two measures:
- traced: tracemalloc's peak of Python/numpy allocations during the call, minus what
  was allocated before it (the input, and for decode the packed tensor) — the
  operation's own working memory;
- rss: the process's peak resident set during the call (Linux VmHWM, reset just before
  it through /proc/self/clear_refs) minus its resident set just before the call —
  catches anything tracemalloc does not see (numba-internal buffers).
Budget (issue 15): working memory <= 2x the input. The result (a float32 tensor for
quantize/decode, the packed tensor for encode) is part of the working memory.

    python benchmarks/memory_budget.py            # table + benchmarks/results/memory_budget.{json,md}
    python benchmarks/memory_budget.py --mib 16   # quick
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = {"float": ["fp8_e4m3", "bf16"], "int (per tensor)": ["int8"], "mx": ["mxfp4", "mxint8"],
            "nvfp4": ["nvfp4"], "bfp": ["bfp16"], "microexp": ["mx6"], "int_group": ["int4_g128"]}
OPS = ("quantize", "encode", "decode")

CHILD = r"""
import json, resource, sys, tracemalloc
import numpy as np
sys.path.insert(0, {root!r})
import cosim.functional as F
fmt, op, mib = sys.argv[1], sys.argv[2], int(sys.argv[3])
n = mib * 2**20 // 4
side = int(n ** 0.5)
x = np.random.default_rng(0).standard_normal((side, n // side), dtype=np.float32)
F.decode(F.encode(x[:64, :256], fmt)); F.quantize(x[:64, :256], fmt)  # compile outside the measurement
arg = F.encode(x, fmt) if op == "decode" else x
def status(key):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith(key + ":"))
try:  # reset the peak-RSS mark (Linux: VmHWM), so setup (encode before decode) does not count
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    reset = True
except OSError:
    reset = False
before_rss = status("VmRSS")
tracemalloc.start()
base, _ = tracemalloc.get_traced_memory()
import time
t0 = time.perf_counter()
out = {{"quantize": lambda: F.quantize(x, fmt), "encode": lambda: F.encode(x, fmt), "decode": lambda: F.decode(arg)}}[op]()
dt = time.perf_counter() - t0
_, peak = tracemalloc.get_traced_memory()
tracemalloc.stop()
maxrss = status("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({{"input_bytes": x.nbytes, "traced_peak": peak - base, "rss_peak_delta": max(0, maxrss - before_rss),
                  "result_bytes": int(out.nbytes), "seconds": dt}}))
"""


def measure(fmt: str, op: str, mib: int) -> dict:
    code = CHILD.format(root=str(ROOT))
    r = subprocess.run([sys.executable, "-c", code, fmt, op, str(mib)], capture_output=True, text=True, timeout=600)
    if r.returncode:
        return {"error": r.stderr.strip().splitlines()[-1] if r.stderr.strip() else f"exit {r.returncode}"}
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "memory_budget"))
    args = ap.parse_args(argv)
    rows = []
    for fam, fmts in FAMILIES.items():
        for fmt in fmts:
            for op in OPS:
                m = measure(fmt, op, args.mib)
                rows.append({"family": fam, "format": fmt, "op": op, **m})
                print(_fmt_row(rows[-1]), flush=True)
    md = ["| family | format | op | input | working memory (traced) | x input | peak RSS growth | x input | "
          "result | time |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            md.append(f"| {r['family']} | {r['format']} | {r['op']} | error: {r['error']} |||||||")
            continue
        mb = 2 ** 20
        md.append(f"| {r['family']} | {r['format']} | {r['op']} | {r['input_bytes'] / mb:.0f} MiB | "
                  f"{r['traced_peak'] / mb:.0f} MiB | {r['traced_peak'] / r['input_bytes']:.2f} | "
                  f"{r['rss_peak_delta'] / mb:.0f} MiB | {r['rss_peak_delta'] / r['input_bytes']:.2f} | "
                  f"{r['result_bytes'] / mb:.0f} MiB | {r['seconds']:.2f} s |")
    worst = max((r["traced_peak"] / r["input_bytes"] for r in rows if "error" not in r), default=float("nan"))
    md.append(f"\nWorst working memory / input: {worst:.2f} (budget 2.00). Input: one float32 tensor of "
              f"{args.mib} MiB; each row measured in a fresh process (benchmarks/memory_budget.py).")
    Path(args.out + ".md").write_text("\n".join(md) + "\n")
    Path(args.out + ".json").write_text(json.dumps({"mib": args.mib, "rows": rows}, indent=1))
    print("\n".join(md))
    return 0 if worst <= 2.0 else 1


def _fmt_row(r: dict) -> str:
    if "error" in r:
        return f"{r['format']:<10} {r['op']:<9} error: {r['error']}"
    return (f"{r['format']:<10} {r['op']:<9} traced {r['traced_peak'] / r['input_bytes']:.2f}x  "
            f"rss {r['rss_peak_delta'] / r['input_bytes']:.2f}x  {r['seconds']:.2f} s")


if __name__ == "__main__":
    sys.exit(main())
