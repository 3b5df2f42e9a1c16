"""The levels of detail, in one place: their names, the module that implements each, and
the small protocol every level model answers. Callers (hwmodels.estimate, the experiment
loader, the sweep evaluator, the command line) ask `get_level(name)` instead of importing
modules by name and probing them with hasattr."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import Callable, Protocol

from hwmodels.cost import OpCost
from hwmodels.spec import HardwareError, HardwareSpec

__all__ = ["LEVELS", "MODULES", "LevelModel", "Level", "get_level", "check_level"]

LEVELS = ("roofline", "analytical", "cycle")
MODULES = {"roofline": "hwmodels.roofline", "analytical": "hwmodels.gpu", "cycle": "hwmodels.cycle"}
# a level whose many-variant evaluation lives in a module of its own (it imports the model)
VARIANT_MODULES = {"cycle": "hwmodels.cycle_variants"}


class LevelModel(Protocol):
    """What a level's module offers. `estimate` is required; the others are optional and
    `Level` fills them in: applicable -> always, estimate_trace -> `estimate` per op,
    evaluate_variants -> None (the sweep then calls the model once per point)."""

    def estimate(self, op, hw: HardwareSpec, compute_fallback: bool = False) -> OpCost: ...

    def estimate_trace(self, ops, hw: HardwareSpec, compute_fallback: bool = False) -> tuple: ...

    def applicable(self, hw: HardwareSpec) -> tuple[bool, str]: ...

    def evaluate_variants(self, ops, base: HardwareSpec, overrides: dict, compute_fallback: bool = False) -> dict: ...


@dataclass(frozen=True)
class Level:
    """One level, every protocol entry present (None only for evaluate_variants)."""
    name: str
    estimate: Callable
    estimate_trace: Callable
    applicable: Callable
    evaluate_variants: Callable | None


def check_level(name: str) -> None:
    if name not in LEVELS:
        raise HardwareError(f"level: got {name!r}; expected one of {LEVELS}")


def _per_op(estimate):
    def estimate_trace(ops, hw, compute_fallback=False):
        costs = [estimate(op, hw, compute_fallback=compute_fallback) for op in ops]
        return costs, tuple(n for c in costs for n in c.notes)
    return estimate_trace


def get_level(name: str) -> Level | None:
    """The level's model, or None when its module is not in this installation."""
    check_level(name)
    try:
        mod = import_module(MODULES[name])
    except ModuleNotFoundError as e:
        if e.name != MODULES[name]:
            raise
        return None
    return Level(name=name, estimate=mod.estimate,
                 estimate_trace=getattr(mod, "estimate_trace", None) or _per_op(mod.estimate),
                 applicable=getattr(mod, "applicable", None) or (lambda hw: (True, "")),
                 evaluate_variants=getattr(mod, "evaluate_variants", None) or _variants(name))


def _variants(name: str):
    if name not in VARIANT_MODULES:
        return None
    return import_module(VARIANT_MODULES[name]).evaluate_variants
