"""Review of the session-9 quantized-checkpoint, serve and name-resolution fixes (9650b18..0b323a0):
each test fails on the code before its fix (run against the HEAD copy of the changed file)."""

import json

import pytest

# ---- 2. stored zeros and indexes: AWQ zero_point: false, GPTQ's g_idx

_LLAMA31_8B = {"model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
               "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
               "max_position_embeddings": 131072, "tie_word_embeddings": False, "torch_dtype": "bfloat16"}


def _ckpt(tmp_path, qc, name):
    p = tmp_path / f"{name}.json"
    p.write_text(json.dumps({**_LLAMA31_8B, "quantization_config": qc}))
    return p


def test_awq_without_zero_point_still_stores_qzeros(tmp_path):
    """vLLM awq.py AWQLinearMethod.create_weights allocates qzeros ((in / G) x (out / 8) int32) with no
    zero_point branch: a `zero_point: false` checkpoint takes the _zp bytes (was int4_g128, 4.125 bits)."""
    import cosim
    from workloads.models import model_from_hf_config
    m = model_from_hf_config(_ckpt(tmp_path, {"quant_method": "awq", "bits": 4, "group_size": 128,
                                              "zero_point": False}, "awq_sym"))
    assert m.weights_format == "int4_g128_symz" and m.g_idx_bits == 0  # AWQ keeps no g_idx
    zp = model_from_hf_config(_ckpt(tmp_path, {"quant_method": "awq", "bits": 4, "group_size": 128}, "awq_zp"))
    w = cosim.build_trace(m, "decode", 1, 128).meta["footprint"]["weights"]
    assert w == cosim.build_trace(zp, "decode", 1, 128).meta["footprint"]["weights"]
    # the old pricing, int4_g128 layers: 6,979,588,096 layer parameters (the final norm among them) x 4 bits / 128
    # / 8 = 27,264,016 bytes short (the bf16 embedding and lm_head, 2 x 128256 x 4096, unchanged)
    E = 128256 * 4096
    layers = m.params - 2 * E
    assert layers == 6979588096
    assert w == (layers * (4 + 20 / 128) + 2 * E * 16) / 8
    assert w - (layers * (4 + 16 / 128) + 2 * E * 16) / 8 == layers / 256 == 27264016


def test_gptq_g_idx_is_counted_per_layer(tmp_path):
    """GPTQ stores g_idx, one int32 per input channel of each Linear, whatever desc_act (vLLM gptq.py
    GPTQLinearMethod.create_weights). Llama-3.1-8B a layer: q, k, v, gate, up 4096 inputs each, o 4096,
    down 14336 -> 38,912 x 4 = 155,648 bytes; 32 layers 4,980,736 bytes (5.0 MB), was not counted."""
    import cosim
    from workloads.models import model_from_hf_config
    qc = {"quant_method": "gptq", "bits": 4, "group_size": 128, "sym": True, "desc_act": False}
    g = model_from_hf_config(_ckpt(tmp_path, qc, "gptq"))
    assert g.g_idx_bits == 32 and g.linear_inputs() == 32 * (6 * 4096 + 14336) == 32 * 38912
    awq = model_from_hf_config(_ckpt(tmp_path, {"quant_method": "awq", "bits": 4, "group_size": 128,
                                                "zero_point": False}, "awq"))
    assert g.weights_format == awq.weights_format == "int4_g128_symz"
    t = cosim.build_trace(g, "decode", 1, 128)
    w = t.meta["footprint"]["weights"]
    assert w - cosim.build_trace(awq, "decode", 1, 128).meta["footprint"]["weights"] == 4980736
    assert "g_idx (int32 per input channel of each Linear) counted" in next(
        n for n in t.meta["notes"] if n.startswith("weights int4_g128_symz"))
    # another weights format prices no index; the declared one named explicitly still does
    assert cosim.build_trace(g, "decode", 1, 128, weights="int4_g128_symz").meta["footprint"]["weights"] == w
    assert (cosim.build_trace(g, "decode", 1, 128, weights="bf16").meta["footprint"]["weights"]
            == g.params * 2)
    # desc_act: true stores the same g_idx (a permuted one)
    gd = model_from_hf_config(_ckpt(tmp_path, {**qc, "desc_act": True}, "gptq_act"))
    assert cosim.build_trace(gd, "decode", 1, 128).meta["footprint"]["weights"] == w


