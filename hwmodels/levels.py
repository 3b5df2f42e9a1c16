"""Which level of detail can price this hardware, and what actually priced each op.

A requested level is not always the level that answers: the analytical GPU model needs a
calibration (own or transferred), the cycle model an accelerator/FPGA section, and a
level may hand single op kinds it does not model to the roofline. Every result row says
which level priced it and from what (`priced_level`, `provenance`); sweeps refuse a level
the hardware cannot do unless the sweep allows `fallback: roofline` (`level_support`).
"""

from __future__ import annotations

from dataclasses import dataclass

from hwmodels.cost import OpCost
from hwmodels.spec import HardwareSpec

__all__ = ["LevelSupport", "level_support", "priced_level", "levels_of_ops", "summarize_levels", "FALLBACK_PREFIX"]

FALLBACK_PREFIX = "fallback:"


@dataclass(frozen=True)
class LevelSupport:
    requested: str
    ok: bool  # the requested level's own model prices this hardware
    reason: str  # why not (empty when ok)
    provenance: str  # what the numbers rest on when ok: calibration / datasheet / cycle model
    # the calibration's attention backend for ops whose profile leaves it (analytical GPU level only): read with the
    # calibration, so a caller naming the backend (hwmodels.estimate.attention_backends_priced) reads it once
    attention_default: str | None = None


def level_support(hw: HardwareSpec, level: str) -> LevelSupport:
    """Can `level` price `hw` with its own model? (roofline always can.)"""
    if level == "roofline":  # the label every roofline row carries (OpCost.provenance)
        return LevelSupport(level, True, "", "speed-of-light")
    if level == "analytical":
        from hwmodels import gpu
        ok, why = gpu.applicable(hw)
        if not ok:
            return LevelSupport(level, False, why, "")
        P = gpu.params_for(hw)
        if P is None:
            return LevelSupport(level, False, f"{hw.source or hw.name} has no analytical calibration "
                                              f"(no `calibration:` key; make one with `cosim calibrate` or "
                                              f"transfer a sibling's with `calibration: {{from: <gpu>}}`)", "")
        return LevelSupport(level, True, "", P.provenance, P.attention_default)
    if level == "cycle":
        from hwmodels import cycle
        ok, why = cycle.applicable(hw)
        return LevelSupport(level, ok, why, "cycle-model" if ok else "")
    return LevelSupport(level, False, f"unknown level {level!r}", "")


def priced_level(cost: OpCost, requested: str) -> str:
    """The level whose model produced `cost`: a fallback provenance means the roofline, and so
    does a speed-of-light figure under another level (a collective's alpha-beta at the cycle
    level, or at the analytical level on a system without fitted collectives)."""
    p = str(cost.provenance)
    return "roofline" if p.startswith(FALLBACK_PREFIX) or (requested != "roofline" and p.startswith("speed-of-light")) \
        else requested


def levels_of_ops(ops, level: str) -> list:
    """Per-op priced level without pricing them (what `priced_level` would say): the
    analytical GPU model hands op kinds it has no kernel model for to the roofline."""
    if level != "analytical":
        return [level for _ in ops]
    from hwmodels import gpu
    return ["analytical" if (op.dims.get("fused") or op.kind in ("gemm", "attention") or gpu._ew_kind(op.kind))
            else "roofline" for op in ops]


def summarize_levels(levels) -> str:
    """One label for a set of per-op levels: 'analytical', or 'analytical+roofline' when mixed
    (in order of first appearance)."""
    return "+".join(dict.fromkeys(levels)) or "none"
