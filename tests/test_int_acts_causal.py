"""Plain intN activations and KV caches are causal in the accuracy path (review finding, session 13): int8/int4
take one amax/qmax scale over the whole call (cosim.functional.quantize), so quantizing a whole sequence at once let
a later token set an earlier token's scale (SmolLM2: --acts int8 moved earlier logits by up to 26.8, --kv int4 by
24.8). They now follow the rule of the other dynamically scaled formats: one scale over the prompt, one per decode
row; attention step by step; a KV cache keeps the scale calibrated on the prompt."""
from types import SimpleNamespace

import numpy as np
import pytest

from cosim.functional.lm.numerics import Numerics, token_coupled


def _attend(num, q, k, v, prefill):
    from cosim.functional.lm.attention import PolicyStats
    from cosim.functional.lm.decoder import DecoderLM
    fake = SimpleNamespace(num=num, _kv_policy_factory=lambda: None)
    return DecoderLM.attention(fake, q, k, v, prefill, PolicyStats())


@pytest.mark.parametrize("fmt", ["int8", "int4"])
def test_int_acts_rows_do_not_see_later_rows(fmt):
    assert token_coupled(fmt) and not token_coupled("bf16")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((10, 64)).astype(np.float32)
    y = x.copy()
    y[9] *= 50.0  # a later token with a far larger amax
    num = Numerics.from_options(acts=fmt)
    a, b = num.act(x, prompt=5), num.act(y, prompt=5)
    np.testing.assert_array_equal(a[:9], b[:9])
    # a decode row's scale is its own: amax/qmax of that row (int8: 127 levels)
    qmax = {"int8": 127.0, "int4": 7.0}[fmt]
    s = np.abs(x[7]).max() / qmax
    np.testing.assert_allclose(a[7], np.clip(np.rint(x[7] / np.float32(s)), -qmax, qmax) * np.float32(s), rtol=1e-6)


@pytest.mark.parametrize("fmt", ["int8", "int4"])
def test_int_acts_attention_is_causal(fmt):
    rng = np.random.default_rng(1)
    N, H, hkv, d, P = 24, 4, 2, 16, 9
    q = rng.standard_normal((N, H, d)).astype(np.float32)
    k = rng.standard_normal((N, hkv, d)).astype(np.float32)
    v = rng.standard_normal((N, hkv, d)).astype(np.float32)
    num = Numerics.from_options(acts=fmt)
    a = _attend(num, q, k, v, P)
    k2, v2 = k.copy(), v.copy()
    k2[-1] *= 40.0
    v2[-1] *= 40.0
    b = _attend(num, q, k2, v2, P)
    np.testing.assert_array_equal(a[:-1], b[:-1])


@pytest.mark.parametrize("scale", ["tensor", "head"])
def test_int_kv_cache_keeps_its_prompt_scale(scale):
    from cosim.functional.kvstore import kv_quantizer as _kv_quantizer
    rng = np.random.default_rng(2)
    kv = rng.standard_normal((12, 2, 8)).astype(np.float32)
    quant = _kv_quantizer("int8", kv[:4], scale)
    later = kv.copy()
    later[10] *= 100.0
    np.testing.assert_array_equal(quant(kv)[:10], quant(later)[:10])
    # the prompt-calibrated scale: amax over the prompt / 127; a value beyond it saturates at 127 steps
    s = np.abs(kv[:4]).max() / 127.0 if scale == "tensor" else np.abs(kv[:4, 1]).max() / 127.0
    assert quant(later)[10, 1].max() <= 127 * s * (1 + 1e-6)
