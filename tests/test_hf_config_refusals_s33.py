"""Session 33: config.json values of the wrong type or shape are one named error
("<file>: <field>: got <value>; expected ..."), never a Python traceback or a silent coercion;
a dense model_type's stray expert keys are ignored as transformers ignores them, and said in a
note; rope_scaling is checked; a missing MLP width names intermediate_size, not the spec's field.
Fixtures: the public config.json files of tests/data/hf_configs, one key changed."""

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cosim.cli import main
from workloads.io import InputError
from tests.hf_edit import write_config as _write
from workloads.models import model_from_hf_config

DATA = Path(__file__).parent / "data" / "hf_configs"
LLAMA31_8B = 8_030_261_248  # pinned in tests/test_hf_import.py (the model card's count)
MIXTRAL_8X7B = 46_702_792_704


def _refused(p) -> str:
    with pytest.raises(InputError) as e:
        model_from_hf_config(p)
    return str(e.value)


# ---------------------------------------------------------------- 1, 2: wrong types are named

SLIDING_QWEN = {"use_sliding_window": True, "sliding_window": 4096}


@pytest.mark.parametrize("base, changes, message", [
    ("llama3_1_8b", {"hidden_act": ["silu"]}, "hidden_act: got ['silu']; expected an activation name (text)"),
    ("gemma2_9b", {"attn_logit_softcapping": "fifty"},
     "attn_logit_softcapping: got 'fifty'; expected a positive number (the tanh cap of the attention scores)"),
    ("gemma2_9b", {"final_logit_softcapping": [30]},
     "final_logit_softcapping: got [30]; expected a positive number (the tanh cap of the final logits)"),
    ("gemma2_9b", {"final_logit_softcapping": 0}, "final_logit_softcapping: got 0; expected a positive number"),
    ("qwen2_5_7b", {**SLIDING_QWEN, "max_window_layers": "abc"}, "max_window_layers: got 'abc'; expected an integer"),
    ("qwen2_5_7b", {**SLIDING_QWEN, "max_window_layers": "20"}, "max_window_layers: got '20'; expected an integer"),
    # 6: the value the user wrote, not the derived sliding_window_layers (28 - (-5) = 33)
    ("qwen2_5_7b", {**SLIDING_QWEN, "max_window_layers": -5}, "max_window_layers: got -5; expected an integer >= 0"),
    ("deepseek_v3", {"num_nextn_predict_layers": "x"}, "num_nextn_predict_layers: got 'x'; expected an integer >= 0"),
    ("deepseek_v3", {"num_nextn_predict_layers": 1.5}, "num_nextn_predict_layers: got 1.5; expected an integer"),
    ("llama3_1_8b", {"mlp_bias": "yes"}, "mlp_bias: got 'yes'; expected true or false"),
    ("llama3_1_8b", {"attention_bias": "false"}, "attention_bias: got 'false'; expected true or false"),
    ("granite3_3_8b", {"embedding_multiplier": "12"}, "embedding_multiplier: got '12'; expected a positive number"),
])
def test_a_wrong_typed_value_is_one_error_naming_field_and_value(tmp_path, base, changes, message):
    p = _write(tmp_path, base, **changes)
    msg = _refused(p)
    assert msg.startswith(f"{p}: {message}") and "\n" not in msg


INT_FIELDS = ("max_window_layers", "num_nextn_predict_layers", "num_hidden_layers", "intermediate_size")
NOT_INT = st.one_of(st.text(max_size=5), st.booleans(), st.lists(st.integers(), max_size=2),
                    st.floats(allow_nan=False, allow_infinity=False), st.dictionaries(st.text(max_size=2), st.none()))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(INT_FIELDS), value=NOT_INT)
def test_any_non_integer_for_an_integer_field_is_refused_by_name(tmp_path, field, value):
    # "20", 1.5, 2.0, true, [3]: never int()-ed into a count (JSON 2.0 is a float in the file)
    p = _write(tmp_path, "deepseek_v3", **{field: value})
    assert _refused(p).startswith(f"{p}: {field}: got ")


def test_mlp_bias_true_is_counted(tmp_path):
    m = model_from_hf_config(_write(tmp_path, "llama3_1_8b", mlp_bias=True))
    # gate and up: 14,336 biases each, down: 4,096 -> 32,768 a layer, 32 layers
    assert m.mlp_bias and m.params == LLAMA31_8B + 32 * (2 * 14336 + 4096) == 8_031_309_824


# ---------------------------------------------------------------- 3: expert keys of a dense type

