"""Functional twins of cross-layer KV sharing: CLA / KVSharer (a layer reads another
layer's cache) and MiniCache (adjacent layers share SLERP-merged directions, keep their
own magnitudes and a γ fraction of unmergeable tokens).

Their accuracy depends on how alike adjacent layers' K/V are, which a single synthetic
head cannot know: `neighbour_layer` makes the second layer's keys/values share their
*direction* with the first up to a cosine `similarity` (MiniCache reports high
similarity in the deep half of the network [U: value unverified]) with independent
per-token magnitudes. The similarity is an explicit input of every result.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from cosim.functional.compression.attention import CachePolicy, CacheView
from cosim.functional.compression.synthetic import KVSequence

__all__ = ["neighbour_layer", "SharedKVPolicy", "MiniCachePolicy", "slerp"]


def _mix(x: np.ndarray, rng, similarity: float) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    u = x / np.maximum(norm, 1e-12)
    noise = rng.standard_normal(x.shape)
    noise -= np.sum(noise * u, axis=1, keepdims=True) * u  # orthogonal to u
    noise /= np.maximum(np.linalg.norm(noise, axis=1, keepdims=True), 1e-12)
    direction = similarity * u + np.sqrt(max(0.0, 1 - similarity ** 2)) * noise
    magnitude = norm * np.exp(0.1 * rng.standard_normal(norm.shape))
    return (direction * magnitude).astype(np.float32)


def neighbour_layer(seq: KVSequence, rng: np.random.Generator, similarity: float = 0.9) -> KVSequence:
    """The next layer's head: same queries, K/V directions at cosine `similarity`."""
    return replace(seq, keys=_mix(seq.keys, rng, similarity), values=_mix(seq.values, rng, similarity))


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation of unit vectors, row by row."""
    dot = np.clip(np.sum(a * b, axis=1, keepdims=True), -1.0, 1.0)
    omega = np.arccos(dot)
    so = np.sin(omega)
    small = so < 1e-6
    w_a = np.where(small, 1 - t, np.sin((1 - t) * omega) / np.where(small, 1, so))
    w_b = np.where(small, t, np.sin(t * omega) / np.where(small, 1, so))
    return w_a * a + w_b * b


class SharedKVPolicy(CachePolicy):
    """CLA/KVSharer: this layer attends over the source layer's K/V."""

    def __init__(self, source: KVSequence):
        self.src = source

    def prefill(self, keys, values, queries):
        self.n = keys.shape[0]

    def step(self, t, key, value, queries):
        self.n += 1
        return CacheView(self.src.keys[:self.n], self.src.values[:self.n], np.arange(self.n))


class MiniCachePolicy(CachePolicy):
    """MiniCache on the (source, this) layer pair: merged direction = SLERP(t) of the
    two unit vectors; this layer's magnitude restores it; the γ fraction of tokens with
    the largest angle between the layers stays unmerged (exact)."""

    def __init__(self, source: KVSequence, t: float = 0.6, retention_ratio: float = 0.05):
        self.src, self.t, self.gamma = source, t, retention_ratio

    def prefill(self, keys, values, queries):
        self.K, self.V = keys, values

    def _restore(self, mine, theirs):
        n_m = np.linalg.norm(mine, axis=1, keepdims=True)
        u_m = mine / np.maximum(n_m, 1e-12)
        u_t = theirs / np.maximum(np.linalg.norm(theirs, axis=1, keepdims=True), 1e-12)
        merged = slerp(u_t, u_m, self.t)
        merged /= np.maximum(np.linalg.norm(merged, axis=1, keepdims=True), 1e-12)
        out = merged * n_m
        keep = int(round(self.gamma * mine.shape[0]))
        if keep:
            angle = np.sum(u_m * u_t, axis=1)
            idx = np.argsort(angle)[:keep]  # least similar tokens stay unmerged
            out[idx] = mine[idx]
        return out.astype(np.float32)

    def step(self, t, key, value, queries):
        self.K = np.concatenate([self.K, key[None]])
        self.V = np.concatenate([self.V, value[None]])
        n = self.K.shape[0]
        return CacheView(self._restore(self.K, self.src.keys[:n]), self._restore(self.V, self.src.values[:n]),
                         np.arange(n))
