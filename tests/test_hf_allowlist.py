"""Issue 11 item 6: the Hugging Face importer models an allow-list of architectures and
refuses every other model_type by name (an unknown type with Llama-like keys used to be
counted as a Llama); multimodal towers are refused, not dropped; a sliding window wider
than the context is dropped; linear rope scaling without an original length does not
multiply the context."""

import json

import pytest

from workloads.io import InputError
from workloads.models import MODELLED_TYPES, model_from_hf_config

ACCEPTED = ("deepseek_v2, deepseek_v3, gemma, gemma2, gemma3_text, gpt_oss, granite, llama, llama4_text, mistral, "
            "mixtral, olmo2, phi3, qwen2, qwen2_moe, qwen3, qwen3_moe")


def _write(tmp_path, cfg: dict):
    p = tmp_path / "config.json"
    p.write_text(json.dumps(cfg))
    return p


# the fields of the public config.json files that matter here (values as published)
ERNIE_21B = {"model_type": "ernie4_5_moe", "hidden_size": 2560, "intermediate_size": 12288, "num_hidden_layers": 28,
             "num_attention_heads": 20, "num_key_value_heads": 4, "vocab_size": 103424,
             "max_position_embeddings": 131072, "moe_num_experts": 64, "moe_k": 6, "moe_intermediate_size": 1536,
             "moe_num_shared_experts": 2, "moe_layer_start_index": 1, "tie_word_embeddings": True}
PHI2 = {"model_type": "phi", "hidden_size": 2560, "intermediate_size": 10240, "num_hidden_layers": 32,
        "num_attention_heads": 32, "vocab_size": 51200, "max_position_embeddings": 2048, "hidden_act": "gelu_new",
        "tie_word_embeddings": False}
MINIMAX = {"model_type": "minimax", "hidden_size": 6144, "intermediate_size": 9216, "num_hidden_layers": 80,
           "num_attention_heads": 64, "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 200064,
           "num_local_experts": 32, "num_experts_per_tok": 2, "attn_type_list": [0] * 7 + [1],
           "tie_word_embeddings": False}


@pytest.mark.parametrize("cfg", [
    ERNIE_21B, PHI2, MINIMAX,
    {**PHI2, "model_type": "gpt_neox"}, {**PHI2, "model_type": "starcoder2"}, {**PHI2, "model_type": "falcon"},
    {**PHI2, "model_type": "qwen2_vl_text"}, {**PHI2, "model_type": "qwen2_5_vl_text"},
    {**PHI2, "model_type": "mllama"}, {**PHI2, "model_type": "granitemoehybrid"}, {**PHI2, "model_type": "mamba"},
], ids=lambda c: c["model_type"])
def test_a_model_type_outside_the_allow_list_is_refused_naming_it_and_the_list(tmp_path, cfg):
    p = _write(tmp_path, cfg)
    with pytest.raises(InputError) as e:
        model_from_hf_config(p)
    assert str(e.value) == (f"{p}: model_type: got {cfg['model_type']!r}; expected one of the architectures the "
                            f"importer models: {ACCEPTED} (others are refused rather than counted as a Llama)")


def test_a_config_without_model_type_is_refused(tmp_path):
    cfg = {k: v for k, v in PHI2.items() if k != "model_type"}
    with pytest.raises(InputError, match=r"config\.json: model_type: got missing; expected one of the architectures"):
        model_from_hf_config(_write(tmp_path, cfg))


def test_the_allow_list_is_the_types_with_a_known_tie_default():
    # every accepted type has a tie_word_embeddings default, so a config leaving it out is never guessed
    assert ", ".join(MODELLED_TYPES) == ACCEPTED


# microsoft/Phi-4-mini-instruct config.json: the fields the importer reads (the 48-entry longrope
# factor vectors are left out: they set frequencies, not FLOPs or bytes)
PHI4_MINI = {"architectures": ["Phi3ForCausalLM"], "model_type": "phi3", "hidden_size": 3072,
             "intermediate_size": 8192, "num_hidden_layers": 32, "num_attention_heads": 24, "num_key_value_heads": 8,
             "vocab_size": 200064, "max_position_embeddings": 131072, "original_max_position_embeddings": 4096,
             "partial_rotary_factor": 0.75, "rope_scaling": {"type": "longrope"}, "sliding_window": 262144,
             "hidden_act": "silu", "attention_bias": False, "mlp_bias": False, "tie_word_embeddings": True,
             "torch_dtype": "bfloat16"}


