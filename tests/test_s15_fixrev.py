"""Session-15 review fixes (one test per defect; each fails on the code before its fix)."""

import dataclasses
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
    a TypeError; the roofline level reaches config_for through operand_unit_check. Since session 17 the
    array is built when the spec loads, so the roofline refuses the file too, with the same message."""
    bad = _vck_with_bf16_pe(tmp_path)
    args = ["simulate", "--model", "llama3_8b", "--hw", str(bad), "--weights", "int8", "--acts", "int8",
            "--kv", "int8", "--seq", "256"]
    for level in ("roofline", "cycle"):
        assert main(args + ["--level", level]) != 0
        err = capsys.readouterr().err
        assert f"{bad}: fpga.pe.formats: got 'bf16'; the AI Engine tiles list MACs only for ['fp32', 'int8']" in err
        assert "TypeError" not in err


def test_fpga_format_error_names_the_override():
    with pytest.raises(UnsupportedFormatError) as ei:  # raised by load_hw, which builds the array (session 17)
        load_hw("versal_vck190", overrides={"fpga.aie.macs_per_tile": {"int8": 128}})
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


TINY = """name: tiny_{kind}
hidden: 1024
layers: 4
heads: 8
kv_heads: 2
intermediate: 2048
vocab: 1000
"""


def _tiny(tmp_path, kind):
    extra = {"chunked": "attention_chunk: 64\nchunked_layers: 4\nrope_layers: 4\n",
             "window": "sliding_window: 64\nsliding_window_layers: 2\n"}[kind]
    p = tmp_path / f"tiny_{kind}.yaml"
    p.write_text(TINY.format(kind=kind) + extra)
    return str(p)


def test_serve_refuses_chunked_attention_models(tmp_path):
    """H2: decode of two sequences at KV 60 and 70 with chunk 64 reads 60 + 6 = 66 keys, the mean-KV
    price 2 x 65 (reviewer's hand count); refused rather than priced wrong."""
    from cosim.serving import serve
    from workloads.io import InputError
    with pytest.raises(InputError, match=r"serve: model 'tiny_chunked': attention_chunk \(HF attention_chunk_size\): "
                                         r"got 64 tokens on 4 of 4 layers; expected no chunked-attention layers"):
        serve(_tiny(tmp_path, "chunked"), "h100_sxm", requests=2, qps=1.0, prompt_len=32, output_len=4)
    with pytest.raises(InputError, match=r"serve: speculative.draft_model 'tiny_chunked'"):
        serve("llama3_2_3b", "h100_sxm", requests=2, qps=1.0, prompt_len=32, output_len=4,
              speculative={"draft_model": _tiny(tmp_path, "chunked"), "draft_len": 2})


def _priced_keys(steps, batch):
    """Keys read per attention op name (batch x kv_len x layers) over the ops step_cost prices on a
    fresh model (nothing cached), and the cost."""
    steps = dataclasses.replace(steps, _cache={}, _ctx_ops={}, _btab=None)
    priced, price = [], steps._price
    steps._price = lambda ops: (priced.extend(ops := list(ops)), price(ops))[1]
    cost = steps.step_cost(batch)
    keys = {}
    for o in priced:
        if o.kind == "attention":
            keys[o.name] = keys.get(o.name, 0) + o.dims["batch"] * o.dims["kv_len"] * o.repeat
    return keys, cost


def test_serving_decode_prices_a_batch_straddling_the_window_once(tmp_path):
    """H2 (sliding window): two sequences at KV 32 and 96 with a 64-token window read 32 + 64 = 96 keys
    on a windowed layer (the batch's mean 64 priced 2 x min(64, 64) = 128) and 32 + 96 = 128 on a full
    one. Review s15 (finding 4): pricing each side of the window as its own step counted every layer's
    kernels twice (Gemma-2-9B, 4 at 4000 + 4 at 5000: 15,170.8 us / 1,474 kernels, more than all 8 at
    5000: 14,983.2 us / 1,390); one step's ops are priced once: windowed ops at mean min(S, W), the
    rest at mean S."""
    from cosim.serving.steptime import StepBatch, device_step_cost, straddles_window
    steps = device_step_cost(_tiny(tmp_path, "window"), "h100_sxm", level="roofline")
    assert steps.decode_window == 64 and steps.window_names == {"attention_local"}
    assert straddles_window((32, 96), 64)
    assert not straddles_window((10, 64), 64) and not straddles_window((65, 90), 64)
    assert not straddles_window((32, 96), None) and not straddles_window((), 64)
    names = [o.name for o in steps.workload.trace("decode", 1, 96).ops if o.kind == "attention"]
    assert names == ["attention_local", "attention"]
    keys, mixed = _priced_keys(steps, StepBatch((), (32, 96)))
    assert keys == {"attention_local": 2 * (32 + 64), "attention": 2 * (32 + 96)}  # hand count; 2 layers each
    longer = steps.step_cost(StepBatch((), (96, 96)))
    assert mixed.kernels == longer.kernels == steps.step_cost(StepBatch((), (32, 32))).kernels
    assert mixed.latency_s <= longer.latency_s and mixed.energy_j <= longer.energy_j
    # the old price: each side's context ops priced as a step of its own: every context kernel twice
    # (the roofline is linear in keys with no per-kernel cost, so only the count tells them apart here)
    old = (steps.token_cost(2, False) + steps.head_cost(2) + steps.decode_context_cost(1, 32)
           + steps.decode_context_cost(1, 96))
    assert mixed.kernels < old.kernels and mixed.latency_s == pytest.approx(old.latency_s)


def test_gemma2_decode_straddling_the_window_costs_no_more_than_the_longer_batch():
    """The reviewer's case: Gemma-2-9B (window 4096 on 21 of 42 layers), h100_sxm analytical, 8 sequences."""
    from cosim.serving.steptime import StepBatch, device_step_cost
    from workloads.models import model_from_hf_config
    steps = device_step_cost(model_from_hf_config(HF / "gemma2_9b.json"), "h100_sxm", level="analytical")
    short, mixed, long_ = (steps.step_cost(StepBatch((), kv)) for kv in
                           ((4000,) * 8, (4000,) * 4 + (5000,) * 4, (5000,) * 8))
    assert short.kernels == mixed.kernels == long_.kernels
    assert short.latency_s < mixed.latency_s < long_.latency_s
    old = (steps.token_cost(8, False) + steps.head_cost(8) + steps.decode_context_cost(4, 4000)
           + steps.decode_context_cost(4, 5000))  # each side priced as a step: 15,170.8 us, 1,474 kernels
    assert mixed.latency_s < old.latency_s and mixed.kernels < old.kernels
    keys, _ = _priced_keys(steps, StepBatch((), (4000,) * 4 + (5000,) * 4))
    # windowed layers: 4 x 4000 + 4 x 4096 = 8 x 4048 keys; full ones 8 x 4500; 21 layers of each
    assert keys == {"attention_local": 8 * 4048 * 21, "attention": 8 * 4500 * 21}


def test_serving_kv_capacity_pages_windowed_layers_per_token():
    """M1: bytes_per_token was read at 4,096 tokens, where gpt-oss-20b's 12 layers with a 128-token window
    hold 128 tokens: 25,344 B/token, optimistic for shorter sequences, while window_note says the windowed
    layers are paged per token like full ones (pessimistic)."""
    from cosim.serving.kv_memory import bytes_per_token, ref_context, window_note
    from cosim.serving.steptime import Workload
    from workloads.models import model_from_hf_config
    m = model_from_hf_config(HF / "gpt_oss_20b.json")
    assert (m.layers, m.kv_heads, m.head_dim, m.sliding_window) == (24, 8, 64, 128)
    assert ref_context(m) == 128
    full = m.layers * 2 * m.kv_heads * m.head_dim * 2  # K and V, bf16, every layer: 49,152 B
    assert bytes_per_token(Workload(m)) == full == 49152
    assert bytes_per_token(Workload(m), 4096) == 25344  # the old reading: 12 x 128 + 12 x 4,096 tokens spread
    (note,) = window_note(m)
    assert "paged per token like full-attention layers, so capacity is pessimistic" in note
    g = model_from_hf_config(HF / "gemma2_9b.json")  # window 4,096: the same reading as before
    assert ref_context(g) == 4096


@pytest.mark.parametrize("key,value", [("patch_size", 0), ("image_size", 0), ("hidden_size", 0), ("num_channels", 0),
                                       ("num_channels", "3")])
def test_llama4_vision_sizes_must_be_positive(tmp_path, key, value):
    """L1: patch_size 0 was a ZeroDivisionError ((image_size // patch_size) ** 2)."""
    import json
    from workloads.io import InputError
    from workloads.models import model_from_hf_config
    cfg = json.loads((HF / "llama4_scout_17b_16e.json").read_text())
    cfg["vision_config"][key] = value
    p = tmp_path / "config.json"
    p.write_text(json.dumps(cfg))
    with pytest.raises(InputError, match=rf"config.json: vision_config.{key}: got {value!r}; expected a positive "
                                         r"integer"):
        model_from_hf_config(p)


def test_razor_on_kivi_keeps_whole_key_groups():
    """L3: RazorAttention's local heads keep 517 key tokens (4 sinks + 512 window + 1 compensation); under
    KIVI-2 (G 32) they were 517 int2 codes under 16 groups' scales and no residual. Whole groups: 512
    codes in 16 groups + 5 bf16 residual tokens: 7 heads x 128 x (5 x 2 - 5 x 2/8) = 7,840 B more a layer."""
    from workloads.builder import build_trace
    from workloads.compression import apply_recipe
    from workloads.models import load_model
    m = load_model("llama3_8b")
    t = apply_recipe(build_trace(m, "decode", 1, 8192), "kivi2+razor_attention", m)
    (loc,) = [o for o in t.ops if o.name == "attention.local"]
    kv = {x.name: x for x in loc.inputs if x.role == "kv"}
    assert loc.dims["kv_len"] == 517
    assert kv["k_cache"].shape == (1, 512, 7, 128) and kv["k_cache.scale_zero"].shape == (1, 16, 7, 256)
    assert kv["k_cache.residual"].shape == (1, 5, 7, 128) and kv["k_cache.residual"].nbytes == 5 * 7 * 128 * 2
    # the codes + residual hold every kept key token; values (scales per token) unchanged: 389 + 128
    assert kv["v_cache"].shape[1] + kv["v_cache.residual"].shape[1] == 517
    assert sum(x.nbytes for x in kv.values() if x.name.startswith("k_cache")) == 114688 + 57344 + 8960


def test_short_text_names_the_option_that_set_the_token_count(tmp_path):
    """L4: the too-short-text error said "--tokens asked for N" under `cosim run` too."""
    import numpy as np
    from cosim.accuracy import load_text_tokens
    from workloads.io import InputError

    class _Words:  # one token a word: enough to count, no tokenizer asset needed
        @staticmethod
        def encode(text):
            return np.arange(len(text.split()))

    p = tmp_path / "short.txt"
    p.write_text("three short words")
    with pytest.raises(InputError, match=r"short.txt: holds 3 tokens for this tokenizer; accuracy.tokens in e.yaml "
                                         r"asked for 10 "):
        load_text_tokens(_Words, p, 10, "accuracy.tokens in e.yaml")
    with pytest.raises(InputError, match="--tokens asked for 10"):
        load_text_tokens(_Words, p, 10)
    ids, name = load_text_tokens(_Words, p, 2)
    assert list(ids) == [0, 1] and name == str(p)


def test_step_cost_api_refuses_only_what_it_cannot_price_on_chunked_models(tmp_path):
    """H2, the step-cost API (device_step_cost): 16 new tokens after 128 cached with chunk 64 attend
    1 + ... + 16 = 136 pairs a head (priced as 16 queries over 144 keys), and decode at KV 60 and 70
    reads 60 + 6 = 66 keys (priced 2 x 65): refused. One KV length and whole prompts stay exact."""
    from cosim.serving.steptime import StepBatch, device_step_cost
    from workloads.io import InputError
    steps = device_step_cost(_tiny(tmp_path, "chunked"), "h100_sxm", level="roofline")
    with pytest.raises(InputError, match=r"decode KV lengths \[60, 70\]"):
        steps.step_cost(StepBatch((), (60, 70)))
    with pytest.raises(InputError, match=r"prefill chunks \(new, cached\) \[\(16, 128\)\]"):
        steps.step_cost(StepBatch(((16, 128, False),), ()))
    assert steps.step_cost(StepBatch((), (70, 70))).latency_s > 0
    assert steps.step_cost(StepBatch(((144, 0, True),), ())).latency_s > 0
