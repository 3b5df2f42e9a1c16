"""Session-15 review fixes (one test per defect; each fails on the code before its fix)."""

from pathlib import Path

import pytest

from cosim.cli import main
from hwmodels.accelerators import config_for
from hwmodels.spec import FALLBACK_OPTION, UnsupportedFormatError, load_hw

VCK = Path(__file__).resolve().parents[1] / "cosim" / "configs" / "hw" / "versal_vck190.yaml"


def _vck_with_bf16_pe(tmp_path):
    text = VCK.read_text()
    assert "pe: {formats: [int8, fp32]}" in text
    bad = tmp_path / "vck_bad.yaml"
    bad.write_text(text.replace("pe: {formats: [int8, fp32]}", "pe: {formats: [int8, fp32, bf16]}"))
    return bad


def test_fpga_format_error_through_roofline_and_cycle_levels(tmp_path, capsys):
    """H3: config_for re-raised UnsupportedFormatError(source, detail, offer) with one argument,
    a TypeError; the roofline level reaches config_for through operand_unit_check."""
    bad = _vck_with_bf16_pe(tmp_path)
    args = ["simulate", "--model", "llama3_8b", "--hw", str(bad), "--weights", "int8", "--acts", "int8",
            "--kv", "int8", "--seq", "256"]
    assert main(args + ["--level", "roofline"]) == 0
    capsys.readouterr()
    assert main(args + ["--level", "cycle"]) != 0
    err = capsys.readouterr().err
    assert f"{bad}: fpga.pe.formats: got 'bf16'; the AI Engine tiles list MACs only for ['fp32', 'int8']" in err
    assert "TypeError" not in err


def test_fpga_format_error_names_the_override():
    hw = load_hw("versal_vck190", overrides={"fpga.aie.macs_per_tile": {"int8": 128}})
    with pytest.raises(UnsupportedFormatError) as ei:
        config_for(hw)
    e = ei.value
    assert e.source.endswith("versal_vck190.yaml (with overrides fpga.aie.macs_per_tile={'int8': 128})")
    assert e.detail.startswith("fpga.pe.formats: got 'fp32'; the AI Engine tiles list MACs only for ['int8']")
    assert str(e) == f"{e.source}: {e.detail}" + (e.offer.format(option=FALLBACK_OPTION) if e.offer else "")


HF = Path(__file__).resolve().parent / "data" / "hf_configs"


def _kv_recipe_on(model, recipe, seq=8193):
    from workloads.builder import build_trace
    from workloads.compression import apply_recipe
    return apply_recipe(build_trace(model, "decode", 1, seq), recipe, model)


@pytest.mark.parametrize("recipe", ["kivi2", "rocketkv", "razor_attention", "fp8_kv"])
def test_kv_recipes_refused_on_chunked_layers(recipe):
    """H1: kv_state sized every layer's cache from the shortest decode read: Scout kivi2 at S=8193
    gave a 0.2 MB cache beside 1,610 MB in bf16 (its chunked layers hold (8193-1) % 8192 + 1 = 1 key)."""
    from workloads.compression import RecipeError
    from workloads.models import model_from_hf_config
    m = model_from_hf_config(HF / "llama4_scout_17b_16e.json")
    with pytest.raises(RecipeError, match=rf"recipe '{recipe}' .* on model 'llama4_scout_17b_16e': attention_chunk "
                                          r"\(HF attention_chunk_size\): got 8192 tokens on 36 of 48 layers; "
                                          r"expected no chunked-attention layers"):
        _kv_recipe_on(m, recipe)


@pytest.mark.parametrize("cfg,window,n,layers", [("gemma2_9b", 4096, 21, 42), ("gpt_oss_20b", 128, 12, 24)])
def test_kv_recipes_refused_on_mixed_window_layers(cfg, window, n, layers):
    """H1: gemma2_9b kivi2 at 6000 tokens gave a 282 MB cache while decode read 351 MB."""
    from workloads.compression import RecipeError
    from workloads.models import model_from_hf_config
    m = model_from_hf_config(HF / f"{cfg}.json")
    with pytest.raises(RecipeError, match=rf"sliding_window / layer pattern: got a {window}-token window on {n} of "
                                          rf"{layers} layers and full attention on the rest; expected every layer"):
        _kv_recipe_on(m, "kivi2", 6000)


def test_uniform_models_and_weight_recipes_still_apply():
    from workloads.models import load_model, model_from_hf_config
    m = load_model("mistral_7b")  # every layer windowed: one cache size, as before
    assert m.window_layers == m.layers
    t = _kv_recipe_on(m, "kivi2", 6000)
    assert t.meta["kv_state"]["capacity"] == min(6000, m.sliding_window)
    scout = model_from_hf_config(HF / "llama4_scout_17b_16e.json")
    t = _kv_recipe_on(scout, "expert_prune")  # no KV state: not refused
    assert "kv_state" not in t.meta
