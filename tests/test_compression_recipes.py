"""Each recipe's bytes/FLOPs effect pinned to the formula in compression-methods.md on a
case a reader can check by hand (numbers in comments are worked out there)."""

import math

import pytest

from compression_helpers import DSV2_LITE, LLAMA2_7B, LLAMA3_8B, MIXTRAL, trace_for
from workloads.compression import apply_recipe, list_recipes, load_recipe
from workloads.compression.eviction import rocketkv_budget
from workloads.compression.kv_quant import kivi_key_bytes, kivi_value_bytes
from workloads.compression.weights import spqr_bits_per_weight


def kv_read(trace, name="attention"):
    """KV bytes the attention op(s) read per step (all layers, whole batch)."""
    return sum(sum(t.nbytes for t in op.inputs if t.role == "kv") * op.repeat
               for op in trace.ops if op.name == name)


def only(trace, name):
    ops = [o for o in trace.ops if o.name == name]
    assert len(ops) == 1, f"{name}: {len(ops)} ops"
    return ops[0]


def weight_bytes(op):
    return sum(t.nbytes for t in op.inputs if t.role == "weight")


# ---- loading and composition ---------------------------------------------------------
def test_every_bundled_recipe_loads_with_citation():
    names = list_recipes()
    assert len(names) >= 20
    for n in names:
        r = load_recipe(n)
        assert r.name == n and r.citation and r.params is not None


def test_composition_applies_left_to_right_and_is_recorded():
    r = load_recipe("mxfp4_weights+kivi2+h2o")
    assert [p.name for p in r.parts] == ["mxfp4_weights", "kivi2", "h2o"]
    t = trace_for(LLAMA3_8B, "decode", seq=32768)
    t2 = apply_recipe(t, "mxfp4_weights+kivi2+h2o", LLAMA3_8B)
    assert t2.recipe == "mxfp4_weights+kivi2+h2o"
    assert list(t2.meta["recipe_effects"]) == ["mxfp4_weights", "kivi2", "h2o"]
    eff = t2.meta["recipe_effects"]["kivi2"]
    assert eff["bytes_after"] < eff["bytes_before"]
    # KIVI's resident bytes per token, then H2O keeps 20 % of the tokens
    assert t2.meta["kv_state"]["capacity"] == 2 * int(0.1 * 32768)
    per_tok = t2.meta["kv_state"]["bytes_per_token"]
    assert t2.meta["footprint"]["kv_cache"] == pytest.approx(6552 * per_tok)


def test_build_trace_recipe_argument_uses_the_registry():
    from workloads.builder import build_trace
    t = build_trace("llama3_8b", phase="decode", batch=1, seq=32768, recipe="kivi2", allow_beyond_max_context=True)
    assert t.recipe == "kivi2" and "kivi2" in t.meta["recipe_effects"]


def test_no_recipe_is_identity():
    t = trace_for(LLAMA3_8B)
    assert apply_recipe(t, None, LLAMA3_8B) is t and apply_recipe(t, "", LLAMA3_8B) is t


# ---- weights ---------------------------------------------------------------------------
def _linear_params(m):
    d, h = m.head_dim, m.hidden
    return m.layers * (2 * h * m.heads * d + 2 * h * m.kv_heads * d + 3 * h * m.intermediate)


@pytest.mark.parametrize("recipe,bits", [("mxfp4_weights", 4.25), ("nvfp4_weights", 4.5), ("mx6_weights", 6.0),
                                         ("int4_g128_weights", 4 + (16 + 4) / 128)])
def test_weight_format_bytes_and_footprint(recipe, bits):
    t = trace_for(LLAMA3_8B)
    t2 = apply_recipe(t, recipe, LLAMA3_8B)
    # q_proj: 4096 x 4096 weights at `bits` (scales/zero points included)
    assert weight_bytes(only(t2, "q_proj")) == pytest.approx(4096 * 4096 * bits / 8)
    saved = _linear_params(LLAMA3_8B) * (16 - bits) / 8  # lm_head and embeddings untouched
    assert t.meta["footprint"]["weights"] - t2.meta["footprint"]["weights"] == pytest.approx(saved)
    # weight-only: the GEMM still runs in bf16 with a fused dequantize (2 FLOPs per weight)
    deq = only(t2, "q_proj.weight_dequant")
    assert deq.flops == 2 * 4096 * 4096 and deq.bytes == 0 and deq.dims["fused"]
    assert only(t2, "lm_head").inputs == only(t, "lm_head").inputs


def test_native_mx_compute_changes_compute_format_and_adds_no_dequant():
    t2 = apply_recipe(trace_for(LLAMA3_8B), "mxfp4_native", LLAMA3_8B)
    assert only(t2, "q_proj").compute_fmt == "mxfp4"
    assert not any(o.name.endswith("weight_dequant") for o in t2.ops)


def test_spqr_bits_per_weight_matches_doc():
    p = load_recipe("spqr3").params
    # SpQR paper Eq. 4: 3 + (3+3)/16 + 64/(16·16) + 1 %·(16 value + 16 index) = 3.945 bits,
    # plus the CSR row pointers the paper's count omits (one int32 per row of K = 4096)
    bpw = spqr_bits_per_weight(p, 4096)
    assert bpw - 32 / 4096 == pytest.approx(3.945, abs=1e-12)
    assert bpw == pytest.approx(3 + 0.375 + 0.25 + 0.32 + 32 / 4096)
    t2 = apply_recipe(trace_for(LLAMA3_8B), "spqr3", LLAMA3_8B)
    stored = weight_bytes(only(t2, "q_proj")) + weight_bytes(only(t2, "q_proj.outliers"))
    assert stored == pytest.approx(4096 * 4096 * bpw / 8, rel=1e-3)
    # outlier SpMV: 2 FLOPs per outlier per token (decode, batch 1)
    assert only(t2, "q_proj.outliers").flops == 2 * round(0.01 * 4096 * 4096)


