"""One entry point for every level of detail: ``estimate(op, hw, level)``.

Levels: "roofline" (speed of light), "analytical" (calibrated GPU model,
hwmodels.gpu), "cycle" (systolic / FPGA models, hwmodels.cycle). A level that cannot
answer for this hardware (no calibration, not an accelerator) falls back to the
roofline with a note saying so — never silently.
"""

from __future__ import annotations

import dataclasses

from hwmodels import roofline
from hwmodels.cost import OpCost
from hwmodels.level_registry import LEVELS, check_level, get_level
from hwmodels.spec import HardwareSpec
from workloads.ops import Op

__all__ = ["estimate", "estimate_ops", "ops_as_priced", "prices_attention_backends", "attention_backends_priced",
           "LEVELS"]


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
    backends = _attention_backends(ops)
    if backends and not prices_attention_backends(hw, level):
        return _without_backend_model(ops, hw, level, compute_fallback, backends)
    costs, notes = _estimate_level(ops, hw, level, compute_fallback)
    if "unfused" in backends:
        costs = [_with_eager_kernels(op, c) for op, c in zip(ops, costs)]
        from workloads.profiles import is_unfused_attention
        if any(op.dims.get("softcap") and is_unfused_attention(op) for op in ops):
            notes = (*notes, SOFTCAP_NOT_FITTED)
    return costs, notes


SOFTCAP_NOT_FITTED = ("attention soft-cap: the calibrated model of eager attention has no soft-cap passes (its kernels "
                      "were measured without soft-capping), so Gemma-2's divide, tanh and multiply over the score "
                      "matrix are not priced at this level (the roofline prices them)")


def _with_eager_kernels(op, cost: OpCost) -> OpCost:
    """A level with its own model of eager attention (the calibrated GPU's, fitted as measured) prices the kernels
    eager launches: its row shows their FLOPs and bytes, not the fused op's (a row of 281 TFLOP over 21.5 GB said
    13,000 FLOP/B and memory-bound at once); a soft-cap's passes, which that model does not price, are left out."""
    from workloads.profiles import eager_attention_kernels, is_unfused_attention
    if not is_unfused_attention(op) or "kernel_bytes" in cost.details:
        return cost
    kernels = eager_attention_kernels(op, softcap=False)
    return dataclasses.replace(cost, details={**cost.details, "kernel_flops": sum(k.flops for k in kernels),
                                              "kernel_bytes": sum(k.bytes for k in kernels)})


def _estimate_level(ops: list, hw: HardwareSpec, level: str, compute_fallback: bool):
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


def prices_attention_backends(hw: HardwareSpec, level: str) -> bool:
    """Whether `level` has a kernel-library model of attention on `hw` (the calibrated analytical GPU model,
    hwmodels.gpu: FA2, cuDNN-class, Hugging Face eager); the roofline and the cycle models price one attention
    algorithm whatever the library."""
    from hwmodels.levels import level_support
    return level == "analytical" and level_support(hw, level).ok


def attention_backends_priced(ops, hw: HardwareSpec, level: str, support=None) -> tuple:
    """The attention backends `level` prices `ops` with on `hw`, without pricing them: what the costs' details
    say (simulate's inputs.attention_backend, a sweep row's column). The calibrated analytical GPU model prices each
    attention op with its profile's backend, else the calibration's default; a level without a model of backends
    prices a profile's eager attention as its kernels ("unfused") and any other as one fused kernel (none named).
    `support`: the level's LevelSupport on `hw` where the caller has it (the calibration is then not read again)."""
    if level == "analytical":
        from hwmodels.levels import level_support
        sup = support if support is not None else level_support(hw, level)
        if sup.ok:  # what hwmodels.gpu.attention_backend picks
            return tuple(sorted({b if (b := op.dims.get("backend")) not in (None, "default") else sup.attention_default
                                 for op in ops if op.kind == "attention" and not op.dims.get("fused")}))
    return ("unfused",) if "unfused" in _attention_backends(ops) else ()


