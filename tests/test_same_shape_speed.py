"""validation/same_shape_speed.py (issue 11, sessions 22-27): the committed unit-speed records regenerate from the
committed raw folders byte for byte, and heldout19's, heldout20's, fit10's, heldout21's, heldout22's, heldout23's and
heldout24's unit probes say what docs/gpu-validation.md publishes."""
from pathlib import Path

import pytest

from validation import same_shape_speed as sss

D = Path("validation/diagnostics")
RECORDS = [("validation/raw_h100_run4", D / "h100_run16_unit_probe", D / "h100_run16_unit_probe.txt"),
           ("validation/raw_h100_run4", D / "h100_run18_unit_probe", D / "h100_run18_unit_probe.txt"),
           ("validation/raw_h100_run4", D / "h100_run19_unit_probe", D / "h100_run19_unit_probe.txt"),
           ("validation/raw_h100_run4", D / "h100_run20_unit_probe", D / "h100_run20_unit_probe.txt"),
           ("validation/raw_h100_run4", D / "h100_run21_unit_probe", D / "h100_run21_unit_probe.txt"),
           ("validation/raw_h100_run4", D / "h100_run22_unit_probe", D / "h100_run22_unit_probe.txt"),
           ("validation/raw_h100_run4", D / "h100_run23_unit_probe", D / "h100_run23_unit_probe.txt"),
           ("validation/raw_h100_run4", D / "raw_h100_pair_default", D / "h100_pair_default_vs_run4.txt")]


@pytest.mark.parametrize("base, later, record", RECORDS)
def test_record_regenerates(tmp_path, base, later, record):
    out = tmp_path / "out.txt"
    sss.main(Path(base), later, out)
    assert out.read_text() == record.read_text()


# (record, unit's NVML UUID hash, median GEMV / every GEMM row / CUDA-graph engine decode offset, %) as
# docs/gpu-validation.md publishes them: heldout19's, heldout20's, fit10's (the unit its rows were measured on) and
# heldout21's probes
PUBLISHED = [("h100_run16_unit_probe.txt", "c418bbc22083", "+3.8", "+2.2", "+2.8"),
             ("h100_run18_unit_probe.txt", "b7e8ad6b07e8", "+0.3", "+0.4", "+0.0"),
             ("h100_run19_unit_probe.txt", "0b000e63f731", "+4.0", "+2.6", "+2.9"),
             ("h100_run20_unit_probe.txt", "bddd2d89743f", "+0.1", "-0.1", "+0.1")]


@pytest.mark.parametrize("record, unit, gemv, gemm, engine", PUBLISHED, ids=[r[0][:10] for r in PUBLISHED])
def test_unit_probe_as_published(record, unit, gemv, gemm, engine):
    text = (D / record).read_text()
    assert f"later {unit}" in text
    assert f"| GEMV: bf16, M <= 16, >= 32 MB of weights | 60 | {gemv} |" in text
    assert f"| every GEMM row | 442 | {gemm} |" in text
    assert f"| end to end decode, graph mode, engine fusion | 38 | {engine} |" in text


def test_heldout22_unit_probe_as_published():
    text = (D / "h100_run21_unit_probe.txt").read_text()
    assert "later 81fa43c8f9e9" in text and "| every GEMM row | 442 | +0.8 |" in text
    assert "| GEMV: bf16, M <= 16, >= 32 MB of weights | 60 | +0.1 |" in text
    assert "| end to end decode, graph mode, eager fusion | 38 | -0.4 |" in text


def test_two_runs_of_different_suites_are_refused(tmp_path):
    (tmp_path / "ops.csv").write_text("section,kind,name,fmt,dims,impl,median_s\n")
    with pytest.raises(SystemExit, match="share no"):
        sss.main(Path("validation/raw_h100_run4"), tmp_path, tmp_path / "out.txt")


def test_heldout23_unit_probe_as_published():
    text = (D / "h100_run22_unit_probe.txt").read_text()
    assert "later 4b0b0417a78e" in text and "| every GEMM row | 442 | +2.0 |" in text
    assert "| GEMV: bf16, M <= 16, >= 32 MB of weights | 60 | +3.7 |" in text
    assert "| end to end decode, graph mode, eager fusion | 38 | +2.4 |" in text


def test_heldout24_unit_probe_as_published():
    # this unit ran the fit shapes' GPU work as fast as h100_run4; its eager decode, host-bound, 11 - 23 % faster
    text = (D / "h100_run23_unit_probe.txt").read_text()
    assert "later 7f077edb9e6c" in text and "| every GEMM row | 442 | +0.5 |" in text
    assert "| GEMV: bf16, M <= 16, >= 32 MB of weights | 60 | +0.1 |" in text
    assert "| end to end decode, graph mode, engine fusion | 38 | +0.1 |" in text
    assert "| end to end decode, eager mode, eager fusion | 38 | +23.1 |" in text
