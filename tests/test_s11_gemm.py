"""Session-11 GEMM term (issue 11 round 6; validation/model_selection/s11_gemm_candidates.txt): the H200's
fp8 GEMMs never take stream-K (gemm.fp8_no_stream_k); bf16 GEMMs keep it."""
import copy

import pytest

from cosim.calibrate import fit
from hwmodels import gpu
from hwmodels.gpu import GpuParams
from hwmodels.gpu_calibration import parse_section
from hwmodels.spec import HardwareError, load_hw

# one tile shape, no tile overhead, 1 TFLOP/s per SM (peak 132 TFLOP/s on 132 SMs at efficiency 1), no floor,
# memory time ~0 (bandwidth 1e30 B/s), no split-K reduction priced: the time is the MAC schedule's alone
BASE = {"gemm.mma_eff.bf16": 1.0, "gemm.mma_eff.fp8_e4m3": 1.0, "gemm.tile_c": 0.0, "gemm.bw": 1e30,
        "gemm.floor": 0.0, "gemm.overlap_p": 2.0, "gemm.stream_k": 1.0}
SHAPE = ([1280], [1408], [8192], [1], 132e12)


def _time(values, fmt, monkeypatch):
    monkeypatch.setattr(gpu, "TILES", ((128, 128),))
    P = GpuParams(values=values, sm_count=132, l2_bytes=50 * 2 ** 20, provenance="test")
    e_in = 1.0 if fmt.startswith("fp8") else 2.0
    t, d = gpu.gemm_time(P, *SHAPE, e_in, 2.0, fmt, details=True)
    return float(t[0]), d["tile"][0]


def test_fp8_without_stream_k_by_hand(monkeypatch):
    """1280 x 1408 x 8192 in 128 x 128 tiles: 10 x 11 = 110 tiles on 132 SMs. Whole tiles (split-K: floor(132 /
    110) = 1 slice): one wave of 2 x 128 x 128 x 8192 FLOP at 1 TFLOP/s = 268.435 us. Stream-K: 110 x 8192 / 132 =
    6826.7 K-iterations per SM, 2 x 128 x 128 x 6826.7 / 1e12 = 223.696 us (its fix-up at 1e30 B/s ~0): the
    library's choice with the session-9 form, for both formats; with gemm.fp8_no_stream_k the fp8 GEMM takes
    the whole tiles, the bf16 GEMM still stream-K."""
    whole, streamed = 268.435456e-6, 268.435456e-6 * 110 / 132
    t, tile = _time(BASE, "fp8_e4m3", monkeypatch)
    assert t == pytest.approx(streamed, rel=1e-6) and tile[4] == 1.0
    off = {**BASE, "gemm.fp8_no_stream_k": 1.0}
    t, tile = _time(off, "fp8_e4m3", monkeypatch)
    assert t == pytest.approx(whole, rel=1e-6) and tile[4] == 0.0 and tile[3] == 1.0
    t, tile = _time(off, "bf16", monkeypatch)
    assert t == pytest.approx(streamed, rel=1e-6) and tile[4] == 1.0
    # 0 is off (the session-9 form); without stream-K at all the switch changes nothing
    assert _time({**BASE, "gemm.fp8_no_stream_k": 0.0}, "fp8_e4m3", monkeypatch)[0] == pytest.approx(streamed, rel=1e-6)
    no_sk = {k: v for k, v in off.items() if k != "gemm.stream_k"}
    assert _time(no_sk, "fp8_e4m3", monkeypatch)[0] == pytest.approx(whole, rel=1e-6)


def test_the_h200_set_switches_it_on_the_others_not():
    """Recorded by the fit where the set chose it (the H200's); the H100's and the base set keep the session-10 form."""
    assert fit.TERMS["gemm_fp8_no_stream_k"] is True and fit.terms_for("h200")[1]["gemm_fp8_no_stream_k"] is True
    assert fit.TERMS_BY_HW["h100_sxm"]["gemm_fp8_no_stream_k"] is False
    assert fit.BASE_TERMS["gemm_fp8_no_stream_k"] is False and fit.S11_GEMM_OFF == {"gemm_fp8_no_stream_k": False}
    for terms, want in ((fit.TERMS, 1.0), (fit.TERMS_BY_HW["h100_sxm"], None), (fit.BASE_TERMS, None)):
        values = {"gemm.overlap_p": 2.0}
        assert fit._s7_optional("gemm", [], values, terms) == []  # structure: nothing fitted
        assert values.get("gemm.fp8_no_stream_k") == want
    assert "s11_gemm_candidates: fp8 GEMMs without stream-K" in fit.TERM_SET_DESC["h200"]


@pytest.mark.parametrize("bad", [2, 0.5, True])
def test_the_switch_is_0_or_1(bad):
    sec = copy.deepcopy(load_hw("h200").sections["analytical"])
    sec["params"]["gemm"]["fp8_no_stream_k"] = bad
    with pytest.raises(HardwareError, match=r"analytical\.params\.gemm\.fp8_no_stream_k: got .*; expected 0 \(off\) or 1"):
        parse_section(sec, "h200.yaml")
    sec["params"]["gemm"]["fp8_no_stream_k"] = 1
    assert parse_section(sec, "h200.yaml").values["gemm.fp8_no_stream_k"] == 1.0
