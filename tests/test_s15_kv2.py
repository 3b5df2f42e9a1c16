"""Session-15 KV fixes: RocketKV's twin reads what its pricing charges (the authors' sign-selected
summaries), and on an MLA model the synthetic KV twins draw the cached latent."""

import numpy as np
import pytest

from cosim.functional.compression.attention import LatentCachePolicy, evaluate_policy
from cosim.functional.compression.eviction import H2OPolicy, RocketKVPolicy, rocketkv_split
from cosim.functional.compression.twin import _draw_kv, mla_latent, run_twin
from workloads.compression.eviction import rocketkv_budget
from workloads.compression.recipe import RecipeError

from tests.compression_helpers import DSV2_LITE, LLAMA3_8B


# ---- 1. RocketKV: one summary element per chunk and selected channel --------------------------
def _rocket_by_hand():
    """4 cached keys of 2 channels in 2 chunks: chunk 0 = (1, 0), (-3, 0) (min -3, max 1), chunk 1 =
    (2, 0), (2, 0). Queries (1, 0) and (-0.5, 0): r = 1 picks channel 0; the group's q sums to
    +0.5 there, so the kernel reads each chunk's MAX: k̂ = (1, 2). q̂·k̂: (1, 2) and (-0.5, -1); scale
    sqrt(2·|q̂|/|q|) = sqrt(2); softmax over the 4 tokens (chunk scores repeated) summed over the
    group: chunk 0 0.1651 + 0.2937 = 0.4588, chunk 1 0.3349 + 0.2063 = 0.5412, so k = 1 takes token 2.
    The old rule, Σ max(q·min, q·max) per query (both summaries read), scored chunk 0 at 1.5 for the
    second query and took token 0."""
    pol = RocketKVPolicy()
    pol.p = {"chunk": 2, "r": 1, "k": 1}
    pol.K = np.array([[1, 0], [-3, 0], [2, 0], [2, 0]], np.float32)
    pol.V = np.eye(4, 2, dtype=np.float32)
    pol.keep = np.arange(4)
    return pol, np.array([[1, 0], [-0.5, 0]], np.float32)


def test_rocketkv_twin_reads_the_sign_selected_summary_by_hand():
    pol, q = _rocket_by_hand()
    v = pol.view(q)
    assert v.positions.tolist() == [2]
    assert pol.summary_reads == 2  # r · ceil(4 / 2): one element per chunk, not min and max


def test_rocketkv_twin_summary_reads_are_pricings_at_capacity():
    """rocketkv_split(128, 32, 64, 32): capacity 82, chunk 2, r 50, k 16. Once the cache holds its
    82 tokens (a 50-token prompt budget + 32 decode tokens) a step reads r·ceil(82/2) = 2050 summary
    elements, pricing's read_elements(64) = 2050 + 2·16·64 = 4098 less the gathered K and V."""
    q = rocketkv_budget(128, 32, 64, 32)
    assert (q.capacity, q.chunk, q.r, q.k) == (82, 2, 50, 16)
    rng = np.random.default_rng(0)
    K, V, Q = (rng.standard_normal(s).astype(np.float32) for s in ((128, 64), (128, 64), (128, 2, 64)))
    pol = RocketKVPolicy(32, window=8, kernel=7, new_tokens=32)
    pol.begin_run(128)
    pol.prefill(K[:96], V[:96], Q[:96])
    assert pol.keep.size == 50
    for t in range(32):
        view = pol.step(t, K[96 + t], V[96 + t], Q[96 + t])
    assert pol.keep.size == 82 and view.positions.size == 16
    assert pol.summary_reads == 50 * 41 == q.read_elements(64) - 2 * 16 * 64 == 2050


