"""Small items of the frozen model files left while heldout12 froze them (session 12, with round 7's refit): an int8
GEMM's note says it takes fp8's dispatch (no stream-K where the calibration records gemm.fp8_no_stream_k), and the
fit records gemm.fp8_no_stream_k only where stream-K is on."""
import pytest

import cosim
from cosim.calibrate import fit
from hwmodels import gpu
from hwmodels.gpu import GpuParams


def test_int8_gemm_says_it_takes_fp8s_dispatch():
    """int8 GEMMs are priced as the calibrated fp8 e4m3 class, dispatch included: on the H200 (stream-K with fp8
    GEMMs off it) an int8 GEMM loses stream-K like fp8, and its row's note says so; bf16 keeps stream-K. Since round
    10 (session 18: the measured-residual correction as s19 chose it) the fp8 GEMM's price carries its measured
    residual factor and the int8 GEMM's does not (a stored format no fit row has keeps the analytical price, with a
    note): int8 is fp8's analytical price, which is the corrected fp8 price divided by its factor. Before round 10 the
    two prices were equal (round 9 gave int8 fp8's factor, 1.33 here, without a note; before round 9 neither had
    one)."""
    hw = cosim.load_hw("h200")
    P = gpu.params_for(hw)
    assert P["gemm.stream_k"] == 1.0 and P["gemm.fp8_no_stream_k"] == 1.0
    op = {f: cosim.ops.gemm(m=225, n=1152, k=32256, fmt=f) for f in ("bf16", "fp8_e4m3", "int8")}
    c = {f: gpu.estimate(o, hw, params=P) for f, o in op.items()}
    assert c["bf16"].details["stream_k"] and not c["int8"].details["stream_k"]
    fp8_analytical = gpu.estimate(op["fp8_e4m3"], hw, params=gpu.analytical_params(hw))
    assert c["int8"].details["isolated_s"] == fp8_analytical.details["isolated_s"]
    factor = c["fp8_e4m3"].details["residual_factor"]  # this shape's fp8 factor: 1.33 with the bundled table
    assert "residual_factor" not in c["int8"].details and abs(factor - 1) > 0.01
    assert c["fp8_e4m3"].details["isolated_s"] == pytest.approx(factor * c["int8"].details["isolated_s"], rel=1e-12)
    note = " ".join(c["int8"].notes)
    assert "fp8_e4m3 tensor-core efficiency" in note and "no stream-K (gemm.fp8_no_stream_k)" in note
    assert "int8 itself is not measured" in note and not c["fp8_e4m3"].notes
    assert "without the measured-residual correction: int8 operands" in note
    # without the switch the note does not claim it
    P2 = GpuParams(values={k: v for k, v in P.values.items() if k != "gemm.fp8_no_stream_k"}, sm_count=P.sm_count,
                   l2_bytes=P.l2_bytes, provenance="test")
    note2 = " ".join(gpu.estimate(cosim.ops.gemm(m=225, n=1152, k=32256, fmt="int8"), hw, params=P2).notes)
    assert "stream-K" not in note2 and "fp8_e4m3 tensor-core efficiency" in note2


def test_fp8_no_stream_k_recorded_only_with_stream_k():
    """fit._s7_optional records gemm.fp8_no_stream_k only where the set also has stream-K (else moot)."""
    for sk, want in ((True, 1.0), (False, None)):
        values = {}
        fit._s7_optional("gemm", [], values, {"gemm_stream_k": sk, "gemm_fp8_no_stream_k": True})
        assert values.get("gemm.fp8_no_stream_k") == want