def test_ocs_grows_k_by_the_expand_ratio():
    t = trace_for(LLAMA3_8B, batch=4)
    t2 = apply_recipe(t, "ocs", LLAMA3_8B)
    q0, q1 = only(t, "q_proj"), only(t2, "q_proj")
    k2 = 4096 + math.ceil(0.05 * 4096)  # 4301
    assert q1.dims["k"] == k2 and q1.flops == q0.flops * k2 / 4096
    assert only(t2, "q_proj.ocs_split").dims == {"rows": 4, "cols": k2 - 4096}


# ---- KV quantization ---------------------------------------------------------------------
def test_kivi2_llama3_8b_32k_bytes_per_step():
    # doc §1.1, per KV head with S=32768, d=128, b=2, G=32, R=128 (rk = S mod R = 0):
    #   K = 32768·128·2/8 + (32768/32)·128·4            = 1,572,864
    #   V = 32640·128·2/8 + 32640·(128/32)·4 + 128·128·2 = 1,599,488
    assert kivi_key_bytes(32768, 128, 2, 32, 128) == 1_572_864
    assert kivi_value_bytes(32768, 128, 2, 32, 128) == 1_599_488
    t = trace_for(LLAMA3_8B, "decode", batch=1, seq=32768)
    t2 = apply_recipe(t, "kivi2", LLAMA3_8B)
    per_step = (1_572_864 + 1_599_488) * 8 * 32  # 8 KV heads, 32 layers = 812,122,112 B
    assert kv_read(t2) == per_step == 812_122_112
    assert kv_read(t) / per_step == pytest.approx(5.29, abs=0.01)
    assert t2.meta["footprint"]["kv_cache"] == pytest.approx(per_step)


def test_kivi_key_residual_cycles_with_context():
    t2 = apply_recipe(trace_for(LLAMA3_8B, seq=32768 + 100), "kivi2", LLAMA3_8B)
    attn = only(t2, "attention")
    res = next(x for x in attn.inputs if x.name == "k_cache.residual")
    assert res.shape == (1, 100, 8, 128)  # S mod R keys still fp16
    assert kv_read(t2) == 8 * 32 * (kivi_key_bytes(32868, 128, 2, 32, 128) + kivi_value_bytes(32868, 128, 2, 32, 128))


def test_kivi_per_step_ops():
    t2 = apply_recipe(trace_for(LLAMA3_8B, batch=2, seq=4096), "kivi2", LLAMA3_8B)
    vq = only(t2, "kivi2.v_quantize")
    assert vq.dims == {"rows": 2 * 8, "cols": 128} and vq.repeat == 32
    kq = only(t2, "kivi2.k_chunk_quantize")
    assert kq.dims["every"] == 128
    deq = only(t2, "kivi2.dequant")
    # fused dequant over the quantized keys (4096) and values (4096-128) of 2 seqs x 8 heads
    assert deq.flops == 2 * 2 * 8 * 128 * (4096 + 3968) and deq.bytes == 0


def test_kivi_prefill_writes_compressed_cache():
    t = trace_for(LLAMA3_8B, "prefill", batch=1, seq=4096)
    t2 = apply_recipe(t, "kivi2", LLAMA3_8B)
    w = only(t2, "kv_write")
    stored = sum(x.nbytes for x in w.outputs if x.role == "kv")
    assert stored == 8 * (kivi_key_bytes(4096, 128, 2, 32, 128) + kivi_value_bytes(4096, 128, 2, 32, 128))
    assert only(t2, "attention").inputs == only(t, "attention").inputs  # attention stays full precision
    assert only(t2, "kivi2.quantize").flops == 4 * 2 * 4096 * 8 * 128


@pytest.mark.parametrize("recipe,bits,scale_bytes", [("fp8_kv", 8, 2 * 8 * 4 * 32), ("mxfp8_kv", 8.25, 0),
                                                     ("mxfp4_kv", 4.25, 0)])
def test_kv_format_scales_reads_exactly(recipe, bits, scale_bytes):
    # fp8_kv: one fp32 scale per KV head for K and V (2 x 8 heads x 4 B) in each of 32
    # layers; MX formats carry their block scales inside bits_per_element
    t = trace_for(LLAMA3_8B, seq=8192)
    t2 = apply_recipe(t, recipe, LLAMA3_8B)
    assert kv_read(t2) == pytest.approx(kv_read(t) * bits / 16 + scale_bytes, rel=1e-12)
    assert t2.meta["footprint"]["kv_cache"] == pytest.approx(t.meta["footprint"]["kv_cache"] * bits / 16, rel=1e-5)


@pytest.mark.parametrize("scale,n_scales", [("head", 8), ("tensor", 1), ("none", 0)])
def test_fp8_kv_scale_granularity_is_charged_and_shown(scale, n_scales):
    r = load_recipe(f"fp8_kv(scale={scale})")
    t = trace_for(LLAMA3_8B, seq=8192)
    t2 = apply_recipe(t, r, LLAMA3_8B)
    attn = only(t2, "attention")
    scales = [x for x in attn.inputs if x.name.endswith(".scale")]
    assert sum(x.nbytes for x in scales) == 2 * 4 * n_scales  # K and V, fp32 each
    eff = t2.meta["recipe_effects"][r.name]
    assert eff["key_scale"] == eff["value_scale"] == scale


