"""Method-specific quantizers (numpy in, dequantized float32 out).

These are the schemes the KV/weight methods define themselves — asymmetric min/max
groups (KIVI, SpQR, MiKV), symmetric integer groups, 1-D Lloyd codebooks (KVQuant's
non-uniform types) — not the registered number formats, which the functional core
(`cosim.functional.quantize`) owns. Statistics (scales, zero points) are rounded to
fp16 because that is how the methods store them.
"""

from __future__ import annotations

import numpy as np

from cosim.functional.rope import rope_angles, rotate_half

__all__ = ["asym_group_quant", "sym_group_quant", "lloyd_codebook", "codebook_quant", "register_format_quant"]


def _groups(x: np.ndarray, group: int, axis: int):
    x = np.moveaxis(np.asarray(x, np.float64), axis, -1)
    n = x.shape[-1]
    if group <= 0 or n % group:
        raise ValueError(f"group size {group} does not divide the axis length {n}")
    return x.reshape(x.shape[:-1] + (n // group, group)), x.shape


def _ungroup(g: np.ndarray, shape, axis: int) -> np.ndarray:
    return np.moveaxis(g.reshape(shape), -1, axis).astype(np.float32)


def asym_group_quant(x: np.ndarray, bits: int, group: int, axis: int = -1) -> np.ndarray:
    """Round-to-nearest with a (min, scale) pair per `group` elements along `axis`."""
    g, shape = _groups(x, group, axis)
    lo = g.min(axis=-1, keepdims=True)
    hi = g.max(axis=-1, keepdims=True)
    levels = 2 ** bits - 1
    scale = np.float16((hi - lo) / levels).astype(np.float64)
    lo = np.float16(lo).astype(np.float64)
    safe = np.where(scale > 0, scale, 1.0)
    q = np.clip(np.round((g - lo) / safe), 0, levels)
    return _ungroup(np.where(scale > 0, q * scale + lo, lo), shape, axis)


def sym_group_quant(x: np.ndarray, bits: int, group: int, axis: int = -1) -> np.ndarray:
    """Symmetric integer groups: scale = max|x| / (2^(b−1) − 1) per group (fp16)."""
    g, shape = _groups(x, group, axis)
    qmax = 2 ** (bits - 1) - 1
    scale = np.float16(np.abs(g).max(axis=-1, keepdims=True) / qmax).astype(np.float64)
    safe = np.where(scale > 0, scale, 1.0)
    return _ungroup(np.clip(np.round(g / safe), -qmax, qmax) * scale, shape, axis)


def lloyd_codebook(samples: np.ndarray, bits: int, iters: int = 12) -> np.ndarray:
    """A 2^bits-entry 1-D codebook minimising squared error on `samples` (Lloyd /
    k-means, initialised at quantiles). Returned sorted, as fp16 values."""
    s = np.sort(np.asarray(samples, np.float64).ravel())
    k = 2 ** bits
    c = np.quantile(s, (np.arange(k) + 0.5) / k)
    for _ in range(iters):
        edges = (c[1:] + c[:-1]) / 2
        idx = np.searchsorted(edges, s)
        sums = np.bincount(idx, weights=s, minlength=k)
        cnt = np.bincount(idx, minlength=k)
        c = np.where(cnt > 0, sums / np.maximum(cnt, 1), c)
        c = np.sort(c)
    return np.float16(c).astype(np.float64)


def codebook_quant(x: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    """Nearest codebook entry for every element."""
    c = np.asarray(codebook, np.float64)
    edges = (c[1:] + c[:-1]) / 2
    return c[np.searchsorted(edges, np.asarray(x, np.float64))].astype(np.float32)


def register_format_quant(x: np.ndarray, fmt: str, axis: int = -1, scale: str = "tensor") -> np.ndarray:
    """Quantize-dequantize to a registered number format. Every block family (MX,
    NVFP4, BFP, microexponents, integer groups) comes from the functional core, so what
    is scored is what is priced and stored. A bare FP8/FP6/FP4 tensor is stored with
    an fp32 scale (`scale`: "tensor", or "none" to cast unscaled and saturate), as FP8
    weights and KV caches are in practice (cosim.functional.scaled)."""
    from workloads.formats import get_format
    f = get_format(fmt)
    if f.name == "fp32":
        return np.asarray(x, np.float32)
    if f.name == "fp16":  # IEEE cast: beyond 65504 overflows to inf, as the format does
        with np.errstate(over="ignore"):
            return np.asarray(x, np.float32).astype(np.float16).astype(np.float32)
    if f.name == "bf16":  # round to nearest even on the upper 16 bits (one numba pass)
        from .bf16 import bf16_round
        return bf16_round(x)
    if f.family == "int_group":
        # the format's own quantizer (the one encode() stores and bits_per_element prices): fp16
        # scale and, for *_zp, an integer zero point of zero_point_bits over [min(x,0), max(x,0)]
        # -- not asym_group_quant's fp16 float minimum, which is KIVI/SpQR/MiKV's storage
        from cosim.functional import quantize
        return quantize(np.asarray(x, np.float32), f.name, axis=axis)
    try:
        from cosim.functional.scaled import scaled_quantize
    except ImportError as e:  # the functional core is another helper's module
        raise ImportError(f"quantizing to {fmt!r} needs cosim.functional.quantize (the numba "
                          f"functional core), which this checkout lacks") from e
    return scaled_quantize(np.asarray(x, np.float32), f, scale, axis=axis)[0]


def rope(x: np.ndarray, positions: np.ndarray, theta: float = 10000.0, inverse: bool = False) -> np.ndarray:
    """Rotary position embedding of 2-D x (n, d), Hugging Face `rotate_half` layout (cosim.functional.rope, the
    decoder's rotation), angles and arithmetic in float64, the result float32. `inverse` undoes it."""
    x = np.asarray(x, np.float64)
    ang = rope_angles(positions, x.shape[-1], theta)
    if inverse:
        ang = -ang
    return rotate_half(x, np.cos(ang), np.sin(ang)).astype(np.float32)
