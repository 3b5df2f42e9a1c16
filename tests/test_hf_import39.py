"""Session 39 review of the Hugging Face importer: transformers 5 configs (rope_parameters, Qwen3-MoE's
num_local_experts), partial_rotary_factor, Qwen's opt-in sliding window, Qwen2-MoE's qkv_bias, and two
class defaults. Configs are the public config.json fields that matter here, values as published."""

import json

import pytest

from workloads.builder import build_trace
from workloads.io import InputError
from workloads.models import model_from_hf_config
from tests.test_hf_allowlist import PHI4_MINI  # Phi-4-mini-instruct's config.json, the fields read

# Qwen/Qwen2.5-7B-Instruct config.json; its model card documents YaRN x4 over 32,768 positions
QWEN25_7B = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 3584,
             "intermediate_size": 18944, "num_hidden_layers": 28, "num_attention_heads": 28,
             "num_key_value_heads": 4, "vocab_size": 152064, "max_position_embeddings": 32768,
             "max_window_layers": 28, "sliding_window": 131072, "use_sliding_window": False,
             "tie_word_embeddings": False, "hidden_act": "silu", "torch_dtype": "bfloat16"}
YARN4 = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}
# Qwen/Qwen3-30B-A3B-Thinking-2507 saved by transformers 5.7: num_local_experts, no num_experts
QWEN3_30B_A3B_TF5 = {"architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe", "hidden_size": 2048,
                     "intermediate_size": 6144, "moe_intermediate_size": 768, "num_hidden_layers": 48,
                     "num_attention_heads": 32, "num_key_value_heads": 4, "head_dim": 128,
                     "num_local_experts": 128, "num_experts_per_tok": 8, "decoder_sparse_step": 1,
                     "mlp_only_layers": [], "vocab_size": 151936, "max_position_embeddings": 262144,
                     "max_window_layers": 48, "use_sliding_window": False, "sliding_window": None,
                     "tie_word_embeddings": False, "hidden_act": "silu", "dtype": "bfloat16",
                     "rope_parameters": {"rope_theta": 10000000, "rope_type": "default"},
                     "transformers_version": "5.7.0"}
# Qwen/Qwen2-57B-A14B config.json
QWEN2_57B = {"architectures": ["Qwen2MoeForCausalLM"], "model_type": "qwen2_moe", "hidden_size": 3584,
             "intermediate_size": 18944, "moe_intermediate_size": 2560, "shared_expert_intermediate_size": 20480,
             "num_hidden_layers": 28, "num_attention_heads": 28, "num_key_value_heads": 4, "num_experts": 64,
             "num_experts_per_tok": 8, "decoder_sparse_step": 1, "vocab_size": 151936,
             "max_position_embeddings": 131072, "max_window_layers": 28, "sliding_window": 131072,
             "use_sliding_window": False, "tie_word_embeddings": False, "hidden_act": "silu",
             "torch_dtype": "bfloat16"}
# Qwen/Qwen3-0.6B config.json
QWEN3_06B = {"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "hidden_size": 1024,
             "intermediate_size": 3072, "num_hidden_layers": 28, "num_attention_heads": 16, "num_key_value_heads": 8,
             "head_dim": 128, "vocab_size": 151936, "max_position_embeddings": 40960, "max_window_layers": 28,
             "sliding_window": None, "use_sliding_window": False, "tie_word_embeddings": True, "hidden_act": "silu"}
# google/gemma-3-27b-it's text_config (it states no max_position_embeddings) with vocab_size and the pattern
GEMMA3_27B_TEXT = {"model_type": "gemma3_text", "hidden_size": 5376, "intermediate_size": 21504,
                   "num_hidden_layers": 62, "num_attention_heads": 32, "num_key_value_heads": 16, "head_dim": 128,
                   "vocab_size": 262208, "sliding_window": 1024, "sliding_window_pattern": 6,
                   "rope_scaling": {"factor": 8.0, "rope_type": "linear"}}


def _load(tmp_path, cfg):
    p = tmp_path / "config.json"
    p.write_text(json.dumps(cfg))
    return model_from_hf_config(p), p


def _refused(tmp_path, cfg) -> tuple:
    p = tmp_path / "config.json"
    p.write_text(json.dumps(cfg))
    with pytest.raises(InputError) as e:
        model_from_hf_config(p)
    return str(e.value), p


# ---------------------------------------------------------------- 1: rope_parameters (transformers 5)

def test_rope_parameters_extend_the_context_as_rope_scaling_does(tmp_path):
    """YaRN x4 over original_max_position_embeddings 32,768: 4 x 32,768 = 131,072 positions, whichever key."""
    v4, _ = _load(tmp_path, {**QWEN25_7B, "rope_scaling": {"type": "yarn", "factor": 4.0,
                                                           "original_max_position_embeddings": 32768}})
    v5, _ = _load(tmp_path, {**QWEN25_7B, "rope_parameters": {**YARN4, "rope_theta": 1000000.0}})
    assert v4.max_context == v5.max_context == 131_072  # v5 was 32,768 (rope_parameters ignored)
    assert v4.rope_scaling == v5.rope_scaling == "yarn" and v4.params == v5.params
    plain, _ = _load(tmp_path, {**QWEN25_7B, "rope_parameters": {"rope_type": "default", "rope_theta": 1e6}})
    assert plain.max_context == 32_768 and plain.rope_scaling is None  # "default": no scaling


