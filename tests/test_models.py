import json

import pytest

from workloads.io import InputError
from workloads.models import list_models, load_model, model_from_hf_config


def test_llama2_7b_has_6_74b_params():
    m = load_model("llama2_7b")
    assert m.params / 1e9 == pytest.approx(6.74, abs=0.005)
    # layers + LM head (what a decode step streams): 6.61 B
    assert (m.layer_params() + m.lm_head_params()) / 1e9 == pytest.approx(6.61, abs=0.005)


@pytest.mark.parametrize("name,billions,tol", [
    ("llama2_13b", 13.0, 0.05), ("llama2_70b", 69.0, 0.05), ("llama3_8b", 8.03, 0.01),
    ("llama3_70b", 70.6, 0.05), ("mistral_7b", 7.24, 0.01), ("qwen2_5_7b", 7.62, 0.01),
    ("mixtral_8x7b", 46.7, 0.05), ("qwen1_5_moe_a2_7b", 14.3, 0.05), ("deepseek_v2_lite", 15.7, 0.05),
])
def test_published_parameter_counts(name, billions, tol):
    # published totals: Llama-2 paper; model cards (Mixtral 46.7B, Qwen1.5-MoE 14.3B, DeepSeek-V2-Lite 15.7B)
    assert load_model(name).params / 1e9 == pytest.approx(billions, abs=tol)


def test_active_params_of_moe():
    assert load_model("mixtral_8x7b").active_params_per_token() / 1e9 == pytest.approx(12.9, abs=0.05)  # "12.9B active"
    assert load_model("qwen1_5_moe_a2_7b").active_params_per_token() / 1e9 == pytest.approx(2.7, abs=0.05)


def test_kv_bytes_per_token():
    assert load_model("llama2_7b").kv_bytes_per_token("bf16") == 524_288  # 2*32 layers*4096*2 B
    assert load_model("llama3_8b").kv_bytes_per_token("bf16") == 131_072  # 2*32*8 heads*128*2 B
    # MLA caches the 512-d latent plus the 64-d rope key per layer: (512+64)*27*2 B
    assert load_model("deepseek_v2_lite").kv_bytes_per_token("bf16") == 31_104


def test_hf_config_roundtrip(tmp_path):
    cfg = {"architectures": ["MixtralForCausalLM"], "model_type": "mixtral", "hidden_size": 4096,
           "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
           "intermediate_size": 14336, "vocab_size": 32000, "num_local_experts": 8, "num_experts_per_tok": 2}
    p = tmp_path / "config.json"
    p.write_text(json.dumps(cfg))
    m = model_from_hf_config(p)
    assert m.params == load_model("mixtral_8x7b").params
    ds = {"model_type": "deepseek_v2", "hidden_size": 2048, "num_hidden_layers": 27, "num_attention_heads": 16,
          "num_key_value_heads": 16, "intermediate_size": 10944, "vocab_size": 102400, "kv_lora_rank": 512,
          "q_lora_rank": None, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128,
          "n_routed_experts": 64, "num_experts_per_tok": 6, "moe_intermediate_size": 1408,
          "n_shared_experts": 2, "first_k_dense_replace": 1}
    p.write_text(json.dumps(ds))
    assert model_from_hf_config(p).params == load_model("deepseek_v2_lite").params
    assert load_model(p).kv_bytes_per_token() == 31_104  # a path works through load_model too


def test_bundled_list():
    assert {"llama2_7b", "llama3_8b", "mixtral_8x7b", "deepseek_v2_lite"} <= set(list_models())


@pytest.mark.parametrize("content,needle", [
    ("hidden: 4096\nlayers: 32\nheads: 32\nintermediate: 11008\nvocab: -5\n", "vocab"),
    ("hidden: 4096\nlayers: 32\nheads: 32\nintermediate: 11008\n", "vocab"),
    ("hidden: 4096\nlayers: 32\nheads: 32\nkv_heads: 5\nintermediate: 1\nvocab: 10\n", "kv_heads"),
    ("hidden: 4096\nlayers: 32\nheads: 32\nintermediate: 1\nvocab: 10\nwidth: 3\n", "width"),
    ("hidden: [1, 2\n", "malformed YAML"),
    ("hidden: 4096000000000\nlayers: 32\nheads: 32\nintermediate: 1\nvocab: 10\n", "at most"),
    ("!!python/object/apply:os.system ['true']\n", "refused"),
])
def test_bad_model_files(tmp_path, content, needle):
    p = tmp_path / "m.yaml"
    p.write_text(content)
    with pytest.raises(InputError) as e:
        load_model(p)
    assert needle in str(e.value) and str(p) in str(e.value)


def test_unknown_model_suggests():
    with pytest.raises(InputError, match="llama3_8b"):
        load_model("llama3-8b")