# ---- 3. MLA: the synthetic twin draws the cached latent -----------------------------------------
def test_mla_twin_draws_the_576_wide_latent_read_by_every_head():
    seq = _draw_kv(np.random.default_rng(0), DSV2_LITE, 64, 4)
    assert mla_latent(DSV2_LITE) == (576, 512) and mla_latent(LLAMA3_8B) is None
    assert seq.keys.shape == (68, 576) and seq.values.shape == (68, 512)
    assert seq.decode_queries.shape == (4, 16, 576)  # all 16 query heads share the one latent
    assert np.array_equal(seq.values, seq.keys[:, :512])  # the value is the latent part of the key
    plain = _draw_kv(np.random.default_rng(0), LLAMA3_8B, 64, 4)
    assert plain.keys.shape == (68, 128) and plain.decode_queries.shape == (4, 4, 128)


def test_latent_policy_stores_one_tensor_and_reads_it_as_k_and_v():
    seq = _draw_kv(np.random.default_rng(1), DSV2_LITE, 96, 3)
    pol = LatentCachePolicy(H2OPolicy(0.1, 0.1), 512)
    pol.prefill(seq.keys[:96], seq.values[:96], seq.prompt_queries)
    assert pol.inner.V.shape[1] == 576  # the inner policy was given the latent, not a separate V
    v = pol.step(0, seq.keys[96], seq.values[96], seq.decode_queries[0])
    assert v.keys.shape[1] == 576 and np.array_equal(v.values, v.keys[:, :512])
    assert v.positions.size == 18 and v.positions[-1] == 96  # h2o_kept_tokens at 96: 9 + 9, the new token in


@pytest.mark.parametrize("spec", ["h2o", "snapkv(capacity=64)", "rocketkv(token_budget=32)", "zipcache"])
def test_mla_token_level_twins_run_on_the_latent_and_say_so(spec):
    res = next(iter(run_twin(spec, model="deepseek_v2_lite", prompt=128, steps=2).values()))
    assert res["status"] == "ok" and res["source"].startswith("synthetic MLA latent: one 576-wide")


@pytest.mark.parametrize("spec, words", [("kivi2", "quantizes keys per channel and values per token"),
                                         ("razor_attention", "RazorAttention"),
                                         ("palu", "without MLA")])
def test_mla_twin_refuses_what_pricing_refuses_in_its_words(spec, words):
    with pytest.raises(RecipeError, match=words):
        run_twin(spec, model="deepseek_v2_lite", prompt=64, steps=2)


def test_mla_recipe_on_a_natively_mla_model_has_nothing_to_score():
    res = run_twin("mla", model="deepseek_v2_lite", prompt=64, steps=2)["mla"]
    assert res["status"].startswith("no twin: deepseek_v2_lite is natively MLA")
    assert "attn_rel_error" not in res


def test_mla_rocketkv_twin_split_is_pricings_on_the_latent():
    """The twin's split uses the latent's width (576), as pricing's r does (`cached_keys`)."""
    seq = _draw_kv(np.random.default_rng(0), DSV2_LITE, 256, 2)
    pol = LatentCachePolicy(RocketKVPolicy(64, 32, 63, 256), 512)
    evaluate_policy(pol, seq)
    assert pol.inner.p == rocketkv_split(258, 64, 576, 256)
    assert pol.inner.p["r"] == rocketkv_budget(258, 64, 576, 256).r


# ---- 2. ZipCache: the authors' defaults and counts ----------------------------------------------
def test_zipcache_counts_truncate_as_the_authors_code():
    """int(0.4·7939) = int(3175.6) = 3175 at 2 bits, 4764 at 4 (round(0.6·7939) = 4763 hi said 3176);
    0.9 salient of 100: 10 (int(0.09999…·100) would be 9)."""
    from workloads.compression.kv_quant import zipcache_lo_count, zipcache_token_split
    assert zipcache_lo_count(0.6, 7939) == 3175 and zipcache_lo_count(0.9, 100) == 10
    assert zipcache_lo_count(0.6, 100) == 40 and zipcache_lo_count(1.0, 50) == 0 and zipcache_lo_count(0.0, 7) == 7
    assert zipcache_token_split(7939, 0, 0.6, 100) == (4764, 3175, 0)
    # decode at n 8192, 256 generated, gap 100: the read of step 256 sees 2 compressed chunks and 56 buffered
    assert zipcache_token_split(8192, 256, 0.6, 100) == (4762 + 120, 3174 + 80, 56)
    # P 7992: int(3196.8) = 3196 lo, 4796 hi; one chunk compressed, the second (100 buffered) completes after the read
    assert zipcache_token_split(8192, 200, 0.6, 100) == (4796 + 60, 3196 + 40, 100)


