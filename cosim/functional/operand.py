"""One operand as a number format stores it (quantize-dequantize), and the row amax the
quantizers take a call's scale from. Moved from cosim.functional.lm.numerics (which
re-exports them) so the KV store (cosim.functional.kvstore) sits below both the
real-checkpoint forward pass and the compression twins."""

from __future__ import annotations

import numpy as np

from workloads.formats import get_format

__all__ = ["HIGH_PRECISION", "row_amax", "quantize_operand"]

HIGH_PRECISION = ("fp32", "baseline")  # no quantization at all


def row_amax(x: np.ndarray) -> np.ndarray:
    """max |x[i]| over the finite entries of each x[i] (0 if none), shape (x.shape[0],):
    what the quantizers take a call's scale from (cosim.functional's finite_amax)."""
    x = np.asarray(x, np.float32)
    a = np.abs(x).reshape(x.shape[0], int(np.prod(x.shape[1:], dtype=np.int64)))
    if a.shape[1] == 0:
        return np.zeros(x.shape[0], np.float32)
    return np.where(np.isfinite(a), a, np.float32(0)).max(axis=1)


def quantize_operand(x: np.ndarray, fmt: str, axis: int = -1) -> np.ndarray:
    if fmt in HIGH_PRECISION:
        return x
    from cosim.functional.compression.quant import register_format_quant
    f = get_format(fmt)
    n = x.shape[axis]
    if f.family == "int_group" and n % f.block_size:
        # a reduction length that is not a whole number of groups (SmolLM2: 576 = 4.5 x 128)
        # ends in a short group, as group-quant kernels do by padding with zeros
        pad = [(0, 0)] * x.ndim
        pad[axis] = (0, (-n) % f.block_size)
        y = register_format_quant(np.pad(np.asarray(x, np.float32), pad), fmt, axis=axis)
        return np.take(y, np.arange(n), axis=axis)
    return register_format_quant(np.ascontiguousarray(x, dtype=np.float32), fmt, axis=axis)
