"""The fp32 scales a KV cache in a bare narrow format keeps: one rule for the plain `kv:` format of a trace
(workloads.builder) and a `kv_format` recipe part (workloads.compression.kv_quant).

The functional simulation (cosim.functional.kvstore.kv_quantizer) calibrates them on the prompt and keeps them
fixed: one fp32 scale per KV head (or one per tensor) for a bare FP8/FP6/FP4 cache (amax / max normal) and for a
plain intN cache (amax / qmax); block formats (MX, NVFP4, BFP, int groups) carry their own scales inside their
bits per element; 16-bit caches and an explicitly unscaled cast ("none") keep none. The tensors are named
`<cache>.scale` (role "kv"), which readers of stored formats skip (workloads.ops.stored_operands)."""

from __future__ import annotations

from workloads.ops import TensorSpec

__all__ = ["kv_scale_granularity", "kv_scale_tensors", "PLAIN_KV_SCALE"]

# the granularity of a plain `kv:` format's scales: the simulation's default (cosim.functional.lm.numerics
# Numerics.kv_scale, kv_format's `scale` parameter default)
PLAIN_KV_SCALE = "head"


def kv_scale_granularity(f, scale: str) -> str:
    """What scales a KV format stores: its own block scales, none (a 16-bit format or
    an explicitly unscaled cast), or fp32 scales per KV head / per tensor (bare narrow
    floats and plain intN, as kv_quantizer calibrates them)."""
    if f.is_block:
        return "block"
    if f.family not in ("float", "int") or f.element_bits >= 16 or scale == "none":
        return "none"
    return scale


def kv_scale_tensors(name: str, h: int, f, scale: str) -> list:
    """fp32 scales of a bare narrow KV cache, per layer: one per KV head (h) or one
    for the tensor. Static (calibrated), so the count does not grow with the tokens;
    resident bytes per token amortise them over the capacity (4h / capacity B)."""
    g = kv_scale_granularity(f, scale)
    if g == "head":
        return [TensorSpec(f"{name}.scale", (h,), "fp32", "kv")]
    if g == "tensor":
        return [TensorSpec(f"{name}.scale", (1,), "fp32", "kv")]
    return []
