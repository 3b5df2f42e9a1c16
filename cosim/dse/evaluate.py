"""Evaluating sweep tasks. A task is a batch of points that share one resolved
configuration except for numeric hardware overrides (a matrix, one row per point):

    {"version", "config", "fields": [override names], "values": (n, F) array,
     "keys": [...], "index": [...], "point": {...}}

At the roofline level, the vectorisable overrides (peaks per format, bandwidth /
capacity / energy per memory level, energy per FLOP, static power) become rows of one
`HwTable` (`hwmodels.roofline.hw_table_variants`) evaluated against one op table:
thousands of points cost about what one costs. Other numeric overrides (the clock, an
array size…) split the batch into sub-batches with their own base spec; other levels
run `cosim.simulate` per point. Each point's numbers depend only on its own row —
row-wise sums, no cross-row reductions — so local, Dask and resumed runs agree exactly.

Plain data in, plain data out: this is what a worker imports.
"""

from __future__ import annotations

import json
import math
import time
from functools import lru_cache

import numpy as np

from cosim.eager_host import gpu_time_note
from workloads.context import OPT_IN

__all__ = ["evaluate_task", "vector_field", "METRIC_NAMES", "override_value", "SERVE_METRICS",
           "SERVING_POINT_METRICS", "ACCURACY_METRICS", "CHECKPOINT_METRICS", "NOTES_SEP", "point_notes", "join_notes"]
# a point's `notes` column: its distinct notes (the trace's, a recipe's, the level's per-op fallbacks and
# warnings -- what simulate's report lists) joined by this separator (never silent in a sweep table)
NOTES_SEP = " | "

# The one list of each metric group (cosim.dse.spec refuses/describes them from these): a metric
# added here is a results column, priced by its group's code path and checked at load.
FORWARD_METRICS = ("latency_s", "energy_j", "tokens_per_s", "energy_per_token_j", "memory_bytes",
                   "capacity_bytes")
ACCURACY_METRICS = ("sqnr_db", "gemm_sqnr_db", "attention_sqnr_db")
CHECKPOINT_METRICS = ("perplexity", "perplexity_delta", "kl", "top1_agreement")
SERVE_METRICS = ("ttft_p99_s", "tpot_p99_s", "goodput_req_s", "throughput_tok_s", "slo_attainment",
                 "goodput_window_req_s", "throughput_window_tok_s")  # cosim.serving summary keys
SERVING_POINT_METRICS = FORWARD_METRICS + SERVE_METRICS  # what a point with `serve:` reports
METRIC_NAMES = (FORWARD_METRICS + ("fits_in_memory",) + ACCURACY_METRICS + ("area_mm2",)
                + CHECKPOINT_METRICS + SERVE_METRICS)
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


def override_value(key: str, v: float):
    """A stored float back to what the hardware loader expects: integral values of
    unit-less fields (an array's rows, a buffer count) as ints."""
    from cosim.experiment import _override_kind
    if _override_kind(key) is None and float(v).is_integer():
        return int(v)
    return float(v)


def _hw_shape(name: str, cache: dict):
    """(memory level names, formats, main memory name, has an accelerator: section) of a spec."""
    if name not in cache:
        from hwmodels.spec import load_hw
        hw = load_hw(name)
        cache[name] = (tuple(m.name for m in hw.memory), tuple(sorted(hw.peak_flops)), hw.memory[0].name,
                       "accelerator" in hw.sections and hw.kind in ("accelerator", "tpu"))
    return cache[name]


def _vector_fields(cfg: dict, fields, caches) -> list:
    """Indices of the fields that vary along the rows of one evaluation. At the cycle level
    on an accelerator these are the fields its vectorised model takes (array sizes, SRAM,
    clock, main memory: hwmodels.cycle_variants); elsewhere the roofline table's fields."""
    levels, formats, main, accel = _hw_shape(cfg["hw"]["name"], caches["shape"])
    if cfg["level"] == "cycle" and accel and not cfg.get("serve") and not cfg.get("system"):
        from hwmodels.cycle_variants import variant_field
        return [j for j, f in enumerate(fields) if variant_field(f, main)]
    vec = [j for j, f in enumerate(fields) if vector_field(f, levels, formats)]
    # a compute.<fmt> value is the peak at the file's clock and array, which load_hw scales (hwmodels.peak_scaling):
    # beside an override that moves them (a clock or array axis, or the base's), written over the group's already
    # scaled spec it would be taken unscaled, so each such point is loaded whole instead
    from hwmodels.peak_scaling import touches_peaks
    if touches_peaks([*cfg["hw"]["overrides"], *(f for j, f in enumerate(fields) if j not in vec)]):
        vec = [j for j in vec if not fields[j].startswith("compute.")]
    return vec


