"""Run a trace through a performance model and collect a Report."""

from __future__ import annotations

import math

from cosim.report import Report
from hwmodels.estimate import estimate_ops
from hwmodels.spec import HardwareSpec, load_hw
from workloads.trace import Trace

__all__ = ["simulate"]


def simulate(trace: Trace, hw: HardwareSpec | str, level: str = "roofline",
             compute_fallback: bool = False) -> Report:
    """Cost every op of `trace` on `hw` at `level` and return a Report.

    `compute_fallback=True` lets ops whose compute format the hardware lacks run at
    the peak of the nearest wider format; each such op is listed in `Report.notes`.
    """
    hw = load_hw(hw) if not isinstance(hw, HardwareSpec) else hw
    costs, notes = estimate_ops(trace.ops, hw, level, compute_fallback)
    total_lat = sum(c.latency_s * op.repeat for op, c in zip(trace.ops, costs)) or 1.0
    rows = []
    for op, c in zip(trace.ops, costs):
        lat = c.latency_s * op.repeat
        row = {"op": op.name, "kind": op.kind, "phase": op.phase or trace.phase, "group": op.group,
               "repeat": op.repeat, "compute_fmt": c.details.get("compute_fmt", op.compute_fmt),
               "flops": op.total_flops, "bytes": op.total_bytes,
               "intensity": op.intensity if op.bytes else math.inf, "bound": c.bound,
               "latency_s": lat, "energy_j": c.energy_j * op.repeat, "utilization": c.utilization,
               "share": lat / total_lat, "provenance": c.provenance}
        for lvl, b in c.bytes_by_level.items():
            row[f"bytes_{lvl}"] = b * op.repeat
        for comp, e in c.energy_breakdown.items():
            row[f"energy_{comp}_j"] = e * op.repeat
        rows.append(row)
    return Report(model=trace.model, hw=hw.name, level=level, phase=trace.phase, batch=trace.batch,
                  seq=trace.seq, rows=rows, footprint=dict(trace.meta.get("footprint", {})),
                  capacity_bytes=hw.main_memory.capacity_bytes, notes=tuple(dict.fromkeys([*trace.meta.get("notes", ()), *notes])),
                  recipe=trace.recipe, meta={"formats": trace.meta.get("formats", {}),
                                             "recipe_effects": trace.meta.get("recipe_effects", {})})