def test_phi4_mini_loads_with_its_too_wide_window_dropped_and_the_published_count(tmp_path):
    m = model_from_hf_config(_write(tmp_path, PHI4_MINI))
    # was refused: "sliding_window: got 262144; expected at most max_context (131072)"
    assert m.sliding_window is None and m.window_layers == 0 and m.max_context == 131072
    # 32 x (3072 x (3072 + 2 x 1024 + 3072) + 3 x 3072 x 8192 + 2 x 3072) + 200064 x 3072 (tied) + 3072
    per_layer = 3072 * (3072 + 2 * 1024 + 3072) + 3 * 3072 * 8192 + 2 * 3072
    assert m.params == 32 * per_layer + 200064 * 3072 + 3072 == 3_836_021_760  # the published total


def test_a_window_narrower_than_the_context_is_kept(tmp_path):
    m = model_from_hf_config(_write(tmp_path, {**PHI4_MINI, "sliding_window": 2047}))
    assert m.sliding_window == 2047 and m.window_layers == 32


# google/gemma-3-27b-it config.json's text_config (the fields the importer reads)
GEMMA3_27B_TEXT = {"model_type": "gemma3_text", "hidden_size": 5376, "intermediate_size": 21504,
                   "num_hidden_layers": 62, "num_attention_heads": 32, "num_key_value_heads": 16, "head_dim": 128,
                   "vocab_size": 262208, "max_position_embeddings": 131072, "sliding_window": 1024,
                   "sliding_window_pattern": 6, "rope_scaling": {"factor": 8.0, "rope_type": "linear"},
                   "hidden_activation": "gelu_pytorch_tanh"}


def test_gemma3_linear_rope_keeps_the_stated_context(tmp_path):
    m = model_from_hf_config(_write(tmp_path, GEMMA3_27B_TEXT))
    assert m.max_context == 131072  # was 131,072 x 8 = 1,048,576
    assert m.window_layers == 62 - 62 // 6 == 52 and m.tie_embeddings and m.qk_norm and m.norms_per_layer == 4


@pytest.mark.parametrize("cfg, field", [
    ({"model_type": "gemma3", "text_config": GEMMA3_27B_TEXT,
      "vision_config": {"model_type": "siglip_vision_model", "hidden_size": 1152, "num_hidden_layers": 27}},
     "vision_config"),
    # Qwen2.5-VL keeps the text fields at the top level, beside its vision_config
    ({**{k: v for k, v in GEMMA3_27B_TEXT.items() if k != "rope_scaling"}, "model_type": "qwen2_5_vl",
      "vision_config": {"depth": 32, "hidden_size": 1280}}, "vision_config"),
    ({"model_type": "phi4mm", "text_config": PHI4_MINI, "audio_config": {"num_blocks": 24}}, "audio_config"),
])
def test_a_multimodal_config_is_refused_naming_its_other_tower(tmp_path, cfg, field):
    p = _write(tmp_path, cfg)
    with pytest.raises(InputError) as e:
        model_from_hf_config(p)
    assert str(e.value).startswith(f"{p}: {field}: got {{") and "only the text decoder is modelled" in str(e.value)


def test_the_text_model_alone_loads_as_its_own_text_config(tmp_path):
    m = model_from_hf_config(_write(tmp_path, {"model_type": "gemma3", "text_config": GEMMA3_27B_TEXT}))
    assert m.layers == 62 and m.max_context == 131072


@pytest.mark.parametrize("change, message", [
    ({"num_key_value_heads": 0}, "text_config.num_key_value_heads: got 0;"),
    ({"model_type": "minimax"}, "text_config.model_type: got 'minimax';"),
    ({"hidden_act": "relu2"}, "text_config.hidden_act: got 'relu2';"),
    ({"vocab_size": None}, "text_config.vocab_size: got missing;"),
    ({"rope_scaling": {"rope_type": "yarn", "factor": 1e9}}, "text_config.rope_scaling.factor: got 1000000000.0;"),
])
def test_errors_inside_text_config_are_prefixed(tmp_path, change, message):
    text = {k: v for k, v in {**GEMMA3_27B_TEXT, **change}.items() if v is not None}
    p = _write(tmp_path, {"model_type": "gemma3", "text_config": text})
    with pytest.raises(InputError) as e:
        model_from_hf_config(p)
    assert str(e.value).startswith(f"{p}: {message}")
