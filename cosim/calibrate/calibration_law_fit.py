"""Choose the per-machine calibration law (hwmodels.collective_calibration) on FIT data only.

Data: the Together AI 8 x H100 nccl-tests rows (nccl_8xh100_heldout_session4.csv; seen since session 4,
fit data of the launch term since session 4b), each file treated as one machine's run. One law per
algorithm family, each with its own split:
- ring: fit = together_pod_all_reduce_ring; validation = every other Together file except the NVLS one;
- nvls: the only Together file with NVLS live, together_slurm_all_reduce_nvls (1 GB busbw 467 GB/s; priced
  as NVLS), split by size: fit = even log2(size), validation = odd log2(size).
Procedure per file (the one the held-out machines get, validation/collective_calibration_rules.md): calibrate
from the file's own rows at <= 8 KB (floor) and 1 - 2 MiB (latency of its algorithm), score its other rows.
Candidate laws: none (the session-4b model), floor only, replace, blend (half, p fitted on the fit split by
grid search, lowest median |error|). Per family the law with the most validation rows within 15 %, then the
lowest validation median, then fewer constants, wins. Nothing here reads a held-out row.
"""

from __future__ import annotations

import csv
import statistics
from dataclasses import dataclass, replace
from functools import lru_cache

from cosim.calibrate.calibration_fit import FLOOR_MAX, LATENCY_BAND, fit_calibration, single_line, uncalibrated
from cosim.calibrate.launch_fit import FIT_RING_SOURCE, TOGETHER_CSV
from hwmodels.collectives import collective_cost
from cosim.calibrate.collective_holdout_s4b import session11_system

__all__ = ["TOGETHER_CSV", "FAMILIES", "LAW_CANDIDATES", "HALF_GRID", "P_GRID", "LawScore",
           "load_runs", "score_run", "fit_blend", "compare_laws", "choose", "chosen_blend", "is_calibration_point"]

NVLS_FILE = "together_slurm_all_reduce_nvls"
FAMILIES = {  # family -> (fit selector, validation selector): (source, size) -> bool
    "ring": (lambda src, S: src == FIT_RING_SOURCE,
             lambda src, S: src not in (FIT_RING_SOURCE, NVLS_FILE)),
    "nvls": (lambda src, S: src == NVLS_FILE and S.bit_length() % 2 == 1,  # log2(S) even
             lambda src, S: src == NVLS_FILE and S.bit_length() % 2 == 0),
}
LAW_CANDIDATES = ("none", "floor", "replace", "blend")
HALF_GRID = tuple(1 << k for k in range(20, 31))  # 1 MiB .. 1 GiB
P_GRID = (0.5, 1.0, 1.5, 2.0, 3.0)


@dataclass(frozen=True)
class LawScore:
    family: str
    law: str
    half_bytes: float
    p: float
    fit_median: float
    val_median: float
    val_within: int
    val_points: int


def load_runs(path=TOGETHER_CSV) -> dict:
    """{source: (collective, algorithm or None, [(size, time_s)])} of a published rows file."""
    runs = {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            if r["in_range"] != "yes":
                continue
            alg = r["forced"] or ("nvls" if r["source"] == NVLS_FILE else None)
            runs.setdefault(r["source"], (r["collective"], alg, []))[2].append((int(r["size_bytes"]), float(r["time_us"]) * 1e-6))
    return runs


def is_calibration_point(S: int) -> bool:
    return S <= FLOOR_MAX or LATENCY_BAND[0] <= S <= LATENCY_BAND[1]


def _calibrate(run, system, law: tuple):
    kind, alg, pts = run
    if law[0] == "none":
        return None
    blend = {}
    if law[0] == "blend":
        fam = alg or "ring"
        blend = {fam: (law[1], law[2])}
    cal = fit_calibration(pts, system, kind, 8, alg, "single_process", "fit", blend=blend)
    if law[0] == "floor":
        return replace(cal, latency_s={}) if cal.floor_s is not None else None
    return cal


def score_run(name, run, system, law: tuple, keep) -> list:
    """|relative error| (%) of the run's non-calibration rows kept by keep(source, size), calibrated by
    `law` (form, half, p); 'none' = no calibration (the model's own floor), 'floor' = the floor only."""
    kind, alg, pts = run
    base, cal = uncalibrated(system), _calibrate(run, system, law)
    errs = []
    for S, t in pts:
        if is_calibration_point(S) or not keep(name, S):
            continue
        c = collective_cost(kind, S, 8, 1, base, "analytical", alg, launch="single_process", calibration=cal)
        errs.append(abs(100.0 * (c.time_s / t - 1.0)))
    return errs


def _errs(runs, system, law, keep):
    return [e for name, run in runs.items() for e in score_run(name, run, system, law, keep)]


def fit_blend(runs, system, family: str) -> tuple:
    """(half, p) of the blend law with the lowest median |error| over the family's fit split."""
    keep = FAMILIES[family][0]
    best = min((statistics.median(_errs(runs, system, ("blend", float(h), p), keep)), h, p)
               for h in HALF_GRID for p in P_GRID)
    return float(best[1]), best[2]


def compare_laws(family: str, path=TOGETHER_CSV) -> list:
    # every law acts on the base lines (a calibrated algorithm is priced without its size-regime lines), so the
    # laws, "none" included, are compared on the one-line-per-protocol model with the session-6 launch term (as in
    # session 6; session 9 re-chose that term, cosim.calibrate.launch_refit_s9)
    from cosim.calibrate.launch_refit_s9 import S4B_TERM, with_term
    # session 6's model: the session-4b launch term and the ring LL line of sessions 3-11 (session12 changed that line)
    system, runs = single_line(with_term(session11_system("dgx_h100"), S4B_TERM)), load_runs(path)
    fit_keep, val_keep = FAMILIES[family]
    half, p = fit_blend(runs, system, family)
    out = []
    for law in LAW_CANDIDATES:
        spec = (law, half, p) if law == "blend" else (law, 0.0, 1.0)
        fit, val = _errs(runs, system, spec, fit_keep), _errs(runs, system, spec, val_keep)
        out.append(LawScore(family, law, spec[1], spec[2], statistics.median(fit), statistics.median(val),
                            sum(e <= 15.0 for e in val), len(val)))
    return out


def choose(scores: list) -> LawScore:
    order = {name: i for i, name in enumerate(LAW_CANDIDATES)}
    return min(scores, key=lambda s: (-s.val_within, round(s.val_median, 6), order[s.law]))


@lru_cache(maxsize=1)
def chosen_blend() -> dict:
    """{algorithm: (half, p)} for the families whose chosen law is blend (the others: replace)."""
    out = {}
    for fam in FAMILIES:
        best = choose(compare_laws(fam))
        if best.law == "blend":
            out[fam] = (best.half_bytes, best.p)
    return out
