"""The public surface named in docs/architecture.md, pinned to hand-checkable numbers."""

import pytest

import cosim


def test_public_api_roundtrip():
    hw = cosim.load_hw("h100_sxm")
    model = cosim.load_model("llama3_8b")
    trace = cosim.build_trace(model, phase="decode", batch=8, seq=4096, weights="mxfp4", kv="bf16")
    rep = cosim.simulate(trace, hw, level="roofline")
    df = rep.to_frame()
    for col in ["op", "kind", "phase", "repeat", "flops", "bytes", "intensity", "bound", "latency_s", "energy_j"]:
        assert col in df.columns
    assert rep.total_latency_s == pytest.approx(df["latency_s"].sum())
    assert rep.total_energy_j == pytest.approx(df["energy_j"].sum())
    assert rep.fits_in_memory


def test_decode_gemv_latency_is_bytes_over_bandwidth():
    hw = cosim.load_hw("h100_sxm")
    cost = cosim.estimate(cosim.ops.gemm(m=1, n=4096, k=4096, fmt="bf16"), hw, level="roofline")
    # (4096*4096 + 4096 + 4096) * 2 B over 3.35 TB/s
    assert cost.latency_s == pytest.approx((4096 * 4096 + 2 * 4096) * 2 / 3.35e12)
    assert cost.bound == "hbm"


def test_decode_step_time_of_llama2_7b_on_h100():
    rep = cosim.simulate(cosim.build_trace("llama2_7b", "decode", 1, 2048), "h100_sxm")
    # every op is HBM-bound at batch 1: time = bytes / 3.35 TB/s = 14.30 GB / 3.35 TB/s = 4.27 ms
    assert rep.total_latency_s == pytest.approx(rep.total_bytes / 3.35e12, rel=1e-6)
    assert rep.total_latency_s * 1e3 == pytest.approx(4.27, abs=0.01)


def test_large_prefill_is_compute_bound():
    rep = cosim.simulate(cosim.build_trace("llama3_8b", "prefill", 4, 4096), "h100_sxm")
    gemm_rows = [r for r in rep.rows if r["kind"] == "gemm" and r["op"] != "lm_head"]
    assert all(r["bound"] == "compute" for r in gemm_rows)


def test_single_op_constructors():
    a = cosim.ops.attention(batch=1, heads=32, kv_heads=8, q_len=1, kv_len=1024, head_dim=128)
    assert a.flops == 4 * 32 * 1024 * 128
    e = cosim.ops.elementwise("silu_mul", 16, 4096)
    assert e.bytes == 3 * 16 * 4096 * 2
    with pytest.raises(ValueError, match="kind"):
        cosim.ops.elementwise("tanh", 1, 1)
    with pytest.raises(ValueError, match="kv_heads"):
        cosim.ops.attention(1, 32, 7, 1, 16, 128)


def test_unknown_level_is_an_error():
    with pytest.raises(ValueError, match="level"):
        cosim.simulate(cosim.build_trace("llama3_8b", "decode", 1, 128), "h100_sxm", level="quantum")