def test_dense_llama_with_stray_expert_keys_is_the_dense_model_with_a_note(tmp_path):
    p = _write(tmp_path, "llama3_1_8b", num_local_experts=8, num_experts_per_tok=2)
    m = model_from_hf_config(p)
    # was priced as an 8-expert MoE (47.5 B); LlamaForCausalLM reads neither key
    assert m.moe is None and m.params == LLAMA31_8B
    assert m.import_notes == (f"{p}: num_local_experts 8, num_experts_per_tok 2 ignored: model_type llama is a dense "
                              f"architecture whose transformers class reads no expert keys; priced as the dense model",)


@pytest.mark.parametrize("base, key", [("qwen2_5_7b", "num_experts"), ("phi3_mini_4k", "n_routed_experts"),
                                       ("gemma2_9b", "num_local_experts")])
def test_each_dense_type_ignores_every_expert_key(tmp_path, base, key):
    plain = model_from_hf_config(DATA / f"{base}.json")
    m = model_from_hf_config(_write(tmp_path, base, **{key: 64, "num_experts_per_tok": 4}))
    assert m.moe is None and m.params == plain.params and f"{key} 64" in m.import_notes[0]


def test_an_moe_type_reads_only_its_own_expert_key(tmp_path):
    # MixtralConfig reads num_local_experts; a stray Qwen-MoE num_experts changes nothing
    m = model_from_hf_config(_write(tmp_path, "mixtral_8x7b", num_experts=64))
    assert m.moe.num_experts == 8 and m.params == MIXTRAL_8X7B and not m.import_notes


def test_an_moe_type_without_its_expert_key_is_refused(tmp_path):
    p = _write(tmp_path, "mixtral_8x7b", **{"-num_local_experts": None, "num_experts": 8})
    assert _refused(p) == (f"{p}: num_local_experts: got missing; expected present for model_type mixtral (the "
                           f"routed-expert count; its class default is not guessed, and without it the model would "
                           f"be priced as dense)")


# ---------------------------------------------------------------- 4: layer_types length

def test_layer_types_of_the_wrong_length_is_refused_with_both_lengths(tmp_path):
    p = _write(tmp_path, "llama3_1_8b", layer_types=["full_attention"] * 3)
    assert _refused(p) == (f"{p}: layer_types: got a list of 3 entries; expected 32, one per layer "
                           f"(num_hidden_layers is 32)")
    p = _write(tmp_path, "gemma2_9b", layer_types=["sliding_attention", "full_attention"] * 22)
    assert "layer_types: got a list of 44 entries; expected 42" in _refused(p)
    p = _write(tmp_path, "llama3_1_8b", layer_types=[["full_attention"]] * 32)  # unhashable entries: no TypeError
    assert _refused(p).startswith(f"{p}: layer_types: got [[")


def test_layer_types_of_the_right_length_still_sets_the_sliding_layers(tmp_path):
    lt = ["sliding_attention", "full_attention"] * 21
    assert model_from_hf_config(_write(tmp_path, "gemma2_9b", layer_types=lt)).window_layers == 21


# ---------------------------------------------------------------- 5: rope_scaling

TYPES = "default, linear, dynamic, yarn, longrope, llama3 (transformers' rope types)"


@pytest.mark.parametrize("rope, message", [
    ("yarn", "rope_scaling: got 'yarn'; expected a mapping with rope_type (or type) and its factor, or null"),
    ([4.0], "rope_scaling: got [4.0]; expected a mapping"),
    ({"type": "su", "factor": 4.0}, f"rope_scaling.type: got 'su'; expected one of {TYPES}"),
    ({"rope_type": "ntk_by_parts", "factor": 4.0},
     f"rope_scaling.rope_type: got 'ntk_by_parts'; expected one of {TYPES}"),
    ({"rope_type": "yran", "factor": 4.0}, f"rope_scaling.rope_type: got 'yran'; expected one of {TYPES} "
                                           f"(did you mean 'yarn'?)"),
    ({"factor": 4.0}, f"rope_scaling.rope_type: got missing; expected one of {TYPES}"),
    ({"rope_type": "yarn", "factor": "4"}, "rope_scaling.factor: got '4'; expected a number >= 1 (the yarn scaling "
                                           "factor, required for rope type yarn)"),
    ({"rope_type": "yarn", "factor": -4}, "rope_scaling.factor: got -4; expected a number >= 1"),
    ({"rope_type": "linear", "factor": 0.5}, "rope_scaling.factor: got 0.5; expected a number >= 1"),
    ({"rope_type": "dynamic"}, "rope_scaling.factor: got missing; expected a number >= 1"),
    ({"rope_type": "longrope", "factor": 0}, "rope_scaling.factor: got 0; expected a positive number"),
    ({"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": "8192"},
     "rope_scaling.original_max_position_embeddings: got '8192'; expected a positive integer"),
])
def test_a_malformed_rope_scaling_is_refused_by_name(tmp_path, rope, message):
    p = _write(tmp_path, "llama3_1_8b", rope_scaling=rope)
    assert _refused(p).startswith(f"{p}: {message}")


