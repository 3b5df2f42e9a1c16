"""The bf16 rounding kernel gives the numpy expression's bits on every input: specials
(signed zeros, subnormals, max, Inf, NaN payloads including those whose rounding carries
out of 32 bits), ties, and random patterns; shapes and layouts are kept."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cosim.functional.compression.bf16 import bf16_round, bf16_round_numpy
from cosim.functional.compression.quant import register_format_quant

SPECIAL = np.array([0, 0x80000000, 1, 0x7FFF, 0x8000, 0x18000, 0x00FF8000, 0x7F7FFFFF, 0x7F800000, 0xFF800000,
                    0x7FC00000, 0x7FFFFFFF, 0xFFFF8000, 0xFFFFFFFF, 0x3F808000, 0x3F818000, 0x3F807FFF],
                   dtype=np.uint32)


def _same(a, b):
    assert a.shape == b.shape and a.dtype == b.dtype == np.float32
    assert np.array_equal(np.ascontiguousarray(a).view(np.uint32), np.ascontiguousarray(b).view(np.uint32))


def test_specials_by_hand():
    x = SPECIAL.view(np.float32)
    _same(bf16_round(x), bf16_round_numpy(x))
    got = bf16_round(x).view(np.uint32)
    assert got[5] == 0x20000  # a tie (bit 15 set, rest zero) with odd bit 16 rounds up to even
    assert got[14] == 0x3F800000 and got[15] == 0x3F820000  # ties to even: down from 1.00390625, up from 1.01171875
    # NaN stays NaN, bit for bit as cosim.functional.quantize('bf16') passes it (the rounding add used to carry
    # 0xFFFFFFFF out of 32 bits to -0.0... to +0 and 0x7F800001 into +Inf)
    assert got[13] == 0xFFFFFFFF and got[11] == 0x7FFFFFFF and got[10] == 0x7FC00000


def test_nan_stays_nan():
    import cosim.functional as F
    x = np.array([0x7FFFFFFF, 0x7F800001, 0xFF800001, 0xFFFFFFFF, 0x7FBF8000], np.uint32).view(np.float32)
    for y in (bf16_round(x), bf16_round_numpy(x), register_format_quant(x, "bf16")):
        assert np.isnan(y).all()
        assert np.array_equal(y.view(np.uint32), F.quantize(x, "bf16").view(np.uint32))
    assert bf16_round(np.array([0x7F7FFFFF], np.uint32).view(np.float32))[0] == np.inf  # max float32 still rounds up


@settings(max_examples=60, deadline=None)
@given(bits=st.lists(st.integers(0, 2 ** 32 - 1), min_size=1, max_size=300), cols=st.integers(1, 5))
def test_random_bit_patterns_and_layouts(bits, cols):
    x = np.array(bits, dtype=np.uint32).view(np.float32)
    _same(bf16_round(x), bf16_round_numpy(x))
    n = (x.size // cols) * cols
    if n:
        m = x[:n].reshape(-1, cols).T  # a transposed (non-contiguous) view
        _same(bf16_round(m), bf16_round_numpy(m))
        _same(register_format_quant(m, "bf16"), bf16_round_numpy(m))
