"""Fit and choose the NVLS small-message (chunk-regime) line of the collective model on fit data only, as
pre-registered in validation/nvls_regime_rules_s7.md.

NVLS runs NCCL's Simple protocol only and keeps its channel count, but shrinks its chunk for small messages
(NVIDIA/nccl src/graph/tuning.cc, src/enqueue.cc): a small-chunk regime with a smaller fixed cost and a lower
bandwidth. Candidate N1 adds that regime as a second NVLS line, ``efficiency.intra_node.nvls.simple_small``
{bw, fixed, rank_coeff}, priced as the faster of the two; N0 keeps one line. Fit rows: Azure ND H200 v5
(forced NVLS, nccl-tests -g 8), even log2(size); validation: odd. Each row is priced as the harness ran it:
forced NVLS, single_process launch (the system file's fitted term), analytical level.
"""

from __future__ import annotations

import csv
import math
import statistics
from dataclasses import dataclass, replace

import numpy as np

from cosim.calibrate.calibration_fit import single_line
from cosim.calibrate.collective_holdout_s4b import HELDOUT_S4B_CSV
from hwmodels.collectives import collective_cost, nvls_time
from hwmodels.launch import launch_term
from hwmodels.system import SystemSpec

__all__ = ["FIT_SOURCE", "RegimeFit", "fit_rows", "rank_coeff", "small_line_s", "with_small_line", "fit_regime", "choose_regime",
           "yaml_entry"]

FIT_SOURCE = "azure_nd_h200_v5"
F_GRID = np.round(np.arange(0.0, 75.0 + 1e-9, 0.1), 1) * 1e-6
B_GRID = np.round(np.arange(0.050, 0.618 + 1e-9, 0.001), 3)


@dataclass(frozen=True)
class Row:
    size: int
    measured_s: float


@dataclass(frozen=True)
class RegimeFit:
    law: str  # N0 | N1
    fixed_s: float | None  # the small line's fixed cost (N1)
    bw: float | None  # the small line's fraction of the link bandwidth (N1)
    fit_median_pct: float
    val_median_pct: float
    val_within15: int
    val_points: int


def fit_rows() -> tuple[list[Row], list[Row]]:
    """(fit, validation) rows of the fit machine, as pre-registered: even / odd log2(size), 1 KB - 1 GB."""
    rows = []
    with open(HELDOUT_S4B_CSV, newline="") as f:
        for r in csv.DictReader(f):
            if r["source"] == FIT_SOURCE and r["in_range"] == "yes":
                rows.append(Row(int(r["size_bytes"]), float(r["time_us"]) * 1e-6))
    return ([r for r in rows if int(math.log2(r.size)) % 2 == 0], [r for r in rows if int(math.log2(r.size)) % 2])


def rank_coeff(system: SystemSpec) -> float:
    """The NVLS rank law of the system's large (Simple) line (docs/multi-device.md 5.1.2), kept for the small line."""
    return float(system.collectives["efficiency"]["intra_node"]["nvls"]["simple"]["rank_coeff"])


def small_line_s(system: SystemSpec, S, n: int, fixed_s, bw):
    """The small-regime NVLS line, priced as hwmodels.collectives prices an NVLS line: base latency + fixed +
    nvls_time (2 link alphas + S / (bw x B x (1 - c / n)))."""
    lk = system.link("intra_node")
    return lk.base_latency_s + fixed_s + nvls_time(np.asarray(S, dtype=float), n, lk.latency_s,
                                                   np.multiply(bw, lk.bandwidth_Bps), rank_coeff(system))


def with_small_line(system: SystemSpec, fixed_s: float, bw: float) -> SystemSpec:
    """A copy of the system whose NVLS table carries the small-regime line."""
    coll = dict(system.collectives)
    eff = {k: dict(v) for k, v in coll["efficiency"].items()}
    eff["intra_node"]["nvls"] = dict(eff["intra_node"]["nvls"], simple_small={
        "bw": bw, "fixed": f"{fixed_s * 1e6:.1f} us", "rank_coeff": rank_coeff(system)})
    coll["efficiency"] = eff
    return replace(system, collectives=coll)


def _large(system: SystemSpec, rows: list[Row]) -> np.ndarray:
    """Per row: the one-line (N0) NVLS time before the launch term."""
    return np.array([collective_cost("allreduce", r.size, 8, 1, system, "analytical", "nvls").time_s for r in rows])


def _launched(system: SystemSpec, t: np.ndarray) -> np.ndarray:
    """The single_process launch term of the system file applied to model times (hwmodels.launch)."""
    return launch_term(system, "single_process").apply(t, 8)


def _errs(pred: np.ndarray, rows: list[Row]) -> np.ndarray:
    return np.abs(pred / np.array([r.measured_s for r in rows]) - 1.0) * 100


def _price(system, rows, fixed_s, bw, large=None) -> np.ndarray:
    """N1 prices (broadcast over arrays of fixed_s / bw): the launch term on the faster of the two NVLS lines."""
    small = small_line_s(system, [r.size for r in rows], 8, np.asarray(fixed_s)[..., None], np.asarray(bw)[..., None])
    return _launched(system, np.minimum(_large(system, rows) if large is None else large, small))


def fit_regime(system: SystemSpec) -> list[RegimeFit]:
    """N0 and the fitted N1 on the fit machine's rows; `system` is taken without its regime lines (N0 is the one
    line the bundled files carried before the regime line)."""
    system = single_line(system)
    fit, val = fit_rows()
    out = []
    p0f, p0v = _launched(system, _large(system, fit)), _launched(system, _large(system, val))
    e0v = _errs(p0v, val)
    out.append(RegimeFit("N0", None, None, float(statistics.median(_errs(p0f, fit))), float(statistics.median(e0v)),
                         int(np.sum(e0v <= 15.0)), len(val)))
    meas, large = np.array([r.measured_s for r in fit]), _large(system, fit)
    best = None
    for f in F_GRID:  # one fixed cost at a time, every bandwidth at once
        pred = _price(system, fit, np.full(B_GRID.shape, f), B_GRID, large)
        sse = np.sum((pred / meas - 1.0) ** 2, axis=-1)
        k = int(np.argmin(sse))
        if best is None or sse[k] < best[0] - 1e-15:
            best = (float(sse[k]), float(f), float(B_GRID[k]))
    _, f_s, b_s = best
    ef, ev = _errs(_price(system, fit, f_s, b_s), fit), _errs(_price(system, val, f_s, b_s), val)
    out.append(RegimeFit("N1", f_s, b_s, float(statistics.median(ef)), float(statistics.median(ev)),
                         int(np.sum(ev <= 15.0)), len(val)))
    return out


def choose_regime(fits: list[RegimeFit]) -> RegimeFit:
    """Most validation rows within 15 %, then the lowest validation median; a tie goes to N0."""
    return min(fits, key=lambda f: (-f.val_within15, round(f.val_median_pct, 6), f.law != "N0"))


def yaml_entry(f: RegimeFit, system: SystemSpec) -> dict:
    """The system file's ``nvls.simple_small`` entry of the chosen fit (the rank law is the system's large line's)."""
    return {"bw": round(f.bw, 3), "fixed": f"{f.fixed_s * 1e6:.1f} us", "rank_coeff": rank_coeff(system)}
