"""Progress lines for slow steps, the results-table format option, binned plots (issue 14)."""

from __future__ import annotations

import io
import time

import numpy as np
import pandas as pd
import pytest

from cosim.dse import pareto as P
from cosim.dse import sweep
from cosim.dse import sweep_plots as SP
from cosim.progress import quiet, step


def test_slow_step_announces_itself_and_fast_step_is_silent():
    out = io.StringIO()
    with quiet(False):
        with step("fast thing", after_s=0.5, stream=out):
            pass
        assert out.getvalue() == ""
        with step("slow thing", after_s=0.05, stream=out):
            time.sleep(0.2)
    lines = out.getvalue().splitlines()
    assert lines[0] == "cosim: slow thing ..." and lines[1].startswith("cosim: slow thing: done in ")


def _spec(out, **kw):
    return {"name": "t", "base": {"model": "llama3_8b", "phase": "decode", "batch": 1, "seq": 1024,
                                  "weights": "mxfp4", "hw": "h100_sxm", "level": "roofline"},
            "axes": [{"random": {"samples": 30, "seed": 0,
                                 "fields": {"hw.memory.hbm.bandwidth": {"low": "1 TB/s", "high": "8 TB/s"},
                                            "hw.compute.bf16": {"low": "100 TFLOP/s", "high": "900 TFLOP/s"}}}}],
            "output": str(out), **kw}


def test_results_table_is_parquet_by_default_and_csv_on_request(tmp_path):
    df = sweep(_spec(tmp_path / "a"), quiet=True)
    assert (tmp_path / "a" / "results.parquet").exists() and not (tmp_path / "a" / "results.csv").exists()
    back = pd.read_parquet(tmp_path / "a" / "results.parquet")
    assert np.array_equal(back["latency_s"].to_numpy(), df["latency_s"].to_numpy())
    sweep(_spec(tmp_path / "b", table_format="csv"), quiet=True)
    assert (tmp_path / "b" / "results.csv").exists() and not (tmp_path / "b" / "results.parquet").exists()


def test_bad_table_format_is_one_clear_error(tmp_path):
    from workloads.io import InputError
    with pytest.raises(InputError, match="table_format.*parquet or csv"):
        sweep(_spec(tmp_path / "c", table_format="xlsx"), quiet=True)


def test_many_points_are_binned_and_sampled(tmp_path, monkeypatch):
    monkeypatch.setattr(SP, "MAX_SCATTER", 100)
    rng = np.random.default_rng(0)
    n = 1000
    df = pd.DataFrame({"latency_s": rng.lognormal(size=n), "energy_j": rng.lognormal(size=n),
                       "feasible": rng.random(n) > 0.3, "model": np.where(rng.random(n) > 0.5, "a", "b")})
    df["pareto"] = P.pareto_mask(df[["latency_s", "energy_j"]].to_numpy())
    assert P.pareto_plot(df, {"latency_s": "min", "energy_j": "min"}, tmp_path / "p.png", "t").exists()
    assert P.parallel_plot(df, ["model", "latency_s", "energy_j"], "latency_s", tmp_path / "q.png", "t").exists()


def test_two_objective_front_matches_the_general_rule():
    rng = np.random.default_rng(5)
    for _ in range(50):
        c = rng.integers(0, 5, (rng.integers(1, 40), 2)).astype(float)
        three = np.column_stack([c, np.zeros(len(c))])  # a constant third cost: same front, general path
        assert np.array_equal(P.pareto_mask(c), P.pareto_mask(three))
