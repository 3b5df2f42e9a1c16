"""Older recipe code and the plain `kv:` format's per-KV-head fp32 scales (workloads.kv_scales; session 19
review F5-F9): low-rank latents, kv_write widths, eviction's footprint and the unfused attention's round trip keep
the scales as stored (shape (kv_heads,), 4 B each), not as cache-shaped tensors. Bytes pinned by hand."""

import pytest

from workloads.builder import build_trace


def _op(trace, name):
    ops = [o for o in trace.ops if o.name == name]
    assert len(ops) == 1
    return ops[0]


def _scales(tensors):
    return [(t.name, t.shape) for t in tensors if t.name.endswith(".scale")]


# Llama-3-8B: 32 layers, 8 KV heads, head_dim 128; one sequence's scales: 32 x 2 x 8 x 4 B
SEQ_SCALES = 32 * 2 * 8 * 4  # 2048


def test_palu_fp8_latents_keep_per_head_scales():
    """F5: Palu's decode attention reshaped every kv input to (B, S, groups, rank), its scales too: k_cache.scale
    became (2, 1024, 2, 128) fp32 and the attention read 10,518,528 B a layer instead of 2,129,984."""
    t = build_trace("llama3_8b", "decode", 2, 1024, kv="fp8_e4m3", recipe="palu")
    a = _op(t, "attention")
    assert _scales(a.inputs) == [("k_cache.scale", (8,)), ("v_cache.scale", (8,))]
    # q bf16 (2 x 32 x 128 x 2) + K latent fp8 (2 x 1024 x 2 x 128) + V latent (2 x 1024 x 2 x 384)
    # + out bf16 (2 x 32 x 128 x 2) + 2 x 8 fp32 scales
    assert a.bytes == 16_384 + 524_288 + 1_572_864 + 16_384 + 64 == 2_129_984
    # footprint: 2 x 1024 tokens x 32 layers x (256 + 768) x 1 B + each sequence's 2,048 B of scales
    assert t.meta["footprint"]["kv_cache"] == 2 * 1024 * 32 * 1024 + 2 * SEQ_SCALES == 67_112_960
    bf = build_trace("llama3_8b", "decode", 2, 1024, kv="bf16", recipe="palu")
    assert not _scales(_op(bf, "attention").inputs)
    assert bf.meta["footprint"]["kv_cache"] == 2 * 1024 * 32 * 1024 * 2


@pytest.mark.parametrize("recipe,width", [("palu", 1024), ("eigen_attention", 1232), ("matryoshka_kv", 816)])
def test_narrower_kv_write_keeps_its_per_head_scales(recipe, width):
    """F6: set_kv_write_width resized the prompt write's (8,) scales to the write width ((1024,), (1232,), (816,))."""
    w = _op(build_trace("llama3_8b", "prefill", 1, 1024, kv="fp8_e4m3", recipe=recipe), "kv_write")
    assert _scales(w.outputs) == [("k_cache.scale", (8,)), ("v_cache.scale", (8,))]
    assert w.bytes == 1024 * width * 2 + 1024 * width * 1 + 64  # bf16 in, fp8 out, 16 fp32 scales


def test_mla_conversion_stores_one_latent_scale():
    """F6: the MLA conversion's latent write carried K's and V's scales resized to (576,) each; one latent a layer
    has one scale (the builder's native MLA stores (1,)), and its decode attention reads it."""
    t = build_trace("llama3_8b", "prefill", 1, 1024, kv="fp8_e4m3", recipe="mla")
    w = _op(t, "kv_write")
    assert _scales(w.outputs) == [("k_cache.scale", (1,))]
    assert w.bytes == 1024 * 576 * 2 + 1024 * 576 + 4
    assert t.meta["footprint"]["kv_cache"] == 1024 * 32 * 576 + 32 * 4
    d = build_trace("llama3_8b", "decode", 2, 1024, kv="fp8_e4m3", recipe="mla")
    assert _scales(_op(d, "attention").inputs) == [("k_cache.scale", (1,))]
    assert d.meta["footprint"]["kv_cache"] == 2 * (1024 * 32 * 576 + 32 * 4)


@pytest.mark.parametrize("recipe", ["h2o", "snapkv", "streaming_llm", "fastkv", "rocketkv", "razor_attention"])
@pytest.mark.parametrize("phase", ["decode", "prefill"])
def test_eviction_keeps_each_sequences_scales_whole(recipe, phase):
    """F7: eviction scaled kv_state's bytes (the scales included) by the kept share of the batch's pieces: h2o fp8
    at batch 2, 8,192 tokens kept 2,457.5 of the 4,096 B of scales. The fp8 cache is half the bf16 one plus them."""
    kw = dict(model="llama3_8b", phase=phase, batch=2, seq=8192, recipe=recipe)
    fp8, bf = build_trace(kv="fp8_e4m3", **kw), build_trace(kv="bf16", **kw)
    assert fp8.meta["footprint"]["kv_cache"] == pytest.approx(bf.meta["footprint"]["kv_cache"] / 2 + 2 * SEQ_SCALES,
                                                              abs=1e-6)


