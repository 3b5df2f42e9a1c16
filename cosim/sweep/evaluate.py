"""Evaluating sweep points: one task = a list of fully-resolved configurations.

Roofline-level points that differ only in vectorisable hardware numbers (peaks per
format, bandwidth / capacity / energy per memory level, energy per FLOP, static power)
share one trace and one op table and are evaluated as rows of one array
(`hwmodels.roofline.hw_table_variants` + `evaluate`): thousands of points cost about
what one costs. Every other point (other levels, structural overrides such as the
clock or an array size) runs the full `cosim.simulate` path. Each point's result depends
only on its own configuration — never on which other points share its task — so local,
Dask and resumed runs give identical numbers.

This module is what a worker imports: plain data in, plain data out.
"""

from __future__ import annotations

import json
import math
import time

import numpy as np

__all__ = ["evaluate_task", "group_key", "vector_field", "METRIC_NAMES"]

METRIC_NAMES = ("latency_s", "energy_j", "tokens_per_s", "energy_per_token_j", "memory_bytes",
                "capacity_bytes", "fits_in_memory", "sqnr_db", "area_mm2")
_MEMORY_FIELDS = ("bandwidth", "capacity", "energy")


def vector_field(key: str, level_names, formats) -> bool:
    """Can this hardware override vary along the rows of one HwTable?"""
    p = key.split(".")
    if p[0] == "compute" and len(p) == 2:
        return p[1] in formats
    if p[0] == "memory" and len(p) == 3:
        return p[1] in level_names and p[2] in _MEMORY_FIELDS
    if p[:2] == ["energy", "per_flop"] and len(p) == 3:
        return p[2] in formats
    return key == "energy.static_power"


def _hw_shape(name: str):
    """(level names, formats) of a hardware file, without building variants."""
    from hwmodels.spec import load_hw
    hw = load_hw(name)
    return tuple(m.name for m in hw.memory), tuple(sorted(hw.peak_flops))


def group_key(cfg: dict, shapes: dict) -> str:
    """Configurations with one group key share a trace and a base spec: at the roofline
    level they differ only in vectorisable overrides; otherwise the key is the config."""
    if cfg["level"] != "roofline":
        return json.dumps(cfg, sort_keys=True, default=str)
    levels, formats = shapes[cfg["hw"]["name"]]
    fixed = {k: v for k, v in cfg["hw"]["overrides"].items() if not vector_field(k, levels, formats)}
    rest = {**cfg, "hw": {"name": cfg["hw"]["name"], "overrides": fixed}}
    return json.dumps(rest, sort_keys=True, default=str)


def _accuracy(cfg: dict, trace, cache: dict):
    acc = cfg.get("accuracy")
    if not acc:
        return math.nan
    key = json.dumps({k: cfg[k] for k in ("model", "phase", "batch", "seq", "weights", "acts", "kv",
                                          "recipe", "attention", "accuracy")}, sort_keys=True, default=str)
    if key not in cache:
        from cosim.layer_accuracy import trace_accuracy
        res = trace_accuracy(trace, layers=acc["layers"], rows=acc["rows"], tokens=acc["tokens"], seed=acc["seed"],
                             checkpoint=None if acc["source"] == "synthetic" else acc["source"])
        cache[key] = min(res.by_op.values()) if res.by_op else math.nan
    return cache[key]


def _trace(cfg: dict, cache: dict):
    import cosim
    key = json.dumps({k: cfg[k] for k in ("model", "phase", "batch", "seq", "weights", "acts", "kv", "recipe",
                                          "attention")}, sort_keys=True, default=str)
    if key not in cache:
        cache[key] = cosim.build_trace(cfg["model"], phase=cfg["phase"], batch=cfg["batch"], seq=cfg["seq"],
                                       weights=cfg["weights"], acts=cfg["acts"], kv=cfg["kv"],
                                       recipe=cfg["recipe"], attention=cfg["attention"])
    return cache[key]


def _tokens(cfg) -> int:
    return cfg["batch"] * (cfg["seq"] if cfg["phase"] == "prefill" else 1)


def _record(item, metrics=None, error=None, elapsed=0.0) -> dict:
    return {"key": item["key"], "version": item["version"], "index": item["index"], "point": item["point"],
            "config": item["config"], "metrics": metrics or {m: None for m in METRIC_NAMES},
            "status": "error" if error else "ok", "error": error, "elapsed_s": elapsed}


