"""FPGA sizing: DSP/LUT costs per MAC, the largest array that fits, bundled boards."""

import pytest

from hwmodels import cycle
from hwmodels.fpga import DSP_PACKING, mac_resources, size_array
from hwmodels.spec import HardwareError, HardwareSpec, MemoryLevel, UnsupportedFormatError

from hwmodels.spec import load_hw as load

U280 = {"dsp": 9024, "lut": 1303680, "bram36": 2016, "uram": 960}


def test_dsp_packing_per_format():
    assert mac_resources("int8")["dsp"] == 0.5  # 2 int8 MACs per DSP48E2 (WP486)
    assert mac_resources("int4")["dsp"] == 0.25
    assert mac_resources("bf16")["dsp"] == 1.0
    assert mac_resources("fp32")["dsp"] == 2.0
    assert mac_resources("int8", "dsp58")["dsp"] == pytest.approx(1 / 3)
    # FP4 / MX MACs live in LUTs; narrower elements need fewer
    assert mac_resources("mxfp4")["dsp"] == 0 and mac_resources("mxfp4")["lut"] > 0
    assert mac_resources("mxfp4")["lut"] < mac_resources("mxfp8_e4m3")["lut"]
    # MX scale handling adds LUTs over the bare element
    assert mac_resources("mxfp4")["lut"] > mac_resources("fp4_e2m1")["lut"]


def test_u280_bf16_array_is_dsp_bound():
    s = size_array(U280, {"dsp": 0.8, "lut": 0.6}, ["bf16", "int8", "int4"], "dsp48e2")
    # floor(0.8 * 9024) = 7219 one-DSP PEs -> side 84, cols = 7219 // 84 = 85
    assert (s.rows, s.cols) == (84, 85) and s.bound_by == "dsp"
    assert s.dsp_used <= 0.8 * 9024
    assert s.to_dict()["rows"] == 84 and s.to_dict()["bound_by"] == "dsp"


def test_array_too_large_names_the_resource():
    with pytest.raises(HardwareError, match=r"u280.yaml: fpga.array: got 1 x 128x128 = 16384 PEs; expected at most 7219.*DSP budget"):
        size_array(U280, {"dsp": 0.8, "lut": 0.6}, ["bf16"], "dsp48e2", 128, 128, 1, "u280.yaml")
    with pytest.raises(HardwareError, match="dsp_type"):
        mac_resources("int8", "dsp99")


def test_lut_bound_for_fp4():
    s = size_array(U280, {"dsp": 0.8, "lut": 0.6}, ["mxfp4"], "dsp48e2")
    assert s.bound_by == "lut"
    assert s.lut_used <= 0.6 * U280["lut"]


@pytest.mark.parametrize("name", ["alveo_u280", "versal_vck190"])
def test_bundled_fpga_peaks_follow_from_resources(name):
    hw = load(name)
    cfg = cycle.config_for(hw)
    for fmt in cfg.pe.formats:
        assert hw.peak_flops[fmt] == pytest.approx(cfg.peak_flops(fmt, hw.clock_hz), rel=2e-3), fmt
    assert hw.peak_flops["fp32"] == pytest.approx(cfg.vector_flops_per_cycle() * hw.clock_hz, rel=2e-3) \
        or "fp32" in cfg.pe.formats


def test_vck190_aie_has_no_bf16():
    hw = load("versal_vck190")
    from workloads.ops import Op, TensorSpec
    op = Op("g", "gemm", {"m": 1, "n": 64, "k": 64},
            (TensorSpec("a", (1, 64), "bf16"), TensorSpec("w", (64, 64), "bf16", "weight")),
            (TensorSpec("c", (1, 64), "bf16"),), "bf16")
    with pytest.raises(UnsupportedFormatError, match="fpga.pe.formats.*'bf16'"):
        cycle.estimate(op, hw)
    assert cycle.estimate(op, hw, compute_fallback=True).details["compute_fmt"] == "fp32"


def test_fpga_mac_energy_carries_the_fabric_factor():
    from workloads.ops import Op, TensorSpec

    def spec(section):
        return HardwareSpec(name="f", kind="fpga", clock_hz=2.5e8, peak_flops={"int8": 1e12},
                            memory=(MemoryLevel("hbm", 8e9, 4.6e11, 3.9e-12 / 8 * 8),),
                            sections={"fpga": section}, source="f.yaml")

    sec = {"resources": {"dsp": 512, "lut": 200000, "bram36": 200, "uram": 0}, "pe": {"formats": ["int8"]},
           "array": {"rows": 16, "cols": 16}, "dataflow": "ws"}
    op = Op("g", "gemm", {"m": 64, "n": 64, "k": 64},
            (TensorSpec("a", (64, 64), "int8"), TensorSpec("w", (64, 64), "int8", "weight")),
            (TensorSpec("c", (64, 64), "int8"),), "int8")
    c = cycle.estimate(op, spec(sec))
    cfg = cycle.config_for(spec(sec))
    assert c.energy_breakdown["mac"] == pytest.approx(64 ** 3 * 14 * cfg.pe.energy_per_mac_j("int8"))
    bad = dict(sec, array={"rows": 64, "cols": 64})
    with pytest.raises(HardwareError, match="f.yaml: fpga.array"):
        cycle.config_for(spec(bad))


