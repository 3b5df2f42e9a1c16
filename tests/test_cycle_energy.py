"""Energy and area coefficients of hwmodels.energy, checked against their sources."""

import math

import pytest
from hypothesis import given, strategies as st

from hwmodels.energy import bitcell_mm2, op_energy, phy_area_mm2, sram_area_mm2, sram_energy_per_byte, EnergyParams


def test_sram_energy_hits_horowitz_points_at_45nm():
    # Horowitz 45 nm / 0.9 V, 64-bit read: 8 KB 10 pJ, 32 KB 20 pJ, 1 MB 100 pJ -> per byte / 8
    for size, pj in ((8 * 1024, 10), (32 * 1024, 20), (1024 * 1024, 100)):
        assert sram_energy_per_byte(size, 45, 0.9) == pytest.approx(pj * 1e-12 / 8, rel=1e-6, abs=0)
    # 7 nm at 0.8 V is the Stillmaker-Baas factor 0.094 x (0.8 V vs 0.9 V) lower
    assert sram_energy_per_byte(8 * 1024, 7, 0.8) < 0.1 * sram_energy_per_byte(8 * 1024, 45, 0.9)


@given(st.floats(1e3, 1e9), st.floats(1.01, 8))
def test_bigger_srams_cost_more_per_access_and_area(size, factor):
    assert sram_energy_per_byte(size * factor) > sram_energy_per_byte(size)
    assert sram_area_mm2(size * factor) > sram_area_mm2(size)


def test_sram_area_raw_bitcell_over_array_efficiency():
    # 128 KB at 7 nm: 1,048,576 bits x 0.027 um^2 (TSMC N7 HD 6T cell, ISSCC 2017 12.1) / 0.704 (CACTI)
    assert sram_area_mm2(128 * 1024, 7) == pytest.approx(1_048_576 * 0.027e-6 / 0.704)  # 0.04022 mm^2
    # 16 nm: the published 0.07 um^2 cell, not 0.027 x a logic-scaling factor
    assert sram_area_mm2(128 * 1024, 16) == pytest.approx(1_048_576 * 0.070e-6 / 0.704)
    assert bitcell_mm2(7) == pytest.approx(0.027e-6, rel=1e-9, abs=0) and bitcell_mm2(5) == pytest.approx(0.021e-6, rel=1e-9, abs=0)
    # between listed nodes: log-log, 10 nm = 0.027 x (0.070 / 0.027) ** (ln(10/7) / ln(16/7)) = 0.0407 um^2
    assert bitcell_mm2(10) == pytest.approx(0.027e-6 * (0.070 / 0.027) ** (math.log(10 / 7) / math.log(16 / 7)), rel=1e-9, abs=0)


def test_sram_area_sanity_against_published_chips():
    # Graphcore GC200: TSMC N7, 900 MB of SRAM on an 823 mm^2 die with 1,472 cores. The SRAM alone
    # must fit well inside the die (the old 0.17 um^2 "bit cell" / 0.704 gave 1,739 mm^2).
    gc200 = sram_area_mm2(900e6, 7)
    assert gc200 == pytest.approx(900e6 * 8 * 0.027e-6 / 0.704)  # 276.1 mm^2
    assert gc200 < 0.5 * 823
    # 8 MiB at 7 nm: density between the whole N7 test die (256 Mib on 42.64 mm^2 = 6.0 Mib/mm^2,
    # pads and test logic included) and bare cells (1 / 0.027 um^2 = 37.0 Mbit = 35.3 Mib per mm^2)
    mib_per_mm2 = 64 / sram_area_mm2(8 * 2 ** 20, 7)
    assert 256 / 42.64 < mib_per_mm2 < 1 / 0.027e-6 / 2 ** 20
    assert mib_per_mm2 == pytest.approx(24.87, abs=0.01)


def test_phy_area_whole_channels():
    # 1.6384 TB/s = 4 HBM2e channels of 409.6 GB/s, 10.45 mm^2 each (LLMCompass)
    assert phy_area_mm2(1638.4e9, "hbm") == pytest.approx(4 * 10.45)
    assert phy_area_mm2(1638.5e9, "hbm") == pytest.approx(5 * 10.45)


def test_op_energy_adds_up():
    p = EnergyParams(sram_j_per_byte={"ifmap": 1e-12, "default": 2e-12}, dram_j_per_byte=5e-12,
                     wire_j_per_byte=0.5e-12, static_power_w=2.0, vector_j_per_flop=1e-13)
    e = op_energy(macs=1000, e_mac_j=1e-13, sram_bytes={"ifmap": 100, "filter": 50}, dram_bytes=10,
                  vector_flops=20, latency_s=1e-6, p=p)
    assert e["mac"] == pytest.approx(1e-10, rel=1e-6, abs=0)
    assert e["sram"] == pytest.approx(100e-12 + 100e-12, rel=1e-6, abs=0)
    assert e["noc"] == pytest.approx(150 * 0.5e-12, rel=1e-6, abs=0)
    assert e["static"] == pytest.approx(2e-6)
    assert e["total"] == pytest.approx(sum(v for k, v in e.items() if k != "total"))


def test_sram_area_grows_with_size_below_the_efficiency_ramp():
    # the example hypothesis found: 6,232 B came out smaller than 3,116 B with log-size interpolation
    assert sram_area_mm2(6232) > sram_area_mm2(3116)
    # mid-ramp by hand, 32 KB (3/5 of the way from 4 KB to 128 KB in log size): cells 262,144 x 0.027e-6
    # = 0.007078 mm2, periphery 0.010747 + 0.6 x (0.011916 - 0.010747) = 0.011448 mm2
    p0, p1 = 4096 * 8 * 0.027e-6 * (1 / 0.076 - 1), 131072 * 8 * 0.027e-6 * (1 / 0.704 - 1)
    assert sram_area_mm2(32 * 1024) == pytest.approx(32 * 1024 * 8 * 0.027e-6 + p0 + 0.6 * (p1 - p0))
