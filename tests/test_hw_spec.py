"""Hardware specs: bundled numbers pinned by hand, loader behaviour, and bad input."""

import pytest

from hwmodels.spec import HardwareError, UnsupportedFormatError, list_hw, load_hw


def test_h100_sxm_pinned_numbers():
    h = load_hw("h100_sxm")
    # hardware-data.yaml nvidia_h100_sxm5: 989.4 TF dense bf16, fp8 = 2x bf16, 3350 GB/s HBM3.
    assert h.peak("bf16") == 989.4e12
    assert h.peak("fp8_e4m3") == h.peak("fp8_e5m2") == 1978.9e12
    assert h.peak("int8") == 1978.9e12
    assert h.clock_hz == 1.83e9
    hbm = h.main_memory
    assert hbm.name == "hbm" and hbm.bandwidth_Bps == 3.35e12
    # The vendor label "80 GB" is read as SI gigabytes (80e9 B), not 80 GiB = 85.9e9 B.
    assert hbm.capacity_bytes == 80e9
    assert hbm.energy_per_byte_j == pytest.approx(5.5e-12 * 8)
    assert h.level("l2").capacity_bytes == 50e6
    assert h.tdp_w == 700.0 and h.interconnect["nvlink"] == 450e9
    assert h.source.endswith("h100_sxm.yaml")
    with pytest.raises(UnsupportedFormatError, match="fp4_e2m1"):
        h.peak("fp4_e2m1")


def test_bundled_names_listed():
    assert "h100_sxm" in list_hw()
