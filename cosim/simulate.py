"""Run a trace through a performance model and collect a Report."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from cosim.report import Report
from hwmodels.estimate import estimate_ops
from hwmodels.roofline import _cached_hw_table, _format_columns, bound_index, evaluate, template_formats, template_table
from hwmodels.roofline_compiled import compiled_totals
from hwmodels.levels import priced_level, summarize_levels
from hwmodels.spec import HardwareError, HardwareSpec, load_hw
from hwmodels.system import SystemSpec, list_systems, load_system
from workloads.ops import COLLECTIVE_KINDS
from workloads.trace import Trace

__all__ = ["simulate", "PricingInputs"]


@dataclass(frozen=True)
class PricingInputs:
    """What priced a report besides model, hardware, level, shape and formats (kept in its JSON `totals.inputs`):
    the trace's attention form, the attention backend(s) the level priced and who chose them (an implementation
    profile, or the device calibration's default), compute fallback and communication overlap."""
    attention: str
    attention_backend: str | None  # None: the level has no backend choice (roofline, cycle)
    backend_chosen_by: str | None  # "profile <name>" | "the calibration's default"
    profile: str | None
    compute_fallback: bool
    overlap: float | None  # a system run's hidden share of each collective; None on one device


def _resolve(hw):
    """A HardwareSpec, or a SystemSpec for a system name/path (cosim/configs/systems)."""
    if isinstance(hw, (HardwareSpec, SystemSpec)):
        return hw
    if isinstance(hw, str) and hw in _DEVICE_NAMES:  # resolved to one device before: skip the system scan
        return load_hw(hw)
    if isinstance(hw, str) and (hw in list_systems() or _is_system_file(hw)):
        return load_system(hw)
    spec = load_hw(hw)
    if isinstance(hw, str) and len(_DEVICE_NAMES) < 256:
        _DEVICE_NAMES.add(hw)
    return spec


_DEVICE_NAMES: set = set()  # names/paths that resolved to a device (not a system)


def _is_system_file(text: str) -> bool:
    """A user's YAML that describes a system (it has devices_per_node), not one device."""
    from pathlib import Path

    from workloads.io import InputError, load_yaml_file

    path = Path(text).expanduser()
    if path.suffix not in (".yaml", ".yml") or not path.is_file():
        return False
    try:
        doc = load_yaml_file(path, "system")
    except InputError:
        return False  # the hardware loader will report what is wrong with it
    return isinstance(doc, dict) and "devices_per_node" in doc


