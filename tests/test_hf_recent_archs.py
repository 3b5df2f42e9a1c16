"""Recent architectures through the Hugging Face importer (issue: every field that changes
FLOPs, bytes or memory is modelled or refused by name; counts pinned to the published ones
within 0.5 %). gpt-oss-20b is the public config.json (tests/data/hf_configs/SOURCES.md);
the others are the fields of the public config.json files that matter here, values as
published, in the manner of test_hf_allowlist."""

import dataclasses
import json
from pathlib import Path

import pytest

import cosim
from workloads.formats import get_format
from workloads.io import InputError
from workloads.models import model_from_hf_config

DATA = Path(__file__).parent / "data" / "hf_configs"
GPT_OSS_20B = json.loads((DATA / "gpt_oss_20b.json").read_text())
# openai/gpt-oss-120b config.json: what differs from the 20b file (36 layers alternating, 128 experts)
GPT_OSS_120B = {**GPT_OSS_20B, "num_hidden_layers": 36, "num_local_experts": 128,
                "layer_types": ["sliding_attention", "full_attention"] * 18}
# Qwen/Qwen3-30B-A3B config.json (model card: 30.5 B total, 3.3 B activated; 128 experts, 8 active)
QWEN3_30B_A3B = {"architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe", "hidden_size": 2048,
                 "intermediate_size": 6144, "moe_intermediate_size": 768, "num_hidden_layers": 48,
                 "num_attention_heads": 32, "num_key_value_heads": 4, "head_dim": 128, "num_experts": 128,
                 "num_experts_per_tok": 8, "decoder_sparse_step": 1, "mlp_only_layers": [], "norm_topk_prob": True,
                 "vocab_size": 151936, "max_position_embeddings": 40960, "max_window_layers": 48,
                 "use_sliding_window": False, "sliding_window": None, "tie_word_embeddings": False,
                 "hidden_act": "silu", "torch_dtype": "bfloat16"}
# google/gemma-3-1b-it config.json (5 local : 1 global, 512-token window, tied embeddings)
GEMMA3_1B = {"architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text", "hidden_size": 1152,
             "intermediate_size": 6912, "num_hidden_layers": 26, "num_attention_heads": 4, "num_key_value_heads": 1,
             "head_dim": 256, "vocab_size": 262144, "sliding_window": 512, "sliding_window_pattern": 6,
             "query_pre_attn_scalar": 256, "rope_local_base_freq": 10000, "rope_theta": 1000000,
             "max_position_embeddings": 32768, "hidden_activation": "gelu_pytorch_tanh",
             "attn_logit_softcapping": None, "final_logit_softcapping": None, "torch_dtype": "bfloat16"}


def _write(tmp_path, cfg):
    p = tmp_path / "config.json"
    p.write_text(json.dumps(cfg))
    return p


def _gpt_oss_layer(experts):
    """One gpt-oss layer by hand: q, k, v, o with biases, a sink per head, two RMSNorms, a biased router,
    and `experts` SwiGLU experts of width 2880 with gate/up biases (2 x 2880) and a down bias (2880)."""
    h, q, kv = 2880, 64 * 64, 8 * 64
    attn = 2 * h * q + 2 * h * kv + (q + 2 * kv + h) + 64
    expert = 3 * h * 2880 + 2 * 2880 + h
    return attn + 2 * h + experts * (h + 1) + experts * expert


@pytest.mark.parametrize("cfg, layers, experts, published, active", [
    # the gpt-oss model card: 20.91 B total, 3.61 B active; 116.83 B total, 5.13 B active (active: the
    # embedding table left out, the unembedding counted)
    (GPT_OSS_20B, 24, 32, 20.91e9, 3.61e9),
    (GPT_OSS_120B, 36, 128, 116.83e9, 5.13e9),
])
def test_gpt_oss_counts_match_the_hand_count_and_the_published_ones(tmp_path, cfg, layers, experts, published, active):
    m = model_from_hf_config(_write(tmp_path, cfg))
    assert m.attn_sinks and m.router_bias and m.mlp_bias and m.o_bias and m.qkv_bias and not m.tie_embeddings
    assert m.params == layers * _gpt_oss_layer(experts) + 2 * 201088 * 2880 + 2880
    assert abs(m.params / published - 1) <= 0.005, m.params
    assert abs((m.active_params_per_token() - m.embedding_params()) / active - 1) <= 0.005
    assert m.window_layers == layers // 2 and m.sliding_window == 128 and m.max_context == 131072