def _trace_key(cfg: dict) -> str:
    return json.dumps({k: cfg.get(k) for k in ("model", "phase", "batch", "seq", "weights", "acts", "kv", "recipe",
                                               "attention", "profile", "parallel", "system", OPT_IN, "prompt_len")},
                      sort_keys=True,
                      default=str)


def _trace(cfg: dict, cache: dict):
    from workloads.builder import build_trace  # the module, not `cosim`: no cosim <-> dse import cycle
    key = _trace_key(cfg)
    if key not in cache:
        par = (cfg.get("parallel") or {}) if cfg.get("system") else None
        cache[key] = build_trace(cfg["model"], phase=cfg["phase"], batch=cfg["batch"], seq=cfg["seq"],
                                 weights=cfg["weights"], acts=cfg["acts"], kv=cfg["kv"],
                                 recipe=cfg["recipe"], attention=cfg["attention"], parallel=par,
                                 profile=cfg.get("profile"), allow_beyond_max_context=bool(cfg.get(OPT_IN)),
                                 prompt_len=cfg.get("prompt_len"))
    return cache[key]


def _accuracy(cfg: dict, trace) -> tuple[dict, tuple]:
    """(metrics, notes): output SQNR (dB) from the functional core: worst op, worst weight GEMM, worst
    attention op (nan without accuracy), and the real checkpoint's figures with what the accuracy run
    said of them (its warnings and notes, ACCURACY_NOTE-prefixed: the point's `notes` column carries them).
    It depends on the layer shapes and formats, not on the hardware or the batch (a
    fixed number of token rows is sampled), so it is memoised on exactly those."""
    if not cfg.get("accuracy"):
        return dict.fromkeys(ACCURACY_METRICS + CHECKPOINT_METRICS, math.nan), ()
    key = json.dumps({k: cfg[k] for k in ("model", "phase", "seq", "weights", "acts", "kv", "recipe", "attention",
                                          "accuracy")}, sort_keys=True, default=str)
    worst, synthetic_notes = _accuracy_for(key)
    out = dict(zip(ACCURACY_METRICS, worst))
    acc = cfg["accuracy"]
    ck_key = json.dumps({k: cfg[k] for k in ("weights", "acts", "kv", "recipe")} |
                        {k: acc.get(k) for k in ("checkpoint", "text", "tokens", "prefill")}, sort_keys=True)
    figures, notes = (_checkpoint_accuracy_for(ck_key) if acc.get("checkpoint")
                      else ((math.nan,) * len(CHECKPOINT_METRICS), ()))
    out.update(zip(CHECKPOINT_METRICS, figures))
    return out, synthetic_notes + notes


# a sweep row's notes from its real-checkpoint accuracy run: ACCURACY_WARNING for what `cosim run` prints as a
# WARNING beside the perplexity (too few predictions, a recipe that did not act), ACCURACY_NOTE for its other notes
ACCURACY_NOTE = "accuracy on {checkpoint}: "
ACCURACY_WARNING = "WARNING: accuracy on {checkpoint}: "
# where a sweep sets the checkpoint run's token count (a did-not-act / few-predictions line names it)
SWEEP_TOKENS = "the sweep's accuracy.tokens"


