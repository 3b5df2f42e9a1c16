"""Fit the CUDA-graph launch term of the collective model (hwmodels.launch, mode ``graph``) on a same-run
eager / graph A/B, as pre-registered in validation/published/PREREGISTRATION_nccl_graph_session7.md.

Rows: validation/published/nccl_graph_ab_session7.csv (4 x H100, nccl-tests -g 4 with and without -G, NCCL
2.29.2). t = the one-process-per-GPU analytical time of the system at the row's ranks (the model's own
algorithm: NCCL_ALGO was unset). Candidate laws: GF floor max(t, g), GA additive t + g (no per-GPU term:
one graph launch replays every GPU's node, and the data has one rank count). Fit on the even-log2(size) graph
rows, choose on the odd ones (most within 15 %, then the lowest median |error|).
"""

from __future__ import annotations

import csv
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cosim.calibrate.launch_fit import Row, fit_law, predict
from hwmodels.collectives import collective_cost
from hwmodels.launch import LaunchTerm
from hwmodels.system import SystemSpec

__all__ = ["AB_CSV", "GRAPH_SOURCE", "EAGER_SOURCE", "GRAPH_LAWS", "GraphFit", "ab_rows", "split", "fit_graph_laws",
           "choose_graph", "yaml_entry"]

AB_CSV = Path(__file__).resolve().parents[2] / "validation" / "published" / "nccl_graph_ab_session7.csv"
GRAPH_SOURCE, EAGER_SOURCE = "ncb_symmetric_graph", "ncb_symmetric_eager"
GRAPH_LAWS = {"GF": ("F1", "floor"), "GA": ("A1", "additive")}  # ours -> (launch_fit's code, hwmodels.launch law)
STEP_S = 0.01e-6  # the floor's grid, as pre-registered


@dataclass(frozen=True)
class GraphFit:
    law: str  # GF | GA
    g_s: float
    fit_median_pct: float
    val_median_pct: float
    val_within15: int
    val_points: int

    def term(self) -> LaunchTerm:
        return LaunchTerm(GRAPH_LAWS[self.law][1], self.g_s, 0.0)


def ab_rows(system: SystemSpec, source: str) -> list[Row]:
    """The A/B file's rows of one source, each with the system's one-process-per-GPU model time."""
    out = []
    with open(AB_CSV, newline="") as f:
        for r in csv.DictReader(f):
            if r["source"] != source:
                continue
            n, S = int(r["n_gpus"]), int(r["size_bytes"])
            t = collective_cost(r["collective"], S, n, 1, system, "analytical", r["forced"] or None).time_s
            out.append(Row(source, n, S, float(r["time_us"]) * 1e-6, t, r["collective"], r["forced"]))
    return out


def split(rows: list[Row]) -> tuple[list[Row], list[Row]]:
    """(fit, validation): even / odd log2(size)."""
    fit = [r for r in rows if int(math.log2(r.size)) % 2 == 0]
    return fit, [r for r in rows if int(math.log2(r.size)) % 2 == 1]


def _errs(law: str, g: float, rows: list[Row]) -> np.ndarray:
    pred = predict(GRAPH_LAWS[law][0], g, 0.0, rows)
    return np.abs(pred / np.array([r.measured_s for r in rows]) - 1.0) * 100


def fit_graph_laws(system: SystemSpec) -> list[GraphFit]:
    fit, val = split(ab_rows(system, GRAPH_SOURCE))
    out = []
    for law, (code, _) in GRAPH_LAWS.items():
        g, _b = fit_law(code, fit, STEP_S)
        ev = _errs(law, g, val)
        out.append(GraphFit(law, g, float(statistics.median(_errs(law, g, fit))), float(statistics.median(ev)),
                            int(np.sum(ev <= 15.0)), len(val)))
    return out


def choose_graph(fits: list[GraphFit]) -> GraphFit:
    """Most validation rows within 15 %, then the lowest validation median."""
    return min(fits, key=lambda f: (-f.val_within15, round(f.val_median_pct, 6)))


def yaml_entry(f: GraphFit) -> dict:
    """The system file's collectives.launch.graph entry."""
    return {"law": GRAPH_LAWS[f.law][1], "a": f"{f.g_s * 1e6:.2f} us", "b": "0 us"}