def test_gpt_oss_20b_prices_mxfp4_experts_and_bf16_attention_router_and_tables():
    m = model_from_hf_config(DATA / "gpt_oss_20b.json")
    assert (m.weights_format, m.attn_format, m.embed_format, m.lm_head_format) == ("mxfp4", "bf16", "bf16", "bf16")
    t = cosim.build_trace(m, "decode", 1, 8192)
    ops = {op.name: op for op in t.ops}
    fmt = {n: next(x.fmt for x in op.inputs if x.role == "weight") for n, op in ops.items()
           if any(x.role == "weight" for x in op.inputs) and op.kind in ("gemm", "moe_router")}
    assert {fmt[n] for n in ("q_proj", "k_proj", "v_proj", "o_proj", "router", "lm_head")} == {"bf16"}
    assert {fmt[n] for n in ("expert_gate_proj", "expert_up_proj", "expert_down_proj")} == {"mxfp4"}
    # weights: experts at MXFP4's 4.25 bits (FP4 + an E8M0 scale per 32), attention, router and the two
    # tables in bf16, the vectors (biases, sinks, norms) at the weights format's bits as for every model
    experts = 24 * 32 * 3 * 2880 * 2880
    bf16 = 24 * (2 * 2880 * 4096 + 2 * 2880 * 512) + 24 * 2880 * 32 + 2 * 201088 * 2880
    mx = get_format("mxfp4").bits_per_element / 8
    assert mx == 4.25 / 8
    vectors = m.params - experts - bf16
    assert t.meta["footprint"]["weights"] == experts * mx + 2 * bf16 + vectors * mx  # 13.75 GB
    assert 13.7e9 < t.meta["footprint"]["weights"] < 13.8e9  # the checkpoint's safetensors: ~13.8 GB
    # decode FLOPs: 2 per active weight (the embedding is a lookup) plus attention, 2(64 + 64) per pair:
    # 12 full layers over 8192 positions, 12 local ones over their 128-token window
    lin = sum(op.flops * op.repeat for op in t.ops if op.kind in ("gemm", "moe_router"))
    assert lin == 2 * (24 * (2 * 2880 * 4096 + 2 * 2880 * 512 + 2880 * 32 + 4 * 3 * 2880 * 2880) + 201088 * 2880)
    att = ops["attention"], ops["attention_local"]
    assert (att[0].repeat, att[0].dims["kv_len"], att[1].repeat, att[1].dims["kv_len"]) == (12, 8192, 12, 128)
    assert att[0].flops == 64 * 8192 * 256 and att[1].flops == 64 * 128 * 256
    assert t.meta["footprint"]["kv_cache"] == (12 * 8192 + 12 * 128) * 2 * 8 * 64 * 2
    assert any("MoE experts only (transformers' MXFP4 quantizer converts the experts alone): attention and router "
               "bf16" in n for n in t.meta["notes"])


def test_gpt_oss_with_another_weights_format_prices_everything_in_it():
    m = model_from_hf_config(DATA / "gpt_oss_20b.json")
    t = cosim.build_trace(m, "decode", 1, 1024, weights="fp8_e4m3")
    assert {x.fmt for op in t.ops for x in op.inputs if x.role == "weight" and op.kind == "gemm"} == {"fp8_e4m3"}


