"""bf16 round-to-nearest-even of float32 bit patterns in one numba pass: the upper 16
bits of u + 0x7FFF + (bit 16 of u), computed in 64 bits and cut back to 32 (NaN passed
through unchanged, as cosim.functional.quantize does: the add would carry a NaN payload
into +-Inf or +-0), exactly the numpy expression it replaces in `quant.register_format_quant` (which makes seven
passes over 8-byte copies; the real-checkpoint forward pass calls it ~500 times).
tests/test_bf16_kernel.py compares the two on every special bit pattern and random ones."""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["bf16_round", "bf16_round_numpy"]


@njit(cache=True, nogil=True)
def _round_bits(u, out):
    for i in range(u.size):
        if (u[i] & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000):  # NaN stays the same NaN, as F.quantize passes it
            out[i] = u[i]
            continue
        v = np.uint64(u[i])
        v = ((v + np.uint64(0x7FFF) + ((v >> np.uint64(16)) & np.uint64(1))) >> np.uint64(16)) << np.uint64(16)
        out[i] = np.uint32(v & np.uint64(0xFFFFFFFF))


def bf16_round(x) -> np.ndarray:
    """float32 values of `x` rounded to bf16 (ties to even), as float32, same shape."""
    a = np.ascontiguousarray(x, dtype=np.float32)
    out = np.empty(a.shape, dtype=np.uint32)
    _round_bits(a.reshape(-1).view(np.uint32), out.reshape(-1))
    return out.view(np.float32)


def bf16_round_numpy(x) -> np.ndarray:
    """The numpy expression (the reference the kernel is tested against)."""
    u32 = np.ascontiguousarray(x, np.float32).view(np.uint32)
    u = u32.astype(np.uint64)
    u = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16
    nan = (u32 & 0x7FFFFFFF) > 0x7F800000  # the rounding add would carry a NaN's payload into Inf or +-0
    return np.where(nan, u32, u.astype(np.uint32)).view(np.float32)
