"""Review fixes to session 13's sweep changes: each test failed before its fix."""

import pytest

from cosim.dse import sweep

BASE = {"model": "llama3_8b", "hw": "h100_sxm", "seq": 1024, "phase": "decode"}


# ---- 1. a random bandwidth axis does not re-read the calibration for every distinct draw -----

@pytest.mark.parametrize("hw", ["h100_sxm", "b200"])  # b200: a transferred (calibration: {from: ...}) spec
def test_scaled_provenance_reads_the_calibration_once_per_task(tmp_path, monkeypatch, hw):
    import cosim
    import hwmodels.levels as levels
    calls = []
    real = levels.level_support
    monkeypatch.setattr(levels, "level_support", lambda *a, **k: calls.append(1) or real(*a, **k))
    df = sweep({"name": "t", "base": {**BASE, "hw": hw, "batch": 8, "level": "analytical"},
                "axes": [{"random": {"samples": 40, "seed": 3, "fields": {
                    "hw.memory.hbm.bandwidth": {"low": "1 TB/s", "high": "10 TB/s", "log": True}}}}],
                "output": str(tmp_path / "out")}, quiet=True, write=False, workers=1)
    assert (df["status"] == "ok").all() and df["hw.memory.hbm.bandwidth"].nunique() == 40
    # the spec's check and the task's level: 2 (3 with the former per-task self-check of the first text,
    # 41 before it when every distinct bandwidth asked level_support)
    assert len(calls) == 2
    monkeypatch.setattr(levels, "level_support", real)
    trace = cosim.build_trace("llama3_8b", "decode", 8, 1024)
    for _, row in df.iloc[[0, 17, 39]].iterrows():  # byte-identical to what simulate writes
        bw = float(row["hw.memory.hbm.bandwidth"])
        rep = cosim.simulate(trace, cosim.load_hw(hw, overrides={"memory.hbm.bandwidth": bw}), level="analytical")
        (want,) = rep.meta["priced_from"]
        assert row["provenance"] == want and "; bandwidths x" in want


# ---- 2. the headline's NaN count qualifies "feasible": it counts feasible rows only --------

def test_headline_counts_nan_objectives_among_the_feasible_rows(tmp_path, capsys):
    import json

    import yaml

    from cosim.cli import main
    p = tmp_path / "h.yaml"
    p.write_text(yaml.safe_dump({
        "name": "h", "base": {**BASE, "batch": 1},
        "axes": [{"grid": {"hw": ["tpu_v5e", "mx_systolic_128", "h100_sxm"], "batch": [1, 8]}}],
        "objectives": {"latency_s": "min", "energy_per_token_j": "min"}, "output": str(tmp_path / "out")}))
    assert main(["sweep", str(p)]) == 0
    out = capsys.readouterr().out
    head = next(ln for ln in out.splitlines() if ln.startswith("h: "))
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    n = s["nan_objectives"]
    assert n["rows"] == 2 and n["feasible_rows"] == 0, (n, head)  # both NaN rows are infeasible tpu_v5e
    assert "with a NaN objective" not in head and "6 ok" in head and "4 feasible," in head
    assert "2 ok rows with a NaN objective" in out  # all ok rows: still said, in the warning


# ---- 3. one list of serving metrics: the worker, the results columns and the load checks ----

