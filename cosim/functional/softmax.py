"""The functional core's one numerically stable softmax: exp(x - max) / sum along an axis, in x's own float
dtype (or `dtype`), optionally in place (the real-checkpoint attention's (rows x keys) score blocks). Attention
(cosim.functional.lm.attention, .encoder), the KV twins (cosim.functional.compression) and MoE routing all call
it, so a change to how probabilities are formed is made once."""

from __future__ import annotations

import numpy as np

__all__ = ["softmax"]


def softmax(x, axis: int = -1, *, dtype=None, inplace: bool = False) -> np.ndarray:
    """exp(x - max(x)) / sum(exp(x - max(x))) along `axis`. `dtype`: the float dtype computed and returned
    (None: x's own float dtype; float64 for integer input). `inplace`: x (an array of that dtype) is
    overwritten with the result and returned, no copy made. A row of all -inf gives NaN (no key to attend)."""
    if inplace:
        if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating) or \
                (dtype is not None and np.dtype(dtype) != x.dtype):
            raise ValueError(f"softmax(inplace=True) needs a float ndarray of the dtype computed; got "
                             f"{type(x).__name__} of dtype {getattr(x, 'dtype', None)} (dtype={dtype})")
        s = x
    else:
        x = np.asarray(x)
        if dtype is None:
            dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64
        s = np.array(x, dtype=dtype, copy=True)
    s -= s.max(axis=axis, keepdims=True)
    np.exp(s, out=s)
    s /= s.sum(axis=axis, keepdims=True)
    return s
