"""Functional twins of the weight recipes: GEMM output SQNR of Y = X·Ŵ against X·W.

W is (k, n) with k the reduction axis, as in the traces; block/group scales run along k.
"""

from __future__ import annotations

import math

import numpy as np

from cosim.functional.compression.metrics import sqnr_db
from cosim.functional.compression.quant import asym_group_quant, register_format_quant

__all__ = ["weight_format_twin", "spqr_quantize", "ocs_quantize", "gemm_sqnr"]


def gemm_sqnr(x: np.ndarray, w: np.ndarray, w_hat: np.ndarray) -> float:
    return sqnr_db(x.astype(np.float64) @ w.astype(np.float64), x.astype(np.float64) @ w_hat.astype(np.float64))


def gemm_sqnr_both(x: np.ndarray, w: np.ndarray, x_hat: np.ndarray, w_hat: np.ndarray) -> float:
    """SQNR of x·w against x_hat·w_hat: a GEMM whose activations are quantized too."""
    return sqnr_db(x.astype(np.float64) @ w.astype(np.float64), x_hat.astype(np.float64) @ w_hat.astype(np.float64))


def weight_format_twin(w: np.ndarray, fmt: str) -> np.ndarray:
    return register_format_quant(w, fmt, axis=0)


def spqr_quantize(w: np.ndarray, bits=3, group_size=16, scale_bits=3, zero_bits=3, stat_group_size=16,
                  outlier_fraction=0.01, act_norms: np.ndarray | None = None, **_) -> np.ndarray:
    """SpQR storage, round-to-nearest (no GPTQ error feedback): b-bit asymmetric groups
    of `group_size` along k whose scale and zero are themselves quantized to 3 bits in
    groups of `stat_group_size` (fp16 second-level statistics); the `outlier_fraction`
    weights whose quantization error costs the output most are kept in fp16. SpQR ranks
    them by the Hessian diagonal; `act_norms` (‖x_k‖ over calibration tokens, whose
    square is that diagonal up to a constant) weights the error the same way."""
    w = np.asarray(w, np.float64)
    k, n = w.shape
    g = w.T.reshape(n, k // group_size, group_size)
    lo, hi = g.min(-1), g.max(-1)
    levels = 2 ** bits - 1
    scale = (hi - lo) / levels
    zero = -lo / np.where(scale > 0, scale, 1.0)
    # second level: scale and zero quantized per stat group (along the groups axis)
    def q2(s, b):
        flat = s.reshape(n, -1)
        G2 = stat_group_size if flat.shape[1] % stat_group_size == 0 else flat.shape[1]
        return asym_group_quant(flat, b, G2, axis=1).reshape(s.shape).astype(np.float64)
    scale_q = np.maximum(q2(scale, scale_bits), 1e-12)
    zero_q = np.round(q2(zero, zero_bits))
    q = np.clip(np.round(g / scale_q[..., None] + zero_q[..., None]), 0, levels)
    deq = ((q - zero_q[..., None]) * scale_q[..., None]).reshape(n, k).T
    if outlier_fraction > 0:
        err = np.abs(deq - w)
        if act_norms is not None:
            err = err * np.asarray(act_norms, np.float64)[:, None]
        n_out = int(round(outlier_fraction * w.size))
        if n_out:
            idx = np.argpartition(err.ravel(), -n_out)[-n_out:]
            flat = deq.ravel()
            flat[idx] = np.float16(w.ravel()[idx])
            deq = flat.reshape(w.shape)
    return deq.astype(np.float32)


def ocs_quantize(w: np.ndarray, expand_ratio=0.05, format="int4_g128", **_) -> tuple[np.ndarray, np.ndarray]:
    """Outlier channel splitting: the input channels (rows of W) holding the largest
    |w| are halved and duplicated (x's matching column duplicated too), then the
    widened W is quantized. Returns (W_eff, W_split_quantized) where W_eff folds the
    duplicated rows back, so X·W_eff equals X_split·Ŵ_split."""
    w = np.asarray(w, np.float32)
    k, n = w.shape
    extra = int(math.ceil(expand_ratio * k))
    order = np.argsort(-np.abs(w).max(axis=1))
    split = order[:extra]
    w2 = w.copy()
    w2[split] /= 2
    wide = np.concatenate([w2, w2[split]])
    from workloads.formats import get_format
    G = get_format(format).block_size or 1
    pad = (-wide.shape[0]) % G
    wide_p = np.concatenate([wide, np.zeros((pad, n), np.float32)]) if pad else wide
    qw = register_format_quant(wide_p, format, axis=0)[:wide.shape[0]]
    eff = qw[:k].copy()
    eff[split] += qw[k:]
    return eff, qw