def test_serving_metrics_have_one_source_of_truth():
    from workloads.io import InputError

    import cosim.dse.evaluate as ev
    import cosim.dse.spec as sp
    assert sp.SERVE_METRICS is ev.SERVE_METRICS  # spec refuses from the list the worker fills
    assert sp.ACCURACY_METRICS is ev.ACCURACY_METRICS and sp.CHECKPOINT_METRICS is ev.CHECKPOINT_METRICS
    assert set(ev.SERVE_METRICS) <= set(ev.METRIC_NAMES) and set(ev.SERVE_METRICS) <= set(sp.METRICS)
    assert set(sp.METRICS) | {"fits_in_memory"} == set(ev.METRIC_NAMES)  # every column is described
    srv = {"model": "llama3_8b", "hw": "h100_sxm", "level": "roofline", "serve": {"qps": 5, "requests": 50}}
    with pytest.raises(InputError) as e:  # the refusal lists what a serving point reports: the same list
        sp.sweep_from_dict({"name": "t", "base": srv, "axes": [{"grid": {"serve.qps": [1, 8]}}],
                            "objectives": {"goodput_req_s": "max", "area_mm2": "min"}}, "s.yaml")
    assert ", ".join(ev.SERVING_POINT_METRICS) in str(e.value)
    for m in ev.SERVE_METRICS:  # each serving metric is refused without serve:, and loads with it
        with pytest.raises(InputError, match="a `serve:` section"):
            sp.sweep_from_dict({"name": "t", "base": {**BASE, "batch": 8}, "axes": [{"grid": {"batch": [1, 8]}}],
                                "objectives": {"latency_s": "min", m: "min"}}, "s.yaml")
        sp.sweep_from_dict({"name": "t", "base": srv, "axes": [{"grid": {"serve.qps": [1, 8]}}],
                            "objectives": {m: "min"}}, "s.yaml")


# ---- 4. numpy integer / bool scalars from Python callers -----------------------------------

def test_numpy_scalars_are_accepted_as_the_numbers_they_hold(tmp_path):
    import numpy as np

    df = sweep({"name": "t", "base": {**BASE, "compute_fallback": np.True_},
                "axes": [{"grid": {"batch": list(np.array([1, 4]))}}], "output": str(tmp_path / "o")},
               quiet=True, write=False)
    assert (df["status"] == "ok").all() and sorted(df["batch"]) == [1, 4]
    ref = sweep({"name": "t", "base": {**BASE, "compute_fallback": True}, "axes": [{"grid": {"batch": [1, 4]}}],
                 "output": str(tmp_path / "r")}, quiet=True, write=False)
    assert df["latency_s"].tolist() == ref["latency_s"].tolist()
    from cosim.experiment import experiment_from_dict
    exp = experiment_from_dict({**BASE, "batch": np.int64(4), "compute_fallback": np.False_}, "e.yaml")
    assert type(exp.batch) is int and exp.batch == 4 and exp.compute_fallback is False


@pytest.mark.parametrize("field, value, shown, expected", [
    ("batch", "f2", "2.0", "an integer from 1 to"),  # an integral float is still not an integer
    ("batch", "i0", "0", "an integer from 1 to"),  # out of range: a plain number, not np.int64(0)
    ("batch", "b1", "True", "an integer from 1 to"),  # never a bool as an int
    ("compute_fallback", "i1", "1", "true or false"),
])
def test_numpy_scalars_keep_the_fields_checks_and_plain_messages(field, value, shown, expected):
    import numpy as np

    from cosim.experiment import experiment_from_dict
    from workloads.io import InputError
    v = {"f2": np.float64(2.0), "i0": np.int64(0), "b1": np.True_, "i1": np.int64(1)}[value]
    with pytest.raises(InputError) as e:
        experiment_from_dict({**BASE, field: v}, "e.yaml")
    assert f"e.yaml: {field}: got {shown}; expected {expected}" in str(e.value)
    with pytest.raises(InputError) as e:
        sweep({"name": "t", "base": BASE, "axes": [{"grid": {field: [v]}}]}, quiet=True, write=False)
    assert f"{field}: got {shown}; expected {expected}" in str(e.value) and "np." not in str(e.value)


# ---- 5. a library warning is the CLI's one `warning: ...` line on stderr --------------------

