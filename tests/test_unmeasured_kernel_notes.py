"""Kernels the GPU calibrations never measured say so on their rows (issue 11, no silent fallback; audit finding,
session 13): a weight-only quantized GEMM (int4_g128 weights, bf16 compute) is priced as the calibrated bf16 kernel
streaming the stored bytes, and a decode over an fp8 KV cache as the calibrated bf16 decode kernel reading fp8 bytes.
The prices themselves are those of the frozen model (only a note is added)."""
import cosim
from hwmodels import gpu


def test_weight_only_gemm_says_its_kernel_is_not_measured():
    hw = cosim.load_hw("h100_sxm")
    P = gpu.params_for(hw)
    q = gpu.estimate(cosim.ops.gemm(m=8, n=4096, k=4096, fmt="bf16", weight_fmt="int4_g128", name="q_proj"), hw,
                     params=P)
    note = " ".join(q.notes)
    assert "q_proj: weight-only int4_g128 GEMM priced as the calibrated bf16 kernel" in note
    assert "no dequantizing int4_g128 kernel is measured" in note
    assert not gpu.estimate(cosim.ops.gemm(m=8, n=4096, k=4096, fmt="bf16"), hw, params=P).notes
    # fp8 weights on an fp8 GEMM are the calibrated fp8 class itself: no note
    assert not gpu.estimate(cosim.ops.gemm(m=8, n=4096, k=4096, fmt="fp8_e4m3"), hw, params=P).notes


def test_quantized_kv_decode_says_its_kernel_is_not_measured():
    hw = cosim.load_hw("h100_sxm")
    P = gpu.params_for(hw)
    args = dict(batch=16, heads=32, kv_heads=8, q_len=1, kv_len=8192, head_dim=128)
    fp8 = gpu.estimate(cosim.ops.attention(**args, kv_fmt="fp8_e4m3"), hw, params=P)
    bf16 = gpu.estimate(cosim.ops.attention(**args), hw, params=P)
    assert any("fp8_e4m3 KV cache priced as the calibrated" in n and "no fp8_e4m3-KV attention kernel is measured" in n
               for n in fp8.notes)
    assert not any("KV cache priced" in n for n in bf16.notes)
    # the price is the bf16 kernel's at half the KV bytes: cheaper, and said to be unmeasured
    assert fp8.details["isolated_s"] < bf16.details["isolated_s"]
