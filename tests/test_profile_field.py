"""`profile` (implementation profiles, workloads/profiles.py) as an experiment field and a
sweep axis: checked by the schema with one clear error, honoured by runs and sweeps,
refused where a run would drop it."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings, strategies as st

import cosim
from cosim.dse import sweep
from cosim.experiment import experiment_from_dict, run_experiment
from workloads.io import InputError
from workloads.profiles import ATTENTION, PROFILES
from workloads.schema import check_profile

ROOT = Path(__file__).resolve().parents[1]
BASE = {"model": "llama3_8b", "hw": "h200", "seq": 1024, "phase": "decode", "batch": 8, "level": "analytical"}


def test_experiment_profile_reaches_the_trace_and_the_report():
    exp = experiment_from_dict({**BASE, "profile": "engine"})
    assert exp.config["profile"] == "engine"
    rep = run_experiment(exp, accuracy=False)
    ops = {r["op"] for r in rep.rows}
    # engine fuses q/k/v into one GEMM and gate/up into another (workloads/profiles.py)
    assert {"qkv_proj", "gate_up_proj"} <= ops and not {"q_proj", "k_proj", "v_proj", "gate_proj"} & ops
    assert rep.meta["implementation"].startswith("engine:")
    plain = run_experiment(experiment_from_dict(BASE), accuracy=False)
    assert "q_proj" in {r["op"] for r in plain.rows} and "implementation" not in plain.meta
    # the run is exactly cosim.simulate on build_trace(profile=...)
    ref = cosim.simulate(cosim.build_trace("llama3_8b", "decode", 8, 1024, profile="engine"), "h200",
                         level="analytical")
    assert rep.total_latency_s == pytest.approx(ref.total_latency_s, rel=1e-12)


@pytest.mark.parametrize("bad, words", [
    ("engin", ["profile", "'engin'", "did you mean 'engine'"]),
    ("eager+fa3", ["profile", "'eager+fa3'", "default, fa2, cudnn, unfused"]),
    (3, ["profile", "got 3", "eager, hf_eager, engine, engine_gemm"]),
])
def test_bad_profile_is_one_clear_error(bad, words):
    with pytest.raises(InputError) as e:
        experiment_from_dict({**BASE, "profile": bad}, source="exp.yaml")
    msg = str(e.value)
    assert msg.startswith("exp.yaml: profile: got") and "\n" not in msg
    for w in words:
        assert w in msg


@pytest.mark.parametrize("extra", [{"serve": {"qps": 1, "requests": 10}},
                                   {"system": "dgx_h100", "parallel": {"tp": 2}, "hw": None}])
def test_profile_is_refused_where_the_run_would_drop_it(extra):
    with pytest.raises(InputError, match=r"profile: got 'engine'; expected null when `(serve|system|parallel)`"):
        experiment_from_dict({**BASE, **extra, "profile": "engine"}, source="exp.yaml")


def test_profile_as_a_sweep_axis(tmp_path):
    spec = {"name": "t", "base": BASE, "output": str(tmp_path / "o"),
            "axes": [{"grid": {"profile": ["eager", "engine", "hf_eager", "eager+fa2"]}}]}
    df = sweep(spec, quiet=True, write=False).set_index("profile")
    assert list(df.index) == ["eager", "engine", "hf_eager", "eager+fa2"] and (df["status"] == "ok").all()
    for name in df.index:  # each point is what simulate gives on that profile's trace
        ref = cosim.simulate(cosim.build_trace("llama3_8b", "decode", 8, 1024, profile=name), "h200",
                             level="analytical")
        assert df.loc[name, "latency_s"] == pytest.approx(ref.total_latency_s, rel=1e-9)
    # unfused HF attention launches ~10 kernels per attention op: slower than SDPA
    assert df.loc["hf_eager", "latency_s"] > df.loc["eager", "latency_s"]
    spec["axes"] = [{"grid": {"profile": ["eager", "engin"]}}]
    with pytest.raises(InputError, match=r"axes\[0\]\.grid\.profile\[1\]: profile: got 'engin'.*did you mean 'engine'"):
        sweep(spec, quiet=True, write=False)


def test_cli_run_with_a_bad_profile_prints_one_error_line(tmp_path):
    f = tmp_path / "e.yaml"
    f.write_text(yaml.safe_dump({**BASE, "profile": "vllm"}))
    r = subprocess.run([sys.executable, "-m", "cosim", "run", str(f), "--no-accuracy"], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "profile: got 'vllm'" in lines[0]


VALID = [p for p in PROFILES] + [f"{p}+{a}" for p in PROFILES for a in ATTENTION]


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.sampled_from(VALID), st.text(max_size=20)))
def test_check_profile_accepts_exactly_the_registry(v):
    problems = check_profile(v, "f.yaml")
    assert (problems == []) == (v in VALID)
    if problems:
        assert len(problems) == 1 and problems[0].startswith("f.yaml: profile: got")


def test_unfused_profile_under_a_bandwidth_axis_matches_simulate_on_the_variant(tmp_path):
    """The vectorised analytical sweep prices HF eager attention as its separate kernels with
    their fitted multipliers, exactly as estimate() does (kernel count and launch overlap
    per kernel, not per attention op)."""
    spec = {"name": "t", "base": {**BASE, "profile": "hf_eager"}, "output": str(tmp_path / "o"),
            "axes": [{"grid": {"hw.memory.hbm.bandwidth": ["2.4 TB/s", "4.8 TB/s"]}}]}
    df = sweep(spec, quiet=True, write=False)
    trace = cosim.build_trace("llama3_8b", "decode", 8, 1024, profile="hf_eager")
    for _, r in df.iterrows():
        hw = cosim.load_hw("h200", overrides={"memory.hbm.bandwidth": r["hw.memory.hbm.bandwidth"]})
        ref = cosim.simulate(trace, hw, level="analytical")
        assert r["latency_s"] == pytest.approx(ref.total_latency_s, rel=1e-9)
        assert r["energy_j"] == pytest.approx(ref.total_energy_j, rel=1e-9)