@pytest.mark.parametrize("kept", [
    "model.layers.*.mlp.experts", "model.layers", "model",
])
def test_mxfp4_modules_to_not_convert_reaching_the_experts_is_refused(tmp_path, kept):
    """transformers' MXFP4 quantizer converts only the MoE experts (integrations/mxfp4.py); an entry of
    modules_to_not_convert matching them or a module above them (its should_convert_module rule) leaves no
    weight in MXFP4: refused by name."""
    qc = {"quant_method": "mxfp4", "modules_to_not_convert": [kept]}
    with pytest.raises(InputError) as e:
        model_from_hf_config(_write(tmp_path, {**GPT_OSS_20B, "quantization_config": qc}))
    assert f"modules_to_not_convert: got {kept!r}" in str(e.value) and "converts only the experts" in str(e.value)


def _weights_fmt(m):
    ops = {op.name: op for op in cosim.build_trace(m, "decode", 1, 256).ops}
    return {n: next(x.fmt for x in op.inputs if x.role == "weight") for n, op in ops.items()
            if op.kind in ("gemm", "moe_router") and any(x.role == "weight" for x in op.inputs)}


@pytest.mark.parametrize("kept", [None, [], ["model.layers.*.self_attn"], ["model.vision_tower"], ["lm_head"]])
def test_mxfp4_converts_only_the_experts_whatever_modules_to_not_convert_says(tmp_path, kept):
    """transformers (src/transformers/integrations/mxfp4.py, _replace_with_mxfp4_linear) replaces only the
    GptOssExperts module with Mxfp4GptOssExperts; the attention, router and lm_head Linears are never
    converted (modules_to_not_convert defaults to ["lm_head"]). So a gpt-oss config with quant_method mxfp4
    and no modules_to_not_convert (or one naming only some of them) loads as the published one: experts MXFP4,
    attention, router and lm_head bf16, 13,751,026,194 B of weights. Before session 17 the config without the
    list priced attention, router and lm_head in MXFP4: 11,961,566,994 B, 1,789,459,200 B less = 24 x (2 x 2880
    x 4096 + 2 x 2880 x 512 + 2880 x 32) + 201,088 x 2880 = 1,218,355,200 parameters at 4.25 bits instead of
    16 (x (2 - 0.53125) B); the last three lists were refused."""
    qc = {"quant_method": "mxfp4", **({} if kept is None else {"modules_to_not_convert": kept})}
    m = model_from_hf_config(_write(tmp_path, {**GPT_OSS_20B, "quantization_config": qc}))
    assert (m.weights_format, m.attn_format, m.embed_format, m.lm_head_format) == ("mxfp4", "bf16", "bf16", "bf16")
    fmt = _weights_fmt(m)
    assert {fmt[n] for n in ("q_proj", "k_proj", "v_proj", "o_proj", "router", "lm_head")} == {"bf16"}
    assert {fmt[n] for n in ("expert_gate_proj", "expert_up_proj", "expert_down_proj")} == {"mxfp4"}
    published = model_from_hf_config(DATA / "gpt_oss_20b.json")
    w = lambda m: cosim.build_trace(m, "decode", 1, 256).meta["footprint"]["weights"]
    assert w(m) == w(published) == 13751026194
    assert (24 * (2 * 2880 * 4096 + 2 * 2880 * 512 + 2880 * 32) + 201088 * 2880) * (2 - 4.25 / 8) == 1789459200
    experts = 24 * 32 * 3 * 2880 * 2880
    bf16 = 24 * (2 * 2880 * 4096 + 2 * 2880 * 512) + 24 * 2880 * 32 + 2 * 201088 * 2880
    assert w(m) == experts * 4.25 / 8 + 2 * bf16 + (m.params - experts - bf16) * 4.25 / 8


