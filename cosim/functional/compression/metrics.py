"""Error metrics the twins report (float64 internally).

SQNR and the relative Frobenius error are the functional core's
(`cosim.functional.metrics`, imported here, never re-implemented); the KL here takes *probabilities* rather than logits,
because an evicted token has probability 0 — something no logit can express."""

from __future__ import annotations

import numpy as np

__all__ = ["sqnr_db", "rel_error", "kl_divergence", "softmax"]


from cosim.functional.metrics import rel_fro_error, sqnr_db  # noqa: F401  (one definition each)
from cosim.functional.softmax import softmax as _softmax


def rel_error(ref: np.ndarray, approx: np.ndarray) -> float:
    """‖ref − approx‖ / ‖ref‖ (Frobenius)."""
    return float(rel_fro_error(ref, approx))


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """The twins' softmax: cosim.functional.softmax in float64."""
    return _softmax(x, axis, dtype=np.float64)


def kl_divergence(p: np.ndarray, q: np.ndarray, eps: float = 1e-10, axis: int = -1) -> np.ndarray:
    """KL(p ‖ q) along `axis`; q is floored at `eps` (an evicted token has q = 0) and
    renormalised, so eviction gives a large but finite value."""
    p = np.asarray(p, np.float64)
    q = np.maximum(np.asarray(q, np.float64), eps)
    q = q / np.sum(q, axis=axis, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * (np.log(p) - np.log(q)), 0.0)
    return np.maximum(np.sum(terms, axis=axis), 0.0)  # ≥ 0; rounding can dip below
