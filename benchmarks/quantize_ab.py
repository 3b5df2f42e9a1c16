"""Interleaved A/B of the MX/BFP and shared-microexponent row kernels: the kernels of a
git revision against the working tree's, alternating in ONE process, each repetition
next to a memcpy (np.copyto) of the same array.

    PYTHONPATH=. python benchmarks/quantize_ab.py [--rev 08bb993] [--threads 2] [--reuse]
                                                  [--repeat 21] [--formats mx9,mx6,...]

Why: on a 2-core machine shared with other sessions, whole runs of
functional_speed.py moved by 20 points of memcpy share minutes apart; two kernels
alternating in one process see the same load. Each call is quantize's own path
(`_quantize_parts` with the given kernel modules), writing a fresh output as quantize
does (--reuse: into one reused array, as `quantize(out=)`). The old kernels are
loaded from `git show REV:cosim/functional/{blockq,microq}.py` into a temporary module
(its own numba cache); the first call checks both give the same bits. Prints one line
per format: median ms of each and the median per-repetition share of memcpy.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FORMATS = "mxfp4,mxfp6_e2m3,mxfp6_e3m2,mxfp8_e4m3,mxfp8_e5m2,mxint8,mxint4,mxint2,bfp16,bfp12,msfp16,msfp12,mx9,mx6,mx4"


def _old_module(rev: str, name: str, tmp: Path):
    """cosim/functional/NAME.py at REV, its relative imports made absolute."""
    src = subprocess.run(["git", "show", f"{rev}:cosim/functional/{name}.py"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    src = src.replace("from .", "from cosim.functional.")
    path = tmp / f"old_{name}.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location(f"old_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _caller(mod, x, fmt, reuse):
    """A thunk quantizing x to fmt (blocks along the last axis) through quantize's own path
    with mod's row kernels (`_quantize_parts(..., kern=mod)`); its row-layout result."""
    from cosim.functional.quantize import _quantize_parts

    keep = np.empty_like(x) if reuse else None
    return lambda: _quantize_parts(x, fmt, -1, None, "even", None, False, "ocp", mod, out=keep).y2d


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rev", default="08bb993", help="git revision of the old kernels (default: before session 7)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reuse", action="store_true", help="write into one reused output (kernel only)")
    ap.add_argument("--repeat", type=int, default=21)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--formats", default=FORMATS)
    args = ap.parse_args(argv)
    from cosim.functional import blockq, microq
    from workloads.formats import get_format

    numba.set_num_threads(args.threads)
    x = np.random.default_rng(0).standard_normal((args.size, args.size)).astype(np.float32)
    dst = np.empty_like(x)
    with tempfile.TemporaryDirectory() as d:
        old = {m: _old_module(args.rev, m, Path(d)) for m in ("blockq", "microq")}
        print(f"rev {args.rev} vs working tree; {args.threads} threads; {'reused' if args.reuse else 'fresh'} output; "
              f"load {os.getloadavg()[0]:.2f}")
        for fmt in args.formats.split(","):
            key = "microq" if get_format(fmt).family == "microexp" else "blockq"
            a = _caller(old[key], x, fmt, args.reuse)
            b = _caller(microq if key == "microq" else blockq, x, fmt, args.reuse)
            if a().tobytes() != b().tobytes():
                print(f"{fmt}: old and new kernels give different bits", file=sys.stderr)
                return 1
            ts = {"copy": [], "old": [], "new": []}
            for rep in range(args.repeat):
                order = [("old", a), ("new", b)] if rep % 2 == 0 else [("new", b), ("old", a)]
                for k, fn in [("copy", lambda: np.copyto(dst, x))] + order:
                    t0 = time.perf_counter()
                    fn()
                    ts[k].append(time.perf_counter() - t0)
            c = np.asarray(ts["copy"])
            share = {k: float(np.median(c / np.asarray(ts[k]))) for k in ("old", "new")}
            print(f"{fmt:11s} old {1e3 * np.median(ts['old']):6.2f} ms ({share['old']:.2f} of memcpy)   "
                  f"new {1e3 * np.median(ts['new']):6.2f} ms ({share['new']:.2f})")
        print(f"load {os.getloadavg()[0]:.2f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
