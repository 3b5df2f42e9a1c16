"""Session-16 review leftovers (model import, KV / compression recipes, non-GPU hwmodels): one source of
truth for each rule, checked by hand."""

from pathlib import Path

import pytest

from workloads.io import InputError


@pytest.mark.parametrize("mt, key", [("mixtral", "num_local_experts"), ("qwen2_moe", "num_experts"),
                                     ("deepseek_v3", "n_routed_experts")])
def test_one_expert_count_reading_serves_the_checks_and_the_ignore_note(mt, key):
    """workloads.hf_layers.hf_experts is the one reading: the MoE checks refuse a missing num_experts_per_tok and
    hf_quant's ignore note finds the router under each of the three keys -- each the key of its model_type's
    class (session 33: a dense type's or another class's expert key is not read, as in transformers)."""
    from workloads.hf_layers import hf_experts
    from workloads.hf_quant import ignore_note
    from workloads.models import _refuse_missing_defaults
    assert hf_experts({"model_type": mt, key: 8}) == 8 and not hf_experts({"model_type": "qwen2_moe", "num_experts": 0})
    assert hf_experts({"model_type": "llama", key: 8}) is None
    with pytest.raises(InputError, match="x.json: num_experts_per_tok: got missing"):
        _refuse_missing_defaults({"model_type": mt, "num_key_value_heads": 8, key: 8}, "x.json", "")
    qc = {"quant_method": "compressed-tensors", "ignore": ["re:.*mlp.gate$"]}
    cfg = {"model_type": mt, "num_hidden_layers": 2, key: 8}
    assert "the MoE router" in ignore_note(qc, "x.json", "int4_g128", cfg)
    assert "matches no modelled module" in ignore_note(qc, "x.json", "int4_g128", {"num_hidden_layers": 2})


def _moe_granite(tmp_path):
    """DeepSeek-V2-Lite (1 dense layer, 26 MoE layers, hidden 2048) given Granite's residual_multiplier in YAML."""
    from workloads.models import load_model
    src = Path(__file__).parents[1] / "cosim" / "configs" / "models" / "deepseek_v2_lite.yaml"
    p = tmp_path / "moe_granite.yaml"
    p.write_text(src.read_text().replace("name: deepseek_v2_lite", "name: moe_granite\nresidual_multiplier: 0.22"))
    return load_model(str(p))


def test_residual_multiplier_scales_every_residual_add_moe_layers_included(tmp_path):
    """Each branch x residual_multiplier before its add: 27 attention adds, 1 dense-MLP add and 26 MoE adds, one
    mul per element of the 2 x 2048 rows each. The MoE layers' scale was skipped (only the first op named
    mlp_residual was found): 28 x 4096 = 114,688 FLOPs per decode step before, 54 x 4096 = 221,184 now."""
    import cosim
    m = _moe_granite(tmp_path)
    assert (m.layers, m.dense_layers, m.moe_layers, m.hidden, m.residual_multiplier) == (27, 1, 26, 2048, 0.22)
    t = cosim.build_trace(m, "decode", 2, 1024)
    scales = [(op.name, op.group, op.repeat, op.flops) for op in t.ops if op.name.endswith("_residual_scale")]
    assert scales == [("attn_residual_scale", "attn", 27, 4096), ("mlp_residual_scale", "mlp", 1, 4096),
                      ("mlp_residual_scale", "moe", 26, 4096)]
    assert sum(op.flops * op.repeat for op in t.ops if op.name.endswith("_residual_scale")) == 54 * 4096 == 221_184
    names = [(op.name, op.group) for op in t.ops]  # each scale right before its own add
    for name, group in (("attn_residual", "attn"), ("mlp_residual", "mlp"), ("mlp_residual", "moe")):
        assert names[names.index((name, group)) - 1] == (name + "_scale", group)


@pytest.mark.parametrize("layout", [{"tp": 2}, {"tp": 2, "ep": 2, "dp": 2}, {"tp": 2, "ep": 2, "dp": 2, "sp": True}])
def test_moe_residual_scale_is_sharded_like_its_add(tmp_path, layout):
    """Under TP / EP the MoE branch scale runs on the add's rows (the EP all-gather, when there is one, once
    and before it), never left unsharded."""
    import cosim
    p = cosim.build_trace(_moe_granite(tmp_path), "decode", 4, 1024, parallel=layout)
    assert not {"attn_residual_scale", "mlp_residual_scale"} & set(p.meta["parallel"]["unsharded_ops"])
    moe = [(op.name, op.dims.get("rows")) for op in p.ops if op.group == "moe"]
    tail = moe[-3:] if "moe_allgather" in [n for n, _ in moe] else moe[-2:]
    assert [n for n, _ in moe].count("moe_allgather") == (1 if layout.get("ep") and not layout.get("sp") else 0)
    assert [n for n, _ in tail][-2:] == ["mlp_residual_scale", "mlp_residual"] and tail[-1][1] == tail[-2][1]