def test_a_model_file_refuses_a_bad_g_idx_width(tmp_path):
    from workloads.io import InputError
    from workloads.models import load_model
    p = tmp_path / "m.yaml"
    p.write_text("name: m\nhidden: 64\nlayers: 1\nheads: 2\nintermediate: 128\nvocab: 32\ng_idx_bits: 16\n")
    with pytest.raises(InputError, match=r"m.yaml: g_idx_bits: got 16; expected 0 .* or 32"):
        load_model(str(p))


# ---- 3. compressed-tensors ignore entries said by what they reach

_CT = {"quant_method": "compressed-tensors", "config_groups": {"group_0": {
    "targets": ["Linear"], "weights": {"num_bits": 4, "type": "int", "strategy": "group", "group_size": 128,
                                       "symmetric": True}}}}
_TINY = {"model_type": "llama", "hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2,
         "num_attention_heads": 2, "num_key_value_heads": 2, "vocab_size": 64, "tie_word_embeddings": False,
         "max_position_embeddings": 256, "torch_dtype": "float16"}


def _note(tmp_path, ignore, weights=None, extra=None, name="ct"):
    import cosim
    from workloads.models import model_from_hf_config
    p = tmp_path / f"{name}.json"
    p.write_text(json.dumps({**_TINY, **(extra or {}), "quantization_config": {**_CT, "ignore": ignore}}))
    t = cosim.build_trace(model_from_hf_config(p), "decode", 1, 16, weights=weights)
    return next(n for n in t.meta["notes"] if n.startswith("weights "))


@pytest.mark.parametrize("entry", ["model.layers.0.self_attn.q_proj", "model.layers.1.self_attn.k_proj",
                                   "re:.*v_proj", "re:.*o_proj$", "re:model.layers.0.mlp.gate_proj",
                                   "re:.*up_proj", "model.layers.1.mlp.down_proj", "re:.*self_attn.*"])
def test_an_ignore_entry_reaching_a_decoder_linear_is_priced_in_the_declared_format(tmp_path, entry):
    assert f"ignore also names {entry!r} (decoder Linears: not modelled as unquantized, priced as int4_g128)" \
        in _note(tmp_path, ["lm_head", entry])


def test_an_ignore_entry_is_said_by_what_it_reaches(tmp_path):
    # was: every entry beside the lm_head "not modelled, those modules priced as int4_g128"
    note = _note(tmp_path, ["lm_head", "model.embed_tokens", "re:vision_tower.*", "re:.*mlp.gate$"])
    assert ("compressed-tensors; ignore leaves the lm_head unquantized ('lm_head'); ignore also names "
            "'model.embed_tokens' (the embedding: already unquantized), 're:vision_tower.*' (matches no modelled "
            "module), 're:.*mlp.gate$' (matches no modelled module); the checkpoint's format") in note, note
    assert "priced as" not in note
    # a MoE config has a router: the same entry reaches it (priced in the declared format, docs Limits)
    moe = _note(tmp_path, ["lm_head", "re:.*mlp.gate$"], extra={"model_type": "qwen2_moe", "num_experts": 4,
                                                                 "num_experts_per_tok": 2,
                                                                 "moe_intermediate_size": 64}, name="moe")
    assert "'re:.*mlp.gate$' (the MoE router: not modelled as unquantized, priced as int4_g128)" in moe, moe
    # re:.* reaches the lm_head and every layer
    assert "'re:.*' (decoder Linears: not modelled as unquantized, priced as int4_g128)" in _note(
        tmp_path, ["re:.*"], name="all")


def test_an_overriding_weights_format_drops_the_declared_formats_clauses(tmp_path):
    # was: "... overrides the checkpoint's int4_g128 from config.json quantization_config: compressed-tensors;
    # ignore leaves ...; ignore also names ...: not modelled, those modules priced as int4_g128" under --weights bf16
    note = _note(tmp_path, ["lm_head", "re:.*down_proj"], weights="bf16")
    assert note == ("weights bf16 (given; overrides the checkpoint's int4_g128 from config.json quantization_config: "
                    "compressed-tensors)"), note


# ---- 4 and 7. serve's replica energy: the idle pipeline stage, and a one-device draft's idle devices

