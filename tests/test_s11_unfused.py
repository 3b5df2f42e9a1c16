"""Issue 11 round 6 (session 11): unfused (Hugging Face eager) attention on the H200.

The fit-procedure fix: the CLI's full re-fit fitted the unfused group inside fit_latency, before fit_launch set
launch.overlap (the launch latency each kernel after the first hides in the eager sequence's sum,
hwmodels.gpu._unfused_attention), so the multipliers were fitted at overlap 0 and priced at 1.65 us."""
from pathlib import Path

import pytest

from cosim.calibrate import fit
from hwmodels.gpu import params_for
from hwmodels.spec import load_hw

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "validation" / "h200_runs.csv"


def test_the_unfused_group_is_fitted_with_the_launch_constants_written_beside_it(monkeypatch):
    """Every group's LM fit replaced by the committed calibration's values (energy and launch fits run for
    real): the unfused group must see every other parameter at the value the calibration writes, the launch
    overlap included (1.65 us, h200.yaml's launch.overlap). Before the fix it saw launch.overlap = 0 (INITIAL)
    and energy coefficients of 0."""
    committed = params_for(load_hw("h200")).values
    seen = {}

    def fake_group(names, meas, hw, values, sms, l2, default="fa2"):
        if "unfused.gather_mult" in names:
            seen.update(values)
        values.update({n: committed[n] for n in names if n in committed})
        return {"rows": len(meas)}

    monkeypatch.setattr(fit, "_fit_group", fake_group)
    section, rep = fit.fit(RUNS, "h200", RUNS, RUNS, RUNS)
    assert rep["values"]["launch.overlap"] == pytest.approx(1.65e-6, rel=1e-9)  # the grid's 33rd step of 50 ns
    assert seen["launch.overlap"] == rep["values"]["launch.overlap"]
    others = [k for k in rep["values"] if not k.startswith("unfused.")]
    assert [k for k in others if seen.get(k) != rep["values"][k]] == []
    assert list(rep["quality"])[-2:] == ["launch", "attention_unfused"]
