"""Bit packing and element-code tables.

Codes are packed LSB-first into a byte stream: code i occupies bits
[i*b, (i+1)*b) of the stream, bit 0 being the least significant bit of byte 0. Two
fp4 codes therefore share a byte with the first in the low nibble.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .params import ElemParams

__all__ = ["pack_bits", "unpack_bits", "fp_code_table", "fp_encode"]


@njit(cache=True)
def _pack(codes, bits, out):
    acc = np.uint64(0)
    nacc = 0
    j = 0
    mask = (np.uint64(1) << np.uint64(bits)) - np.uint64(1)
    for i in range(codes.size):
        acc |= (np.uint64(codes[i]) & mask) << np.uint64(nacc)
        nacc += bits
        while nacc >= 8:
            out[j] = np.uint8(acc & np.uint64(0xFF))
            acc >>= np.uint64(8)
            nacc -= 8
            j += 1
    if nacc > 0:
        out[j] = np.uint8(acc & np.uint64(0xFF))


@njit(parallel=True, cache=True)
def _unpack(buf, bits, n, out):
    mask = (np.int64(1) << bits) - 1
    for i in prange(n):
        bit = i * bits
        byte = bit >> 3
        off = bit & 7
        v = np.int64(0)
        k = 0
        while k * 8 < off + bits:  # gather the bytes this code touches
            if byte + k < buf.size:
                v |= np.int64(buf[byte + k]) << (8 * k)
            k += 1
        out[i] = (v >> off) & mask


def pack_bits(codes: np.ndarray, bits: int) -> np.ndarray:
    """Pack non-negative integer codes (< 2^bits) into ceil(n*bits/8) bytes."""
    codes = np.ascontiguousarray(codes).reshape(-1)
    if bits == 8:
        return codes.astype(np.uint8)
    if bits in (16, 32):
        return codes.astype(np.uint16 if bits == 16 else np.uint32).view(np.uint8).copy()
    out = np.zeros(-(-codes.size * bits // 8), dtype=np.uint8)
    _pack(codes.astype(np.uint32), bits, out)
    return out


def unpack_bits(buf: np.ndarray, bits: int, n: int) -> np.ndarray:
    """Inverse of `pack_bits`: n codes as int64."""
    buf = np.ascontiguousarray(buf, dtype=np.uint8)
    if bits == 8:
        return buf[:n].astype(np.int64)
    if bits in (16, 32):
        return buf.view(np.uint16 if bits == 16 else np.uint32)[:n].astype(np.int64)
    out = np.empty(n, dtype=np.int64)
    _unpack(buf, bits, n, out)
    return out


def fp_code_table(ep: ElemParams) -> np.ndarray:
    """Value of every code of a small float format (sign | exponent | mantissa), float64.

    Specials follow the registry's flags: IEEE-like formats (has_inf) reserve the top
    exponent (mantissa 0 = Inf, else NaN); formats with NaN but no Inf (E4M3) use only
    the all-ones pattern for NaN; fp6/fp4 have no specials.
    """
    m = ep.mbits
    e_bits = ep.bits - 1 - m
    codes = np.arange(2 ** ep.bits, dtype=np.int64)
    sign = np.where((codes >> (ep.bits - 1)) & 1, -1.0, 1.0)
    ef = (codes >> m) & ((1 << e_bits) - 1)
    mant = codes & ((1 << m) - 1)
    mag = np.where(ef == 0, mant * 2.0 ** (ep.emin - m),
                   (2.0 ** m + mant) * np.ldexp(1.0, (ef - ep.bias - m).astype(np.int64)))
    vals = sign * mag
    top = (1 << e_bits) - 1
    if ep.has_inf:
        vals = np.where(ef == top, np.where(mant == 0, sign * np.inf, np.nan), vals)
    elif ep.has_nan:
        vals = np.where((ef == top) & (mant == (1 << m) - 1), np.nan, vals)
    return vals


def fp_encode(v: np.ndarray, ep: ElemParams, what: str) -> np.ndarray:
    """Codes of float64 values that lie on the format's grid (or are +-Inf/NaN)."""
    v = np.asarray(v, dtype=np.float64)
    m = ep.mbits
    e_bits = ep.bits - 1 - m
    sign = np.signbit(v).astype(np.int64)
    a = np.abs(v)
    finite = np.isfinite(a)
    af = np.where(finite, a, 0.0)
    _, ex = np.frexp(af)
    p = ex.astype(np.int64) - 1
    sub = (af < 2.0 ** ep.emin)
    pe = np.where(sub, ep.emin, p)
    mant_f = np.where(sub, af * 2.0 ** (m - ep.emin), np.ldexp(af, (m - pe)) - 2.0 ** m)
    mant = mant_f.astype(np.int64)
    if not np.array_equal(mant, mant_f):
        raise ValueError(f"{what}: values are not on the element grid (internal error)")
    ef = np.where(sub, 0, pe + ep.bias)
    code = (sign << (ep.bits - 1)) | (ef << m) | mant
    top = (1 << e_bits) - 1
    isnan = np.isnan(v)
    isinf = np.isinf(v)
    if isinf.any():
        if ep.has_inf:
            code = np.where(isinf, (sign << (ep.bits - 1)) | (top << m), code)
        elif ep.has_nan:  # OFP8 non-saturating semantics: overflow of E4M3 is NaN
            code = np.where(isinf, (sign << (ep.bits - 1)) | (top << m) | ((1 << m) - 1), code)
        else:
            raise ValueError(f"{what}: the format has no Inf/NaN encoding but the quantized tensor "
                             f"holds Inf; use saturate=True")
    if isnan.any():
        if not (ep.has_nan or ep.has_inf):
            raise ValueError(f"{what}: the format has no NaN encoding but the input holds NaN")
        code = np.where(isnan, (top << m) | ((1 << m) - 1) | (1 << (ep.bits - 1)), code)
    return code
