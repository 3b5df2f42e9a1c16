"""Session-36 review of the importers: a zero routed-expert count is refused (it priced the model as dense with
no word), DeepSeek's n_shared_experts is not left to a class default, a hardware file's `calibration.from` typo
names that file and field, and an experiment's attention / profile clash names the experiment file and fields.
Fixtures: the public config.json files of tests/data/hf_configs and the bundled hardware files, one key changed."""

import re
from pathlib import Path

import pytest

from cosim.cli import main
from hwmodels.spec import HardwareError, load_hw
from tests.hf_edit import DATA, write_config
from workloads.io import InputError
from workloads.models import model_from_hf_config

ROOT = Path(__file__).parents[1]
DEEPSEEK_V3 = 671_026_419_200  # the importer's count of tests/data/hf_configs/deepseek_v3.json (1 shared expert)
DEEPSEEK_V2 = 235_741_434_880  # deepseek_v2.json (2 shared experts)


def _refused(p) -> str:
    with pytest.raises(InputError) as e:
        model_from_hf_config(p)
    return str(e.value)


# ---------------------------------------------------------------- 1: zero routed experts

@pytest.mark.parametrize("base, key, mt, top_k", [("mixtral_8x7b", "num_local_experts", "mixtral", 2),
                                                  ("qwen1_5_moe_a2_7b", "num_experts", "qwen2_moe", 4),
                                                  ("deepseek_v3", "n_routed_experts", "deepseek_v3", 8),
                                                  ("deepseek_v2", "n_routed_experts", "deepseek_v2", 6)])
def test_zero_routed_experts_is_refused_not_priced_as_dense(tmp_path, base, key, mt, top_k):
    p = write_config(tmp_path, base, **{key: 0})
    assert _refused(p) == (f"{p}: {key}: got 0; expected at least num_experts_per_tok ({top_k}) for model_type {mt} "
                           f"(the routed experts each token picks from; 0 would price the model as dense)")


def test_fewer_routed_experts_than_each_token_picks_is_named_by_its_hf_key(tmp_path):
    # before: the spec's derived "moe.top_k: got 2; expected at least num_experts (1)", not the file's key
    p = write_config(tmp_path, "mixtral_8x7b", num_local_experts=1)
    assert _refused(p).startswith(f"{p}: num_local_experts: got 1; expected at least num_experts_per_tok (2) ")


def test_the_cli_prints_one_error_and_no_dense_mlp_rows(tmp_path, capsys):
    p = write_config(tmp_path, "mixtral_8x7b", num_local_experts=0)
    assert main(["simulate", "--model", str(p), "--hw", "h100_sxm", "--seq", "128"]) == 2
    out = capsys.readouterr()
    assert out.err.strip() == (f"error: {p}: num_local_experts: got 0; expected at least num_experts_per_tok (2) "
                               f"for model_type mixtral (the routed experts each token picks from; 0 would price "
                               f"the model as dense)")
    assert "gate_proj" not in out.out


# ---------------------------------------------------------------- 2: DeepSeek's n_shared_experts

@pytest.mark.parametrize("base, defaults", [
    ("deepseek_v3", "DeepseekV3Config defaults it to 1"),
    ("deepseek_v2", "transformers' DeepseekV2Config defaults it to 2, DeepSeek's remote-code DeepseekV2Config "
                    "to none")])
def test_a_missing_n_shared_experts_is_refused_naming_the_class_defaults(tmp_path, base, defaults):
    p = write_config(tmp_path, base, **{"-n_shared_experts": None})
    assert _refused(p) == (f"{p}: n_shared_experts: got missing; expected present for model_type {base} (the shared "
                           f"experts every MoE layer runs; {defaults}: not guessed; 0 for none)")


@pytest.mark.parametrize("base, full, less", [
    # V3: 58 MoE layers (61 - first_k_dense_replace 3) x 3 projections x 7168 x 2048: the one shared expert
    ("deepseek_v3", DEEPSEEK_V3, 2_554_331_136),
    # V2: 59 MoE layers (60 - 1) x 3 x 5120 x (2 x 1536): the two shared experts, one MLP 3072 wide
    ("deepseek_v2", DEEPSEEK_V2, 2_783_969_280)])