def test_kvquant_bytes_rope_and_spmv():
    S = 8192
    t2 = apply_recipe(trace_for(LLAMA3_8B, seq=S), "kvquant3", LLAMA3_8B)
    attn = only(t2, "attention")
    codes = next(x for x in attn.inputs if x.name == "k_cache")
    assert codes.shape == (1, S - 1, 8, 48) and codes.fmt == "int8"  # 128·3/8 bytes, first token fp16
    nnz = round(0.01 * (S - 1) * 8 * 128)
    outl = sum(x.nbytes for x in attn.inputs if x.name.startswith("k_cache.outlier"))
    assert outl == nnz * (2 + 2) + 4 * (S - 1)  # fp16 value + int16 index; int32 CSR pointer per token
    rope = only(t2, "kvquant3.rope_cached_keys")  # pre-RoPE keys: all S rotated each step
    assert rope.flops == 3 * 8 * S * 128
    assert only(t2, "kvquant3.outlier_spmv").flops == 2 * 2 * 4 * round(0.01 * S * 8 * 128)


def test_kvquant_bits_per_element_match_the_paper():
    # KVQuant reports 3.32-3.35 average bits for nuq3-1 % (LLaMA family). LLaMA-2-7B: 32 KV
    # heads x 128 = 4096 features per token; measured from the trace's attention inputs
    from workloads.compression.kv_quant import kvquant_bits_per_element
    S = 8192
    t2 = apply_recipe(trace_for(LLAMA2_7B, seq=S), "kvquant3", LLAMA2_7B)
    attn = only(t2, "attention")
    kv_bytes = sum(x.nbytes for x in attn.inputs if x.role == "kv")
    bits = kv_bytes * 8 / (2 * S * 4096)
    assert 3.32 <= bits <= 3.35
    k, v = kvquant_bits_per_element(3, 0.01, 16, 4096, True), kvquant_bits_per_element(3, 0.01, 16, 4096, False)
    assert (k, v) == (pytest.approx(3 + 0.32 + 32 / 4096), pytest.approx(3 + 0.32 + 48 / 4096))
    # per-layer extras amortised over the S cached tokens: K's per-channel 8-entry fp16
    # codebooks and fp16 ranges, V's 8-entry codebook, and the fp16 sink token of K and V
    # (which takes the place of one quantized token: its codes, scale and row pointer)
    extra = (4096 * 8 * 16 + 4096 * 2 * 16 + 8 * 16 + 2 * 4096 * 16 - 4096 * (k + v)) / (2 * S * 4096)
    assert bits == pytest.approx((k + v) / 2 + extra, rel=1e-4)


def test_mixed_precision_zipcache_bytes():
    S = 4096
    t2 = apply_recipe(trace_for(LLAMA3_8B, seq=S), "zipcache", LLAMA3_8B)
    # per layer and tensor: the prompt's 3840 tokens, int(0.4 x 3840) = 1536 at 2 bits and 2304 at 4; of the 256
    # decode tokens (new_tokens) 2 streaming chunks of 100 compressed (40 at 2 bits, 60 at 4 each) and 56 in the
    # bf16 buffer: 2424 x 4 bits + 1616 x 2 bits + 56 x 16 bits; V adds 2 fp16 per quantized token and 8x128
    # fp16 normalisers: 8 x 237,344 + 2048 = 1,900,800 B; K (channel-wise) adds (1 + 2) x 2 subsets x 128
    # channels x (min, step) fp16 per head: 8 x 224,256 = 1,794,048 B (was 1,738,752 B each at ratio 0.5, per-token
    # keys, every decode token at 4 bits)
    v_tensor = 8 * (2424 * 128 * 4 / 8 + 1616 * 128 * 2 / 8 + 4040 * 2 * 2 + 56 * 128 * 2) + 8 * 128 * 2
    k_tensor = 8 * (2424 * 128 * 4 / 8 + 1616 * 128 * 2 / 8 + 6 * 256 * 2 + 56 * 128 * 2)
    assert (v_tensor, k_tensor) == (1_900_800, 1_794_048)
    assert kv_read(t2) == 32 * (v_tensor + k_tensor) == 118_235_136


def test_mikv_adds_accumulated_scores_and_unfused_prefill():
    t2 = apply_recipe(trace_for(LLAMA3_8B, seq=4096), "mikv", LLAMA3_8B)
    assert only(t2, "mikv.score_accumulate").dims == {"rows": 32, "cols": 4096}
    tp = apply_recipe(trace_for(LLAMA3_8B, "prefill", seq=1024), "mikv", LLAMA3_8B)
    assert {"attn_scores", "attn_softmax", "attn_pv"} <= {o.name for o in tp.ops}


# ---- eviction and sparse attention ------------------------------------------------------
def test_streaming_llm_reads_sinks_plus_window():
    t = trace_for(LLAMA3_8B, batch=2, seq=16384)
    t2 = apply_recipe(t, "streaming_llm", LLAMA3_8B)
    a = only(t2, "attention")
    assert a.dims["kv_len"] == 2004
    assert a.flops == 2 * 2 * 32 * 2004 * 256
    assert kv_read(t2) == pytest.approx(kv_read(t) * 2004 / 16384)
    assert only(t2, "streaming_llm.rope_cached_keys").flops == 3 * 2 * 8 * 2004 * 128