def test_a_per_layer_type_rope_parameters_uses_the_full_attention_entry(tmp_path):
    """Gemma-3 in transformers 5: linear x8 on the global layers, plain RoPE on the local ones; a linear
    entry without an original length keeps the stated 131,072 positions."""
    text = {k: v for k, v in GEMMA3_27B_TEXT.items() if k != "rope_scaling"}
    rp = {"full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1e6},
          "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}}
    m, _ = _load(tmp_path, {**text, "max_position_embeddings": 131072, "rope_parameters": rp})
    assert m.max_context == 131_072 and m.rope_scaling == "linear"
    msg, p = _refused(tmp_path, {**text, "rope_parameters": {**rp, "sliding_attention": {"rope_type": "yarnn"}}})
    assert msg.startswith(f"{p}: rope_parameters.sliding_attention.rope_type: got 'yarnn';")


@pytest.mark.parametrize("rp, message", [
    ({"rope_type": "yarnn", "factor": 4.0}, "rope_parameters.rope_type: got 'yarnn'; expected one of default, "
                                            "linear, dynamic, yarn, longrope, llama3 (transformers' rope types) "
                                            "(did you mean 'yarn'?)"),
    ({"rope_type": "yarn", "factor": "4"}, "rope_parameters.factor: got '4'; expected a number >= 1"),
    ({"rope_type": "yarn", "factor": 1e12}, "rope_parameters.factor: got 1000000000000.0; expected a factor keeping "
                                            "the context"),
    ("yarn", "rope_parameters: got 'yarn'; expected a mapping with rope_type and its factor"),
])
def test_a_malformed_rope_parameters_is_refused_by_name(tmp_path, rp, message):
    msg, p = _refused(tmp_path, {**QWEN25_7B, "rope_parameters": rp})
    assert msg.startswith(f"{p}: {message}")


def test_rope_scaling_and_rope_parameters_disagreeing_are_refused_naming_both(tmp_path):
    same = {**QWEN25_7B, "rope_scaling": {"type": "yarn", "factor": 4, "original_max_position_embeddings": 32768},
            "rope_parameters": {**YARN4, "rope_theta": 1e6}}
    assert _load(tmp_path, same)[0].max_context == 131_072  # theta is not compared (not modelled)
    msg, p = _refused(tmp_path, {**same, "rope_parameters": {**YARN4, "factor": 2.0}})
    assert msg.startswith(f"{p}: rope_parameters: got {{") and "as rope_scaling ({" in msg


# ---------------------------------------------------------------- 2: Qwen3-MoE num_local_experts

def test_qwen3_moe_saved_by_transformers5_reads_num_local_experts(tmp_path):
    """Qwen3-30B-A3B: 30,532,122,624, the transformers 4 file's count (num_experts 128) and the published 30.5 B.
    The 128 experts alone: 48 layers x 128 x 3 x 2048 x 768 = 28,991,029,248, so 64 experts would miss 14.5 B."""
    m, _ = _load(tmp_path, QWEN3_30B_A3B_TF5)  # was "num_experts: got missing"
    assert m.moe.num_experts == 128 and m.params == 30_532_122_624
    v4 = {k: v for k, v in QWEN3_30B_A3B_TF5.items() if k != "num_local_experts"}
    assert _load(tmp_path, {**v4, "num_experts": 128})[0].params == m.params
    msg, p = _refused(tmp_path, {**QWEN3_30B_A3B_TF5, "num_experts": 64})
    assert msg.startswith(f"{p}: num_local_experts: got 128; expected the same as num_experts (64)")
    msg, p = _refused(tmp_path, {**QWEN3_30B_A3B_TF5, "num_local_experts": 4})
    assert msg.startswith(f"{p}: num_local_experts: got 4; expected at least num_experts_per_tok (8)")


# ---------------------------------------------------------------- 3: partial_rotary_factor

def _rope_flops(m) -> float:
    (op,) = [o for o in build_trace(m, phase="decode", batch=1, seq=2048).ops if o.kind == "rope"]
    return op.flops * op.repeat


def test_phi4_mini_rope_turns_three_quarters_of_each_head(tmp_path):
    """Phi-4-mini: 24 q + 8 kv heads of head_dim 128, 32 layers, rope 3 FLOPs per element, one decode token.
    Full width: (24 + 8) x 128 = 4,096 elements x 3 x 32 layers = 393,216 FLOPs. At 0.75: rotary dims
    int(128 x 0.75) = 96, (24 + 8) x 96 = 3,072 elements x 3 x 32 = 294,912 = 0.75 x 393,216."""
    m, _ = _load(tmp_path, PHI4_MINI)
    full, _ = _load(tmp_path, {k: v for k, v in PHI4_MINI.items() if k != "partial_rotary_factor"})
    assert m.rotary_fraction == 0.75 and m.rotary_dim == 96 and full.rotary_dim == 128
    assert _rope_flops(full) == 393_216 and _rope_flops(m) == 294_912 == 0.75 * 393_216
    assert m.params == full.params == 3_836_021_760  # RoPE has no weights
    quarter, _ = _load(tmp_path, {**PHI4_MINI, "partial_rotary_factor": 0.25})
    assert _rope_flops(quarter) == (24 + 8) * 32 * 3 * 32 == 98_304  # int(128 x 0.25) = 32 dims
    # transformers 5 keeps the factor inside rope_parameters
    v5 = {k: v for k, v in PHI4_MINI.items() if k not in ("partial_rotary_factor", "rope_scaling")}
    m5, _ = _load(tmp_path, {**v5, "rope_parameters": {"rope_type": "longrope", "partial_rotary_factor": 0.75}})
    assert m5.rotary_fraction == 0.75 and _rope_flops(m5) == 294_912


def test_a_tensor_parallel_rank_turns_its_heads_rotary_dims(tmp_path):
    """At TP 2 a rank holds 12 q + 4 kv heads: (12 + 4) x 96 = 1,536 columns (it re-split at full width, 2,048)."""
    m, _ = _load(tmp_path, PHI4_MINI)
    (op,) = [o for o in build_trace(m, phase="decode", batch=1, seq=2048, parallel={"tp": 2}).ops if o.kind == "rope"]
    assert op.dims["cols"] == 1_536


@pytest.mark.parametrize("change, message", [
    ({"partial_rotary_factor": 0}, "partial_rotary_factor: got 0; expected a number in (0, 1]"),
    ({"partial_rotary_factor": 1.5}, "partial_rotary_factor: got 1.5; expected a number in (0, 1]"),
    ({"partial_rotary_factor": "0.75"}, "partial_rotary_factor: got '0.75'; expected a number in (0, 1]"),
    ({"partial_rotary_factor": 0.7}, "partial_rotary_factor: got 0.7; expected a factor giving an even rotary "
                                     "width of at least 2 (head_dim 128 x 0.7 = 89.6 dims)"),
    ({"rope_scaling": None, "rope_parameters": {"rope_type": "default", "partial_rotary_factor": 0.5}},
     "rope_parameters.partial_rotary_factor: got 0.5; expected the same as partial_rotary_factor (0.75)"),
])
def test_a_bad_partial_rotary_factor_is_refused_by_name(tmp_path, change, message):
    msg, p = _refused(tmp_path, {**PHI4_MINI, **change})
    assert msg.startswith(f"{p}: {message}")


# ---------------------------------------------------------------- 4-6: Qwen window, qkv_bias, class defaults

def test_qwen_sliding_window_without_use_sliding_window_is_not_applied(tmp_path):
    """Qwen3Config defaults use_sliding_window to false and then ignores sliding_window."""
    cfg = {k: v for k, v in QWEN3_06B.items() if k != "use_sliding_window"}
    m, p = _load(tmp_path, {**cfg, "sliding_window": 4096})  # was a 4,096-token window on all 28 layers
    assert m.sliding_window is None and m.window_layers == 0
    assert any("sliding_window 4,096 ignored: use_sliding_window is absent" in n for n in m.import_notes)
    stated, _ = _load(tmp_path, {**cfg, "sliding_window": 4096, "use_sliding_window": True, "max_window_layers": 0})
    assert stated.sliding_window == 4096 and stated.window_layers == 28  # a stated flag is read as before


def test_qwen2_moe_qkv_bias_false_drops_the_qkv_biases(tmp_path):
    """Qwen2-57B-A14B: q 28 x 128 = 3,584 and k, v 4 x 128 = 512 each: 4,608 biases x 28 layers = 129,024."""
    on, _ = _load(tmp_path, QWEN2_57B)
    off, _ = _load(tmp_path, {**QWEN2_57B, "qkv_bias": False})
    assert on.qkv_bias and not off.qkv_bias and on.params - off.params == 28 * (3584 + 2 * 512) == 129_024
    assert on.params == 57_408_658_944
    msg, p = _refused(tmp_path, {**QWEN2_57B, "qkv_bias": "no"})
    assert msg.startswith(f"{p}: qkv_bias: got 'no'; expected true or false")


def test_kv_heads_not_dividing_heads_names_num_key_value_heads(tmp_path):
    msg, p = _refused(tmp_path, {**QWEN3_06B, "num_key_value_heads": 5})
    assert msg.startswith(f"{p}: num_key_value_heads: got 5; expected a divisor of heads (num_attention_heads 16)")


def test_gemma3_text_without_max_position_embeddings_gets_the_class_default(tmp_path):
    m, _ = _load(tmp_path, GEMMA3_27B_TEXT)  # was max_context None
    assert m.max_context == 131_072  # Gemma3TextConfig's max_position_embeddings; linear x8 keeps it
    assert any("max_position_embeddings absent: Gemma3TextConfig's default 131,072" in n for n in m.import_notes)