@pytest.mark.parametrize("value", [0, None])
def test_n_shared_experts_zero_or_null_is_no_shared_expert(tmp_path, base, full, less, value):
    # an explicit null: no shared expert, as DeepSeek's remote code reads it (`if n_shared_experts is not None`)
    assert model_from_hf_config(DATA / f"{base}.json").params == full
    m = model_from_hf_config(write_config(tmp_path, base, n_shared_experts=value))
    assert m.moe.shared_experts == 0 and m.params == full - less
    assert {2_554_331_136, 2_783_969_280} == {58 * 3 * 7168 * 2048, 59 * 3 * 5120 * 3072}  # the comments' sums


# ---------------------------------------------------------------- 3: calibration.from

def _hw(tmp_path, frm: str) -> Path:
    src = (ROOT / "cosim/configs/hw/h100_pcie.yaml").read_text()
    assert "calibration: {from: h100_sxm, sm_count: 114}" in src
    p = tmp_path / "my_gpu.yaml"
    p.write_text(src.replace("from: h100_sxm", f"from: {frm}"))
    return p


def test_an_unknown_calibration_from_names_the_hardware_file_and_field(tmp_path):
    p = _hw(tmp_path, "h100_sx")
    with pytest.raises(HardwareError) as e:
        load_hw(p)
    msg = str(e.value)
    assert msg.startswith(f"{p}: calibration.from: unknown hardware 'h100_sx': not a bundled hardware name")
    assert "did you mean h100_sxm" in msg and "\n" not in msg
    assert (e.value.source, e.value.field) == (str(p), "calibration.from")


def test_a_missing_calibration_from_file_names_the_hardware_file_and_field(tmp_path):
    p = _hw(tmp_path, "./nothere.yaml")
    with pytest.raises(HardwareError) as e:
        load_hw(p)
    assert str(e.value) == f"{p}: calibration.from: {tmp_path / 'nothere.yaml'}: no such hardware file"


def test_the_cli_names_the_hardware_file(tmp_path, capsys):
    p = _hw(tmp_path, "h100_sx")
    assert main(["simulate", "--model", "llama3_8b", "--hw", str(p), "--seq", "128"]) == 2
    assert capsys.readouterr().err.startswith(f"error: {p}: calibration.from: unknown hardware 'h100_sx'")


# ---------------------------------------------------------------- 4: an experiment's attention / profile clash

def _experiment(tmp_path, **form) -> Path:
    p = tmp_path / "clash.yaml"
    lines = ["name: clash", "model: llama3_8b", "phase: prefill", "batch: 1", "seq: 1024", "hw: h100_sxm",
             *(f"{k}: {v}" for k, v in form.items())]
    p.write_text("\n".join(lines) + "\n")
    return p


@pytest.mark.parametrize("form, fields, named", [
    ({"profile": "engine+fa2", "attention": "unfused"}, "attention, profile", "attention 'unfused' computes"),
    ({"profile": "engine+fa2", "recipe": "h2o"}, "recipe, profile", "recipe 'h2o' (its attention materialises")])
def test_an_experiments_profile_clash_names_the_file_and_both_fields(tmp_path, form, fields, named):
    from cosim.experiment import run_experiment
    p = _experiment(tmp_path, **form)
    with pytest.raises(InputError) as e:
        run_experiment(str(p), accuracy=False)
    msg = str(e.value)
    assert msg.startswith(f"{p}: {fields}: {named}") and "build_trace" not in msg
    assert re.search(r"profile 'engine\+fa2' prices it as one fa2 kernel; they contradict each other", msg)


def test_the_cli_run_names_the_experiment_file(tmp_path, capsys):
    p = _experiment(tmp_path, profile="engine+fa2", attention="unfused", output=str(tmp_path / "out"))
    assert main(["run", str(p)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {p}: attention, profile: attention 'unfused' computes")


def test_a_profile_leaving_attention_to_its_default_still_runs_the_unfused_algorithm(tmp_path):
    from cosim.experiment import run_experiment
    rep = run_experiment(str(_experiment(tmp_path, profile="engine", attention="unfused")), accuracy=False)
    assert rep.total_latency_s > 0