def simulate(trace: Trace, hw: HardwareSpec | SystemSpec | str, level: str = "roofline",
             compute_fallback: bool = False, overlap: float = 0.0) -> Report:
    """Cost every op of `trace` on `hw` at `level` and return a Report.

    `hw` may be one device or a system (`cosim.load_system`); a trace with collectives
    (a parallel trace) needs a system. `overlap` in [0, 1] hides that share of each
    collective behind the compute op before it (never more than that op's time); 0 (the
    default) runs communication and compute back to back.
    `compute_fallback=True` lets ops whose compute format the hardware lacks run at
    the peak of the nearest wider format; each such op is listed in `Report.notes`.
    """
    hw = _resolve(hw)
    if not 0.0 <= overlap <= 1.0:
        raise HardwareError(f"simulate: overlap: got {overlap!r}; expected a fraction in [0, 1]")
    system = hw if isinstance(hw, SystemSpec) else None
    fast = trace.__dict__.get("_numbers") if (level == "roofline" and system is None) else None
    if fast is not None:  # a traced template's numbers (no collectives): price them without building ops
        return _simulate_template(trace, hw, fast[0], fast[1], compute_fallback)
    if system is None:
        comm = [op.name for op in trace.ops if op.kind in COLLECTIVE_KINDS]
        if comm:
            raise HardwareError(f"simulate: the trace has collectives ({', '.join(comm[:4])}) that need a "
                                f"system's links; pass a system (cosim.load_system, e.g. 'dgx_h100'), "
                                f"not the single device {hw.name!r}")
        costs, notes = estimate_ops(trace.ops, hw, level, compute_fallback)
    else:
        from hwmodels.collectives import estimate_system_ops

        _check_layout_fits(trace, system)
        costs, notes = estimate_system_ops(trace.ops, system, level, compute_fallback)
        hw = system.device
    total_lat = sum(c.latency_s * op.repeat for op, c in zip(trace.ops, costs)) or 1.0
    rows = [_row(op, c, trace.phase, level, total_lat) for op, c in zip(trace.ops, costs)]
    meta = {}
    if system is not None:
        _overlap(rows, overlap)
        meta = {"system": system.name, "devices_in_system": system.devices, "overlap": overlap}
        if "parallel" in trace.meta:
            from cosim.parallel_timing import device_static_power_w, pipeline_timing

            meta["parallel"] = {**trace.meta["parallel"], **pipeline_timing(rows, trace.meta["parallel"]).to_dict(),
                                "static_power_w": device_static_power_w(trace.ops, costs, hw)}
    notes = (tuple(notes) + _eager_host(trace, costs, hw, level, meta, system) + hw.notes + _energy_notes(rows, hw)
             + _collective_bytes_note(rows) + _profile_off_gpu(trace, hw))
    used = summarize_levels(r["level"] for r in rows)
    if used != level:  # never silent: the report names the level that ran, and says so
        notes = tuple(notes) + (f"level {level} requested; the ops were priced at level {used} "
                                f"(per-op `level` and `provenance` columns)",)
    meta_prov = tuple(dict.fromkeys(r["provenance"] for r in rows))
    if trace.meta.get("implementation"):
        meta["implementation"] = _implementation_on(trace.meta, hw)
    meta["inputs"] = asdict(_pricing_inputs(trace, rows, compute_fallback, overlap if system is not None else None))
    rep = Report(model=trace.model, hw=system.name if system else hw.name, level=used, phase=trace.phase,
                 batch=trace.batch, seq=trace.seq, rows=rows, footprint=dict(trace.meta.get("footprint", {})),
                 capacity_bytes=hw.main_memory.capacity_bytes,
                 notes=tuple(dict.fromkeys([*trace.meta.get("notes", ()), *recipe_notes(trace.meta), *notes])),
                 recipe=trace.recipe, meta={"formats": trace.meta.get("formats", {}), **_format_detail(trace.meta),
                                            "recipe_effects": trace.meta.get("recipe_effects", {}),
                                            "level_requested": level, "priced_from": list(meta_prov), **meta,
                                            **_prompt_meta(trace.meta),
                                            **({"energy_scope": hw.energy_scope} if hw.energy_scope else {})})
    if "step_latency_s" in meta.get("parallel", {}):
        _keep_layout_step(rep)
    return rep


def _row(op, c, phase: str, level: str, total_lat: float) -> dict:
    """One op's result row: its cost times its repeat, the level that priced it and from what."""
    lat = c.latency_s * op.repeat
    # an op priced as several kernels (a profile's eager attention at a level without a kernel-library
    # model, hwmodels.estimate) shows the FLOPs and bytes of the kernels that priced it
    flops, nbytes = c.details.get("kernel_flops", op.flops), c.details.get("kernel_bytes", op.bytes)
    row = {"op": op.name, "kind": op.kind, "phase": op.phase or phase, "group": op.group,
           "repeat": op.repeat, "compute_fmt": c.details.get("compute_fmt", op.compute_fmt),
           "flops": flops * op.repeat, "bytes": nbytes * op.repeat,
           "intensity": flops / nbytes if nbytes else math.inf, "bound": c.bound,
           "latency_s": lat, "energy_j": c.energy_j * op.repeat, "utilization": c.utilization,
           "share": lat / total_lat, "provenance": c.provenance, "level": priced_level(c, level)}
    for lvl, b in c.bytes_by_level.items():
        row[f"bytes_{lvl}"] = b * op.repeat
    for comp, e in c.energy_breakdown.items():
        row[f"energy_{comp}_j"] = e * op.repeat
    for key in ("algorithm", "link", "ranks", "message_bytes", "busbw_Bps", "attention_backend"):
        if key in c.details:
            row[key] = c.details[key]
    return row