def _serve_with_and_without_idle_power(monkeypatch, **kw):
    """(new, old, busy seconds): old is the same run with each step model's replica set to its tp copies
    alone (no idle device's static power), as before session 9; the steps and their latencies are the same."""
    from cosim.serving import engine, serve
    from cosim.serving.steptime import DeviceStepCost
    runs = []
    orig_run = engine.Engine.run

    def run(self):
        runs.append(orig_run(self))
        return runs[-1]

    monkeypatch.setattr(engine.Engine, "run", run)
    new = serve("llama3_8b", "dgx_h100", **kw)
    busy = sum(r.busy_s for r in runs[-1].replicas)
    orig_post = DeviceStepCost.__post_init__

    def one_device_each(self):
        orig_post(self)
        self.devices = self.copies

    monkeypatch.setattr(DeviceStepCost, "__post_init__", one_device_each)
    old = serve("llama3_8b", "dgx_h100", **kw)
    assert sum(r.busy_s for r in runs[-1].replicas) == pytest.approx(busy, rel=1e-12)
    return new.summary, old.summary, busy


def test_the_serving_docs_pp2_energy_example_is_the_run_it_describes(monkeypatch):
    """docs/serving.md: `cosim serve --model llama3_8b --hw dgx_h100 --pp 2 --qps 2 --requests 30 --prompt-len
    512 --output-len 64`: 2.002 J per output token, 1.276 J before session 9 (the docs said 2.15 / 1.37 J, the
    figures of 20 requests of 256 + 32 tokens). The difference is the idle stage's 210 W (h100_sxm.yaml
    energy.static_power) over the busy steps, per output token: 210 W x busy / 1920 tokens. (Session 13: the
    stage-to-stage send carries 210 W x its time too, hwmodels.collectives.with_static_power: 2.00126 -> 2.00193,
    1.27576 -> 1.27643.)"""
    new, old, busy = _serve_with_and_without_idle_power(
        monkeypatch, parallel={"pp": 2}, qps=2, requests=30, prompt_len=512, output_len=64)
    assert new["energy_per_token_j"] == pytest.approx(2.00193, rel=1e-5)
    assert old["energy_per_token_j"] == pytest.approx(1.27643, rel=1e-5)
    assert (new["energy_j"] - old["energy_j"]) / busy == pytest.approx(210.0, rel=1e-9)
    assert new["energy_per_token_j"] - old["energy_per_token_j"] == pytest.approx(210.0 * busy / (30 * 64), rel=1e-9)


def test_a_one_device_draft_on_a_tp2_replica_adds_the_other_devices_static_power(monkeypatch):
    """A draft model runs on one device of the replica (serve._draft: replica_devices = the layout's devices):
    its step is one trace, plus the other device's static power for the step's time. One draft step (llama3_2_3b,
    8 sequences at KV 1024, dgx_h100 roofline): (E_replica - E_one) / (1 other device x latency) = 210 W."""
    from cosim.serving.steptime import DeviceStepCost, StepBatch, Workload
    from hwmodels.system import load_system
    from workloads.models import load_model
    hw = load_system("dgx_h100").device
    w = Workload(load_model("llama3_2_3b"))
    one = DeviceStepCost(w, hw, "roofline", 0.0).step_cost(StepBatch((), (1024,) * 8))
    rep = DeviceStepCost(w, hw, "roofline", 0.0, replica_devices=2).step_cost(StepBatch((), (1024,) * 8))
    assert rep.latency_s == one.latency_s
    assert (rep.energy_j - one.energy_j) / ((2 - 1) * one.latency_s) == pytest.approx(210.0, rel=1e-12)
    # the whole run: speculative k=4, a=0.7, 20 requests of 256 + 32 tokens (seed 0) at 2 req/s on tp2:
    # 2.0746 J per output token (2.0314 J before session 13 charged the tp2 all-reduces 210 W x their time;
    # 2.4187 J when the draft's energy was multiplied by tp)
    from cosim.serving import serve
    r = serve("llama3_8b", "dgx_h100", parallel={"tp": 2}, qps=2, requests=20, prompt_len=256, output_len=32,
              seed=0, speculative={"draft_len": 4, "acceptance": 0.7, "draft_model": "llama3_2_3b"})
    assert r.summary["energy_per_token_j"] == pytest.approx(2.07457, rel=1e-5)


# ---- 5. the bare-name note: folders only where ./name reads one, a public recipe splitter, experiment and sweep files

_PHI3 = {"model_type": "phi3", "hidden_size": 3072, "intermediate_size": 8192, "num_hidden_layers": 32,
         "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 32064,
         "max_position_embeddings": 4096, "tie_word_embeddings": False}


