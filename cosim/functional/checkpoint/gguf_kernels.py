"""Numba kernels for the GGUF block types: one pass over a tensor's blocks instead of
numpy's five (nibble split, two casts, multiply, add), ~0.2 s less to load
SmolLM2-135M. The same float32 operations in the same order as `gguf_fast`'s numpy path
and `gguf.quants` (code cast to float32, times the block scale, plus the block min for
Q4_1), so the values are bit-identical (tests/test_gguf_fast.py compares them with the
package on random bytes, NaN and Inf scales included). `nogil`: the caller's two
threads dequantize two tensors at once."""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["q4_1_rows", "q4_0_rows", "q8_0_rows"]


@njit(cache=True, nogil=True)
def q4_1_rows(qs, d, m, out):
    """qs (n, 16) uint8 packed codes (low nibbles are values 0-15, high ones 16-31),
    d / m (n,) float32 block scale and min -> out (n, 32) float32."""
    for b in range(qs.shape[0]):
        s, lo = d[b], m[b]
        for j in range(16):
            byte = qs[b, j]
            out[b, j] = np.float32(byte & 15) * s + lo
            out[b, j + 16] = np.float32(byte >> 4) * s + lo


@njit(cache=True, nogil=True)
def q4_0_rows(qs, d, out):
    """Q4_0: (code - 8) as float32 times the block scale."""
    for b in range(qs.shape[0]):
        s = d[b]
        for j in range(16):
            byte = qs[b, j]
            out[b, j] = np.float32(np.int32(byte & 15) - 8) * s
            out[b, j + 16] = np.float32(np.int32(byte >> 4) - 8) * s


@njit(cache=True, nogil=True)
def q8_0_rows(qs, d, out):
    """Q8_0: int8 codes as float32 times the block scale."""
    for b in range(qs.shape[0]):
        s = d[b]
        for j in range(32):
            out[b, j] = np.float32(qs[b, j]) * s
