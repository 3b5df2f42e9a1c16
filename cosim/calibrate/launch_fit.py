"""Fit the single-process launch term of the collective model (hwmodels.launch) on fit data only.

Split and candidate laws pre-registered in validation/published/PREREGISTRATION_nccl_session4b.md:
- fit split: the 4-GPU `-g 4` small-message rows of nccl_fit_session4.csv (1 - 4 KB, nccl-collectives-bench
  results/quiet/all_reduce.txt) and the Together AI 8 x H100 `-g 8` forced-ring all-reduce rows
  (nccl_8xh100_heldout_session4.csv, source together_pod_all_reduce_ring, 1 KB - 1 GB; seen, re-assigned
  to fit for this term);
- validation split: every other row of nccl_8xh100_heldout_session4.csv.
Each candidate law is fitted by least squares of the relative error on the fit split; the one with the
lowest median absolute relative error on the validation split is chosen (ties: fewer parameters).
t is the one-process-per-GPU analytical model time of the row (the run's forced algorithm, else chosen).
"""

from __future__ import annotations

import csv
import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwmodels.collectives import collective_cost
from hwmodels.launch import LaunchTerm
from hwmodels.system import SystemSpec

__all__ = ["FIT_CSV", "TOGETHER_CSV", "FIT_RING_SOURCE", "LAWS", "LawFit", "Row", "split_rows", "fit_laws",
           "fit_law", "predict", "choose", "yaml_entry"]

_PUB = Path(__file__).resolve().parents[2] / "validation" / "published"
FIT_CSV = _PUB / "nccl_fit_session4.csv"
TOGETHER_CSV = _PUB / "nccl_8xh100_heldout_session4.csv"
FIT_RING_SOURCE = "together_pod_all_reduce_ring"
FLOOR_NOTE = "small-message floor of the -g 4"  # the 4-GPU single-process rows of FIT_CSV
LAWS = ("A1", "A2", "F1", "F2")  # additive const / additive per GPU / floor const / floor a + b n
_LAW_KIND = {"A1": "additive", "A2": "additive", "F1": "floor", "F2": "floor"}
_PARAMS = {"A1": 1, "A2": 1, "F1": 1, "F2": 2}


@dataclass(frozen=True)
class Row:
    source: str
    n: int
    size: int
    measured_s: float
    model_s: float  # one process per GPU
    collective: str
    forced: str


@dataclass(frozen=True)
class LawFit:
    law: str
    a_s: float
    b_s: float
    fit_median_pct: float
    val_median_pct: float
    val_within15: int
    val_points: int

    def term(self) -> LaunchTerm:
        return LaunchTerm(_LAW_KIND[self.law], self.a_s, self.b_s)


def _row(system, source, n, kind, forced, S, t_us) -> Row:
    c = collective_cost(kind, S, n, 1, system, "analytical", forced or None)
    return Row(source, n, S, t_us * 1e-6, c.time_s, kind, forced)


def split_rows(system: SystemSpec) -> tuple[list[Row], list[Row]]:
    """(fit, validation) rows, as pre-registered."""
    fit, val = [], []
    with open(FIT_CSV, newline="") as f:
        for r in csv.DictReader(f):
            if FLOOR_NOTE in r["note"] and int(r["size_bytes"]) <= 4096:
                fit.append(_row(system, r["source"], int(r["n_gpus"]), r["collective"], "",
                                int(r["size_bytes"]), float(r["time_us"])))
    with open(TOGETHER_CSV, newline="") as f:
        for r in csv.DictReader(f):
            if r["in_range"] != "yes":
                continue
            row = _row(system, r["source"], int(r["n_gpus"]), r["collective"], r["forced"],
                       int(r["size_bytes"]), float(r["time_us"]))
            (fit if r["source"] == FIT_RING_SOURCE else val).append(row)
    return fit, val


