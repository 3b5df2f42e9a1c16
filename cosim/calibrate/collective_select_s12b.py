"""Session 12b: small groups (2 and 4 ranks) and all-to-all, chosen on SEEN tables by the rules committed before any
candidate was scored (validation/published/collective_selection_session12b.md).

Ring family (2- and 4-rank all-reduce / all-gather / reduce-scatter):
- ``R0``: the incumbent;
- ``R1``: every intra-node ring line (ll, ll128, simple) gets ``group_coeff`` g: bw x (1 - g / n) / (1 - g / 8)
  (hwmodels.collectives: 8-rank prices unchanged by construction), one g fitted;
- ``R2``: the same on ll128 and simple only.
All-to-all family (2-, 4- and 8-rank rows):
- ``A0``: the incumbent direct line; ``A1``: direct bw and per-step latency refitted; ``A2``: A1 plus a fixed term.

Fits are relative least squares on the training machines (leave one machine out). g: a grid 0.00-0.95 step 0.01.
The direct line's time is base + fixed + (n-1) a + (n-1)/n S / (B bw), linear in (fixed, a, 1/bw): solved exactly with
every parameter kept >= 0 (the best non-negative subset). Nothing here writes a system file.
"""

from __future__ import annotations

import copy
import csv
import itertools
from dataclasses import dataclass, replace

import numpy as np

from cosim.calibrate import collective_select_rules as rules
from cosim.calibrate.collective_holdout_s4b import score_file, stated_dtype
from cosim.calibrate.nccl_table import IN_RANGE, PUB
from hwmodels.collectives import collective_cost
from hwmodels.system import SystemSpec, load_system

__all__ = ["TOL", "RING", "A2A", "FITTED", "Row", "seen_rows", "candidate_system", "fit", "loto", "summarise",
           "choose", "G_GRID", "price", "INCUMBENT_DIRECT"]

TOL = 0.15
RING = ("R0", "R1", "R2")
A2A = ("A0", "A1", "A2")
FITTED = {"R0": 0, "R1": 1, "R2": 1, "A0": 0, "A1": 2, "A2": 3}
G_GRID = tuple(round(0.01 * k, 2) for k in range(96))
RING_KINDS = ("allreduce", "allgather", "reducescatter")
S12 = "nccl_heldout_session12.csv"
NCB_MIN_BYTES = 256 << 20  # nccl_fit_session4 scaling rows (-g N): from 256 MB up the launch floor does not bind
VIDUR_MIN_BYTES = 1 << 20  # session 3's rule
# the direct line sessions 3-12 shipped for all-to-all (dgx_h100 / dgx_h200), pinned so that the comparison re-runs after
# the choice wrote its own all-to-all line into the bundled files
INCUMBENT_DIRECT = {"bw": 0.8185, "latency": "1.028 us"}


@dataclass(frozen=True)
class Row:
    machine: str
    family: str  # ring | a2a
    kind: str
    n: int
    size: int
    launch: str
    dtype: str | None
    system: str  # dgx_h100 | dgx_h200
    published_s: float


def seen_rows() -> list[Row]:
    """Every row of the rules' machines (collective_selection_session12b.md), in range 1 KB - 1 GB."""
    out = []
    with open(PUB / S12, newline="") as f:  # score_file scores every row in file order: its element type as it prices it
        dtypes = [stated_dtype(r) for r in csv.DictReader(f)]
    for r, dtype in zip(score_file(PUB / S12), dtypes, strict=True):
        if not r.in_range or r.forced:
            continue
        m, sysname = ("aic_h100", "dgx_h100") if r.gpu == "H100 SXM" else ("aic_h200", "dgx_h200")
        fam = "a2a" if r.collective == "alltoall" else "ring" if r.n_gpus in (2, 4) and r.collective in RING_KINDS else ""
        if fam:
            out.append(Row(m, fam, r.collective, r.n_gpus, r.size_bytes, r.launch, dtype, sysname,
                           r.published_us * 1e-6))
    for r in score_file(PUB / "allreduce_h100_curve_heldout.csv"):
        if r.in_range and r.n_gpus == 4 and r.source == "nccl_collectives_bench" and not r.forced:
            out.append(Row("ncb_4xh100", "ring", "allreduce", 4, r.size_bytes, r.launch, None, "dgx_h100",
                           r.published_us * 1e-6))
    with open(PUB / "nccl_fit_session4.csv", newline="") as f:
        for r in csv.DictReader(f):
            S = int(r["size_bytes"])
            if (r["source"] == "nccl_collectives_bench_scaling" and r["n_gpus"] == "2"
                    and NCB_MIN_BYTES <= S <= IN_RANGE[1]):
                out.append(Row("ncb_4xh100", "ring", "allreduce", 2, S, "single_process", None, "dgx_h100",
                               float(r["time_us"]) * 1e-6))
    with open(PUB / "vidur_h100_dgx_allreduce.csv", newline="") as f:
        for r in csv.DictReader(f):
            S = int(r["size_bytes"])
            if r["n_gpus"] in ("2", "4") and VIDUR_MIN_BYTES <= S <= IN_RANGE[1]:
                out.append(Row("vidur_h100_dgx", "ring", "allreduce", int(r["n_gpus"]), S, "one_process_per_gpu", None,
                               "dgx_h100", float(r["time_median_us"]) * 1e-6))
    return out