@lru_cache(maxsize=256)
def _checkpoint_accuracy_for(key: str) -> tuple:
    """((perplexity, its delta, KL, top-1 agreement), notes) on a real checkpoint (cosim.accuracy), run as
    `cosim run` runs the experiment's, through the same call (cosim.experiment.run_checkpoint: the embedding
    table and head follow `weights:`, no per-layer figures) and said as its report says it (checkpoint_run_notes: too few predictions,
    a recipe that did not act, then every other note, what its unquantized baseline is included): independent
    of the hardware, the batch and the priced model, so memoised on the formats, the recipe and the evaluation
    text only. A figure NaN without a note saying why gets a warning of its own."""
    from cosim.experiment import checkpoint_run_notes, run_checkpoint
    from cosim.experiment_config import AccuracyConfig
    c = json.loads(key)
    acc = AccuracyConfig(tokens=c["tokens"], checkpoint=c["checkpoint"], text=c["text"], prefill=c["prefill"])
    r = run_checkpoint(acc, c["weights"], c["acts"], c["kv"], c["recipe"], SWEEP_TOKENS)
    few, idle, notes = checkpoint_run_notes(r, acc, "the sweep")
    warn = few + idle
    nan = [f"{m} is NaN" for m, v in zip(CHECKPOINT_METRICS, _figures(r)) if v != v]
    if nan and not any("NaN" in n for n in notes):  # a NaN figure always says so, even without a note of its own
        warn.append(", ".join(nan) + " (the accuracy run gave no finite value)")
    w, n = ACCURACY_WARNING.format(checkpoint=r.checkpoint), ACCURACY_NOTE.format(checkpoint=r.checkpoint)
    return _figures(r), tuple([w + x for x in warn] + [n + x for x in notes if x not in warn])


def _figures(r) -> tuple:
    return r.perplexity, r.perplexity_delta, r.kl, r.top1_agreement


@lru_cache(maxsize=256)
def _accuracy_for(key: str) -> tuple:
    """((worst op, worst weight GEMM, worst attention op) output SQNR in dB, notes): a worst figure is NaN when
    any of its ops' is (as cosim run's 'worst: <op> NaN'; min() kept or dropped a NaN by its position), and each
    NaN op's reason is a WARNING note of the row."""
    from cosim.layer_accuracy import trace_accuracy
    c = json.loads(key)
    acc = c["accuracy"]
    trace = _trace({**c, "batch": 1}, {})
    res = trace_accuracy(trace, layers=acc["layers"], rows=acc["rows"], tokens=acc["tokens"], seed=acc["seed"],
                         checkpoint=None if acc["source"] == "synthetic" else acc["source"], model=c["model"])
    kinds = {op.name: op.kind for op in trace.ops}

    def worst(names):
        vals = [res.by_op[n] for n in names]
        return math.nan if not vals or any(v != v for v in vals) else min(vals)
    notes = tuple(f"WARNING: synthetic accuracy: {op} output SQNR is NaN ({why})"
                  for op, why in (res.status_by_op or {}).items() if why != "ok")
    return (worst(res.by_op), worst([n for n in res.by_op if kinds.get(n) == "gemm"]),
            worst([n for n in res.by_op if kinds.get(n) == "attention"])), notes


def point_notes(trace, level_notes=()) -> str | None:
    """The `notes` column of a point: the trace's notes (a vision tower left out, a checkpoint's weights
    format, a context beyond the model's), a recipe's remark, then the level's per-op notes (a format
    fallback, an op kind priced by another model's parameters...), distinct, in that order, joined by
    NOTES_SEP; None when there is none."""
    from cosim.simulate import recipe_notes
    return join_notes((*trace.meta.get("notes", ()), *recipe_notes(trace.meta), *level_notes))


def join_notes(notes) -> str | None:
    """A row's `notes` cell: each non-empty note once, in first-seen order, NOTES_SEP-joined (None: none)."""
    return NOTES_SEP.join(dict.fromkeys(n for n in notes if n)) or None


def _tokens(cfg) -> int:
    return cfg["batch"] * (cfg["seq"] if cfg["phase"] == "prefill" else 1)


def _guarded(status, errors, where, fn, *args):
    """fn(*args); a point error (bad input for this point) marks the rows `where` as errors
    with the message instead of stopping the sweep."""
    from workloads.io import InputError
    try:
        fn(*args)
    except (InputError, ValueError, KeyError) as e:
        status[where], errors[where] = "error", f"{type(e).__name__}: {e}"


def _fixed_subsets(V, fixed):
    """[(values of the fixed fields, rows)] of the task's points grouped by the fields that
    change the base spec (the rest vary inside one vectorised call)."""
    if not fixed:
        return [(np.empty(0), np.arange(len(V)))]
    uniq, inv = np.unique(V[:, fixed], axis=0, return_inverse=True)
    return [(uniq[s], np.flatnonzero(inv.ravel() == s)) for s in range(len(uniq))]