def test_mxfp4_on_a_model_with_weights_transformers_leaves_dense_is_refused(tmp_path):
    """transformers converts only MoE expert weights: a dense model has nothing in MXFP4, and a MoE with shared
    experts keeps them in torch_dtype, which one declared format cannot price; both refused by name. Qwen3-30B-A3B
    (every MLP weight an expert) loads with its experts MXFP4 and attention, router and lm_head bf16."""
    qc = {"quant_method": "mxfp4"}
    m = model_from_hf_config(_write(tmp_path, {**QWEN3_30B_A3B, "quantization_config": qc}))
    fmt = _weights_fmt(m)
    assert (fmt["q_proj"], fmt["router"], fmt["lm_head"], fmt["expert_down_proj"]) == ("bf16", "bf16", "bf16", "mxfp4")
    dense = {k: v for k, v in GEMMA3_1B.items()}
    with pytest.raises(InputError, match=r"quantization_config.quant_method: got 'mxfp4'; expected a model whose MLP "
                                         r"weights are all MoE experts.*has no MoE experts"):
        model_from_hf_config(_write(tmp_path, {**dense, "quantization_config": qc}))
    shared = {**QWEN3_30B_A3B, "model_type": "qwen2_moe", "architectures": ["Qwen2MoeForCausalLM"],
              "shared_expert_intermediate_size": 5632, "quantization_config": qc}
    with pytest.raises(InputError, match=r"has 1 shared expert\(s\)"):
        model_from_hf_config(_write(tmp_path, shared))


def test_gpt_oss_sinks_split_with_the_heads_under_tp():
    from workloads.parallel import Layout, device_params
    m = model_from_hf_config(DATA / "gpt_oss_20b.json")
    one, two = (device_params(m, Layout(tp=t)) for t in (1, 2))
    no_sinks = dataclasses.replace(m, attn_sinks=False)
    assert one[0] - device_params(no_sinks, Layout(tp=1))[0] == 24 * 64
    assert two[0] - device_params(no_sinks, Layout(tp=2))[0] == 24 * 32


def test_qwen3_30b_a3b_loads_with_the_published_count(tmp_path):
    m = model_from_hf_config(_write(tmp_path, QWEN3_30B_A3B))
    assert (m.moe.num_experts, m.moe.top_k, m.moe.shared_intermediate, m.moe.first_dense_layers) == (128, 8, 0, 0)
    assert m.intermediate == 0 and m.head_dim == 128 and m.qk_norm and m.sliding_window is None
    # 48 x (attention 2048 x (4096 + 2 x 512) + 4096 x 2048, q/k norms 2 x 128, 2 norms, router 2048 x 128,
    # 128 experts of 3 x 2048 x 768) + untied 151936 x 2048 twice + final norm
    layer = 2048 * (4096 + 2 * 512) + 4096 * 2048 + 256 + 2 * 2048 + 2048 * 128 + 128 * 3 * 2048 * 768
    assert m.params == 48 * layer + 2 * 151936 * 2048 + 2048 == 30_532_122_624
    assert abs(m.params / 30.5e9 - 1) <= 0.005


# a small Qwen2-MoE config (numbers chosen to be checked by hand): 4 layers, hidden 64, 4 heads of 16,
# 2 KV heads, 8 experts of 32 (top 2), a shared expert of 48 (with Qwen2-MoE's sigmoid gate), dense MLP 96
QWEN2_MOE_SMALL = {"model_type": "qwen2_moe", "hidden_size": 64, "num_hidden_layers": 4, "num_attention_heads": 4,
                   "num_key_value_heads": 2, "vocab_size": 1000, "intermediate_size": 96, "moe_intermediate_size": 32,
                   "shared_expert_intermediate_size": 48, "num_experts": 8, "num_experts_per_tok": 2,
                   "tie_word_embeddings": False, "max_position_embeddings": 4096}
# per layer: attention 64 x 64 (q) + 2 x 64 x 32 (k, v) + 64 x 64 (o) + q/k/v biases 64 + 2 x 32, two norms 2 x 64
_ATTN = 64 * 64 + 2 * 64 * 32 + 64 * 64 + (64 + 2 * 32) + 2 * 64  # 12,544
_DENSE = 3 * 64 * 96  # 18,432
# 8 experts 3 x 64 x 32, shared expert 3 x 64 x 48, router 64 x 8, shared-expert gate 64
_MOE = 8 * 3 * 64 * 32 + 3 * 64 * 48 + 64 * 8 + 64  # 58,944
_REST = 2 * 1000 * 64 + 64  # untied embedding and lm_head, final norm


