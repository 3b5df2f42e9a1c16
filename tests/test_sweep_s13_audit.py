"""Session-13 user-path audit of sweeps: numeric axis columns keep their numeric dtype in
the results table (and a resume from an older, text-typed output still works)."""

import json

import numpy as np
import pandas as pd
import pytest

from cosim.dse import sweep
from cosim.dse.runner import parquet_available

BASE = {"model": "llama3_8b", "hw": "h100_sxm", "seq": 1024, "phase": "decode"}


def _spec(tmp_path, axes, **kw):
    return {"name": "t", "base": {**BASE, **kw.pop("base", {})}, "axes": axes, "output": str(tmp_path / "out"),
            **kw}


# ---- numeric axis columns stay numeric -------------------------------------------------------

@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_numeric_axes_are_numbers_in_the_frame_and_the_table(tmp_path, fmt):
    if fmt == "parquet" and not parquet_available():
        pytest.skip("pyarrow not installed")
    spec = _spec(tmp_path, [{"grid": {"batch": [16, 2, 4], "weights": ["bf16", "mxfp4"]}}], table_format=fmt)
    df = sweep(spec, quiet=True)
    assert df["batch"].dtype == np.int64
    assert sorted(df["batch"].unique()) == [2, 4, 16]  # numeric order, not "16" < "2" < "4"
    assert pd.api.types.is_string_dtype(df["weights"])
    table = (pd.read_parquet if fmt == "parquet" else pd.read_csv)(tmp_path / "out" / f"results.{fmt}")
    assert table["batch"].dtype == np.int64
    assert list(table.sort_values("batch")["batch"].unique()) == [2, 4, 16]


def test_int_and_float_values_make_a_float_column_mixed_values_stay_text():
    from cosim.dse.runner import _typed
    obj = lambda v: pd.Series(np.array(v, dtype=object))  # noqa: E731
    assert _typed(obj([5, 10, 20, 40])).dtype == np.int64
    assert _typed(obj([5, 2.5])).dtype == np.float64
    assert _typed(obj([True, False])).dtype == bool
    assert _typed(obj([1, True])).dtype == object  # a bool is not a number here
    assert _typed(obj([None, 64])).dtype == object  # null is not a number: stays text ("None", "64")
    assert _typed(obj([4, "auto"])).dtype == object


def test_resume_from_an_older_output_with_text_columns(tmp_path):
    spec = _spec(tmp_path, [{"grid": {"batch": [1, 8]}}], table_format="csv")
    sweep(spec, quiet=True)
    out = tmp_path / "out"
    old = pd.read_csv(out / "results.csv").astype(str)  # what an older cosim wrote: every axis as text
    old.to_csv(out / "results.csv", index=False)
    store = (out / "results.jsonl").read_bytes()
    df = sweep(spec, quiet=True)
    assert (out / "results.jsonl").read_bytes() == store  # nothing re-run
    assert df["batch"].dtype == np.int64 and list(df["batch"]) == [1, 8]
    assert pd.read_csv(out / "results.csv")["batch"].dtype == np.int64
    assert json.loads((out / "summary.json").read_text())["ok"] == 2


# ---- the summary shows NaN objectives and mixed energy scopes --------------------------------

def _hw4(tmp_path):
    import yaml
    p = tmp_path / "hw4.yaml"
    p.write_text(yaml.safe_dump({
        "name": "hw4", "base": {"model": "llama3_2_3b", "phase": "decode", "batch": 8, "seq": 2048, "hw": "h100_sxm"},
        "axes": [{"grid": {"hw": ["h100_sxm", "tpu_v5e", "mx_systolic_128", "l40s"]}}],
        "objectives": {"latency_s": "min", "energy_per_token_j": "min"}, "output": str(tmp_path / "out")}))
    return p