def _attention_backends(ops) -> list:
    return sorted({op.dims["backend"] for op in ops if op.kind == "attention" and op.dims.get("backend")})


def ops_as_priced(ops, hw: HardwareSpec, level: str) -> tuple[list, tuple]:
    """(the ops `level` prices on `hw`, notes): an attention op a profile marked "unfused" becomes eager
    attention's kernels where the level has no kernel-library model of attention (for paths that price a table of
    ops, e.g. vectorised roofline sweeps; per-op rows keep one row per attention op, `estimate_ops`)."""
    backends = _attention_backends(ops)
    if not backends or prices_attention_backends(hw, level):
        return list(ops), ()
    from workloads.profiles import expand_unfused
    return expand_unfused(ops)[0], _backend_notes(backends, hw, level)


def _backend_notes(backends: list, hw: HardwareSpec, level: str) -> tuple:
    where = f"level {level} on {hw.name} has no kernel-library model of attention"
    flash = [b for b in backends if b not in ("unfused", "default")]
    notes = []
    if "unfused" in backends:
        notes.append(f"attention backend unfused (Hugging Face eager): {where}, so each attention op is priced as "
                     f"the kernels eager attention launches (repeat_kv copies, score GEMM, scale, a soft-cap's "
                     f"passes, mask, softmax in fp32, cast, PV GEMM: the score matrix streamed by each pass)")
    if flash:
        notes.append(f"attention backend {', '.join(flash)}: {where} and prices one fused attention kernel "
                     f"whatever the backend (the calibrated analytical GPU level prices backends)")
    return tuple(notes)


def _without_backend_model(ops, hw: HardwareSpec, level: str, compute_fallback: bool, backends: list):
    """A level without a kernel-library model: an attention op a profile marked "unfused" is priced as the kernels
    eager attention launches (workloads.profiles.eager_attention_kernels), summed back into its row; a flash backend
    (fa2, cudnn) is priced as the level's one fused attention, and a note says so. Never silent."""
    from workloads.profiles import expand_unfused

    parts, spans = expand_unfused(ops)
    part_costs, notes = _estimate_level(parts, hw, level, compute_fallback)
    costs = [part_costs[s[0]] if len(s) == 1 and parts[s[0]] is op else
             _summed([part_costs[i] for i in s], [parts[i] for i in s]) for op, s in zip(ops, spans)]
    return costs, tuple(notes) + _backend_notes(backends, hw, level)


def _summed(costs: list, kernels: list) -> OpCost:
    """One row for kernels run back to back: times, energies, FLOPs and bytes add; the bound is the longest
    kernel's; utilization is time-weighted (each kernel's achieved share of its own format's peak). `details`
    carries the kernels' own FLOPs and tensor bytes (per instance), which a result row shows in place of the fused
    op's (the score matrix's traffic is what priced it)."""
    lat = sum(c.latency_s for c in costs)
    longest = max(costs, key=lambda c: c.latency_s)
    add = lambda key: {k: sum(getattr(c, key).get(k, 0.0) for c in costs)
                       for k in dict.fromkeys(k for c in costs for k in getattr(c, key))}
    return OpCost(latency_s=lat, energy_j=sum(c.energy_j for c in costs), bound=longest.bound,
                  utilization=sum(c.utilization * c.latency_s for c in costs) / lat if lat else 0.0,
                  flops=sum(c.flops for c in costs), bytes_by_level=add("bytes_by_level"),
                  energy_breakdown=add("energy_breakdown"),
                  provenance="; ".join(dict.fromkeys(str(c.provenance) for c in costs)),
                  notes=tuple(dict.fromkeys(n for c in costs for n in c.notes)),
                  details={"compute_fmt": costs[0].details.get("compute_fmt"), "attention_backend": "unfused",
                           "kernels": sum(c.details.get("kernels", 1) for c in costs),
                           "kernel_flops": sum(k.flops for k in kernels),
                           "kernel_bytes": sum(k.bytes for k in kernels)})