@pytest.mark.parametrize("changes, moe_ids", [
    ({}, None),  # every layer MoE (the default plan)
    ({"decoder_sparse_step": 2}, (1, 3)),  # Qwen2MoeDecoderLayer: (i + 1) % step == 0
    ({"mlp_only_layers": [0]}, (1, 2, 3)),
    ({"decoder_sparse_step": 2, "mlp_only_layers": [3]}, (1,)),
])
def test_qwen_moe_sparse_steps_and_dense_layers_are_modelled(tmp_path, changes, moe_ids):
    # were refused ("decoder_sparse_step: got 2; expected 1 ..."): the dense layers run Qwen2MoeMLP of intermediate_size
    m = model_from_hf_config(_write(tmp_path, {**QWEN2_MOE_SMALL, **changes}))
    n_moe = 4 if moe_ids is None else len(moe_ids)
    assert m.moe.layer_ids == moe_ids and m.moe_layers == n_moe and m.dense_layers == 4 - n_moe
    assert (_ATTN, _DENSE, _MOE) == (12_544, 18_432, 58_944)
    assert m.params == 4 * _ATTN + (4 - n_moe) * _DENSE + n_moe * _MOE + _REST
    # decoder_sparse_step 2: 4 x 12,544 + 2 x 18,432 + 2 x 58,944 + 128,064 = 332,992
    if changes == {"decoder_sparse_step": 2}:
        assert m.params == 332_992
        # active: 6 of the 8 experts idle in each of the 2 MoE layers
        assert m.active_params_per_token() == 332_992 - 2 * 6 * 3 * 64 * 32 == 259_264
    t = cosim.build_trace(m, "decode", 1, 64)
    reps = {op.name: op.repeat for op in t.ops}
    assert reps.get("gate_proj", 0) == 4 - n_moe and reps["expert_gate_proj"] == n_moe
    # the trace's weights are the parameters: bf16 bytes = 2 x params (every matrix and vector)
    assert t.meta["footprint"]["weights"] == 2 * m.params


@pytest.mark.parametrize("changes, field", [
    ({"decoder_sparse_step": 5}, "decoder_sparse_step"),  # no layer (i + 1) % 5 == 0 of 4: no MoE layer left
    ({"mlp_only_layers": [0, 1, 2, 3]}, "mlp_only_layers"),
    ({"mlp_only_layers": [4]}, "mlp_only_layers"),  # beyond the 4 layers
    ({"mlp_only_layers": [0], "intermediate_size": None}, "intermediate_size"),  # the dense width not guessed
])
def test_qwen_moe_layer_plans_without_a_moe_layer_or_a_dense_width_are_refused(tmp_path, changes, field):
    with pytest.raises(InputError, match=f"config.json: {field}: got"):
        model_from_hf_config(_write(tmp_path, {**QWEN2_MOE_SMALL, **changes}))


def test_qwen_moe_sparse_plans_shard_by_layer_under_pp(tmp_path):
    from workloads.parallel import Layout, device_params
    m = model_from_hf_config(_write(tmp_path, {**QWEN2_MOE_SMALL, "decoder_sparse_step": 2}))
    # pp 2: stage 0 holds layers 0 (dense) and 1 (MoE), stage 1 layers 2 (dense) and 3 (MoE): the stages
    # differ by the final norm only (embedding and untied lm_head are both 1000 x 64); the old rule (dense
    # layers first) gave stage 0 both dense layers and stage 1 both MoE layers
    s0, s1 = device_params(m, Layout(pp=2))
    assert s1 - s0 == 64


