"""Session 15 recipe leftovers: what is priced is what the twin scores, each pinned on a
number a reader can check by hand."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compression_helpers import DSV2_LITE, LLAMA3_8B, trace_for
from cosim.functional.compression.kv import MixedPrecisionPolicy
from workloads.compression import apply_recipe
from workloads.compression.kv_quant import mikv_demoted_tokens, zipcache_probe_counts

FAST = settings(max_examples=100, deadline=None, derandomize=True)


def only(trace, name):
    ops = [o for o in trace.ops if o.name == name]
    assert len(ops) == 1, f"{name}: {len(ops)} ops"
    return ops[0]


# ---- 1. MiKV: one demotion rule for pricing and twin ------------------------------------
def test_mikv_demotions_at_8192_with_256_generated():
    """r 0.2, n 8192, 256 generated (P 7936): 256 − (round(1638.4) − round(1587.2)) = 205."""
    assert mikv_demoted_tokens(7936, 8192, 0.2) == 205
    assert sum(mikv_demoted_tokens(n - 1, n, 0.2) for n in range(7937, 8193)) == 205
    with pytest.raises(ValueError, match="n_from 9, n_to 8"):
        mikv_demoted_tokens(9, 8, 0.2)


@FAST
@given(r=st.floats(0, 1), n0=st.integers(0, 5000), steps=st.integers(0, 300))
def test_mikv_demotions_are_zero_or_one_a_step_and_telescope(r, n0, steps):
    per = [mikv_demoted_tokens(n - 1, n, r) for n in range(n0 + 1, n0 + steps + 1)]
    assert set(per) <= {0, 1}
    assert sum(per) == mikv_demoted_tokens(n0, n0 + steps, r)


def test_mikv_twin_demotes_what_the_rule_says_each_step():
    rng = np.random.default_rng(3)
    P, steps, d = 25, 40, 16
    K, V = rng.standard_normal((P + steps, d)), rng.standard_normal((P + steps, d))
    Q = rng.standard_normal((P + steps, 2, d))
    pol = MixedPrecisionPolicy(16, 3, 0.3, 0, "accumulated", 0.1, False)
    pol.prefill(K[:P], V[:P], Q[:P])
    for t in range(steps):
        n = P + t + 1
        before = int(pol.hi.sum()) + 1  # the new token enters hi
        pol.step(t, K[n - 1], V[n - 1], Q[n - 1])
        assert before - int(pol.hi.sum()) == mikv_demoted_tokens(n - 1, n, 0.3)
        # independent of mikv_demoted_tokens: after a step over n tokens the important set is round(0.3 n)
        assert int(pol.hi.sum()) == round(0.3 * n), (n, int(pol.hi.sum()))


def test_mikv_prices_the_average_demotion_not_one_token():
    """llama3_8b, 8 KV heads, d 128: 205/256 = 0.80078125 token a step, K and V of 8 heads
    (16 rows): 102.5 columns, 4·16·102.5 = 6560 FLOPs per layer (was 16·128·4 = 8192 and no
    bytes). Reads the bf16 token: 16·256·0.80078 = 3280 B; writes INT3 codes (48 B) and an
    fp16 scale + zero (4 B): 16·52·0.80078 = 666.25 B per layer."""
    t = apply_recipe(trace_for(LLAMA3_8B, seq=8192), "mikv", LLAMA3_8B)
    dem = only(t, "mikv.demote_requant")
    assert dem.dims == {"rows": 16, "cols": 102.5} and dem.flops == 6560
    assert sum(x.nbytes for x in dem.inputs) == 3280 and sum(x.nbytes for x in dem.outputs) == 666.25
    assert t.meta["recipe_effects"]["mikv"]["demoted_tokens_per_step"] == 205 / 256


# ---- 2. ZipCache: the authors' probes and normalisation ----------------------------------
def test_zipcache_probe_counts_follow_the_authors_code():
    """ThisisBillhe/ZipCache@b6932b9 modeling_llama.py: the last P − int(P − 0.05·P) queries +
    int(0.05·P) random ones. P 4096: 205 + 204; at least one recent probe on a short prompt."""
    assert zipcache_probe_counts(4096, 0.1) == (205, 204)
    assert zipcache_probe_counts(20, 0.25) == (3, 2)
    assert zipcache_probe_counts(1, 0.1) == (1, 0) and zipcache_probe_counts(50, 0.0) == (1, 0)


def test_zipcache_twin_probes_recent_and_random_rows():
    pol = MixedPrecisionPolicy(4, 2, 0.5, 0, "probe", 0.1)
    rows = pol.probe_rows(4096)
    assert rows.size == 409 and (rows[:205] == np.arange(3891, 4096)).all()
    assert (rows[205:] < 3891).all() and (pol.probe_rows(4096) == rows).all()  # seeded: a run repeats


def test_zipcache_saliency_divides_by_the_queries_that_see_each_token():
    """Zero queries: a row i spreads 1/(i + 1) over tokens 0..i, for each of the g = 2 query
    heads. P 20, probe ratio 0.25: rows 17, 18, 19 (+ 2 random rows before 17, which do not
    see tokens 17..19). Token 19: 2·(1/20) / (20 − 19) = 0.1; token 18: 2·(1/19 + 1/20) / 2;
    token 17: 2·(1/18 + 1/19 + 1/20) / 3."""
    P, d = 20, 8
    K = np.random.default_rng(0).standard_normal((P, d))
    pol = MixedPrecisionPolicy(4, 2, 0.5, 0, "probe", 0.25)
    s = pol._probe_scores(K, np.zeros((P, 2, d)))
    assert s[19] == pytest.approx(0.1)
    assert s[18] == pytest.approx(1 / 19 + 1 / 20)
    assert s[17] == pytest.approx(2 * (1 / 18 + 1 / 19 + 1 / 20) / 3)


def test_zipcache_decode_rescoring_is_one_query_per_head():
    """The authors' decode re-compression scores the chunk with the step's own query (q_len 1),
    no probes: 2·n·d·H / interval = 2·8192·128·32 / 16 = 4,194,304 FLOPs per layer and step
    (was 2·round(0.1·8192)·8192·128·32 / 16 = 3,434,086,400 with 819 probe queries)."""
    t = apply_recipe(trace_for(LLAMA3_8B, seq=8192), "zipcache(requant_interval=16)", LLAMA3_8B)
    assert only(t, "zipcache(requant_interval=16).probe_attention").flops == 4_194_304


# ---- 3. MiniCache on MLA: refused, pricing and twin alike ------------------------------
def test_minicache_refused_on_mla_in_pricing_and_twin():
    """deepseek_v2_lite was priced as K and V of head_dim 128 (pair ratio (1.1·128 + 2)/256 =
    0.558, 98.2 MB of 127.4 MB at 4096 tokens) though it caches one 576-wide latent; MiniCache
    is published on MHA/GQA K/V states only, so both sides refuse, naming why."""
    from cosim.functional.compression.twin import run_twin
    from workloads.compression.recipe import RecipeError
    for phase in ("decode", "prefill"):
        with pytest.raises(RecipeError, match=r"method: got .*deepseek_v2_lite is MLA .*MiniCache \(arXiv 2405.14366\)"):
            apply_recipe(trace_for(DSV2_LITE, phase, seq=4096), "minicache", DSV2_LITE)
    with pytest.raises(RecipeError, match="no similarity of adjacent layers' latents"):
        run_twin("minicache", model="deepseek_v2_lite", prompt=64, steps=2)
    assert run_twin("minicache", model="llama3_8b", prompt=64, steps=2)["minicache"]["status"] == "ok"


# ---- 4. RazorAttention: prefill leaves stored what decode reads -------------------------
@pytest.mark.parametrize("spec, stored", [
    # bf16: (1 retrieval head · 8192 + 7 local heads · 517) · 256 B · 2 (K, V) · 32 layers
    ("razor_attention", 11_811 * 512 * 32),
    # tests/test_recipe_pricing_audit.py: the KIVI pieces of each head (was 37,511,736 = the kept
    # fraction 0.1802 x the unsplit bytes per token: KIVI's fp16 windows and stats are not per token;
    # then 43,081,216 before the local heads' 517 keys were laid out as 16 whole groups + 5 fp16)
    ("kivi2+razor_attention", 43_332_096),
    ("kvquant3+razor_attention", 41_386_240)])  # was 40,762,932.9
def test_razor_prefill_footprint_is_the_kept_heads_stored_bytes(spec, stored):
    pre = apply_recipe(trace_for(LLAMA3_8B, "prefill", seq=8192), spec, LLAMA3_8B)
    dec = apply_recipe(trace_for(LLAMA3_8B, seq=8192), spec, LLAMA3_8B)
    read = sum(sum(x.nbytes for x in o.inputs if x.role == "kv") * o.repeat for o in dec.ops if o.kind == "attention")
    assert pre.meta["footprint"]["kv_cache"] == stored == read == dec.meta["footprint"]["kv_cache"]


# ---- 5. RocketKV: explicit run length, one note key, read elements from the real path ----
def _decode_read_elements_per_kv_head(t):
    """Cache elements the decode ops read per KV head and layer: the summaries the approximate
    scores read and the gathered tokens the attention reads (every cached tensor)."""
    apx = [o for o in t.ops if o.name.endswith(".approx_scores")][0]
    attn = only(t, "attention")
    h = int(attn.dims["kv_heads"])
    kt = sum(x.numel for x in apx.inputs if x.role == "kv") / h
    return kt + sum(x.numel for x in attn.inputs if x.role == "kv") / h


@pytest.mark.parametrize("model, S, spec, d, n_kv", [(LLAMA3_8B, 32768, "rocketkv256", 128, 2),
                                                     (DSV2_LITE, 8192, "rocketkv", 576, 1)])
def test_rocketkv_note_is_what_the_decode_ops_read(model, S, spec, d, n_kv):
    """llama3_8b 32K, budget 256: 61·540 summaries + 2·128·128 gathered = 65,708 elements
    (2·32768·128 / 65,708 = 127.7x). deepseek_v2_lite 8K, budget 1024, on its 576-wide latent:
    317·1859 + 1·512·576 = 884,215 (the note said 2·512·576 for K and V: 1,179,127, 8.0x;
    the latent is one tensor, 8192·576 / 884,215 = 5.34x)."""
    from workloads.compression.eviction import rocketkv_budget
    t = apply_recipe(trace_for(model, seq=S), spec, model)
    e = t.meta["recipe_effects"][spec]
    q = rocketkv_budget(S, e["token_budget"], d, 256)
    assert e["read_elements_per_kv_head"] == q.read_elements(d, n_kv) == _decode_read_elements_per_kv_head(t)
    assert e["traffic_reduction"] == pytest.approx(n_kv * S * d / q.read_elements(d, n_kv))
    assert "notes" not in e  # the budget's notes are said once, under `note`


def test_rocketkv_mla_prefill_summaries_are_of_the_cached_latent():
    """deepseek_v2_lite prefill at 8192: the split is the decode's (r 317 on the 576-wide latent;
    it was r 106 from the 192-wide per-head prefill keys), and the summary build covers the 3461
    kept latents: 2·3461·576 = 3,987,072 FLOPs into (1731 chunks, 1, 2·576) (was 16 heads of 192:
    21,264,384 FLOPs)."""
    pre = apply_recipe(trace_for(DSV2_LITE, "prefill", seq=8192), "rocketkv", DSV2_LITE)
    dec = apply_recipe(trace_for(DSV2_LITE, seq=8192), "rocketkv", DSV2_LITE)
    ep, ed = pre.meta["recipe_effects"]["rocketkv"], dec.meta["recipe_effects"]["rocketkv"]
    assert ep["r"] == ed["r"] == 317 and ep["chunk"] == ed["chunk"] == 2
    b = only(pre, "rocketkv.summary_build")
    assert b.flops == 3_987_072 and b.outputs[0].shape == (1, 1731, 1, 1152)
    assert "summaries are of the whole latent" in ep["note"]


def test_every_cache_policy_is_told_the_run_length_explicitly():
    from cosim.functional.compression.attention import CachePolicy
    from cosim.functional.compression.eviction import RocketKVPolicy
    CachePolicy().begin_run(100)  # the base accepts it and ignores it
    pol = RocketKVPolicy(32, 8, 7, 32)
    assert pol.run_length is None
    pol.begin_run(128)
    assert pol.run_length == 128


# ---- 6. GEAR: notes are the priced values --------------------------------------------------
def test_gear_notes_are_the_priced_layout():
    """llama3_8b at 8192, 256 generated: 4 decode chunks, 7936 prompt tokens, 33,792 factor
    elements per head (gear_lowrank, the function lowrank() lays out). Bits per cached element
    of the priced cache: 2 (codes) + 0.5 (fp16 scale + zero per 64) + 0.02·48 (outliers) +
    33,792·16 / (8192·128) = 0.515625 (low rank) = 3.975625 (the note said 2 + 0.5 + 0.96 =
    3.46, without the low-rank factors)."""
    from workloads.compression.kv_quant import gear_lowrank
    t = apply_recipe(trace_for(LLAMA3_8B, seq=8192), "gear2", LLAMA3_8B)
    e = t.meta["recipe_effects"]["gear2"]
    lr = gear_lowrank(8192, 128, 64, 4, 2, 256)
    assert (e["decode_chunks"], e["prompt_tokens_at_prefill_rank"], e["lowrank_elements_per_head"]) == (4, 7936, 33_792)
    assert (lr.decode_chunks, lr.prompt_tokens, lr.elements) == (4, 7936, 33_792)
    lowrank = [x for o in t.ops if o.name == "attention" for x in o.inputs if x.name == "k_cache.lowrank"]
    assert lowrank[0].shape == (1, 8, 33_792)
    assert e["bits_per_element"] == pytest.approx(3.975625, abs=1e-5)
    assert e["bits_per_element"] == t.meta["footprint"]["kv_cache"] * 8 / (8192 * 2 * 8 * 128 * 32)
    assert "approx_bits_per_element" not in e