def test_razor_after_eviction_stores_the_same_in_prefill_as_decode_reads():
    """h2o+razor_attention on Llama-3-8B at 8192: H2O keeps 1638 tokens a layer; RazorAttention then keeps all
    1638 for its 1 retrieval KV head of 8 and 4 sinks + 512 window + 1 = 517 for the other 7. Per layer
    (1638 + 7·517) head-tokens x K and V x 128 x 2 bytes = 2,691,584 B; x 32 layers = 86,130,688 B, what the
    decode step reads. The prefill trace took the kept fraction from the prompt's 8192 tokens (0.18 for 0.40):
    38.69 MB and capacity 295.2 before, 86.14 MB (+0.01 %: kv_write's rows resized with rounding) and the
    decode's 657.125 tokens now."""
    from compression_helpers import LLAMA3_8B, trace_for
    from workloads.compression import apply_recipe
    hand = 32 * (1638 + 7 * 517) * 2 * 128 * 2
    assert hand == 86_130_688
    dec = apply_recipe(trace_for(LLAMA3_8B, "decode", seq=8192), "h2o+razor_attention", LLAMA3_8B)
    pre = apply_recipe(trace_for(LLAMA3_8B, "prefill", seq=8192), "h2o+razor_attention", LLAMA3_8B)
    assert dec.meta["footprint"]["kv_cache"] == pytest.approx(hand, rel=1e-12)
    assert pre.meta["kv_state"]["capacity"] == dec.meta["kv_state"]["capacity"] == (1638 + 7 * 517) / 8 == 657.125
    assert pre.meta["footprint"]["kv_cache"] == pytest.approx(hand, rel=2e-4)


@pytest.mark.parametrize("spec, seq", [("razor_attention", 32768), ("kivi2+razor_attention", 8192),
                                       ("gear2+razor_attention", 8192), ("streaming_llm+razor_attention", 8192)])
def test_razor_bytes_per_token_is_the_shared_rescale_of_what_the_two_attention_ops_read(spec, seq):
    """RazorAttention's stored bytes ride the same scaffolding as eviction's (rescaled_bytes_per_token): the
    footprint equals the KV bytes its two decode attention ops read."""
    from compression_helpers import LLAMA3_8B, trace_for
    from workloads.compression import apply_recipe
    t = apply_recipe(trace_for(LLAMA3_8B, "decode", seq=seq), spec, LLAMA3_8B)
    read = sum(x.nbytes * op.repeat for op in t.ops if op.name in ("attention", "attention.local")
               for x in op.inputs if x.role == "kv")
    assert t.meta["footprint"]["kv_cache"] == pytest.approx(read, rel=1e-9)


def test_whole_token_groups_with_no_code_yet_keeps_the_residual():
    """kivi2+h2o on Llama-3-8B at 100 tokens: KIVI's 128-token residual still holds all 100 (no 2-bit code, no
    group to read G from), H2O keeps 20 of them in fp16: 20 x 32 layers x K and V x 8 heads x 128 x 2 B =
    2,621,440 B."""
    from compression_helpers import LLAMA3_8B, trace_for
    from workloads.compression import apply_recipe
    t = apply_recipe(trace_for(LLAMA3_8B, "decode", seq=100), "kivi2+h2o", LLAMA3_8B)
    assert t.meta["footprint"]["kv_cache"] == 20 * 32 * 2 * 8 * 128 * 2 == 2_621_440


@pytest.mark.parametrize("n, g, I, c", [(8192, 256, 100, 2), (8192, 200, 100, 1), (8192, 201, 100, 2),
                                        (8192, 0, 100, 0), (8192, 256, 0, 0), (150, 256, 100, 1)])
def test_zipcache_chunk_count_is_one_rule(n, g, I, c):
    """⌊(g − 1)/I⌋ chunks with g = min(generated, n): step 200 completes the 2nd chunk after its read (1 so far),
    step 201 reads it compressed; the split's buffer and the key stat sets follow the same count."""
    from workloads.compression.kv_quant import key_stat_sets, zipcache_chunks, zipcache_token_split
    assert zipcache_chunks(n, g, I) == c
    assert key_stat_sets(n, g, I, 2) == (1 + c) * 2
    if I:
        assert zipcache_token_split(n, g, 0.6, I)[2] == min(g, n) - c * I


