"""`quantize(..., out=buf)`: the same bits as a fresh quantize, for every family and
axis, `buf` itself returned, and one clear error for an unusable array."""

from __future__ import annotations

import numpy as np
import pytest

from cosim.functional import quantize

ROW_FORMATS = ["mxfp4", "mxfp6_e3m2", "mxfp8_e5m2", "mxint8", "mxint2", "bfp16", "msfp12", "mx9", "mx6", "mx4"]
OTHER_FORMATS = ["nvfp4", "int4_g128", "bf16", "fp8_e4m3", "int8"]


def _x(seed, shape, nspecial=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 2.0 ** rng.integers(-20, 20)).astype(np.float32)
    if nspecial and x.size:
        x.reshape(-1)[rng.integers(0, x.size, nspecial)] = rng.choice(
            np.array([np.nan, np.inf, 0.0, 1e-45, 3.0e38], np.float32), nspecial)
    return x


@pytest.mark.parametrize("fmt", ROW_FORMATS + OTHER_FORMATS)
@pytest.mark.parametrize("axis", [-1, 0])
def test_out_gives_the_fresh_bits_and_returns_out(fmt, axis):
    x = _x(1, (48, 80), nspecial=6)
    want = quantize(x, fmt, axis=axis)
    buf = np.full_like(x, 7.0)
    got = quantize(x, fmt, axis=axis, out=buf)
    assert got is buf
    assert np.ascontiguousarray(want).tobytes() == buf.tobytes()


def test_out_may_be_the_input_itself():
    """quantize(x, f, out=x) quantizes in place (computed apart, then copied in)."""
    for fmt in ("mxfp4", "mx6", "bf16"):
        x = _x(2, (20, 64))
        want = quantize(x, fmt)
        assert quantize(x, fmt, out=x) is x and x.tobytes() == want.tobytes()


def test_out_errors_name_the_problem():
    x = _x(3, (4, 32))
    with pytest.raises(ValueError, match=r"out: dtype float64 \(expected float32\)"):
        quantize(x, "mxfp4", out=np.empty(x.shape))
    with pytest.raises(ValueError, match=r"out: shape \(4, 16\) \(expected x's shape \(4, 32\)\)"):
        quantize(x, "mxfp4", out=np.empty((4, 16), np.float32))
    with pytest.raises(ValueError, match="out: not C-contiguous"):
        quantize(x, "mxfp4", out=np.empty((32, 4), np.float32).T)
    ro = np.empty_like(x)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="out: read-only"):
        quantize(x, "mxfp4", out=ro)
    with pytest.raises(TypeError, match="out must be a numpy array, got list"):
        quantize(x, "mxfp4", out=[0.0] * 128)


def test_quantize_out_and_quantize_parts_set_up_kernels_and_threads_alike(monkeypatch):
    """Both entry points run small arrays on one numba thread through the serial twins and
    large ones (here: a threshold of 0) on every thread through the parallel kernels."""
    import importlib

    import numba

    import cosim.functional.threads as T

    Q = importlib.import_module("cosim.functional.quantize")  # the package's `quantize` is the function

    seen = []
    real = Q._quantize_parts

    def spy(*a, **kw):
        seen.append((a[8], numba.get_num_threads()))
        return real(*a, **kw)

    monkeypatch.setattr(Q, "_quantize_parts", spy)
    x = np.random.default_rng(2).standard_normal((8, 64)).astype(np.float32)
    all_threads = numba.get_num_threads()
    for threshold, want in [(T.PARALLEL_MIN_ELEMENTS, (Q._SERIAL, 1)), (0, (Q._PARALLEL, all_threads))]:
        monkeypatch.setattr(T, "PARALLEL_MIN_ELEMENTS", threshold)
        seen.clear()
        a = quantize(x, "mx9", out=np.empty_like(x))
        b = Q.quantize_parts(x, "mx9").dequantized()
        assert seen == [want, want] and a.tobytes() == b.tobytes()