def _predict(law: str, a: float, b, rows: list[Row]) -> np.ndarray:
    t = np.array([r.model_s for r in rows])
    h = a + np.multiply.outer(np.atleast_1d(b), np.array([r.n for r in rows]))
    out = np.maximum(t, h) if _LAW_KIND[law] == "floor" else t + h
    return out if np.ndim(b) else out[0]


def _rel(pred, rows) -> np.ndarray:
    return pred / np.array([r.measured_s for r in rows]) - 1.0


def _fit_one(law: str, rows: list, step_s: float = 0.05e-6, weights=None) -> tuple[float, float]:
    """(a, b) minimising sum(w (pred / m - 1)^2) over `rows` (anything with measured_s, model_s and n); w = 1 when
    `weights` is None (the plain relative least squares), else one weight per row. Floor laws on a grid (a: 0 -
    60 us by `step_s`, b: 0 - 10 us by 0.01 us for F2), additive laws in closed form."""
    m = np.array([r.measured_s for r in rows])
    t = np.array([r.model_s for r in rows])
    n = np.array([r.n for r in rows], dtype=float)
    w = None if weights is None else np.asarray(weights, dtype=float)
    if w is not None and w.shape != m.shape:
        raise ValueError(f"launch fit: {w.size} weights for {m.size} rows; expected one weight per row")
    if law == "A1":  # min sum(w ((t + a) - m) / m)^2
        if w is None:
            return float(np.sum((m - t) / m**2) / np.sum(1 / m**2)), 0.0
        return float(np.sum(w * (m - t) / m**2) / np.sum(w / m**2)), 0.0
    if law == "A2":
        if w is None:
            return 0.0, float(np.sum(n * (m - t) / m**2) / np.sum(n**2 / m**2))
        return 0.0, float(np.sum(w * n * (m - t) / m**2) / np.sum(w * n**2 / m**2))
    grid_a = np.arange(0.0, 60e-6 + 1e-12, step_s)
    grid_b = np.arange(0.0, 10e-6 + 1e-12, 0.01e-6) if law == "F2" else np.array([0.0])
    best = None
    for a in grid_a:
        r2 = _rel(_predict(law, a, grid_b, rows), rows) ** 2
        sse = np.sum(r2 if w is None else w * r2, axis=-1)
        k = int(np.argmin(sse))
        if best is None or sse[k] < best[0] - 1e-15:
            best = (float(sse[k]), float(a), float(grid_b[k]))
    return best[1], best[2]


def fit_law(law: str, rows: list, step_s: float = 0.05e-6, weights=None) -> tuple[float, float]:
    """(a, b) of `law` by (weighted: one weight per row) least squares of the relative error on `rows` (floor laws
    on a grid of `step_s`)."""
    return _fit_one(law, rows, step_s, weights)


def predict(law: str, a: float, b: float, rows: list[Row]) -> np.ndarray:
    """Each row's time under `law` with constants a, b."""
    return _predict(law, a, b, rows)


def _median_abs_pct(pred, rows) -> float:
    return float(statistics.median(np.abs(_rel(pred, rows)) * 100))


def fit_laws(system: SystemSpec) -> list[LawFit]:
    fit, val = split_rows(system)
    out = []
    for law in LAWS:
        a, b = _fit_one(law, fit)
        pv = _predict(law, a, b, val)
        out.append(LawFit(law, a, b, _median_abs_pct(_predict(law, a, b, fit), fit), _median_abs_pct(pv, val),
                          int(np.sum(np.abs(_rel(pv, val)) <= 0.15)), len(val)))
    return out


def choose(fits: list[LawFit]) -> LawFit:
    """Lowest validation median |error|; ties to fewer parameters."""
    return min(fits, key=lambda f: (round(f.val_median_pct, 6), _PARAMS[f.law]))


def yaml_entry(term: LaunchTerm) -> dict:
    """The system file's collectives.launch.single_process entry for a launch term (us, two decimals, as the file
    states it); a chosen law's entry is yaml_entry(fit.term())."""
    return {"law": term.law, "a": f"{term.a_s * 1e6:.2f} us", "b": f"{term.b_s * 1e6:.2f} us"}
