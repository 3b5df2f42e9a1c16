"""The one-pass vector paths (cosim/functional/vecblock.py) of the MX/BFP row kernel
(`blockq.mx_rows_vec`, blocks of 16, 32, 64 ... elements without microxcaling) and of the
shared-microexponent kernel (`microq.micro_rows16`) give the reference kernels' bits
(tests/functional_reference.py: the single-pass scalar kernels the issue-14 rewrites
replaced).

Rows here are long enough for groups of sixteen blocks (`round_group`), plus a
remainder of fewer than sixteen whole blocks and a short last block (`blockq._mx_block`), and the inputs put
into some blocks what the vector plan must refuse (NaN/Inf, zero and subnormal maxima,
scales at both ends of the float32 range, so that constants leave the normal range),
every rounding mode, saturating or not."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cosim.functional import blockq as BQ
from cosim.functional import kernels as K
from cosim.functional import microq as BQ_MICRO
from cosim.functional.params import element_params, resolve
from tests.script_loader import load_script

REF = load_script("tests/functional_reference.py", "functional_reference")
FORMATS = ["mxfp4", "mxfp6_e2m3", "mxfp6_e3m2", "mxfp8_e4m3", "mxfp8_e5m2", "mxint8", "mxint4", "mxint2", "bfp16",
           "bfp12", "msfp12"]
SPECIALS = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-45, -3e-39, 1.1754942e-38, 3.4e38, -3.4028235e38],
                    dtype=np.float32)


def _run(mod, x, fmt, block, rounding, sat, flush):
    f = resolve(fmt, block)
    ep = element_params(f)
    hi = 2 ** (f.scale_bits - 1) - 1
    out = np.empty_like(x)
    sexp = np.empty((x.shape[0], -(-x.shape[1] // f.block_size)), np.int32)
    kernel = mod.mx_rows_vec if mod is BQ else mod.mx_rows
    kernel(x.view(np.uint32), x, out, sexp, f.block_size, ep.emax, ep.is_int, ep.mbits, ep.emin, ep.max_norm,
           -hi, hi, rounding, False, flush, sat, K.POW2)
    return out.tobytes(), sexp.tobytes()


@settings(max_examples=60, deadline=None)
@given(fmt=st.sampled_from(FORMATS), block=st.sampled_from([None, 16, 32, 64]), rows=st.integers(1, 6),
       groups=st.integers(1, 3), extra=st.integers(0, 40), scale=st.integers(-150, 125),
       zero_blocks=st.integers(0, 3), nspecial=st.integers(0, 6), seed=st.integers(0, 2 ** 20),
       rounding=st.sampled_from([0, 1, 2]), sat=st.booleans(), flush=st.booleans())
def test_vector_groups_give_the_reference_bits(fmt, block, rows, groups, extra, scale, zero_blocks, nspecial, seed,
                                               rounding, sat, flush):
    bs = resolve(fmt, block).block_size
    cols = groups * 16 * bs + extra  # whole groups of sixteen blocks, then whole blocks and a short one
    rng = np.random.default_rng(seed)
    with np.errstate(over="ignore"):
        x = (rng.standard_normal((rows, cols)) * 2.0 ** rng.integers(scale - 20, scale + 20, (rows, 1)))
        x = x.astype(np.float32)
    for b in rng.integers(0, cols // bs, zero_blocks):
        x[rng.integers(0, rows), b * bs:(b + 1) * bs] = 0.0
    x.reshape(-1)[rng.integers(0, x.size, nspecial)] = rng.choice(SPECIALS, nspecial)
    assert _run(BQ, x, fmt, block, rounding, sat, flush) == _run(REF, x, fmt, block, rounding, sat, flush)


def test_one_group_by_hand():
    """bfp16 (int8 elements: value = n * 2^(s - 6), |n| <= 127) on a row of 16 blocks:
    block 0 holds 1.0 (amax exponent 0, s = 0, step 2^-6) and 0.0078125 = 2^-7, a tie between
    0 and 2^-6 that rounds to even (0); block 1 holds NaN (the vector plan refuses it: all
    NaN, exponent 32767 from the general path); every other block holds 3.0 (s = 1)."""
    x = np.full((1, 256), 3.0, np.float32)
    x[0, :16] = 0.0
    x[0, 0], x[0, 1], x[0, 2] = 1.0, 2.0 ** -7, -(1.0 + 2.0 ** -6)
    x[0, 16:32] = np.nan
    y, s = _run(BQ, x, "bfp16", None, 0, True, False)
    y = np.frombuffer(y, np.float32)
    s = np.frombuffer(s, np.int32)
    assert y[:3].tolist() == [1.0, 0.0, -(1.0 + 2.0 ** -6)]
    assert np.isnan(y[16:32]).all() and s[1] == K.NAN_EXP
    assert s[0] == 0 and (s[2:] == 1).all() and (y[32:] == 3.0).all()


def _micro_run(mod, x, fmt, rounding):
    f = resolve(fmt, None)
    ep = element_params(f)
    hi = 2 ** (f.scale_bits - 1) - 1
    nb = -(-x.shape[1] // f.block_size)
    out = np.empty_like(x)
    sexp = np.empty((x.shape[0], nb), np.int32)
    micro = np.empty((x.shape[0], nb * (f.block_size // f.subblock_size)), np.int8)
    mod.microexp_rows(x.view(np.uint32), x, out, sexp, micro, f.block_size, f.subblock_size, ep.mbits, ep.max_norm,
                      -hi, hi, rounding, K.POW2)
    return out.tobytes(), sexp.tobytes(), micro.tobytes()


@settings(max_examples=40, deadline=None)
@given(fmt=st.sampled_from(["mx9", "mx6", "mx4"]), rows=st.integers(1, 5), groups=st.integers(1, 3),
       extra_pairs=st.integers(0, 20), scale=st.integers(-150, 125), npow2=st.integers(0, 60),
       nspecial=st.integers(0, 5), seed=st.integers(0, 2 ** 20), rounding=st.sampled_from([0, 1, 2]))
def test_microexponent_vector_groups_give_the_reference_bits(fmt, rows, groups, extra_pairs, scale, npow2, nspecial,
                                                             seed, rounding):
    """Rows of whole groups of sixteen 16-element blocks (`vecblock.micro_group`), then
    pairs for `_pair_run` and a short block; elements at and just below powers of two
    (the microexponent boundary), zero blocks and specials: values, exponents and
    microexponents equal the reference's."""
    cols = groups * 256 + 2 * extra_pairs
    rng = np.random.default_rng(seed)
    with np.errstate(over="ignore"):
        x = (rng.standard_normal((rows, cols)) * 2.0 ** rng.integers(scale - 8, scale + 8, (rows, 1)))
        x = x.astype(np.float32)
    flat = x.reshape(-1)
    k = np.clip(scale + rng.integers(-3, 4, npow2), -126, 127)
    p2 = np.ldexp(np.float32(1.0), k).astype(np.float32)
    below = rng.random(npow2) < 0.5
    flat[rng.integers(0, flat.size, npow2)] = np.where(below, np.nextafter(p2, np.float32(0)), p2)
    x[0, 16:32] = 0.0
    flat[rng.integers(0, flat.size, nspecial)] = rng.choice(SPECIALS, nspecial)
    assert _micro_run(BQ_MICRO, x, fmt, rounding) == _micro_run(REF, x, fmt, rounding)


def test_quantize_small_and_large_calls_use_the_vector_groups_alike():
    """quantize runs arrays below the threading threshold through the kernels' serial twins
    (cosim.functional.threads) and larger ones in parallel: with rows of whole groups both
    give the reference kernels' values and scales (MX/BFP and shared-microexponent)."""
    from cosim.functional.quantize import _PARALLEL, _SERIAL, _quantize_parts

    rng = np.random.default_rng(7)
    x = (rng.standard_normal((24, 1024 + 48)) * 2.0 ** rng.integers(-20, 20, (24, 1))).astype(np.float32)
    x[3, 100:140] = 0.0
    x[5, 700] = np.nan
    for fmt in ("mxfp4", "mxint8", "bfp16", "msfp12", "mx9", "mx4"):
        for rounding in ("even", "nearest", "floor"):
            want = _quantize_parts(x, fmt, -1, None, rounding, None, False, "ocp", REF)
            for kern in (_SERIAL, _PARALLEL):
                got = _quantize_parts(x, fmt, -1, None, rounding, None, False, "ocp", kern)
                assert got.y2d.tobytes() == want.y2d.tobytes() and got.scales.tobytes() == want.scales.tobytes()