def test_h2o_budget_decode_and_unfused_prefill():
    S = 32768
    t2 = apply_recipe(trace_for(LLAMA3_8B, seq=S), "h2o", LLAMA3_8B)
    C = 3276 + 3276  # heavy 10 % + recent 10 % of the prompt
    assert only(t2, "attention").dims["kv_len"] == C
    assert t2.meta["kv_state"]["capacity"] == C and t2.meta["kv_state"]["read"] == C
    assert only(t2, "h2o.score_accumulate").flops == 32 * C
    tp = trace_for(LLAMA3_8B, "prefill", seq=2048)
    tp2 = apply_recipe(tp, "h2o", LLAMA3_8B)
    sm = only(tp2, "attn_softmax")
    # the Sp x Sp probabilities are written and read back: 32 heads x 2048² bf16 each way
    assert sm.bytes == 2 * 32 * 2048 * 2048 * 2
    assert only(tp2, "attn_scores").flops == 2 * 32 * 2048 * 2048 * 128  # the full (masked) square
    assert tp2.total_bytes > tp.total_bytes
    assert tp2.meta["footprint"]["kv_cache"] == pytest.approx(tp.meta["footprint"]["kv_cache"] * 408 / 2048)
    # one layer's probabilities are live (as build_trace(attention="unfused") counts them),
    # plus the layer being evicted still holding all 2048 prompt tokens' K/V
    unf = trace_for(LLAMA3_8B, "prefill", seq=2048, attention="unfused")
    # + that layer's fp32 column sums (32 x 2048 x 4 = 262,144 B), charged since session 20 (kvfix)
    transient = (2048 - 408) * 2 * 8 * 128 * 2 + 32 * 2048 * 4
    assert tp2.meta["footprint"]["activations"] == pytest.approx(unf.meta["footprint"]["activations"] + transient)
    assert apply_recipe(unf, "h2o", LLAMA3_8B).meta["footprint"]["activations"] == pytest.approx(
        unf.meta["footprint"]["activations"] + transient)


def test_snapkv_capacity_and_prefill_votes():
    t2 = apply_recipe(trace_for(LLAMA3_8B, seq=16384), "snapkv", LLAMA3_8B)
    assert only(t2, "attention").dims["kv_len"] == 1024
    tp2 = apply_recipe(trace_for(LLAMA3_8B, "prefill", seq=16384), "snapkv", LLAMA3_8B)
    assert only(tp2, "snapkv.window_scores").flops == 2 * 32 * 32 * 16384 * 128
    assert only(tp2, "snapkv.select").dims == {"rows": 8, "cols": 16384 - 32, "per_prompt": True}
    assert tp2.meta["footprint"]["kv_cache"] == pytest.approx(1024 * LLAMA3_8B.kv_bytes_per_token("bf16"))


@pytest.mark.parametrize("S,budget,cap,chunk,r,k,reduction", [
    (32768, 256, 1618, 3, 61, 128, 127.7), (32768, 1024, 5792, 3, 68, 512, 32.0),
    (131072, 256, 1296, 3, 76, 128, 512.0)])
def test_rocketkv_derivation_table(S, budget, cap, chunk, r, k, reduction):
    q = rocketkv_budget(S, budget, 128, 256)
    assert (q.capacity, q.chunk, q.r, q.k) == (cap, chunk, r, k)
    assert 2 * S * 128 / q.read_elements(128) == pytest.approx(reduction, rel=2e-3)


def test_rocketkv_decode_trace_llama3_8b_32k():
    t2 = apply_recipe(trace_for(LLAMA3_8B, seq=32768), "rocketkv256", LLAMA3_8B)
    attn = only(t2, "attention")
    assert attn.dims["kv_len"] == 128 and attn.dims["kv_capacity"] == 1618
    apx = only(t2, "rocketkv256.approx_scores")
    assert (apx.dims["m"], apx.dims["n"], apx.dims["k"]) == (4, 540, 61)  # g, ceil(1618/3), r
    assert apx.flops == 2 * 8 * 4 * 61 * 540  # 2·g·r·capacity/chunk per KV head
    # elements read per KV head: r·ceil(cap/chunk) + 2·k·d, bf16
    read = kv_read(t2) + sum(x.nbytes for x in apx.inputs if x.role == "kv") * apx.repeat
    assert read == (61 * 540 + 2 * 128 * 128) * 2 * 8 * 32
    st = t2.meta["kv_state"]
    assert (st["capacity"], st["read"]) == (1618, 128)
    # footprint: capacity tokens + per-chunk min/max summaries
    kt = 32 * 8 * 540 * 2 * 128 * 2
    assert t2.meta["footprint"]["kv_cache"] == pytest.approx(1618 * 131072 + kt)


# ---- low-rank / shared -------------------------------------------------------------------
def test_palu_llama2_7b_halves_kv_and_reconstructs_keys():
    S = 4096
    t = trace_for(LLAMA2_7B, seq=S)
    t2 = apply_recipe(t, "palu", LLAMA2_7B)
    # rank_k 1024 + rank_v 3072 of 4096 (README example): 50 % of the KV
    assert kv_read(t2) == pytest.approx(kv_read(t) / 2)
    assert t2.meta["footprint"]["kv_cache"] == pytest.approx(S * 32 * 4096 * 2)
    rec = only(t2, "palu.k_reconstruct")  # 8 groups of 4 heads, r_g = 128: 2·S·r_g·g·d per group
    assert rec.flops == 8 * 2 * S * 128 * 512
    assert only(t2, "k_proj").dims["n"] == 1024 and only(t2, "v_proj").dims["n"] == 3072


