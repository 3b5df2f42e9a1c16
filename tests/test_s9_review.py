"""Session-9 review findings left open by the final review: each test fails on the code
before its fix (shown by running it against the HEAD copy of the changed file)."""

import json

import pytest

from cosim.cli import main
from workloads.io import ShadowedNameWarning

_PHI3 = {"model_type": "phi3", "hidden_size": 3072, "intermediate_size": 8192, "num_hidden_layers": 32,
         "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 32064,
         "max_position_embeddings": 4096, "tie_word_embeddings": False}


# ---- 1. a bare bundled name: the bundled file for every kind, and a note when a local one is passed over

def test_a_bundled_trace_name_is_the_bundled_trace_even_beside_a_same_named_file(tmp_path, monkeypatch):
    # was: a file ./sharegpt_synth was read (traces resolved local-first, models bundled-first)
    from cosim.serving.arrivals import load_trace
    monkeypatch.chdir(tmp_path)
    bundled = load_trace("sharegpt_synth")
    (tmp_path / "sharegpt_synth").write_text("arrival_s,prompt_len,output_len\n0.0,7,3\n")
    with pytest.warns(ShadowedNameWarning, match="trace 'sharegpt_synth' is the bundled"):  # and the user is told
        assert load_trace("sharegpt_synth") == bundled and len(bundled) == 2000
    assert [(r.prompt_len, r.output_len) for r in load_trace("./sharegpt_synth")] == [(7, 3)]  # a path: the user's


def test_a_bundled_sweep_name_is_the_bundled_sweep_even_beside_a_same_named_file(tmp_path, monkeypatch):
    from cosim.dse.spec import load_sweep
    monkeypatch.chdir(tmp_path)
    (tmp_path / "weight_formats").write_text("not: a sweep\n")
    with pytest.warns(ShadowedNameWarning, match="sweep 'weight_formats' is the bundled"):  # and the user is told
        assert load_sweep("weight_formats").source.endswith("sweeps/weight_formats.yaml")


def test_the_cli_says_which_local_folder_a_bundled_name_passed_over(tmp_path, monkeypatch, capsys):
    (tmp_path / "llama3_8b").mkdir()
    (tmp_path / "llama3_8b" / "config.json").write_text(json.dumps(_PHI3))
    (tmp_path / "kivi2").mkdir()
    monkeypatch.chdir(tmp_path)
    assert main(["roofline", "--model", "llama3_8b", "--hw", "h100_sxm", "--recipe", "kivi2(group_size=64)"]) == 0
    err = capsys.readouterr().err
    assert ("note: model 'llama3_8b' is the bundled models/llama3_8b.yaml; the folder ./llama3_8b in the "
            "working directory is not read (write ./llama3_8b to use it)") in err, err
    # a recipe folder is not a recipe: ./kivi2 would be an error, so no note sends the user there (test_qsfix_review)
    assert "note: recipe" not in err, err
    assert main(["roofline", "--model", "./llama3_8b", "--hw", "h100_sxm"]) == 0  # a path: no note
    assert "note: model" not in capsys.readouterr().err


# ---- 2. GPTQ sym: true checkpoints store qzeros too (bits per group per output column)

_TINY = {"model_type": "llama", "hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 1,
         "num_attention_heads": 2, "num_key_value_heads": 2, "vocab_size": 64, "tie_word_embeddings": False,
         "max_position_embeddings": 256, "torch_dtype": "float16"}


def _tiny(tmp_path, qc, name="config.json"):
    p = tmp_path / name
    p.write_text(json.dumps({**_TINY, "quantization_config": qc}))
    return p


