"""Session 14 sweep audit fixes: Ctrl-C while a plot is saved; Pareto ties; energy_scope filled."""

from __future__ import annotations

import os
import signal
import time

import pytest

SPEC = """name: s14
base: {model: llama3_8b, phase: decode, batch: 8, seq: 1024, hw: h100_sxm}
axes:
  - grid: {weights: [bf16, fp8_e4m3]}
objectives: {latency_s: min, energy_per_token_j: min}
output: OUT
"""


@pytest.fixture(autouse=True)
def _python_sigint_handler():
    """Python's own Ctrl-C handler, as an interactive run has it: a suite started in the background (`pytest &`)
    inherits SIGINT ignored, and these tests send themselves SIGINT (they failed there, passing in CI)."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)


def _spec(tmp_path, text=SPEC):
    f = tmp_path / "s.yaml"
    f.write_text(text.replace("OUT", str(tmp_path / "out")))
    return f


def test_ctrl_c_while_a_plot_is_saved_is_one_line_exit_130(tmp_path, monkeypatch, capsys):
    """Audit: Ctrl-C during the plots gave a 67-line traceback and exit 1: raised inside matplotlib's
    renderer, the KeyboardInterrupt came out of savefig as "ValueError: Invalid bounding box". Simulated: the
    save gets SIGINT and then fails as matplotlib did."""
    from matplotlib.figure import Figure

    from cosim.cli import main

    def interrupted_save(self, *a, **k):  # what matplotlib's renderer did with a Ctrl-C inside it
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)  # the handler runs here
        except KeyboardInterrupt:
            raise ValueError("Invalid bounding box") from None
    monkeypatch.setattr(Figure, "savefig", interrupted_save)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert main(["sweep", str(_spec(tmp_path)), "-q"]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: interrupted (Ctrl-C); finished results are kept, a re-run resumes"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is back


def test_a_plot_that_fails_with_no_signal_fails_as_before(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    from cosim.dse.sweep_plots import interrupts_held

    def broken(self, *a, **k):
        raise ValueError("Invalid bounding box")
    monkeypatch.setattr(Figure, "savefig", broken)
    with pytest.raises(ValueError, match="Invalid bounding box"):
        with interrupts_held():
            Figure().savefig(tmp_path / "x.png")
    # a signal, then the save fails: the interrupt, not the error
    with pytest.raises(KeyboardInterrupt):
        with interrupts_held():
            os.kill(os.getpid(), signal.SIGINT)
            raise ValueError("Invalid bounding box")
    # a signal during a save that then succeeds is raised after it
    with pytest.raises(KeyboardInterrupt):
        with interrupts_held():
            os.kill(os.getpid(), signal.SIGINT)
            done = True
    assert done


TIES = """name: ties
base: {model: llama3_8b, phase: decode, batch: 8, seq: 1024, hw: h100_sxm}
axes:
  - grid: {hw.memory.hbm.capacity: [80 GB, 96 GB, 120 GB], weights: [bf16, fp8_e4m3]}
objectives: {latency_s: min, energy_per_token_j: min}
output: OUT
"""


def test_pareto_front_reports_designs_identical_in_every_objective(tmp_path, capsys):
    """Audit: of 15 bit-identical designs the front kept one and said "1 on the Pareto front". HBM capacity
    moves no objective of a fitting decode step: 3 capacities x 2 weight formats give 2 objective vectors; fp8
    dominates bf16, so 1 front row and 2 rows identical to it."""
    import json

    from cosim.cli import main
    f = _spec(tmp_path, TIES)
    assert main(["sweep", str(f)]) == 0
    out = capsys.readouterr().out
    assert "6 feasible, 1 on the Pareto front (+2 identical in every objective: column pareto_tie)" in out
    import pandas as pd
    df = pd.read_csv(tmp_path / "out" / "results.csv") if (tmp_path / "out" / "results.csv").exists() else \
        pd.read_parquet(tmp_path / "out" / "results.parquet")
    front = df[df["pareto"]]
    assert len(front) == 1 and front["pareto_ties"].iloc[0] == 2 and front["weights"].iloc[0] == "fp8_e4m3"
    tied = df[df["pareto_tie"]]
    assert len(tied) == 2 and (tied["weights"] == "fp8_e4m3").all()
    assert (tied[["latency_s", "energy_per_token_j"]].to_numpy() == front[["latency_s", "energy_per_token_j"]].to_numpy()).all()
    assert df.loc[~df["pareto"], "pareto_ties"].eq(0).all()
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["pareto"] == 1 and summary["pareto_identical"] == 2


def test_pareto_ties_ignore_nan_and_infeasible_rows():
    import numpy as np

    from cosim.dse.runner import pareto_ties
    costs = np.array([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0], [np.nan, 2.0], [0.5, 3.0], [1.0, 2.0]])
    feasible = np.array([True, True, True, True, True, False])
    front = np.array([True, False, False, False, True, False])
    ties, tied = pareto_ties(costs, feasible, front)
    assert list(ties) == [2, 0, 0, 0, 0, 0] and list(tied) == [False, True, True, False, False, False]


def test_energy_scope_is_one_vocabulary_filled_in_every_row(tmp_path):
    """Audit: energy_scope was blank for rows with static power (a float NaN column once results.csv or plan
    --out CSV is read back) while summary.json counted them "dynamic + static"; plan labelled a blank energy
    (tpu_v5e: no energy per FLOP) "dynamic only" where the sweep said "unknown (energy n/a for this point)"."""
    import json

    import pandas as pd

    from cosim.cli import main
    f = _spec(tmp_path, """name: scopes
base: {model: llama3_8b, phase: decode, batch: 8, seq: 1024, hw: h100_sxm}
axes:
  - grid: {hw: [h100_sxm, mx_systolic_128, tpu_v5e]}
objectives: {latency_s: min}
table_format: csv
output: OUT
""")
    assert main(["sweep", str(f), "-q"]) == 0
    df = pd.read_csv(tmp_path / "out" / "results.csv")
    assert pd.api.types.is_string_dtype(df["energy_scope"]) and df["energy_scope"].notna().all()
    scope = dict(zip(df["hw"], df["energy_scope"]))
    assert scope == {"h100_sxm": "dynamic + static",
                     "mx_systolic_128": "dynamic only (no static power in mx_systolic_128.yaml)",
                     "tpu_v5e": "unknown (energy n/a for this point)"}
    counts = json.loads((tmp_path / "out" / "summary.json").read_text())["energy_scopes"]
    assert counts == {v: 1 for v in scope.values()}
    # plan --out: the same three labels
    for system, want in (("dgx_h100", "dynamic + static"), ("tpu_v5e_256", "unknown (energy n/a for this point)"),
                         ("mx_systolic_board_4", "dynamic only (no static power in mx_systolic_128.yaml)")):
        out = tmp_path / f"{system}.csv"
        assert main(["plan", "--model", "llama3_8b", "--system", system, "--max-devices", "2", "--weights", "mxfp4",
                     "--out", str(out)]) == 0
        p = pd.read_csv(out)
        assert pd.api.types.is_string_dtype(p["energy_scope"]) and (p["energy_scope"] == want).all(), system