def test_mla_native_deepseek_v2_lite_kv_bytes_per_token():
    S = 4096
    t = trace_for(DSV2_LITE, seq=S)
    # 27 layers x (512 + 64) latent elements x 2 bytes = 31,104 B per token
    assert kv_read(t) / S == 27 * 576 * 2 == 31_104
    t2 = apply_recipe(t, "mla", DSV2_LITE)
    assert t2.ops == t.ops  # already latent
    # one format for the whole latent (K and V alike) halves it at FP8; KIVI (K and V
    # quantized differently) is refused on MLA (tests/test_recipe_pricing_audit.py)
    t3 = apply_recipe(t, "fp8_kv(scale=none)", DSV2_LITE)
    assert kv_read(t3) == kv_read(t) / 2


def test_mla_conversion_of_llama3_8b():
    S = 8192
    t2 = apply_recipe(trace_for(LLAMA3_8B, seq=S), "mla", LLAMA3_8B)
    a = only(t2, "attention")
    assert (a.dims["kv_heads"], a.dims["head_dim"], a.dims["v_head_dim"]) == (1, 576, 512)
    assert kv_read(t2) == 32 * S * 576 * 2
    assert a.flops == 2 * 32 * S * (576 + 512)  # doc §1.3: 2·576 + 2·512 per cached token per head
    assert only(t2, "q_absorb").flops == 2 * 32 * 512 * 64  # q_nope (d − rope = 64) x W_uk


def test_cla2_halves_capacity_not_reads():
    t = trace_for(LLAMA3_8B, seq=8192)
    t2 = apply_recipe(t, "cla2", LLAMA3_8B)
    assert t2.meta["footprint"]["kv_cache"] == pytest.approx(t.meta["footprint"]["kv_cache"] / 2)
    assert only(t2, "k_proj").repeat == 16 and only(t2, "kv_write").repeat == 16
    assert kv_read(t2) == kv_read(t)


def test_minicache_storage_ratio():
    t = trace_for(LLAMA3_8B, seq=8192)
    t2 = apply_recipe(t, "minicache", LLAMA3_8B)
    pair = (1.1 * 128 + 2) / 256  # one direction + 2 magnitudes + 2γ·d retained, over 2·d
    assert t2.meta["footprint"]["kv_cache"] == pytest.approx(t.meta["footprint"]["kv_cache"] * (16 + 16 * pair) / 32)


# ---- MoE ---------------------------------------------------------------------------------
def test_expert_pruning_mixtral_8_to_6():
    t = trace_for(MIXTRAL)
    t2 = apply_recipe(t, "expert_prune", MIXTRAL)
    per_expert = 3 * 4096 * 14336 * 2
    router = 4096 * 2 * 2  # two router columns
    assert t.meta["footprint"]["weights"] - t2.meta["footprint"]["weights"] == pytest.approx(32 * (2 * per_expert + router))
    up = only(t2, "expert_up_proj")
    assert up.inputs[1].shape == (6, 4096, 14336)
    assert up.inputs[1].density == pytest.approx(2 / 6)  # batch 1: top-2 of 6 touched
    assert weight_bytes(up) == pytest.approx(weight_bytes(only(t, "expert_up_proj")))  # still 2 experts read


def test_resmoe_footprint_and_ops():
    t = trace_for(MIXTRAL)
    t2 = apply_recipe(t, "resmoe", MIXTRAL)
    numel = 4096 * 14336
    # per projection and layer: barycenter (bf16) + 8 residuals at 25 % (bf16 value + int16 index)
    new = numel * 2 + 8 * (0.25 * numel) * (2 + 2)
    saved = 3 * 32 * (8 * numel * 2 - new)
    assert t.meta["footprint"]["weights"] - t2.meta["footprint"]["weights"] == pytest.approx(saved, rel=1e-6)
    assert only(t2, "expert_up_proj.residual").flops == 2 * 2 * round(0.25 * numel)
    assert only(t2, "expert_up_proj.barycenter").dims["m"] == 1  # one x·W̄ per token


def test_qmoe_bits_and_table():
    t2 = apply_recipe(trace_for(MIXTRAL), "qmoe", MIXTRAL)
    up = only(t2, "expert_up_proj")
    codes = next(x for x in up.inputs if x.name.endswith(".codes"))
    assert codes.shape == (8, math.ceil(4096 * 14336 * 0.8 / 8))
    assert only(t2, "qmoe.table_load").bytes == 65536 * 8  # 512 KiB decode table


# ---- unfused attention traces --------------------------------------------------------------
def test_kivi_on_unfused_attention_splits_key_and_value_reads():
    t = trace_for(LLAMA3_8B, "decode", batch=1, seq=32768, attention="unfused")
    t2 = apply_recipe(t, "kivi2", LLAMA3_8B)
    assert not any(o.kind == "attention" for o in t2.ops)
    assert kv_read(t2, "attn_scores") == 1_572_864 * 8 * 32  # keys, per channel (doc §1.1)
    assert kv_read(t2, "attn_pv") == 1_599_488 * 8 * 32  # values, per token + fp16 window


def test_eviction_on_unfused_attention_shrinks_every_piece():
    t = trace_for(LLAMA3_8B, "decode", batch=2, seq=16384, attention="unfused")
    t2 = apply_recipe(t, "snapkv", LLAMA3_8B)
    assert only(t2, "attn_scores").dims["n"] == 1024 and only(t2, "attn_pv").dims["k"] == 1024
    assert only(t2, "attn_softmax").dims == {"rows": 2 * 32, "cols": 1024}
    assert kv_read(t2, "attn_scores") == pytest.approx(kv_read(t, "attn_scores") * 1024 / 16384)


