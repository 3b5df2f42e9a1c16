"""The issue-14 block kernels (cosim/functional/blockq.py) give the bits of the kernel they
replaced (kept in tests/functional_reference.py): the two-pass row kernel `mx_rows` and
the column kernel `mx_cols` (blocks along axis 0, no transposing copy), on random
inputs that reach every path: NaN/Inf blocks, float32 subnormals, values just below a
power of two (microxcaling log2 candidates), zero blocks, short last blocks, scales
over the whole float32 range, every rounding / compat / saturation / flush setting."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cosim.functional import blockq as BQ
from cosim.functional import kernels as K
from cosim.functional.params import element_params, resolve
from tests.script_loader import load_script

REF = load_script("tests/functional_reference.py", "functional_reference")
FORMATS = ["mxfp4", "mxfp6_e2m3", "mxfp6_e3m2", "mxfp8_e4m3", "mxfp8_e5m2", "mxint8", "mxint4", "mxint2", "bfp16",
           "bfp12", "msfp16", "msfp12", "bfp_m5_b32"]
SPECIALS = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-45, -3e-39, 1.1754942e-38, 3.4e38, -3.4028235e38,
                     np.float32(1.0) - np.float32(2.0 ** -24), 0.75, 2.5, -0.375], dtype=np.float32)


def _inputs(seed, rows, cols, scale, nspecial):
    rng = np.random.default_rng(seed)
    with np.errstate(over="ignore"):
        x = (rng.standard_normal((rows, cols)) * 2.0 ** rng.integers(scale - 20, scale + 20, (rows, 1)))
        x = x.astype(np.float32)
    idx = rng.integers(0, x.size, nspecial)
    x.reshape(-1)[idx] = rng.choice(SPECIALS, nspecial)
    if rows > 2:
        x[rows // 2] = 0.0
    return x


def _args(fmt, block, rounding, microx, flush, sat):
    f = resolve(fmt, block)
    ep = element_params(f)
    hi = 2 ** (f.scale_bits - 1) - 1
    return f.block_size, (ep.emax, ep.is_int, ep.mbits, ep.emin, ep.max_norm, -hi, hi, rounding, microx, flush, sat,
                          K.POW2)


@settings(max_examples=120, deadline=None)
@given(fmt=st.sampled_from(FORMATS), rows=st.integers(1, 40), cols=st.integers(1, 150), scale=st.integers(-150, 125),
       nspecial=st.integers(0, 12), seed=st.integers(0, 2 ** 20), rounding=st.sampled_from([0, 1, 2]),
       microx=st.booleans(), flush=st.booleans(), sat=st.booleans(), block=st.sampled_from([None, 8, 24, 64]))
def test_new_block_kernels_give_the_reference_bits(fmt, rows, cols, scale, nspecial, seed, rounding, microx, flush,
                                                    sat, block):
    x = _inputs(seed, rows, cols, scale, nspecial)
    bs, rest = _args(fmt, block, rounding, microx, flush, sat)
    nb = -(-cols // bs)
    want = np.empty_like(x)
    s_want = np.empty((rows, nb), np.int32)
    REF.mx_rows(x.view(np.uint32), x, want, s_want, bs, *rest)
    got = np.empty_like(x)
    s_got = np.empty((rows, nb), np.int32)
    BQ.mx_rows(x.view(np.uint32), x, got, s_got, bs, *rest)
    assert got.tobytes() == want.tobytes() and s_got.tobytes() == s_want.tobytes()
    # the one-pass kernel: vector groups need 16 blocks a row (tests/test_functional_vecblock.py); rows this
    # short take its per-block tail path. It serves blocks of a multiple of 16 without microxcaling only.
    got[:] = np.nan
    if BQ.vec_serves(bs, microx):
        BQ.mx_rows_vec(x.view(np.uint32), x, got, s_got, bs, *rest)
        assert got.tobytes() == want.tobytes() and s_got.tobytes() == s_want.tobytes()
    else:
        with pytest.raises(ValueError, match="mx_rows_vec"):
            BQ.mx_rows_vec(x.view(np.uint32), x, got, s_got, bs, *rest)
    # blocks down the columns of x.T (C-contiguous) are the rows of x
    xt = np.ascontiguousarray(x.T)
    got_t = np.empty_like(xt)
    s_t = np.empty((nb, rows), np.int32)
    BQ.mx_cols(xt.view(np.uint32), xt, got_t, s_t, bs, *rest)
    assert np.ascontiguousarray(got_t.T).tobytes() == want.tobytes()
    assert np.ascontiguousarray(s_t.T).tobytes() == s_want.tobytes()


def test_column_path_serves_quantize_along_axis_0():
    """quantize(axis=0) of a matrix goes down the columns and equals the row path on x.T."""
    from cosim.functional import quantize

    x = _inputs(3, 96, 70, 0, 20)
    for fmt in ("mxfp4", "mxint8", "bfp16"):
        a = quantize(x, fmt, axis=0)
        b = quantize(np.ascontiguousarray(x.T), fmt, axis=1).T
        assert a.shape == x.shape and a.tobytes() == np.ascontiguousarray(b).tobytes()


@settings(max_examples=80, deadline=None)
@given(fmt=st.sampled_from(["mx4", "mx6", "mx9"]), rows=st.integers(1, 30), cols=st.integers(1, 120),
       scale=st.integers(-150, 125), nspecial=st.integers(0, 12), seed=st.integers(0, 2 ** 20),
       rounding=st.sampled_from([0, 1, 2]), block=st.sampled_from([None, 8, 32]))
def test_microexponent_kernel_gives_the_reference_bits(fmt, rows, cols, scale, nspecial, seed, rounding, block):
    from cosim.functional import microq as MQ

    x = _inputs(seed, rows, cols, scale, nspecial)
    f = resolve(fmt, block)
    ep = element_params(f)
    hi = 2 ** (f.scale_bits - 1) - 1
    nb = -(-cols // f.block_size)
    res = []
    for mod in (REF, MQ):
        out = np.empty_like(x)
        sexp = np.empty((rows, nb), np.int32)
        micro = np.empty((rows, nb * (f.block_size // f.subblock_size)), np.int8)
        mod.microexp_rows(x.view(np.uint32), x, out, sexp, micro, f.block_size, f.subblock_size, ep.mbits,
                          ep.max_norm, -hi, hi, rounding, K.POW2)
        res.append(out.tobytes() + sexp.tobytes() + micro.tobytes())
    assert res[0] == res[1]


def test_axis_0_edge_shapes_equal_the_row_path():
    """3-D arrays (blocks down axis 0 of a (K, rest) view), empty axes, fewer than 16
    columns (the transposing path): quantize(axis=0) equals the row path on the moved
    axis, values and scales."""
    from cosim.functional import quantize
    from cosim.functional.quantize import quantize_parts

    rng = np.random.default_rng(5)
    for shape in [(64, 3, 20), (33, 2, 8), (40, 16), (5, 16), (1, 32), (0, 16), (64, 0), (0, 0), (70, 7)]:
        x = rng.standard_normal(shape).astype(np.float32)
        moved = np.ascontiguousarray(np.moveaxis(x, 0, -1))
        for fmt in ("mxfp4", "bfp16", "mxint8"):
            a = quantize(x, fmt, axis=0)
            b = np.moveaxis(quantize(moved, fmt, axis=-1), -1, 0)
            assert a.shape == x.shape and np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes()
            pa, pb = quantize_parts(x, fmt, axis=0), quantize_parts(moved, fmt, axis=-1)
            assert pa.scales.shape == pb.scales.shape and pa.scales.tobytes() == pb.scales.tobytes()


def test_quantize_calls_the_one_pass_kernel_only_where_it_serves():
    """quantize picks `mx_rows_vec` exactly when `vec_serves` (blocks of a multiple of 16,
    no microxcaling), else `mx_rows`, so the one-pass kernel's refusal is unreachable from
    quantize; a spy namespace records which kernel each call took."""
    from types import SimpleNamespace

    from cosim.functional.quantize import _quantize_parts

    import inspect
    # quantize asks on every call: a plain function (no numba dispatch, no compile), its kernel twin the same one
    assert inspect.isfunction(BQ.vec_serves) and BQ._vec_serves_kernel.py_func is BQ.vec_serves
    assert [BQ.vec_serves(b, m) for b, m in [(16, False), (32, False), (64, False), (8, False), (24, False),
                                              (32, True), (16, True)]] == [True, True, True, False, False, False,
                                                                           False]
    took = []
    spy = SimpleNamespace(mx_rows=lambda *a: (took.append("mx_rows"), BQ.mx_rows(*a)),
                          mx_rows_vec=lambda *a: (took.append("vec"), BQ.mx_rows_vec(*a)))
    x = _inputs(1, 4, 300, 0, 4)
    for block, compat, want in [(None, "ocp", "vec"), (16, "ocp", "vec"), (64, "ocp", "vec"), (8, "ocp", "mx_rows"),
                                (24, "ocp", "mx_rows"), (None, "microxcaling", "mx_rows")]:
        took.clear()
        got = _quantize_parts(x, "mxfp4", -1, block, "even", None, False, compat, spy).y2d
        assert took == [want], (block, compat)
        ref = _quantize_parts(x, "mxfp4", -1, block, "even", None, False, compat, REF).y2d
        assert got.tobytes() == ref.tobytes()
