"""Small shared-microexponent quantize calls: the parallel kernels on one thread (what
they took until session 8) against their serial twins (what they take now), in one run.

    PYTHONPATH=. python benchmarks/small_microexp.py [--rows 128] [--cols 4096] [--repeat 41]

Two figures per format (mx9, mx6, mx4): the first call in a fresh process with an empty
numba cache (mostly compile time; one subprocess each, parallel first), and the median of
warm calls alternating the two in one process. Same bits (checked). Writes
benchmarks/results/small_microexp.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORMATS = ("mx9", "mx6", "mx4")


def _call(kern, x, fmt):
    from cosim.functional.quantize import _quantize_parts
    from cosim.functional.threads import threads_for

    with threads_for(x.size):  # one numba thread, as quantize runs a small call
        return _quantize_parts(x, fmt, -1, None, "even", None, False, "ocp", kern)


def _x(rows, cols):
    import numpy as np
    return np.random.default_rng(0).standard_normal((rows, cols)).astype(np.float32)


def _first_call(which: str, fmt: str, rows: int, cols: int) -> float:
    """Seconds of the first call in a fresh process with an empty numba cache."""
    code = (f"import time, sys; sys.path.insert(0, {str(ROOT)!r}); from benchmarks.small_microexp import _call, _x; "
            f"from cosim.functional.quantize import _PARALLEL, _SERIAL; x = _x({rows}, {cols}); "
            f"t = time.perf_counter(); _call({which}, x, {fmt!r}); print(time.perf_counter() - t)")
    with tempfile.TemporaryDirectory() as d:
        p = subprocess.run([sys.executable, "-c", code], env={**os.environ, "NUMBA_CACHE_DIR": d}, cwd=ROOT,
                           capture_output=True, text=True, check=True)
    return float(p.stdout.split()[-1])


def main(argv=None) -> int:
    import numpy as np

    from cosim.functional.quantize import _PARALLEL, _SERIAL

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=128)
    ap.add_argument("--cols", type=int, default=4096)
    ap.add_argument("--repeat", type=int, default=41)
    args = ap.parse_args(argv)
    x = _x(args.rows, args.cols)
    lines = [f"{args.rows} x {args.cols} float32 N(0,1), one numba thread; load {os.getloadavg()[0]:.2f} at start", "",
             "| format | first call, parallel kernels (s) | first call, serial twins (s) | warm, parallel (ms) "
             "| warm, serial (ms) |", "|---|---|---|---|---|"]
    for fmt in FORMATS:
        first = [_first_call(w, fmt, args.rows, args.cols) for w in ("_PARALLEL", "_SERIAL")]
        a, b = _call(_PARALLEL, x, fmt), _call(_SERIAL, x, fmt)
        if (a.y2d.tobytes(), a.scales.tobytes(), a.micro.tobytes()) != (b.y2d.tobytes(), b.scales.tobytes(),
                                                                         b.micro.tobytes()):
            print(f"{fmt}: parallel and serial kernels give different bits", file=sys.stderr)
            return 1
        ts = {0: [], 1: []}
        for rep in range(args.repeat):
            for i in ((0, 1) if rep % 2 == 0 else (1, 0)):
                t0 = time.perf_counter()
                _call((_PARALLEL, _SERIAL)[i], x, fmt)
                ts[i].append(time.perf_counter() - t0)
        lines.append(f"| {fmt} | {first[0]:.1f} | {first[1]:.1f} | {1e3 * np.median(ts[0]):.3f} "
                     f"| {1e3 * np.median(ts[1]):.3f} |")
    lines.append(f"\nload {os.getloadavg()[0]:.2f} at the end")
    text = "\n".join(lines) + "\n"
    print(text)
    (ROOT / "benchmarks" / "results" / "small_microexp.md").write_text(
        "# Small shared-microexponent calls: parallel kernels on one thread vs serial twins\n\n"
        "Command: `PYTHONPATH=. python benchmarks/small_microexp.py`\n\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
