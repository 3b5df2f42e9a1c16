"""Rotary position embedding (RoPE), Hugging Face rotate-half layout: channel i pairs with channel i + d/2 and
turns by position x theta^(-2i/d). The one implementation of the rotation and its angles, used by the
real-checkpoint decoder (float32 tables, `rope_tables` / `apply_rope`), StreamingLLM's sink keys re-rotated at
their cache index (`apply_rope(..., positions=)`) and the KV twins' synthetic heads (float64 angles,
cosim.functional.compression.quant.rope)."""

from __future__ import annotations

import numpy as np

__all__ = ["rope_frequencies", "rope_angles", "rope_tables", "rotate_half", "apply_rope"]


def rope_frequencies(d: int, theta: float) -> np.ndarray:
    """(d/2,) float64: theta^(-2i/d), the turn per position of channel pair (i, i + d/2)."""
    return theta ** (-np.arange(0, d, 2, dtype=np.float64) / d)


def rope_angles(positions, d: int, theta: float) -> np.ndarray:
    """(len(positions), d/2) float64 angles position x theta^(-2i/d)."""
    return np.asarray(positions, np.float64)[:, None] * rope_frequencies(d, theta)[None, :]


def rope_tables(n: int, d: int, theta: float) -> tuple[np.ndarray, np.ndarray]:
    """cos, sin (n, d/2) float32 of positions 0..n-1 (angles in float64, rounded once)."""
    ang = rope_angles(np.arange(n), d, theta)
    return np.cos(ang).astype(np.float32), np.sin(ang).astype(np.float32)


def rotate_half(x: np.ndarray, c: np.ndarray, s: np.ndarray) -> np.ndarray:
    """The rotation itself: [a c - b s, a s + b c] for x = [a, b] split at d/2 along the last axis; c, s
    broadcast against a (the caller lays them out over x's other axes)."""
    half = x.shape[-1] // 2
    a, b = x[..., :half], x[..., half:]
    return np.concatenate([a * c - b * s, a * s + b * c], axis=-1)


def apply_rope(x: np.ndarray, cos: np.ndarray, sin: np.ndarray, positions=None) -> np.ndarray:
    """x (N, heads, d) rotated with table rows `positions` (N,) of cos/sin (rope_tables); None: row i of the
    tables for x's row i (cos/sin then have N rows)."""
    if positions is not None:
        cos, sin = cos[positions], sin[positions]
    return rotate_half(x, cos[:, None, :], sin[:, None, :])