def candidate_system(cid: str, system: SystemSpec, params: dict) -> SystemSpec:
    """A copy of `system` carrying candidate `cid`'s lines (params: {g} or {bw, latency_s, fixed_s})."""
    if cid == "R0":
        return system
    coll = copy.deepcopy(system.collectives)
    eff = coll["efficiency"]["intra_node"]
    if cid == "A0":
        eff["direct"] = dict(INCUMBENT_DIRECT)
    elif cid in ("R1", "R2"):
        for proto, line in eff["ring"].items():
            if cid == "R1" or proto in ("ll128", "simple"):
                line["group_coeff"] = params["g"]
    else:
        eff["direct"] = {"bw": params["bw"], "latency": f"{params['latency_s'] * 1e6!r} us"}
        if cid == "A2":
            eff["direct"]["fixed"] = f"{params['fixed_s'] * 1e6!r} us"
    return replace(system, collectives=coll)


def price(rows: list[Row], systems: dict) -> np.ndarray:
    return np.array([collective_cost(r.kind, r.size, r.n, 1, systems[r.system], "analytical", launch=r.launch,
                                     dtype=r.dtype).time_s for r in rows])


def _rel_sse(rows, systems) -> float:
    p = np.array([r.published_s for r in rows])
    return float(np.sum((price(rows, systems) / p - 1) ** 2))


def _nonneg_lstsq(A: np.ndarray, y: np.ndarray) -> np.ndarray:
    """min ||A z - y|| with z >= 0: the best of the unconstrained solutions on every subset of free columns."""
    best, best_r = np.zeros(A.shape[1]), float(np.sum(y ** 2))
    for k in range(1, A.shape[1] + 1):
        for cols in itertools.combinations(range(A.shape[1]), k):
            z, *_ = np.linalg.lstsq(A[:, cols], y, rcond=None)
            if np.all(z >= 0):
                full = np.zeros(A.shape[1])
                full[list(cols)] = z
                r = float(np.sum((A @ full - y) ** 2))
                if r < best_r:
                    best, best_r = full, r
    return best


def fit(cid: str, train: list[Row], systems: dict) -> dict:
    """Candidate `cid`'s parameters fitted on `train` (relative least squares)."""
    if cid in ("R0", "A0"):
        return {}
    if cid in ("R1", "R2"):
        rows = [r for r in train if r.family == "ring"]
        sse = {g: _rel_sse(rows, {k: candidate_system(cid, s, {"g": g}) for k, s in systems.items()}) for g in G_GRID}
        return {"g": min(G_GRID, key=lambda g: (sse[g], g))}
    rows = [r for r in train if r.family == "a2a"]
    lk = {k: s.link("intra_node") for k, s in systems.items()}
    # t / p - 1 = (base + F + (n-1) a + f S x) / p - 1, x = 1 / (B bw): linear in (F, a, x)
    A = np.array([[1.0 / r.published_s, (r.n - 1) / r.published_s,
                   (r.n - 1) / r.n * r.size / lk[r.system].bandwidth_Bps / r.published_s] for r in rows])
    y = np.array([1.0 - lk[r.system].base_latency_s / r.published_s for r in rows])
    if cid == "A1":
        z = _nonneg_lstsq(A[:, 1:], y)
        F, a, x = 0.0, z[0], z[1]
    else:
        F, a, x = _nonneg_lstsq(A, y)
    if x <= 0:
        raise ValueError(f"{cid}: the fitted bandwidth term is {x}; expected > 0")
    return {"bw": float(1.0 / x), "latency_s": float(a), "fixed_s": float(F)}


@dataclass(frozen=True)
class Fold:
    cid: str
    machine: str
    params: dict
    errors: tuple  # model / published - 1 per row of the held-out machine


def _family(cid: str) -> str:
    return "ring" if cid.startswith("R") else "a2a"


def loto(rows: list[Row] | None = None, cands=RING + A2A) -> list[Fold]:
    rows = rows if rows is not None else seen_rows()
    base = {n: load_system(n) for n in ("dgx_h100", "dgx_h200")}
    out = []
    for cid in cands:
        fam = [r for r in rows if r.family == _family(cid)]
        for m in dict.fromkeys(r.machine for r in fam):
            held = [r for r in fam if r.machine == m]
            params = fit(cid, [r for r in fam if r.machine != m], base)
            systems = {k: candidate_system(cid, s, params) for k, s in base.items()}
            p = np.array([r.published_s for r in held])
            out.append(Fold(cid, m, params, tuple(price(held, systems) / p - 1)))
    return out


def summarise(folds: list[Fold]) -> dict:
    """{cid: {S, pooled_within, points, worst_p90, per: {machine: {within, points, f, median, p90, params}}}}
    (collective_select_rules.summarise)."""
    return rules.summarise(folds, TOL, per_extra=lambda f: {"params": f.params})


def choose(res: dict, family: tuple, margin_rows: int = 2, tie_pp: float = 1.0) -> tuple[str | None, dict]:
    """The rules' choice within one family (its first id is the incumbent; collective_select_rules.choose)."""
    return rules.choose(res, family[0], family, FITTED, family, margin_rows, tie_pp, unit="machine", tol=TOL)