def test_weight_format_on_moe_counts_every_expert_resident_but_reads_touched_ones():
    t = trace_for(MIXTRAL, batch=1)
    t2 = apply_recipe(t, "mxfp4_weights", MIXTRAL)
    m = MIXTRAL
    linear = m.layers * (2 * 4096 * 4096 + 2 * 4096 * 1024 + 8 * 3 * 4096 * 14336)
    assert t.meta["footprint"]["weights"] - t2.meta["footprint"]["weights"] == pytest.approx(linear * (16 - 4.25) / 8)
    up = only(t2, "expert_up_proj")
    # batch 1: top-2 of 8 experts touched -> a quarter of the expert weights streamed, at 4.25 bits
    assert weight_bytes(up) == pytest.approx(8 * 4096 * 14336 * 4.25 / 8 * 2 / 8)


def test_quantizing_a_top_k_gather_reads_the_compressed_share():
    """RocketKV then KIVI: the 128 gathered tokens come from a KIVI cache of 1618 tokens,
    so the read is 128/1618 of that cache, not 128 fp16 tokens."""
    t = trace_for(LLAMA3_8B, seq=32768)
    rk = apply_recipe(t, "rocketkv256", LLAMA3_8B)
    both = apply_recipe(t, "rocketkv256+kivi2", LLAMA3_8B)
    per_layer_cache = 8 * (kivi_key_bytes(1618, 128, 2, 32, 128) + kivi_value_bytes(1618, 128, 2, 32, 128))
    assert kv_read(both) == pytest.approx(32 * per_layer_cache * 128 / 1618, rel=0.01)
    assert kv_read(both) < kv_read(rk) / 3
    # and the other order gives the same traffic to within the windows' rounding
    other = apply_recipe(t, "kivi2+rocketkv256", LLAMA3_8B)
    assert kv_read(other) == pytest.approx(kv_read(both), rel=0.1)


def test_resmoe_svd_residual_is_two_gemms_of_rank_r():
    t2 = apply_recipe(trace_for(MIXTRAL), "resmoe_svd", MIXTRAL)
    r = round(0.25 * 4096 * 14336 / (4096 + 14336))  # 796: U (k x r) + V (r x n) = 25 % of k·n
    u, v = only(t2, "expert_up_proj.residual_u"), only(t2, "expert_up_proj.residual_v")
    assert (u.dims["n"], v.dims["k"]) == (r, r)
    assert u.flops + v.flops == 2 * 2 * r * (4096 + 14336)  # 2 routed tokens (batch 1, top-2)
    saved = 3 * 32 * (8 * 4096 * 14336 * 2 - (4096 * 14336 * 2 + 8 * r * (4096 + 14336) * 2))
    assert trace_for(MIXTRAL).meta["footprint"]["weights"] - t2.meta["footprint"]["weights"] == pytest.approx(saved)


def test_ksort_bfp12_keys_halve_only_the_key_cache():
    t = trace_for(LLAMA3_8B, seq=8192)
    t2 = apply_recipe(t, "ksort_bfp12_keys", LLAMA3_8B)
    a = only(t2, "attention")
    k = next(x for x in a.inputs if x.name == "k_cache")
    v = next(x for x in a.inputs if x.name == "v_cache")
    assert (k.fmt, v.fmt) == ("bfp12_b32", "bf16")
    assert k.nbytes == 8192 * 8 * 128 * (4 + 8 / 32) / 8  # 4-bit sign+mantissa + 8-bit exponent per 32
    assert kv_read(t2) == pytest.approx(kv_read(t) * (4.25 + 16) / 32)


def test_streaming_llm_prefill_attends_within_the_window():
    tp = trace_for(LLAMA3_8B, "prefill", seq=8192)
    tp2 = apply_recipe(tp, "streaming_llm", LLAMA3_8B)
    a0, a1 = only(tp, "attention"), only(tp2, "attention")
    assert a1.dims["window"] == 2004
    # causal pairs capped at 2004 per query: 2004·2005/2 for the first 2004 queries, then 2004 each
    pairs = 2004 * 2005 / 2 + (8192 - 2004) * 2004
    assert a1.flops == pytest.approx(2 * 32 * pairs * 256)
    assert a1.flops < a0.flops


@pytest.mark.parametrize("recipe,b,per_head", [("kivi2", 2, 1_572_864 + 1_599_488), ("kivi4", 4, 2_621_440 + 2_643_968)])
def test_kivi_bits_at_32k(recipe, b, per_head):
    # K = S·d·b/8 + (S/G)·d·4 ; V = (S−R)·d·b/8 + (S−R)·(d/G)·4 + R·d·2   (S=32768, d=128, G=32, R=128)
    assert kivi_key_bytes(32768, 128, b, 32, 128) + kivi_value_bytes(32768, 128, b, 32, 128) == per_head
    t2 = apply_recipe(trace_for(LLAMA3_8B, seq=32768), recipe, LLAMA3_8B)
    assert kv_read(t2) == per_head * 8 * 32


def test_mikv_bytes_fp16_salient_int3_rest():
    S = 4000
    t2 = apply_recipe(trace_for(LLAMA3_8B, seq=S), "mikv", LLAMA3_8B)
    hi = 801  # round(0.2 x 3999) + 1: the budget after the last step plus this step's new token stay bf16
    lo = S - hi  # INT3 codes, 48 B per token-head, plus fp16 scale and zero per token
    per_tensor = 8 * (hi * 128 * 2 + lo * 48 + lo * 2 * 2)
    assert kv_read(t2) == pytest.approx(2 * 32 * per_tensor)


