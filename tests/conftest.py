import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir():
    if not SHARED.is_dir():
        pytest.skip(f"../shared not found beside the repository ({SHARED}); golden data is only in CI/dev checkouts")
    return SHARED


@pytest.fixture
def toy_hw():
    """A two-level machine with round numbers, for hand-checkable roofline tests."""
    from hwmodels.spec import HardwareSpec, MemoryLevel
    return HardwareSpec(
        name="toy", kind="gpu", clock_hz=1e9,
        peak_flops={"bf16": 100e12, "fp8_e4m3": 200e12, "fp32": 10e12},
        memory=(MemoryLevel("hbm", 80e9, 1e12, energy_per_byte_j=10e-12),
                MemoryLevel("sram", 32e6, 10e12, energy_per_byte_j=1e-12)),
        energy_per_flop_j={"bf16": 1e-12, "fp8_e4m3": 0.5e-12, "fp32": 2e-12},
        static_power_w=0.0, source="<toy>")


@pytest.fixture(scope="session")
def h100_session9(tmp_path_factory):
    """The H100 datasheet with its retired session-9 calibration (validation/calibrations/h100_sxm_session9.yaml):
    the model that scored heldout13 on the H100 once, before the session-16 re-fit replaced it."""
    from hwmodels.spec import load_hw
    root = Path(__file__).resolve().parents[1]
    cal = root / "validation" / "calibrations" / "h100_sxm_session9.yaml"
    hw = (root / "cosim/configs/hw/h100_sxm.yaml").read_text()
    assert "calibration: calibration/h100_sxm.yaml" in hw
    path = tmp_path_factory.mktemp("h100_s9") / "h100_sxm.yaml"
    path.write_text(hw.replace("calibration: calibration/h100_sxm.yaml", f"calibration: {cal}"))
    return load_hw(str(path))
