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
    groups of `stat_group_size` (fp16 second-level statistics); `outlier_fraction` of
    the weights are kept in fp16. As SpQR picks them: by leave-one-out, the weights whose
    removal from their group's min-max fit lowers the group's output error most (an
    extreme value stretches the grid of its whole group while itself landing on a grid
    end), the error weighted by the Hessian diagonal, for which `act_norms` (‖x_k‖ over
    calibration tokens, whose square is that diagonal up to a constant) stands in; then
    the group statistics are fitted again *without* the outliers."""
    w = np.asarray(w, np.float64)
    k, n = w.shape
    g = w.T.reshape(n, k // group_size, group_size)
    n_out = int(round(outlier_fraction * w.size)) if outlier_fraction > 0 else 0
    if not n_out:
        return _spqr_groups(g, None, bits, scale_bits, zero_bits, stat_group_size).reshape(n, k).T.astype(np.float32)
    h = np.ones(k) if act_norms is None else np.square(np.asarray(act_norms, np.float64))
    gain = _leave_one_out_gain(g, h.reshape(k // group_size, group_size)[None], 2 ** bits - 1)  # (n, groups, group)
    idx = np.argpartition(gain.ravel(), -n_out)[-n_out:]
    keep = np.ones(g.size, bool)
    keep[idx] = False
    keep = keep.reshape(g.shape)
    deq = _spqr_groups(g, keep, bits, scale_bits, zero_bits, stat_group_size)
    deq = np.where(keep, deq, np.float16(g).astype(np.float64))  # the outliers, stored in fp16
    return deq.reshape(n, k).T.astype(np.float32)


def _leave_one_out_gain(g: np.ndarray, h: np.ndarray, levels: int) -> np.ndarray:
    """For every weight of every group (…, s): the group's h-weighted squared round-to-
    nearest error with a min-max fit over all s weights, minus the error of the other
    s-1 with the fit over them alone (the weight itself then stored exactly)."""
    def err(lo, hi, x, wgt):
        scale = (hi - lo) / levels
        safe = np.where(scale > 0, scale, 1.0)
        y = np.where(scale > 0, np.clip(np.round((x - lo) / safe), 0, levels) * scale + lo, lo)
        return np.square(y - x) * wgt

    base = err(g.min(-1, keepdims=True), g.max(-1, keepdims=True), g, h).sum(-1, keepdims=True)
    s = g.shape[-1]
    order = np.sort(g, axis=-1)
    amin, amax = g.argmin(-1)[..., None], g.argmax(-1)[..., None]
    j = np.arange(s)
    lo = np.where(j == amin, order[..., 1:2], order[..., :1])  # the group's min without weight j
    hi = np.where(j == amax, order[..., -2:-1], order[..., -1:])
    out = np.empty(g.shape)
    for i in range(s):  # weight i left out: the others' error under the fit without it
        e = err(lo[..., i:i + 1], hi[..., i:i + 1], g, h)
        out[..., i] = e.sum(-1) - e[..., i]
    return base - out


def _spqr_groups(g: np.ndarray, keep: np.ndarray | None, bits: int, scale_bits: int, zero_bits: int,
                 stat_group_size: int) -> np.ndarray:
    """Dequantized (n, groups, group) weights: min/max statistics per group over the entries
    `keep` marks (None: all; a group with none left gets min = max = 0), scale and zero
    quantized again per stat group."""
    n = g.shape[0]
    if keep is None:
        lo, hi = g.min(-1), g.max(-1)
    else:
        lo = np.where(keep, g, np.inf).min(-1)
        hi = np.where(keep, g, -np.inf).max(-1)
        empty = ~keep.any(-1)
        lo, hi = np.where(empty, 0.0, lo), np.where(empty, 0.0, hi)
    levels = 2 ** bits - 1
    scale = (hi - lo) / levels
    zero = -lo / np.where(scale > 0, scale, 1.0)

    def q2(s, b):  # second level: scale and zero quantized per stat group (along the groups axis)
        flat = s.reshape(n, -1)
        G2 = stat_group_size if flat.shape[1] % stat_group_size == 0 else flat.shape[1]
        return asym_group_quant(flat, b, G2, axis=1).reshape(s.shape).astype(np.float64)
    scale_q = np.maximum(q2(scale, scale_bits), 1e-12)
    zero_q = np.round(q2(zero, zero_bits))
    q = np.clip(np.round(g / scale_q[..., None] + zero_q[..., None]), 0, levels)
    return (q - zero_q[..., None]) * scale_q[..., None]


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