def test_h2o_fp8_footprint_by_hand():
    t = build_trace("llama3_8b", "decode", 2, 8192, kv="fp8_e4m3", recipe="h2o")
    kept = t.meta["kv_state"]["capacity"]
    assert kept == 1638  # round(0.2 x 8192)
    # 2 sequences x 1,638 tokens x 32 layers x 2 x 8 heads x 128 x 1 B + 2 x 2,048 B of scales
    assert t.meta["footprint"]["kv_cache"] == 2 * 1638 * 32 * 2 * 8 * 128 + 2 * SEQ_SCALES == 214_700_032
    # the fp8_kv recipe's own scales, evicted after: as the other order (h2o, then fp8_kv) has it
    for r in ("fp8_kv+h2o", "h2o+fp8_kv"):
        assert build_trace("llama3_8b", "decode", 2, 8192, recipe=r).meta["footprint"]["kv_cache"] == 214_700_032


@pytest.mark.parametrize("recipe", ["h2o", "snapkv", "streaming_llm", "rocketkv", "fastkv", "razor_attention", "palu"])
def test_unfused_attention_keeps_scales_through_a_recipe(recipe):
    """F8: fuse_unfused_attention rebuilt the attention from (q, K, V) alone, and the scales left attn_scores and
    attn_pv for good. Each layer's score GEMMs read K's 8 scales, its PV GEMMs V's (razor: split over its two
    attentions, 1 + 7 heads)."""
    t = build_trace("llama3_8b", "decode", 2, 1024, kv="fp8_e4m3", recipe=recipe, attention="unfused")
    for op_name, cache in (("attn_scores", "k_cache.scale"), ("attn_pv", "v_cache.scale")):
        ops = [o for o in t.ops if o.name == op_name]
        assert ops and all(_scales(o.inputs) == [(cache, o.inputs[-1].shape)] for o in ops)
        assert sum(t_.nbytes * o.repeat for o in ops for t_ in o.inputs if t_.name.endswith(".scale")) == 32 * 8 * 4


def test_unfused_snapkv_score_gemm_by_hand():
    # snapkv keeps all of a 1,024-token prompt: q bf16 (2 x 32 x 128 x 2) + K fp8 (2 x 1024 x 8 x 128)
    # + 8 fp32 scales + scores bf16 (64 x 1024 x 2)
    sc = _op(build_trace("llama3_8b", "decode", 2, 1024, kv="fp8_e4m3", recipe="snapkv", attention="unfused"),
             "attn_scores")
    assert sc.bytes == 16_384 + 2_097_152 + 32 + 131_072 == 2_244_640


def test_prefill_eviction_transient_frees_tokens_not_scales():
    """The one-layer prefill transient (prefill_transient_kv) counted the evicted tokens' share of the scales:
    snapkv fp8 b2 s8192 29,360,240 B where the tokens are 2 x (8,192 - 1,024) x 65,536 B / 32 layers."""
    kw = dict(model="llama3_8b", phase="prefill", batch=2, seq=8192)
    act = {kv: build_trace(kv=kv, recipe="snapkv", **kw).meta["footprint"]["activations"]
           - build_trace(kv=kv, **kw).meta["footprint"]["activations"] for kv in ("fp8_e4m3", "bf16")}
    assert act["fp8_e4m3"] == 2 * (8192 - 1024) * 32 * 2 * 8 * 128 / 32 == 29_360_128
    assert act["bf16"] == 2 * act["fp8_e4m3"]


def test_fp8_kv_decode_write_lists_no_scales_like_the_plain_format():
    """The per-head scales are fixed by the prompt: the fp8_kv recipe's decode kv_write re-listed them (64 B a layer a
    step for Llama-3-8B: 2 x 8 heads x 4 B) where the plain `kv: fp8_e4m3` path writes none. Decode write, batch 1:
    reads the new token's bf16 K and V (2 x 8 x 128 x 2 B = 4,096) and writes them in fp8 (2,048): 6,144 B either way;
    the prefill write keeps its (8,) scales (1,024 tokens: 4,194,304 read + 2,097,152 written + 64 = 6,291,520)."""
    from workloads.builder import build_trace
    for phase, expect, scales in (("decode", 6_144, []), ("prefill", 6_291_520, [(8,), (8,)])):
        for kw in ({"recipe": "fp8_kv"}, {"kv": "fp8_e4m3"}):
            w = next(o for o in build_trace("llama3_8b", phase=phase, batch=1, seq=1024, **kw).ops
                     if o.name == "kv_write")
            assert w.bytes == expect, (phase, kw)
            assert [t.shape for t in w.outputs if t.name.endswith(".scale")] == scales, (phase, kw)