def test_gptq_symmetric_weights_count_their_stored_qzeros(tmp_path):
    """GPTQ's layout (vLLM gptq.py GPTQLinearMethod.create_weights): per Linear of in x out,
    qweight (in x bits / 32) x out int32, scales (in / G) x out fp16, qzeros (in / G) x
    (out x bits / 32) int32, the last one stored whether `sym` is true or not. Was priced as
    int4_g128 (no zeros): 640 bytes short on this one-layer model, ~0.03 bit a weight."""
    import cosim
    from workloads.models import model_from_hf_config
    m = model_from_hf_config(_tiny(tmp_path, {"quant_method": "gptq", "bits": 4, "group_size": 128, "sym": True}))
    assert m.weights_format == "int4_g128_symz"
    # q, k, v, o: 128 -> 128; gate, up: 128 -> 256; down: 256 -> 128 (in, out)
    linears = [(128, 128)] * 4 + [(128, 256)] * 2 + [(256, 128)]
    qzeros = sum((i // 128) * (o * 4 // 32) * 4 for i, o in linears)
    assert qzeros == 4 * 64 + 2 * 128 + 128 == 640
    qweight = sum(i * o * 4 // 8 for i, o in linears)  # 81,920
    scales = sum((i // 128) * o * 2 for i, o in linears)  # 2,560
    assert (qweight, scales) == (81920, 2560)
    t = cosim.build_trace(m, "decode", 1, 16)
    norms = 2 * 128 + 128  # priced in the declared format too (docs/quantized-checkpoints.md, Limits)
    tables = 2 * 64 * 128 * 2  # embedding and lm_head, float16
    w = t.meta["footprint"]["weights"]
    g_idx = sum(i for i, o in linears) * 4  # int32 per input channel, stored whatever desc_act (test_qsfix_review)
    assert g_idx == 4096
    assert w == (qweight + scales + qzeros + g_idx) + norms * (4 + 20 / 128) / 8 + tables == 122183.5
    assert get_format_bits("int4_g128_symz") == get_format_bits("int4_g128_zp") == 4 + (16 + 4) / 128
    assert any("weights int4_g128_symz (config.json quantization_config: gptq" in n for n in t.meta["notes"])


def get_format_bits(name):
    from workloads.formats import get_format
    return get_format(name).bits_per_element


def test_symz_quantizes_like_the_symmetric_format():
    # the stored zero changes bytes, not values: GPTQ sym: true is a symmetric quantizer
    import numpy as np

    from cosim.functional import quantize
    x = np.random.default_rng(0).standard_normal((4, 256)).astype(np.float32)
    assert np.array_equal(quantize(x, "int4_g128_symz"), quantize(x, "int4_g128"))
    assert not np.array_equal(quantize(x, "int4_g128_zp"), quantize(x, "int4_g128"))


# ---- 3. compressed-tensors `ignore` entries written as regexes

_CT = {"quant_method": "compressed-tensors", "config_groups": {"group_0": {
    "targets": ["Linear"], "weights": {"num_bits": 4, "type": "int", "strategy": "group", "group_size": 128,
                                       "symmetric": True}}}}


def test_compressed_tensors_ignore_regexes_are_matched_and_said(tmp_path):
    # was: only the literal "lm_head" counted, so llm-compressor's `re:.*lm_head` priced the head in int4
    import cosim
    from workloads.models import model_from_hf_config
    m = model_from_hf_config(_tiny(tmp_path, {**_CT, "ignore": ["re:.*lm_head", "re:.*mlp.gate$"]}))
    assert (m.weights_format, m.embed_format, m.lm_head_format) == ("int4_g128", "fp16", "fp16")
    t = cosim.build_trace(m, "decode", 1, 16)
    note = next(n for n in t.meta["notes"] if n.startswith("weights int4_g128"))
    # a dense model has no router: the entry matches no modelled module (test_qsfix_review; was "not modelled,
    # those modules priced as int4_g128")
    assert ("ignore leaves the lm_head unquantized ('re:.*lm_head'); ignore also names 're:.*mlp.gate$' "
            "(matches no modelled module)" in note), note
    assert "lm_head fp16 (unquantized)" in note
    # 8192 head weights at fp16, not 4 + 16/128 bits: +8192 x (16 - 4.125) / 8 = 12,160 bytes
    quantized_head = model_from_hf_config(_tiny(tmp_path, _CT, "q.json"))
    assert quantized_head.lm_head_format is None
    w_q = cosim.build_trace(quantized_head, "decode", 1, 16).meta["footprint"]["weights"]
    assert t.meta["footprint"]["weights"] - w_q == 64 * 128 * (16 - 4.125) / 8 == 12160


def test_ignore_regex_follows_re_match_and_a_bad_one_is_refused(tmp_path):
    import pytest

    from workloads.hf_quant import ignored
    from workloads.io import InputError
    # re.match anchors at the start only (compressed_tensors match_name): 'model.lm_head' does not match 'lm_head'
    assert ignored({**_CT, "ignore": ["re:lm_", "re:model.lm_head", "lm_head"]}, "c.json") == (
        ["re:lm_", "lm_head"], ["re:model.lm_head"])
    assert ignored({**_CT, "ignore": ["re:.*"]}, "c.json") == (["re:.*"], ["re:.*"])  # it reaches every layer
    with pytest.raises(InputError, match=r"c.json: quantization_config.ignore\[1\]: got 're:\(lm'; expected"):
        ignored({**_CT, "ignore": ["lm_head", "re:(lm"]}, "c.json")


# ---- 7. a loose HF JSON file takes its own name, not its folder's

def test_a_loose_hf_json_is_named_after_the_file_or_its_own_name_field(tmp_path):
    from workloads.models import load_model, model_from_hf_config
    (tmp_path / "ckpts").mkdir()
    loose = tmp_path / "ckpts" / "tiny_llama.json"
    loose.write_text(json.dumps(_TINY))
    assert model_from_hf_config(loose).name == "tiny_llama"  # was "ckpts"
    assert load_model(str(loose)).name == "tiny_llama"
    (tmp_path / "ckpts" / "config.json").write_text(json.dumps(_TINY))
    assert load_model(str(tmp_path / "ckpts")).name == "ckpts"  # a checkpoint folder's config.json: the folder
    named = tmp_path / "ckpts" / "other.json"
    named.write_text(json.dumps({**_TINY, "_name_or_path": "org/Tiny-Llama"}))
    assert model_from_hf_config(named).name == "org/Tiny-Llama"  # the config's own name field first


# ---- 4. serve: a pipelined replica's idle stages draw static power; a given step model's energy is its own

def _system_step(par):
    from cosim.serving.steptime import DeviceStepCost, StepBatch, Workload
    from hwmodels.collectives import estimate_system_ops
    from hwmodels.system import load_system
    from workloads.builder import build_trace
    from workloads.models import load_model
    s = load_system("dgx_h100")
    tr = build_trace("llama3_8b", "decode", 8, 1024, parallel=par)
    costs, _ = estimate_system_ops(tr.ops, s, "roofline")
    lat = sum(c.latency_s * o.repeat for c, o in zip(costs, tr.ops))
    e = sum(c.energy_j * o.repeat for c, o in zip(costs, tr.ops))
    m = DeviceStepCost(Workload(load_model("llama3_8b"), parallel=tuple(sorted(par.items()))), s.device,
                       "roofline", 0.0, system=s)
    return lat, e, m.step_cost(StepBatch((), (1024,) * 8))


def test_a_pipelined_serving_step_counts_the_idle_stages_static_power():
    """llama3_8b decode, 8 sequences at KV 1024, on dgx_h100 (roofline). pp2: the one-device trace walks both
    stages in 4.835 ms for 1.779 J; while stage 0 works stage 1 waits and the other way round, so the replica's
    two devices are powered 2 x 4.835 ms and the trace covers one of them: + 210 W (h100_sxm.yaml
    energy.static_power) x 4.835 ms = 1.015 J, 2.794 J a step (was 1.778 J). tp2 x pp2: 2 copies x 0.951 J
    + 210 W x 2 idle devices x 2.705 ms = 1.902 + 1.136 = 3.038 J (was 2 x 0.891 = 1.783 J). Session 13: the
    trace's collectives carry 210 W x their time (hwmodels.collectives.with_static_power): the pp send
    1.77786 -> 1.77874 J, the tp2 all-reduces 0.891 -> 0.951 J a trace."""
    import pytest
    lat, e, step = _system_step({"pp": 2})
    assert (lat, e) == (pytest.approx(4.8348e-3, rel=1e-4), pytest.approx(1.77874, rel=1e-4))
    assert step.latency_s == pytest.approx(lat, rel=1e-12)
    assert step.energy_j == pytest.approx(e + 210.0 * lat, rel=1e-12) == pytest.approx(2.79405, rel=1e-4)
    lat, e, step = _system_step({"tp": 2, "pp": 2})
    assert step.energy_j == pytest.approx(2 * e + 210.0 * 2 * lat, rel=1e-12) == pytest.approx(3.03841, rel=1e-4)
    lat, e, step = _system_step({"tp": 2})  # no idle stage: tp copies only
    assert step.energy_j == pytest.approx(2 * e, rel=1e-12)


class _Fixed:
    """A user step model: 10 ms and 3 J a step, whatever the batch."""
    notes = ()

    def step_cost(self, batch):
        from cosim.serving.steptime import StepCost
        return StepCost(0.01, 3.0)


def test_serve_takes_a_given_step_models_energy_as_the_replicas():
    # was: multiplied by the layout's tp (6 J a step here) although the model had priced the replica
    from cosim.serving import serve
    r = serve("llama3_8b", "dgx_h100", step_model=_Fixed(), parallel={"tp": 2}, qps=2, requests=6,
              prompt_len=64, output_len=4, seed=1)
    assert r.summary["energy_j"] == 3.0 * r.summary["steps"]
    assert any("step costs: _Fixed (given; its energy is taken as the replica's, unscaled)" in n for n in r.notes)


# ---- 5. serve's level_used comes from the priced components

def test_serve_level_used_is_read_off_the_priced_components():
    # gear2's KV ops have no analytical kernel model: the roofline priced them; level_support alone said
    # "analytical"; a given step model priced the steps itself
    from cosim.serving import serve
    kw = dict(qps=2, requests=5, prompt_len=128, output_len=8)
    r = serve("llama3_8b", "h100_sxm", level="analytical", recipe="gear2", **kw)
    assert r.summary["level_used"] == "analytical+roofline"
    assert "level analytical requested; steps priced at analytical+roofline" in r.format().splitlines()[0]
    assert serve("llama3_8b", "h100_sxm", level="analytical", **kw).summary["level_used"] == "analytical"
    assert serve("llama3_8b", "h100_sxm", step_model=_Fixed(), **kw).summary["level_used"] == "given"


# ---- 6. a sweep's system point takes tokens, tokens/s and energy/token from the layout step, derived once

def test_a_sweep_system_point_reports_the_layout_steps_own_figures(tmp_path, monkeypatch):
    # was: evaluate re-derived tokens from batch x seq next to layout_step's own; the row now carries layout_step's
    import cosim.parallel_timing as pt
    from cosim.dse import sweep
    real = pt.layout_step
    seen = []

    def marked(rep):  # the layout step with a tell-tale token count: the row must show exactly its figures
        st = real(rep)
        st = {**st, "tokens": 3 * st["tokens"], "tokens_per_s": 3 * st["tokens_per_s"],
              "energy_per_token_j": st["energy_per_token_j"] / 3}
        seen.append(st)
        return st
    monkeypatch.setattr(pt, "layout_step", marked)
    base = {"model": "llama3_8b", "hw": "h100_sxm", "system": "dgx_h100", "parallel": {"tp": 2}, "phase": "decode",
            "batch": 8, "seq": 1024}
    df = sweep({"name": "s", "base": base, "axes": [{"grid": {"parallel.tp": [2, 4]}}],
                "output": str(tmp_path / "o")}, quiet=True, write=False)
    assert len(seen) == 2
    got = sorted(zip(df["tokens_per_s"], df["energy_per_token_j"]))
    assert got == sorted((st["tokens_per_s"], st["energy_per_token_j"]) for st in seen)


# ---- 8. the MLA projection twin labels its draw

def test_the_mla_projection_twin_labels_its_weight_draw():
    # was: kv_proj_sqnr_db came with the KV head's source only; its float64 W_k | W_v draw went unsaid
    from cosim.functional.compression.twin import TWIN_DRAW, run_twin
    res = next(iter(run_twin("mla(kv_lora_rank=256)", model="llama3_8b", prompt=64, steps=2, seed=3).values()))
    assert TWIN_DRAW == "drawn in float64, rounded to float32"
    assert res["kv_proj_source"] == ("synthetic W_k | W_v (fitted to SmolLM2-135M weight statistics) and LLM-like "
                                     "activations, drawn in float64, rounded to float32; numpy default_rng(3), "
                                     "drawn after the KV head")
    assert res["status"] == "ok" and res["kv_proj_sqnr_db"] > 0