def test_sweep_cli_prints_library_warnings_as_one_warning_line(tmp_path, monkeypatch, capsys):
    import warnings

    import yaml

    import cosim.dse.combos as combos
    from cosim.cli import main
    monkeypatch.setattr(combos, "MAX_COMBOS", 1)  # 2 combinations: more than are checked together
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump({"name": "c", "base": BASE, "axes": [{"grid": {"batch": [1, 8]}}],
                                 "output": str(tmp_path / "out")}))
    assert main(["sweep", str(p), "--dry-run"]) == 0
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if "combinations of model, seq, batch" in ln]
    assert len(lines) == 1 and lines[0].startswith(f"warning: {p}: 2 combinations"), err
    assert "UserWarning" not in err and "sweep.py:" not in err and "warnings.warn" not in err
    with pytest.warns(UserWarning, match="2 combinations of model"):  # the library still warns its callers
        sweep({"name": "c", "base": BASE, "axes": [{"grid": {"batch": [1, 8]}}], "output": str(tmp_path / "lib")},
              quiet=True, write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and the CLI left the caller's warning machinery as it was
        with pytest.raises(UserWarning):
            sweep({"name": "c", "base": BASE, "axes": [{"grid": {"batch": [1, 8]}}],
                   "output": str(tmp_path / "lib2")}, quiet=True, write=False)


# ---- 6. plan_figure: a fitting bar without an energy says so -------------------------------

def test_plan_figure_labels_a_fitting_bar_without_energy(monkeypatch):
    import dataclasses
    import math

    import matplotlib
    matplotlib.use("Agg")
    from cosim.humanize import si
    from cosim.plan import plan, plan_figure
    from cosim.plots import pyplot
    res = plan("llama3_8b", "dgx_h100", phase="decode", batch=1, seq=1024, max_devices=2)
    fit = [i for i, r in enumerate(res.rows) if r.fits]
    assert len(fit) >= 2 and all(math.isfinite(res.rows[i].energy_per_token_j) for i in fit)
    rows = list(res.rows)
    rows[fit[0]] = dataclasses.replace(rows[fit[0]], energy_per_token_j=math.nan)
    fig = plan_figure(dataclasses.replace(res, rows=rows))
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert ax.get_xlabel().startswith("step_latency_s; bar labels: energy per token")
    assert texts.count(" energy n/a") == 1
    assert f" {si(rows[fit[1]].energy_per_token_j, 'J')}/token" in texts
    assert len(texts) == len(rows)  # every bar has a label (fitting: energy; not fitting: footprint)
    pyplot().close(fig)


# ---- 7. re-running into the same folder removes the sweep's own artefacts it no longer writes --

def test_rerun_removes_its_own_stale_artefacts_and_says_so(tmp_path, capsys):
    import json

    from cosim.dse.runner import parquet_available
    if not parquet_available():
        pytest.skip("pyarrow not installed: no parquet -> csv switch to try")
    out, first, second = tmp_path / "out", "parquet", "csv"
    sweep({"name": "s", "base": BASE, "axes": [{"grid": {"batch": [1, 8], "weights": ["bf16", "mxfp4"]}}],
           "output": str(out), "table_format": first}, quiet=True)
    assert (out / f"results.{first}").is_file() and (out / "heatmap.png").is_file()
    (out / "notes.txt").write_text("mine")  # a file the sweep did not write: never touched
    capsys.readouterr()
    sweep({"name": "s", "base": BASE, "axes": [{"grid": {"batch": [1, 8, 16]}}], "output": str(out),
           "table_format": second}, quiet=True)
    err = capsys.readouterr().err
    s = json.loads((out / "summary.json").read_text())
    assert sorted(s["removed_stale"]) == ["heatmap.png", "results.parquet"], s
    assert not (out / "results.parquet").exists() and not (out / "heatmap.png").exists()
    assert (out / "results.csv").is_file() and (out / "notes.txt").read_text() == "mine"
    assert "removed results.parquet, heatmap.png from" in err and "(stale)" in err
    assert sorted(p.name for p in out.iterdir() if p.name in ("results.csv", "parallel.png", "pareto.csv"))\
        == ["parallel.png", "pareto.csv", "results.csv"]