def test_zipcache_probe_attention_at_prefill():
    tp2 = apply_recipe(trace_for(LLAMA3_8B, "prefill", seq=4096), "zipcache", LLAMA3_8B)
    probe = only(tp2, "zipcache.probe_scores")
    # the authors' probes (zipcache_probe_counts): the last 4096 − int(4096 − 204.8) = 205 queries + int(204.8)
    # = 204 random ones: 409 (was round(0.1·4096) = 410 recent ones)
    n_probe = 205 + 204
    assert probe.flops == 2 * 32 * n_probe * 4096 * 128  # 2·n_probe·S·d per head


def test_sliding_window_model_capacity_starts_at_the_window():
    from workloads.models import ModelSpec
    m = ModelSpec(name="swa", hidden=4096, layers=32, heads=32, kv_heads=8, intermediate=14336, vocab=32000,
                  sliding_window=4096)
    t = trace_for(m, seq=32768)
    t2 = apply_recipe(t, "kivi2", m)
    assert t2.meta["kv_state"]["capacity"] == 4096
    assert t2.meta["footprint"]["kv_cache"] == pytest.approx(kv_read(t2))  # reads = the whole (window) cache
    t3 = apply_recipe(t, "snapkv", m)
    assert t3.meta["footprint"]["kv_cache"] == pytest.approx(t.meta["footprint"]["kv_cache"] * 1024 / 4096)


def test_gear_bytes_and_correction_ops():
    S = 8192  # a multiple of the 64-token gap: nothing in the fp16 buffer
    t2 = apply_recipe(trace_for(LLAMA3_8B, seq=S), "gear2", LLAMA3_8B)
    d = 128
    nnz = round(0.02 * S * 8 * d)
    # A/B factors: the prompt (S - 256 tokens) at rank 4, the 256 generated tokens in 4 chunks of 64 at rank 2
    LR = (S - 256 + d) * 4 + 4 * (64 + d) * 2
    k = 8 * (S * d * 2 / 8 + S / 64 * d * 4 + LR * 2) + nnz * (2 + 4)  # codes, stats, A/B, outliers
    v = 8 * (S * d * 2 / 8 + S * (d / 64) * 4 + LR * 2) + nnz * (2 + 4)
    assert kv_read(t2) == pytest.approx(32 * (k + v))
    lr = only(t2, "gear2.lowrank_correction")
    assert lr.flops == 2 * 8 * 4 * 2 * LR  # K and V: 2 FLOPs per factor element per query head
    assert only(t2, "gear2.chunk_compress").dims["every"] == 64
    tp = apply_recipe(trace_for(LLAMA3_8B, "prefill", seq=2048), "gear2", LLAMA3_8B)
    assert only(tp, "gear2.prompt_svd").flops == 3 * 4 * (2048 * 2 * 8 * d) * 4


def test_a2sf_adds_the_decay_multiplies():
    t2 = apply_recipe(trace_for(LLAMA3_8B, seq=8192), "a2sf", LLAMA3_8B)
    C = 2 * int(0.1 * 8192)
    assert only(t2, "a2sf.score_decay").flops == 32 * C  # C multiplies per head per step
    assert only(t2, "attention").dims["kv_len"] == C


def test_razor_attention_splits_heads():
    S = 32768
    t = trace_for(LLAMA3_8B, seq=S)
    t2 = apply_recipe(t, "razor_attention", LLAMA3_8B)
    full, local = only(t2, "attention"), only(t2, "attention.local")
    # 8 KV heads: round(0.16·8) = 1 retrieval head (4 query heads) keeps all S tokens
    assert (full.dims["kv_heads"], full.dims["heads"], full.dims["kv_len"]) == (1, 4, S)
    assert (local.dims["kv_heads"], local.dims["heads"], local.dims["kv_len"]) == (7, 28, 517)
    per_head_token = 2 * 128 * 2  # K and V, bf16
    assert kv_read(t2) + kv_read(t2, "attention.local") == 32 * per_head_token * (S + 7 * 517)
    assert full.flops + local.flops == 2 * 2 * 128 * (4 * S + 28 * 517)
    assert t2.meta["footprint"]["kv_cache"] == pytest.approx(32 * per_head_token * (S + 7 * 517))


def test_fastkv_prefill_propagates_a_fifth_of_the_tokens_after_layer_15():
    S = 8192
    S2 = math.ceil(0.2 * S)  # 1639 tokens propagate past the TSP layer
    tp = trace_for(LLAMA3_8B, "prefill", seq=S)
    t2 = apply_recipe(tp, "fastkv", LLAMA3_8B)
    q = [o for o in t2.ops if o.name == "q_proj"]
    assert [(o.repeat, o.dims["m"]) for o in q] == [(15, S), (17, S2)]
    # doc §1.2: linear FLOPs ≈ 2·Sp·P_layer·[l_tsp + (L − l_tsp)·ρ]
    assert sum(o.total_flops for o in q) == 2 * 4096 * 4096 * (15 * S + 17 * S2)
    attn = [o for o in t2.ops if o.name == "attention"]
    assert [(o.repeat, o.dims["q_len"], o.dims["kv_len"]) for o in attn] == [(15, S, S), (17, S2, S2)]
    assert t2.meta["footprint"]["kv_cache"] == pytest.approx(int(0.1 * S) * LLAMA3_8B.kv_bytes_per_token("bf16"))
    td = apply_recipe(trace_for(LLAMA3_8B, seq=S), "fastkv", LLAMA3_8B)
    assert only(td, "attention").dims["kv_len"] == int(0.1 * S)