def test_gemma3_1b_loads_five_local_to_one_global_with_the_published_count(tmp_path):
    m = model_from_hf_config(_write(tmp_path, GEMMA3_1B))
    assert m.tie_embeddings and m.norms_per_layer == 4 and m.qk_norm and m.activation == "gelu_tanh"
    assert m.sliding_window == 512 and m.window_layers == 26 - 26 // 6 == 22
    layer = 1152 * 1024 * 2 + 2 * 1152 * 256 + 2 * 256 + 4 * 1152 + 3 * 1152 * 6912
    assert m.params == 26 * layer + 262144 * 1152 + 1152 == 999_885_952  # the safetensors total (1 B)
    t = cosim.build_trace(m, "decode", 1, 32768)
    assert t.meta["footprint"]["kv_cache"] == (22 * 512 + 4 * 32768) * 2 * 256 * 2
    # the same with layer_types (transformers >= 4.53 writes them, _sliding_window_pattern beside)
    lt = {**{k: v for k, v in GEMMA3_1B.items() if k != "sliding_window_pattern"}, "_sliding_window_pattern": 6,
          "layer_types": ["full_attention" if (i + 1) % 6 == 0 else "sliding_attention" for i in range(26)]}
    assert model_from_hf_config(_write(tmp_path, lt)).window_layers == 22


@pytest.mark.parametrize("cfg, drop, field", [
    # were loaded: every layer windowed (KV cache at 32k 13.6 MB for 145.8 MB, decode FLOPs -20 %)
    (GEMMA3_1B, "sliding_window_pattern", "layer_types"),
    # were loaded with head_dim = hidden / heads (Gemma-3-1B: 1152 / 4 = 288 for 256)
    (GEMMA3_1B, "head_dim", "head_dim"),
    (QWEN3_30B_A3B, "head_dim", "head_dim"),
    (GPT_OSS_20B, "head_dim", "head_dim"),
    # were loaded as full attention in every layer (transformers' default window: 4096)
    (GEMMA3_1B, "sliding_window", "sliding_window"),
    (GPT_OSS_20B, "layer_types", "layer_types"),
])
def test_fields_left_to_transformers_defaults_are_refused_by_name(tmp_path, cfg, drop, field):
    with pytest.raises(InputError) as e:
        model_from_hf_config(_write(tmp_path, {k: v for k, v in cfg.items() if k != drop}))
    assert f"config.json: {field}: got missing; expected present for model_type" in str(e.value)


def test_gemma3_multimodal_config_saved_text_config_alone_needs_its_head_dim(tmp_path):
    # google/gemma-3-4b-it config.json's text_config omits the class defaults (heads 8, head_dim 256, ...);
    # saved alone as the wrapper's refusal suggests, it was priced with head_dim 2560 / 8 = 320
    sparse = {"model_type": "gemma3_text", "hidden_size": 2560, "intermediate_size": 10240, "num_hidden_layers": 34,
              "num_attention_heads": 8, "num_key_value_heads": 4, "vocab_size": 262208, "sliding_window": 1024,
              "rope_scaling": {"factor": 8.0, "rope_type": "linear"}}
    with pytest.raises(InputError, match="head_dim: got missing"):
        model_from_hf_config(_write(tmp_path, sparse))


MISTRAL_SMALL_24B = {"architectures": ["MistralForCausalLM"], "model_type": "mistral", "hidden_size": 5120,
                     "intermediate_size": 32768, "num_hidden_layers": 40, "num_attention_heads": 32,
                     "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 131072,
                     "max_position_embeddings": 32768, "sliding_window": None, "tie_word_embeddings": False}


@pytest.mark.parametrize("cfg, drop, field, guess", [
    # MistralConfig defaults 8 KV heads, Qwen3-MoE 32 (4 published), gpt-oss 8: never num_attention_heads
    (MISTRAL_SMALL_24B, "num_key_value_heads", "num_key_value_heads", "32 KV heads (MHA) for 8"),
    (QWEN3_30B_A3B, "num_key_value_heads", "num_key_value_heads", "32 KV heads for 4"),
    (QWEN3_30B_A3B, "num_experts_per_tok", "num_experts_per_tok", "top-2 for top-8"),
    (GPT_OSS_20B, "num_experts_per_tok", "num_experts_per_tok", "top-2 for top-4"),
    (QWEN3_30B_A3B, "moe_intermediate_size", "moe_intermediate_size", "experts 6144 wide for 768"),
])
def test_kv_heads_top_k_and_expert_width_left_to_defaults_are_refused(tmp_path, cfg, drop, field, guess):
    # each was loaded with the importer's guess (`guess`), silently
    with pytest.raises(InputError) as e:
        model_from_hf_config(_write(tmp_path, {k: v for k, v in cfg.items() if k != drop}))
    assert f"config.json: {field}: got missing; expected present" in str(e.value)


