"""Session 39 review of `cosim serve`: trace values (non-finite, fractional, absolute timestamps), --requests with a
trace, experiment-relative trace paths, a context window past the model's maximum, and draft-model checks."""

from __future__ import annotations

import pytest

import cosim.serving as srv
from cosim.cli import main
from cosim.serving.arrivals import ABSOLUTE_FROM_S, load_trace, make_requests
from workloads.io import InputError

MODEL, HW = "llama3_8b", "h100_sxm"


def _csv(path, rows):
    path.write_text("arrival_s,prompt_len,output_len\n" + "".join(f"{a},{p},{o}\n" for a, p, o in rows))
    return path


def _one_error(capsys, argv) -> str:
    """The CLI's single error line for argv (exit 2, no traceback)."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize("col, value, expected", [
    ("arrival_s", "inf", "expected a finite time >= 0 in seconds"),
    ("arrival_s", "-inf", "expected a finite time >= 0 in seconds"),
    ("prompt_len", "inf", "expected a positive token count, a whole number"),
    ("prompt_len", "100.7", "expected a positive token count, a whole number"),
    ("output_len", "10.5", "expected a positive token count, a whole number"),
])
def test_trace_refuses_non_finite_and_fractional_values(tmp_path, capsys, col, value, expected):
    row = {"arrival_s": "0.5", "prompt_len": "100", "output_len": "10"}
    row[col] = value
    f = _csv(tmp_path / "t.csv", [(0, 100, 10), (row["arrival_s"], row["prompt_len"], row["output_len"])])
    with pytest.raises(InputError) as e:
        load_trace(f)
    msg = str(e.value)
    assert str(f) in msg and "row 3" in msg and f"{col}: got {float(value)!r}" in msg and expected in msg
    err = _one_error(capsys, ["serve", "--model", MODEL, "--hw", HW, "--trace", str(f)])
    assert f"row 3: {col}" in err and expected in err


def test_trace_whole_floats_are_counts(tmp_path):
    """100.0 is a whole count (pandas reads a column with any decimal as float): accepted, as 100."""
    f = _csv(tmp_path / "t.csv", [(0, "100.0", 10), (1, 200, "5.0")])
    assert [(r.prompt_len, r.output_len) for r in load_trace(f)] == [(100, 10), (200, 5)]


def test_epoch_trace_is_rebased_and_equals_the_zero_based_trace(tmp_path):
    """Arrivals 1.7e18, +1, +900 s: every latency was 0.0 ms (float64 spacing 256 s there). Rebased exactly
    from the file's text, the run is the same trace starting at 0, and a note says so."""
    base = 1700000000000000000
    epoch = _csv(tmp_path / "epoch.csv", [(base, 100, 10), (base + 1, 100, 10), (base + 900, 100, 10)])
    zero = _csv(tmp_path / "zero.csv", [(0, 100, 10), (1, 100, 10), (900, 100, 10)])
    assert [r.arrival_s for r in load_trace(epoch)] == [0.0, 1.0, 900.0]
    a, b = (srv.serve(MODEL, HW, trace=str(f)) for f in (epoch, zero))
    assert (a.requests["ttft_s"] > 0).all()
    assert a.requests["ttft_s"].tolist() == b.requests["ttft_s"].tolist()
    assert a.requests["arrival_s"].tolist() == b.requests["arrival_s"].tolist()
    for k in ("makespan_s", "throughput_req_s", "ttft_p99_s", "tpot_mean_s", "e2e_mean_s", "energy_j"):
        assert a.summary[k] == b.summary[k], k
    rebased = [n for n in a.notes if "rebased to the first" in n]
    assert len(rebased) == 1 and str(base) in rebased[0] and str(epoch) in rebased[0]
    assert not any("rebased to the first" in n for n in b.notes)


def test_epoch_seconds_with_decimals_sort_and_rebase_exactly(tmp_path):
    """Unix seconds with fractions, out of order: the differences are read from the text (float64 spacing at
    1.7e9 s is 2.4e-7 s), and sorted on them."""
    f = _csv(tmp_path / "t.csv", [("1700000000.000000250", 64, 4), ("1700000000.000000125", 64, 4),
                                  ("1700000000.5", 64, 4)])
    rows = load_trace(f)
    assert [r.row for r in rows] == [3, 2, 4]
    assert [r.arrival_s for r in rows] == [0.0, 1.25e-7, 0.499999875]


