"""validation/same_shape_speed.py (issue 11, sessions 22-24): the committed unit-speed records regenerate from the
committed raw folders byte for byte, and heldout19's, heldout20's, fit10's and heldout21's unit probes say what
docs/gpu-validation.md publishes."""
from pathlib import Path

import pytest

from validation import same_shape_speed as sss

D = Path("validation/diagnostics")
RECORDS = [("validation/raw_h100_run4", D / "h100_run16_unit_probe", D / "h100_run16_unit_probe.txt"),
           ("validation/raw_h100_run4", D / "h100_run18_unit_probe", D / "h100_run18_unit_probe.txt"),
           ("validation/raw_h100_run4", D / "h100_run19_unit_probe", D / "h100_run19_unit_probe.txt"),
           ("validation/raw_h100_run4", D / "h100_run20_unit_probe", D / "h100_run20_unit_probe.txt"),
           ("validation/raw_h100_run4", D / "raw_h100_pair_default", D / "h100_pair_default_vs_run4.txt")]


@pytest.mark.parametrize("base, later, record", RECORDS)
def test_record_regenerates(tmp_path, base, later, record):
    out = tmp_path / "out.txt"
    sss.main(Path(base), later, out)
    assert out.read_text() == record.read_text()


def test_heldout19_unit_probe_as_published():
    text = (D / "h100_run16_unit_probe.txt").read_text()
    assert "later c418bbc22083" in text
    assert "| GEMV: bf16, M <= 16, >= 32 MB of weights | 60 | +3.8 |" in text
    assert "| every GEMM row | 442 | +2.2 |" in text
    assert "| end to end decode, graph mode, engine fusion | 38 | +2.8 |" in text


def test_heldout20_unit_probe_as_published():
    text = (D / "h100_run18_unit_probe.txt").read_text()
    assert "later b7e8ad6b07e8" in text
    assert "| GEMV: bf16, M <= 16, >= 32 MB of weights | 60 | +0.3 |" in text
    assert "| every GEMM row | 442 | +0.4 |" in text
    assert "| end to end decode, graph mode, engine fusion | 38 | +0.0 |" in text


def test_fit10_and_heldout21_unit_probes_as_published():
    text = (D / "h100_run19_unit_probe.txt").read_text()  # the unit fit10's rows were measured on
    assert "later 0b000e63f731" in text and "| every GEMM row | 442 | +2.6 |" in text
    assert "| GEMV: bf16, M <= 16, >= 32 MB of weights | 60 | +4.0 |" in text
    text = (D / "h100_run20_unit_probe.txt").read_text()
    assert "later bddd2d89743f" in text and "| every GEMM row | 442 | -0.1 |" in text
    assert "| end to end decode, graph mode, engine fusion | 38 | +0.1 |" in text


def test_two_runs_of_different_suites_are_refused(tmp_path):
    (tmp_path / "ops.csv").write_text("section,kind,name,fmt,dims,impl,median_s\n")
    with pytest.raises(SystemExit, match="share no"):
        sss.main(Path("validation/raw_h100_run4"), tmp_path, tmp_path / "out.txt")
