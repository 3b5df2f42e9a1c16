import math

import numpy as np
import pytest

import cosim.ops as cops
from hwmodels import roofline
from hwmodels.spec import HardwareSpec, MemoryLevel, UnsupportedFormatError
from workloads.builder import build_trace


def test_gemv_is_hbm_bound(toy_hw):
    op = cops.gemm(1, 4096, 4096)
    c = roofline.estimate(op, toy_hw)
    assert c.bound == "hbm"
    assert c.latency_s == pytest.approx(op.bytes / 1e12)
    assert c.bytes_by_level["hbm"] == op.bytes


def test_big_gemm_is_compute_bound(toy_hw):
    op = cops.gemm(8192, 8192, 8192)
    c = roofline.estimate(op, toy_hw)
    assert c.bound == "compute"
    assert c.latency_s == pytest.approx(2 * 8192**3 / 100e12)
    assert c.utilization == pytest.approx(1.0)


def test_fp8_uses_fp8_peak(toy_hw):
    c = roofline.estimate(cops.gemm(8192, 8192, 8192, fmt="fp8_e4m3"), toy_hw)
    assert c.latency_s == pytest.approx(2 * 8192**3 / 200e12)


def test_hong_kung_reuse_traffic(toy_hw):
    # sram holds 32e6 B = 16e6 bf16 elements -> sqrt = 4000; traffic >= 2mnk/4000 elements of 2 B
    op = cops.gemm(16384, 16384, 16384)
    c = roofline.estimate(op, toy_hw)
    assert c.bytes_by_level["hbm"] == pytest.approx(2 * 16384**3 / 4000 * 2)
    assert c.bytes_by_level["hbm"] > op.bytes  # more than compulsory: the operands do not fit


def test_energy_adds_up(toy_hw):
    op = cops.gemm(1, 4096, 4096)
    c = roofline.estimate(op, toy_hw)
    expect = op.flops * 1e-12 + c.bytes_by_level["hbm"] * 10e-12 + c.bytes_by_level["sram"] * 1e-12
    assert c.energy_j == pytest.approx(expect)


def test_missing_format_is_an_error_unless_fallback(toy_hw):
    op = cops.gemm(4096, 4096, 4096, fmt="mxfp4")
    with pytest.raises(UnsupportedFormatError, match="mxfp4"):
        roofline.estimate(op, toy_hw)
    c = roofline.estimate(op, toy_hw, compute_fallback=True)
    assert c.details["compute_fmt"] == "fp8_e4m3"  # narrowest listed float at least 4 bits wide
    assert any("fallback" in n for n in c.notes)


def test_weight_only_quant_computes_in_activation_format(toy_hw):
    op = cops.gemm(1, 4096, 4096, fmt="bf16", weight_fmt="mxfp4")
    assert op.compute_fmt == "bf16"
    c = roofline.estimate(op, toy_hw)
    assert c.bound == "hbm" and op.bytes < cops.gemm(1, 4096, 4096).bytes / 3.5


def test_elementwise_uses_vector_peak(toy_hw):
    op = cops.elementwise("rmsnorm", 8192, 4096)
    c = roofline.estimate(op, toy_hw)
    assert c.details["compute_fmt"] == "fp32"
    assert c.bound == "hbm"


def test_batched_equals_single(toy_hw):
    from dataclasses import replace
    trace = build_trace("llama3_8b", "decode", batch=8, seq=2048)
    variants = [replace(toy_hw, memory=(replace(toy_hw.memory[0], bandwidth_Bps=bw), toy_hw.memory[1]))
                for bw in (0.5e12, 1e12, 2e12, 4e12)]
    many = roofline.evaluate_many(trace.ops, variants)
    for i, v in enumerate(variants):
        costs, _ = roofline.estimate_trace(trace.ops, v)
        single = sum(c.latency_s * op.repeat for c, op in zip(costs, trace.ops))
        assert many["total_latency_s"][i] == pytest.approx(single)
    assert np.all(np.diff(many["total_latency_s"]) < 0)  # more bandwidth, faster decode


def test_memory_instances_limit_reuse(tmp_path):
    """An on-chip level split over 100 SMs gives each GEMM tile 1/100 of its capacity."""
    from hwmodels.spec import load_hw
    text = ("name: t\nkind: gpu\nclock: 1 GHz\ncompute: {bf16: 100 TFLOP/s}\nmemory:\n"
            "  - {name: hbm, capacity: 80 GB, bandwidth: 1 TB/s}\n"
            "  - {name: smem, capacity: 100 MB, bandwidth: 100 TB/s, instances: 100}\n")
    p = tmp_path / "t.yaml"
    p.write_text(text)
    hw = load_hw(p)
    assert hw.memory[1].instances == 100
    op = cops.gemm(8192, 8192, 8192)
    c = roofline.estimate(op, hw)
    # one SMEM holds 1 MB = 0.5 M bf16 elements: traffic = 2*8192^3/sqrt(5e5) elements of 2 B
    assert c.bytes_by_level["hbm"] == pytest.approx(2 * 8192**3 / math.sqrt(5e5) * 2)
    p.write_text(text.replace("instances: 100", "instances: 0"))
    with pytest.raises(ValueError, match="instances"):
        load_hw(p)
