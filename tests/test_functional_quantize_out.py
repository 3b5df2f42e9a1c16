"""`quantize(..., out=buf)` and the streaming row stores (cosim/functional/nontemporal.py).

out= writes the same bits as a fresh quantize, for every family and axis, returns `buf`
itself, and refuses an unusable array with one clear error. The streaming path of the
MX/BFP and shared-microexponent row kernels (used for a large reused output) is forced
on small arrays here, at every alignment of the output (the head before the first
64-byte boundary, the streamed lines, the tail), and must give the plain path's bits;
the reference kernels of tests/functional_reference.py pin those bits independently."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cosim.functional import quantize
from cosim.functional import nontemporal as NT
from cosim.functional.params import ROUNDING
from cosim.functional.quantize import _PARALLEL, _SERIAL, _quantize_parts
from tests.script_loader import load_script

REF = load_script("tests/functional_reference.py", "functional_reference")
ROUNDING_NAME = {code: name for name, code in ROUNDING.items()}
ROW_FORMATS = ["mxfp4", "mxfp6_e3m2", "mxfp8_e5m2", "mxint8", "mxint2", "bfp16", "msfp12", "mx9", "mx6", "mx4"]
OTHER_FORMATS = ["nvfp4", "int4_g128", "bf16", "fp8_e4m3", "int8"]


def _x(seed, shape, nspecial=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 2.0 ** rng.integers(-20, 20)).astype(np.float32)
    if nspecial and x.size:
        x.reshape(-1)[rng.integers(0, x.size, nspecial)] = rng.choice(
            np.array([np.nan, np.inf, 0.0, 1e-45, 3.0e38], np.float32), nspecial)
    return x


def _misaligned(shape, shift):
    """An uninitialised float32 C array of `shape` starting `shift` floats past a 64-byte line."""
    n = int(np.prod(shape))
    base = np.empty(n + 32, np.float32)
    start = (-base.ctypes.data % 64) // 4 + shift
    return base[start:start + n].reshape(shape)


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


@settings(max_examples=60, deadline=None)
@given(fmt=st.sampled_from(ROW_FORMATS), rows=st.integers(1, 20), cols=st.integers(1, 140),
       shift=st.integers(0, 15), seed=st.integers(0, 2 ** 20), nspecial=st.integers(0, 5),
       rounding=st.sampled_from([0, 1, 2]), serial=st.booleans())
def test_streamed_rows_give_the_plain_bits(fmt, rows, cols, shift, seed, nspecial, rounding, serial):
    """Streaming on (forced), the output `shift` floats past a cache line: same values,
    scales and microexponents as the reference kernels writing plainly."""
    x = _x(seed, (rows, cols), nspecial)
    kern = _SERIAL if serial else _PARALLEL
    buf = _misaligned(x.shape, shift)
    got = _quantize_parts(x, fmt, -1, None, ROUNDING_NAME[rounding], None, False, "ocp", kern, out=buf, stream=True)
    want = _quantize_parts(x, fmt, -1, None, ROUNDING_NAME[rounding], None, False, "ocp", REF)
    assert np.shares_memory(got.y2d, buf)
    assert got.y2d.tobytes() == want.y2d.tobytes() and got.scales.tobytes() == want.scales.tobytes()
    if got.micro is not None:
        assert got.micro.tobytes() == want.micro.tobytes()


def test_streaming_only_for_a_reused_output_of_cache_size(monkeypatch):
    """use_streaming: a caller's output of at least the last-level cache; never without
    one, never where the cache size is unknown (0)."""
    monkeypatch.setattr(NT, "last_level_cache_bytes", lambda: 1 << 20)
    assert NT.use_streaming(np.empty(1 << 18, np.float32))  # 1 MiB
    assert not NT.use_streaming(np.empty((1 << 18) - 1, np.float32))
    assert not NT.use_streaming(None)
    monkeypatch.setattr(NT, "last_level_cache_bytes", lambda: 0)
    assert not NT.use_streaming(np.empty(1 << 22, np.float32))


def test_last_level_cache_reads_sysfs_sizes(tmp_path, monkeypatch):
    """'32768K' in index3/size -> 32 MiB, the largest level wins, unreadable entries skipped."""
    for name, size in (("index0", "48K"), ("index2", "1024K"), ("index3", "32768K"), ("index4", "junk")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "size").write_text(size + "\n")
    (tmp_path / "index5").mkdir()  # no size file
    assert NT._cache_sizes_bytes(tmp_path) == [48 << 10, 1 << 20, 32 << 20]