def test_summary_names_nan_objectives_and_mixed_energy_scopes(tmp_path, capsys):
    from cosim.cli import main
    assert main(["sweep", str(_hw4(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert "4 feasible (1 with a NaN objective, not ranked), 2 on the Pareto front" in out
    assert "energy_per_token_j in 1; e.g. hw tpu_v5e" in out
    assert "mixes energy scopes: 1 ranked row is dynamic only (no static power in mx_systolic_128.yaml), " \
           "2 include static power" in out
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert s["nan_objectives"] == {"rows": 1, "feasible_rows": 1, "by_objective": {"energy_per_token_j": 1}, "examples": ["hw tpu_v5e"]}
    assert s["energy_scopes"] == {"dynamic + static": 2, "unknown (energy n/a for this point)": 1,
                                  "dynamic only (no static power in mx_systolic_128.yaml)": 1}
    assert len(s["warnings"]) == 2 and "mixes energy scopes" in s["warnings"][1]
    df = pd.read_parquet(tmp_path / "out" / "results.parquet") if parquet_available() else \
        pd.read_csv(tmp_path / "out" / "results.csv", keep_default_na=False)
    scope = dict(zip(df["hw"], df["energy_scope"].fillna("")))
    assert scope["tpu_v5e"] == "unknown (energy n/a for this point)"  # no energy at all: not "dynamic only"
    assert scope["h100_sxm"] == "dynamic + static" and scope["mx_systolic_128"].startswith("dynamic only")


def test_quiet_sweep_puts_the_summary_warnings_on_stderr(tmp_path, capsys):
    from cosim.cli import main
    assert main(["sweep", str(_hw4(tmp_path)), "-q"]) == 0
    err = capsys.readouterr().err
    assert err.count("warning: hw4: ") == 2


def test_one_energy_scope_gives_no_warning(tmp_path):
    spec = _spec(tmp_path, [{"grid": {"hw": ["h100_sxm", "l40s"]}}],
                 objectives={"latency_s": "min", "energy_per_token_j": "min"})
    sweep(spec, quiet=True)
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert s["warnings"] == [] and s["nan_objectives"]["rows"] == 0
    assert s["energy_scopes"] == {"dynamic + static": 2}


# ---- objectives and constraints the sweep cannot produce are refused at load -----------------

def _load(doc):
    from cosim.dse.spec import sweep_from_dict
    return sweep_from_dict(doc, source="s.yaml")


_FWD = {"model": "llama3_8b", "phase": "decode", "batch": 8, "seq": 2048, "hw": "h100_sxm"}
_SRV = {"model": "llama3_8b", "hw": "h100_sxm", "level": "roofline", "accuracy": {"layers": 1},
        "serve": {"qps": 5, "requests": 50}}


@pytest.mark.parametrize("base, objectives, constraints, where, metric, expected", [
    (_FWD, {"latency_s": "min", "ttft_p99_s": "min"}, [], "objectives.ttft_p99_s", "ttft_p99_s",
     "a `serve:` section in the base experiment"),
    (_FWD, {"latency_s": "min"}, ["slo_attainment >= 0.9"], "constraints[0]", "slo_attainment",
     "a `serve:` section in the base experiment"),
    (_SRV, {"goodput_req_s": "max"}, ["sqnr_db >= 20"], "constraints[0]", "sqnr_db",
     "a metric a serving point reports"),
    (_SRV, {"goodput_req_s": "max", "area_mm2": "min"}, [], "objectives.area_mm2", "area_mm2",
     "a metric a serving point reports"),
    (_FWD, {"latency_s": "min", "sqnr_db": "max"}, [], "objectives.sqnr_db", "sqnr_db",
     "an `accuracy:` section"),
    (_FWD, {"latency_s": "min"}, ["kl <= 0.1"], "constraints[0]", "kl", "accuracy.checkpoint"),
    (_FWD, {"latency_s": "min", "area_mm2": "min"}, [], "objectives.area_mm2", "area_mm2", "level: cycle"),
])
def test_metrics_the_sweep_cannot_produce_are_refused(base, objectives, constraints, where, metric, expected):
    from workloads.io import InputError
    doc = {"name": "t", "base": base, "axes": [{"grid": {"batch": [1, 8]}}] if "serve" not in base else
           [{"grid": {"serve.qps": [1, 8]}}], "objectives": objectives, "constraints": constraints}
    with pytest.raises(InputError) as e:
        _load(doc)
    assert str(e.value).startswith(f"s.yaml: {where}: got {metric!r}; expected {expected}")


def test_metrics_the_sweep_produces_load():
    _load({"name": "t", "base": _SRV, "axes": [{"grid": {"serve.qps": [1, 8]}}],
           "objectives": {"goodput_window_req_s": "max", "energy_per_token_j": "min"},
           "constraints": ["tpot_p99_s <= 0.05"]})
    _load({"name": "t", "base": {**_FWD, "accuracy": {"layers": 1}}, "axes": [{"grid": {"batch": [1, 8]}}],
           "objectives": {"latency_s": "min", "sqnr_db": "max"}})


def test_cli_refuses_a_serving_objective_without_serve_and_runs_nothing(tmp_path, capsys):
    import yaml
    from cosim.cli import main
    p = tmp_path / "obj.yaml"
    p.write_text(yaml.safe_dump({"name": "obj", "base": _FWD, "axes": [{"grid": {"batch": [1, 8]}}],
                                 "objectives": {"latency_s": "min", "ttft_p99_s": "min"},
                                 "output": str(tmp_path / "out")}))
    assert main(["sweep", str(p)]) != 0
    assert "objectives.ttft_p99_s: got 'ttft_p99_s'; expected a `serve:` section" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# ---- checking an output path creates nothing; writing creates it -----------------------------

@pytest.mark.parametrize("argv, made", [
    (["generate", "--model", "llama3_8b", "--hw", "h100_sxm", "--prompt-len", "9000", "--out", "g/x.json"], "g"),
    (["sweep", "a.yaml", "--store", "x.csv", "--out", "o3"], "o3"),
    (["simulate", "--model", "llama3_8b", "--hw", "nosuchhw", "--plot", "p/x.png"], "p"),
    (["simulate", "--model", "llama3_8b", "--hw", "h100_sxm", "--seq", "9000", "--out", "q/deep/r.json"], "q"),
    (["plan", "--model", "llama3_8b", "--system", "nosuchsystem", "--out", "pl/x.csv"], "pl"),
    (["serve", "--model", "llama3_8b", "--hw", "nosuchhw", "--out", "sv"], "sv"),
])
def test_a_refused_command_leaves_no_folder(tmp_path, monkeypatch, argv, made):
    import yaml
    from cosim.cli import main
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.yaml").write_text(yaml.safe_dump({"name": "a", "base": _FWD, "axes": [{"grid": {"batch": [1]}}],
                                                     "objectives": {"latency_s": "min"}, "output": "o"}))
    assert main(argv) != 0
    assert not (tmp_path / made).exists()


def test_check_output_dir_checks_without_creating(tmp_path):
    from cosim.cli._paths import check_output_dir, check_output_file, ensure_parent
    from workloads.io import InputError
    check_output_dir(tmp_path / "a" / "b")
    check_output_file(tmp_path / "c" / "d" / "x.json", "--out", (".json",))
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    (tmp_path / "f").write_text("")
    with pytest.raises(InputError, match=r"--out: .*f/g/h: cannot create the directory \(.*f is a file\)"):
        check_output_dir(tmp_path / "f" / "g" / "h")
    assert ensure_parent(tmp_path / "c" / "d" / "x.json").parent.is_dir()


def test_a_successful_command_makes_its_folder(tmp_path, monkeypatch):
    from cosim.cli import main
    monkeypatch.chdir(tmp_path)
    assert main(["simulate", "--model", "llama3_8b", "--hw", "h100_sxm", "--out", "r/deep/r.json",
                 "--plot", "p/x.png"]) == 0
    assert (tmp_path / "r" / "deep" / "r.json").is_file() and (tmp_path / "p" / "x.png").is_file()


# ---- --dry-run runs the run's output checks; a system name under hw: suggests system: --------

def _a_yaml(tmp_path, base=None):
    import yaml
    p = tmp_path / "a.yaml"
    p.write_text(yaml.safe_dump({"name": "a", "base": base or _FWD, "axes": [{"grid": {"batch": [1, 8]}}],
                                 "objectives": {"latency_s": "min"}, "output": str(tmp_path / "o")}))
    return p


@pytest.mark.parametrize("extra, msg", [
    (["--out", "userdir"], "--out: userdir: an existing directory holding notes.txt but no sweep store"),
    (["--out", "a.yaml/x"], "--out: a.yaml/x: cannot create the directory (a.yaml is a file)"),
    (["--out", "new", "--store", "s.csv"], "--store: s.csv: unknown extension '.csv'; expected .jsonl"),
])
def test_dry_run_refuses_what_the_run_refuses(tmp_path, monkeypatch, capsys, extra, msg):
    from cosim.cli import main
    monkeypatch.chdir(tmp_path)
    _a_yaml(tmp_path)
    (tmp_path / "userdir").mkdir()
    (tmp_path / "userdir" / "notes.txt").write_text("mine")
    for argv in (["sweep", "a.yaml", "--dry-run"] + extra, ["sweep", "a.yaml", "-q"] + extra):
        assert main(argv) != 0, argv
        assert msg in capsys.readouterr().err, argv
    assert not (tmp_path / "new").exists() and (tmp_path / "userdir" / "notes.txt").read_text() == "mine"


def test_dry_run_of_a_good_output_says_valid_and_creates_nothing(tmp_path, monkeypatch, capsys):
    from cosim.cli import main
    monkeypatch.chdir(tmp_path)
    _a_yaml(tmp_path)
    assert main(["sweep", "a.yaml", "--dry-run", "--out", "fresh/deep"]) == 0
    assert "a.yaml: valid; 2 distinct configurations" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.yaml"]


def test_a_system_name_under_hw_suggests_system(tmp_path, capsys):
    from cosim.cli import main
    p = _a_yaml(tmp_path, {**_FWD, "hw": "dgx_h100"})
    assert main(["sweep", str(p), "--dry-run"]) != 0
    err = capsys.readouterr().err
    assert "base: hw: got 'dgx_h100', a system (cosim list systems); expected a device: write " \
           "`system: dgx_h100` (with `hw: h100_sxm`, its device)" in err


# ---- a sweep row's provenance says how an override scaled the calibration, as simulate does ---

def test_analytical_rows_carry_the_bandwidth_scaling_of_their_override(tmp_path):
    import cosim
    df = sweep({"name": "t", "base": {**BASE, "batch": 8, "level": "analytical"},
                "axes": [{"grid": {"hw.memory.hbm.bandwidth": ["3.35 TB/s", "4.8 TB/s", "2 TB/s"],
                                   "hw.compute.bf16": [989e12, 500e12]}}],
                "output": str(tmp_path / "out")}, quiet=True, write=False)
    assert (df["status"] == "ok").all() and len(df) == 6
    trace = cosim.build_trace("llama3_8b", "decode", 8, 1024)
    for bw, scale in ((4.8e12, "; bandwidths x1.433 (datasheet 4.8 vs calibrated 3.35 TB/s)"),
                      (2e12, "; bandwidths x0.597 (datasheet 2 vs calibrated 3.35 TB/s)"), (3.35e12, None)):
        rep = cosim.simulate(trace, cosim.load_hw("h100_sxm", overrides={"memory.hbm.bandwidth": bw}),
                             level="analytical")
        (want,) = rep.meta["priced_from"]
        rows = df[df["hw.memory.hbm.bandwidth"] == bw]
        assert len(rows) == 2 and (rows["provenance"] == want).all()  # the same text simulate writes
        if scale:  # 4.8 / 3.35 = 1.4328; 2 / 3.35 = 0.5970
            assert want.endswith(scale)
        else:
            assert "bandwidths x" not in want


# ---- run/serve --out refuse an earlier run's files unless --force; accuracy --out is .json -----

@pytest.mark.parametrize("argv, first", [
    (["run", "quickstart", "--no-accuracy", "--out", "o"], "report.csv, report.json, report.html"),
    (["serve", "--model", "llama3_8b", "--hw", "h100_sxm", "--qps", "5", "--requests", "20", "--out", "o"],
     "requests.csv, timeline.csv, summary.json, latency_cdf.png, ... (5 files)"),
])
def test_run_and_serve_refuse_to_overwrite_an_earlier_run(tmp_path, monkeypatch, capsys, argv, first):
    from cosim.cli import main
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 0
    capsys.readouterr()
    written = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "o").iterdir() if p.is_file()}
    assert main(argv) != 0
    assert f"--out: o: already holds {first} from an earlier run" in capsys.readouterr().err
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "o").iterdir() if p.is_file()} == written
    assert main(argv + ["--force"]) == 0


def test_run_and_serve_write_beside_unrelated_files(tmp_path, monkeypatch):
    from cosim.cli import main
    monkeypatch.chdir(tmp_path)
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "notes.txt").write_text("mine")
    assert main(["serve", "--model", "llama3_8b", "--hw", "h100_sxm", "--qps", "5", "--requests", "20",
                 "--out", "o"]) == 0
    assert (tmp_path / "o" / "notes.txt").read_text() == "mine" and (tmp_path / "o" / "summary.json").is_file()


def test_accuracy_out_must_be_json(tmp_path, monkeypatch, capsys):
    from cosim.cli import main
    monkeypatch.chdir(tmp_path)
    assert main(["accuracy", "--out", "acc.yaml"]) != 0
    assert "--out: acc.yaml: unknown extension '.yaml'; expected .json" in capsys.readouterr().err
    assert not (tmp_path / "acc.yaml").exists()
