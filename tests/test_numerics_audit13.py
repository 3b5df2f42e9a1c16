"""Session 13 numerics audit: the real-checkpoint accuracy path scores what the cost
side prices and stores (hand-checkable numbers)."""

import numpy as np

import cosim.functional as F
from cosim.functional.lm.decoder import _kv_quantizer
from cosim.functional.lm.numerics import Numerics, quantize_operand


def _ramp():
    # one row of 128 values 10 .. 15: the registered *_zp range is [min(x,0), max(x,0)] = [0, 15],
    # so the fp16 scale is 15/15 = 1.0 and the integer zero point 0: every value rounds to an integer
    return (10 + np.arange(128) * (5 / 127)).astype(np.float32)[None, :]


def test_zp_accuracy_path_is_the_registered_quantizer():
    x = _ramp()
    y = quantize_operand(x, "int4_g128_zp")
    assert np.array_equal(y, F.quantize(x, "int4_g128_zp"))
    assert np.array_equal(y, np.round(x))  # not a float-min grid over [10, 15] (steps of 1/3)
    assert y[0, 1] == 10.0 and y[0, 127] == 15.0


def test_zp_weights_kv_and_short_group_match_functional_core():
    rng = np.random.default_rng(3)
    w = rng.standard_normal((8, 576)).astype(np.float32) + 0.3  # 576 = 4.5 groups of 128
    num = Numerics(weights="int4_g128_zp")
    assert np.array_equal(num.weight(w), F.quantize(w, "int4_g128_zp"))
    k = rng.standard_normal((40, 3, 64)).astype(np.float32)
    q = _kv_quantizer("int4_g128_zp", k[:16], "head")
    assert np.array_equal(q(k), F.quantize(k, "int4_g128_zp"))
