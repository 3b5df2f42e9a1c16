"""Error metrics the twins report (float64 internally).

SQNR and the relative Frobenius error are the functional core's
(`cosim.functional.metrics`); the KL here takes *probabilities* rather than logits,
because an evicted token has probability 0 — something no logit can express."""

from __future__ import annotations

import numpy as np

__all__ = ["sqnr_db", "rel_error", "kl_divergence", "softmax"]


try:  # the functional core's definitions, when this checkout has it
    from cosim.functional.metrics import rel_fro_error as _rel, sqnr_db as _sqnr
except ImportError:  # pragma: no cover - older checkouts
    _rel = _sqnr = None


def sqnr_db(ref: np.ndarray, approx: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio, 10·log10(‖ref‖² / ‖ref − approx‖²)."""
    if _sqnr is not None:
        return float(_sqnr(ref, approx))
    ref = np.asarray(ref, np.float64)
    err = float(np.sum((ref - np.asarray(approx, np.float64)) ** 2))
    return float("inf") if err == 0.0 else 10.0 * np.log10(float(np.sum(ref ** 2)) / err)


def rel_error(ref: np.ndarray, approx: np.ndarray) -> float:
    """‖ref − approx‖ / ‖ref‖ (Frobenius)."""
    if _rel is not None:
        return float(_rel(ref, approx))
    ref = np.asarray(ref, np.float64)
    return float(np.linalg.norm(ref - np.asarray(approx, np.float64)) / max(np.linalg.norm(ref), 1e-300))


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    x = np.asarray(x, np.float64)
    x = x - np.max(x, axis=axis, keepdims=True)
    e = np.exp(x)
    return e / np.sum(e, axis=axis, keepdims=True)


def kl_divergence(p: np.ndarray, q: np.ndarray, eps: float = 1e-10, axis: int = -1) -> np.ndarray:
    """KL(p ‖ q) along `axis`; q is floored at `eps` (an evicted token has q = 0) and
    renormalised, so eviction gives a large but finite value."""
    p = np.asarray(p, np.float64)
    q = np.maximum(np.asarray(q, np.float64), eps)
    q = q / np.sum(q, axis=axis, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * (np.log(p) - np.log(q)), 0.0)
    return np.maximum(np.sum(terms, axis=axis), 0.0)  # ≥ 0; rounding can dip below
