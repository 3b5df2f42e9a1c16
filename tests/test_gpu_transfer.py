"""Family transfer (`calibration: {from: <sibling>, sm_count: N}`): the sibling's fitted
parameters scaled by the datasheet differences, with provenance saying so."""

from pathlib import Path

import pytest

import cosim
from hwmodels import gpu
from hwmodels.spec import HardwareError

ROOT = Path(__file__).resolve().parents[1]


def test_h100_pcie_inherits_the_sxm_calibration_scaled_by_its_datasheet():
    sxm = gpu.params_for(cosim.load_hw("h100_sxm"))
    pcie = gpu.params_for(cosim.load_hw("h100_pcie"))
    assert pcie.sm_count == 114 and sxm.sm_count == 132
    assert pcie.provenance.startswith("transferred from h100_sxm (calibrated:NVIDIA H100")
    assert "CROSS-ARCHITECTURE" not in pcie.provenance
    # the tile menu is the sibling's (Hopper's nvjet tiles): the row says so
    assert "GEMM tiles from h100_sxm's menu (gemm.tile_set 2)" in pcie.provenance
    # HBM 2.0 vs 3.35 TB/s: every achieved bandwidth x 0.597
    assert pcie["gemm.bw"] == pytest.approx(sxm["gemm.bw"] * 2.0 / 3.35, rel=1e-12)
    # SM clock 1.83 vs 1.62 GHz: per-CTA times x 1.83/1.62
    assert pcie["attn.cta_overhead"] == pytest.approx(sxm["attn.cta_overhead"] * 1.83 / 1.62, rel=1e-12)
    # 350 W part: cap = its TDP, idle power x 350/700
    assert pcie["energy.power_cap"] == 350.0
    assert pcie["energy.static"] == pytest.approx(sxm["energy.static"] / 2, rel=1e-12)
    # efficiencies and launch constants carry over unchanged
    for k in ("gemm.mma_eff.bf16", "attn.eff", "gemm.floor", "launch.overlap", "energy.per_flop.bf16"):
        assert pcie[k] == sxm[k]


def test_cross_architecture_transfer_is_flagged_in_every_row():
    rep = cosim.simulate(cosim.build_trace("llama3_8b", "decode", 1, 1024), "b200", level="analytical")
    assert rep.level == "analytical"
    assert all("CROSS-ARCHITECTURE" in r["provenance"] for r in rep.rows)
    # Hopper's tile menu priced a Blackwell GEMM: every row says the target's own tiles are unmeasured
    assert all("gemm.tile_set 2; the target's own kernels' tiles unmeasured" in r["provenance"] for r in rep.rows)


def _yaml(tmp_path, cal):
    import re
    src = re.sub(r"(?m)^calibration:.*$", "", (ROOT / "cosim/configs/hw/h200.yaml").read_text())
    p = tmp_path / "gpu.yaml"
    p.write_text(src + f"\ncalibration: {cal}\n")
    return p


def test_transfer_to_the_h200_gives_the_h100_model_at_4_8_tb_s(tmp_path):
    hw = cosim.load_hw(_yaml(tmp_path, "{from: h100_sxm, sm_count: 132}"))
    P, sxm = gpu.params_for(hw), gpu.params_for(cosim.load_hw("h100_sxm"))
    assert P["ew.bw"] == pytest.approx(sxm["ew.bw"] * 4.8 / 3.35, rel=1e-12)
    assert P["attn.cta_overhead"] == pytest.approx(sxm["attn.cta_overhead"], rel=1e-12)  # same clock


@pytest.mark.parametrize("cal, field", [("{from: h100_sxm}", "calibration.sm_count"),
                                        ("{from: h100_sxm, sm_count: 0}", "calibration.sm_count"),
                                        ("{from: h100_pcie, sm_count: 132}", "calibration.from"),
                                        ("{from: h100_sxm, sm_count: 132, scale: 2}", "calibration")])
def test_bad_transfer_blocks_name_the_field(tmp_path, cal, field):
    with pytest.raises(HardwareError) as e:
        cosim.load_hw(_yaml(tmp_path, cal))
    assert f"{field}:" in str(e.value) and "gpu.yaml" in str(e.value)
