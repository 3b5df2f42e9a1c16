"""Golden digests of the functional core's outputs (issue 14: faster kernels must give
the same bits).

`cases()` is a fixed battery: every block format (MX, BFP/MSFP, shared-microexponent,
NVFP4, integer groups) and elementwise cast, every rounding mode, both compat modes,
saturating / non-saturating and flushing variants, on inputs built to reach every
kernel path (ordinary blocks over 300 binades, float32 subnormals, ties, values just
below a power of two — the microxcaling log2 candidates —, NaN/Inf blocks, zero
blocks, short last blocks, the blocked axis first or last), plus exact/fast GEMMs. Each
case's outputs (dequantized values, scales, microexponents, zero points; GEMM results)
are hashed with SHA-256. tests/data/functional_digests.json holds the digests of the
implementation before the issue-14 kernel rewrite; `test_functional_digests.py`
recomputes them.

    PYTHONPATH=. python tests/functional_digests.py --write   # only to re-baseline on purpose
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

PATH = Path(__file__).resolve().parent / "data" / "functional_digests.json"

BLOCK = ["mxfp4", "mxfp6_e2m3", "mxfp6_e3m2", "mxfp8_e4m3", "mxfp8_e5m2", "mxint8", "mxint4", "mxint2", "bfp16",
         "bfp12", "msfp16", "msfp12", "bfp_m5_b32", "mx9", "mx6", "mx4", "nvfp4", "int4_g32", "int4_g128",
         "int8_g32_zp"]
ELEM = ["bf16", "fp16", "fp8_e4m3", "fp8_e5m2", "fp6_e2m3", "fp6_e3m2", "fp4_e2m1", "int8", "int4"]
MICROX = {"mx", "bfp", "float"}  # families the microxcaling compat mode changes


def inputs(seed: int, rows: int, cols: int) -> np.ndarray:
    """Rows of N(0,1) scaled by 2^k for k spread over [-150, 126], then specials:
    exact ties on several grids, values just below powers of two (mantissa >= 0x7FFF00),
    float32 subnormals, zero rows and blocks, NaN and +-Inf, huge values."""
    rng = np.random.default_rng(seed)
    k = np.linspace(-150, 126, rows).round().astype(np.int64)
    x = (rng.standard_normal((rows, cols)) * np.ldexp(1.0, k)[:, None]).astype(np.float32)
    n = x.size
    flat = x.reshape(-1)
    idx = rng.permutation(n)
    q = n // 16
    # ties: odd multiples of half a step on grids 2^-1 .. 2^-8 of numbers near 1..64
    flat[idx[:q]] = ((rng.integers(1, 255, q) * 2 + 1) * np.ldexp(1.0, -rng.integers(2, 10, q))).astype(np.float32)
    # just below a power of two: mantissa field 0x7FFF00..0x7FFFFF
    e = rng.integers(1, 254, q).astype(np.uint32)
    m = rng.integers(0x7FFF00, 0x800000, q).astype(np.uint32)
    flat[idx[q:2 * q]] = ((e << 23) | m).view(np.float32) * rng.choice([-1, 1], q).astype(np.float32)
    # float32 subnormals and tiny normals
    sub = rng.integers(1, 1 << 24, q).astype(np.uint32)
    flat[idx[2 * q:3 * q]] = sub.view(np.float32) * rng.choice([-1, 1], q).astype(np.float32)
    r = 3 * q
    flat[idx[r:r + 7]] = [np.nan, np.inf, -np.inf, 3.0e38, -3.4e38, 0.0, -0.0]
    x[1] = 0.0  # a zero row
    x[2, :40] = 0.0
    return x


def _h(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        if a is None:
            h.update(b"none")
            continue
        a = np.ascontiguousarray(a)
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:32]


def cases():
    """(name, thunk) pairs; a thunk returns the arrays to hash."""
    from cosim.functional import matmul
    from cosim.functional.quantize import quantize_parts
    from workloads.formats import get_format

    xs = {"a": inputs(1, 64, 512), "b": inputs(2, 37, 100), "c": inputs(3, 200, 48)}
    out = []

    def qp(x, fmt, **kw):
        p = quantize_parts(x, fmt, **kw)
        return lambda: (p.dequantized(), p.scales, p.micro, p.zero_points)

    for fmt in BLOCK + ELEM:
        fam = get_format(fmt).family
        compats = ["ocp", "microxcaling"] if fam in MICROX else ["ocp"]
        for xn, x in xs.items():
            for axis in ((-1, 0) if fam not in ("float", "int") else (-1,)):
                for rounding in ("even", "nearest", "floor"):
                    for compat in compats:
                        kw = dict(axis=axis, rounding=rounding, compat=compat)
                        out.append((f"{fmt}|{xn}|ax{axis}|{rounding}|{compat}", kw, x, fmt))
        if fam in ("mx", "float"):
            for xn in ("a", "b"):
                for sat in (True, False):
                    for flush in (False, True):
                        kw = dict(saturate=sat, flush_subnormals=flush, compat="microxcaling")
                        out.append((f"{fmt}|{xn}|sat{sat}|flush{flush}|microx", kw, xs[xn], fmt))
                        if sat or get_format(fmt).has_inf or get_format(fmt).has_nan:
                            kw = dict(saturate=sat, flush_subnormals=flush)
                            out.append((f"{fmt}|{xn}|sat{sat}|flush{flush}|ocp", kw, xs[xn], fmt))
    for fmt in ("mxfp4", "mxint8", "bfp16", "mx6"):
        for bs in (8, 48, 64):
            out.append((f"{fmt}|a|block{bs}", dict(block_size=bs), xs["a"], fmt))
    res = [(name, (lambda kw=kw, x=x, fmt=fmt: _h(*qp(x, fmt, **kw)()))) for name, kw, x, fmt in out]

    rng = np.random.default_rng(7)
    a = (rng.standard_normal((67, 96)) * 3).astype(np.float32)
    b = (rng.standard_normal((96, 29)) * 0.01).astype(np.float32)
    a[3, 5] = np.nan
    for fmt in ("mxfp4", "mxfp6_e2m3", "mxfp8_e4m3", "mxfp8_e5m2", "mxint8", "mxint4", "bfp16", "msfp12", "mx9",
                "mx6", "mx4", "nvfp4"):
        accs = ("fp32", "bf16", "fp64", "fixed:40", "fixed:24:8") if fmt not in ("nvfp4", "mxfp8_e5m2") else ("fp32",)
        for mode in ("fast", "exact"):
            for acc in accs:
                res.append((f"matmul|{fmt}|{mode}|{acc}",
                            (lambda fmt=fmt, mode=mode, acc=acc: _h(matmul(a, b, fmt, mode=mode, accum=acc)))))
    res.append(("matmul|mxfp4xmxfp8_e4m3|exact", lambda: _h(matmul(a, b, "mxfp4", "mxfp8_e4m3", mode="exact"))))
    return res


def compute() -> dict:
    return {name: f() for name, f in cases()}


if __name__ == "__main__":
    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root))
    d = compute()
    if "--write" in sys.argv:
        PATH.write_text(json.dumps(d, indent=0, sort_keys=True) + "\n")
        print(f"wrote {len(d)} digests to {PATH}")
    else:
        print(len(d), "cases")
