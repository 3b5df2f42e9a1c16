"""Score the collective model on held-out published all-reduce curves (1 KB to 1 GB).

The split was fixed before these points were looked at
(validation/published/PREREGISTRATION_nccl_8xh100.md): every row of
``allreduce_h100_curve_heldout.csv`` is a hold-out; nothing here re-fits the system file.
Each row is priced on the bundled system with the same number of ranks as the measurement
(a 4-rank row is a 4-GPU group of the 8-GPU node), at the analytical level, algorithm chosen by
the model as NCCL's tuner would.
"""

from __future__ import annotations

import csv
import statistics
from dataclasses import dataclass
from pathlib import Path

from hwmodels.collectives import collective_cost
from hwmodels.system import SystemSpec

__all__ = ["HoldoutRow", "HOLDOUT_CSV", "HOLDOUT_S4_CSV", "score_holdout", "summarise", "x3_spikes"]

_PUB = Path(__file__).resolve().parents[2] / "validation" / "published"
HOLDOUT_CSV = _PUB / "allreduce_h100_curve_heldout.csv"
HOLDOUT_S4_CSV = _PUB / "nccl_8xh100_heldout_session4.csv"  # session 4 (PREREGISTRATION_nccl_session4.md)


@dataclass(frozen=True)
class HoldoutRow:
    source: str
    url: str
    n_gpus: int
    harness: str
    size_bytes: int
    published_us: float
    model_us: float
    algorithm: str
    in_range: bool          # inside the 1 KB - 1 GB acceptance range
    note: str
    collective: str = "allreduce"
    forced: str = ""        # the algorithm the run forced (NCCL_ALGO), priced the same; "" = the model chooses

    @property
    def err_pct(self) -> float:
        return 100.0 * (self.model_us / self.published_us - 1.0)


def score_holdout(system: SystemSpec, path=HOLDOUT_CSV, level: str = "analytical") -> list[HoldoutRow]:
    out = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            S, n, forced = int(r["size_bytes"]), int(r["n_gpus"]), r.get("forced") or ""
            c = collective_cost(r["collective"], S, n, 1, system, level, forced or None)
            out.append(HoldoutRow(r["source"], r["url"], n, r["harness"], S, float(r["time_us"]),
                                  c.time_s * 1e6, c.algorithm, r["in_range"] == "yes", r["note"],
                                  r["collective"], forced))
    return out


def x3_spikes(rows: list[HoldoutRow]) -> set[int]:
    """Indices of rows excluded by rule X3 (pre-registered): more than 2x the geometric mean of the
    (mean) times at the neighbouring sizes of the same source and collective; ends are never flagged."""
    series: dict = {}
    for r in rows:
        series.setdefault((r.source, r.collective), {}).setdefault(r.size_bytes, []).append(r.published_us)
    out = set()
    for i, r in enumerate(rows):
        sizes = sorted(series[(r.source, r.collective)])
        k = sizes.index(r.size_bytes)
        if 0 < k < len(sizes) - 1:
            lo, hi = (statistics.mean(series[(r.source, r.collective)][sizes[j]]) for j in (k - 1, k + 1))
            if r.published_us > 2 * (lo * hi) ** 0.5:
                out.add(i)
    return out


def summarise(rows: list[HoldoutRow], tolerance_pct: float = 15.0) -> dict:
    """Median and max |error| and the count within tolerance, over in-range rows."""
    errs = [abs(r.err_pct) for r in rows if r.in_range]
    return {"points": len(errs), "median_abs_err_pct": statistics.median(errs), "max_abs_err_pct": max(errs),
            "within": sum(e <= tolerance_pct for e in errs), "tolerance_pct": tolerance_pct}
