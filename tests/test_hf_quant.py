"""A config.json's quantization_config sets the checkpoint's weight format (workloads/hf_quant.py):
modelled and noted, or refused with the field named; never priced as bf16 without a word."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import cosim
from cosim.cli import main
from workloads.formats import FormatError, get_format
from workloads.io import InputError
from workloads.models import model_from_hf_config

DATA = Path(__file__).parent / "data" / "hf_configs"
DSV3 = DATA / "deepseek_v3.json"  # the published config: quant_method fp8, fmt e4m3, weight_block_size [128, 128]


def _with_quant(tmp_path, qc, base="llama3_1_8b"):
    cfg = json.loads((DATA / f"{base}.json").read_text())
    cfg["quantization_config"] = qc
    p = tmp_path / "config.json"
    p.write_text(json.dumps(cfg))
    return p


def test_fp8_block_format_bits_by_hand():
    f = get_format("fp8_e4m3_b128x128")
    # 8-bit E4M3 element + one float32 scale per 128 x 128 = 16384 elements
    assert f.bits_per_element == 8 + 32 / 16384 == 8.001953125
    assert (f.family, f.element, f.block_size, f.scale_format) == ("fp8_block", "fp8_e4m3", 16384, "fp32")
    assert f.max_normal == 448.0


@given(r=st.integers(1, 512), c=st.integers(1, 512), e=st.sampled_from(["e4m3", "e5m2"]))
def test_fp8_block_parametric_bits(r, c, e):
    f = get_format(f"fp8_{e}_b{r}x{c}")
    assert f.bits_per_element == pytest.approx(8 + 32 / (r * c))
    assert f.name == f"fp8_{e}_b{r}x{c}"


def test_deepseek_v3_weights_are_fp8_with_block_scales_by_default():
    m = model_from_hf_config(DSV3)
    assert m.weights_format == "fp8_e4m3_b128x128"
    t = cosim.build_trace(m, "decode", 1, 2048)
    assert t.meta["formats"]["weights"] == "fp8_e4m3_b128x128"
    w = t.meta["footprint"]["weights"]
    # the embedding and the lm_head stay bf16 (torch_dtype): 129280 x 7168 = 926,679,040 parameters each
    E = 129280 * 7168
    assert (m.embedding_params(), m.lm_head_params()) == (E, E)
    assert (m.embed_format, m.lm_head_format) == ("bf16", "bf16")
    # one fp32 per 128 x 128 tile actually stored: every matrix is whole tiles but kv_a_proj_with_mqa, 7168 x 576
    # (576 = 4.5 x 128): ceil -> 56 x 5 = 280 scales, 28 more than its 252 amortised: 61 layers x 28 x 4 B
    assert w == pytest.approx(((m.params - 2 * E) * 8.001953125 + 2 * E * 16) / 8 + 61 * 28 * 4, rel=1e-12)
    # published: 671 B parameters (MTP excluded) -> (671e9 - 1.853e9) x 8.00195 / 8 + 1.853e9 x 2 = 673.0 GB,
    # about half of bf16's 1.342 TB
    assert w == pytest.approx(((671e9 - 2 * E) * 8.001953125 + 2 * E * 16) / 8, rel=0.005)
    assert 672e9 < w < 674e9
    assert any("weights fp8_e4m3_b128x128 (config.json quantization_config: fp8" in n
               and "embedding bf16 (unquantized); lm_head bf16 (unquantized)" in n for n in t.meta["notes"])
    ops = {op.name: op for op in t.ops}
    assert ops["lm_head"].inputs[1].fmt == "bf16" and ops["embed"].inputs[0].fmt == "bf16"
    assert ops["o_proj"].inputs[1].fmt == "fp8_e4m3_b128x128"


def test_explicit_weights_override_the_declared_format_and_say_so():
    m = model_from_hf_config(DSV3)
    t = cosim.build_trace(m, "decode", 1, 2048, weights="bf16")
    assert t.meta["footprint"]["weights"] == m.params * 2
    assert any("weights bf16 (given; overrides the checkpoint's fp8_e4m3_b128x128" in n for n in t.meta["notes"])
    # no declared format: bf16, no note
    plain = cosim.build_trace(model_from_hf_config(DATA / "llama3_1_8b.json"), "decode", 1, 128)
    assert plain.meta["formats"]["weights"] == "bf16" and not plain.meta.get("notes")


def test_parallel_trace_keeps_the_declared_format_and_its_note():
    m = model_from_hf_config(DSV3)
    t = cosim.build_trace(m, "decode", 8, 1024, parallel={"tp": 2, "ep": 2, "dp": 1})
    assert t.meta["formats"]["weights"] == "fp8_e4m3_b128x128"
    assert sum("config.json quantization_config" in n for n in t.meta["notes"]) == 1


@pytest.mark.parametrize("qc, name", [
    ({"quant_method": "gptq", "bits": 4, "group_size": 128, "sym": True, "desc_act": False}, "int4_g128_symz"),
    ({"quant_method": "gptq", "bits": 4, "group_size": 128, "sym": False}, "int4_g128_zp"),
    ({"quant_method": "gptq", "bits": 8, "group_size": 64, "sym": True}, "int8_g64_symz"),
    ({"quant_method": "awq", "bits": 4, "group_size": 128, "zero_point": True, "version": "gemm"}, "int4_g128_zp"),
    ({"quant_method": "awq", "bits": 4, "group_size": 128, "zero_point": False}, "int4_g128_symz"),
    ({"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic"}, "fp8_e4m3"),
    ({"quant_method": "compressed-tensors", "config_groups": {"group_0": {
        "targets": ["Linear"], "weights": {"num_bits": 4, "type": "int", "strategy": "group", "group_size": 128,
                                           "symmetric": True}}}}, "int4_g128"),
    ({"quant_method": "compressed-tensors", "config_groups": {"group_0": {
        "targets": ["Linear"], "weights": {"num_bits": 8, "type": "float", "strategy": "block",
                                           "block_structure": [128, 128]}}}}, "fp8_e4m3_b128x128"),
    ({"quant_method": "compressed-tensors", "format": "nvfp4-pack-quantized", "config_groups": {"group_0": {
        "targets": ["Linear"], "weights": {"num_bits": 4, "type": "float", "strategy": "tensor_group",
                                           "group_size": 16, "symmetric": True}}}}, "nvfp4"),
])
def test_common_quant_methods_map_to_registered_formats(tmp_path, qc, name):
    m = model_from_hf_config(_with_quant(tmp_path, qc))
    assert m.weights_format == name
    get_format(name)  # a registered (or parametric) format
    # the embedding stays bf16; the lm_head too, except where the scheme quantizes it (compressed-tensors
    # without `ignore: [lm_head]`); e.g. Llama-3.1-8B GPTQ int4_g128_symz: layers at 4 + (16 + 4)/128 = 4.156 bits
    head_quantized = qc["quant_method"] == "compressed-tensors"
    assert (m.embed_format, m.lm_head_format) == ("bf16", None if head_quantized else "bf16")
    E = 128256 * 4096
    bits = get_format(name).bits_per_element
    want = ((m.params - 2 * E) * bits + E * 16 + E * (bits if head_quantized else 16)) / 8
    # GPTQ's g_idx, an int32 per input channel of each Linear: 32 x 38,912 x 4 = 4,980,736 bytes (test_qsfix_review)
    want += 4 * m.linear_inputs() if qc["quant_method"] == "gptq" else 0
    # NVFP4's fp32 per-tensor scale, 4 B per quantized matrix: 32 layers x 7 + the lm_head = 225
    want += 4 * 225 if name == "nvfp4" else 0
    t = cosim.build_trace(m, "decode", 1, 128)
    assert t.meta["footprint"]["weights"] == pytest.approx(want, rel=1e-12)
    ignored = _with_quant(tmp_path, {**qc, "ignore": ["lm_head"]})
    assert model_from_hf_config(ignored).lm_head_format == "bf16"  # compressed-tensors' usual ignore list


@pytest.mark.parametrize("qc, field, value", [
    ({"quant_method": "bitsandbytes", "load_in_4bit": True}, "quant_method", "bitsandbytes"),
    ({"quant_method": "gptq", "bits": 4, "group_size": -1}, "group_size", "-1"),
    ({"quant_method": "awq", "bits": 16, "group_size": 128}, "bits", "16"),
    ({"quant_method": "fp8", "fmt": "e3m4"}, "fmt", "e3m4"),
    ({"quant_method": "fp8", "weight_block_size": [128]}, "weight_block_size", "[128]"),
    ({"quant_method": "compressed-tensors", "config_groups": {"g": {"weights": {
        "num_bits": 8, "type": "int", "strategy": "channel"}}}}, "config_groups.g.weights.strategy", "channel"),
    ("fp8", "", "'fp8'"),
])
def test_unmodelled_quant_methods_are_refused_with_the_field_named(tmp_path, qc, field, value):
    with pytest.raises(InputError) as e:
        model_from_hf_config(_with_quant(tmp_path, qc))
    msg = str(e.value)
    assert "config.json: quantization_config." in msg and f"{field}: got" in msg and value in msg
    assert "modelled: fp8" in msg  # says what is supported


def test_functional_core_refuses_2d_block_fp8():
    from cosim.functional import quantize
    with pytest.raises(FormatError, match="fp8_e4m3_b128x128.*cost models only"):
        quantize(np.ones((4, 256), dtype=np.float32), "fp8_e4m3_b128x128")


def test_cli_roofline_notes_the_checkpoint_format(capsys):
    assert main(["roofline", "--model", str(DSV3), "--hw", "h200"]) == 0
    out = capsys.readouterr().out
    assert "weights=fp8_e4m3_b128x128" in out and "weights 673 GB" in out
    assert "note: weights fp8_e4m3_b128x128 (config.json quantization_config: fp8" in out
    assert main(["roofline", "--model", str(DSV3), "--hw", "h200", "--weights", "bf16"]) == 0
    out = capsys.readouterr().out
    assert "weights 1.34 TB" in out and "overrides the checkpoint's fp8_e4m3_b128x128" in out


def test_experiment_file_without_weights_takes_the_checkpoint_format(tmp_path):
    from cosim.experiment import experiment_from_dict, run_experiment
    exp = experiment_from_dict({"model": str(DSV3), "hw": "h200", "seq": 1024}, source="e.yaml")
    assert exp.weights == "fp8_e4m3_b128x128"
    rep = run_experiment(exp)
    E = 129280 * 7168  # embedding and lm_head, bf16
    assert rep.footprint["weights"] == pytest.approx(((exp_params() - 2 * E) * 8.001953125 + 2 * E * 16) / 8)
    assert any("weights fp8_e4m3_b128x128 (config.json quantization_config: fp8; the checkpoint's format; "
               "embedding bf16 (unquantized); lm_head bf16 (unquantized))" in n for n in rep.notes)
    given = experiment_from_dict({"model": str(DSV3), "hw": "h200", "weights": "bf16"}, source="e.yaml")
    assert given.weights == "bf16"
    # a model without a declared format keeps the bf16 default (sweep store keys unchanged)
    assert experiment_from_dict({"model": "llama3_8b", "hw": "h100_sxm"}).weights == "bf16"


def exp_params():
    return model_from_hf_config(DSV3).params


AWQ = {"quant_method": "awq", "bits": 4, "group_size": 128, "zero_point": True}


def test_generate_serve_and_plan_use_and_note_the_declared_format(tmp_path):
    from cosim.plan import plan
    from cosim.serving import generate, serve
    p = _with_quant(tmp_path, AWQ)
    m = model_from_hf_config(p)
    note = "weights int4_g128_zp (config.json quantization_config: awq; the checkpoint's format, used as"
    g = generate(m, "h100_sxm", 128, 8)
    assert any(note in n for n in g.notes)
    s = serve(m, "h100_sxm", qps=2, requests=10)
    assert any(note in n for n in s.notes)
    # the KV capacity's weights: Llama-3.1-8B's layers at 4 + (16 + 4)/128 = 4.15625 bits, its embedding and
    # lm_head (128256 x 4096 each) in bf16: 3.63 + 2.10 = 5.73 GB (AWQ leaves both unquantized)
    E = 128256 * 4096
    cap = next(iter(s.capacity.values()))
    assert cap.weights_bytes == pytest.approx(((m.params - 2 * E) * 4.15625 + 2 * E * 16) / 8)
    assert 5.7e9 < cap.weights_bytes < 5.76e9
    r = plan(m, "dgx_h100")
    assert any(note in n for n in r.notes)
    over = plan(m, "dgx_h100", weights="bf16")
    assert over.notes[0] == ("weights bf16 (given; overrides the checkpoint's int4_g128_zp from config.json "
                             "quantization_config: awq)")
    assert len(over.notes) == 2 and over.notes[1].startswith("memory rule: ")  # the memory rule (session 14)
    assert get_format("int4_g128_zp").bits_per_element == 4 + (16 + 4) / 128


def test_experiment_with_accuracy_refuses_2d_block_weights_at_load():
    from cosim.experiment import experiment_from_dict
    with pytest.raises(InputError) as e:
        experiment_from_dict({"model": str(DSV3), "hw": "h200", "accuracy": {"tokens": 16}}, source="e.yaml")
    msg = str(e.value)
    assert msg.startswith("e.yaml: weights: got 'fp8_e4m3_b128x128'") and "checkpoint's declared format" in msg
    exp = experiment_from_dict({"model": str(DSV3), "hw": "h200", "weights": "fp8_e4m3", "accuracy": {"tokens": 16}})
    assert exp.weights == "fp8_e4m3"


@given(bits=st.integers(2, 8), group=st.integers(1, 4096), sym=st.booleans())
def test_gptq_bits_per_weight_by_formula(bits, group, sym):
    from workloads.hf_quant import declared_weights
    name, origin = declared_weights({"quant_method": "gptq", "bits": bits, "group_size": group, "sym": sym}, "c.json")
    # bits + one fp16 scale and one bits-wide zero per group: GPTQ stores qzeros also when sym is true
    assert get_format(name).bits_per_element == pytest.approx(bits + (16 + bits) / group)
    assert get_format(name).symmetric is sym
    assert origin == "config.json quantization_config: gptq"


def test_unquantized_table_dtype_is_read_refused_or_said(tmp_path):
    """The embedding/lm_head of a quantized checkpoint stay in torch_dtype: a multimodal config's top-level
    dtype is read, an unknown one refused naming the field, and a missing one is bf16 *said in the note*."""
    import json

    from workloads.builder import build_trace
    from workloads.hf_quant import table_dtype
    from workloads.io import InputError
    from workloads.models import load_model
    assert table_dtype({"torch_dtype": "float16"}, "c.json") == ("fp16", "torch_dtype")
    assert table_dtype({}, "c.json", {"torch_dtype": "float32"}) == ("fp32", "torch_dtype")  # top level
    assert table_dtype({}, "c.json")[0] == "bf16"
    with pytest.raises(InputError, match=r"c\.json: torch_dtype: got 'int8'; expected one of bfloat16"):
        table_dtype({"torch_dtype": "int8"}, "c.json")
    cfg = json.loads(open("tests/data/hf_configs/deepseek_v3.json").read())
    cfg.pop("torch_dtype", None)
    cfg.pop("dtype", None)
    p = tmp_path / "config.json"
    p.write_text(json.dumps(cfg))
    note = " ".join(build_trace(load_model(p), "decode", 1, 128).meta["notes"])
    assert "no torch_dtype: unquantized tables bf16 assumed" in note


@pytest.mark.parametrize("kept", [[], ["lm_head"], ["model.layers.*.self_attn", "model.layers.*.mlp.router"],
                                  ["lm_head.x"]])
def test_unquantized_formats_says_the_mxfp4_lm_head_itself(kept):
    """One source for which tables a quantized checkpoint leaves unquantized: MXFP4's lm_head stays in
    torch_dtype whatever modules_to_not_convert says (transformers converts only the MoE experts,
    integrations/mxfp4.py; until session 17 only when the list named it); an entry reaching the experts is
    refused."""
    from workloads.hf_quant import unquantized_formats
    qc = {"quant_method": "mxfp4", "modules_to_not_convert": kept}
    assert unquantized_formats(qc, "bf16", "x.json", 24) == ("bf16", "bf16")
    with pytest.raises(InputError, match="x.json: quantization_config.modules_to_not_convert: got 'model.layers'"):
        unquantized_formats({"quant_method": "mxfp4", "modules_to_not_convert": ["model.layers"]}, "bf16", "x.json",
                            24)


# A gpt-oss-like config written by hand (the fields of openai/gpt-oss-20b's config.json that the importer reads,
# 12 layers so that "model.layers.1" reaches layers 1, 10 and 11 by re.match's prefix rule)
_GPT_OSS_LIKE = {"architectures": ["GptOssForCausalLM"], "model_type": "gpt_oss", "hidden_size": 256,
                 "intermediate_size": 256, "num_hidden_layers": 12, "num_attention_heads": 8,
                 "num_key_value_heads": 2, "head_dim": 32, "num_local_experts": 8, "num_experts_per_tok": 2,
                 "experts_per_token": 2, "vocab_size": 1000, "max_position_embeddings": 4096, "sliding_window": 128,
                 "layer_types": ["sliding_attention", "full_attention"] * 6, "attention_bias": True,
                 "tie_word_embeddings": False, "hidden_act": "silu", "torch_dtype": "bfloat16",
                 "quantization_config": {"quant_method": "mxfp4", "modules_to_not_convert": [
                     "model.layers.*.self_attn", "model.layers.*.mlp.router", "model.embed_tokens", "lm_head"]}}


@pytest.mark.parametrize("entry, reached", [
    ("model.layers.1", "layers 1, 10-11's"),          # prefix match: layer 1 and layers 10, 11
    ("model.layers.1.mlp", "layer 1's"),              # "1.mlp" does not match "10.mlp"
    ("model.layers.[1-9]", "layers 1-11's"),
    ("model.layers.11.mlp.experts", "layer 11's"),
    ("model.layers.0", "layers 0's"),                 # layer 0 only: refused before session 17 too
    ("model", "every layer's")])
def test_mxfp4_refuses_an_entry_reaching_any_layers_experts(tmp_path, entry, reached):
    """transformers (integrations/mxfp4.py should_convert_module) leaves a module in torch_dtype when an entry of
    modules_to_not_convert re.match-es its name or a parent's; cosim prices every expert MXFP4, so an entry that
    reaches any layer's experts is refused by name. Until session 17 only layer 0's experts were tested: the
    entries reaching other layers alone were accepted."""
    cfg = json.loads(json.dumps(_GPT_OSS_LIKE))
    cfg["quantization_config"]["modules_to_not_convert"].append(entry)
    p = tmp_path / "config.json"
    p.write_text(json.dumps(cfg))
    if reached == "layers 0's":
        reached = "layer 0's"
    with pytest.raises(InputError, match=rf"config.json: quantization_config.modules_to_not_convert: got "
                                         rf"{re.escape(repr(entry))}.*keeps {re.escape(reached)} experts unconverted"):
        model_from_hf_config(p)


@pytest.mark.parametrize("entry", ["model.layers.12", "model.layers.1.self_attn", "model.layers.*.mlp.router",
                                   "lm_head"])
def test_mxfp4_accepts_entries_that_reach_no_experts(tmp_path, entry):
    """Entries reaching no expert module (a layer the model lacks, attention, the router, the lm_head) are
    accepted: the experts are MXFP4, attention and router bf16."""
    cfg = json.loads(json.dumps(_GPT_OSS_LIKE))
    cfg["quantization_config"]["modules_to_not_convert"].append(entry)
    p = tmp_path / "config.json"
    p.write_text(json.dumps(cfg))
    m = model_from_hf_config(p)
    assert (m.weights_format, m.attn_format, m.lm_head_format) == ("mxfp4", "bf16", "bf16")
