"""Round 11's transfer law (session 19; validation/model_selection/s21_transfer.txt, chosen on the fit rows of both
directions): Hugging Face eager attention's passes keep their rate per SM and clock, not per datasheet bandwidth."""
import pytest

from cosim.calibrate.transfer import transferred_spec
from hwmodels import gpu, gpu_transfer
from hwmodels.spec import load_hw

PASSES = ("unfused.gather_mult", "unfused.score_mult", "unfused.transpose_mult", "unfused.softmax_mult")


@pytest.mark.parametrize("sms", [132, 114])
def test_eager_pass_rate_follows_sms_and_clock_not_the_datasheet_bandwidth(sms):
    """H200 parameters on the H100 SXM (same clock in both datasheets): each pass's rate, ew.bw / multiplier, is the
    H200's times the SM ratio; ew.bw itself follows the datasheet (3.35 / 4.8), so the multiplier is the H200's
    times 3.35 / 4.8 x 132 / sms (3.418 -> 2.385 at 132 SMs; the H100's own fit is 2.55)."""
    h200 = gpu.params_for(load_hw("h200"))
    P = gpu.params_for(transferred_spec("h100_sxm", "h200", sms))
    assert P.values["ew.bw"] == pytest.approx(h200.values["ew.bw"] * 3.35 / 4.8, rel=1e-3)
    for k in PASSES:
        assert P.values[k] == pytest.approx(h200.values[k] * 3.35 / 4.8 * 132 / sms, rel=1e-3), k
        assert P.values["ew.bw"] / P.values[k] == pytest.approx(h200.values["ew.bw"] / h200.values[k] * sms / 132,
                                                                rel=1e-9), k
    # the unaligned multipliers carry over (s21's U2 was not eligible)
    for k in gpu_transfer.UNFUSED_UNALIGNED_KEYS:
        assert P.values[k] == h200.values[k], k
    assert "HF eager attention's passes x SMs x clock" in P.provenance


def test_the_current_law_scaled_eager_passes_with_the_datasheet(monkeypatch):
    """The switch off reproduces round 10's law (what s21_transfer.txt scored as A): multipliers carried over."""
    monkeypatch.setattr(gpu_transfer, "SM_BOUND_UNFUSED", ())
    h200 = gpu.params_for(load_hw("h200"))
    P = gpu.params_for(transferred_spec("h100_sxm", "h200", 132))
    for k in PASSES:
        assert P.values[k] == h200.values[k], k
    assert "HF eager" not in P.provenance


def test_sm_and_clock_factors_on_the_h100_pcie_by_hand():
    """H100 SXM parameters on the H100 PCIe (calibration: {from: h100_sxm}; 114 SMs, 2.0 TB/s, clocks from the two
    datasheets): gather_mult x (2.0 / 3.35) x (SXM clock / PCIe clock) x 132 / 114; the provenance says the SM and
    clock factors are unvalidated (s21 chose the law between GPUs with equal ones)."""
    sxm, pcie = load_hw("h100_sxm"), load_hw("h100_pcie")
    own = gpu.params_for(sxm)
    P = gpu.params_for(pcie)
    expect = (own.values["unfused.gather_mult"] * pcie.main_memory.bandwidth_Bps / sxm.main_memory.bandwidth_Bps
              * sxm.clock_hz / pcie.clock_hz * 132 / P.sm_count)
    assert P.sm_count == 114
    assert P.values["unfused.gather_mult"] == pytest.approx(expect, rel=1e-9)
    # 2.647 x 2.0/3.35 x 1.83/1.62 x 132/114 (the H100's gather_mult 2.5515 -> 2.674 with round 13's re-fit, -> 2.6454
    # with round 14's, whose launch.overlap its event-timed kernel sequence hides, -> 2.6466 with round 15's, fit9 among
    # the fit rows, -> 2.647 with round 16's, fit10 too, -> 2.6571 with round 22's, whose GEMM prices its score GEMMs
    # use)
    assert P.values["unfused.gather_mult"] == pytest.approx(2.0749, abs=5e-4)
    assert "its SM and clock factors unvalidated" in P.provenance


def test_fa2_split_rate_follows_the_datasheet_and_the_old_law_reproduces(monkeypatch):
    """s22's S1: FA2's split-KV per-CTA rate is the H100's x 4.8 / 3.35 on the H200 (25.595 -> 36.67 GB/s; the H200's
    own fit 35.18), the other three rates SM-bound (x 1 here); switched back, session 10's law (x 1)."""
    h100 = gpu.params_for(load_hw("h100_sxm"))
    P = gpu.params_for(transferred_spec("h200", "h100_sxm", 132))
    assert P.values["attn.cta_bw_split"] == pytest.approx(h100.values["attn.cta_bw_split"] * 4.8 / 3.35, rel=1e-3)
    assert P.values["attn.cta_bw_split"] == pytest.approx(36.67e9, rel=1e-3)
    for k in ("attn.cta_bw_nosplit", "attn_cudnn.cta_bw_split", "attn_cudnn.cta_bw_nosplit"):
        assert P.values[k] == pytest.approx(h100.values[k], rel=1e-9), k
    monkeypatch.setattr(gpu_transfer, "SM_BOUND_CTA_BW", gpu_transfer.CTA_BW_KEYS)
    P = gpu.params_for(transferred_spec("h200", "h100_sxm", 132))
    assert P.values["attn.cta_bw_split"] == pytest.approx(h100.values["attn.cta_bw_split"], rel=1e-9)
