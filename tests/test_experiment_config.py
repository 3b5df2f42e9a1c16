"""The typed experiment config: a frozen dataclass tree, the plain mapping unchanged."""

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cosim.experiment import (ACCURACY_DEFAULTS, DEFAULTS, experiment_from_dict, load_experiment,
                              resolve_experiment)
from cosim.experiment_config import AccuracyConfig, ExperimentConfig, HwRef
from workloads.io import InputError


def test_quickstart_is_typed_and_frozen():
    exp = load_experiment("quickstart")
    assert isinstance(exp, ExperimentConfig) and isinstance(exp.hw, HwRef)
    assert isinstance(exp.accuracy, AccuracyConfig)
    # the quickstart file says batch 8 at 4K context and 256 accuracy tokens
    assert (exp.batch, exp.seq, exp.accuracy.tokens, exp.accuracy.checkpoint) == (8, 4096, 256, "smollm2_135m")
    assert exp.hw.name == "h100_sxm" and exp.hw.overrides == ()
    with pytest.raises(dataclasses.FrozenInstanceError):
        exp.batch = 2


def test_plain_mapping_keeps_its_format():
    exp = experiment_from_dict({"model": "llama3_8b", "hw": {"name": "h100_sxm",
                                "overrides": {"memory.hbm.bandwidth": "4 TB/s"}}, "accuracy": True,
                                "serve": {"qps": 2}, "output": "out"}, check_resources=False)
    d = exp.to_dict()
    assert list(d) == list(DEFAULTS) and exp.config == d
    assert d["hw"] == {"name": "h100_sxm", "overrides": {"memory.hbm.bandwidth": "4 TB/s"}}
    assert d["accuracy"] == ACCURACY_DEFAULTS and list(d["accuracy"]) == list(ACCURACY_DEFAULTS)
    assert d["serve"] == {"qps": 2} and d["parallel"] is None and d["output"] == "out" and exp.layout is None
    assert resolve_experiment(exp)["hw"]["overrides"] == {"memory.hbm.bandwidth": 4e12}
    assert ExperimentConfig.from_dict(d, exp.source, exp.base_dir) == exp
    # the mapping handed out is a copy: editing it does not touch the frozen config
    d["hw"]["overrides"]["memory.hbm.bandwidth"] = "1 TB/s"
    assert exp.hw.overrides_dict() == {"memory.hbm.bandwidth": "4 TB/s"}


@pytest.mark.parametrize("field,value,expected", [
    ("batch", 0, "an integer from 1"), ("phase", "decod", "prefill, decode"),
    ("level", "cycles", "roofline"), ("accuracy", {"rows": -1}, "accuracy.rows"),
])
def test_errors_name_file_field_and_value(field, value, expected):
    with pytest.raises(InputError) as e:
        experiment_from_dict({"model": "llama3_8b", "hw": "h100_sxm", field: value}, source="exp.yaml",
                             check_resources=False)
    msg = str(e.value)
    assert "exp.yaml" in msg and expected in msg


@settings(max_examples=40, deadline=None)
@given(batch=st.integers(1, 4096), seq=st.integers(1, 1 << 20), seed=st.integers(0, 1000),
       fallback=st.booleans(), phase=st.sampled_from(["prefill", "decode"]))
def test_round_trip(batch, seq, seed, fallback, phase):
    doc = {"model": "llama3_8b", "hw": "h100_sxm", "batch": batch, "seq": seq, "phase": phase,
           "compute_fallback": fallback, "accuracy": {"seed": seed}}
    exp = experiment_from_dict(doc, check_resources=False)
    assert (exp.batch, exp.seq, exp.phase, exp.compute_fallback, exp.accuracy.seed) == (batch, seq, phase,
                                                                                         fallback, seed)
    again = experiment_from_dict(exp.to_dict(), check_resources=False)
    assert again == exp and again.to_dict() == exp.to_dict()


def test_parallel_layout_is_typed():
    exp = experiment_from_dict({"model": "llama3_8b", "system": "dgx_h100", "parallel": {"tp": 8}},
                               check_resources=False)
    assert exp.parallel == (("tp", 8),) and exp.to_dict()["parallel"] == {"tp": 8}
    assert exp.layout.tp == 8 and exp.hw.name.endswith("h100_sxm.yaml")


@pytest.mark.parametrize("parallel, message", [
    ({"tp": 3}, "e.yaml: parallel.tp: got 3; expected a divisor of the 32 attention heads of llama3_8b"),
    ({"tp": 0}, "e.yaml: parallel.tp: got 0; expected a positive integer"),
    ({"pp": 33}, "e.yaml: parallel.pp: got 33; expected at most the 32 layers of llama3_8b"),
    ({"ep": 2}, "e.yaml: parallel.ep: got 2; expected 1 for llama3_8b, which has no experts"),
    ({"tq": 2}, "e.yaml: parallel.tq: got 'tq'"),
    (5, "e.yaml: parallel: got 5; expected a mapping"),
])
def test_a_layout_that_cannot_shard_the_model_names_the_file_and_field(parallel, message):
    with pytest.raises(InputError) as e:
        experiment_from_dict({"model": "llama3_8b", "system": "dgx_h100", "parallel": parallel}, source="e.yaml")
    assert str(e.value).startswith(message)


def test_cli_run_names_the_experiment_file_of_a_bad_layout(tmp_path, capsys):
    from cosim.cli import main
    p = tmp_path / "e.yaml"
    p.write_text("model: llama3_8b\nsystem: dgx_h100\nparallel: {tp: 3}\n")
    assert main(["run", str(p)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {p}: parallel.tp: got 3;") and err.count("\n") == 1