def test_mistral_small_3_loads_with_the_published_count(tmp_path):
    m = model_from_hf_config(_write(tmp_path, MISTRAL_SMALL_24B))  # mistralai/Mistral-Small-24B-Base-2501
    layer = 5120 * (4096 + 2 * 1024) + 4096 * 5120 + 3 * 5120 * 32768 + 2 * 5120
    assert m.params == 40 * layer + 2 * 131072 * 5120 + 5120
    assert abs(m.params / 23.57e9 - 1) <= 0.005  # model card: 24 B; safetensors 23.57 B


def test_embeddinggemma_bidirectional_attention_is_refused(tmp_path):
    with pytest.raises(InputError, match="use_bidirectional_attention: got True"):
        model_from_hf_config(_write(tmp_path, {**GEMMA3_1B, "use_bidirectional_attention": True}))


def test_gemma3_without_an_activation_key_takes_the_class_default(tmp_path):
    cfg = {k: v for k, v in GEMMA3_1B.items() if k != "hidden_activation"}
    assert model_from_hf_config(_write(tmp_path, cfg)).activation == "gelu_tanh"  # was silu (SwiGLU)


def test_granite_multipliers_are_ops_and_the_count_is_the_published_one():
    m = model_from_hf_config(DATA / "granite3_3_8b.json")
    assert (m.embed_multiplier, m.residual_multiplier, m.logit_scale, m.tie_embeddings) == (12.0, 0.22, 16.0, True)
    # 40 x (q, k, v, o 4096 x (4096 + 2 x 1024) + 4096 x 4096, SwiGLU 3 x 4096 x 12800, 2 norms) + tied 49159 x 4096
    layer = 4096 * (4096 + 2 * 1024) + 4096 * 4096 + 3 * 4096 * 12800 + 2 * 4096
    assert m.params == 40 * layer + 49159 * 4096 + 4096 == 8_170_864_640
    assert abs(m.params / 8.17e9 - 1) <= 0.005  # model card (ibm-granite/granite-3.3-8b-instruct): 8.17 B
    t = cosim.build_trace(m, "decode", 2, 1024)
    ops = {op.name: op for op in t.ops}
    # embeddings x 12, each branch x 0.22 before its residual add, logits / 16: one multiply per element
    assert (ops["embed_scale"].kind, ops["embed_scale"].flops, ops["embed_scale"].repeat) == ("mul", 2 * 4096, 1)
    for name in ("attn_residual_scale", "mlp_residual_scale"):
        assert ops[name].flops == 2 * 4096 and ops[name].repeat == 40
    assert ops["logit_scale"].flops == 2 * 49159
    names = [op.name for op in t.ops]
    assert names.index("attn_residual_scale") + 1 == names.index("attn_residual")
    assert names.index("mlp_residual_scale") + 1 == names.index("mlp_residual")
    # under TP the branch scales follow the residual adds (replicated rows), not left unsharded
    p = cosim.build_trace(m, "decode", 2, 1024, parallel={"tp": 2})
    assert not {"attn_residual_scale", "mlp_residual_scale"} & set(p.meta["parallel"]["unsharded_ops"])


def test_granite_without_the_multiplier_keys_still_runs_them_at_one(tmp_path):
    cfg = json.loads((DATA / "granite3_3_8b.json").read_text())
    for k in ("embedding_multiplier", "residual_multiplier", "logits_scaling"):
        cfg.pop(k)
    m = model_from_hf_config(_write(tmp_path, cfg))  # GraniteConfig's defaults 1.0: the multiplies still run
    assert (m.embed_multiplier, m.residual_multiplier, m.logit_scale) == (1.0, 1.0, 1.0)
