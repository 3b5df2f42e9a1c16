"""The row-long shared-microexponent kernel (`microq.micro_rows16`, blocks of 16 in pairs,
rows of even length) gives the bits of the kernel it replaced
(tests/functional_reference.py), element for element, scales and microexponents
included.

The inputs aim at the decisions the new code takes differently from the reference's
per-block loops: pairs exactly at 2^E (microexponent 0) next to pairs just below it
(microexponent 1), blocks the pair path must refuse (NaN/Inf, zero or subnormal maxima,
maxima near float32's top where the rounding constant would overflow), and a short
last block when the row length is not a multiple of 16."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cosim.functional import microq as MQ
from cosim.functional.params import ROUNDING
from cosim.functional.quantize import _quantize_parts
from cosim.functional.vecblock import LANES
from tests.script_loader import load_script

REF = load_script("tests/functional_reference.py", "functional_reference")
ROUNDING_NAME = {code: name for name, code in ROUNDING.items()}  # 0 even, 1 nearest/away, 2 floor/zero
EDGE = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-45, -3e-39, 1.1754942e-38, 3.4e38, -3.0e38, 1.7e38],
                dtype=np.float32)


def _inputs(seed, rows, cols, scale, nedge, npow2):
    """N(0,1) rows scaled by 2^k, then elements set to exact powers of two, to the float32
    just below one (the microexponent boundary of a pair), and to the values in EDGE."""
    rng = np.random.default_rng(seed)
    with np.errstate(over="ignore"):
        x = rng.standard_normal((rows, cols)) * 2.0 ** rng.integers(scale - 8, scale + 8, (rows, 1))
        x = x.astype(np.float32)
    flat = x.reshape(-1)
    idx = rng.integers(0, flat.size, npow2)
    k = np.clip(scale + rng.integers(-3, 4, npow2), -126, 127)
    below = rng.random(npow2) < 0.5
    p2 = np.ldexp(np.float32(1.0), k).astype(np.float32)
    flat[idx] = np.where(below, np.nextafter(p2, np.float32(0)), p2) * rng.choice([-1, 1], npow2)
    flat[rng.integers(0, flat.size, nedge)] = rng.choice(EDGE, nedge)
    return x


def _micro(mod, x, fmt, rounding):
    """Values, scales and microexponents of quantize's own path run with mod's row kernels."""
    q = _quantize_parts(x, fmt, -1, None, ROUNDING_NAME[rounding], None, False, "ocp", mod)
    return q.y2d.tobytes(), q.scales.tobytes(), q.micro.tobytes()


@settings(max_examples=80, deadline=None)
@given(fmt=st.sampled_from(["mx4", "mx6", "mx9"]), rows=st.integers(1, 24), half=st.integers(1, 90),
       scale=st.integers(-150, 127), nedge=st.integers(0, 6), npow2=st.integers(0, 40), seed=st.integers(0, 2 ** 20),
       rounding=st.sampled_from([0, 1, 2]))
def test_row_long_microexponent_kernel_gives_the_reference_bits(fmt, rows, half, scale, nedge, npow2, seed, rounding):
    x = _inputs(seed, rows, 2 * half, scale, nedge, npow2)  # even rows: the pair kernel serves them
    assert _micro(MQ, x, fmt, rounding) == _micro(REF, x, fmt, rounding)


def test_microexponent_decisions_at_the_pair_boundary():
    """One block by hand: amax 1.5 gives E = 0; the pair (1.0, 0.25) holds an element at
    2^E, so its microexponent is 0; the pair (0.99999994, 0.5) is all below 2^E: 1."""
    x = np.zeros((1, 16), np.float32)
    x[0, :4] = [1.5, 0.0, 1.0, 0.25]
    x[0, 4:6] = [np.nextafter(np.float32(1.0), np.float32(0)), 0.5]
    _, sexp, micro = _micro(MQ, x, "mx9", 0)
    assert np.frombuffer(sexp, np.int32).tolist() == [0]
    assert np.frombuffer(micro, np.int8).tolist() == [0, 0, 1, 1, 1, 1, 1, 1]


def test_long_rows_with_a_tail_past_the_vector_groups():
    """Rows of 519 blocks and half a block (8,312 = 2 x 4,096 + 7 x 16 + 8): 32 sixteen-block
    vector groups, then 7 tail blocks through the pair-run path (_pair_run) and a partial block,
    with NaN, zero, subnormal and huge-valued blocks in groups and in the tail: same bits as the
    reference, for every format and rounding."""
    cols = 32 * LANES * MQ.PAIR_BLOCK + 7 * MQ.PAIR_BLOCK + 8
    assert cols == 8312
    x = _inputs(11, 3, cols, 0, 0, 200)
    x[0, 5000:5016] = 0.0
    x[1, 4100] = np.nan
    x[2, 8190] = 3.0e38
    x[2, 4096:4112] = 1e-40
    x[0, 8200:8216] = 0.0  # tail blocks
    x[1, 8250] = np.nan
    x[2, 8280] = 3.0e38
    for fmt in ("mx4", "mx6", "mx9"):
        for rounding in (0, 1, 2):
            assert _micro(MQ, x, fmt, rounding) == _micro(REF, x, fmt, rounding)


def _specials_in(x, rng, cols_from):
    """Put a NaN, a zero block, a subnormal-maximum block and a huge maximum (rounding
    constant out of range) into blocks from column `cols_from` on, where there are any:
    blocks the pair path refuses, redone by the general code."""
    nblk = (x.shape[1] - cols_from) // 16
    kinds = rng.permutation(4)[:nblk]
    for i, kind in enumerate(kinds):
        r = rng.integers(0, x.shape[0])
        lo = cols_from + 16 * i
        if kind == 0:
            x[r, lo + rng.integers(0, 16)] = np.nan
        elif kind == 1:
            x[r, lo:lo + 16] = 0.0
        elif kind == 2:
            x[r, lo:lo + 16] = np.float32(1e-40)
        else:
            x[r, lo + rng.integers(0, 16)] = np.float32(3.0e38)


@settings(max_examples=60, deadline=None)
@given(fmt=st.sampled_from(["mx4", "mx6", "mx9"]), groups=st.integers(0, 2), tail=st.integers(0, 15),
       short=st.sampled_from([0, 2, 8, 14]), refused=st.booleans(), seed=st.integers(0, 2 ** 20),
       rounding=st.sampled_from([0, 1, 2]))
def test_every_tail_length_after_the_vector_groups(fmt, groups, tail, short, refused, seed, rounding):
    """Rows of 0-2 sixteen-block vector groups, then 0-15 whole tail blocks (`_pair_run`,
    one run after the groups; its scratch holds LANES blocks) and a short block of 0-14
    elements: values, exponents and microexponents equal the reference's, with or without
    refused blocks in the tail."""
    cols = (groups * LANES + tail) * 16 + short
    if cols == 0:
        cols = 2
    x = _inputs(seed, 3, cols, 0, 0, 12)
    if refused:
        _specials_in(x, np.random.default_rng(seed), groups * LANES * 16)
    assert _micro(MQ, x, fmt, rounding) == _micro(REF, x, fmt, rounding)


def test_tail_lengths_zero_to_fifteen_each():
    """Each tail length 0..15 once (after one vector group), with a refused block in the
    tail where it has one: the hypothesis test above samples them; this pins all sixteen."""
    rng = np.random.default_rng(3)
    for tail in range(16):
        x = _inputs(tail, 2, (LANES + tail) * 16 + 6, 0, 0, 20)
        if tail:
            x[1, LANES * 16 + 16 * rng.integers(0, tail)] = np.nan
        for fmt in ("mx4", "mx9"):
            assert _micro(MQ, x, fmt, 0) == _micro(REF, x, fmt, 0), (tail, fmt)
