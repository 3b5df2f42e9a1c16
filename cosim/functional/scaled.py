"""Scaled casts: a bare FP8/FP6/FP4 tensor stored with an fp32 scale, as serving engines
store FP8 KV caches and FP8 weights.

An elementwise narrow float (fp8_e4m3 max 448, fp4 max 6) has no scale of its own, so a
tensor whose values exceed the format's range saturates, and one far below it loses
precision to subnormals. Engines therefore keep one fp32 scale per tensor or per KV head,
``scale = amax / max_normal`` (vLLM's fp8 KV cache `k_scale`/`v_scale`; TensorRT-LLM's
FP8 KV cache and FP8 weights: per-tensor amax calibration), divide before the cast and
multiply after. Block formats (MX, NVFP4, BFP, integer groups) carry their own scales and
are cast as they are.

    y, info = scaled_quantize(k, "fp8_e4m3", granularity="head", head_axis=1)
    info.label  -> "per-head fp32 scale (amax/448)"
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workloads.formats import get_format

from .quantize import quantize, scale_of_amax

__all__ = ["GRANULARITIES", "ScaleInfo", "needs_scale", "amax_scale", "scaled_quantize",
           "scale_label"]

# "tensor": one fp32 scale for the whole tensor; "head": one per KV head (the head axis);
# "none": no scale (values beyond max normal saturate; the caller asked for it)
GRANULARITIES = ("tensor", "head", "none")


@dataclass(frozen=True)
class ScaleInfo:
    granularity: str  # one of GRANULARITIES, or "block" (the format's own block scales)
    scales: np.ndarray | None  # fp32 scales (shape 1, or one per head); None without a scale
    label: str  # what a result row shows


def needs_scale(fmt) -> bool:
    """An elementwise float narrower than 16 bits: FP8/FP6/FP4 without block scales."""
    f = get_format(fmt) if isinstance(fmt, str) else fmt
    return f.family == "float" and f.element_bits < 16


def scale_label(fmt, granularity: str) -> str:
    f = get_format(fmt) if isinstance(fmt, str) else fmt
    if not needs_scale(f):
        return "block scales of the format" if f.is_block else "none needed (wide format)"
    if granularity == "none":
        return f"unscaled (saturates beyond {f.max_normal:g})"
    return f"per-{granularity} fp32 scale (amax/{f.max_normal:g})"


def amax_scale(x: np.ndarray, fmt, granularity: str, head_axis: int | None = None) -> np.ndarray:
    """fp32 scale(s) amax / max_normal over the finite entries (cosim.functional.quantize.scale_of_amax:
    1 where amax is 0, the smallest float32 where the quotient underflows): shape (1,) for "tensor",
    (x.shape[head_axis],) for "head"."""
    if granularity not in ("tensor", "head"):
        raise ValueError(f"scale granularity must be 'tensor' or 'head' here, got {granularity!r}")
    f = get_format(fmt) if isinstance(fmt, str) else fmt
    a = np.abs(np.asarray(x, np.float64))
    a = np.where(np.isfinite(a), a, 0.0)
    if granularity == "tensor":
        amax = np.array([a.max() if a.size else 0.0])
    else:
        if head_axis is None:
            raise ValueError("per-head scales need head_axis (the axis that indexes KV heads)")
        amax = np.moveaxis(a, head_axis, 0).reshape(a.shape[head_axis], -1).max(axis=1) if a.size else \
            np.zeros(a.shape[head_axis])
    return scale_of_amax(amax, f.max_normal).astype(np.float32)  # float32 numbers already: exact


def scaled_quantize(x: np.ndarray, fmt, granularity: str = "tensor", head_axis: int | None = None,
                    scales: np.ndarray | None = None, axis: int = -1) -> tuple[np.ndarray, ScaleInfo]:
    """Quantize-dequantize `x` to `fmt` with fp32 scale(s) of `granularity`. `scales`
    given (e.g. calibrated on a prompt, then kept for the decode tokens as a static KV
    scale is): used as they are, and values beyond them saturate. Returns the
    dequantized float32 array and what scale was used."""
    if granularity not in GRANULARITIES:
        raise ValueError(f"scale granularity must be one of {GRANULARITIES}, got {granularity!r}")
    f = get_format(fmt) if isinstance(fmt, str) else fmt
    x = np.asarray(x, np.float32)
    if not needs_scale(f) or granularity == "none":
        g = "block" if f.is_block else "none"
        return np.asarray(quantize(x, f.name, axis=axis), np.float32), ScaleInfo(g, None, scale_label(f, granularity))
    s = amax_scale(x, f, granularity, head_axis) if scales is None else np.asarray(scales, np.float32)
    if granularity == "head":
        shape = [1] * x.ndim
        shape[head_axis] = s.size
        sb = s.reshape(shape)
    else:
        sb = s.reshape(())
    y = np.asarray(quantize(x / sb, f.name, axis=axis), np.float32) * sb
    return y.astype(np.float32), ScaleInfo(granularity, s, scale_label(f, granularity))
