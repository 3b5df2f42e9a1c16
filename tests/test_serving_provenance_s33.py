"""Session 33 (issue 11, no silent fallback): serve, generate and plan say the level that priced them and what it
rested on, in the header (`priced from:`), the files and the Python results, as simulate and sweeps do.

Before: `cosim serve --hw l40s --level analytical` wrote `level=analytical` (the level requested) on every
requests.csv row though the roofline priced every step; h100_pcie's calibration, transferred from h100_sxm, was
named nowhere in serve, generate or plan."""

import json

import pandas as pd

from cosim.cli import main
from cosim.serving import serve

RUN = dict(qps=4.0, requests=6, prompt_len=64, output_len=4)
TRANSFER = "transferred from h100_sxm"


def _serve_cli(tmp_path, capsys, hw):
    out = tmp_path / hw
    assert main(["serve", "--model", "llama3_8b", "--hw", hw, "--level", "analytical", "--qps", "4", "--requests",
                 "6", "--prompt-len", "64", "--output-len", "4", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    return text, pd.read_csv(out / "requests.csv"), json.loads((out / "summary.json").read_text())


# ---- 1. serve's rows carry the level that priced them (l40s has no calibration: the roofline)

def test_serve_rows_carry_the_level_used_not_only_the_level_requested(tmp_path, capsys):
    text, df, doc = _serve_cli(tmp_path, capsys, "l40s")
    lines = text.splitlines()
    assert "level analytical requested; steps priced at roofline" in lines[0]
    assert lines[1] == "priced from: fallback:uncalibrated"
    assert set(df["level"]) == {"analytical"}  # the option, as summary.json's config records it
    assert set(df["level_used"]) == {"roofline"}
    assert set(df["provenance"]) == {"fallback:uncalibrated"}
    assert doc["config"]["level"] == "analytical"
    assert doc["summary"]["level_used"] == "roofline"
    assert doc["summary"]["provenance"] == "fallback:uncalibrated"


# ---- 2. a transferred calibration is named in serve's header, summary.json and requests.csv

def test_serve_names_a_transferred_calibration_everywhere(tmp_path, capsys):
    text, df, doc = _serve_cli(tmp_path, capsys, "h100_pcie")
    lines = text.splitlines()
    assert "requested" not in lines[0] and "level analytical" in lines[0]
    assert lines[1].startswith("priced from: " + TRANSFER)
    assert set(df["level_used"]) == {"analytical"}
    assert df["provenance"].nunique() == 1 and df["provenance"][0].startswith(TRANSFER)
    assert doc["summary"]["provenance"].startswith(TRANSFER)
    assert doc["summary"]["provenance"] == df["provenance"][0]


def test_serve_result_api_carries_level_used_and_provenance():
    r = serve("llama3_8b", "h100_pcie", level="analytical", **RUN)
    assert r.level_used == r.summary["level_used"] == "analytical"
    assert r.provenance == r.summary["provenance"] == "; ".join(r.priced_from)
    assert r.priced_from and r.priced_from[0].startswith(TRANSFER)
    rl = serve("llama3_8b", "l40s", level="analytical", **RUN)
    assert (rl.config.level, rl.level_used, rl.priced_from) == ("analytical", "roofline", ("fallback:uncalibrated",))
    rr = serve("llama3_8b", "h100_sxm", level="roofline", **RUN)
    assert (rr.level_used, rr.provenance) == ("roofline", "speed-of-light")


def test_a_given_step_model_says_so_in_its_provenance():
    from cosim.serving import StepCost

    class Fixed:
        notes = ()

        def step_cost(self, batch):
            return StepCost(1e-3, 1.0)

    r = serve("llama3_8b", "h100_sxm", step_model=Fixed(), **RUN)
    assert r.level_used == "given"
    assert r.provenance == "given: step model Fixed (its own numbers)"
    assert "priced from: given: step model Fixed" in r.format()


def test_a_shared_step_model_reports_each_runs_own_provenance():
    """The provenance is the run's record, as levels_used (session 19): a run after another says only its own."""
    from cosim.serving.steptime import device_step_cost
    steps = device_step_cost("llama3_8b", "h100_pcie", level="analytical")
    a = serve("llama3_8b", "h100_pcie", step_model=steps, level="analytical", **RUN)
    b = serve("llama3_8b", "h100_pcie", step_model=steps, level="analytical", **RUN)
    assert a.priced_from == b.priced_from and a.priced_from[0].startswith(TRANSFER)


# ---- 3. generate: the provenance key, the CSV column and the header line

def test_generate_names_its_provenance_in_header_json_and_csv(tmp_path, capsys):
    out = tmp_path / "gen.json"
    args = ["generate", "--model", "llama3_8b", "--level", "analytical", "--prompt-len", "64", "--output-len", "4"]
    assert main([*args, "--hw", "h100_pcie", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("priced from: " + TRANSFER)
    doc = json.loads(out.read_text())
    assert (doc["level"], doc["level_requested"]) == ("analytical", "analytical")
    assert doc["provenance"].startswith(TRANSFER)
    csv = tmp_path / "gen.csv"
    assert main([*args, "--hw", "l40s", "--out", str(csv)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "level roofline (requested analytical: fell back)" in lines[0]
    assert lines[1] == "priced from: fallback:uncalibrated"
    df = pd.read_csv(csv)
    assert set(df["level"]) == {"roofline"} and set(df["level_requested"]) == {"analytical"}
    assert set(df["provenance"]) == {"fallback:uncalibrated"}


def test_generate_result_api_carries_level_used_and_provenance():
    from cosim.serving.generate import generate
    g = generate("llama3_8b", "h100_pcie", 64, 4, level="analytical")
    assert (g.level, g.level_requested) == ("analytical", "analytical")
    assert g.priced_from[0].startswith(TRANSFER) and g.provenance == "; ".join(g.priced_from)
    assert g.summary()["provenance"] == g.provenance
    r = generate("llama3_8b", "h100_sxm", 64, 4)  # the roofline: the vectorised decode path
    assert (r.level, r.level_requested, r.priced_from) == ("roofline", "roofline", ("speed-of-light",))


# ---- 4. plan: a provenance column, the header line, PlanResult.level_used / priced_from

def test_plan_names_a_cross_architecture_transfer(tmp_path, capsys):
    out = tmp_path / "plan.csv"
    assert main(["plan", "--model", "llama3_70b", "--system", "gb200_nvl72", "--level", "analytical",
                 "--max-devices", "4", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "level analytical requested; priced at analytical+roofline" in lines[0]  # collectives: alpha-beta
    assert lines[1].startswith("priced from: " + TRANSFER) and "CROSS-ARCHITECTURE" in lines[1]
    assert "speed-of-light:alpha-beta" in lines[1]
    df = pd.read_csv(out)
    assert {"level", "provenance"} <= set(df.columns)
    assert df["provenance"].str.startswith(TRANSFER).all()
    assert df["provenance"].str.contains("CROSS-ARCHITECTURE").all()
    tp = df[df["tp"] > 1]  # its collectives priced by the link's alpha-beta, and the row says so
    assert len(tp) and tp["provenance"].str.endswith("speed-of-light:alpha-beta").all()
    assert set(tp["level"]) == {"analytical+roofline"}


def test_plan_result_api_carries_level_used_and_provenance():
    from cosim.plan import _level_text, plan
    r = plan("llama3_70b", "gb200_nvl72", level="analytical", max_devices=4)
    assert (r.level, r.level_used) == ("analytical", "analytical+roofline")
    assert r.priced_from[0].startswith(TRANSFER) and "speed-of-light:alpha-beta" in r.priced_from
    assert all(row.provenance for row in r.rows)
    assert _level_text(r) == "analytical+roofline; requested analytical"
    m = plan("llama3_8b", "mi300x_8", level="analytical", max_devices=2)  # no calibration: every layout fell back
    assert m.level_used == "roofline" and all(row.provenance.startswith("fallback:") for row in m.rows)


# ---- 5. a top-level profile with `serve`: the error says where a serving run takes it

def test_a_top_level_profile_with_serve_points_to_serve_profile(tmp_path, capsys):
    import pytest

    from cosim.experiment import load_experiment
    from workloads.io import InputError
    serve_block = "serve: {qps: 4, requests: 6, prompt_len: 64, output_len: 4"
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"model: llama3_8b\nhw: h100_sxm\nlevel: analytical\nprofile: engine\n{serve_block}}}\n")
    with pytest.raises(InputError) as e:
        load_experiment(bad)
    msg = str(e.value)
    assert "serve: {profile: engine}" in msg and "cosim serve --profile engine" in msg
    assert "not supported" not in msg
    # the place the message names works: the serving run's steps are priced with the profile's host model
    good = tmp_path / "good.yaml"
    good.write_text(f"model: llama3_8b\nhw: h100_sxm\nlevel: analytical\n{serve_block}, profile: engine}}\n")
    assert main(["run", str(good), "--no-accuracy", "--out", str(tmp_path / "out")]) == 0
    assert "(profile engine)" in capsys.readouterr().out


def test_a_sweep_base_with_profile_and_serve_points_to_serve_profile():
    import pytest

    from cosim.dse import sweep_from_dict
    from workloads.io import InputError
    base = {"model": "llama3_8b", "hw": "h100_sxm", "profile": "engine",
            "serve": {"qps": 4, "requests": 6, "prompt_len": 64, "output_len": 4}}
    with pytest.raises(InputError, match=r"serve: \{profile: engine\}"):
        sweep_from_dict({"base": base, "axes": [{"grid": {"serve.qps": [2, 4]}}]})
