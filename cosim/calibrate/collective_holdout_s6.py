"""Score the held-out machines with a per-machine calibration (validation/collective_calibration_rules.md).

Each machine of nccl_8gpu_heldout_session4b.csv (Azure ND H100 v5, ND H200 v5) is calibrated from its own
rows at 2 / 4 / 8 KB (floor) and 1 / 2 MiB (NVLS latency, the law chosen on fit data by
cosim.calibrate.calibration_law_fit); every other row in 1 KB - 1 GB is scored, priced as in session 4b
(forced NVLS, single_process, H200 rows on dgx_h200). The uncalibrated session-4b price of each row is kept
side by side. Nothing here is fitted on a scored row.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cosim.calibrate.calibration_law_fit import chosen_blend
from cosim.calibrate.calibration_fit import fit_calibration
from cosim.calibrate.collective_holdout_s4b import (HELDOUT_S4B_CSV, ScoredRow, score_file, session4b_systems,
                                                  session11_system, x3_x4)
from hwmodels.collectives import collective_cost

__all__ = ["CALIBRATION_SIZES", "CalibratedRow", "calibrate_machines", "score_calibrated"]

CALIBRATION_SIZES = (2 << 10, 4 << 10, 8 << 10, 1 << 20, 2 << 20)


@dataclass(frozen=True)
class CalibratedRow:
    row: ScoredRow  # the session-4b pricing (uncalibrated) of the same row
    calibrated_us: float
    calibration: str  # what priced it: "calibrated from ..." or the model's label (hwmodels.collectives)
    excluded: str  # "", "X3", "X4"

    @property
    def err_pct(self) -> float:
        return 100.0 * (self.calibrated_us / self.row.published_us - 1.0)


def _system_of(gpu: str) -> str:
    return "dgx_h200" if gpu.startswith("H200") else "dgx_h100"


def calibrate_machines(rows: list[ScoredRow], table: str = HELDOUT_S4B_CSV.name) -> dict:
    """{source: CollectiveCalibration} from each machine's calibration rows only (`table`: the file they come from)."""
    blend, out = chosen_blend(), {}
    for src in dict.fromkeys(r.source for r in rows):
        mine = [r for r in rows if r.source == src]
        pts = [(r.size_bytes, r.published_us * 1e-6) for r in mine if r.size_bytes in CALIBRATION_SIZES]
        first = mine[0]
        out[src] = fit_calibration(pts, session11_system(_system_of(first.gpu)), first.collective, first.n_gpus,
                                   first.forced or None, first.launch, f"{src} rows of {table}",
                                   blend={a: hp for a, hp in blend.items() if a == (first.forced or "nvls")})
    return out


def score_calibrated(path=HELDOUT_S4B_CSV, sources=None) -> tuple[list[CalibratedRow], dict]:
    """Every machine of the file (or only `sources`) calibrated from its own rows and scored on its others."""
    rows = score_file(path, systems=session4b_systems())  # the uncalibrated session-4b price, as in session 6
    if sources is not None:
        rows = [r for r in rows if r.source in sources]
    x3, x4 = x3_x4(rows)
    cals, systems, out = calibrate_machines(rows, Path(path).name), {}, []
    for i, r in enumerate(rows):
        if r.size_bytes in CALIBRATION_SIZES or not r.in_range:
            continue
        name = _system_of(r.gpu)
        s = systems[name] if name in systems else systems.setdefault(name, session11_system(name))
        c = collective_cost(r.collective, r.size_bytes, r.n_gpus, 1, s, "analytical", r.forced or None,
                            launch=r.launch, calibration=cals[r.source])
        out.append(CalibratedRow(r, c.time_s * 1e6, c.calibration, "X3" if i in x3 else "X4" if i in x4 else ""))
    return out, cals
