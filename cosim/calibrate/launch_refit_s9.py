"""Session 9: re-choose the single-process launch floor (hwmodels.launch, ``collectives.launch.single_process``) on
FIT data only, with a validation split carved from the fit data: leave one node out.

Why again: the session-4b term (floor a + b n = 8.35 + 3.72 n us; 38.11 us at 8 GPUs) was fitted on one machine
(Together's NCCL 2.26.2 pod, 35-39 us). Every published single-process (`-g N`) table the project holds has since been
seen (Azure ND H100 v5 / ND H200 v5, sessions 4b-7; Voltage Park g138, session 8), so they are all fit data now, and
each node measures its own floor (25.6 - 39 us at 8 GPUs): a single default cannot be within 15 % of two nodes whose
floors differ by a ratio above 1.15 / 0.85 = 1.35, so the question is which default is within 15 % of the most rows of a node it was
not fitted on.

Fit data (every single-process all-reduce table held, grouped by the node that ran it):
- 8 GPUs: Together pod (ring-forced and NVLS-enabled files), Together slurm (ring, NVLS-enabled; no row below 1 MB),
  Azure ND H100 v5 (NVLS forced), Azure ND H200 v5 (NVLS forced; same NVLink4 NVSwitch, the host-side term is shared
  by dgx_h200), Voltage Park g138 (unforced);
- 4 GPUs: nccl-collectives-bench quiet `-g 4` 1 - 4 KB rows (NCCL 2.18.3) and its symmetric eager `-g 4` rows
  (NCCL 2.29.2, the eager half of the session-7 graph A/B).
Each row keeps the model's one-process-per-GPU analytical time t (the run's forced algorithm, else the model's own
choice) and its measured time m; a term prices it max(t, a + b n).

Node floor: the median measured time of the node's rows of 1 - 8 KB (the session-6 calibration's floor rule;
a node without such rows has none). Candidate rules (RULES; each maps the training nodes to a term a + b n):
- ``median``: the median of the node floors at 4 and at 8 GPUs (each node counts once, whatever its number of files
  or rows), the line through the two;
- ``mean``: their mean, likewise;
- ``minimax``: 2 / (1 / min + 1 / max) of the node floors (equal relative error at the two extremes), likewise;
- ``rows_lsq``: the F2 law fitted by relative least squares on every training row (launch_fit.fit_law, the
  session-4b estimator; rows, not nodes, weigh in);
- ``nodes_lsq``: the same fit with each row weighted 1 / (its node's row count), so each node weighs once.
The session-4b term (``s4b``, S4B_TERM: 8.35 + 3.72 n, not re-fitted) is not a candidate: rule_term("s4b", ...)
returns it so the benchmark can score it beside the candidates as the incumbent reference (in-sample on the two
folds that hold its own fit data).

Validation: leave one node out (every node in turn: the rule sees the others, the held-out node's rows 1 KB - 1 GB
are scored). Choice (choose): the highest node-weighted fraction within 15 % (the mean over held-out nodes of the
fraction of that node's rows within 15 %: each machine counts once), then the lowest mean of the nodes' median
|error|, then the rule listed first in RULES. The pooled-row count (pooled) is reported beside it but does not
decide. This rule was adopted after the pooled-row figures had been printed (fit data only; by pooled rows
``nodes_lsq`` ranks first, docs/multi-device.md 5.1.8). The chosen rule is then applied to every node for the
bundled term.
"""

from __future__ import annotations

import csv
import statistics
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from cosim.calibrate.historical_model import session11_system
from cosim.calibrate.launch_fit import fit_law, yaml_entry
from cosim.calibrate.nccl_table import IN_RANGE  # rule X2: 1 KB - 1 GB, the rounds' one range
from hwmodels.collectives import collective_cost
from hwmodels.launch import LaunchTerm, launch_term
from hwmodels.system import SystemSpec, load_system

__all__ = ["RULES", "NODE_OF", "Row", "Fold", "fit_rows", "node_floors", "rule_term", "loo", "choose", "yaml_entry",
           "S4B_TERM", "with_term", "TOLERANCE"]

