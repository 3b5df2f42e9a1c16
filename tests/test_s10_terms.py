"""Session-10 changes (issue 11 round 5): the transfer law chosen on the fit rows of both directions
(validation/model_selection/s10_transfer.txt)."""
import pytest

from cosim.calibrate.transfer import transferred_spec
from hwmodels import gpu, gpu_transfer
from hwmodels.spec import load_hw


@pytest.mark.parametrize("sms", [132, 114])
def test_per_cta_decode_rate_scales_with_sms_and_clock_not_the_datasheet_bandwidth(sms):
    """H200 parameters on the H100 SXM: same 1.98 GHz clock in both datasheets (ratio 1), so the per-CTA KV
    rate is the H200's times the SM ratio, not times the bandwidth ratio 3.35 / 4.8 (it was 16.07 GB/s)."""
    h200 = gpu.params_for(load_hw("h200"))
    P = gpu.params_for(transferred_spec("h100_sxm", "h200", sms))
    for k in ("attn.cta_bw_nosplit", "attn_cudnn.cta_bw_nosplit", "attn_cudnn.cta_bw_split"):
        assert P.values[k] == pytest.approx(h200.values[k] * sms / 132, rel=1e-9), k
    # round 11 (s22_transfer): FA2's split-KV rate follows the datasheet per SM instead: 35.176 GB/s x 3.35 / 4.8 x
    # 132 / SMs (24.55 GB/s at 132: the CTAs on all SMs share the bandwidth; the SM factor is untested)
    assert P.values["attn.cta_bw_split"] == pytest.approx(h200.values["attn.cta_bw_split"] * 3.35 / 4.8 * 132 / sms,
                                                          rel=1e-3)
    assert P.values["attn.cta_bw_split"] == pytest.approx(24.55e9 * 132 / sms, rel=1e-3)
    assert ("its SM factor unvalidated" in P.provenance) == (sms != 132)
    # the HBM-bound decode bandwidth still follows the datasheet: 4.4964 TB/s x 3.35 / 4.8
    assert P.values["attn.dec_bw"] == pytest.approx(h200.values["attn.dec_bw"] * 3.35 / 4.8, rel=1e-3)
    assert "per-CTA decode KV rates x SMs x clock except attn.cta_bw_split (the datasheet bandwidth per SM" in P.provenance


def test_old_law_scaled_the_per_cta_rate_by_the_datasheet_ratio(monkeypatch):
    """The switch off reproduces the session-9 law (what s10_transfer.txt scored as A)."""
    monkeypatch.setattr(gpu_transfer, "SM_BOUND_CTA_BW", ())
    h200 = gpu.params_for(load_hw("h200"))
    P = gpu.params_for(transferred_spec("h100_sxm", "h200", 132))
    assert P.values["attn.cta_bw_nosplit"] == pytest.approx(h200.values["attn.cta_bw_nosplit"] * 3.35 / 4.8, rel=1e-3)
