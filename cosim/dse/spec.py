"""Sweep files: a base experiment plus axes, objectives and constraints — parsed and
checked completely (every field, every axis value, every constraint) before any work.

    name: hbm_vs_format
    base: quickstart                 # bundled experiment, a path, or an inline mapping
    axes:                            # combined as a cartesian product of the entries
      - grid:   {weights: [mxfp4, mxfp8_e4m3, bf16], hw.memory.hbm.bandwidth: [2 TB/s, 4 TB/s]}
      - zip:    {batch: [1, 8, 64], seq: [32768, 8192, 2048]}
      - random: {samples: 1000, seed: 0,
                 fields: {hw.compute.bf16: {low: 500 TFLOP/s, high: 2000 TFLOP/s, log: true},
                          kv: {choices: [bf16, fp8_e4m3]}}}
    search:                          # optional multi-objective search instead of / after axes
      {method: nsga2, trials: 200, population: 20, seed: 0, fields: {...same as random...}}
    objectives: {latency_s: min, energy_j: min}
    constraints: ["sqnr_db >= 30", "area_mm2 <= 400"]
    executor: local                  # local | dask
    workers: 2
    scheduler: null                  # tcp://host:8786 (implies executor: dask)
    batch_size: 4096                 # roofline points per task
    output: sweeps/hbm_vs_format     # results table, Pareto front, plots, results.jsonl store
    table_format: parquet            # results table: parquet (default) or csv

Fields: any experiment field (model, phase, batch, seq, weights, acts, kv, recipe,
attention, level, compute_fallback, accuracy.<k>), ``hw`` / ``hw.name`` (the device) and
``hw.<dotted path>`` (a hardware override, e.g. hw.memory.hbm.bandwidth,
hw.compute.mxfp4, hw.clock, hw.accelerator.rows — whatever `load_hw(overrides=)` accepts).
"""

from __future__ import annotations

import difflib
import itertools
import math
import operator
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cosim.dse.evaluate import (ACCURACY_METRICS, CHECKPOINT_METRICS, SERVE_METRICS,
                                 SERVING_POINT_METRICS)
from cosim.experiment import (DEFAULTS, SERVE_FROM_EXPERIMENT, _plain, Experiment, experiment_from_dict,
                              experiment_path, serve_fields, si_override)
from workloads.io import (InputError, bundled_names, copy_tree, doc_kind, fail, load_yaml_file, looks_like_path,
                          resolve_bundled)

__all__ = ["SweepSpec", "load_sweep", "sweep_from_dict", "METRICS", "Constraint", "apply_point"]

TOP_KEYS = ("name", "base", "axes", "search", "objectives", "constraints", "executor", "workers",
            "scheduler", "batch_size", "output", "store", "fallback", "require_memory_fit", "table_format")
AXIS_KINDS = ("grid", "zip", "random")
SEARCH_KEYS = ("method", "trials", "population", "seed", "fields")
# what every point reports; objectives and constraints may use any of them
METRICS = {"latency_s": "seconds per forward pass", "energy_j": "joules per forward pass",
           "tokens_per_s": "tokens per second", "energy_per_token_j": "joules per token",
           "memory_bytes": "weights + KV cache + activations", "capacity_bytes": "main-memory capacity",
           "sqnr_db": "worst op's output SQNR (needs accuracy)",
           "gemm_sqnr_db": "worst weight GEMM's output SQNR (needs accuracy)",
           "attention_sqnr_db": "worst attention op's output SQNR (needs accuracy)",
           "area_mm2": "silicon area (needs an area model)",
           "perplexity": "perplexity of the compressed real checkpoint (needs accuracy.checkpoint)",
           "perplexity_delta": "perplexity increase over the unquantized checkpoint (needs accuracy.checkpoint)",
           "kl": "KL(baseline || compressed) per token, nats (needs accuracy.checkpoint)",
           "top1_agreement": "fraction of next tokens the compressed model ranks first like the baseline "
                             "(needs accuracy.checkpoint)",
           "ttft_p99_s": "p99 time to first token (needs serve:)", "tpot_p99_s": "p99 time per output token (needs serve:)",
           "goodput_req_s": "requests/s meeting the SLOs, over the makespan incl. the drain (needs serve:)",
           "goodput_window_req_s": "requests/s meeting the SLOs among those arriving between the first and last "
                                   "arrival (steady state; needs serve:)",
           "throughput_tok_s": "output tokens/s served, over the makespan incl. the drain (needs serve:)",
           "throughput_window_tok_s": "output tokens/s emitted between the first finish and the last finish by "
                                      "the last arrival "
                                      "(steady state; needs serve:)",
           "slo_attainment": "fraction of requests meeting the SLOs (needs serve:)"}
EXPERIMENT_FIELDS = tuple(k for k in DEFAULTS if k not in ("name", "output", "accuracy", "hw", "parallel",
                                                           "serve"))
# Points are materialised as columns before any run (and by --dry-run): 2 million is
# twice the bundled big_random sweep and ~0.5 GB of columns; beyond it, refuse up front
# (a 10^12 grid reached 15 GB before failing) and say how to split the work.
MAX_POINTS = 2_000_000
_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}


