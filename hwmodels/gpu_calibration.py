"""Calibration file <-> SI parameters of hwmodels.gpu (written by cosim/calibrate/fit.py).

The file (cosim/configs/hw/calibration/<hw>.yaml, merged by the hardware loader into
``sections["analytical"]``) keeps every dimensional value as text with its unit, like the
hardware YAML, plus the provenance of the fit:

    provenance: {device: ..., date: ..., software: ..., measurements: ..., fit: ...}
    structure: {sm_count: 132, l2: 50 MiB}
    params:
      gemm: {bw: 2.91 TB/s, floor: 5.2 us, mma_eff: {bf16: 0.79, ...}, ...}
"""

from __future__ import annotations

import re

from hwmodels.gpu_params import (ATTN_BACKENDS, OPTIONAL_PARAMS, PARAMS, SOFTMAX_PATH_KEYS, STREAM_SPEEDUP_MAX,
                                 SWITCH_PARAMS, GpuParams)
from hwmodels.spec import HardwareError
from hwmodels.units import parse_quantity

__all__ = ["parse_section", "to_section", "pretty"]

_PREFIX = {"bandwidth": [(1e12, "TB/s"), (1e9, "GB/s")],
           "time": [(1.0, "s"), (1e-3, "ms"), (1e-6, "us"), (1e-9, "ns")],
           "power": [(1.0, "W")],
           "energy_per_byte": [(1e-12, "pJ/B")],
           "energy_per_flop": [(1e-12, "pJ")],
           "bytes": [(2 ** 20, "MiB")]}


def pretty(value: float, kind: str | None) -> object:
    """SI value -> compact text with a unit that hwmodels.units reads back (4 significant digits)."""
    if kind is None:
        return float(f"{value:.5g}")
    for scale, unit in _PREFIX[kind]:
        if abs(value) >= scale or scale == _PREFIX[kind][-1][0]:
            return f"{value / scale:.5g} {unit}"
    raise AssertionError(kind)


def _get(tree: dict, dotted: str):
    node = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _put(tree: dict, dotted: str, value) -> None:
    parts = dotted.split(".")
    node = tree
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


ROUND13_SETS = (SOFTMAX_PATH_KEYS, ("ew.rmsnorm.reread", "ew.rmsnorm.reread_cols"))


