"""Hierarchical roofline (level 0): one compute ceiling per number format, one
bandwidth ceiling per memory level.

For each op: latency = max(FLOPs / peak(format), max over levels of bytes(level) /
bandwidth(level)); the argmax names the bound. Bytes at the outermost level are the
op's compulsory traffic. A GEMM that does not fit the next level *inside* re-reads
operands: its traffic at a level is at least 2·b·m·n·k / sqrt(S) elements, where S
is the element capacity of one instance of the next inner level (Hong & Kung's
red-blue pebble bound for matrix multiply), so very large GEMMs on small on-chip
memories become bandwidth-bound, as they should.

Everything is vectorised over (hardware variants × ops): one call evaluates a trace on
one spec, or on a hundred thousand variants of it (`evaluate_many`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hwmodels.cost import OpCost
from hwmodels.peak_scaling import VECTOR_FORMAT  # elementwise kernels run on the vector (CUDA-core) pipes
from hwmodels.spec import HardwareError, HardwareSpec, UnsupportedFormatError
from workloads.io import InputError
from workloads.ops import Op, stored_operands
from workloads.template import op_numbers

__all__ = ["estimate", "estimate_trace", "OpTable", "HwTable", "op_table", "hw_table", "evaluate",
           "evaluate_many", "MATRIX_KINDS", "compute_format_for", "stored_operand_notes", "operand_unit_check",
           "operand_rule"]

MATRIX_KINDS = frozenset({"gemm", "attention", "moe_router"})


def compute_format_for(op: Op, hw: HardwareSpec, compute_fallback: bool = False) -> tuple[str, str]:
    """(format whose peak bounds this op, note). Elementwise ops use the vector
    (fp32) peak where the spec lists one. A format the spec lacks is an error unless
    `compute_fallback`, and then the fallback is reported in the note."""
    return _format_for(op.name, op.kind, op.compute_fmt, hw, compute_fallback)


def _format_for(name: str, kind: str, fmt: str, hw: HardwareSpec, compute_fallback: bool) -> tuple[str, str]:
    if kind not in MATRIX_KINDS and VECTOR_FORMAT in hw.peak_flops:
        return VECTOR_FORMAT, ""
    if hw.supports(fmt):
        return fmt, ""
    if not compute_fallback:
        hw.peak(fmt)  # raises UnsupportedFormatError with the full message
    used = hw.fallback_format(fmt)
    return used, f"{name}: {hw.name} has no {fmt} unit; computed at the {used} peak (explicit fallback)"


def stored_operand_notes(stored, fmt: str, supports, owner: str = "the PE") -> tuple:
    """The one rule (roofline and cycle levels, any device): a stored operand (weights, KV cache) of a
    matrix op in a format the device has no unit for is multiplied as ``fmt``, the op's compute format:
    said in the op's notes, never silently. The matrix unit's conversion (e.g. int4 -> bf16) is not
    charged; a dequantize op the trace carries (a recipe's) is priced as its own op. `stored`: (role,
    format) of the op's inputs; `supports`: the format test (the PE's, AcceleratorConfig.supports, on an
    accelerator or FPGA; the spec's format table, HardwareSpec.supports, elsewhere); `owner`: who lacks
    the unit in the note ("the PE", or the device's name)."""
    from workloads.formats import get_format
    out = []
    for role, f in stored:
        f = get_format(f).name
        if role in ("weight", "kv") and f != fmt and not supports(f):
            what = "weights" if role == "weight" else "KV cache"
            # true with or without a recipe's dequantize op (kivi2.dequant): that op is its own priced row
            out.append(f"{what} in {f}: {owner} has no {f} unit, priced as {fmt} MACs (the matrix unit's {f} -> "
                       f"{fmt} conversion is not charged; a dequantize op in the trace, e.g. a recipe's, is priced "
                       f"as its own row)")
    return tuple(dict.fromkeys(out))


def operand_rule(hw: HardwareSpec) -> tuple:
    """(format test, owner) of the stored-operand rule (stored_operand_notes) on `hw`: the PE's on an
    accelerator or FPGA (operand_unit_check), else the spec's format table -- a GPU or a TPU without a PE
    model has a unit for a format exactly when its file lists a peak for it (an A100's fp8 weights, an
    H100's mxfp4 weights are multiplied as bf16, and the note says so)."""
    unit = operand_unit_check(hw)
    return (unit, "the PE") if unit is not None else (hw.supports, hw.name)


_UNITS: dict = {}  # _unit_key(hw) -> the PE's format test or None


def _unit_key(hw: HardwareSpec) -> str:
    """What the PE's format test depends on, as a value (an id() could name another spec once its own is
    freed): the file, the name, the accelerator / fpga sections and overrides, the formats with a peak."""
    return repr((hw.source, hw.name, hw.sections.get("accelerator"), hw.sections.get("fpga"),
                 hw.sections.get("overrides"), sorted(hw.peak_flops)))


def operand_unit_check(hw: HardwareSpec):
    """The PE's format test of an accelerator or FPGA spec (what the cycle level checks stored
    operands against), or None for other hardware (GPUs, TPUs without an accelerator section:
    no PE model, no operand rule). A spec the cycle level refuses (config_for's InputError, said
    when the cycle level runs) leaves the format table to decide."""
    if "accelerator" not in hw.sections and "fpga" not in hw.sections:
        return None
    key = _unit_key(hw)
    if key not in _UNITS:
        from hwmodels.accelerators import config_for
        try:
            test = config_for(hw).supports
        except InputError:  # a spec the cycle level refuses: the format table decides
            test = hw.supports
        if len(_UNITS) > 512:
            _UNITS.clear()
        _UNITS[key] = test
    return _UNITS[key]


@dataclass(frozen=True)
class OpTable:
    """Numeric view of a list of ops (one row per op)."""
    names: tuple
    kinds: tuple
    repeat: np.ndarray  # (n_ops,)
    flops: np.ndarray  # per instance
    bytes: np.ndarray  # compulsory, per instance
    mnk: np.ndarray  # b*m*n*k of GEMMs (0 for other ops)
    elem_bytes: np.ndarray  # mean bytes per element of a GEMM's operands
    fmt: tuple  # compute format per op
    notes: tuple


@dataclass(frozen=True)
class HwTable:
    """Numeric view of hardware variants (one row per variant)."""
    formats: tuple  # column order of peak/e_flop
    levels: tuple  # memory level names, outermost first
    peak: np.ndarray  # (n_var, n_fmt) FLOP/s
    bandwidth: np.ndarray  # (n_var, n_lvl) B/s
    inner_capacity: np.ndarray  # (n_var, n_lvl) bytes of ONE instance of the next inner level (inf = none)
    e_flop: np.ndarray  # (n_var, n_fmt) J/FLOP (nan = unknown)
    e_byte: np.ndarray  # (n_var, n_lvl) J/B (nan = unknown)
    static_w: np.ndarray  # (n_var,) W (0 = none in the file: energies dynamic only, labelled by the report)


def op_table(ops, hw: HardwareSpec, compute_fallback: bool = False) -> OpTable:
    ops = list(ops)
    fmts, notes = [], []
    unit, owner = operand_rule(hw)
    for op in ops:
        f, note = compute_format_for(op, hw, compute_fallback)
        fmts.append(f)
        if note:
            notes.append(note)
        if op.kind in MATRIX_KINDS:
            notes.extend(stored_operand_notes(stored_operands(op), f, unit, owner))
    notes = list(dict.fromkeys(notes))
    nums = [op_numbers(op) for op in ops]
    return OpTable(names=tuple(o.name for o in ops), kinds=tuple(o.kind for o in ops),
                   repeat=np.array([o.repeat for o in ops], dtype=float),
                   flops=np.array([x[0] for x in nums], dtype=float),
                   bytes=np.array([x[1] for x in nums], dtype=float),
                   mnk=np.array([x[2] for x in nums], dtype=float),
                   elem_bytes=np.array([x[3] for x in nums], dtype=float), fmt=tuple(fmts), notes=tuple(notes))


# Per (template, hardware, fallback): compute formats and their notes; per hardware: its
# table. Keyed on id with the object kept beside it, so an id is never reused while cached.
_FORMATS: dict = {}
_HW_TABLES: dict = {}


def _cached_hw_table(hw: HardwareSpec, single: bool = False) -> HwTable:
    """`hw_table(hw)`, cached; `single=True`: the same table without the variant axis
    (every array's first dimension dropped) for `evaluate` of one spec."""
    hit = _HW_TABLES.get(id(hw))
    if hit is None or hit[0] is not hw:
        if len(_HW_TABLES) > 512:
            _HW_TABLES.clear()
        h = hw_table(hw)
        one = HwTable(h.formats, h.levels, h.peak[0], h.bandwidth[0], h.inner_capacity[0], h.e_flop[0],
                      h.e_byte[0], h.static_w[0])
        hit = _HW_TABLES[id(hw)] = (hw, h, one)
    return hit[2] if single else hit[1]


def template_table(tmpl, parts: dict, hw: HardwareSpec, compute_fallback: bool = False) -> OpTable:
    """The OpTable of a traced template's numbers (workloads.template) — what `op_table`
    gives for the built ops, without building them. `parts` = `tmpl.split(flat)` of the
    template's numbers as one float array: (N,) per part for one workload, (N, W) for W."""
    _, _, fmts, notes, repeat = template_formats(tmpl, hw, compute_fallback)
    return OpTable(names=tmpl.names, kinds=tmpl.kinds, repeat=repeat, flops=parts["flops"], bytes=parts["bytes"],
                   mnk=parts["mnk"], elem_bytes=parts["elem_bytes"], fmt=fmts, notes=notes)


def template_formats(tmpl, hw: HardwareSpec, compute_fallback: bool = False) -> tuple:
    """(tmpl, hw, compute format per op, fallback notes, repeat array), cached."""
    key = (id(tmpl), id(hw), compute_fallback)
    hit = _FORMATS.get(key)
    if hit is None or hit[0] is not tmpl or hit[1] is not hw:
        if len(_FORMATS) > 4096:
            _FORMATS.clear()
        fmts, notes = [], []
        unit, owner = operand_rule(hw)
        stored = tmpl.stored or ((),) * len(tmpl.names)
        for name, kind, fmt, st in zip(tmpl.names, tmpl.kinds, tmpl.compute_fmts, stored):
            f, note = _format_for(name, kind, fmt, hw, compute_fallback)
            fmts.append(f)
            if note:
                notes.append(note)
            if kind in MATRIX_KINDS:
                notes.extend(stored_operand_notes(st, f, unit, owner))
        notes = list(dict.fromkeys(notes))
        hit = _FORMATS[key] = (tmpl, hw, tuple(fmts), tuple(notes), np.array(tmpl.repeat, dtype=float))
    return hit


def hw_table(specs) -> HwTable:
    """Stack one or more specs with the same memory level names."""
    specs = list(specs) if not isinstance(specs, HardwareSpec) else [specs]
    levels = tuple(m.name for m in specs[0].memory)
    for s in specs:
        if tuple(m.name for m in s.memory) != levels:
            raise ValueError(f"hardware variants must share memory levels: {levels} vs {[m.name for m in s.memory]}")
    formats = tuple(sorted(set().union(*(s.peak_flops for s in specs))))
    nan = float("nan")
    peak = np.array([[s.peak_flops.get(f, nan) for f in formats] for s in specs])
    e_flop = np.array([[s.energy_per_flop_j.get(f, nan) for f in formats] for s in specs])
    bw = np.array([[m.bandwidth_Bps for m in s.memory] for s in specs])
    e_byte = np.array([[nan if m.energy_per_byte_j is None else m.energy_per_byte_j for m in s.memory] for s in specs])
    cap = np.array([[_inner_capacity(s, i) for i in range(len(levels))] for s in specs])
    # no energy.static_power: the static term is unknown, priced as 0 W so the energies are the
    # dynamic part only; every report says so (HardwareSpec.energy_scope, cosim.simulate.static_energy_note)
    static = np.array([s.static_power_w or 0.0 for s in specs])
    return HwTable(formats, levels, peak, bw, cap, e_flop, e_byte, static)


def _inner_capacity(s: HardwareSpec, i: int) -> float:
    if i + 1 >= len(s.memory):
        return math.inf
    inner = s.memory[i + 1]
    return inner.capacity_bytes / max(1, getattr(inner, "instances", 1) or 1)


def evaluate(t: OpTable, h: HwTable, bound: bool = True) -> dict:
    """Per-variant, per-op roofline. Returns arrays shaped (n_var, n_ops):
    latency_s, energy_j (per instance), bound_index (-1 = compute, else level index;
    only with `bound=True`), traffic and t_mem (n_var, n_ops, n_lvl) bytes and seconds
    per level."""
    # `...` indexing: the same code prices (V, ...) variant tables and one variant whose
    # arrays have no variant axis (the single-evaluation path), elementwise alike
    col = _format_columns(t.fmt, h.formats)
    peak = h.peak[..., col]  # (V, N)
    t_compute = t.flops / peak
    # reuse-limited traffic of GEMMs at each level (Hong-Kung), never below compulsory;
    # at the innermost level (no inner memory, capacity inf) the bound is num / inf = 0
    # variants that share capacities (or energies per byte) share the per-level traffic
    # (or its energy): computed once, broadcast — the same values elementwise
    cap = _shared_rows(h.inner_capacity)
    s_el = cap[..., None, :] / t.elem_bytes[:, None]  # (V or 1, N, L)
    with np.errstate(divide="ignore", invalid="ignore"):
        reuse = ((2.0 * t.mnk) * t.elem_bytes)[:, None] / np.sqrt(s_el)
    traffic = np.maximum(t.bytes[:, None], reuse)  # (V or 1, N, L)
    t_mem = traffic / h.bandwidth[..., None, :]
    t_mem_max = np.maximum.reduce(t_mem, axis=-1)
    latency = np.maximum(t_compute, t_mem_max)
    e_mem = np.add.reduce(traffic * _shared_rows(h.e_byte)[..., None, :], axis=-1)
    energy = t.flops * h.e_flop[..., col] + e_mem + h.static_w[..., None] * latency
    if traffic.shape[:-1] != t_mem.shape[:-1]:
        traffic = np.broadcast_to(traffic, t_mem.shape)
    r = {"latency_s": latency, "energy_j": energy, "traffic": traffic, "t_mem": t_mem,
         "t_compute": t_compute, "peak": peak}
    if bound:
        r["bound_index"] = bound_index(r)
    return r


def bound_index(r: dict) -> np.ndarray:
    """What limits each op in an `evaluate` result: -1 = compute, else the index of the
    memory level with the longest transfer (ties go to compute, then the outer level)."""
    t_mem = r["t_mem"]
    return np.where(r["t_compute"] >= np.maximum.reduce(t_mem, axis=-1), -1, t_mem.argmax(axis=-1))


def evaluate_totals(t: OpTable, h: HwTable) -> tuple[np.ndarray, np.ndarray]:
    """Total latency and energy (over repeats) per variant: `evaluate`'s per-op values
    times `repeat`, summed over ops in trace order — the same sum, term by term, that
    `cosim.simulate` takes per point, so a sweep row equals that point's report exactly.
    Computed op by op over the variant axis (vectors of V), which is cheaper than
    (V, N, L) temporaries for the thousands of variants of a sweep task."""
    col = _format_columns(t.fmt, h.formats)
    cap, e_byte = _shared_rows(h.inner_capacity), _shared_rows(h.e_byte)
    n_lvl = h.bandwidth.shape[-1]
    lat_tot = en_tot = 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(len(t.fmt)):
            eb = t.elem_bytes[i]
            t_compute = t.flops[i] / h.peak[:, col[i]]
            reuse = ((2.0 * t.mnk[i]) * eb) / np.sqrt(cap / eb)  # (V or 1, L)
            traffic = np.maximum(t.bytes[i], reuse)
            t_mem = traffic / h.bandwidth
            t_max = t_mem[:, 0]
            for j in range(1, n_lvl):
                t_max = np.maximum(t_max, t_mem[:, j])
            latency = np.maximum(t_compute, t_max)
            e_tr = traffic * e_byte
            e_mem = e_tr[:, 0] + e_tr[:, 1] if n_lvl == 2 else np.add.reduce(e_tr, axis=-1)
            energy = t.flops[i] * h.e_flop[:, col[i]] + e_mem + h.static_w * latency
            lat_tot = lat_tot + latency * t.repeat[i]
            en_tot = en_tot + energy * t.repeat[i]
    n = h.peak.shape[0]
    return np.broadcast_to(lat_tot, (n,)).copy(), np.broadcast_to(en_tot, (n,)).copy()


_COLUMNS: dict = {}


def _shared_rows(a: np.ndarray) -> np.ndarray:
    """`a` (V, L) as one row (1, L) when every variant has the same values (nan-aware)."""
    if a.ndim < 2 or len(a) < 2:
        return a
    first = a[:1]
    same = (a == first) | (np.isnan(a) & np.isnan(first))
    return first if same.all() else a


def _format_columns(fmts: tuple, formats: tuple) -> np.ndarray:
    """Column of each op's compute format in a HwTable (cached: the same few pairs recur)."""
    key = (fmts, formats)
    col = _COLUMNS.get(key)
    if col is None:
        if len(_COLUMNS) > 4096:
            _COLUMNS.clear()
        col = _COLUMNS[key] = np.array([formats.index(f) for f in fmts], dtype=np.intp)
    return col


def evaluate_many(trace_ops, specs, compute_fallback: bool = False, chunk: int = 16384) -> dict:
    """Total latency and energy of one trace on many hardware variants (vectorised).
    Returns arrays of shape (n_var,)."""
    specs = list(specs)
    t = op_table(trace_ops, specs[0], compute_fallback)
    h = hw_table(specs)
    return evaluate_tables(t, h, chunk)


def evaluate_tables(t: OpTable, h: HwTable, chunk: int = 16384) -> dict:
    n = h.peak.shape[0]
    lat, en = np.empty(n), np.empty(n)
    for s in range(0, n, chunk):
        sl = slice(s, s + chunk)
        part = HwTable(h.formats, h.levels, h.peak[sl], h.bandwidth[sl], h.inner_capacity[sl],
                       h.e_flop[sl], h.e_byte[sl], h.static_w[sl])
        lat[sl], en[sl] = evaluate_totals(t, part)
    return {"total_latency_s": lat, "total_energy_j": en}


def _costs(t: OpTable, h: HwTable) -> list[OpCost]:
    r = evaluate(t, h)
    out = []
    for i in range(len(t.names)):
        b = int(r["bound_index"][0, i])
        lat = float(r["latency_s"][0, i])
        util = float(t.flops[i] / r["peak"][0, i] / lat) if lat > 0 else 0.0
        out.append(OpCost(
            latency_s=lat, energy_j=float(r["energy_j"][0, i]),
            bound="compute" if b < 0 else h.levels[b], utilization=util, flops=float(t.flops[i]),
            bytes_by_level={lvl: float(r["traffic"][0, i, j]) for j, lvl in enumerate(h.levels)},
            provenance="speed-of-light", details={"compute_fmt": t.fmt[i],
                                                  "t_compute_s": float(r["t_compute"][0, i])}))
    return out


def estimate(op: Op, hw: HardwareSpec, compute_fallback: bool = False) -> OpCost:
    t = op_table([op], hw, compute_fallback)
    cost = _costs(t, _cached_hw_table(hw))[0]
    if t.notes:
        cost = OpCost(**{**cost.__dict__, "notes": t.notes})
    return cost


def estimate_trace(ops, hw: HardwareSpec, compute_fallback: bool = False) -> tuple[list[OpCost], tuple]:
    """Costs of every op in one vectorised pass, plus the fallback notes."""
    t = op_table(ops, hw, compute_fallback)
    return _costs(t, _cached_hw_table(hw)), t.notes


def hw_table_variants(base: HardwareSpec, overrides: dict) -> HwTable:
    """Many variants of one spec as arrays, without building a spec per variant.

    `overrides` maps a field path to an array of values (SI units), all of one length:
    ``clock`` (scales every peak by clock/base clock, after any ``compute.<fmt>`` value: a
    figure is the peak at the base clock, as `load_hw` scales it, hwmodels.peak_scaling),
    ``compute.<fmt>``, ``memory.<level>.bandwidth``, ``memory.<level>.capacity``,
    ``memory.<level>.energy`` (J/B), ``energy.per_flop.<fmt>``, ``energy.static_power``."""
    lengths = {len(np.atleast_1d(v)) for v in overrides.values()}
    if len(lengths) > 1:
        raise ValueError(f"override arrays differ in length: {sorted(lengths)}")
    n = lengths.pop() if lengths else 1
    h = hw_table(base)
    peak = np.repeat(h.peak, n, axis=0)
    bw = np.repeat(h.bandwidth, n, axis=0)
    cap_total = np.repeat(np.array([[m.capacity_bytes for m in base.memory]]), n, axis=0)
    inst = np.array([max(1, m.instances) for m in base.memory], dtype=float)
    e_flop = np.repeat(h.e_flop, n, axis=0)
    e_byte = np.repeat(h.e_byte, n, axis=0)
    static = np.repeat(h.static_w, n)
    levels = list(h.levels)
    clock = None
    for key, val in overrides.items():
        val = np.asarray(val, dtype=float)
        parts = key.split(".")
        if key == "clock":
            if not base.clock_hz or base.clock_hz <= 0:
                raise HardwareError(f"{base.source or base.name}: overrides['clock']: got {val!r}; expected a spec "
                                    f"that states its clock (clock_hz {base.clock_hz!r}: no clock to scale from)")
            clock = val
        elif parts[0] == "compute" and len(parts) == 2 and parts[1] in h.formats:
            peak[:, h.formats.index(parts[1])] = val
        elif parts[0] == "memory" and len(parts) == 3 and parts[1] in levels:
            j = levels.index(parts[1])
            target = {"bandwidth": bw, "capacity": cap_total, "energy": e_byte}.get(parts[2])
            if target is None:
                raise KeyError(f"override {key!r}: memory fields are bandwidth, capacity, energy")
            target[:, j] = val
        elif parts[:2] == ["energy", "per_flop"] and len(parts) == 3 and parts[2] in h.formats:
            e_flop[:, h.formats.index(parts[2])] = val
        elif key == "energy.static_power":
            static = val
        else:
            raise KeyError(f"override {key!r} is not a field of {base.name} that can vary "
                           f"(formats {h.formats}, levels {tuple(levels)})")
    if clock is not None:  # every peak, the overridden ones too: load_hw's rule (hwmodels.peak_scaling.peak_ratio)
        peak = peak * (clock / base.clock_hz)[:, None]
    inner = np.full_like(bw, np.inf)
    inner[:, :-1] = cap_total[:, 1:] / inst[None, 1:]
    return HwTable(h.formats, h.levels, peak, bw, inner, e_flop, e_byte, static)
