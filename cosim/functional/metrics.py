"""Error metrics between a reference tensor and its quantized version, and the
quantization SNR of a format on Gaussian data (compared with published values in
tests/test_functional_metrics.py). All sums are in float64; NaN in either input
propagates into the result."""

from __future__ import annotations

import numpy as np

__all__ = ["sqnr_db", "rel_fro_error", "max_abs_error", "cosine_similarity", "kl_divergence_softmax", "log_softmax",
           "qsnr_gaussian"]


def _pair(x, y):
    a = np.asarray(x, dtype=np.float64)
    b = np.asarray(y, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    return a, b


def sqnr_db(x, y) -> float:
    """10 log10( sum x^2 / sum (x - y)^2 ); +inf when y == x exactly."""
    a, b = _pair(x, y)
    noise = float(np.sum((a - b) ** 2))
    signal = float(np.sum(a * a))
    if noise == 0.0:
        return float("inf")
    if not np.isfinite(noise):
        return float("-inf") if noise == np.inf else float("nan")
    if signal == 0.0:
        return float("-inf")
    return 10.0 * np.log10(signal / noise)


def rel_fro_error(x, y) -> float:
    """||x - y||_F / ||x||_F."""
    a, b = _pair(x, y)
    return float(np.linalg.norm((a - b).ravel()) / np.linalg.norm(a.ravel()))


def max_abs_error(x, y) -> float:
    a, b = _pair(x, y)
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def cosine_similarity(x, y) -> float:
    """Cosine of the angle between the flattened tensors."""
    a, b = _pair(x, y)
    a, b = a.ravel(), b.ravel()
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def log_softmax(z, axis=-1) -> np.ndarray:
    """log(softmax(z)) along `axis` in float64, stable for any logit range."""
    z = np.asarray(z, dtype=np.float64)
    m = np.max(z, axis=axis, keepdims=True)
    s = z - m
    return s - np.log(np.sum(np.exp(s), axis=axis, keepdims=True))


def kl_divergence_softmax(logits_ref, logits_q, axis=-1) -> float:
    """Mean over rows of KL(softmax(ref) || softmax(q)) in nats (e.g. attention or
    next-token distributions before/after quantization)."""
    a, b = _pair(logits_ref, logits_q)
    lp = log_softmax(a, axis)
    lq = log_softmax(b, axis)
    kl = np.sum(np.exp(lp) * (lp - lq), axis=axis)
    return float(np.mean(kl))


def qsnr_gaussian(fmt, *, n: int = 1 << 16, block_cols: int | None = None, seed: int = 0,
                  sigma_spread: float = 0.0, **quantize_kwargs) -> float:
    """Quantization SNR (dB) of `fmt` on N(0, 1) data, quantized along the last axis.

    n elements are drawn as rows of `block_cols` (default 1024) columns. sigma_spread
    > 0 gives each row its own standard deviation 2^u, u ~ U(-spread, spread) ("Gaussian
    inputs with varying variance", as in the shared-microexponent paper). The SNR is
    10 log10 of total signal power over total noise power."""
    from .quantize import quantize

    cols = block_cols or 1024
    rows = max(1, n // cols)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, cols))
    if sigma_spread:
        x *= 2.0 ** rng.uniform(-sigma_spread, sigma_spread, size=(rows, 1))
    x = x.astype(np.float32)
    return sqnr_db(x, quantize(x, fmt, **quantize_kwargs))