def _price_subset(cfg, base, used, fields, vec, V, rows, M, caches, status, errors):
    """Price the points `rows` (one base spec) with the level `used`: a serving run per
    point, the roofline's or the level's vectorised variants, or the full model per point."""
    vary = {fields[j]: V[rows, j] for j in vec}
    if cfg.get("serve"):  # a serving run per point (cosim.serving), any level
        for i in rows:
            _guarded(status, errors, i, lambda i=i: _serve_point(
                cfg, variant_spec(base, {fields[j]: float(V[i, j]) for j in vec}), i, M, caches))
        return
    if used == "roofline":
        _guarded(status, errors, rows, _roofline_rows, cfg, base, vary, rows, M, caches)
        return
    hook = _variants_hook(cfg["level"], base)
    if hook is not None:  # the level's model evaluates many variants at once
        _guarded(status, errors, rows, _hook_rows, hook, cfg, base, vary, rows, M, caches)
        return
    for i in rows:
        _guarded(status, errors, i, lambda i=i: _full_model(
            cfg, variant_spec(base, {fields[j]: float(V[i, j]) for j in vec}), i, M, caches))


def evaluate_task(task: dict) -> dict:
    """Evaluate one task; returns its batch record (see cosim.dse.store). A point that
    cannot be evaluated (a format the hardware lacks…) gets status "error" and the
    message, and the sweep goes on."""
    from workloads.io import InputError
    t0 = time.perf_counter()
    cfg = task["config"]
    fields = list(task["fields"])
    keys = list(task["keys"])
    n = len(keys)
    V = np.asarray(task["values"], dtype=float).reshape(n, len(fields))
    M = {m: np.full(n, np.nan) for m in METRIC_NAMES}
    M["fits_in_memory"] = np.zeros(n, dtype=bool)
    status = np.full(n, "ok", dtype=object)
    errors = np.array([None] * n, dtype=object)
    level_used = np.array([None] * n, dtype=object)
    provenance = np.array([None] * n, dtype=object)
    backend = np.array([None] * n, dtype=object)  # the attention backend(s) priced: simulate's inputs.attention_backend
    notes = np.array([None] * n, dtype=object)  # per point: point_notes (filled where it is priced)
    caches = {"shape": {}, "trace": {}, "notes": notes, "backend": backend}
    if cfg.get("system"):  # a multi-device point: one simulate per point on the system
        for i in range(n):
            _guarded(status, errors, i, _system_point, cfg, {fields[j]: float(V[i, j]) for j in range(len(fields))},
                     i, M, caches, (level_used, provenance, backend))
    vec = _vector_fields(cfg, fields, caches)
    fixed = [j for j in range(len(fields)) if j not in vec]
    for fixed_vals, rows in ([] if cfg.get("system") else _fixed_subsets(V, fixed)):
        extra = {fields[j]: override_value(fields[j], x) for j, x in zip(fixed, fixed_vals)}
        spec = []
        _guarded(status, errors, rows, lambda: spec.append(_base_spec(cfg, extra)))
        if not spec:
            continue
        base = spec[0]
        try:  # builds the trace: a point it refuses (e.g. seq beyond the model's context) is an error row
            used, prov, why, backend_text = _level_of(cfg, base, caches)
        except (InputError, ValueError, KeyError) as e:
            used, why = None, f"{type(e).__name__}: {e}"
        if used is None:
            status[rows], errors[rows] = "error", why
            continue
        level_used[rows], provenance[rows] = used, prov
        backend[rows] = backend_text
        _scaled_provenance(cfg, base, used, fields, vec, V, rows, provenance)
        _price_subset(cfg, base, used, fields, vec, V, rows, M, caches, status, errors)
    bad = status == "error"
    for m in METRIC_NAMES:
        if m != "fits_in_memory":
            M[m][bad] = np.nan
    any_bad = bool(bad.any())
    return {"version": task["version"], "config": cfg, "fields": fields, "values": V, "keys": keys,
            "level_used": _compact_text(level_used), "provenance": _compact_text(provenance),
            "attention_backend": _compact_text(backend),
            "notes": _compact_text(notes),
            "index": np.asarray(task["index"], dtype=np.int64).tolist(), "point": task.get("point", {}),
            "metrics": {m: _compact(M[m]) for m in METRIC_NAMES},
            "status": status.tolist() if any_bad else "ok", "error": errors.tolist() if any_bad else None,
            "elapsed_s": time.perf_counter() - t0}