def parse_section(sec: dict, source: str) -> GpuParams:
    """The analytical section of a hardware spec -> GpuParams; every problem names the field."""
    src = f"{source} (analytical calibration)"
    if not isinstance(sec, dict) or not isinstance(sec.get("params"), dict):
        raise HardwareError(f"{src}: params: missing; expected a mapping of calibrated parameters")
    values, missing = {}, []
    for name, (kind, _what) in PARAMS.items():
        raw = _get(sec["params"], name)
        if raw is None:
            missing.append(name)
            continue
        field = f"analytical.params.{name}"
        if kind is None:
            if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not raw > 0:
                raise HardwareError(f"{src}: {field}: got {raw!r}; expected a positive number")
            values[name] = float(raw)
        else:
            values[name] = parse_quantity(raw, kind, src, field)
    for name, (kind, _what) in OPTIONAL_PARAMS.items():  # per-backend sets: all or none
        raw = _get(sec["params"], name)
        if raw is None:
            continue
        field = f"analytical.params.{name}"
        if name in SWITCH_PARAMS:
            if isinstance(raw, bool) or not isinstance(raw, (int, float)) or raw not in (0, 1):
                raise HardwareError(f"{src}: {field}: got {raw!r}; expected 0 (off) or 1 (on)")
            values[name] = float(raw)
        elif kind is None:
            if isinstance(raw, bool) or not isinstance(raw, (int, float)):
                raise HardwareError(f"{src}: {field}: got {raw!r}; expected a number")
            values[name] = float(raw)
        else:
            values[name] = parse_quantity(raw, kind, src, field)
    if missing:
        raise HardwareError(f"{src}: params: missing {', '.join(missing)}; expected every parameter of "
                            f"hwmodels.gpu.PARAMS (re-run cosim calibrate / fit)")
    for group in ROUND13_SETS:  # round 13's terms price only as whole sets (a part would be a KeyError deep inside)
        got = [k for k in group if k in values]
        if got and len(got) < len(group):
            lacking = [k for k in group if k not in values]
            raise HardwareError(f"{src}: analytical.params.{lacking[0]}: missing; expected all of {', '.join(group)} "
                                f"together (present: {', '.join(got)}), or none")
    speedup = values.get("launch.stream_speedup")
    if speedup is not None and not 0.0 <= speedup < STREAM_SPEEDUP_MAX:
        raise HardwareError(f"{src}: analytical.params.launch.stream_speedup: got {speedup!r}; expected a fraction in "
                            f"[0, {STREAM_SPEEDUP_MAX}) (round 14's in-stream speedup)")
    st = sec.get("structure") or {}
    sms = st.get("sm_count")
    if isinstance(sms, bool) or not isinstance(sms, int) or sms < 1:
        raise HardwareError(f"{src}: analytical.structure.sm_count: got {sms!r}; expected a positive integer")
    l2 = parse_quantity(st.get("l2"), "bytes", src, "analytical.structure.l2")
    prov = sec.get("provenance") or {}
    if not isinstance(prov, dict) or not prov.get("device") or not prov.get("date"):
        raise HardwareError(f"{src}: analytical.provenance: got {prov!r}; expected device, date, software, "
                            f"measurements (a calibration without provenance is not accepted)")
    ref = st.get("memory_bandwidth")
    ref_bw = parse_quantity(ref, "bandwidth", src, "analytical.structure.memory_bandwidth") if ref is not None else None
    tag = f"calibrated:{prov.get('device')}, {prov.get('date')}, {prov.get('software', '?')}"
    if prov.get("note"):  # e.g. the bundled calibration stood in for a missing relative path
        tag += f"; {prov['note']}"
    default = st.get("attention_default", "fa2")
    if default not in ATTN_BACKENDS:
        raise HardwareError(f"{src}: analytical.structure.attention_default: got {default!r}; expected one of "
                            f"{ATTN_BACKENDS}")
    residuals = None
    if sec.get("residual_correction") is not None:
        from hwmodels.gpu_residuals import load
        residuals = load(sec["residual_correction"], source)
        tag += (f"; measured-residual correction ({', '.join(sorted(residuals.rules))}; "
                f"{sum(len(r) for _, r in residuals.groups.values())} fit rows, {residuals.source}")
        # whose choices these are (cosim.calibrate.residuals.rules_for), less the record's file name in parentheses:
        # a GPU with no selection of its own says "not validated on this GPU" in every op's provenance
        selection = re.sub(r" \([^()]*\)", "", str(sec["residual_correction"].get("selection") or "")).strip()
        tag += f"; {selection})" if selection else ")"
    return GpuParams(values=values, sm_count=sms, l2_bytes=l2, provenance=tag, reference_bandwidth=ref_bw,
                     attention_default=default, residuals=residuals)


def to_section(values: dict, sm_count: int, l2_bytes: float, provenance: dict, quality: dict | None = None,
               memory_bandwidth: float | None = None, attention_default: str | None = None) -> dict:
    params: dict = {}
    for name, (kind, _what) in PARAMS.items():
        _put(params, name, pretty(values[name], kind))
    for name, (kind, _what) in OPTIONAL_PARAMS.items():
        if name in values:
            _put(params, name, pretty(values[name], kind))
    out = {"model": "hwmodels.gpu analytical v1", "provenance": provenance,
           "structure": {"sm_count": int(sm_count), "l2": pretty(l2_bytes, "bytes")}, "params": params}
    if memory_bandwidth:
        out["structure"]["memory_bandwidth"] = pretty(memory_bandwidth, "bandwidth")
    if attention_default:
        out["structure"]["attention_default"] = attention_default
    if quality:
        out["fit_quality"] = quality
    return out
