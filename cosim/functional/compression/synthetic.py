"""Synthetic tensors with the structure compression methods exploit (and suffer from).

Real checkpoints and activations are not always at hand; these generators give tensors
whose *statistics* match what the papers report, so a method's error moves the way it
does on a real model:

- weights (`fitted_weights`, the default): fitted to SmolLM2-135M layer statistics
  (benchmarks/fit_synthetic_weights.py -> real_weight_stats.json): log-normal per-input-
  and per-output-channel scales with the measured spreads and Student-t entries whose
  kurtosis matches the measured one. `heavy_tailed_weights` (Student-t df 4 and 0.5 % of
  input channels 8x larger) is the earlier, much heavier model: it overstated int4-group
  error by ~5 dB against real weights (docs/synthetic-vs-real.md); it stays for the
  outlier-targeting methods' unit tests and the MoE layers;
- keys: a few **outlier channels** with a large offset and spread (KIVI, KVQuant: why
  keys are quantized per channel), temporal **locality** (an AR(1) process along the
  sequence: neighbouring keys are alike), an **attention sink** (token 0 aligned with
  every query) and a sprinkling of **heavy hitters** (tokens every query attends to);
- values: per-token heavy tails (why values are quantized per token);
- queries: each aims at the sink, the heavy hitters and the recent keys.

All generators take a seeded `numpy.random.Generator`; nothing is global.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

__all__ = ["heavy_tailed_weights", "fitted_weights", "fitted_weight_rows", "fitted_weight_stats", "KVSequence", "kv_sequence", "fitted_kv_sequence",
           "fitted_kv_stats", "moe_layer",
           "MoELayer", "activations"]

_FIT_FILE = Path(__file__).with_name("real_weight_stats.json")


@lru_cache(maxsize=1)
def fitted_weight_stats() -> dict:
    """The generator parameters fitted to real weights, with their provenance (written by
    benchmarks/fit_synthetic_weights.py; never typed in here)."""
    try:
        doc = json.loads(_FIT_FILE.read_text())
    except (OSError, ValueError) as e:
        raise RuntimeError(f"{_FIT_FILE}: fitted weight statistics unreadable ({e}); regenerate them with "
                           f"`PYTHONPATH=. python benchmarks/fit_synthetic_weights.py`") from None
    return doc


def fitted_weights(k: int, n: int, rng: np.random.Generator, stats: dict | None = None) -> np.ndarray:
    """A (k, n) weight with the statistics of real LLM linear layers ("fitted to SmolLM2-135M
    layer statistics", real_weight_stats.json): w_ij = z_ij * r_i * c_j / sqrt(k) with
    z ~ Student-t(df) at unit variance (df from the measured excess kurtosis of the
    scale-normalised entries: kurtosis = 6/(df-4)), log r_i ~ N(0, row_log_std) per
    input channel (what block/group scales along k see) and log c_j ~ N(0, col_log_std)
    per output channel."""
    g = (stats or fitted_weight_stats())["generator"]
    df = float(g["t_df"])
    z = rng.standard_t(df, size=(k, n)) / np.sqrt(df / (df - 2.0))
    r = np.exp(rng.normal(0.0, g["row_log_std"], size=(k, 1)))
    c = np.exp(rng.normal(0.0, g["col_log_std"], size=(1, n)))
    return (z * r * c / np.sqrt(k)).astype(np.float32)


def fitted_weight_rows(n: int, k: int, rng: np.random.Generator, stats: dict | None = None) -> np.ndarray:
    """`fitted_weights`' model drawn as (n output channels, k inputs) in float32 — the
    layout and precision `cosim.layer_accuracy` quantizes (about half the time of the
    float64 draw and its transposed copy; the values differ, the distribution does not):
    w_ij = z_ij * c_i * r_j / sqrt(k), with z = N / sqrt(G / (df/2)) / sqrt(df / (df - 2)),
    N ~ N(0, 1) and G ~ Gamma(df/2, 1), both float32 (Student-t(df) at unit variance, the
    construction numpy's own standard_t uses), log c_i ~ N(0, col_log_std) per output
    channel and log r_j ~ N(0, row_log_std) per input channel, drawn in that order:
    N, G, c, r."""
    g = (stats or fitted_weight_stats())["generator"]
    df = float(g["t_df"])
    z = rng.standard_normal((n, k), dtype=np.float32)
    gam = rng.standard_gamma(df / 2.0, size=(n, k), dtype=np.float32)
    c = np.exp(rng.normal(0.0, g["col_log_std"], size=(n, 1)))
    r = np.exp(rng.normal(0.0, g["row_log_std"], size=(1, k)))
    np.divide(np.float32(df / 2.0), gam, out=gam)
    np.sqrt(gam, out=gam)
    z *= gam
    z *= (c / np.sqrt(k) / np.sqrt(df / (df - 2.0))).astype(np.float32)
    z *= r.astype(np.float32)
    return z


def heavy_tailed_weights(k: int, n: int, rng: np.random.Generator, df: float = 4.0,
                         outlier_channels: float = 0.005, outlier_scale: float = 8.0) -> np.ndarray:
    """A (k, n) weight: Student-t entries scaled like a 1/sqrt(k) init, with a fraction of
    input channels (rows) `outlier_scale` times larger."""
    w = rng.standard_t(df, size=(k, n)) / np.sqrt(k) / np.sqrt(df / (df - 2))
    n_out = max(1, int(round(outlier_channels * k)))
    rows = rng.choice(k, n_out, replace=False)
    w[rows] *= outlier_scale
    return w.astype(np.float32)


def activations(m: int, k: int, rng: np.random.Generator, outlier_channels: float = 0.01,
                outlier_scale: float = 20.0) -> np.ndarray:
    """LLM-like activations: Gaussian with a few channels (columns) carrying massive values."""
    x = rng.standard_normal((m, k)).astype(np.float32)
    cols = rng.choice(k, max(1, int(round(outlier_channels * k))), replace=False)
    x[:, cols] *= outlier_scale
    return x


@dataclass(frozen=True)
class KVSequence:
    """One KV head over a prompt and a decode run, with its query heads.

    keys, values: (N, d) for N = prompt + steps tokens; prompt_queries: (prompt, g, d);
    decode_queries: (steps, g, d), query t attends to keys [0, prompt + t]."""
    keys: np.ndarray
    values: np.ndarray
    prompt_queries: np.ndarray
    decode_queries: np.ndarray
    prompt: int
    outlier_channels: np.ndarray
    heavy_hitters: np.ndarray

    @property
    def steps(self) -> int:
        return self.decode_queries.shape[0]

    @property
    def head_dim(self) -> int:
        return self.keys.shape[1]


def kv_sequence(rng: np.random.Generator, prompt: int = 1024, steps: int = 32, head_dim: int = 128,
                group: int = 4, n_outlier_channels: int = 4, outlier_offset: float = 6.0,
                rho: float = 0.95, heavy_fraction: float = 0.02,
                key_spectrum: tuple[float, float] | None = (4.0, 1.0),
                value_spectrum: tuple[float, float] | None = (16.0, 1.0), query_scale: float = 1.0,
                sink_strength: float = 5.0, value_mean_share: float = 0.0,
                recent_weight: float = 2.5) -> KVSequence:
    """`key_spectrum` / `value_spectrum` = (a, p): singular values ∝ (1 + i/a)^−p in a
    random basis, so keys are low-rank-ish (defaults: 90 % of the energy in ~20 % of
    the channels for keys, ~50 % for values — what Palu/Loki-style analyses report);
    None keeps them isotropic. `query_scale` multiplies every query (a sharper softmax:
    real attention is much peakier than the default), `sink_strength` sets token 0's
    alignment with the queries (score ~ sink_strength for the sink), `value_mean_share`
    the share of the values' energy in a direction common to all tokens (real value heads
    carry ~15 %: attention outputs add it coherently, while quantization errors of
    different tokens average out), `recent_weight` how strongly queries aim at the most
    recent keys (the locality KIVI's full-precision window and StreamingLLM rely on)."""
    n = prompt + steps
    d = head_dim
    # locality: an AR(1) latent along the sequence
    eps = rng.standard_normal((n, d))
    z = np.empty((n, d))
    z[0] = eps[0]
    a = np.sqrt(1 - rho ** 2)
    for t in range(1, n):
        z[t] = rho * z[t - 1] + a * eps[t]
    z = _spectrum(z, rng, key_spectrum)
    keys = z.copy()
    # outlier channels: large per-channel offset and spread (the same for every token)
    ch = rng.choice(d, n_outlier_channels, replace=False)
    keys[:, ch] = outlier_offset * (1.0 + 0.5 * rng.standard_normal(n_outlier_channels)) \
        + 3.0 * keys[:, ch]
    # attention sink and heavy hitters: directions every query leans towards. Scores
    # (q·k/√d) come out near 5 for the sink, 2-4 for heavy hitters, ~2 for the most
    # recent keys and N(0, 1) noise elsewhere, so attention is spread but structured
    u_sink = _unit(rng, d)
    u_heavy = _unit(rng, d)
    keys[0] += sink_strength * np.sqrt(d) * u_sink
    n_heavy = max(1, int(round(heavy_fraction * prompt)))
    heavy = np.sort(rng.choice(np.arange(1, prompt), n_heavy, replace=False))
    keys[heavy] += (2.0 + 2.0 * rng.random(n_heavy))[:, None] * np.sqrt(d) * u_heavy
    # values: per-token heavy tails
    scale = 1.0 + rng.standard_t(3, size=(n, 1)) ** 2 * 0.1
    values = _spectrum(rng.standard_normal((n, d)), rng, value_spectrum) * scale
    if value_mean_share > 0:
        energy = float(np.mean(np.sum(values ** 2, axis=1)))
        values = np.sqrt(1 - value_mean_share) * values + np.sqrt(value_mean_share * energy) * _unit(rng, d)

    def queries(t_end: int) -> np.ndarray:
        recent = z[max(0, t_end - 4):t_end + 1].mean(axis=0)
        base = recent_weight * recent / max(np.linalg.norm(recent), 1e-9) + u_sink + u_heavy
        q = base[None, :] * np.sqrt(d) / np.sqrt(d) + rng.standard_normal((group, d))
        q[:, ch] *= 0.05  # queries carry little of the keys' outlier channels
        return q * query_scale

    pq = np.stack([queries(t) for t in range(prompt)])
    dq = np.stack([queries(prompt + t) for t in range(steps)])
    f = np.float32
    return KVSequence(keys.astype(f), values.astype(f), pq.astype(f), dq.astype(f), prompt,
                      np.sort(ch), heavy)


def fitted_kv_sequence(rng: np.random.Generator, prompt: int = 1024, steps: int = 32, head_dim: int = 128,
                       group: int = 4) -> KVSequence:
    """`kv_sequence` with the parameters fitted to real SmolLM2-135M K/V/Q
    (benchmarks/fit_synthetic_kv.py -> real_kv_stats.json): outlier-channel count and
    offset, query sharpness and sink strength chosen so the key channel-RMS ratio, the
    attention mass of the top 20 % of tokens, the sink's mass and the KIVI-2 / MXFP4-KV
    errors match the real medians; the values' common-direction share is measured."""
    g = fitted_kv_stats()["generator"]
    return kv_sequence(rng, prompt=prompt, steps=steps, head_dim=head_dim, group=group,
                       n_outlier_channels=int(g["n_outlier_channels"]), outlier_offset=float(g["outlier_offset"]),
                       query_scale=float(g["query_scale"]), sink_strength=float(g["sink_strength"]),
                       value_mean_share=float(g["value_mean_share"]), recent_weight=float(g["recent_weight"]))


@lru_cache(maxsize=1)
def fitted_kv_stats() -> dict:
    f = _FIT_FILE.with_name("real_kv_stats.json")
    try:
        return json.loads(f.read_text())
    except (OSError, ValueError) as e:
        raise RuntimeError(f"{f}: fitted KV statistics unreadable ({e}); regenerate them with "
                           f"`PYTHONPATH=. python benchmarks/fit_synthetic_kv.py`") from None


def _spectrum(x: np.ndarray, rng: np.random.Generator, shape: tuple[float, float] | None) -> np.ndarray:
    """Rows of x re-expressed with singular values (1 + i/a)^−p (mean row energy kept)
    in a random orthonormal basis."""
    if shape is None:
        return x
    d = x.shape[1]
    a, p = shape
    s = (1.0 + np.arange(d) / a) ** -p
    s *= np.sqrt(d / np.sum(s ** 2))
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return (x * s) @ q.T


def _unit(rng, d):
    u = rng.standard_normal(d)
    return u / np.linalg.norm(u)


@dataclass(frozen=True)
class MoELayer:
    """A SwiGLU MoE layer: router (D, E), experts gate/up (E, D, F) and down (E, F, D)."""
    router: np.ndarray
    gate: np.ndarray
    up: np.ndarray
    down: np.ndarray
    top_k: int

    @property
    def num_experts(self) -> int:
        return self.router.shape[1]


def moe_layer(rng: np.random.Generator, hidden: int = 256, ffn: int = 512, experts: int = 8, top_k: int = 2,
              shared_fraction: float = 0.6) -> MoELayer:
    """Experts share a common component (what ResMoE's barycenter captures) plus their
    own heavy-tailed part; router columns have unequal norms, so expert usage is skewed."""
    def stack(k, n):
        base = heavy_tailed_weights(k, n, rng)
        own = [heavy_tailed_weights(k, n, rng) for _ in range(experts)]
        return np.stack([np.sqrt(shared_fraction) * base + np.sqrt(1 - shared_fraction) * o for o in own])
    router = rng.standard_normal((hidden, experts)).astype(np.float32) / np.sqrt(hidden)
    router *= (0.5 + rng.random(experts)).astype(np.float32)
    return MoELayer(router, stack(hidden, ffn), stack(hidden, ffn), stack(ffn, hidden), top_k)