def test_a_trace_below_the_absolute_threshold_keeps_its_times(tmp_path):
    """A trace starting at 5 s is not rebased: rebasing would move requests.csv arrival_s and steady_start_s, and
    change no latency or rate (the makespan starts at the first arrival)."""
    late = _csv(tmp_path / "late.csv", [(5, 100, 10), (5.5, 100, 10), (7, 100, 10)])
    zero = _csv(tmp_path / "zero.csv", [(0, 100, 10), (0.5, 100, 10), (2, 100, 10)])
    a, b = (srv.serve(MODEL, HW, trace=str(f)) for f in (late, zero))
    assert a.requests["arrival_s"].tolist() == [5.0, 5.5, 7.0]
    assert not any("rebased to the first" in n for n in a.notes)
    assert a.summary["steady_start_s"] == pytest.approx(b.summary["steady_start_s"] + 5, abs=1e-9)
    for k in ("makespan_s", "throughput_req_s", "ttft_mean_s", "e2e_p99_s"):
        assert a.summary[k] == pytest.approx(b.summary[k], rel=1e-9), k
    assert ABSOLUTE_FROM_S > 30 * 86400  # a month-long relative trace keeps its times


def test_requests_beyond_a_trace_refused_and_first_n_said(tmp_path, capsys):
    err = _one_error(capsys, ["serve", "--model", MODEL, "--hw", HW, "--trace", "sharegpt_synth",
                              "--requests", "5000"])
    assert "requests (CLI --requests): got 5,000" in err and "at most the 2,000 requests" in err
    assert "sharegpt_synth" in err
    f = _csv(tmp_path / "t.csv", [(0, 100, 10), (1, 100, 10), (2, 100, 10)])
    notes: list = []
    assert len(make_requests(3, None, trace=str(f), notes=notes)) == 3 and notes == []
    res = srv.serve(MODEL, HW, trace=str(f), requests=2)
    assert res.summary["requests"] == 2
    assert any("the first 2 of its 3 requests in arrival order" in n for n in res.notes)


def test_experiment_trace_paths_are_relative_to_the_file(tmp_path, monkeypatch):
    from cosim.experiment import load_experiment
    sub, cwd = tmp_path / "sub", tmp_path / "cwd"
    sub.mkdir()
    cwd.mkdir()
    _csv(sub / "tr.csv", [(0, 100, 10), (0.5, 100, 10)])
    _csv(cwd / "tr.csv", [(0, 50, 5)])  # a same-named file in the current directory: not read
    (sub / "e.yaml").write_text(f"model: {MODEL}\nhw: {HW}\nserve:\n  trace: tr.csv\n")
    (sub / "l.yaml").write_text(f"model: {MODEL}\nhw: {HW}\nserve:\n  qps: 2\n  requests: 3\n"
                                f"  lengths_from: tr.csv\n")
    (sub / "b.yaml").write_text(f"model: {MODEL}\nhw: {HW}\nserve:\n  trace: sharegpt_synth\n  requests: 4\n")
    (sub / "m.yaml").write_text(f"model: {MODEL}\nhw: {HW}\nserve:\n  trace: nothere.csv\n")
    monkeypatch.chdir(cwd)
    assert load_experiment(str(sub / "e.yaml")).serve_dict()["trace"] == str((sub / "tr.csv").resolve())
    assert load_experiment(str(sub / "l.yaml")).serve_dict()["lengths_from"] == str((sub / "tr.csv").resolve())
    assert load_experiment(str(sub / "b.yaml")).serve_dict()["trace"] == "sharegpt_synth"
    with pytest.raises(InputError) as e:
        load_experiment(str(sub / "m.yaml"))
    msg = str(e.value)
    assert "m.yaml" in msg and "serve.trace: got 'nothere.csv'" in msg and str(sub / "nothere.csv") in msg