def _eager_host(trace: Trace, costs: list, hw: HardwareSpec, level: str, meta: dict, system) -> tuple:
    """Never silent: an analytical GPU pass run without CUDA graphs (no profile is a plain HF model: eager) is GPU
    time; its note says so (as a sweep row's does) and meta["eager_host"] holds the step launched eagerly
    (cosim.eager_host) at the calibration's host time per kernel. () for any other pass."""
    from cosim.eager_host import GPU_TIME_NOTE, calibrated_cpu_per_kernel, eager_host_step, gpu_time_note

    if system is not None or gpu_time_note(trace, level, hw) is None:
        return ()
    cpu = calibrated_cpu_per_kernel(hw, level)
    if cpu is not None:
        meta["eager_host"] = asdict(eager_host_step(trace.ops, costs, cpu))
    return (GPU_TIME_NOTE,)


def _profile_off_gpu(trace: Trace, hw: HardwareSpec) -> tuple:
    """A profile names a GPU software stack: on other hardware only its trace rewrites (fused GEMMs, RoPE and norms;
    eager attention's kernels) mean anything, which a reader of "CUDA graphs on" must be told."""
    if not trace.meta.get("profile") or hw.kind == "gpu":
        return ()
    return (f"profile {trace.meta['profile']} describes a GPU software stack: on {hw.name} ({hw.kind}) its fused "
            f"ops and attention form are priced; its CUDA graphs setting does not apply",)


def _implementation_on(trace_meta: dict, hw: HardwareSpec) -> str:
    """The profile as the header names it on `hw`: off a GPU its CUDA graphs setting does not apply (the header said
    "CUDA graphs on" beside a note saying so). A trace saved before the profile's fields were kept: its text."""
    if hw.kind == "gpu" or "profile_fields" not in trace_meta:
        return trace_meta["implementation"]
    from workloads.profiles import ImplProfile
    return ImplProfile(**trace_meta["profile_fields"]).describe(hw.kind)


def _format_detail(trace_meta: dict) -> dict:
    """The trace's format_detail (which stored tensors a recipe keeps in which format), for the report's meta."""
    return {"format_detail": trace_meta["format_detail"]} if trace_meta.get("format_detail") else {}


def _pricing_inputs(trace: Trace, rows: list, compute_fallback: bool, overlap) -> PricingInputs:
    from workloads.profiles import backend_chosen_by
    backends = sorted({r["attention_backend"] for r in rows if r.get("attention_backend")})
    profile = trace.meta.get("profile")
    return PricingInputs(attention=trace.meta.get("attention", "fused"),
                         attention_backend=", ".join(backends) or None,
                         backend_chosen_by=backend_chosen_by(profile) if backends else None,
                         profile=profile, compute_fallback=compute_fallback, overlap=overlap)


def _check_layout_fits(trace: Trace, system: SystemSpec) -> None:
    """Before a link error that names neither the layout nor the device count."""
    par = trace.meta.get("parallel") or {}
    if par.get("devices", 1) > system.devices:
        raise HardwareError(f"parallel: layout {par.get('label')} needs {par['devices']} devices; system "
                            f"{system.name} has {system.devices} (override 'nodes' for a larger cluster)")


def _keep_layout_step(rep: Report) -> None:
    """The totals are one device's trace: keep the layout's step (what plan and sweeps use) too."""
    from cosim.parallel_timing import layout_step
    st = layout_step(rep)
    rep.meta["parallel"].update(tokens_per_step=st["tokens"], layout_tokens_per_s=st["tokens_per_s"],
                                system_energy_j=st["energy_j"], system_energy_per_token_j=st["energy_per_token_j"])


def _collective_bytes_note(rows: list) -> tuple:
    """What a collective row's `bytes` counts (device memory traffic, as for every op), beside its message and link
    bytes, so a reader never takes the 2 x message of an all-reduce for the transfer."""
    comm = [r for r in rows if r["kind"] in COLLECTIVE_KINDS and "message_bytes" in r]
    if not comm:
        return ()
    r = comm[0]
    return (f"collective rows: `bytes` is device-memory traffic like every op's (input read + output written: "
            f"{r['op']} {r['bytes'] / r['repeat']:,.0f} B per instance for a {r['message_bytes']:,.0f} B message), "
            f"not link traffic; `message_bytes` is the message (nccl-tests size) and `bytes_link_<link>` the bytes "
            f"each rank sends on that link",)


