"""GPTQ (Frantar et al., ICLR 2023): quantize a weight one input column at a time and
push each column's rounding error onto the columns not yet quantized, weighted by the
inverse Hessian H = XᵀX of the layer's calibration inputs, so the layer *output* error
on those inputs is what gets minimised. QMoE (Frantar & Alistarh, MLSys 2024) runs it
with a ternary grid on every expert.
"""

from __future__ import annotations

import numpy as np

__all__ = ["gptq", "ternary_grid", "ternary", "QMOE_DAMP"]

QMOE_DAMP = 0.1  # x mean Hessian diagonal: IST-DASLab/qmoe gptq.py percdamp


def ternary_grid(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """QMoE's per-row ternary levels {lo, 0, hi}: hi = max(row max, 0), lo = min(row min, 0)
    (an all-zero row gets -1/+1 so it stays zero)."""
    hi = np.maximum(w.max(axis=1), 0.0)
    lo = np.minimum(w.min(axis=1), 0.0)
    both0 = (hi == 0) & (lo == 0)
    hi[both0], lo[both0] = 1.0, -1.0
    return lo, hi


def ternary(col: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Nearest of {lo, 0, hi} per element (the midpoints are the thresholds)."""
    return np.where(col > hi / 2, hi, np.where(col < lo / 2, lo, 0.0))


def gptq(w: np.ndarray, x: np.ndarray | None, damp: float = QMOE_DAMP, block: int = 128) -> np.ndarray:
    """Ternary GPTQ of W (out, in) on calibration inputs X (tokens, in) -> Q (out, in).

    `damp` x mean diagonal is added to H (QMoE uses 0.1); with no calibration rows the
    Hessian is the identity and GPTQ reduces to round-to-nearest, as in QMoE's code."""
    w = np.array(w, dtype=np.float64)
    n_in = w.shape[1]
    if x is None or len(x) == 0:
        h = np.eye(n_in)
    else:
        x = np.asarray(x, np.float64)
        h = x.T @ x * (2.0 / len(x))
    lo, hi = ternary_grid(w)
    dead = np.diag(h) == 0  # an input that never fires: its weights cannot matter
    h[dead, dead] = 1.0
    w[:, dead] = 0.0
    h[np.diag_indices(n_in)] += damp * max(float(np.mean(np.diag(h))), 1e-6)
    # upper Cholesky factor of H^-1: row i holds how column i's error spreads to the rest
    hinv = np.linalg.cholesky(np.linalg.inv(h)).T
    q = np.zeros_like(w)
    for b0 in range(0, n_in, block):
        b1 = min(b0 + block, n_in)
        err = np.zeros((w.shape[0], b1 - b0))
        for i in range(b0, b1):
            qi = ternary(w[:, i], lo, hi)
            q[:, i] = qi
            e = (w[:, i] - qi) / hinv[i, i]
            w[:, i:b1] -= np.outer(e, hinv[i, i:b1])
            err[:, i - b0] = e
        w[:, b1:] -= err @ hinv[b0:b1, b1:]  # the block's errors reach later blocks at once
    return q.astype(np.float32)