def test_experiment_run_reads_the_trace_beside_the_file(tmp_path, monkeypatch):
    from cosim.experiment import load_experiment, run_experiment
    sub, cwd = tmp_path / "sub", tmp_path / "cwd"
    sub.mkdir()
    cwd.mkdir()
    _csv(sub / "tr.csv", [(0, 100, 10), (0.5, 100, 10)])
    _csv(cwd / "tr.csv", [(0, 50, 5)])
    (sub / "e.yaml").write_text(f"model: {MODEL}\nhw: {HW}\nserve:\n  trace: tr.csv\n")
    monkeypatch.chdir(cwd)
    rep = run_experiment(load_experiment(str(sub / "e.yaml")), accuracy=False)
    assert rep.meta["serve"]["summary"]["requests"] == 2


def test_context_window_beyond_max_context_is_noted(capsys):
    res = srv.serve(MODEL, HW, qps=1, requests=3, prompt_len=20000, output_len=10, context_window=100000,
                    scheduler="chunked")
    note = [n for n in res.notes if n.startswith("context_window 100,000")]
    assert len(note) == 1
    assert ("is beyond llama3_8b's maximum context of 8,192" in note[0] and "the model was not trained there"
            in note[0] and "3 of 3 requests reach past it (the longest holds 20,009 positions)" in note[0])
    short = srv.serve(MODEL, HW, qps=1, requests=3, prompt_len=200, output_len=10, context_window=100000)
    assert any("no request reaches past it" in n for n in short.notes)
    within = srv.serve(MODEL, HW, qps=1, requests=3, prompt_len=200, output_len=10, context_window=8192)
    assert not any("maximum context" in n for n in within.notes)
    assert main(["serve", "--model", MODEL, "--hw", HW, "--qps", "1", "--requests", "2", "--prompt-len", "9000",
                 "--output-len", "4", "--context-window", "10000", "--scheduler", "chunked"]) == 0
    assert "the model was not trained there" in capsys.readouterr().out


def test_draft_model_of_another_vocabulary_refused(capsys):
    err = _one_error(capsys, ["serve", "--model", MODEL, "--hw", HW, "--qps", "1", "--requests", "2",
                              "--draft-model", "qwen2_5_7b"])
    for part in ("speculative.draft_model", "'qwen2_5_7b'", "152,064", "llama3_8b", "128,256"):
        assert part in err, part


def test_draft_model_larger_than_target_refused(capsys):
    err = _one_error(capsys, ["serve", "--model", MODEL, "--hw", HW, "--qps", "1", "--requests", "2",
                              "--draft-model", "llama3_70b"])
    for part in ("'llama3_70b'", "70.55 B parameters", "llama3_8b", "8.03 B parameters", "no larger than"):
        assert part in err, part
    assert "kv capacity" not in err


def test_a_smaller_draft_of_the_same_vocabulary_runs():
    res = srv.serve(MODEL, HW, qps=2, requests=3, prompt_len=100, output_len=8,
                    speculative={"draft_model": "llama3_2_3b"})
    assert res.summary["requests"] == 3


def test_a_sweeps_serve_trace_values_are_read_beside_the_base_experiment(tmp_path, monkeypatch):
    """A serve.trace axis's relative paths were applied as given, so a run read them from the current directory."""
    from cosim.dse.spec import sweep_from_dict
    sub = tmp_path / "sub"
    sub.mkdir()
    for name in ("a.csv", "b.csv"):
        (sub / name).write_text("arrival_s,prompt_len,output_len\n0,100,10\n0.5,200,10\n")
    monkeypatch.chdir(tmp_path)
    base = {"model": "llama3_8b", "hw": "h100_sxm", "serve": {"trace": "a.csv"}}
    sw = sweep_from_dict({"base": base, "axes": [{"grid": {"serve.trace": ["a.csv", "b.csv"]}}],
                          "objectives": {"goodput_req_s": "max"}}, base_dir=sub)
    assert sw.axes == [("grid", {"serve.trace": [str((sub / "a.csv").resolve()), str((sub / "b.csv").resolve())]})]
    with pytest.raises(InputError, match=r"serve\.trace: got 'c\.csv'; expected an existing CSV file"):
        sweep_from_dict({"base": base, "axes": [{"grid": {"serve.trace": ["c.csv"]}}],
                         "objectives": {"goodput_req_s": "max"}}, base_dir=sub)