def test_a_hardware_or_recipe_folder_gets_no_note_a_file_does(tmp_path, monkeypatch, capsys):
    # was: "write ./h100_sxm to use it" for a folder, and ./h100_sxm then errors "is a directory"
    from cosim.cli import main
    monkeypatch.chdir(tmp_path)
    (tmp_path / "h100_sxm").mkdir()
    (tmp_path / "kivi2").mkdir()
    assert main(["roofline", "--model", "llama3_8b", "--hw", "h100_sxm", "--recipe", "kivi2"]) == 0
    assert "note:" not in capsys.readouterr().err
    (tmp_path / "h100_sxm").rmdir()
    (tmp_path / "h100_sxm").write_text("name: mine\n")
    assert main(["roofline", "--model", "llama3_8b", "--hw", "h100_sxm"]) == 0
    assert ("note: hw 'h100_sxm' is the bundled hw/h100_sxm.yaml; the file ./h100_sxm in the working directory is "
            "not read (write ./h100_sxm to use it)") in capsys.readouterr().err


def test_a_model_folder_gets_the_note_only_when_it_holds_a_config(tmp_path, monkeypatch):
    from cosim.shadow import shadow_notes_for
    monkeypatch.chdir(tmp_path)
    (tmp_path / "llama3_8b").mkdir()
    assert shadow_notes_for([("model", "llama3_8b")]) == []  # ./llama3_8b would be refused: nothing to read
    (tmp_path / "llama3_8b" / "config.json").write_text(json.dumps(_PHI3))
    assert shadow_notes_for([("model", "llama3_8b")]) == [
        "model 'llama3_8b' is the bundled models/llama3_8b.yaml; the folder ./llama3_8b in the working directory "
        "is not read (write ./llama3_8b to use it)"]


def test_recipe_part_names_is_the_public_splitter():
    from workloads.compression.recipe import recipe_part_names
    assert recipe_part_names("kivi2(group_size=64, bits=2)+h2o") == ["kivi2", "h2o"]
    assert recipe_part_names("kivi2") == ["kivi2"]


def test_an_experiment_files_bare_model_name_gets_the_note_in_its_report(tmp_path, monkeypatch):
    # was: cosim run resolved the file's `model: llama3_8b` to the bundled model and said nothing
    from cosim.experiment import run_experiment
    from workloads.io import ShadowedNameWarning
    monkeypatch.chdir(tmp_path)
    (tmp_path / "llama3_8b").mkdir()
    (tmp_path / "llama3_8b" / "config.json").write_text(json.dumps(_PHI3))
    with pytest.warns(ShadowedNameWarning, match="model 'llama3_8b' is the bundled"):  # the Python caller told too
        rep = run_experiment({"name": "x", "model": "llama3_8b", "phase": "decode", "batch": 1, "seq": 128,
                              "hw": "h100_sxm"})
    assert ("model 'llama3_8b' is the bundled models/llama3_8b.yaml; the folder ./llama3_8b in the working "
            "directory is not read (write ./llama3_8b to use it)") in rep.notes, rep.notes


def test_a_sweep_files_bare_names_get_the_note(tmp_path, monkeypatch, capsys):
    from cosim.cli import main
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mistral_7b").mkdir()
    (tmp_path / "mistral_7b" / "config.json").write_text(json.dumps(_PHI3))
    (tmp_path / "s.yaml").write_text("name: s\nbase: {model: llama3_8b, phase: decode, seq: 128, batch: 1, "
                                     "hw: h100_sxm, level: roofline}\naxes:\n  - grid: {model: [llama3_8b, "
                                     "mistral_7b]}\nobjectives: {latency_s: min}\noutput: out\n")
    assert main(["sweep", "./s.yaml", "--dry-run"]) == 0
    err = capsys.readouterr().err
    assert ("note: model 'mistral_7b' is the bundled models/mistral_7b.yaml; the folder ./mistral_7b in the "
            "working directory is not read (write ./mistral_7b to use it)") in err, err


# ---- 6. a config saved from a local folder: `_name_or_path` is that folder's path

@pytest.mark.parametrize("own, name", [("/home/u/models/Foo", "Foo"), ("/home/u/models/Foo/", "Foo"),
                                       ("./ckpt/Foo-8B", "Foo-8B"), ("~/Foo", "Foo"), ("../Foo", "Foo"),
                                       ("C:\\models\\Foo", "Foo"), ("meta-llama/Llama-3.1-8B", "meta-llama/Llama-3.1-8B"),
                                       ("gpt2", "gpt2"), (".", "tiny")])
def test_a_local_name_or_path_names_the_model_by_its_last_component(tmp_path, own, name):
    # was: the path verbatim ("/home/u/models/Foo" as the model's name)
    from workloads.models import model_from_hf_config
    p = tmp_path / "tiny.json"
    p.write_text(json.dumps({**_TINY, "_name_or_path": own}))
    assert model_from_hf_config(p).name == name
