"""Kernel results do not depend on how many numba threads run them (issue 14: small
arrays run on one thread, through the kernels' serial twins, cosim.functional.threads;
the first test compares the parallel kernels with the twins), and the shared fast-path helpers
(unsigned-index block loops) agree with the float64 model on random blocks."""

from __future__ import annotations

import numba
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import cosim.functional.threads as T
from cosim.functional import matmul
from cosim.functional.quantize import quantize_parts

FORMATS = ["mxfp4", "mxfp8_e4m3", "mxint8", "bfp16", "mx6", "mx9", "nvfp4", "int4_g128", "fp8_e4m3"]


def _parts(x, fmt, axis, rounding):
    p = quantize_parts(x, fmt, axis=axis, rounding=rounding)
    return p.dequantized(), p.scales, p.micro


@settings(max_examples=40, deadline=None)
@given(fmt=st.sampled_from(FORMATS), rows=st.integers(1, 9), cols=st.integers(1, 100), axis=st.sampled_from([0, -1]),
       rounding=st.sampled_from(["even", "nearest", "floor"]), scale=st.integers(-130, 120), seed=st.integers(0, 99))
def test_one_thread_and_all_threads_agree(fmt, rows, cols, axis, rounding, scale, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((rows, cols)) * 2.0 ** scale).astype(np.float32)
    if seed % 7 == 0:
        x.flat[seed % x.size] = np.nan
    old = T.PARALLEL_MIN_ELEMENTS
    try:
        T.PARALLEL_MIN_ELEMENTS = 0  # every call parallel
        par = _parts(x, fmt, axis, rounding)
        T.PARALLEL_MIN_ELEMENTS = 1 << 62  # every call on one thread
        ser = _parts(x, fmt, axis, rounding)
    finally:
        T.PARALLEL_MIN_ELEMENTS = old
    for a, b in zip(par, ser):
        if a is not None:
            assert np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes()


def test_serial_twins_are_cached_apart_and_only_for_parallel_kernels():
    from cosim.functional import blockq, kernels
    twin = T.serial_twin(blockq.mx_rows)
    assert twin.py_func.__qualname__ == "mx_rows_serial" and not twin.targetoptions.get("parallel")
    assert twin.py_func.__code__ is blockq.mx_rows.py_func.__code__  # the same code, not a copy
    assert T.serial_twin(kernels.round_one) is kernels.round_one  # not parallel: itself
    assert T.serial_twin(len) is len


def test_small_microexponent_calls_take_serial_kernels():
    """`microq.microexp_rows` is a Python wrapper over two parallel kernels; its serial twin
    (what quantize's small calls take) is the same wrapper over their serial twins, and
    both give the same bits on rows that take each kernel (mx9 in pairs of 16-element
    blocks: micro_rows16; odd rows and blocks of 8: micro_rows)."""
    from cosim.functional import microq
    from cosim.functional.quantize import _PARALLEL, _SERIAL, _quantize_parts

    par = microq.microexp_rows.kernels
    twin = T.serial_twin(microq.microexp_rows)
    assert [k.targetoptions.get("parallel") for k in par] == [True, True]
    assert [k.py_func.__qualname__ for k in twin.kernels] == ["micro_rows16_serial", "micro_rows_serial"]
    assert not any(k.targetoptions.get("parallel") for k in twin.kernels)
    assert not any(k.targetoptions.get("parallel") for k in _SERIAL.microexp_rows.kernels)
    rng = np.random.default_rng(4)
    for cols, block in [(600, None), (301, None), (600, 8)]:
        x = (rng.standard_normal((20, cols)) * 2.0 ** rng.integers(-30, 30, (20, 1))).astype(np.float32)
        x[2, 40] = np.nan
        ser, par = (_quantize_parts(x, "mx9", -1, block, "even", None, False, "ocp", k) for k in (_SERIAL, _PARALLEL))
        assert (ser.y2d.tobytes(), ser.scales.tobytes(), ser.micro.tobytes()) == (
            par.y2d.tobytes(), par.scales.tobytes(), par.micro.tobytes())


def test_threads_for_restores_the_thread_count():
    before = numba.get_num_threads()
    with T.threads_for(10):
        assert numba.get_num_threads() == 1
    assert numba.get_num_threads() == before
    with T.threads_for(10, min_elements=5):
        assert numba.get_num_threads() == before


@settings(max_examples=25, deadline=None)
@given(m=st.integers(1, 9), k=st.integers(1, 80), n=st.integers(1, 7), fmt=st.sampled_from(["mxfp4", "mxfp8_e4m3"]),
       seed=st.integers(0, 99))
def test_exact_gemm_equals_block_sums_in_float64(m, k, n, fmt, seed):
    """Exact mode = per K-block exact dot products of the dequantized operands (float64 is
    exact for these narrow codes), rounded to fp32 and accumulated in fp32 in k order —
    whichever kernel (int64 or float32 codes, 4-row tiles or the tail) runs."""
    from cosim.functional import quantize
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    qa = quantize(a, fmt, axis=-1).astype(np.float64)
    qb = quantize(b, fmt, axis=0).astype(np.float64)
    want = np.zeros((m, n), dtype=np.float32)
    for lo in range(0, k, 32):
        want = (want + (qa[:, lo:lo + 32] @ qb[lo:lo + 32]).astype(np.float32)).astype(np.float32)
    assert np.array_equal(matmul(a, b, fmt, mode="exact"), want)