_PUB = Path(__file__).resolve().parents[2] / "validation" / "published"
TOLERANCE = 0.15
FLOOR_SIZES = (1 << 10, 8 << 10)  # node floor: median of the rows in 1 - 8 KB
RULES = ("median", "mean", "minimax", "rows_lsq", "nodes_lsq")
S4B_TERM = LaunchTerm("floor", 8.35e-6, 3.72e-6)  # the term fitted in session 4b (PREREGISTRATION_nccl_session4b.md)
# source -> node (the machine that ran it); sources not listed are not fit data for this term
NODE_OF = {
    "together_pod_all_reduce_ring": "together_pod", "together_pod_all_reduce_nvls": "together_pod",
    "together_slurm_all_reduce_ring": "together_slurm", "together_slurm_all_reduce_nvls": "together_slurm",
    "azure_nd_h100_v5": "azure_nd_h100_v5", "azure_nd_h200_v5": "azure_nd_h200_v5",
    "vp_g138_all_reduce": "vp_g138",
    "nccl_collectives_bench_quiet": "ncb_quiet_g4", "ncb_symmetric_eager": "ncb_symmetric_g4",
}
_FILES = ("nccl_8xh100_heldout_session4.csv", "nccl_8gpu_heldout_session4b.csv", "nccl_8xh100_heldout_session8.csv",
          "nccl_fit_session4.csv", "nccl_graph_ab_session7.csv")


@dataclass(frozen=True)
class Row:
    node: str
    source: str
    gpu: str
    n: int
    size: int
    forced: str
    measured_s: float
    model_s: float  # one process per GPU, no launch term


@dataclass(frozen=True)
class Fold:
    rule: str
    held_out: str
    term: LaunchTerm
    points: int
    within: int
    median_abs_pct: float
    max_abs_pct: float


def _forced(r: dict) -> str:
    f = (r.get("forced") or r.get("algorithm") or "").strip()
    return "" if f == "auto" else f


def fit_rows(systems: dict | None = None) -> list[Row]:
    """Every all-reduce row 1 KB - 1 GB of the fit sources (NODE_OF) in the project's published CSVs. The -g 4 quiet
    file contributes its 1 - 4 KB floor rows only (its larger rows are the session-4 fit of the bandwidth lines).
    Default systems: the bundled ones with the ring LL line the term was chosen on (session11_system; session 12
    changed that line and kept this term)."""
    systems = dict(systems or {})
    out = []
    for name in _FILES:
        with open(_PUB / name, newline="") as f:
            for r in csv.DictReader(f):
                node = NODE_OF.get(r["source"])
                S = int(r["size_bytes"])
                if node is None or r["collective"] != "allreduce" or not IN_RANGE[0] <= S <= IN_RANGE[1]:
                    continue
                if r["source"] == "nccl_collectives_bench_quiet" and "small-message floor" not in r["note"]:
                    continue
                sysname = "dgx_h200" if r["gpu"].startswith("H200") else "dgx_h100"
                s = systems.get(sysname) or systems.setdefault(sysname, session11_system(sysname))
                forced = _forced(r)
                c = collective_cost("allreduce", S, int(r["n_gpus"]), 1, s, "analytical", forced or None)
                out.append(Row(node, r["source"], r["gpu"], int(r["n_gpus"]), S, forced, float(r["time_us"]) * 1e-6,
                               c.time_s))
    return out


def node_floors(rows: list[Row]) -> dict:
    """{node: (n, floor seconds)}: the median measured time of the node's 1 - 8 KB rows (nodes without any: absent)."""
    by: dict = {}
    for r in rows:
        if FLOOR_SIZES[0] <= r.size <= FLOOR_SIZES[1]:
            by.setdefault((r.node, r.n), []).append(r.measured_s)
    return {node: (n, statistics.median(v)) for (node, n), v in sorted(by.items())}


def _pool(rule: str, xs: list[float]) -> float:
    if rule == "median":
        return statistics.median(xs)
    if rule == "mean":
        return statistics.fmean(xs)
    if rule == "minimax":
        return 2.0 / (1.0 / min(xs) + 1.0 / max(xs))
    raise ValueError(f"launch floor rule: got {rule!r}; expected one of {RULES}")


