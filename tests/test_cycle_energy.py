"""Energy and area coefficients of hwmodels.energy, checked against their sources."""

import pytest
from hypothesis import given, strategies as st

from hwmodels.energy import op_energy, phy_area_mm2, sram_area_mm2, sram_energy_per_byte, EnergyParams


def test_sram_energy_hits_horowitz_points_at_45nm():
    # Horowitz 45 nm / 0.9 V, 64-bit read: 8 KB 10 pJ, 32 KB 20 pJ, 1 MB 100 pJ -> per byte / 8
    for size, pj in ((8 * 1024, 10), (32 * 1024, 20), (1024 * 1024, 100)):
        assert sram_energy_per_byte(size, 45, 0.9) == pytest.approx(pj * 1e-12 / 8)
    # 7 nm at 0.8 V is the Stillmaker-Baas factor 0.094 x (0.8 V vs 0.9 V) lower
    assert sram_energy_per_byte(8 * 1024, 7, 0.8) < 0.1 * sram_energy_per_byte(8 * 1024, 45, 0.9)


@given(st.floats(1e3, 1e9), st.floats(1.01, 8))
def test_bigger_srams_cost_more_per_access_and_area(size, factor):
    assert sram_energy_per_byte(size * factor) > sram_energy_per_byte(size)
    assert sram_area_mm2(size * factor) > sram_area_mm2(size)


def test_sram_area_llmcompass():
    # 128 KB at 7 nm: 1,048,576 bits x 1.70e-7 mm^2 / 0.704 array efficiency
    assert sram_area_mm2(128 * 1024, 7) == pytest.approx(128 * 1024 * 8 * 1.70e-7 / 0.704)


def test_phy_area_whole_channels():
    # 1.6384 TB/s = 4 HBM2e channels of 409.6 GB/s, 10.45 mm^2 each (LLMCompass)
    assert phy_area_mm2(1638.4e9, "hbm") == pytest.approx(4 * 10.45)
    assert phy_area_mm2(1638.5e9, "hbm") == pytest.approx(5 * 10.45)


def test_op_energy_adds_up():
    p = EnergyParams(sram_j_per_byte={"ifmap": 1e-12, "default": 2e-12}, dram_j_per_byte=5e-12,
                     wire_j_per_byte=0.5e-12, static_power_w=2.0, vector_j_per_flop=1e-13)
    e = op_energy(macs=1000, e_mac_j=1e-13, sram_bytes={"ifmap": 100, "filter": 50}, dram_bytes=10,
                  vector_flops=20, latency_s=1e-6, p=p)
    assert e["mac"] == pytest.approx(1e-10)
    assert e["sram"] == pytest.approx(100e-12 + 100e-12)
    assert e["noc"] == pytest.approx(150 * 0.5e-12)
    assert e["static"] == pytest.approx(2e-6)
    assert e["total"] == pytest.approx(sum(v for k, v in e.items() if k != "total"))


def test_sram_area_grows_with_size_below_the_efficiency_ramp():
    # the example hypothesis found: 6,232 B came out smaller than 3,116 B with log-size interpolation
    assert sram_area_mm2(6232) > sram_area_mm2(3116)
    # mid-ramp by hand, 32 KB (3/5 of the way from 4 KB to 128 KB in log size): cells 262,144 x 1.70e-7
    # = 0.04456 mm2, periphery 0.06766 + 0.6 x (0.07503 - 0.06766) = 0.07208 mm2
    p0, p1 = 4096 * 8 * 1.70e-7 * (1 / 0.076 - 1), 131072 * 8 * 1.70e-7 * (1 / 0.704 - 1)
    assert sram_area_mm2(32 * 1024) == pytest.approx(32 * 1024 * 8 * 1.70e-7 + p0 + 0.6 * (p1 - p0))
