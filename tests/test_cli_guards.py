"""Audit s11 guards of the command line: a fit refused from another GPU's measurements, sweep outputs that
are not the sweep's own store, output paths checked before a run (exit 2, one line, no traceback)."""

import pytest

from cosim.cli import main


def run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_calibrate_refuses_measurements_of_another_gpu(tmp_path, capsys):
    out = tmp_path / "mi.yaml"
    rc, _, err = run(capsys, "calibrate", "--fit-only", "--hw", "mi300x", "--measurements",
                     "validation/h100_ops.csv", "--out", out)
    assert rc == 2 and not out.exists()
    line = err.strip()
    assert "\n" not in line and "Traceback" not in line
    assert "--hw" in line and "'mi300x'" in line and "NVIDIA H100 80GB HBM3" in line and "calibration: {from:" in line


@pytest.mark.parametrize("device, part, same", [
    ("NVIDIA H100 80GB HBM3", "h100_sxm", True),   # torch's name of the SXM board
    ("NVIDIA H100 80GB HBM3", "h100_pcie", False),
    ("NVIDIA H100 PCIe", "h100_pcie", True),
    ("NVIDIA H100 PCIe", "h100_sxm", False),
    ("NVIDIA H100 NVL", "h100_sxm", False),
    ("NVIDIA H200", "h200", True),
    ("NVIDIA H200", "h100_sxm", False),
    ("NVIDIA H100 80GB HBM3", "mi300x", False),
    ("AMD Instinct MI300X", "mi300x", True),
    ("NVIDIA A100-SXM4-80GB", "a100_sxm_80gb", True),
    ("NVIDIA H100 80GB HBM3", "b200", False),
])
def test_device_matches_hardware_description(device, part, same):
    from hwmodels.spec import load_hw

    from cosim.cli.calibrate import device_matches

    assert device_matches(device, load_hw(part).description) is same

