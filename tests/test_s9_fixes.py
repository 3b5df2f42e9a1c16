"""Session-9 fixes of known analytical-model bugs (issue 11, round 4): each test failed before its fix.
(a) the sweep path re-chooses split-K per variant: tests/test_gpu_model.py::test_evaluate_variants_...;
(b) a GEMM's kernel count follows the split-K it is priced with (its own format and peak);
(c) the later fixed times of kernels' own work transfer with the SM clock ratio like their siblings
    (gemm.splitk_floor, scaled too in the fix commit, was removed after the s9 selection rejected it);
(d) the structure switches accept exactly 0 or 1, with an error naming file, field and value;
(e) split-K's reduction time is computed once per tile candidate."""
import copy

import numpy as np

import pytest

from hwmodels import gpu, gpu_transfer
from hwmodels.gpu_calibration import parse_section
from hwmodels.gpu_params import GpuParams
from hwmodels.spec import HardwareError, load_hw
from workloads.ops import Op, TensorSpec


def _fp8_gemm(m, n, k):
    a = TensorSpec("a", (m, k), "fp8_e4m3")
    w = TensorSpec("w", (n, k), "fp8_e4m3", "weight")
    return Op("g", "gemm", {"m": m, "n": n, "k": k}, (a, w), (TensorSpec("o", (m, n), "bf16"),), "fp8_e4m3")


def test_fp8_gemm_kernel_count_follows_its_own_split():
    """H200 fp8 GEMM M 8, N 8192, K 28672: priced at the fp8 peak it runs without split-K (one kernel);
    the old count priced it as bf16 at 1e15 FLOP/s, chose a split and said two kernels (73 of the 2,406
    H200 fp8 rows were miscounted), hiding one launch overlap too many in a workload."""
    hw = load_hw("h200")
    c = gpu.estimate(_fp8_gemm(8, 8192, 28672), hw)
    assert c.details["split_k"] == 1 and c.details["kernels"] == 1
    P = gpu.params_for(hw)
    assert c.latency_s == pytest.approx(max(c.details["power_capped_s"] - P["launch.overlap"], P["graph.gap"]))
    # and a split GEMM still counts its reduction kernel
    c2 = gpu.estimate(_fp8_gemm(40, 4096, 14336), hw)
    assert c2.details["kernels"] == (2 if c2.details["split_k"] > 1 else 1)


def test_kernels_of_refuses_a_calibrated_gemm_without_its_split():
    P = gpu.params_for(load_hw("h200"))
    with pytest.raises(HardwareError, match="split_k"):
        gpu.kernels_of(_fp8_gemm(8, 8192, 28672), P)
    assert gpu.kernels_of(_fp8_gemm(8, 8192, 28672), P, split_k=3) == 2


def test_later_fixed_times_scale_with_the_clock_under_transfer():
    """A target at half the sibling's clock: every per-CTA / per-split / per-row fixed time doubles (as
    attn.cta_overhead always did); launch floors do not."""
    sib = load_hw("h200")
    P = gpu.params_for(sib)
    values = {**P.values, "attn_cudnn.combine_split": 1e-7, "attn.dec_fill": 1e-6}
    P = GpuParams(values=values, sm_count=P.sm_count, l2_bytes=P.l2_bytes, provenance="t",
                  reference_bandwidth=P.reference_bandwidth, attention_default=P.attention_default)
    tgt = load_hw("h200", overrides={"clock": sib.clock_hz / 2})
    Q = gpu_transfer.transfer(P, {"from": "h200", "source": sib.source, "sm_count": 132}, tgt, sibling=sib)
    for k in ("attn.dec_cta_lat", "attn.combine_split", "attn_cudnn.combine_split", "attn.ragged",
              "attn.ragged_wave", "ew.embedding.small_idx", "attn.cta_overhead", "attn.dec_fill"):
        assert Q.values[k] == pytest.approx(2 * P.values[k]), k
    for k in ("gemm.floor", "attn.dec_floor", "attn.combine", "launch.overlap"):
        assert Q.values[k] == P.values[k], k


SWITCHES = ["gemm.splitk_ws", "attn_cudnn.dec_qhead_ctas", "gemm.stream_k", "gemm.fp8_no_stream_k",
            "attn.prefill_kernels"]


def test_every_switch_is_tested():
    """The parser's 0/1 validation covers gpu_params.SWITCH_PARAMS: the list below is that tuple, so a new
    switch cannot go untested (gemm.stream_k was validated but missing here)."""
    from hwmodels.gpu_params import SWITCH_PARAMS
    assert sorted(SWITCHES) == sorted(SWITCH_PARAMS)


@pytest.mark.parametrize("field", SWITCHES)
@pytest.mark.parametrize("bad", [2, 0.5, -1, True, "on"])
def test_structure_switches_accept_only_0_or_1(field, bad):
    sec = copy.deepcopy(load_hw("h200").sections["analytical"])
    head, key = field.split(".")
    sec["params"][head][key] = bad
    with pytest.raises(HardwareError, match=rf"h200.*analytical\.params\.{field}: got {bad!r}; expected 0 \(off\) or 1"):
        parse_section(sec, "h200.yaml")


