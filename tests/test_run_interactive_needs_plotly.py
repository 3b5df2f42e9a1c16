"""`cosim run --interactive` without plotly: refused before any work (it wrote report.csv/json, then exited 2
without report.html)."""
import importlib.util

import pytest

from cosim.cli import main


def test_interactive_without_plotly_is_refused_before_any_file(tmp_path, capsys, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "plotly" else real(name, *a))
    out = tmp_path / "r"
    assert main(["run", "quickstart", "--interactive", "--no-accuracy", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: interactive report: plotly is not installed")
    assert "nothing was run or written" in err[0]
    assert not out.exists() or not any(out.iterdir())


def test_run_experiment_api_checks_it_too(tmp_path, monkeypatch):
    from cosim.experiment import run_experiment
    from workloads.io import InputError
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "plotly" else real(name, *a))
    with pytest.raises(InputError, match="plotly is not installed"):
        run_experiment("quickstart", out_dir=tmp_path / "r", accuracy=False, interactive=True)
    assert not (tmp_path / "r").exists()
