"""Score published nccl-tests rows with each row priced in the launch mode its harness used
(PREREGISTRATION_nccl_session4b.md): `-g N` single-process runs as ``single_process``, one rank per
process as ``one_process_per_gpu``. The mode is read from the row's harness text and from the header or
command line quoted per source in nccl_launch_modes_session4b.csv (hwmodels.nccl.launch_from_harness);
a stated ``launch`` must agree with what is read; never chosen from the error.
H200 rows are priced on dgx_h200, the others on dgx_h100. Nothing here fits anything.
"""

from __future__ import annotations

import csv
import statistics
from dataclasses import dataclass
from pathlib import Path

from cosim.calibrate.historical_model import S11_RING_LL, session11_system, with_ring_ll  # noqa: F401 (re-exported)
from hwmodels.collectives import collective_cost
from hwmodels.launch import LAUNCH_MODES
from hwmodels.nccl import dtype_from_harness, launch_from_harness
from hwmodels.spec import HardwareError
from hwmodels.system import load_system

__all__ = ["HELDOUT_S4B_CSV", "LAUNCH_CSV", "ScoredRow", "score_file", "stated_dtype", "session4b_systems", "session8_systems", "x3_x4",
           "summary", "BANDS", "S11_RING_LL", "with_ring_ll", "session11_system"]

_PUB = Path(__file__).resolve().parents[2] / "validation" / "published"
HELDOUT_S4B_CSV = _PUB / "nccl_8gpu_heldout_session4b.csv"
LAUNCH_CSV = _PUB / "nccl_launch_modes_session4b.csv"
BANDS = (("1 KB - 512 KB", 1 << 10, 1 << 19), ("1 MB - 64 MB", 1 << 20, 1 << 26), ("128 MB - 1 GB", 1 << 27, 1 << 30))
X4_MIN_BUSBW_GBPS = 0.10  # below this a 2-decimal busbw moves the time by more than 5 %


@dataclass(frozen=True)
class ScoredRow:
    source: str
    url: str
    gpu: str
    n_gpus: int
    collective: str
    forced: str  # the run's NCCL_ALGO, priced the same; "" = the model chooses
    launch: str
    size_bytes: int
    published_us: float
    model_us: float
    algorithm: str
    in_range: bool
    busbw_GBps: float | None  # when the source gives busbw only (X4)
    free_us: float  # information only: the model's own algorithm choice, same launch mode
    free_algorithm: str

    @property
    def err_pct(self) -> float:
        return 100.0 * (self.model_us / self.published_us - 1.0)


def _launch_map() -> dict:
    with open(LAUNCH_CSV, newline="") as f:
        return {r["source"]: r for r in csv.DictReader(f)}


def _launch_of(r: dict, sources: dict, path) -> str:
    """The mode read from the row's harness text and its source's quoted header / command line
    (hwmodels.nccl.launch_from_harness); a stated mode must agree with it."""
    side = sources.get(r["source"], {})
    read = {m for m in (launch_from_harness(r.get("harness") or ""), launch_from_harness(side.get("evidence", ""))) if m}
    stated = {m for m in ((r.get("launch") or "").strip(), side.get("launch", "")) if m}
    if len(read) != 1 or not stated <= read:
        raise HardwareError(f"{path}: source {r['source']!r}: launch read from its harness / header {sorted(read)}, "
                            f"stated {sorted(stated)}; expected exactly one of {LAUNCH_MODES}, agreeing "
                            f"(a harness column, or a row in {LAUNCH_CSV.name} quoting the header or command line)")
    return read.pop()


def session4b_systems() -> dict:
    """The bundled systems as session 4b scored them: one line per (algorithm, protocol), no size-regime lines
    (the NVLS small-chunk line came in session 7, validation/nvls_regime_rules_s7.md), and the session-4b
    single-process launch term (re-chosen in session 9, cosim.calibrate.launch_refit_s9)."""
    from cosim.calibrate.calibration_fit import single_line
    return {n: single_line(s) for n, s in session8_systems().items()}


def session8_systems() -> dict:
    """The bundled systems as sessions 7 and 8 scored them: today's files with the session-4b single-process launch
    term (8.35 + 3.72 n us), which session 9 re-chose on fit data (cosim.calibrate.launch_refit_s9), and the ring LL
    line of sessions 3-11 (S11_RING_LL; session 12 replaced it). The historical scorers price with them so that their
    committed tables re-run unchanged."""
    from cosim.calibrate.launch_refit_s9 import S4B_TERM, with_term
    return {n: with_term(session11_system(n), S4B_TERM) for n in ("dgx_h100", "dgx_h200")}


def stated_dtype(row: dict) -> str | None:
    """The element type a table row (a csv.DictReader row) states, from its note and harness
    (hwmodels.nccl.dtype_from_harness); None where it states none."""
    return dtype_from_harness(f"{row.get('note') or ''} {row.get('harness') or ''}")


def score_file(path, level: str = "analytical", systems: dict | None = None) -> list[ScoredRow]:
    """Every row priced as its harness ran it, on `systems` {name: SystemSpec} (default: the bundled files)."""
    modes, systems, out = _launch_map(), dict(systems or {}), []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            name = "dgx_h200" if r["gpu"].startswith("H200") else "dgx_h100"
            s = systems[name] if name in systems else systems.setdefault(name, load_system(name))
            S, n, forced, mode = int(r["size_bytes"]), int(r["n_gpus"]), r.get("forced") or "", _launch_of(r, modes, path)
            # the element type where the row states it (a note's nccl_dtype, the harness's -d; session 12b): NCCL's NVLS
            # reduces no 8-bit type; rows that state none are priced as before (hwmodels.collectives.nvls_offered)
            dtype = stated_dtype(r)
            c = collective_cost(r["collective"], S, n, 1, s, level, forced or None, launch=mode, dtype=dtype)
            free = collective_cost(r["collective"], S, n, 1, s, level, None, launch=mode, dtype=dtype)
            bw = r.get("busbw_GBps")
            out.append(ScoredRow(r["source"], r["url"], r["gpu"], n, r["collective"], forced, mode, S,
                                 float(r["time_us"]), c.time_s * 1e6, c.algorithm, r["in_range"] == "yes",
                                 float(bw) if bw else None, free.time_s * 1e6, free.algorithm))
    return out


def x3_x4(rows: list[ScoredRow]) -> tuple[set, set]:
    """Indices excluded by X3 (a single-row spike, > 2x the geometric mean of the neighbours of the same
    source and collective) and X4 (busbw < 0.10 GB/s, fewer than 2 significant digits)."""
    from cosim.calibrate.collective_holdout import x3_spikes
    x4 = {i for i, r in enumerate(rows) if r.busbw_GBps is not None and r.busbw_GBps < X4_MIN_BUSBW_GBPS}
    return x3_spikes(rows), x4


def summary(rows: list[ScoredRow], free: bool = False, tolerance_pct: float = 15.0) -> dict:
    """Median / max |error| and the count within tolerance over in-range rows (free: the model's own
    algorithm choice instead of the run's forced one)."""
    errs = [abs(100.0 * ((r.free_us if free else r.model_us) / r.published_us - 1.0)) for r in rows if r.in_range]
    if not errs:
        return {"points": 0}
    return {"points": len(errs), "median_abs_err_pct": statistics.median(errs), "max_abs_err_pct": max(errs),
            "within": sum(e <= tolerance_pct for e in errs)}