def _scaled_provenance(cfg, base, used, fields, vec, V, rows, provenance) -> None:
    """Rows whose main-memory bandwidth is a vectorised override carry the provenance the level
    gives that variant spec — what simulate and the API write for it, e.g. the calibrated
    analytical model's "...; bandwidths x1.433 (datasheet 4.8 vs calibrated 3.35 TB/s)"
    (hwmodels.gpu.scaled_to, as params_for applies it) — not the base spec's. The calibration is
    read once per task (_bandwidth_text); each distinct bandwidth then costs one `scaled_to` on a
    parameter set without values. Other levels' provenance does not name the bandwidth."""
    level = cfg["level"]
    if level == "roofline" or not str(used).startswith(level):  # roofline, or a fallback: no scaling
        return
    name = f"memory.{base.main_memory.name}.bandwidth"
    j = next((j for j in vec if fields[j] == name), None)
    text = _bandwidth_text(base, level) if j is not None else None
    if text is None:
        return
    rows = np.asarray(rows)
    uniq, inv = np.unique(V[rows, j], return_inverse=True)
    provenance[rows] = np.array([text(float(b)) for b in uniq], dtype=object)[inv.ravel()]


def _bandwidth_text(base, level):
    """bandwidth (B/s) -> the analytical level's provenance for `base` at that main-memory
    bandwidth: params_for's (scaled_to of calibrated_params) on the variant spec, the calibration
    read once. Exact because calibrated_params' text and reference bandwidth do not depend on the
    spec's main-memory bandwidth (a transferred calibration names SMs, clock and TDP; its
    bandwidth ratio moves values only, dropped here); tests/test_sweep_review13.py holds the
    texts to simulate's for a native and a transferred calibration. None for other levels."""
    from dataclasses import replace

    from hwmodels import gpu
    P = gpu.calibrated_params(base) if level == "analytical" else None
    if P is None:
        return None
    bare = replace(P, values={})  # scaled_to's text without rescaling every parameter
    return lambda b: gpu.scaled_to(bare, b).provenance


def _level_of(cfg, base, caches):
    """(level that prices the points, provenance, error, attention backend). A level the hardware
    cannot do is an error unless the sweep allowed `fallback: roofline`; a level whose model hands
    some op kinds to the roofline is reported as mixed ("analytical+roofline")."""
    from hwmodels.levels import level_support, levels_of_ops, summarize_levels
    level = cfg["level"]
    sup = level_support(base, level)
    if not sup.ok:
        if cfg.get("fallback") == "roofline":
            return ("roofline", f"fallback:roofline ({level} unavailable: {sup.reason})", "",
                    _backends_of(cfg, base, "roofline", None, caches))
        return None, None, (f"LevelUnavailable: level {level} cannot price {base.name}: {sup.reason}; "
                            f"add `fallback: roofline` to the sweep to price it with the roofline"), None
    trace = _trace(cfg, caches["trace"])
    backend = _backends_of(cfg, base, level, sup, caches)
    nums = trace.__dict__.get("_numbers")
    if level != "analytical" and nums is not None:  # every op at `level`: the template's op count says so
        return (level if nums[0].n_ops else "none"), sup.provenance, "", backend  # without building the ops
    used = summarize_levels(levels_of_ops(trace.ops, level))
    return used, sup.provenance, "", backend


def _backends_of(cfg, base, level: str, support, caches) -> str | None:
    """The attention backend(s) `level` prices the points with (hwmodels.estimate.attention_backends_priced: the
    calibrated GPU model's, a profile's eager kernels elsewhere), one text as simulate's inputs say; None: none
    named. `support`: the level's LevelSupport (the calibration read once)."""
    from hwmodels.estimate import attention_backends_priced
    if cfg.get("serve"):  # a serving point names its own steps' (its profile is under `serve`): _serve_point
        return None
    if level != "analytical" and not cfg.get("profile"):  # only a profile names one here: the ops a lazily
        return None  # built trace holds (a roofline sweep's template) are never built for this
    return ", ".join(attention_backends_priced(_trace(cfg, caches["trace"]).ops, base, level, support)) or None


def _compact_text(a: np.ndarray):
    vals = a.tolist()
    return vals[0] if vals and vals.count(vals[0]) == len(vals) else vals