def _energy_notes(rows, hw: HardwareSpec) -> tuple:
    """Why a device op's energy is n/a (collectives say so themselves)."""
    nan_rows = [r for r in rows if r["energy_j"] != r["energy_j"] and r["kind"] not in COLLECTIVE_KINDS]
    if nan_rows:
        return tuple(energy_gaps(hw, [r["op"] for r in nan_rows], [r["compute_fmt"] for r in nan_rows]))
    return tuple(static_energy_note(hw))


def static_energy_note(hw: HardwareSpec) -> list:
    """The note a device with no `energy.static_power` puts on every report: its static energy is
    unknown (never a silent 0 W), so each energy figure is the dynamic part only, labelled so."""
    scope = hw.energy_scope
    if not scope:
        return []
    return [f"energy is {scope}: the file gives no energy.static_power, so static energy is unknown "
            f"(NaN where a static column is shown), not zero; every energy total and J/token here excludes it"]


def energy_gaps(hw: HardwareSpec, names, fmts) -> list:
    """Why an energy is n/a: the compute formats the spec has no energy per FLOP for (and the
    ops that use them), and memory levels with no energy per byte. A NaN is never a silent zero,
    and never unexplained either."""
    miss = {}
    for n, f in zip(names, fmts):
        if f not in hw.energy_per_flop_j:
            miss.setdefault(f, []).append(n)
    out = [f"energy unknown (n/a) for ops computing in {f} ({', '.join(dict.fromkeys(ops[:4]))}"
           f"{', ...' if len(set(ops)) > 4 else ''}): {hw.name} gives no energy.per_flop.{f}" for f, ops in miss.items()]
    out += [f"energy unknown (n/a) for traffic at memory level {m.name}: {hw.name} gives no energy for it"
            for m in hw.memory if m.energy_per_byte_j is None]
    return out + static_energy_note(hw)


def _prompt_meta(meta) -> dict:
    """A decode step's prompt share where the trace was given one (build_trace's prompt_len), for the report's meta."""
    return {"prompt_len": meta["prompt_len"]} if meta.get("prompt_len") else {}


def recipe_notes(meta) -> list:
    """A recipe's own remarks on what it did (e.g. "natively MLA; trace unchanged"; what a recipe compressing the
    prompt alone kept of a decode step's tokens; H2O's score state outside the footprint; a KV format given beside a
    method storing the cache its own way), each `note*` entry of its effects, as report notes."""
    return [f"recipe {name}: {v}" for name, e in (meta.get("recipe_effects") or {}).items() if isinstance(e, dict)
            for key, v in sorted(e.items(), key=lambda kv: kv[0] != "note")
            if (key == "note" or key.startswith("note_")) and isinstance(v, str) and v]


def _overlap(rows: list, frac: float) -> None:
    """Hide `frac` of each collective behind the compute op just before it (at most that op's
    time); the full transfer time stays in `comm_latency_s`. The hidden part's static energy is
    the compute op's (it runs then): the collective keeps static power x its visible time only."""
    prev = 0.0
    for r in rows:
        if r["kind"] in COLLECTIVE_KINDS:
            r["comm_latency_s"] = r["latency_s"]
            r["hidden_s"] = min(frac * r["latency_s"], frac * prev)
            static = r.get("energy_static_j", math.nan)
            if r["hidden_s"] and r["latency_s"] > 0 and static == static:
                cut = static * r["hidden_s"] / r["latency_s"]
                r["energy_static_j"] -= cut
                r["energy_j"] -= cut
            r["latency_s"] -= r["hidden_s"]
        else:
            prev = r["latency_s"]


def _report_fields(trace: Trace, hw: HardwareSpec, notes, compute_fallback: bool = False) -> dict:
    meta = trace.meta
    notes = [*meta.get("notes", ()), *recipe_notes(meta), *(notes or ())]  # the trace's own (e.g. beyond max context) first
    return {"footprint": dict(meta.get("footprint", {})), "capacity_bytes": hw.memory[0].capacity_bytes,
            "notes": tuple(dict.fromkeys(notes)), "recipe": trace.recipe,
            "meta": {"formats": meta.get("formats", {}), **_format_detail(meta),
                     "recipe_effects": meta.get("recipe_effects", {}),
                     "level_requested": "roofline", "priced_from": ["speed-of-light"],
                     **({"energy_scope": hw.energy_scope} if hw.energy_scope else {}),
                     **({"implementation": meta["implementation"]} if meta.get("implementation") else {}),
                     **_prompt_meta(meta),
                     "inputs": asdict(_pricing_inputs(trace, (), compute_fallback, None))}}


