"""Does a synthetic tensor generator rank number formats the way real weights do?

`format_sqnr` measures the GEMM SQNR of Y = X·Q(W) against X·W (blocks along k, the
weight twin's layout) for every format on every matrix; `agreement` compares the
format ranking on real matrices with the ranking on synthetic ones:

- a pair of formats is *resolved* on the real data when its mean SQNR difference over
  the real matrices exceeds `z` standard errors of that (paired) difference — closer
  pairs are ties the real data cannot order, and no generator should be held to them;
- pairwise agreement = share of resolved pairs the synthetic means order the same way;
- Kendall tau over all pairs (ties count as discordant halves) and the mean absolute
  SQNR error in dB are reported alongside.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from cosim.functional.compression.synthetic import activations
from cosim.functional.compression.weights import gemm_sqnr, weight_format_twin

__all__ = ["BUNDLED_WEIGHT_FORMATS", "format_sqnr", "Agreement", "agreement"]

# the bundled weight formats (mxfp8 = E4M3 elements, mxfp6 = E2M3, fp8_e4m3 with an
# fp32 per-tensor scale, as FP8 weights are stored)
BUNDLED_WEIGHT_FORMATS = ("mxfp8_e4m3", "mxfp6_e2m3", "mxfp4", "nvfp4", "int4_g128", "mx6", "mx4", "fp8_e4m3")


def format_sqnr(mats: dict, fmts=BUNDLED_WEIGHT_FORMATS, tokens: int = 64, seed: int = 0) -> dict:
    """{fmt: array of GEMM SQNR (dB), one per matrix}. X: `activations` (LLM-like, with
    outlier channels), the same stream for real and synthetic weights."""
    rng = np.random.default_rng(seed)
    out = {f: [] for f in fmts}
    for _, w in sorted(mats.items()):
        x = activations(tokens, w.shape[0], rng)
        for f in fmts:
            out[f].append(gemm_sqnr(x, w, weight_format_twin(w, f)))
    return {f: np.asarray(v, np.float64) for f, v in out.items()}


@dataclass(frozen=True)
class Agreement:
    resolved_pairs: int
    agreeing_pairs: int
    total_pairs: int
    kendall_tau: float
    mean_abs_error_db: float
    disagreements: tuple  # (fmt_a, fmt_b) resolved on real data, ordered the other way

    @property
    def pairwise(self) -> float:
        return self.agreeing_pairs / self.resolved_pairs if self.resolved_pairs else float("nan")


def agreement(real: dict, synthetic_means: dict, z: float = 2.0) -> Agreement:
    """Compare per-matrix real SQNR (format_sqnr output) with synthetic mean SQNR per format."""
    fmts = list(real)
    resolved = agree = 0
    concord = 0.0
    bad = []
    pairs = list(itertools.combinations(fmts, 2))
    for a, b in pairs:
        d = real[a] - real[b]
        se = d.std(ddof=1) / np.sqrt(d.size) if d.size > 1 else 0.0
        ds = synthetic_means[a] - synthetic_means[b]
        same = np.sign(d.mean()) == np.sign(ds)
        concord += 1.0 if same else (0.5 if ds == 0 else 0.0)
        if abs(d.mean()) > z * se:
            resolved += 1
            agree += bool(same)
            if not same:
                bad.append((a, b))
    tau = 2.0 * concord / len(pairs) - 1.0
    mae = float(np.mean([abs(real[f].mean() - synthetic_means[f]) for f in fmts]))
    return Agreement(resolved, agree, len(pairs), tau, mae, tuple(bad))