@dataclass(frozen=True)
class Constraint:
    metric: str
    op: str
    value: float

    def ok(self, x) -> bool:
        return x is not None and not (isinstance(x, float) and math.isnan(x)) and _OPS[self.op](x, self.value)

    def violation(self, x) -> float:
        """<= 0 when satisfied (optuna's convention); magnitude relative to the bound."""
        if x is None or (isinstance(x, float) and math.isnan(x)):
            return 1.0
        scale = abs(self.value) or 1.0
        return (self.value - x) / scale if self.op in (">=", ">") else (x - self.value) / scale

    def __str__(self):
        return f"{self.metric} {self.op} {self.value:g}"


@dataclass
class SweepSpec:
    name: str
    base: Experiment
    axes: list  # [(kind, {field: values}) | ("random", {"samples", "seed", "fields"})]
    search: dict | None
    objectives: dict  # metric -> "min" | "max"
    constraints: list
    executor: str = "local"
    workers: int = 1
    scheduler: str | None = None
    batch_size: int = 4096
    output: Path = field(default_factory=lambda: Path("sweeps/sweep"))
    store: Path | None = None
    source: str = "<sweep>"
    # a point whose level the hardware cannot do is an error unless fallback == "roofline"
    # (then every such row says level_used roofline and why); memory fit is a constraint
    fallback: str | None = None
    require_memory_fit: bool = True
    table_format: str = "parquet"  # the results table: parquet (default) or csv

    @property
    def store_path(self) -> Path:
        return self.store or (self.output / "results.jsonl")

    def fields(self) -> list[str]:
        out = []
        for kind, body in self.axes:
            out += list(body["fields"] if kind == "random" else body)
        if self.search:
            out += list(self.search["fields"])
        return list(dict.fromkeys(out))

    def columns(self, arrays: bool = False) -> tuple[int, dict]:
        """Every point of the axes as columns: (n_points, {field: list of n values}).
        Entries combine as a cartesian product (the first entry varies slowest), in a
        stable order; a grid varies its last field fastest, like nested loops.
        `arrays`: numpy arrays instead of lists (what the sweep planner takes: no Python
        object per value) — numeric hardware fields as int/float arrays, others as object arrays."""
        blocks = []  # (n_rows, {field: list})
        for kind, body in self.axes:
            if kind == "grid":
                keys = list(body)
                combos = list(itertools.product(*(range(len(body[k])) for k in keys)))
                blocks.append((len(combos), {k: [body[k][c[j]] for c in combos] for j, k in enumerate(keys)}))
            elif kind == "zip":
                n = len(next(iter(body.values())))
                blocks.append((n, {k: list(v) for k, v in body.items()}))
            else:
                rng = np.random.default_rng(body["seed"])
                blocks.append((body["samples"], {f: sample_field(d, rng, body["samples"])
                                                 for f, d in body["fields"].items()}))
        if not blocks:
            return (0, {}) if self.search else (1, {})
        total = int(np.prod([n for n, _ in blocks]))
        cols, stride = {}, total
        for n, block in blocks:
            stride //= n
            pick = (np.arange(total) // stride) % n
            for f, vals in block.items():
                if arrays and f.startswith("hw.") and f != "hw.name":
                    num = np.asarray(vals)
                    if num.ndim == 1 and num.dtype.kind in "fiu":  # the values np.asarray(list) gives
                        cols[f] = num[pick]
                        continue
                arr = np.empty(n, dtype=object)
                arr[:] = vals
                cols[f] = arr[pick] if arrays else arr[pick].tolist()
        return total, cols

    def points(self) -> list[dict]:
        """Every point of the axes as dicts (see `columns`)."""
        n, cols = self.columns()
        return [{f: cols[f][i] for f in cols} for i in range(n)]


def count_points(axes: list) -> int:
    """Points of the axes' cartesian product, computed without building any of them."""
    total = 1
    for kind, body in axes:
        if kind == "grid":
            total *= math.prod(len(v) for v in body.values())
        elif kind == "zip":
            total *= len(next(iter(body.values())))
        else:
            total *= body["samples"]
    return total if axes else 0


def sample_field(dist: dict, rng, n: int) -> list:
    if "choices" in dist:
        return [dist["choices"][i] for i in rng.integers(0, len(dist["choices"]), n)]
    lo, hi = dist["low_si"], dist["high_si"]
    u = rng.random(n)
    x = np.exp(np.log(lo) + u * (np.log(hi) - np.log(lo))) if dist.get("log") else lo + u * (hi - lo)
    if dist.get("int"):
        return [int(v) for v in np.clip(np.floor(x + 0.5), lo, hi)]
    return [float(v) for v in x]


# ---------------------------------------------------------------------------- applying a point

def apply_point(base_cfg: dict, point: dict, source: str = "<sweep>") -> dict:
    """The base experiment's config with a point's field values put in (a new dict)."""
    cfg = copy_tree(base_cfg)
    for f, v in point.items():
        if f in ("hw", "hw.name"):
            cfg["hw"]["name"] = v
        elif f.startswith("hw."):
            cfg["hw"]["overrides"][f[3:]] = v
        elif f.startswith("serve."):
            if cfg.get("serve") is None:
                fail(source, f, v, "a `serve:` section in the base experiment to vary")
            cfg["serve"][f[len("serve."):]] = v
        elif f.startswith("parallel."):
            cfg["parallel"] = {**(cfg.get("parallel") or {}), f[len("parallel."):]: v}
        elif f.startswith("accuracy."):
            if cfg["accuracy"] is None:
                fail(source, f, v, "an `accuracy:` section in the base experiment to vary")
            cfg["accuracy"][f[len("accuracy."):]] = v
        else:
            cfg[f] = v
    return cfg


# ---------------------------------------------------------------------------- loading

def load_sweep(path, overrides: dict | None = None) -> SweepSpec:
    from workloads.io import check_name
    check_name(str(path), "sweep")
    # a bare name or a docs-style path (cosim/configs/sweeps/x.yaml) resolves to a bundled example;
    # a bare bundled name is the bundled file even beside a same-named local file (resolve_bundled's rule)
    text = str(path)
    bare_bundled = not looks_like_path(text) and text in bundled_names("sweeps")
    path = Path(path) if Path(path).is_file() and not bare_bundled else resolve_bundled("sweeps", path, "sweep")
    if not path.is_file():
        raise InputError(f"{path}: no such sweep file")
    doc = load_yaml_file(path, "sweep")
    return sweep_from_dict(doc, source=str(path), base_dir=path.parent, overrides=overrides)


def _plain_tree(v):
    """numpy scalars (a Python caller's list(np.array([1, 4]))) as the Python numbers they hold,
    in nested dicts/lists, so the points, the store and every message carry plain numbers; the
    fields' own checks then apply (an integral np.float64 is still a float, np.bool_ a bool)."""
    if isinstance(v, dict):
        return {k: _plain_tree(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return type(v)(_plain_tree(x) for x in v)
    return _plain(v)


def sweep_from_dict(doc, source: str = "<sweep>", base_dir: Path | None = None,
                    overrides: dict | None = None) -> SweepSpec:
    """Validate a sweep mapping. `overrides` (executor, workers, scheduler, output,
    store, batch_size) come from the command line / function call and win."""
    base_dir = Path(base_dir) if base_dir else Path.cwd()
    if not isinstance(doc, dict):
        fail(source, "", doc_kind(doc), "a mapping with base, axes, objectives ...")
    for k in doc:
        if k not in TOP_KEYS:
            fail(source, k, k, f"a sweep field{_hint(k, TOP_KEYS)}: {', '.join(TOP_KEYS)}")
    doc = _plain_tree({**doc, **{k: v for k, v in (overrides or {}).items() if v is not None}})
    varied = [*(doc.get("axes") if isinstance(doc.get("axes"), list) else []), {"search": doc.get("search")}]
    base = _base(_system_from_axes(_hw_from_axes(doc.get("base"), varied), varied), source, base_dir)
    axes = _axes(doc.get("axes"), source, base)
    search = _search(doc.get("search"), source, base)
    if not axes and not search:
        fail(source, "axes", doc.get("axes"), "at least one axis (grid, zip or random) or a search section")
    total = count_points(axes)
    if total > MAX_POINTS:
        fail(source, "axes", f"{total:,} points", f"at most {MAX_POINTS:,} points per sweep (split the axes over "
                                                  f"several sweeps sharing one store, or use a search section)")
    objectives = _objectives(doc.get("objectives"), source)
    constraints = _constraints(doc.get("constraints"), source)
    _check_metric_availability(objectives, constraints, base, axes, search, source)
    _warn_calibrated(base, axes, search, source)
    _warn_system_device(base, axes, search, source)
    fallback = doc.get("fallback")
    if fallback not in (None, "roofline"):
        fail(source, "fallback", fallback, "roofline (price points whose level the hardware cannot do with the "
                                           "roofline, saying so in every row) or no fallback key")
    _check_levels(base, axes, search, fallback, source)
    _check_cycle_only_axes(base, axes, search, source)
    from cosim.dse.combos import check_combinations
    check_combinations(base, axes, search, source)  # seq within the context, layouts that shard and fit
    fit = doc.get("require_memory_fit", True)
    if not isinstance(fit, bool):
        fail(source, "require_memory_fit", fit, "true (a point must fit in main memory to be feasible) or false")
    executor = doc.get("executor", "local")
    scheduler = doc.get("scheduler")
    if scheduler is not None and not isinstance(scheduler, str) and not hasattr(scheduler, "submit"):
        fail(source, "scheduler", scheduler, "a scheduler address such as tcp://host:8786")
    if scheduler is not None:
        executor = "dask"
    if executor not in ("local", "dask"):
        fail(source, "executor", executor, "local or dask")
    workers = doc.get("workers", 1)
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 4096:
        fail(source, "workers", workers, "an integer from 1 to 4,096")
    bs = doc.get("batch_size", 4096)
    if isinstance(bs, bool) or not isinstance(bs, int) or not 1 <= bs <= MAX_POINTS:
        fail(source, "batch_size", bs, f"an integer from 1 to {MAX_POINTS:,}")
    name = doc.get("name") or Path(source).stem
    out = doc.get("output") or f"sweeps/{name}"
    if not isinstance(out, (str, Path)):
        fail(source, "output", out, "a directory path")
    store = doc.get("store")
    if store is not None and not isinstance(store, (str, Path)):
        fail(source, "store", store, "a file path (.jsonl)")
    table_format = doc.get("table_format", "parquet")
    if table_format not in ("parquet", "csv"):
        fail(source, "table_format", table_format, "parquet or csv")
    return SweepSpec(name=str(name), base=base, axes=axes, search=search, objectives=objectives,
                     constraints=constraints, executor=executor, workers=workers, scheduler=scheduler,
                     batch_size=bs, output=Path(out), store=Path(store) if store else None, source=source,
                     fallback=fallback, require_memory_fit=fit,
                     table_format=table_format)


def _hint(word, choices) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _hw_from_axes(base, axes):
    """An inline base without `hw` takes the first device of an axis or the search that varies `hw`
    (every point sets its own): the sweep names its hardware once, where it varies it."""
    if not isinstance(base, dict) or "hw" in base:
        return base
    first = _first_axis_value(axes, "hw")
    return base if first is None else {**base, "hw": first}


def _system_from_axes(base, axes):
    """An inline base with a parallel layout but no `system` takes the first system of an axis or the search
    that varies `system` (the layout needs one to price its collectives; every point sets its own), as `hw` does."""
    if not isinstance(base, dict) or "system" in base or not base.get("parallel"):
        return base
    first = _first_axis_value(axes, "system")
    return base if first is None else {**base, "system": first}


def _first_axis_value(varied: list, field: str):
    """The first value of `field` in the first of `varied` (the raw axes, then {"search": ...}) that varies it:
    a grid/zip list's first, a random axis's or the search's first choice. None if none does; the axes and the
    search are checked later, with their errors."""
    for ax in varied:
        kind, body = next(iter(ax.items())) if isinstance(ax, dict) and len(ax) == 1 else (None, None)
        if kind in ("random", "search") and isinstance(body, dict):
            dist = body.get("fields", {}).get(field) if isinstance(body.get("fields"), dict) else None
            vals = dist.get("choices") if isinstance(dist, dict) else dist  # {choices: [...]} or a plain list
        else:
            vals = body.get(field) if isinstance(body, dict) else None
        if isinstance(vals, list) and vals:
            return vals[0]
    return None


def _base(v, source, base_dir) -> Experiment:
    if v is None:
        fail(source, "base", v, "an experiment: a bundled name (quickstart), a path, or an inline mapping")
    if isinstance(v, dict):
        try:
            return experiment_from_dict(v, source=f"{source}: base", base_dir=base_dir)
        except InputError as e:
            raise InputError(str(e)) from None
    if isinstance(v, str):
        p = Path(v)
        cand = p if p.is_absolute() else base_dir / p
        if "/" in v or v.endswith((".yaml", ".yml")):
            if not cand.is_file():
                fail(source, "base", v, f"an existing experiment file ({cand} does not exist)")
            target = cand
        else:
            target = cand if cand.is_file() else v
        try:
            path = experiment_path(target)
        except InputError as e:
            raise InputError(f"{source}: base: {e}") from None
        return experiment_from_dict(load_yaml_file(path, "experiment"), source=str(path), base_dir=path.parent)
    fail(source, "base", v, "an experiment name, path or mapping")


def _check_field(f, source, where, base: Experiment) -> None:
    if not isinstance(f, str) or not f:
        fail(source, where, f, "a field name")
    if f in EXPERIMENT_FIELDS or f in ("hw", "hw.name", "prompt_len"):  # prompt_len: set only where given
        return
    if f.startswith("hw.") and len(f) > 3:
        return  # checked with its values against the hardware loader
    if f.startswith("serve."):
        if base.serve is None:
            fail(source, where, f, "a `serve:` section in the base experiment to vary")
        sub = f[len("serve."):]
        if sub in SERVE_FROM_EXPERIMENT:
            fail(source, where, f, f"`{sub}` itself, not serve.{sub} (the serving run uses the experiment's own)")
        known = serve_fields()
        if sub not in known:  # named here, once: the values' check would name the file and field twice
            fail(source, where, f, f"serve.<a serve field>{_hint(f, [f'serve.{k}' for k in known])}, a serve field "
                                   f"being one of {', '.join(known)}")
        return  # values are checked against ServeConfig with the rest of the experiment
    if f.startswith("parallel."):
        from workloads.parallel import Layout
        if f[len("parallel."):] not in Layout.__dataclass_fields__:
            fail(source, where, f, f"parallel.<{'|'.join(Layout.__dataclass_fields__)}>")
        if base.system is None:
            fail(source, where, f, "a `system:` in the base experiment (collectives need links)")
        return
    if f.startswith("accuracy."):
        sub = f[len("accuracy."):]
        from cosim.experiment import ACCURACY_DEFAULTS
        if sub not in ACCURACY_DEFAULTS:
            fail(source, where, f, f"accuracy.<{'|'.join(ACCURACY_DEFAULTS)}>")
        if base.accuracy is None:
            fail(source, where, f, "an `accuracy:` section in the base experiment to vary")
        return
    known = list(EXPERIMENT_FIELDS) + ["prompt_len", "hw", "hw.<override path>", "accuracy.<field>",
                                       "parallel.<tp|pp|ep|dp|sp>", "serve.<field>"]
    fail(source, where, f, f"an experiment field{_hint(f, known)}: {', '.join(known)}")


def _check_values(field_name, values, source, where, base: Experiment) -> None:
    """Put each value into the base experiment and validate it there (model, hardware
    with overrides, formats) — the same checks a run would hit, before any run."""
    seen_hw = set()
    for i, v in enumerate(values):
        if field_name == "prompt_len":  # against each point's seq and phase, not the base's (combos.error)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                fail(source, f"{where}[{i}]", v, "a positive integer (prompt tokens of a decode step's seq) or null")
            if v is not None and base.serve is not None:
                from cosim.experiment import SERVE_PROMPT_LEN
                fail(source, f"{where}[{i}]", v, SERVE_PROMPT_LEN)
            continue
        if field_name in ("serve.trace", "serve.lengths_from") and v is not None:
            # relative to the base experiment's file, as its own serve.trace and a model axis's paths are (the run
            # applies the value as given: read from the current directory)
            from cosim.experiment import _serve_path
            v = values[i] = _serve_path(v, f"{source}: {where}[{i}]", field_name[len("serve."):], base.base_dir)
        cfg = apply_point(base.config, {field_name: v}, source)
        if field_name in ("seq", "phase"):  # the base's prompt_len pairs with each point's, not this value alone
            cfg.pop("prompt_len", None)     # (cosim.dse.combos checks the pairs the sweep forms)
        doc = {k: v2 for k, v2 in cfg.items()}
        try:
            exp = experiment_from_dict(doc, source=f"{source}: {where}[{i}]", base_dir=base.base_dir,
                                       check_resources=False)
        except InputError as e:
            raise InputError(str(e)) from None
        key = (str(exp.hw.name), repr(sorted(exp.hw.overrides)))
        if field_name.startswith("hw") and key not in seen_hw:
            seen_hw.add(key)
            from hwmodels.spec import load_hw
            try:
                load_hw(exp.hw.name, overrides=exp.hw.overrides_dict() or None)
            except InputError as e:
                raise InputError(f"{source}: {where}[{i}] = {v!r}: {e}") from None
        if field_name == "recipe" and v:
            from cosim.experiment import check_recipe
            check_recipe(v, source, f"{where}[{i}]")
        if field_name == "model":
            from workloads.models import load_model
            try:
                load_model(exp.model)
            except InputError as e:
                raise InputError(f"{source}: {where}[{i}] = {v!r}: {e}") from None


def _axes(v, source, base) -> list:
    if v is None:
        return []
    if not isinstance(v, list):
        fail(source, "axes", v, "a list of entries, each {grid: ...}, {zip: ...} or {random: ...}")
    out = []
    for i, entry in enumerate(v):
        where = f"axes[{i}]"
        if not isinstance(entry, dict) or len(entry) != 1 or next(iter(entry)) not in AXIS_KINDS:
            key = next(iter(entry)) if isinstance(entry, dict) and entry else entry
            fail(source, where, key, f"one of {{grid: ...}}, {{zip: ...}}, {{random: ...}}{_hint(key, AXIS_KINDS)}")
        kind, body = next(iter(entry.items()))
        where = f"{where}.{kind}"
        if kind == "random":
            out.append(("random", _random(body, source, where, base)))
            continue
        if not isinstance(body, dict) or not body:
            fail(source, where, body, "a non-empty mapping of field -> list of values")
        lengths = {}
        for f, vals in body.items():
            _check_field(f, source, f"{where}.{f}", base)
            if not isinstance(vals, list):
                fail(source, f"{where}.{f}", vals, "a list of values")
            if not vals:
                fail(source, f"{where}.{f}", vals, "a non-empty list of values (an empty axis has no points)")
            _check_values(f, vals, source, f"{where}.{f}", base)
            lengths[f] = len(vals)
        if kind == "zip" and len(set(lengths.values())) > 1:
            fail(source, where, lengths, "lists of one length (zip pairs values up position by position)")
        out.append((kind, dict(body)))
    return out


def _distribution(f, d, source, where, base) -> dict:
    if isinstance(d, list):
        d = {"choices": d}
    if not isinstance(d, dict):
        fail(source, where, d, "{low: ..., high: ..., log: bool, int: bool} or {choices: [...]}")
    allowed = ("choices",) if "choices" in d else ("low", "high", "log", "int")
    for k in d:
        if k not in allowed:
            fail(source, f"{where}.{k}", k, f"one of {', '.join(allowed)}{_hint(k, allowed)}")
    if "choices" in d:
        if not isinstance(d["choices"], list) or not d["choices"]:
            fail(source, f"{where}.choices", d["choices"], "a non-empty list")
        _check_values(f, d["choices"], source, f"{where}.choices", base)
        return dict(d)
    for k in ("log", "int"):  # strict: the text "false" must not read as true
        if k in d and not isinstance(d[k], bool):
            fail(source, f"{where}.{k}", d[k], "true or false (a YAML boolean, not text)")
    for k in ("low", "high"):
        if k not in d:
            fail(source, f"{where}.{k}", None, "a number (or a quantity such as '2 TB/s' for hardware fields)")
    key = f[3:] if f.startswith("hw.") else None
    lo = si_override(key, d["low"], source) if key else d["low"]
    hi = si_override(key, d["high"], source) if key else d["high"]
    for k, x in (("low", lo), ("high", hi)):
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
            fail(source, f"{where}.{k}", d[k], "a finite number or a quantity with its unit")
    if lo > hi:
        fail(source, where, {"low": d["low"], "high": d["high"]}, "low <= high")
    if d.get("log") and lo <= 0:
        fail(source, f"{where}.low", d["low"], "a positive value for a log-scale range")
    out = {**d, "low_si": float(lo), "high_si": float(hi)}
    _check_values(f, [lo, hi] if not d.get("int") else [int(lo), int(hi)], source, where, base)
    return out


def _random(body, source, where, base) -> dict:
    if not isinstance(body, dict):
        fail(source, where, body, "{samples: N, seed: S, fields: {field: {low, high} | {choices}}}")
    for k in body:
        if k not in ("samples", "seed", "fields"):
            fail(source, f"{where}.{k}", k, f"samples, seed or fields{_hint(k, ('samples', 'seed', 'fields'))}")
    n = body.get("samples")
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_POINTS:
        fail(source, f"{where}.samples", n, f"an integer from 1 to {MAX_POINTS:,}")
    seed = body.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        fail(source, f"{where}.seed", seed, "an integer >= 0")
    fields = body.get("fields")
    if not isinstance(fields, dict) or not fields:
        fail(source, f"{where}.fields", fields, "a non-empty mapping of field -> distribution")
    dists = {}
    for f, d in fields.items():
        _check_field(f, source, f"{where}.fields.{f}", base)
        dists[f] = _distribution(f, d, source, f"{where}.fields.{f}", base)
    return {"samples": n, "seed": seed, "fields": dists}


def _search(v, source, base):
    if v is None:
        return None
    if not isinstance(v, dict):
        fail(source, "search", v, "a mapping (method, trials, population, seed, fields)")
    for k in v:
        if k not in SEARCH_KEYS:
            fail(source, f"search.{k}", k, f"one of {', '.join(SEARCH_KEYS)}{_hint(k, SEARCH_KEYS)}")
    method = v.get("method", "nsga2")
    if method != "nsga2":
        fail(source, "search.method", method, "nsga2 (optuna's NSGA-II sampler)")
    out = {"method": method}
    for k, default, lo, hi in (("trials", 100, 1, MAX_POINTS), ("population", 20, 2, MAX_POINTS),
                               ("seed", 0, 0, 2 ** 32 - 1)):
        x = v.get(k, default)
        if isinstance(x, bool) or not isinstance(x, int) or not lo <= x <= hi:
            fail(source, f"search.{k}", x, f"an integer from {lo} to {hi:,}")
        out[k] = x
    rnd = _random({"samples": 1, "seed": 0, "fields": v.get("fields")}, source, "search", base)
    out["fields"] = rnd["fields"]
    return out


def _objectives(v, source) -> dict:
    if v is None:
        return {"latency_s": "min", "energy_j": "min"}
    if isinstance(v, list):
        v = {m: "min" for m in v}
    if not isinstance(v, dict) or not v:
        fail(source, "objectives", v, "a mapping metric -> min|max, e.g. {latency_s: min, energy_j: min}")
    for m, d in v.items():
        if m not in METRICS:
            fail(source, f"objectives.{m}", m, f"a metric{_hint(m, METRICS)}: {', '.join(METRICS)}")
        if d not in ("min", "max"):
            fail(source, f"objectives.{m}", d, "min or max")
    return dict(v)


_CONSTRAINT = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(>=|<=|>|<)\s*(\S+)\s*$")


def _constraints(v, source) -> list:
    if v is None:
        return []
    if isinstance(v, dict):  # {sqnr_db: ">= 30"} or {sqnr_db: {min: 30}}
        items = []
        for m, c in v.items():
            if isinstance(c, dict):
                for k, x in c.items():
                    if k not in ("min", "max"):
                        fail(source, f"constraints.{m}.{k}", k, "min or max")
                    items.append(f"{m} {'>=' if k == 'min' else '<='} {x}")
            else:
                items.append(f"{m} {c}")
        v = items
    if not isinstance(v, list):
        fail(source, "constraints", v, "a list such as ['sqnr_db >= 30', 'area_mm2 <= 400']")
    out = []
    for i, text in enumerate(v):
        where = f"constraints[{i}]"
        m = _CONSTRAINT.match(str(text))
        if not m:
            fail(source, where, text, "'<metric> <op> <number>' with op one of >=, <=, >, <")
        metric, op, num = m.groups()
        if metric not in METRICS:
            fail(source, where, text, f"a metric{_hint(metric, METRICS)}: {', '.join(METRICS)}")
        try:
            value = float(num)
        except ValueError:
            fail(source, where, text, "a plain number on the right-hand side (SI units)")
        out.append(Constraint(metric, op, value))
    # contradictory bounds on one metric: no point can satisfy them, so say so now
    for metric in {c.metric for c in out}:
        lows = [c for c in out if c.metric == metric and c.op in (">=", ">")]
        highs = [c for c in out if c.metric == metric and c.op in ("<=", "<")]
        for lo in lows:
            for hi in highs:
                if lo.value > hi.value or (lo.value == hi.value and (lo.op == ">" or hi.op == "<")):
                    fail(source, "constraints", [str(lo), str(hi)],
                         f"constraints some point can satisfy; '{lo}' and '{hi}' contradict each other")
    return out


def _warn_calibrated(base, axes, search, source) -> None:
    """The calibrated analytical GPU model takes peaks and the main-memory bandwidth from the
    spec (its fitted efficiencies and achieved bandwidths scale with them), but its energies
    are calibrated: energy overrides do not move it. Say so, once, up front."""
    import warnings
    fields = [f for _, body in axes for f in (body["fields"] if "samples" in body else body)]
    fields += list(search["fields"]) if search else []
    energy = [f for f in fields if f.startswith("hw.energy.") or (f.startswith("hw.memory.") and f.endswith(".energy"))]
    if base.level == "analytical" and energy:
        warnings.warn(f"{source}: level analytical uses calibrated energies (hw.analytical.params.energy.*); "
                      f"sweeping {', '.join(energy)} does not change them — sweep "
                      f"hw.analytical.params.energy.<name>, or use level roofline for datasheet energy what-ifs",
                      stacklevel=3)


def _axis_fields(axes, search, name):
    """(where, values) of each parsed axis and of the search that varies field `name`: the one walk both the values
    (_axis_values) and an error's field path (_level_field) read."""
    for i, (kind, body) in enumerate(axes):
        fields = body["fields"] if kind == "random" else body
        if name in fields:
            v = fields[name]
            yield (f"axes[{i}].{kind}.{'fields.' if kind == 'random' else ''}{name}",
                   list(v.get("choices", [])) if isinstance(v, dict) else list(v))
    if search and name in search["fields"]:
        yield f"search.fields.{name}", list(search["fields"][name].get("choices", []))


def _axis_values(axes, search, name):
    return [v for _, vals in _axis_fields(axes, search, name) for v in vals]


def _check_levels(base, axes, search, fallback, source) -> None:
    """Every (hardware, level) pair the sweep can reach must be priced by that level's own
    model, unless the sweep says `fallback: roofline`: a level that silently became the
    roofline would put roofline numbers under an analytical or cycle label."""
    if fallback == "roofline":
        return
    from hwmodels.levels import level_support
    from hwmodels.spec import load_hw
    hws = [base.hw.name] + _axis_values(axes, search, "hw") + _axis_values(axes, search, "hw.name")
    levels = [base.level] + _axis_values(axes, search, "level")
    for name, hw in [*_loaded(hws, base, load_hw), *_system_devices(base, axes, search)]:
        for lv in dict.fromkeys(levels):
            sup = level_support(hw, lv)
            if not sup.ok:
                fail(source, _level_field(lv, base, axes, search), lv,
                     f"a level that {name} supports ({sup.reason}); or set `fallback: roofline` to price such "
                     f"points with the roofline, every row then saying so")


def _level_field(lv, base, axes, search) -> str:
    """Where the sweep sets level `lv`: the axis or search field first (it is what a reader changes), else the base."""
    where = next((w for w, vals in _axis_fields(axes, search, "level") if lv in vals), None)
    return where or ("base.level" if lv == base.level else "level")


def _loaded(hws, base, load_hw):
    """(name, spec) of each hardware name that loads (a bad name is reported at its point)."""
    from hwmodels.spec import HardwareError
    for name in dict.fromkeys(map(str, hws)):
        try:
            yield name, load_hw(name, overrides=base.hw.overrides_dict() or None)
        except (HardwareError, InputError, ValueError, KeyError):
            continue


CYCLE_ONLY_FIELDS = ("hw.accelerator.", "hw.fpga.")  # sections the cycle model reads whole (hwmodels.accelerators)


def _check_cycle_only_axes(base, axes, search, source) -> None:
    """Refuse an axis over a field of the accelerator: / fpga: section that only the cycle model reads
    (buffer sizes, DRAM latency, dataflow...) when no point of the sweep is priced at level cycle: every
    row would come out the same with no warning (as area_mm2, which only the cycle level has, is refused
    at another level). The array's size and rates are accepted: they set the compute peaks every level
    prices (hwmodels.peak_scaling.PEAK_FIELDS)."""
    from hwmodels.peak_scaling import PEAK_FIELDS, reaches_peaks
    if base.level == "cycle" or "cycle" in map(str, _axis_values(axes, search, "level")):
        return
    where = [(f"axes[{i}].{kind}.{f}", f) for i, (kind, body) in enumerate(axes)
             for f in (body["fields"] if kind == "random" else body)]
    where += [(f"search.fields.{f}", f) for f in (search["fields"] if search else ())]
    for w, f in where:
        if f.startswith(CYCLE_ONLY_FIELDS) and not reaches_peaks(f[len("hw."):]):
            sec = f.split('.')[1]
            fail(source, w, f, f"level: cycle in the base experiment or a `level` axis holding cycle (level "
                               f"{base.level!r} reads the {sec}: section only through the compute peaks its "
                               f"array sets ({', '.join(p for p in PEAK_FIELDS if p.startswith(sec))}), so every "
                               f"row would be the same)")


def _warn_system_device(base, axes, search, source) -> None:
    """A point with a system is priced on that system's device, whatever the base `hw:` says (an
    experiment file refuses the mismatch; a sweep's `system` axis overrides it by design): say so, once."""
    import warnings
    if not (base.hw and base.hw.name) or not _axis_values(axes, search, "system"):
        return
    from hwmodels.spec import HardwareError, load_hw
    try:
        hw = load_hw(base.hw.name).name
    except (HardwareError, InputError, ValueError, KeyError):
        return  # the hardware check names a bad `hw:`
    other = sorted({f"{name} ({dev.name})" for name, dev in _system_devices(base, axes, search) if dev.name != hw})
    if other:
        given = f"base hw {hw!r}"
        if getattr(base, "system", None):  # no `hw:` written: the device came from the base's (or an axis's) system
            from hwmodels.system import load_system
            try:
                if load_system(base.system).device.name == hw:
                    given = f"the base system's device {hw!r}"
            except (HardwareError, InputError, ValueError, KeyError):
                pass
        warnings.warn(f"{source}: {given} does not price the points of system {', '.join(other)}: a system "
                      f"point is priced on its own device (the rows' `system` column names it)", stacklevel=3)


def _system_devices(base, axes, search):
    """(system name, its device) of the base system and every `system` axis value: a system
    point is priced on its own device, whatever `hw` says."""
    from hwmodels.spec import HardwareError
    from hwmodels.system import load_system
    names = ([base.system] if base.system else []) + _axis_values(axes, search, "system")
    for name in dict.fromkeys(map(str, names)):
        try:
            yield name, load_system(name).device
        except (HardwareError, InputError, ValueError, KeyError):
            continue




def _check_metric_availability(objectives, constraints, base, axes, search, source) -> None:
    """Refuse at load any objective or constraint no point of the sweep can produce (it would be
    NaN in every row: an empty Pareto front, or every point infeasible), naming the file, the
    field (objectives.<metric> or constraints[i]), the metric and what would produce it."""
    used = set(objectives) | {c.metric for c in constraints}
    varied = {f for _, body in axes for f in (body["fields"] if "fields" in body and "samples" in body else body)}
    if search:
        varied |= set(search["fields"])

    def where(m):
        if m in objectives:
            return f"objectives.{m}"
        return f"constraints[{next(i for i, c in enumerate(constraints) if c.metric == m)}]"

    if base.serve is None:
        for m in sorted(used & set(SERVE_METRICS)):
            fail(source, where(m), m, "a `serve:` section in the base experiment (serving metrics come from a "
                                      "serving run per point; without it the rows are single forward passes)")
    else:
        for m in sorted(used & set(ACCURACY_METRICS + CHECKPOINT_METRICS + ("area_mm2",))):
            fail(source, where(m), m, "a metric a serving point reports (with `serve:` in the base each row is a "
                                      "serving run, which prices no accuracy and no area): "
                                      + ", ".join(SERVING_POINT_METRICS)
                                      + "; or a sweep without `serve:` for it")
    for m in sorted(used & set(ACCURACY_METRICS)):
        if base.accuracy is None:
            fail(source, where(m), m, "an `accuracy:` section in the base experiment (SQNR comes from the "
                                      "accuracy check)")
    for m in sorted(used & set(CHECKPOINT_METRICS)):
        if not (base.accuracy and base.accuracy.checkpoint):
            fail(source, where(m), m, "accuracy.checkpoint in the base experiment (a real checkpoint run on real text)")
    if "area_mm2" in used and base.level != "cycle" and "level" not in varied:
        fail(source, where("area_mm2"), "area_mm2",
             f"level: cycle in the base experiment (level {base.level!r} has no area model)")
    if "area_mm2" in used and base.system and "system" not in varied:
        fail(source, where("area_mm2"), "area_mm2",
             f"a single-device sweep (system {base.system!r}: a system point reports no area)")