def test_zipcache_bundled_defaults_are_the_authors_demo():
    from workloads.compression import load_recipe
    r = load_recipe("zipcache")
    assert (r.params["salient_ratio"], r.params["requant_interval"], r.params["hi_bits"], r.params["lo_bits"]) == \
        (0.6, 100, 4, 2)
    assert "b6932b9" in r.citation and "streaming_gap 100" in r.citation
    assert load_recipe("mikv").params["requant_interval"] == 0


def test_zipcache_keys_are_channel_wise_per_group_and_subset():
    """Keys: one (min, step) per channel over the prompt's hi tokens, another over its lo tokens, and
    again over each completed chunk's; values per token after sqrt(max|v|) channel normalizers."""
    from cosim.functional.compression.kv import MixedPrecisionPolicy
    from cosim.functional.compression.quant import asym_group_quant
    rng = np.random.default_rng(3)
    K, V, Q = (rng.standard_normal(s).astype(np.float32) for s in ((28, 16), (28, 16), (28, 2, 16)))
    pol = MixedPrecisionPolicy(4, 2, 0.6, 0, "probe", 0.25, True, requant_interval=4, key_quant="channel")
    pol.prefill(K[:20], V[:20], Q[:20])
    hi = pol.hi.copy()
    assert pol.counts() == (12, 8, 0)  # 20 - int(0.4 x 20)
    np.testing.assert_allclose(pol.Ks[hi], asym_group_quant(K[:20][hi], 4, 12, axis=0))
    np.testing.assert_allclose(pol.Ks[~hi], asym_group_quant(K[:20][~hi], 2, 8, axis=0))
    np.testing.assert_allclose(pol.vnorm, np.sqrt(np.abs(V[:20]).max(axis=0)), rtol=1e-6)
    for t in range(4):
        pol.step(t, K[20 + t], V[20 + t], Q[20 + t])
    c = pol.hi[20:24]
    assert pol.counts() == (12 + 3, 8 + 1, 0) and c.sum() == 3  # int(0.4 x 4) = 1 of the chunk at 2 bits
    np.testing.assert_allclose(pol.Ks[20:24][c], asym_group_quant(K[20:24][c], 4, 3, axis=0))
    np.testing.assert_allclose(pol.Ks[20:24][~c], asym_group_quant(K[20:24][~c], 2, 1, axis=0))


def test_channel_keys_need_a_streaming_gap_and_probe_saliency():
    from cosim.functional.compression.kv import MixedPrecisionPolicy
    from workloads.compression import load_recipe
    from workloads.compression.kv_quant import key_stat_sets
    with pytest.raises(RecipeError, match="parameters.key_quant.*requant_interval 0"):
        load_recipe("zipcache(requant_interval=0)")
    with pytest.raises(RecipeError, match="parameters.key_quant.*accumulated"):
        load_recipe("mikv(key_quant=channel)")
    with pytest.raises(ValueError, match="streaming gap"):
        MixedPrecisionPolicy(4, 2, 0.6, key_quant="channel")
    assert load_recipe("zipcache(requant_interval=0,key_quant=token)").params["key_quant"] == "token"
    # stats sets per KV head: (prompt + 2 compressed chunks) x (hi, lo) at n 8192 with 256 generated, gap 100
    assert key_stat_sets(8192, 256, 100, 2) == 6 and key_stat_sets(4096, 0, 100, 2) == 2