def test_packing_table_is_complete():
    for table in DSP_PACKING.values():
        assert {"int8", "bf16", "fp32"} <= set(table)


def test_bad_fpga_sections():
    def spec(section):
        return HardwareSpec(name="f", kind="fpga", clock_hz=2.5e8, peak_flops={"int8": 1e12},
                            memory=(MemoryLevel("hbm", 8e9, 4.6e11),), sections={"fpga": section}, source="f.yaml")

    base = {"resources": {"dsp": 512, "lut": 200000, "bram36": 200}, "pe": {"formats": ["int8"]}}
    with pytest.raises(HardwareError, match="f.yaml: fpga.budget.dsp: got 1.5"):
        cycle.config_for(spec({**base, "budget": {"dsp": 1.5}}))
    with pytest.raises(HardwareError, match="fpga.resources.dsp: got -1"):
        cycle.config_for(spec({**base, "resources": {"dsp": -1}}))
    with pytest.raises(HardwareError, match="unknown key"):
        cycle.config_for(spec({**base, "dsps": 3}))
    with pytest.raises(HardwareError, match="fpga.dataflow: got 'xs'"):
        cycle.config_for(spec({**base, "dataflow": "xs"}))
    with pytest.raises(HardwareError, match="fpga.engine"):
        cycle.config_for(spec({**base, "engine": "gpu"}))
    # no BRAM at all: the scratchpads cannot hold one tile
    with pytest.raises(HardwareError, match=r"f.yaml: fpga.resources \(BRAM36.*sram.ifmap: got 0 B; expected at least"):
        cycle.config_for(spec({**base, "resources": {"dsp": 512, "lut": 200000, "bram36": 0}}))


def _accelerator_files():
    from hwmodels.spec import list_hw
    return [n for n in list_hw() if cycle.applicable(load(n))[0]]


@pytest.mark.parametrize("name", _accelerator_files())
def test_roofline_per_flop_is_the_cycle_level_price(name):
    # one rule prices both levels: the file's energy.per_flop (what the roofline charges) is the
    # cycle level's MAC energy / 2 (x the FPGA fabric factor), and fp32 the vector unit's, to the
    # file's 3 significant figures. alveo_u280 int8 was 0.504 pJ in the file but 0.438 at cycle
    # level (PE unit priced at 0.8 V, the vector unit and the file at the PL's 0.85 V).
    hw = load(name)
    cfg = cycle.config_for(hw)
    ep = cycle._energy_params(hw, cfg)
    assert set(hw.energy_per_flop_j) == set(hw.peak_flops)
    for fmt, e in hw.energy_per_flop_j.items():
        want = ep.mac_factor * cfg.pe.energy_per_mac_j(fmt) / 2 if cfg.supports(fmt) else ep.vector_j_per_flop
        assert e == pytest.approx(want, rel=5e-3, abs=0), (name, fmt)
    # the on-chip level's energy is one access to the ifmap buffer, as the cycle level prices it
    sram = next(m for m in hw.memory if m.name == "sram")
    assert sram.energy_per_byte_j == pytest.approx(ep.sram_j_per_byte["ifmap"], rel=5e-3, abs=0), name


def test_u280_int8_price_by_hand():
    # 14 (Kuon & Rose) x the 16 nm / 0.85 V int8 lane of a bf16-sized DSP PE / 2 = 0.504 pJ/FLOP
    from hwmodels.arith import DotProductUnit
    from hwmodels.fpga import FPGA_ENERGY_FACTOR, PL_VDD
    unit = DotProductUnit(("bf16", "int8", "int4"), pack_narrow=True, node_nm=16, vdd=PL_VDD)
    assert PL_VDD == 0.85 and FPGA_ENERGY_FACTOR == 14.0
    assert FPGA_ENERGY_FACTOR * unit.energy_per_mac_j("int8") / 2 == pytest.approx(0.504e-12, rel=1e-3, abs=0)
    assert cycle.config_for(load("alveo_u280")).pe.energy_per_mac_j("int8") == unit.energy_per_mac_j("int8")