# ---- non-GPU hwmodels ----------------------------------------------------------------------------
def test_operand_unit_check_caches_by_value_not_by_id(monkeypatch):
    """Two specs loaded apart with the same overrides are one cache entry (keyed on what the PE's format
    test depends on, not on id(), which a later spec can reuse); another section is another entry."""
    import cosim
    from hwmodels import roofline
    monkeypatch.setattr(roofline, "_UNITS", {})
    a = cosim.load_hw("mx_systolic_128", overrides={"accelerator.arrays": 2})
    b = cosim.load_hw("mx_systolic_128", overrides={"accelerator.arrays": 2})
    assert a is not b
    ta, tb = roofline.operand_unit_check(a), roofline.operand_unit_check(b)
    assert ta("mxfp4") and not ta("int4_g128") and len(roofline._UNITS) == 1
    assert tb("mxfp4") and not tb("int4_g128")
    c = cosim.load_hw("mx_systolic_128", overrides={"accelerator.pe.formats": ["mxfp8_e4m3", "bf16"]})
    assert not roofline.operand_unit_check(c)("mxfp4") and len(roofline._UNITS) == 2
    assert roofline.operand_unit_check(cosim.load_hw("h100_sxm")) is None


def test_operand_unit_check_catches_only_a_refused_spec(monkeypatch):
    """config_for's InputError (a spec the cycle level refuses): the format table's test, as before. Anything
    else is a bug and propagates (a KeyError was swallowed into the same fallback)."""
    from dataclasses import replace

    import cosim
    from hwmodels import accelerators, roofline
    base = cosim.load_hw("mx_systolic_128")  # load_hw refuses the buffer (session 17): a spec built directly
    hw = replace(base, sections={**base.sections, "accelerator": {**base.sections["accelerator"],
                                                                  "sram": {"ifmap": "8 MiB", "filter": "1 KiB",
                                                                           "ofmap": "4 MiB"}}})
    monkeypatch.setattr(roofline, "_UNITS", {})
    assert roofline.operand_unit_check(hw) == hw.supports  # the tile does not fit: refused by config_for

    def broken(_hw):
        raise KeyError("bug")
    monkeypatch.setattr(roofline, "_UNITS", {})
    monkeypatch.setattr(accelerators, "config_for", broken)
    with pytest.raises(KeyError, match="bug"):
        roofline.operand_unit_check(cosim.load_hw("mx_systolic_128"))


def test_an_unregistered_fpga_pe_format_is_refused_naming_the_field():
    """fpga.pe.formats with an unknown format: a HardwareError naming the override (was a bare FormatError,
    'unknown number format', with no file or field, from deep in the LUT model)."""
    import cosim
    from hwmodels.accelerators import config_for
    from hwmodels.spec import HardwareError
    with pytest.raises(HardwareError) as e:
        config_for(cosim.load_hw("versal_vck190", overrides={"fpga.engine": "pl", "fpga.pe.formats": ["int8", "foo"]}))
    assert str(e.value).startswith("override fpga.pe.formats (applied to versal_vck190.yaml): got 'foo'; "
                                   "expected a registered format (unknown number format 'foo'")


def test_override_blame_reads_the_structured_field_not_the_message():
    """config_for's errors carry source, field and problem (workloads.io.field_error); the blame reads those.
    An error without them is raised as it came, even when its text looks like 'file: field: ...' (the
    message was parsed for the field before)."""
    from dataclasses import replace

    import cosim
    from hwmodels.accelerators import _blamed
    from hwmodels.spec import HardwareError
    from workloads.io import field_error
    with pytest.raises(HardwareError) as e:  # config_for runs in load_hw since session 17: its blame there
        cosim.load_hw("mx_systolic_128", overrides={"accelerator.sram.filter": 1024})
    assert str(e.value).startswith("override accelerator.sram.filter (applied to mx_systolic_128.yaml): got 1024 B; "
                                   "expected")
    base = cosim.load_hw("mx_systolic_128")
    hw = replace(base, sections={**base.sections, "overrides": {"accelerator.sram.filter": 1024}})
    src = hw.source
    raw = field_error(src, "accelerator.sram.filter", "got 1024 B; expected more", HardwareError)
    assert (raw.source, raw.field, raw.problem) == (src, "accelerator.sram.filter", "got 1024 B; expected more")
    assert str(raw) == f"{src}: accelerator.sram.filter: got 1024 B; expected more"
    assert str(_blamed(raw, hw)) == ("override accelerator.sram.filter (applied to mx_systolic_128.yaml): "
                                     "got 1024 B; expected more")
    other = field_error(src, "accelerator.sram.ifmap", "got 1 B; expected more", HardwareError)
    assert str(_blamed(other, hw)) == (f"{src} (with overrides accelerator.sram.filter=1024): "
                                       "accelerator.sram.ifmap: got 1 B; expected more")
    text_only = HardwareError(str(raw))
    assert _blamed(text_only, hw) is text_only
