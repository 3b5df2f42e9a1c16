"""Hugging Face config.json import: every field that changes FLOPs, bytes or memory is
modelled or refused. Fixtures are the public config.json files (tests/data/hf_configs);
parameter counts are pinned to the published ones (model cards / safetensors totals)."""

import dataclasses
import json
from pathlib import Path

import pytest

import cosim
from workloads.io import InputError
from tests.hf_edit import write_config as _write
from workloads.models import model_from_hf_config

DATA = Path(__file__).parent / "data" / "hf_configs"

# published parameter counts: safetensors totals on the model cards (DeepSeek: the papers'
# 236 B and 671 B main-model figures; the V3 MTP module is counted separately)
PUBLISHED = {
    "gemma2_9b": 9_241_705_984,  # tied embeddings, 4 norms per layer
    "phi3_mini_4k": 3_821_079_552,
    "qwen2_5_7b": 7_615_616_512,  # q/k/v biases
    "qwen2_5_0_5b": 494_032_768,  # tied embeddings
    "mixtral_8x7b": 46_702_792_704,
    "deepseek_v2": 236e9,
    "deepseek_v3": 671e9,
    "llama3_1_8b": 8_030_261_248,
    "llama3_2_1b": 1_235_814_400,  # tied embeddings
    "qwen3_8b": 8_190_735_360,  # per-head q/k RMSNorm
    "olmo2_1124_7b": 7.30e9,  # model card (allenai/OLMo-2-1124-7B): 7.3 B; q/k norms over whole projections
    "gemma_7b": 8.54e9,  # model card (google/gemma-7b): 8.54 B; tied embeddings, head_dim 256
    "qwen1_5_moe_a2_7b": 14.3e9,  # model card (Qwen/Qwen1.5-MoE-A2.7B): 14.3 B; shared-expert gate
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_count_matches_the_published_one(name):
    m = model_from_hf_config(DATA / f"{name}.json")
    assert abs(m.params / PUBLISHED[name] - 1) <= 0.005, (name, m.params)


def test_gemma2_fields_are_modelled():
    m = model_from_hf_config(DATA / "gemma2_9b.json")
    assert m.tie_embeddings and m.activation == "gelu_tanh" and m.norms_per_layer == 4
    assert m.sliding_window == 4096 and m.window_layers == 21  # every other one of 42 layers
    assert (m.attn_softcap, m.logit_softcap) == (50.0, 30.0)
    # untied it would be 256000 x 3584 = 917.5 M parameters more (the 10.16 B of issue 11)
    assert m.params + m.vocab * m.hidden == pytest.approx(10.159e9, rel=1e-3)
    t = cosim.build_trace(m, "decode", 1, 8192)
    att = {op.name: op for op in t.ops if op.kind == "attention"}
    assert att["attention_local"].repeat == 21 and att["attention_local"].dims["kv_len"] == 4096
    assert att["attention"].repeat == 21 and att["attention"].dims["kv_len"] == 8192
    kinds = {op.name: op.kind for op in t.ops}
    assert kinds["act"] == "gelu_mul" and kinds["logit_softcap"] == "softcap"
    assert "attn_post_norm" in kinds and "mlp_post_norm" in kinds
    # KV cache: 21 layers hold 4096 tokens, 21 hold 8192; 2 x 8 heads x 256 x 2 B per layer-token
    assert t.meta["footprint"]["kv_cache"] == (21 * 4096 + 21 * 8192) * 2 * 8 * 256 * 2
    # soft-capped scores: 2(d + dv) + 3 FLOPs per attended pair
    a = att["attention"]
    assert a.flops == 16 * 8192 * (2 * 512 + 3)


def test_qwen3_qk_norm_and_deepseek_v3_extras():
    q = model_from_hf_config(DATA / "qwen3_8b.json")
    assert q.qk_norm and not q.tie_embeddings
    names = [op.name for op in cosim.build_trace(q, "decode", 1, 128).ops]
    assert "q_norm" in names and "k_norm" in names
    d = model_from_hf_config(DATA / "deepseek_v3.json")
    assert d.moe.first_dense_layers == 3 and d.moe.shared_experts == 1 and d.mla.kv_lora_rank == 512
    assert d.router_bias and d.mtp_layers == 1 and d.rope_scaling == "yarn"
    assert d.mtp_params == pytest.approx(11.6e9, rel=0.01)  # DeepSeek: 11.5 B unique MTP parameters


def test_llama3_rope_scaling_and_qwen2_bias_are_read():
    assert model_from_hf_config(DATA / "llama3_1_8b.json").rope_scaling == "llama3"
    m = model_from_hf_config(DATA / "qwen2_5_7b.json")
    assert m.qkv_bias and not m.o_bias and m.sliding_window is None  # use_sliding_window false


@pytest.mark.parametrize("base, changes, field", [
    ("llama3_1_8b", {"model_type": "mllama"}, "model_type"),  # llama4_text is modelled since session 15
    ("llama3_1_8b", {"model_type": "mamba"}, "model_type"),
    ("llama3_1_8b", {"hidden_act": "relu2"}, "hidden_act"),
    ("llama3_1_8b", {"attention_chunk_size": 8192}, "attention_chunk_size"),
    ("mixtral_8x7b", {"decoder_sparse_step": 2}, "decoder_sparse_step"),
    ("llama3_1_8b", {"layer_types": ["linear_attention"] * 32}, "layer_types"),
    ("llama3_1_8b", {"model_type": "newarch", "-tie_word_embeddings": None}, "model_type"),
])
def test_unmodelled_fields_are_refused_with_the_field_named(tmp_path, base, changes, field):
    with pytest.raises(InputError) as e:
        model_from_hf_config(_write(tmp_path, base, **changes))
    assert f"{field}:" in str(e.value) and "config.json" in str(e.value)


def test_gemma_without_the_tie_key_uses_the_gemma_default(tmp_path):
    m = model_from_hf_config(_write(tmp_path, "gemma2_9b", **{"-tie_word_embeddings": None}))
    assert m.tie_embeddings


def test_olmo2_normalises_whole_q_and_k_projections():
    """Olmo2Attention's q_norm / k_norm span heads x head_dim and kv_heads x head_dim (Qwen3's span one head)."""
    m = model_from_hf_config(DATA / "olmo2_1124_7b.json")
    assert m.qk_norm and not m.qk_norm_per_head and m.norms_per_layer == 2
    # per layer: q, k, v, o 4 x 4096^2; q/k norm weights 4096 + 4096; MLP 3 x 4096 x 11008; 2 norms of 4096
    layer = 4 * 4096 ** 2 + 2 * 4096 + 3 * 4096 * 11008 + 2 * 4096
    assert m.params == 32 * layer + 2 * 100352 * 4096 + 4096 == 7_298_617_344
    ops = {op.name: op for op in cosim.build_trace(m, "decode", 2, 128).ops}
    assert ops["q_norm"].dims == {"rows": 2, "cols": 4096} and ops["q_norm"].inputs[-1].shape == (4096,)
    q3 = {op.name: op for op in cosim.build_trace(model_from_hf_config(DATA / "qwen3_8b.json"), "decode", 2, 128).ops}
    assert q3["q_norm"].dims == {"rows": 2 * 32, "cols": 128} and q3["q_norm"].inputs[-1].shape == (128,)


def test_gemma1_uses_the_tanh_gelu_its_config_misnames():
    """Gemma 1.0 configs say hidden_act "gelu" without hidden_activation; the model is GeGLU with tanh-GELU."""
    m = model_from_hf_config(DATA / "gemma_7b.json")
    assert m.activation == "gelu_tanh" and m.tie_embeddings and m.head_dim == 256
    layer = 4 * 3072 * 4096 + 3 * 3072 * 24576 + 2 * 3072  # q/k/v/o are 3072 x (16 x 256)
    assert m.params == 28 * layer + 256000 * 3072 + 3072 == 8_537_680_896


def test_gemma1_with_hidden_activation_set_reads_it(tmp_path):
    cfg = json.loads((DATA / "gemma_7b.json").read_text())
    cfg["hidden_activation"] = "gelu"
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    assert model_from_hf_config(tmp_path / "config.json").activation == "gelu"


def test_qwen2_moe_shared_expert_gate_is_counted_and_emitted():
    m = model_from_hf_config(DATA / "qwen1_5_moe_a2_7b.json")
    assert m.moe.shared_expert_gate
    # one 2048 -> 1 Linear per MoE layer: 24 x 2048 parameters
    assert m.params - dataclasses.replace(m, moe=dataclasses.replace(m.moe, shared_expert_gate=False)).params == 24 * 2048
    assert m.params == cosim.load_model("qwen1_5_moe_a2_7b").params == 14_315_784_192
    t = cosim.build_trace(m, "decode", 4, 128)
    ops = {op.name: op for op in t.ops}
    assert ops["moe_shared_gate"].dims == {"m": 4, "n": 1, "k": 2048} and ops["moe_shared_gate"].repeat == 24
    assert ops["moe_shared_gate_mul"].dims == {"rows": 4, "cols": 2048}
    for layout in ({"tp": 2}, {"tp": 2, "ep": 2}):  # replicated, never left unsharded silently
        pt = cosim.build_trace(m, "decode", 4, 128, parallel=layout)
        assert not set(pt.meta["parallel"]["unsharded_ops"]) & {"moe_shared_gate", "moe_shared_gate_mul"}


def test_deepseek_v3_counts_the_q_a_layernorm():
    d = model_from_hf_config(DATA / "deepseek_v3.json")
    # the main model's published total (671 B) to the parameter: q_a_layernorm adds 61 x 1536
    assert d.params == 671_026_419_200
    assert "q_a_norm" in {op.name for op in cosim.build_trace(d, "decode", 1, 128).ops}


def test_shared_expert_gate_without_a_shared_expert_is_refused(tmp_path):
    y = tmp_path / "m.yaml"
    y.write_text("hidden: 64\nlayers: 2\nheads: 4\nintermediate: 0\nvocab: 100\n"
                 "moe: {num_experts: 4, top_k: 2, expert_intermediate: 32, shared_expert_gate: true}\n")
    with pytest.raises(InputError, match="moe.shared_expert_gate"):
        cosim.load_model(str(y))


def test_per_head_qk_norms_split_with_the_heads_under_tp():
    q = model_from_hf_config(DATA / "qwen3_8b.json")  # 32 query heads, 8 KV heads
    t = cosim.build_trace(q, "decode", 2, 128, parallel={"tp": 4})
    ops = {op.name: op for op in t.ops}
    assert ops["q_norm"].dims["rows"] == 2 * 8 and ops["k_norm"].dims["rows"] == 2 * 2
    assert "q_norm" not in t.meta["parallel"]["unsharded_ops"]
    # OLMo-2's whole-projection norms need the full q / k: as vLLM's Olmo2, each rank all-gathers the q and k
    # column shards before the norms and normalises the whole projection (the norms stay whole, no longer
    # listed as unsharded). OLMo-2-7B at TP 2, decode batch 2: q and k are 2 tokens x 4096 (32 heads x 128,
    # MHA) x 2 B (bf16) = 16 KiB gathered, each rank sending its 2 x 2048 x 2 B = 8 KiB, once per layer (32)
    from hwmodels.collectives import message_bytes
    o = cosim.build_trace(model_from_hf_config(DATA / "olmo2_1124_7b.json"), "decode", 2, 128, parallel={"tp": 2})
    names = [op.name for op in o.ops]
    assert names.index("q_allgather") + 1 == names.index("q_norm") and names.index("k_allgather") + 1 == names.index("k_norm")
    ops = {op.name: op for op in o.ops}
    for g in ("q_allgather", "k_allgather"):
        op = ops[g]
        assert op.kind == "allgather" and op.dims["ranks"] == 2 and op.repeat == 32 and op.outputs[0].fmt == "bf16"
        assert op.outputs[0].nbytes == 2 * 4096 * 2 == 16384 and op.inputs[0].nbytes == 8192
    assert ops["q_norm"].dims["rows"] == 2 and ops["q_norm"].dims["cols"] == 4096
    assert not {"q_norm", "k_norm"} & set(o.meta["parallel"]["unsharded_ops"])
    assert message_bytes(ops["q_allgather"]) == message_bytes(ops["k_allgather"]) == 16384  # the nccl-tests buffer