def rule_term(rule: str, rows: list[Row]) -> LaunchTerm:
    """The floor term `rule` gives on training `rows` (a + b n through the pooled 4- and 8-GPU floors)."""
    if rule == "s4b":
        return S4B_TERM
    if rule in ("rows_lsq", "nodes_lsq"):
        weights = _node_weights(rows) if rule == "nodes_lsq" else None
        return LaunchTerm("floor", *fit_law("F2", rows, weights=weights))
    per_n: dict = {}
    for n, fl in node_floors(rows).values():
        per_n.setdefault(n, []).append(fl)
    if set(per_n) != {4, 8}:
        raise ValueError(f"launch floor rule {rule}: training nodes cover rank counts {sorted(per_n)}; expected 4 and 8")
    f4, f8 = _pool(rule, per_n[4]), _pool(rule, per_n[8])
    b = (f8 - f4) / 4.0
    return LaunchTerm("floor", f4 - 4.0 * b, b)


def _node_weights(rows: list[Row]) -> list[float]:
    """1 / (the row's node's row count) per row: each node weighs once in nodes_lsq."""
    count: dict = {}
    for r in rows:
        count[r.node] = count.get(r.node, 0) + 1
    return [1.0 / count[r.node] for r in rows]


def _errors(term: LaunchTerm, rows: list[Row]) -> np.ndarray:
    t = np.array([r.model_s for r in rows])
    h = np.array([term.overhead(r.n) for r in rows])
    return np.maximum(t, h) / np.array([r.measured_s for r in rows]) - 1.0


def loo(rows: list[Row], rules=RULES) -> list[Fold]:
    """Leave one node out: per rule and node, the term from the other nodes scored on the node's rows."""
    out = []
    for rule in rules:
        for node in dict.fromkeys(r.node for r in rows):
            train = [r for r in rows if r.node != node]
            test = [r for r in rows if r.node == node]
            term = rule_term(rule, train)
            e = np.abs(_errors(term, test)) * 100
            out.append(Fold(rule, node, term, len(test), int(np.sum(e <= TOLERANCE * 100 + 1e-9)),
                            float(np.median(e)), float(np.max(e))))
    return out


def pooled(folds: list[Fold], rows: list[Row]) -> dict:
    """{rule: (points, within, median |error| %)} over every held-out row of every fold."""
    out = {}
    for rule in dict.fromkeys(f.rule for f in folds):
        errs = np.concatenate([np.abs(_errors(f.term, [r for r in rows if r.node == f.held_out])) * 100
                               for f in folds if f.rule == rule])
        out[rule] = (len(errs), int(np.sum(errs <= TOLERANCE * 100 + 1e-9)), float(np.median(errs)))
    return out


def node_weighted(folds: list[Fold]) -> dict:
    """{rule: (mean over held-out nodes of the fraction of the node's rows within 15 %, mean of the nodes' median
    |error| %)}: each machine counts once, as a new unseen node would."""
    out = {}
    for rule in dict.fromkeys(f.rule for f in folds):
        fs = [f for f in folds if f.rule == rule]
        out[rule] = (statistics.fmean(f.within / f.points for f in fs), statistics.fmean(f.median_abs_pct for f in fs))
    return out


def choose(folds: list[Fold]) -> str:
    """The highest node-weighted fraction within 15 %, then the lowest mean node median |error|, then the rule
    listed first."""
    p = node_weighted(folds)
    return min(p, key=lambda k: (-round(p[k][0], 9), round(p[k][1], 6), RULES.index(k)))


def with_term(system: SystemSpec, term: LaunchTerm) -> SystemSpec:
    """A copy of `system` whose single-process launch term is `term` (the historical scorers price with the term they
    were frozen on: S4B_TERM)."""
    launch = dict(system.collectives.get("launch") or {})
    launch["single_process"] = yaml_entry(term)
    return replace(system, collectives={**system.collectives, "launch": launch})


def bundled_term(name: str = "dgx_h100") -> LaunchTerm:
    return launch_term(load_system(name), "single_process")