def _simulate_template(trace: Trace, hw: HardwareSpec, tmpl, nums, compute_fallback: bool) -> Report:
    """The roofline rows of `simulate`, column-wise from the template's numbers: the same
    arithmetic on the same values as the per-op path (tests compare them exactly).
    Totals come from the roofline compiled for this (template, spec)
    (hwmodels.roofline_compiled); the other columns, and the rows, only when asked for."""
    key = (id(tmpl), id(hw), compute_fallback)
    hit = _PLANS.get(key)
    if hit is None or hit[0] is not tmpl or hit[1] is not hw:
        # first use of this (template, spec): numpy; compiling (~1 ms) pays off from the
        # second use on, and a sweep's one-off variant specs never pay for it
        _, _, fmts, notes, _ = template_formats(tmpl, hw, compute_fallback)
        notes = tuple(notes) + hw.notes + tuple(energy_gaps(hw, tmpl.names, fmts))
        h = _cached_hw_table(hw, single=True)
        if len(_PLANS) > 4096:
            _PLANS.clear()
        hit = _PLANS[key] = (tmpl, hw, None, notes, h, fmts)
    elif hit[2] is None:
        h = hit[4]
        hit = _PLANS[key] = (tmpl, hw, compiled_totals(tmpl, _format_columns(hit[5], h.formats), h) or False,
                             hit[3], h, hit[5])
    _, _, fn, notes, h, _ = hit
    try:
        eager = dict(zip(("latency_s", "energy_j", "flops", "bytes"), fn(nums))) if fn else None
    except ZeroDivisionError:  # a zero-sized operand: numpy's inf/nan semantics below
        eager = None
    if eager is None:
        eager = _numpy_columns(trace, tmpl, nums, hw, h, compute_fallback, None)
    return Report.from_columns(eager, lambda: _numpy_columns(trace, tmpl, nums, hw, h, compute_fallback, eager),
                               model=trace.model, hw=hw.name, level="roofline", phase=trace.phase,
                               batch=trace.batch, seq=trace.seq, **_report_fields(trace, hw, notes, compute_fallback))


# (template, spec, fallback) -> (template, spec, compiled roofline or None, notes, one-variant
# HwTable); keyed on ids with the objects kept beside them, so an id is never reused while cached
_PLANS: dict = {}


def _numpy_columns(trace, tmpl, nums, hw, h, compute_fallback, eager) -> dict:
    """Every report column through hwmodels.roofline.evaluate (`eager` None: only the
    four the totals need)."""
    t = template_table(tmpl, tmpl.split(np.array(nums, dtype=float)), hw, compute_fallback)
    r = evaluate(t, h, bound=False)
    lat = r["latency_s"] * t.repeat
    totals = {"latency_s": lat.tolist(), "energy_j": (r["energy_j"] * t.repeat).tolist(),
              "flops": (t.flops * t.repeat).tolist(), "bytes": (t.bytes * t.repeat).tolist()}
    if eager is None:
        return totals
    lat_op = r["latency_s"]
    total_lat = sum(totals["latency_s"]) or 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        util = np.where(lat_op > 0, t.flops / r["peak"] / lat_op, 0.0)
        intensity = np.where(t.bytes != 0, t.flops / t.bytes, math.inf)
    names = ("compute",) + h.levels
    cols = {"op": tmpl.names, "kind": tmpl.kinds, "phase": tuple(p or trace.phase for p in tmpl.phases),
            "group": tmpl.groups, "repeat": tmpl.repeat, "compute_fmt": t.fmt,
            "flops": eager["flops"], "bytes": eager["bytes"], "intensity": intensity.tolist(),
            "bound": [names[b + 1] for b in bound_index(r).tolist()],
            "latency_s": eager["latency_s"], "energy_j": eager["energy_j"], "utilization": util.tolist(),
            "share": (lat / total_lat).tolist(), "provenance": ("speed-of-light",) * len(lat),
            "level": ("roofline",) * len(lat)}
    for j, lvl in enumerate(h.levels):
        cols[f"bytes_{lvl}"] = (r["traffic"][:, j] * t.repeat).tolist()
    return cols
