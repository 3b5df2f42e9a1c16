"""What an op costs on a piece of hardware: the answer every performance model gives."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["OpCost"]


@dataclass(frozen=True)
class OpCost:
    """Cost of ONE instance of an op (multiply by ``op.repeat`` for the total).

    ``bound`` is "compute" or the name of the memory level that limits the op
    ("hbm", "l2", "dram", "sram", ...), or "latency" when a fixed floor (kernel launch,
    pipeline fill) dominates, or (cycle level, weight/input-stationary arrays) "weight-load",
    "kv-load" or "input-load" when loading each fold's stationary tile, one row per cycle, outlasts
    the rows streamed through it (decode GEMVs). ``provenance`` says where the figure comes from, one label
    scheme in simulate rows, `cosim run` report.csv and sweep tables (the level that priced
    the op is its own column, `level` / `level_used`, never a prefix here):
    "speed-of-light" (the roofline: the hardware file's datasheet peaks and bandwidths),
    "speed-of-light:alpha-beta" (a collective's alpha-beta from the link figures),
    "calibrated:<source>" (fitted to measurements), "cycle-model", or "fallback:<why>".
    """

    latency_s: float
    energy_j: float = 0.0
    bound: str = "compute"
    utilization: float = 0.0  # achieved FLOP/s over the peak of the op's compute format
    flops: float = 0.0
    bytes_by_level: dict = field(default_factory=dict)  # level name -> bytes moved
    energy_breakdown: dict = field(default_factory=dict)  # component -> joules
    provenance: str = "speed-of-light"
    notes: tuple = ()
    details: dict = field(default_factory=dict)  # model-specific extras (cycles, stalls …)