def test_splitk_ws_0_is_off():
    sec = copy.deepcopy(load_hw("h200").sections["analytical"])
    sec["params"]["gemm"]["splitk_ws"] = 0
    P0 = parse_section(sec, "h200.yaml")
    assert float(gpu.splitk_reduce_time(P0, 100, 1000, 1, 4.0)) == 0.0
    sec["params"]["gemm"]["splitk_ws"] = 1
    assert float(gpu.splitk_reduce_time(parse_section(sec, "h200.yaml"), 100, 1000, 1, 4.0)) > 0.0


def test_stream_k_0_is_off():
    """gemm.stream_k: 0 in the calibration is off (the library never takes stream-K), 1 on; the GEMM of
    test_stream_k_by_hand, where the H200 calibration takes it (in bf16: session 11 took the H200's fp8
    GEMMs off stream-K, gemm.fp8_no_stream_k, tests/test_s11_gemm.py)."""
    hw = load_hw("h200")
    sec = copy.deepcopy(hw.sections["analytical"])
    args = ([1061], [1536], [20736], [1], hw.peak("bf16"), 2.0, 2.0, "bf16")
    for flag in (0, 1):
        sec["params"]["gemm"]["stream_k"] = flag
        _t, d = gpu.gemm_time(parse_section(sec, "h200.yaml"), *args, details=True)
        assert d["tile"][0][4] == float(flag), flag


def test_splitk_reduce_time_once_per_tile(monkeypatch):
    """The reduction is priced once per tile (since session 32 in one vectorised call over every tile)."""
    P = gpu.params_for(load_hw("h200"))
    calls = []
    real = gpu.splitk_reduce_time
    monkeypatch.setattr(gpu, "splitk_reduce_time", lambda *a, **k: calls.append(np.shape(a[4])) or real(*a, **k))
    gpu.gemm_time(P, [64], [4096], [8192], [1], 989e12, 2.0)
    assert calls == [(1, len(gpu._lib.tiles(gpu.TILES, P.values.get("gemm.tile_set"))))]


def test_stream_k_by_hand(request):
    """Stream-K (chosen on the H200's validation split, s9_candidates.txt): 100 tiles of 128 x 128 on 132 SMs,
    K 4096: each SM gets 100 x 4096 / 132 = 3103 K-iterations' depth, 2 x 128 x 128 x 3103 FLOP at 1 TFLOP/s per
    SM = 101.7 us, plus the fix-up 2 x 132 x 128 x 128 x 4 B at 1 TB/s = 17.3 us; 132 tiles fill whole waves
    (not eligible), as does a share shallower than 512."""
    from hwmodels import gpu_library as lib
    t, fix, ok = lib.streamk_time(128, 128, 100.0, 4096.0, 132, 1e12, 1e12, 4, 512)
    assert t == pytest.approx(2 * 128 * 128 * 100 * 4096 / 132 / 1e12) and fix == pytest.approx(2 * 132 * 128 * 128 * 4 / 1e12)
    assert bool(ok)
    assert not bool(lib.streamk_time(128, 128, 132.0, 4096.0, 132, 1e12, 1e12, 4, 512)[2])
    assert not bool(lib.streamk_time(128, 128, 10.0, 4096.0, 132, 1e12, 1e12, 4, 512)[2])  # 310 deep < 512
    # in gemm_time the library takes it only where it beats every split-K configuration (H200 calibration)
    hw = load_hw("h200")
    P = gpu.params_for(hw)
    assert P.values["gemm.stream_k"] == 1.0 and "gemm.stream_k" not in gpu.params_for(request.getfixturevalue(
        "h100_session9")).values  # the H100's session-9 fit: its split did not choose stream-K
    t1, d = gpu.gemm_time(P, [1061], [1536], [20736], [1], hw.peak("bf16"), 2.0, 2.0, "bf16", details=True)
    Poff = GpuParams(values={k: v for k, v in P.values.items() if k != "gemm.stream_k"}, sm_count=132,
                     l2_bytes=P.l2_bytes, provenance="t")
    t0 = gpu.gemm_time(Poff, [1061], [1536], [20736], [1], hw.peak("bf16"), 2.0, 2.0, "bf16")
    assert d["tile"][0][4] == 1.0 and t1[0] < t0[0]


def test_cudnn_decode_pipeline_fill_by_hand():
    """attn_cudnn.dec_fill (chosen, s9_candidates.txt): a time per KV block of 128 rows beyond the first, up to
    the fourth: context 128 pays none, 256 one, 512 and 32 K three."""
    P = gpu.for_backend(gpu.params_for(load_hw("h200")), "cudnn")
    fill = P.values["attn.dec_fill"]
    assert 0 < fill < 3e-6
    P0 = GpuParams(values={k: v for k, v in P.values.items() if k != "attn.dec_fill"}, sm_count=132,
                   l2_bytes=P.l2_bytes, provenance="t")
    for ctx, n in ((128, 0), (256, 1), (384, 2), (512, 3), (32768, 3)):
        a = gpu.attention_decode_time(P, 1, 32, 8, 1, ctx, 128, 128)
        b = gpu.attention_decode_time(P0, 1, 32, 8, 1, ctx, 128, 128)
        assert a - b == pytest.approx(n * fill), ctx
