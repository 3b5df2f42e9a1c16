"""One entry point for every level of detail: ``estimate(op, hw, level)``.

Levels: "roofline" (speed of light), "analytical" (calibrated GPU model,
hwmodels.gpu), "cycle" (systolic / FPGA models, hwmodels.cycle). A level that cannot
answer for this hardware (no calibration, not an accelerator) falls back to the
roofline with a note saying so — never silently.
"""

from __future__ import annotations

from hwmodels import roofline
from hwmodels.cost import OpCost
from hwmodels.level_registry import LEVELS, check_level, get_level
from hwmodels.spec import HardwareSpec
from workloads.ops import Op

__all__ = ["estimate", "estimate_ops", "LEVELS"]


def estimate(op: Op, hw: HardwareSpec | str, level: str = "roofline", compute_fallback: bool = False) -> OpCost:
    """One op's cost; `hw` a spec, or a bundled name / YAML path as cosim.simulate takes."""
    if not isinstance(hw, HardwareSpec):
        from hwmodels.spec import load_hw
        hw = load_hw(hw)
    return estimate_ops([op], hw, level, compute_fallback)[0][0]


def estimate_ops(ops, hw: HardwareSpec, level: str = "roofline", compute_fallback: bool = False):
    """Costs of ops at a level: (list[OpCost], notes). Models may offer a vectorised
    `estimate_trace(ops, hw, compute_fallback)`; otherwise `estimate(op, hw)` per op.
    The notes end with the spec's own (`HardwareSpec.notes`: e.g. peaks a clock override scaled)."""
    costs, notes = _estimate_ops(ops, hw, level, compute_fallback)
    return costs, tuple(notes) + tuple(n for n in hw.notes if n not in notes)


def _estimate_ops(ops, hw: HardwareSpec, level: str, compute_fallback: bool):
    check_level(level)
    ops = list(ops)
    if level == "roofline":
        return roofline.estimate_trace(ops, hw, compute_fallback)
    model = get_level(level)
    reason = None
    if model is None:
        reason = f"the {level} model is not available in this installation"
    else:
        ok, why = model.applicable(hw)
        if not ok:
            reason = why
    if reason:
        costs, notes = roofline.estimate_trace(ops, hw, compute_fallback)
        note = f"level={level} unavailable for {hw.name}: {reason}; fell back to roofline"
        costs = [OpCost(**{**c.__dict__, "provenance": f"fallback:roofline ({level} unavailable)"}) for c in costs]
        return costs, tuple(notes) + (note,)
    costs, notes = model.estimate_trace(ops, hw, compute_fallback=compute_fallback)
    return costs, _with_roofline_notes(ops, costs, notes, hw, level, compute_fallback)


def _with_roofline_notes(ops, costs, notes, hw: HardwareSpec, level: str, compute_fallback: bool) -> tuple:
    """A level's notes plus the roofline's own (a format fallback, a stored operand the device has no unit
    for) for the ops the level handed to the roofline: a model that sums its fallback up in one line
    (hwmodels.gpu on a GPU without a calibration) must not hide them. Each note once, the level's first."""
    from hwmodels.levels import priced_level
    fell = [op for op, c in zip(ops, costs) if priced_level(c, level) == "roofline"]
    if not fell:
        return tuple(notes)
    return tuple(dict.fromkeys((*notes, *roofline.op_table(fell, hw, compute_fallback).notes)))