@pytest.mark.parametrize("model", ["mixtral_8x7b", "qwen1_5_moe_a2_7b", "deepseek_v2_lite"])
def test_fastkv_scales_every_token_op_of_a_moe_layer_after_the_selection_layer(model):
    """A 100-token prefill, TSP rate 0.2: the layers after tsp_layer run ceil(0.2 x 100) = 20 tokens, so every
    op there but attention (quadratic) has exactly 1/5 of its FLOPs and of its activation bytes, the routed
    ones included: mixtral's expert activation runs 20 x top_k 2 = 40 token-expert pairs (before session 17 it
    kept 200, and the expert GEMMs' activation tensors 200 rows). The expert weights read are those of the
    experts 20 tokens touch, 8(1 - (1 - 2/8)^20) = 7.97463..."""
    from workloads.models import load_model
    from workloads.moe import experts_touched
    m = load_model(model)
    tp = trace_for(m, "prefill", seq=100)
    t2 = apply_recipe(tp, "fastkv", m)
    before = {o.name: o for o in tp.ops}
    act = lambda op: sum(v for k, v in op.bytes_by_role().items() if k != "weight")
    after = [o for o in t2.ops if o.dims.get("tsp_after") and o.kind != "attention"]
    assert {o.name for o in after} >= {"router", "expert_gate_proj", "expert_act", "expert_down_proj"}
    for o in after:
        assert (o.flops * 5, act(o) * 5) == (before[o.name].flops, act(before[o.name])), o.name
    if model == "mixtral_8x7b":
        ops = {o.name: o for o in after}
        assert ops["expert_act"].dims["rows"] == math.ceil(0.2 * 100) * 2 == 40
        assert ops["expert_gate_proj"].inputs[0].shape == (40, 4096)
        touched = ops["expert_gate_proj"].dims["experts_touched"]
        assert touched == pytest.approx(8 * (1 - 0.75 ** 20)) == experts_touched(8, 2, 20)
        assert ops["expert_gate_proj"].inputs[1].density == pytest.approx(touched / 8)


@pytest.mark.parametrize("name", list_recipes())
def test_every_recipe_trace_round_trips_and_prices(name, tmp_path):
    from cosim.simulate import simulate
    from workloads.trace import Trace
    moe = load_recipe(name).method in ("moe_prune", "resmoe", "qmoe")
    model = MIXTRAL if moe else LLAMA3_8B
    for phase in ("decode", "prefill"):
        t = apply_recipe(trace_for(model, phase, batch=2, seq=4096), name, model)
        back = Trace.load(t.save(tmp_path / f"{phase}.json"))
        assert back.total_flops == pytest.approx(t.total_flops) and back.total_bytes == pytest.approx(t.total_bytes)
        assert back.meta["recipe_effects"][name]["method"] == load_recipe(name).method
        rep = simulate(t, "h100_sxm", compute_fallback=True)
        assert rep.total_latency_s > 0 and rep.memory_bytes > 0


def test_matryoshka_and_eigen_projections():
    S = 8192
    t = trace_for(LLAMA3_8B, seq=S)
    m = apply_recipe(t, "matryoshka_kv", LLAMA3_8B)
    r = round(0.4 * 128)  # 51
    a = only(m, "attention")
    assert (a.dims["head_dim"], a.dims["v_head_dim"]) == (r, r)
    assert kv_read(m) == 32 * S * 8 * 2 * r * 2
    assert a.flops == 2 * 32 * S * 2 * r  # attention FLOPs x r/d
    assert only(m, "o_proj").dims["k"] == 32 * r and only(m, "k_proj").dims["n"] == 8 * r
    assert only(m, "head_projection.q_project").flops == 2 * 32 * 128 * r
    e = apply_recipe(t, "eigen_attention", LLAMA3_8B)
    r6 = round(0.6 * 128)
    assert only(e, "attention").dims["head_dim"] == 128  # RoPE: keys rebuilt to d every step
    assert only(e, "head_projection.k_reconstruct").flops == 2 * 8 * S * 128 * r6
    assert e.meta["footprint"]["kv_cache"] == pytest.approx(t.meta["footprint"]["kv_cache"] * r6 / 128)


def test_prefill_eviction_keeps_one_layer_of_full_kv_transiently():
    S = 16384
    tp = trace_for(LLAMA3_8B, "prefill", seq=S)
    t2 = apply_recipe(tp, "snapkv", LLAMA3_8B)
    per_layer_token = 2 * 8 * 128 * 2
    assert t2.meta["footprint"]["activations"] - tp.meta["footprint"]["activations"] == (S - 1024) * per_layer_token
    assert t2.meta["footprint"]["kv_cache"] == 1024 * 32 * per_layer_token


@pytest.mark.parametrize("hw,level", [("tpu_v5e", "roofline"), ("mx_systolic_128", "cycle")])
def test_every_recipe_runs_on_bf16_only_and_cycle_level_hardware(hw, level):
    """The recipe's own ops are tagged like the builder's (bf16 vector work), so a machine
    without fp32 peaks prices them, and the cycle-level models accept every op kind."""
    from cosim.simulate import simulate
    for name in list_recipes():
        moe = load_recipe(name).method in ("moe_prune", "resmoe", "qmoe")
        model = MIXTRAL if moe else LLAMA3_8B
        rep = simulate(apply_recipe(trace_for(model, seq=2048), name, model), hw, level=level, compute_fallback=True)
        assert rep.total_latency_s > 0, name
