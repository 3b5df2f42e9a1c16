"""Turn a registered `NumberFormat` into the plain numbers the numba kernels need.

Everything format-specific is derived here from workloads.formats (never typed in
twice): element mantissa width, smallest normal exponent, max normal, shared-exponent
offset (emax of the element, mx-formats.md §4.1), scale-exponent range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from workloads.formats import FormatError, NumberFormat, get_format

__all__ = ["ROUNDING", "ElemParams", "element_params", "resolve", "rounding_code", "check_input",
           "normalize_axis", "FormatError"]

# Reference names with the reference's meaning (mx-formats.md §6) plus clearer aliases.
ROUNDING = {"even": 0, "nearest": 1, "away": 1, "floor": 2, "zero": 2}
COMPAT = ("ocp", "microxcaling")


@dataclass(frozen=True)
class ElemParams:
    """Element grid of a scalar format: value = r * 2^(p - mbits), p >= emin."""

    is_int: bool  # fixed-point element: p is pinned to 0 and mbits = fraction bits
    mbits: int  # stored mantissa bits (FP) or fraction bits (int-like)
    emin: int  # exponent of the smallest normal (FP); 0 for int-like
    emax: int  # exponent of the largest normal binade (0 for int-like)
    max_norm: float
    bits: int  # element code width
    bias: int
    has_inf: bool
    has_nan: bool

    @property
    def unit_exp(self) -> int:
        """Exponent of the element's finest grid step (every element value is an
        integer multiple of 2^unit_exp)."""
        return (self.emin - self.mbits) if not self.is_int else -self.mbits


def _fp_elem(f: NumberFormat) -> ElemParams:
    emin = 1 - f.exponent_bias
    emax = int(math.floor(math.log2(f.max_normal)))
    return ElemParams(False, f.mantissa_bits, emin, emax, float(f.max_normal), f.element_bits,
                      f.exponent_bias, f.has_inf, f.has_nan)


def _int_like(bits: int) -> ElemParams:
    """sign + (bits-1)-bit magnitude with one integer bit: value = n * 2^-(bits-2),
    |n| <= 2^(bits-1) - 1 (mx-formats.md §3 and §12: MXINT and BFP share this grid)."""
    frac = bits - 2
    return ElemParams(True, frac, 0, 0, (2 ** (bits - 1) - 1) / 2.0 ** frac, bits, 0, False, False)


def element_params(f: NumberFormat) -> ElemParams:
    """Element grid of any format with a scalar element (float, mx, nvfp4, bfp, microexp)."""
    if f.family == "float":
        return _fp_elem(f)
    if f.family in ("mx", "nvfp4"):
        if f.exponent_bits > 0:
            return _fp_elem(get_format(f.element))
        return _int_like(f.element_bits)
    if f.family in ("bfp", "microexp"):
        return _int_like(f.mantissa_bits + 1)
    raise FormatError(f"format {f.name!r} (family {f.family}) has no scalar element grid")


def resolve(fmt, block_size=None) -> NumberFormat:
    """Registry lookup plus an optional block-size override, with clear errors."""
    f = get_format(fmt) if not isinstance(fmt, NumberFormat) else fmt
    if f.family == "fp8_block":  # a 2-D tile scale does not fit the row-block kernels
        raise FormatError(f"format {f.name!r}: 2-D block-scaled FP8 is priced by the cost models only; the "
                          f"functional core quantizes 1-D blocks (use {f.element} or mx{f.element} for accuracy)")
    if block_size is not None:
        if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)):
            raise ValueError(f"block_size must be a positive integer, got {block_size!r}")
        if block_size <= 0:
            raise ValueError(f"block_size must be a positive integer, got {block_size!r}")
        if not f.is_block:
            raise ValueError(f"format {f.name!r} is elementwise; block_size={block_size} does not apply")
        if f.family == "microexp" and block_size % f.subblock_size:
            raise ValueError(f"format {f.name!r}: block_size must be a multiple of the "
                             f"{f.subblock_size}-element sub-block, got {block_size}")
        f = f.with_block_size(int(block_size))
    return f


def rounding_code(rounding: str) -> int:
    try:
        return ROUNDING[rounding]
    except (KeyError, TypeError):
        raise ValueError(f"rounding must be one of {sorted(ROUNDING)}, got {rounding!r}") from None


def check_compat(compat: str) -> bool:
    if compat not in COMPAT:
        raise ValueError(f"compat must be one of {COMPAT}, got {compat!r}")
    return compat == "microxcaling"


def check_input(x) -> np.ndarray:
    """Floating input only (ints would silently mean something else); returns float32.
    A wider input (float64) is clipped to float32's finite range before the cast: a
    finite value beyond it would become Inf and turn its whole MX block into NaN, where
    OCP MX conversion saturates finite values (MX v1.0 §6.3). Inf and NaN pass through."""
    a = np.asarray(x)
    if not np.issubdtype(a.dtype, np.floating):
        raise TypeError(f"quantize expects a floating-point array, got dtype {a.dtype}")
    if a.dtype.itemsize > 4 and a.size:
        big = float(np.finfo(np.float32).max)
        with np.errstate(invalid="ignore"):
            over = np.isfinite(a) & (np.abs(a) > big)
        if over.any():
            a = np.where(over, np.copysign(big, a), a)
    return np.ascontiguousarray(a, dtype=np.float32)


def normalize_axis(axis: int, ndim: int) -> int:
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise ValueError(f"axis must be an integer, got {axis!r}")
    if ndim == 0:
        raise ValueError("block formats need an array with at least one dimension, got a scalar")
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} is out of range for an array with {ndim} dimensions")
    return int(axis) % ndim
