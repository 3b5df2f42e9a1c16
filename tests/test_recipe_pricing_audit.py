"""The compression-recipe pricing audit (session 14): each defect pinned on a number a
reader can check by hand."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compression_helpers import DSV2_LITE, LLAMA3_8B, trace_for
from workloads.compression import apply_recipe, load_recipe
from workloads.compression.eviction import h2o_kept_tokens, rocketkv_budget
from workloads.compression.recipe import RecipeError
from workloads.models import load_model
from workloads.compression.lowrank import palu_group_size

FAST = settings(max_examples=200, deadline=None, derandomize=True)


def kv_read(trace):
    """KV bytes the decode attention op(s) read per step (all layers, whole batch)."""
    return sum(sum(t.nbytes for t in op.inputs if t.role == "kv") * op.repeat
               for op in trace.ops if op.kind == "attention")


# ---- 1. quantize then evict: the fp16 window survives eviction whole ----------------
@pytest.mark.parametrize("phase", ["decode", "prefill"])
def test_kivi_then_h2o_footprint_keeps_the_fp16_value_window(phase):
    """Llama-3-8B, 8192 tokens, H2O keeps int(0.1·8192)·2 = 1638. Per KV head and layer:
    K = 1638·128 codes at 2 bit + fp16 scale/zero per 32 tokens per channel (3 bit/elem)
    = 78,624 B; V = 1510 quantized tokens · (32 B codes + 16 B scale/zero) + 128 fp16
    tokens · 256 B = 105,248 B; total 183,872 B · 8 heads · 32 layers = 47,071,232 B. The
    trace keeps whole K groups (eviction._whole_token_groups): 1632 = 51·32 keys as codes under
    51 groups' scales, the other 6 in the fp16 residual: K = 1632·32 + 51·512 + 6·256 = 79,872 B
    (was 1638 codes under 51 groups' scales and no residual, 78,528 B)."""
    t = apply_recipe(trace_for(LLAMA3_8B, phase=phase, seq=8192), "kivi2+h2o", LLAMA3_8B)
    assert t.meta["kv_state"]["capacity"] == 1638
    kv = t.meta["footprint"]["kv_cache"]
    assert kv == pytest.approx(183_872 * 8 * 32, rel=1e-2)
    assert kv == pytest.approx((1632 * 32 + 51 * 512 + 6 * 256 + 105_248) * 8 * 32)
    if phase == "decode":
        assert kv >= kv_read(t)  # what a step reads is stored


def test_evict_then_quantize_prices_the_kept_cache_directly():
    """h2o+kivi2: KIVI lays out 1638 tokens itself: 1638 mod 128 = 102 keys still fp16."""
    t = apply_recipe(trace_for(LLAMA3_8B, seq=8192), "h2o+kivi2", LLAMA3_8B)
    k = 1536 * 128 * 2 / 8 + 1536 / 32 * 128 * 4 + 102 * 256
    v = 1510 * 48 + 128 * 256
    assert t.meta["footprint"]["kv_cache"] == pytest.approx((k + v) * 8 * 32)
    assert t.meta["footprint"]["kv_cache"] >= kv_read(t)


@pytest.mark.parametrize("spec", ["kivi2+h2o", "kvquant3+snapkv", "gear2+streaming_llm", "kivi2+snapkv",
                                  "fp8_kv+h2o", "mikv+h2o", "zipcache+snapkv", "h2o", "kivi2+razor_attention",
                                  "kvquant3+razor_attention", "gear2+razor_attention", "mikv+razor_attention",
                                  "kivi2+streaming_llm(recent_tokens=60)", "kivi2+rocketkv", "razor_attention+kivi2",
                                  "kivi2+fastkv", "kvquant3+fastkv"])
def test_footprint_holds_what_a_step_reads(spec):
    t = apply_recipe(trace_for(LLAMA3_8B, seq=8192), spec, LLAMA3_8B)
    assert t.meta["footprint"]["kv_cache"] >= kv_read(t) * (1 - 1e-9)


def test_kivi_then_razor_prices_each_heads_cache():
    """8192 tokens, 1 retrieval head of 8 keeps all: K 8192·48 = 393,216 B, V 8064·48 + 128·256
    = 419,840 B. 7 local heads keep 4 + 512 + 1 = 517: K 512·32 codes + 16 stat groups·512
    + 5 fp16 residual keys·256 = 25,856 B (was 517 codes under 16 groups' scales, 24,736 B), V
    389·48 + 128·256 = 51,440 B. (813,056 + 7·77,296) · 32 layers = 43,332,096 B; the step reads
    the same (KVQuant's outliers were read twice, once per head split)."""
    t = apply_recipe(trace_for(LLAMA3_8B, seq=8192), "kivi2+razor_attention", LLAMA3_8B)
    assert t.meta["footprint"]["kv_cache"] == pytest.approx(43_332_096) and kv_read(t) == 43_332_096
    base = apply_recipe(trace_for(LLAMA3_8B, seq=8192), "kvquant3", LLAMA3_8B)
    t = apply_recipe(base, "razor_attention", LLAMA3_8B)
    assert kv_read(t) < kv_read(base) / 2


# ---- 2. RocketKV: a prompt inside the budget is left whole; budgets never negative -----
def test_rocketkv_prompt_within_budget_changes_nothing():
    base = trace_for(LLAMA3_8B, seq=200)
    t = apply_recipe(base, "rocketkv", LLAMA3_8B)  # token budget 1024 >= 200
    assert t.meta["footprint"]["kv_cache"] == base.meta["footprint"]["kv_cache"] == 200 * 131072
    assert [o.name for o in t.ops] == [o.name for o in base.ops] and t.total_bytes == base.total_bytes
    assert "fits the token budget" in t.meta["recipe_effects"]["rocketkv"]["note"]


def test_rocketkv_budget_split_is_never_negative():
    """P 256, B 128: cr 2, α 0.26, capacity int(256/2^0.26) = 213; new_tokens 256 > 213 // 2
    is clamped to 106, so the prompt keeps 107 (it was 213 − 256 = −43)."""
    q = rocketkv_budget(256, 128, 128, 256)
    assert (q.applies, q.capacity, q.new_tokens, q.prompt_budget, q.k, q.chunk) == (True, 213, 106, 107, 64, 1)
    assert any("new_tokens 256" in n for n in q.notes)
    assert q.as_dict()["prompt_budget"] == 107
    assert not rocketkv_budget(128, 128, 128, 256).applies


@FAST
@given(P=st.integers(1, 1 << 18), B=st.integers(1, 8192), new=st.integers(0, 1 << 16),
       d=st.sampled_from([64, 128, 576]))
def test_rocketkv_budget_bounds(P, B, new, d):
    q = rocketkv_budget(P, B, d, new)
    assert 0 < q.prompt_budget <= q.capacity <= P
    assert 0 <= q.new_tokens <= new and q.prompt_budget + (q.new_tokens if q.applies else 0) <= max(q.capacity, P)
    assert 1 <= q.r <= d and 1 <= q.chunk and 1 <= q.k <= q.capacity


def test_rocketkv_chunk_one_stores_no_summaries():
    """Budget 128 at 256 tokens: chunk 1, so per chunk min = max = the key: the cache is 213
    kept tokens · 131,072 B (K and V, bf16, 32 layers) = 27.9 MB, below the 33.6 MB baseline
    (the per-chunk min/max copy had made it 55.8 MB)."""
    t = apply_recipe(trace_for(LLAMA3_8B, seq=256), "rocketkv(token_budget=128)", LLAMA3_8B)
    assert t.meta["footprint"]["kv_cache"] == 213 * 131072
    assert not [o for o in t.ops if "summary" in o.name]
    tp = apply_recipe(trace_for(LLAMA3_8B, "prefill", seq=256), "rocketkv(token_budget=128)", LLAMA3_8B)
    assert tp.meta["kv_state"]["capacity"] == 107
    assert [o for o in tp.ops if o.name.endswith(".gather")][0].dims["rows"] == 107


# ---- 3. GEAR: the decode chunks' rank moves the bytes --------------------------------
def test_gear_rank_prices_decode_chunks():
    """8192 cached tokens, 256 of them generated = 4 chunks of 64 at `rank`, 7936 prompt
    tokens at prefill_rank 4. Low-rank fp16 elements per KV head and tensor:
    (7936 + 128)·4 + 4·(64 + 128)·r. rank 8 vs 2: 4·192·6 = 4608 elements · 2 B · 8 heads
    · 2 (K, V) · 32 layers = 4,718,592 B more; rank 0 vs 2: 1,572,864 B less."""
    ts = {r: apply_recipe(trace_for(LLAMA3_8B, seq=8192), f"gear2(rank={r})", LLAMA3_8B) for r in (0, 2, 8)}
    lowrank = {r: [x for o in t.ops if o.name == "attention" for x in o.inputs if x.name == "v_cache.lowrank"][0]
               for r, t in ts.items()}  # the priced factors of one layer: (batch, KV heads, elements per head)
    assert lowrank[2].shape == (1, 8, 8064 * 4 + 4 * 192 * 2) == (1, 8, 33_792)
    assert lowrank[8].shape[2] - lowrank[0].shape[2] == 4 * 192 * 8
    kv = {r: t.meta["footprint"]["kv_cache"] for r, t in ts.items()}
    assert kv[8] - kv[2] == 4_718_592 and kv[2] - kv[0] == 1_572_864
    prompt_only = apply_recipe(trace_for(LLAMA3_8B, seq=8192), "gear2(new_tokens=0)", LLAMA3_8B)
    assert prompt_only.meta["footprint"]["kv_cache"] - kv[2] == ((8192 + 128) * 4 - 33_792) * 2 * 512
    # a prefill trace generates nothing: rank does not enter
    pre = {r: apply_recipe(trace_for(LLAMA3_8B, "prefill", seq=8192), f"gear2(rank={r})", LLAMA3_8B)
           for r in (0, 8)}
    assert pre[0].meta["footprint"]["kv_cache"] == pre[8].meta["footprint"]["kv_cache"]


# ---- 4. H2O keeping no token is refused, naming the parameters ----------------------
def test_h2o_zero_ratios_refused_at_load_time():
    with pytest.raises(RecipeError, match=r"parameters\.heavy_ratio / parameters\.recent_ratio: got '0\.0 / 0\.0'"):
        load_recipe("h2o(heavy_ratio=0,recent_ratio=0)")
    with pytest.raises(RecipeError, match=r"parameters\.recent_tokens: got 0"):
        load_recipe("streaming_llm(sink_tokens=0,recent_tokens=0)")
    assert load_recipe("h2o(heavy_ratio=0,recent_ratio=0,budget=10)").params["budget"] == 10


def test_h2o_ratios_keeping_nothing_of_the_context_refused():
    """0.001 · 200 = 0.2 -> int 0 for both: no token kept."""
    with pytest.raises(RecipeError, match=r"int\(0\.001·200\) \+ int\(0\.001·200\) = 0 of the 200"):
        apply_recipe(trace_for(LLAMA3_8B, seq=200), "h2o(heavy_ratio=0.001,recent_ratio=0.001)", LLAMA3_8B)
    with pytest.raises(RecipeError, match="heavy_ratio or recent_ratio >= 1/200"):
        h2o_kept_tokens(0.001, 0.001, 0, 200)
    assert h2o_kept_tokens(0.001, 0.001, 0, 2000) == 4 and h2o_kept_tokens(0, 0, 7, 200) == 7


# ---- 5. MLA: K/V-specific or per-head methods refused, token-level ones noted --------
@pytest.mark.parametrize("spec,why", [
    ("kivi2", "KIVI quantizes keys per channel"), ("gear2", "GEAR's backbone"),
    ("kvquant3", "separate 64-dim key"), ("ksort_bfp12_keys", "key_format bfp12_b32 differs from value_format bf16"),
    ("razor_attention", "no per-head part")])
def test_mla_refuses_methods_that_split_k_from_v(spec, why):
    with pytest.raises(RecipeError, match=r"method: got .*deepseek_v2_lite is MLA \(one latent of 512 \+ 64 RoPE"):
        apply_recipe(trace_for(DSV2_LITE, seq=4096), spec, DSV2_LITE)
    with pytest.raises(RecipeError, match=why):
        apply_recipe(trace_for(DSV2_LITE, seq=4096), spec, DSV2_LITE)


def test_mla_token_level_methods_price_the_latent():
    """DeepSeek-V2-Lite: 27 layers · 576 latent elements per token. FP8: 1 B each
    = 15,552 B/token (bf16 31,104); H2O keeps 2·int(0.1·4096) = 818 latents and its
    prefill gather copies 818 rows of 576 elements (not K and V of 16 heads)."""
    t = apply_recipe(trace_for(DSV2_LITE, seq=4096), "fp8_kv(scale=none)", DSV2_LITE)
    assert t.meta["footprint"]["kv_cache"] == 4096 * 27 * 576
    assert "MLA" in t.meta["recipe_effects"]["fp8_kv(scale=none)"]["note"]
    tp = apply_recipe(trace_for(DSV2_LITE, "prefill", seq=4096), "h2o", DSV2_LITE)
    g = [o for o in tp.ops if o.name == "h2o.gather"][0]
    assert g.dims == {"rows": 818, "cols": 576, "per_prompt": True} and g.bytes == 2 * 818 * 576 * 2
    assert tp.meta["footprint"]["kv_cache"] == 818 * 27 * 576 * 2
    s = apply_recipe(trace_for(DSV2_LITE, seq=4096), "streaming_llm", DSV2_LITE)
    rope = [o for o in s.ops if o.name == "streaming_llm.rope_cached_keys"][0]
    assert rope.dims["cols"] == 64  # only the latent's RoPE part is re-rotated


# ---- 7. Palu: groups of the largest divisor of the KV heads, as the accuracy run does --
SMOLLM2_SHAPE = ("name: smollm2_shape\nhidden: 576\nlayers: 30\nheads: 9\nkv_heads: 3\nintermediate: 1536\n"
                 "vocab: 49152\ntie_embeddings: true\nmax_context: 8192\nsource: SmolLM2-135M config.json shape\n")


def test_palu_on_three_kv_heads_uses_groups_of_three(tmp_path):
    """SmolLM2-135M: 3 KV heads of 64, head_group_size 4 -> one group of 3 (noted). Ranks:
    K round(0.25·192) = 48, V round(0.75·192) = 144; cache 30 layers · 192 · 2 B = 11,520
    B/token against 30 · 2 · 192 · 2 = 23,040 bf16."""
    f = tmp_path / "smollm2_shape.yaml"
    f.write_text(SMOLLM2_SHAPE)
    m = load_model(str(f))
    assert palu_group_size(3, 4) == (3, "head_group_size 4 does not divide the 3 KV heads; groups of 3 used")
    assert palu_group_size(8, 4) == (4, "")
    base = trace_for(m, seq=1024)
    t = apply_recipe(base, "palu", m)
    e = t.meta["recipe_effects"]["palu"]
    assert (e["rank_k"], e["rank_v"], e["groups"]) == (48, 144, 1) and "groups of 3" in e["note"]
    assert base.meta["footprint"]["kv_cache"] == 1024 * 23_040
    assert t.meta["footprint"]["kv_cache"] == 1024 * 11_520


def test_mla_prefill_gather_reads_the_stored_kv_format():
    """MLA's prefill attention reads its latent as activations; the gather of the kept tokens copies what
    kv_write stored (fp8: 512 tokens x 576 latent x 1 B = 294,912 B per layer, not bf16's 589,824)."""
    from workloads.builder import build_trace
    for recipe in ("h2o(budget=512)", "snapkv(capacity=512)"):
        tr = build_trace("deepseek_v2_lite", "prefill", 1, 4096, kv="fp8_e4m3", recipe=recipe)
        g = next(o for o in tr.ops if o.name.endswith(".gather"))
        assert [t.fmt for t in g.inputs] == ["fp8_e4m3"], recipe
        assert sum(t.nbytes for t in g.inputs) == 512 * 576 * 1, recipe