@given(factor=st.one_of(st.floats(max_value=0.999, allow_nan=False), st.text(max_size=4), st.booleans(),
                        st.lists(st.floats(), max_size=2)))
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_yarn_factor_not_a_number_at_least_1_is_refused(tmp_path, factor):
    p = _write(tmp_path, "qwen2_5_7b", rope_scaling={"type": "yarn", "factor": factor})
    assert _refused(p).startswith(f"{p}: rope_scaling.factor: got ")


def test_phi3_legacy_su_is_longrope_as_in_transformers(tmp_path):
    # microsoft/Phi-3-mini-128k-instruct's first config.json: type "su" (Phi3Config renames it longrope);
    # max_position_embeddings is already the extended length, so it is not multiplied
    p = _write(tmp_path, "phi3_mini_4k", max_position_embeddings=131072, sliding_window=262144,
               rope_scaling={"type": "su", "short_factor": [1.0] * 48, "long_factor": [1.5] * 48})
    m = model_from_hf_config(p)
    assert m.rope_scaling == "longrope" and m.max_context == 131072
    assert m.params == model_from_hf_config(DATA / "phi3_mini_4k.json").params == 3_821_079_552


def test_the_published_rope_scalings_still_load():
    # DeepSeek-V2/V3 yarn x40 of 4,096 = 163,840; Llama-3.1 llama3 (max_position_embeddings already extended)
    assert model_from_hf_config(DATA / "deepseek_v3.json").max_context == 163840
    assert model_from_hf_config(DATA / "llama3_1_8b.json").max_context == 131072
    assert model_from_hf_config(DATA / "gpt_oss_20b.json").rope_scaling == "yarn"


# ---------------------------------------------------------------- 6: intermediate_size, named as written

@pytest.mark.parametrize("base, changes, shown, expected", [
    ("llama3_1_8b", {"-intermediate_size": None}, "missing", "a positive integer, the MLP width of this dense model"),
    ("llama3_1_8b", {"intermediate_size": 0}, "0", "a positive integer, the MLP width of this dense model"),
    ("llama3_1_8b", {"intermediate_size": None}, "null", "a positive integer, the MLP width of this dense model"),
    ("deepseek_v3", {"intermediate_size": 0}, "0", "a positive integer: the first 3 layer(s) (first_k_dense_replace) "
                                                   "run a dense MLP of that width"),
    ("mixtral_8x7b", {"-intermediate_size": None}, "missing", "a positive integer, present for model_type mixtral "
                                                              "(each expert's MLP width"),
])
def test_a_missing_or_zero_mlp_width_names_intermediate_size(tmp_path, base, changes, shown, expected):
    p = _write(tmp_path, base, **changes)
    assert _refused(p).startswith(f"{p}: intermediate_size: got {shown}; expected {expected}")


# ---------------------------------------------------------------- the CLI: exit 2, one error line

@pytest.mark.parametrize("changes, field", [
    ({"hidden_act": ["silu"]}, "hidden_act: got ['silu']"),
    ({"rope_scaling": {"rope_type": "yarn", "factor": "4"}}, "rope_scaling.factor: got '4'"),
    ({"layer_types": ["full_attention"] * 3}, "layer_types: got a list of 3 entries"),
])
def test_the_cli_exits_2_with_one_error_line(tmp_path, capsys, changes, field):
    p = _write(tmp_path, "llama3_1_8b", **changes)
    assert main(["simulate", "--model", str(p), "--hw", "h100_sxm", "--seq", "128"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {p}: {field}; expected") and "Traceback" not in err[0]


def test_the_cli_prints_the_ignored_expert_keys_note(tmp_path, capsys):
    p = _write(tmp_path, "llama3_1_8b", num_local_experts=8, num_experts_per_tok=2)
    assert main(["simulate", "--model", str(p), "--hw", "h100_sxm", "--seq", "128"]) == 0
    assert "num_local_experts 8, num_experts_per_tok 2 ignored: model_type llama is a dense" in capsys.readouterr().out
