"""The selection rules sessions 12 and 12b committed before any candidate was scored, in one place: per-machine
scores of leave-one-machine-out folds (`summarise`) and the choice among candidates (`choose`): a candidate
qualifies if no machine loses a row within the tolerance against the incumbent and the pooled count gains at
least `margin_rows`; the best S (mean over machines of the fraction within) wins, candidates within `tie_pp`
points of it tie and go to fewer fitted parameters, then the lower worst-machine p90, then the given order."""

from __future__ import annotations

import statistics
from typing import Callable, Iterable

import numpy as np

__all__ = ["summarise", "choose"]


def summarise(folds: Iterable, tol: float, worst_f: bool = False, per_extra: Callable | None = None) -> dict:
    """{cid: {S, [worst_f,] pooled_within, points, worst_p90, per: {machine: {within, points, f, median, p90, ...}}}}
    from folds carrying cid, machine and errors (model / published - 1); `per_extra(fold)` adds per-machine keys."""
    folds = list(folds)
    res = {}
    for cid in dict.fromkeys(f.cid for f in folds):
        per = {}
        for f in (x for x in folds if x.cid == cid):
            e = np.abs(np.array(f.errors))
            per[f.machine] = {"within": int(np.sum(e <= tol + 1e-12)), "points": len(e),
                              "f": float(np.mean(e <= tol + 1e-12)), "median": float(statistics.median(e)),
                              "p90": float(np.percentile(e, 90)) if len(e) else float("nan"),
                              **(per_extra(f) if per_extra else {})}
        r = {"S": float(np.mean([p["f"] for p in per.values()]))}
        if worst_f:
            r["worst_f"] = min(p["f"] for p in per.values())
        res[cid] = {**r, "pooled_within": sum(p["within"] for p in per.values()),
                    "points": sum(p["points"] for p in per.values()),
                    "worst_p90": max(p["p90"] for p in per.values()), "per": per}
    return res


def choose(res: dict, incumbent: str, candidates: Iterable[str], fitted: dict, order: tuple, margin_rows: int = 2,
           tie_pp: float = 1.0, unit: str = "machine", tol: float = 0.15) -> tuple[str | None, dict]:
    """The rules' choice among `candidates` against `incumbent`: (chosen id or None, {id: why}); `unit` names
    what loses a row in the reasons ("machine", "table")."""
    inc, why, ok = res[incumbent], {}, []
    for cid in candidates:
        if cid == incumbent:
            why[cid] = "incumbent"
            continue
        r = res[cid]
        lost = [m for m, p in r["per"].items() if p["within"] < inc["per"][m]["within"]]
        gain = r["pooled_within"] - inc["pooled_within"]
        if lost:
            why[cid] = f"does not qualify: fewer rows within {100 * tol:g} % on {', '.join(lost)}"
        elif gain < margin_rows:
            why[cid] = f"does not qualify: pooled gain {gain:+d} rows (< {margin_rows})"
        else:
            why[cid] = f"qualifies: pooled gain {gain:+d} rows, no {unit} loses a row"
            ok.append(cid)
    if not ok:
        return None, why
    best = max(res[c]["S"] for c in ok)
    tied = sorted((c for c in ok if res[c]["S"] >= best - tie_pp / 100),
                  key=lambda c: (fitted[c], res[c]["worst_p90"], order.index(c)))
    return tied[0], why