def evaluate_task(items: list) -> list:
    """Evaluate a task's items ({key, version, index, point, config}); one record each.
    A point that cannot be evaluated (format the hardware lacks, no memory for it…)
    gets status "error" with the message, so the sweep goes on and the store says why."""
    from hwmodels.spec import load_hw
    from workloads.io import InputError

    caches = {"trace": {}, "acc": {}, "shape": {}}
    for it in items:
        name = it["config"]["hw"]["name"]
        if name not in caches["shape"]:
            caches["shape"][name] = _hw_shape(name)
    groups = {}
    for it in items:
        groups.setdefault(group_key(it["config"], caches["shape"]), []).append(it)
    out = []
    for members in groups.values():
        t0 = time.perf_counter()
        try:
            if members[0]["config"]["level"] == "roofline":
                metrics = _roofline_batch(members, caches, load_hw)
            else:
                metrics = [_full_model(it["config"], caches, load_hw) for it in members]
        except (InputError, ValueError, KeyError) as e:
            if len(members) > 1:  # find out which points fail: evaluate them one by one
                for it in members:
                    out += evaluate_task([it])
                continue
            out.append(_record(members[0], error=f"{type(e).__name__}: {e}"))
            continue
        dt = (time.perf_counter() - t0) / len(members)
        out += [_record(it, m, elapsed=dt) for it, m in zip(members, metrics)]
    return out


def _roofline_batch(members, caches, load_hw) -> list:
    from hwmodels.roofline import evaluate, hw_table_variants, op_table

    cfg0 = members[0]["config"]
    levels, formats = caches["shape"][cfg0["hw"]["name"]]
    fixed = {k: v for k, v in cfg0["hw"]["overrides"].items() if not vector_field(k, levels, formats)}
    base = load_hw(cfg0["hw"]["name"], overrides=fixed or None)
    trace = _trace(cfg0, caches["trace"])
    t = op_table(trace.ops, base, cfg0["compute_fallback"])
    vkeys = sorted({k for it in members for k in it["config"]["hw"]["overrides"] if vector_field(k, levels, formats)})
    defaults = _base_values(base, vkeys)
    arrays = {k: np.array([float(it["config"]["hw"]["overrides"].get(k, defaults[k])) for it in members])
              for k in vkeys}
    h = hw_table_variants(base, arrays)
    r = evaluate(t, h)
    # row-wise sums: each point's total depends on its own row only
    lat = (r["latency_s"] * t.repeat[None, :]).sum(axis=1)
    en = (r["energy_j"] * t.repeat[None, :]).sum(axis=1)
    cap_key = f"memory.{levels[0]}.capacity"
    cap = arrays.get(cap_key, np.full(len(members), base.memory[0].capacity_bytes))
    mem = float(sum(trace.meta.get("footprint", {}).values()))
    tokens = _tokens(cfg0)
    sq = _accuracy(cfg0, trace, caches["acc"])
    return [{"latency_s": float(lat[i]), "energy_j": float(en[i]), "tokens_per_s": tokens / float(lat[i]),
             "energy_per_token_j": float(en[i]) / tokens, "memory_bytes": mem, "capacity_bytes": float(cap[i]),
             "fits_in_memory": bool(mem <= cap[i]), "sqnr_db": sq, "area_mm2": None}
            for i in range(len(members))]


def _base_values(base, keys) -> dict:
    out = {}
    for k in keys:
        p = k.split(".")
        if p[0] == "compute":
            out[k] = base.peak_flops[p[1]]
        elif p[0] == "memory":
            lvl = base.level(p[1])
            v = {"bandwidth": lvl.bandwidth_Bps, "capacity": lvl.capacity_bytes, "energy": lvl.energy_per_byte_j}[p[2]]
            out[k] = math.nan if v is None else v
        elif p[:2] == ["energy", "per_flop"]:
            out[k] = base.energy_per_flop_j.get(p[2], math.nan)
        else:
            out[k] = base.static_power_w or 0.0
    return out


def _full_model(cfg, caches, load_hw) -> dict:
    import cosim
    from cosim.experiment import hardware_area_mm2

    hw = load_hw(cfg["hw"]["name"], overrides=cfg["hw"]["overrides"] or None)
    trace = _trace(cfg, caches["trace"])
    rep = cosim.simulate(trace, hw, level=cfg["level"], compute_fallback=cfg["compute_fallback"])
    lat = float(sum(r["latency_s"] for r in rep.rows))
    en = float(sum(r["energy_j"] for r in rep.rows))
    tokens = _tokens(cfg)
    return {"latency_s": lat, "energy_j": en, "tokens_per_s": tokens / lat, "energy_per_token_j": en / tokens,
            "memory_bytes": rep.memory_bytes, "capacity_bytes": rep.capacity_bytes,
            "fits_in_memory": rep.fits_in_memory, "sqnr_db": _accuracy(cfg, trace, caches["acc"]),
            "area_mm2": hardware_area_mm2(trace, hw, cfg["level"], cfg["compute_fallback"])}