def _compact(a: np.ndarray):
    """A scalar when every point has the same value (memory footprint, SQNR…), else the
    array (stored exactly, see cosim.dse.store)."""
    if not len(a):
        return a
    if a.dtype == bool:
        return bool(a[0]) if a.all() or not a.any() else a.tolist()
    if np.isnan(a).all():
        return None
    if (a == a[0]).all():
        return float(a[0])
    return a


def _base_spec(cfg, extra):
    from hwmodels.spec import load_hw
    return load_hw(cfg["hw"]["name"], overrides={**cfg["hw"]["overrides"], **extra} or None)


def variant_spec(base, overrides: dict):
    """`base` with vectorisable overrides (SI floats) applied — the spec
    `load_hw(name, overrides)` builds, without re-reading and re-validating the file for
    every point (the values were validated when the sweep file was loaded)."""
    from dataclasses import replace
    if not overrides:
        return base
    peaks, e_flop = dict(base.peak_flops), dict(base.energy_per_flop_j)
    mem = {m.name: m for m in base.memory}
    static = base.static_power_w
    for key, v in overrides.items():
        p = key.split(".")
        if p[0] == "compute":
            peaks[p[1]] = v
        elif p[0] == "memory":
            attr = {"bandwidth": "bandwidth_Bps", "capacity": "capacity_bytes", "energy": "energy_per_byte_j"}[p[2]]
            mem[p[1]] = replace(mem[p[1]], **{attr: v})
        elif p[:2] == ["energy", "per_flop"]:
            e_flop[p[2]] = v
        else:
            static = v
    return replace(base, peak_flops=peaks, energy_per_flop_j=e_flop, static_power_w=static,
                   memory=tuple(mem[m.name] for m in base.memory))


def _roofline_rows(cfg, base, arrays, rows, M, caches) -> None:
    from hwmodels.estimate import ops_as_priced
    from hwmodels.roofline import evaluate_totals, hw_table_variants, op_table, template_table

    trace = _trace(cfg, caches["trace"])
    nums = trace.__dict__.get("_numbers")
    if nums is not None:  # the traced template's numbers: the same table without building ops
        t = template_table(nums[0], nums[0].split(np.array(nums[1], dtype=float)), base, cfg["compute_fallback"])
        priced_notes = ()
    else:  # a profile's eager attention is priced as its kernels (hwmodels.estimate.ops_as_priced)
        ops, priced_notes = ops_as_priced(trace.ops, base, "roofline")
        t = op_table(ops, base, cfg["compute_fallback"])
    # + the spec's own notes (peaks a clock scaled)
    caches["notes"][rows] = point_notes(trace, t.notes + priced_notes + base.notes)
    h = hw_table_variants(base, arrays)
    # row-wise sums in trace order: each point's total depends on its own row only, and
    # equals cosim.simulate's total for that point exactly
    lat, en = evaluate_totals(t, h)
    _fill_metrics(M, rows, cfg, trace, caches, lat, en, _capacity(base, arrays, len(rows)))


def _capacity(base, arrays, n: int):
    """Main-memory capacity per point: the swept values when capacity is an axis."""
    return arrays.get(f"memory.{base.memory[0].name}.capacity", np.full(n, base.memory[0].capacity_bytes))


def _fill_metrics(M, rows, cfg, trace, caches, lat, en, cap, area=None) -> None:
    """Every metric a point reports, derived from its latency and energy in one place
    (whichever path priced it: roofline tables, a model's variants hook, or one call)."""
    tokens = _tokens(cfg)
    mem = float(sum(trace.meta.get("footprint", {}).values()))
    if "sqnr" not in caches:  # accuracy does not depend on the hardware: once per task
        caches["sqnr"], caches["accuracy_notes"] = _accuracy(cfg, trace)
    _add_notes(caches["notes"], rows, caches["accuracy_notes"])
    M["latency_s"][rows], M["energy_j"][rows] = lat, en
    M["tokens_per_s"][rows], M["energy_per_token_j"][rows] = tokens / lat, en / tokens
    M["memory_bytes"][rows], M["capacity_bytes"][rows] = mem, cap
    M["fits_in_memory"][rows] = mem <= cap
    for m, v in caches["sqnr"].items():
        M[m][rows] = v
    M["area_mm2"][rows] = math.nan if area is None else area


def _add_notes(notes, rows, extra) -> None:
    """The `notes` column of `rows` with `extra` (the accuracy run's) after the point's own, each note once."""
    if not extra:
        return
    for i in np.atleast_1d(np.arange(len(notes))[rows]):
        own = notes[i].split(NOTES_SEP) if notes[i] else []
        notes[i] = join_notes([*own, *extra])


def vectorised_level(level: str) -> bool:
    """Does this level evaluate many hardware variants in one call?"""
    if level == "roofline":
        return True
    from hwmodels.level_registry import LEVELS, get_level
    model = get_level(level) if level in LEVELS else None
    return model is not None and model.evaluate_variants is not None


def _variants_hook(level: str, base):
    """The level model's vectorised entry point, when it has one and applies to `base`:
    ``evaluate_variants(ops, base, overrides: {field: array}, compute_fallback)
    -> {"total_latency_s": (V,), "total_energy_j": (V,)}`` (row-independent, like
    hwmodels.roofline.evaluate_tables), optionally with ``"notes"`` (the level's per-op notes; without them
    `_level_notes` prices the group's base spec per op once for them). None -> one model call per point."""
    from hwmodels.level_registry import LEVELS, get_level
    model = get_level(level) if level in LEVELS else None
    if model is None or model.evaluate_variants is None:
        return None
    if level == "cycle" and "accelerator" not in base.sections:  # an FPGA's array is sized per point
        return None
    return model.evaluate_variants if model.applicable(base)[0] else None


def _hook_rows(fn, cfg, base, arrays, rows, M, caches) -> None:
    from cosim.experiment import hardware_area_mm2

    from hwmodels.estimate import ops_as_priced

    trace = _trace(cfg, caches["trace"])
    # a profile's eager attention is priced as its kernels where the level has no kernel-library model (cycle)
    ops, priced_notes = ops_as_priced(trace.ops, base, cfg["level"])
    r = fn(ops, base, {k: np.asarray(v, dtype=float) for k, v in arrays.items()} or
           {}, cfg["compute_fallback"])
    lat = np.asarray(r["total_latency_s"], dtype=float).reshape(-1)
    en = np.asarray(r["total_energy_j"], dtype=float).reshape(-1)
    notes = r.get("notes")
    if notes is None:  # an entry point that returns totals only (hwmodels.gpu): the level's per-op notes
        notes = _level_notes(cfg, base, trace)
    notes = tuple(notes) + priced_notes
    # and the spec's own (a clock override's scaling), once each
    caches["notes"][rows] = point_notes(trace, tuple(dict.fromkeys(tuple(notes) + base.notes
                                                                    + (gpu_time_note(trace, cfg["level"], base),))))
    if len(rows) > 1 and len(lat) == 1:
        lat, en = np.repeat(lat, len(rows)), np.repeat(en, len(rows))
    if r.get("area_mm2") is not None:  # the model's own area per variant (hwmodels.cycle_variants)
        area = np.broadcast_to(np.asarray(r["area_mm2"], dtype=float), (len(rows),))
    elif cfg["level"] == "cycle":  # area can depend on the varied fields (memory PHY ~ bandwidth)
        area = np.array([hardware_area_mm2(trace, variant_spec(base, {k: float(v[j]) for k, v in arrays.items()}),
                                           "cycle") or math.nan for j in range(len(rows))])
    else:
        area = None
    _fill_metrics(M, rows, cfg, trace, caches, lat, en, _capacity(base, arrays, len(rows)), area)


def _level_notes(cfg, base, trace) -> tuple:
    """The per-op notes the level gives the group's base spec (what simulate lists for it), for a vectorised entry
    point that returns totals only. One per-op estimate per group, not per point: the notes of such a model depend
    on the trace, on which formats the spec has and on the calibration's parameter names (a fallback format, a
    weight-only format priced as the calibrated kernel, an op kind modelled by another's parameters), never on the
    numbers the group varies (peaks, clock, bandwidths -- tests/test_notes17.py holds varied rows to simulate's)."""
    from hwmodels.estimate import estimate_ops
    key = (_trace_key(cfg), repr(base), cfg["level"], bool(cfg["compute_fallback"]))
    if key not in _LEVEL_NOTES:  # per worker: the tasks of one sweep share their base spec and trace
        if len(_LEVEL_NOTES) > 256:
            _LEVEL_NOTES.clear()
        _LEVEL_NOTES[key] = tuple(estimate_ops(trace.ops, base, cfg["level"], cfg["compute_fallback"])[1])
    return _LEVEL_NOTES[key]


_LEVEL_NOTES: dict = {}  # (trace key, base spec, level, fallback) -> the level's per-op notes


def _serve_point(cfg, hw, i, M, caches) -> None:
    """One point as a serving run: latency percentiles, goodput, throughput, energy/token."""
    from cosim.serving import serve
    res = serve(cfg["model"], hw, level=cfg["level"], weights=cfg["weights"], acts=cfg["acts"], kv=cfg["kv"],
                recipe=cfg["recipe"], attention=cfg["attention"], compute_fallback=cfg["compute_fallback"],
                **cfg["serve"])
    s = res.summary
    caches["notes"][i] = join_notes(res.notes)  # the serving report's notes
    caches["backend"][i] = s["attention_backend"]  # its steps' (its own profile's, under `serve`)
    for m in SERVE_METRICS:
        M[m][i] = s[m]
    M["energy_per_token_j"][i], M["tokens_per_s"][i] = s["energy_per_token_j"], s["throughput_tok_s"]
    M["energy_j"][i], M["latency_s"][i] = s["energy_j"], s["e2e_mean_s"]
    cap = res.capacity[next(iter(res.capacity))]
    M["memory_bytes"][i] = cap.weights_bytes + cap.activations_bytes + cap.blocks * cap.block_size * cap.bytes_per_token
    M["capacity_bytes"][i] = hw.main_memory.capacity_bytes
    M["fits_in_memory"][i] = True


def _system_point(cfg, hw_values: dict, i, M, caches, labels) -> None:
    """A point on a multi-device system: latency is the pipeline step, energy the whole
    system's per step, memory the fullest device's (hw.* fields override the device).
    `labels` = (level_used, provenance, attention backend) arrays: the row says what priced it, as simulate does."""
    from cosim.simulate import simulate
    from hwmodels.system import load_system

    over = {f"device.{k}": v for k, v in {**cfg["hw"]["overrides"], **hw_values}.items()}
    system = load_system(cfg["system"], overrides=over or None)
    trace = _trace(cfg, caches["trace"])
    rep = simulate(trace, system, level=cfg["level"], compute_fallback=cfg["compute_fallback"])
    caches["notes"][i] = join_notes(rep.notes)  # simulate's notes, as its report, each once
    labels[0][i], labels[1][i] = rep.level, "; ".join(rep.meta["priced_from"])
    labels[2][i] = rep.meta["inputs"]["attention_backend"]
    # as cosim plan: the layout's step (cosim.parallel_timing.layout_step: the global batch's tokens, the system
    # energy with the idle stages' static power), which simulate already keeps in the report: derived once
    par = rep.meta["parallel"]
    if "sqnr" not in caches:
        caches["sqnr"], caches["accuracy_notes"] = _accuracy(cfg, trace)
    _add_notes(caches["notes"], i, caches["accuracy_notes"])
    vals = {"latency_s": par["step_latency_s"], "energy_j": par["system_energy_j"],
            "tokens_per_s": par["layout_tokens_per_s"], "energy_per_token_j": par["system_energy_per_token_j"],
            "memory_bytes": rep.memory_bytes, "capacity_bytes": rep.capacity_bytes,
            "fits_in_memory": rep.fits_in_memory, **caches["sqnr"], "area_mm2": math.nan}
    for m, v in vals.items():
        M[m][i] = v


def _full_model(cfg, hw, i, M, caches) -> None:
    """One point through the level's own model (hwmodels.estimate.estimate_ops — what
    cosim.simulate calls, without building the per-op report rows)."""
    from cosim.experiment import hardware_area_mm2
    from hwmodels.estimate import estimate_ops

    trace = _trace(cfg, caches["trace"])
    costs, notes = estimate_ops(trace.ops, hw, cfg["level"], cfg["compute_fallback"])
    caches["notes"][i] = point_notes(trace, (*notes, gpu_time_note(trace, cfg["level"], hw)))
    lat = float(sum(c.latency_s * op.repeat for op, c in zip(trace.ops, costs)))
    en = float(sum(c.energy_j * op.repeat for op, c in zip(trace.ops, costs)))
    area = hardware_area_mm2(trace, hw, cfg["level"], cfg["compute_fallback"])
    _fill_metrics(M, i, cfg, trace, caches, lat, en, hw.main_memory.capacity_bytes, area)
