"""Driving a sweep: expand the axes, skip what the store already holds, run the rest
in tasks on an executor, append each task's records the moment it returns, then build
the results table, the Pareto front and the plots."""

from __future__ import annotations

import functools
import json
import math
import sys
from pathlib import Path

import numpy as np

from cosim.experiment import declared_weights, si_override
from cosim import jsonio
from cosim.dse.evaluate import METRIC_NAMES
from cosim.dse.executors import run_tasks
from cosim.dse.output_guard import remove_stale
from cosim.dse.spec import SweepSpec, apply_point
from cosim.dse.store import ResultStore, key_prefix, row_keys, split_numeric
from cosim.energy_scope import energy_scope_label, is_dynamic_only
from cosim.interrupts import raise_if_requested

__all__ = ["run_sweep", "plan", "make_tasks", "results_frame", "write_outputs"]


def _version() -> str:
    from cosim.version import __version__
    return __version__


def _resolved(base_cfg: dict, point: dict, source: str, weights_from_model: bool = False) -> dict:
    cfg = apply_point(base_cfg, point, source)
    if weights_from_model and "model" in point and "weights" not in point:
        # the base named no weights: each model is priced in its own checkpoint's declared format (a
        # DeepSeek-V3 point in fp8 blocks, a Llama point in bf16), not the base model's
        cfg["weights"] = _declared_weights(cfg["model"])
    cfg.pop("output", None)
    cfg.pop("name", None)
    if cfg.get("prompt_len", 0) is None:  # unset, as an experiment keeps it: the point's key is the older one
        del cfg["prompt_len"]
    cfg["hw"]["overrides"] = {k: si_override(k, v, source) for k, v in sorted(cfg["hw"]["overrides"].items())}
    return cfg


_declared_weights = functools.lru_cache(maxsize=256)(declared_weights)  # one config.json read per model


def _si_column(f: str, vals: list, source: str) -> list:
    """A hardware-override column in SI units (each distinct value parsed once)."""
    if not f.startswith("hw.") or f == "hw.name":
        return vals
    if _numeric_column(vals):
        return vals  # already numbers (SI units): random samples, numeric grids
    conv = {}
    out = []
    for v in vals:
        k = (type(v), v)
        if k not in conv:
            conv[k] = si_override(f[3:], v, source)
        out.append(conv[k])
    return out


def _numeric_column(vals: list) -> bool:
    arr = np.asarray(vals)
    return arr.dtype.kind in "fiu"


def plan(spec: SweepSpec, n: int, cols: dict, start_index: int = 0, seen: set | None = None) -> list[dict]:
    """Points (as columns) -> batches sharing one configuration except for numeric
    hardware overrides: {config, fields, values (n, F), keys, index, point}.
    Duplicate configurations (same key) are dropped, keeping the first."""
    version = _version()
    seen = set() if seen is None else seen
    cols = {f: _si_column(f, v, spec.source) for f, v in cols.items()}
    numeric = [f for f in cols if f.startswith("hw.") and f != "hw.name" and _numeric_column(cols[f])]
    other = [f for f in cols if f not in numeric]
    arrays = {f: np.asarray(cols[f], dtype=float) for f in numeric}  # once, not per group
    out = []
    for t, rows in _groups(cols, other, n):
        point = dict(zip(other, t))
        cfg = _resolved(spec.base.config, point, spec.source, spec.base.weights_from_model)
        if spec.fallback:  # only when set, so existing sweeps keep their keys
            cfg["fallback"] = spec.fallback
        rest, base_num = split_numeric(cfg)
        names = sorted(set(base_num) | {f[3:] for f in numeric})
        rows = np.asarray(rows)
        V = np.empty((len(rows), len(names)))
        for j, name in enumerate(names):
            if f"hw.{name}" in numeric:
                V[:, j] = arrays[f"hw.{name}"][rows]
            else:
                V[:, j] = base_num[name]
        keys = row_keys(key_prefix(rest, names, version), V)
        n_seen = len(seen)
        seen.update(keys)
        if len(seen) - n_seen == len(keys) and len(set(keys)) == len(keys):  # all new, no repeats: keep all
            keep = slice(None)
        else:
            seen.difference_update(keys)
            keep = []
            for i, k in enumerate(keys):
                if k not in seen:
                    seen.add(k)
                    keep.append(i)
            if not keep:
                continue
            keys = [keys[i] for i in keep]
        out.append({"version": version, "config": rest, "fields": names, "values": V[keep],
                    "keys": keys, "index": (rows[keep] + start_index).tolist(), "point": point})
    return out


def _null_back(col, codes, k: int, value):
    """factorize's NaN for the column's null as the null itself (None), read at its first row; another value as
    it is."""
    if isinstance(value, float) and value != value:
        return col[int(np.argmax(codes == k))]
    return value


def _groups(cols: dict, other: list, n: int):
    """(values of the `other` fields, row indices) per distinct combination, in order of
    first appearance — the sweep's non-numeric axes (model, format, batch...) define
    the batches. Vectorised: each column is factorised once."""
    if not other:
        return [((), np.arange(n))]
    import pandas as pd

    codes, uniques = [], []
    for f in other:
        # a null value (recipe: null, prompt_len: null) is a value of the axis: the default sentinel code -1 read
        # u[-1], the last distinct value (a [null, 512] axis priced 512 twice; [null] alone: IndexError)
        c, u = pd.factorize(pd.Series(cols[f], dtype=object), sort=False, use_na_sentinel=False)
        codes.append(c.astype(np.int64))
        uniques.append([_null_back(cols[f], c, k, v) for k, v in enumerate(u)])
    combined = np.zeros(n, dtype=np.int64)
    for c, u in zip(codes, uniques):  # renumbered after each field: never overflows
        combined = np.unique(combined * (len(u) + 1) + c, return_inverse=True)[1].ravel()
    _, first, inverse = np.unique(combined, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # groups in order of first appearance
    rows_sorted = np.argsort(inverse.ravel(), kind="stable")
    bounds = np.searchsorted(inverse.ravel()[rows_sorted], np.arange(len(first) + 1))
    out = []
    for g in order:
        rows = rows_sorted[bounds[g]:bounds[g + 1]]
        i0 = int(first[g])
        out.append((tuple(u[int(c[i0])] for c, u in zip(codes, uniques)), rows))
    return out


def _slice(b: dict, sel) -> dict:
    return {**b, "values": b["values"][sel], "keys": b["keys"][sel], "index": b["index"][sel]}


def make_tasks(batches: list, done: set, batch_size: int, workers: int = 1) -> list[dict]:
    """Drop points already stored, then cut batches into tasks of at most `batch_size`
    points (levels evaluated in vectorised batches: roofline, and any level whose model has
    `evaluate_variants`) or `max(1, batch_size // 256)` (one model call per point), and
    small enough that every worker gets work."""
    from cosim.dse.evaluate import vectorised_level

    todo = []
    for b in batches:
        if done.isdisjoint(b["keys"]):  # nothing of this batch stored yet (a fresh sweep)
            todo.append(b)
            continue
        keep = [i for i, k in enumerate(b["keys"]) if k not in done]
        if keep:
            todo.append({**b, "values": b["values"][keep], "keys": [b["keys"][i] for i in keep],
                         "index": [b["index"][i] for i in keep]})
    n_total = sum(len(b["keys"]) for b in todo)
    tasks = []
    for b in todo:
        cap = batch_size if vectorised_level(b["config"]["level"]) else max(1, batch_size // 256)
        fair = max(1, math.ceil(n_total / (4 * workers))) if workers > 1 else cap
        size = max(1, min(cap, fair))
        tasks += [_slice(b, slice(i, i + size)) for i in range(0, len(b["keys"]), size)]
    return tasks


def _progress(total: int, quiet: bool, desc: str):
    if quiet:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit="cfg", smoothing=0.1, dynamic_ncols=True)


def _execute(spec: SweepSpec, batches: list, store: ResultStore, quiet: bool, desc: str) -> int:
    tasks = make_tasks(batches, store.done, spec.batch_size, spec.workers)
    if not tasks:
        return 0
    bar = _progress(sum(len(t["keys"]) for t in tasks), quiet, desc)
    n = 0
    results = run_tasks(tasks, spec.executor, spec.workers, spec.scheduler)
    try:
        for record in results:
            n += store.append(record)
            if bar is not None:
                bar.update(len(record["keys"]))
            raise_if_requested()  # a Ctrl-C / SIGTERM whose exception Python dropped in a __del__
    finally:
        # Close the executor now (Ctrl-C while storing): left to the garbage collector,
        # the pool was shut down at interpreter exit, waiting for every queued task.
        getattr(results, "close", lambda: None)()
        if bar is not None:
            bar.close()
    return n


def run_sweep(spec: SweepSpec, quiet: bool = False, write: bool = True, output_flag: str | None = None):
    """Run (or resume) a sweep; returns the results as a pandas DataFrame (one row
    per configuration, in axis order) and writes the outputs into `spec.output`.
    An existing output directory must be empty or a sweep's own (cosim.dse.output_guard),
    checked before anything is written; `output_flag` names where the directory came from
    in that error (default: the sweep file's `output`). With `write=False` only the store is
    written, and the guard applies when the store lies in the output directory."""
    from cosim.dse.output_guard import check_sweep_output
    store_dir = Path(spec.store_path).expanduser().resolve().parent
    if write or store_dir == Path(spec.output).expanduser().resolve():
        check_sweep_output(spec.output, spec.store_path, output_flag or f"{spec.source}: output")
    with ResultStore(spec.store_path) as store:
        seen = set()
        n, cols = spec.columns(arrays=True)
        batches = plan(spec, n, cols, seen=seen) if n else []
        _execute(spec, batches, store, quiet, spec.name)
        if spec.search:
            _search(spec, store, quiet, start_index=n, seen=seen)
        # every key planned (axes and search trials) is in `seen`: those are the rows wanted
        store.refresh()  # records another sweep on the same store appended meanwhile
        # a store holding only this run's records holds only wanted keys: no per-record filter
        df = results_frame(spec, store.records, None if store.read_records == 0 else seen)
        # rows the store keeps of another configuration (keys identify configurations: a changed sweep
        # re-run into the same output): kept for a later resume, left out of this run's table and plots
        other = len(store.done - seen) if store.read_records else 0
    df.attrs["store_other_rows"] = other
    from cosim.dse.store import remove_lock_file
    remove_lock_file(spec.store_path)  # a clean finish leaves no results.jsonl.lock beside the store
    if other:
        print(f"note: {spec.store_path} also holds {other:,} row{'s' if other != 1 else ''} of another "
              f"configuration (not in this sweep's axes or search); kept in the store, left out of "
              + (f"the results, pareto.csv, plots and summary.json now written to {spec.output}/ over "
                 f"any earlier ones" if write else "these results"), file=sys.stderr)
    if write:
        write_outputs(spec, df)
    return df


def _search(spec: SweepSpec, store: ResultStore, quiet: bool, start_index: int, seen: set) -> set:
    """NSGA-II over the search fields (optuna). Trials are asked a generation at a
    time, evaluated through the same executor and store (so a resumed search replays
    from the store without recomputing), and told their objective values and
    constraint violations."""
    try:
        import optuna
    except ImportError:
        from workloads.io import InputError
        raise InputError(f"{spec.source}: search: needs optuna; pip install 'cosim[optuna]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    s = spec.search
    # optuna >= 5 takes constraints per trial (Trial.set_constraint); older ones a callback
    per_trial = hasattr(optuna.trial.Trial, "set_constraint")
    kw = {} if per_trial else {"constraints_func": lambda tr: tr.user_attrs["violation"]}
    sampler = optuna.samplers.NSGAIISampler(population_size=s["population"], seed=s["seed"], **kw)
    directions = ["minimize" if d == "min" else "maximize" for d in spec.objectives.values()]
    study = optuna.create_study(directions=directions, sampler=sampler)
    dists = {f: _optuna_dist(optuna, d) for f, d in s["fields"].items()}
    wanted = set()
    bar = _progress(s["trials"], quiet, f"{spec.name} (nsga2)")
    done = 0
    while done < s["trials"]:
        n = min(s["population"], s["trials"] - done)
        trials = [study.ask(dists) for _ in range(n)]
        cols = {f: [tr.params[f] for tr in trials] for f in dists}
        _execute(spec, plan(spec, n, cols, start_index + done, seen=seen), store, True, spec.name)
        for i, tr in enumerate(trials):
            key = plan(spec, 1, {f: [cols[f][i]] for f in cols})[0]["keys"][0]
            wanted.add(key)
            m, status = store.lookup(key)
            viol = [c.violation(m.get(c.metric)) for c in spec.constraints] or [0.0]
            if per_trial:
                for j, v in enumerate(viol):
                    tr.set_constraint(f"c{j}", v)
            else:
                tr.set_user_attr("violation", viol)
            vals = [m.get(o) for o in spec.objectives]
            if status != "ok" or any(v is None or (isinstance(v, float) and math.isnan(v)) for v in vals):
                study.tell(tr, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(tr, vals)
        done += n
        if bar is not None:
            bar.update(n)
    if bar is not None:
        bar.close()
    return wanted


def _optuna_dist(optuna, d):
    if "choices" in d:
        return optuna.distributions.CategoricalDistribution(d["choices"])
    if d.get("int"):
        return optuna.distributions.IntDistribution(int(d["low_si"]), int(d["high_si"]), log=bool(d.get("log")))
    return optuna.distributions.FloatDistribution(d["low_si"], d["high_si"], log=bool(d.get("log")))


@functools.lru_cache(maxsize=256)
def _device_energy_scope(hw_name) -> str:
    """The HardwareSpec.energy_scope of a point's device (a system's device for a system name):
    '' where it gives static power; the row's label is energy_scope_label's (_label_energy_scope)."""
    if not hw_name:
        return ""
    from cosim.simulate import _resolve
    hw = _resolve(hw_name)
    return getattr(hw, "device", hw).energy_scope


def _label_energy_scope(df) -> None:
    """The energy_scope column, holding each row's device scope, as cosim.energy_scope.energy_scope_label
    labels it from that scope and the row's energy (the rule plan and summary.json use): called once per
    distinct (device scope, energy known) pair, as the label depends on nothing else."""
    energy = df["energy_j"].astype(float).to_numpy()
    known = ~np.isnan(energy)
    dev = df["energy_scope"].astype(str).to_numpy()
    for d in dict.fromkeys(dev):
        same = dev == d
        for sel in (same & known, same & ~known):
            if sel.any():
                df.loc[sel, "energy_scope"] = energy_scope_label(d, float(energy[np.flatnonzero(sel)[0]]))


NOT_RECORDED = "not recorded (row stored before session 35)"


def results_frame(spec: SweepSpec, records: list, wanted: set | None = None):
    """One row per stored point (only `wanted` keys if given), in sweep order: index,
    key, the swept fields (SI units), every metric, status/error, `feasible` (all
    constraints hold) and `pareto` (on the front of the objectives among feasible points)."""
    import pandas as pd

    fields = spec.fields()
    if spec.base.weights_from_model and "model" in fields and "weights" not in fields:
        fields.append("weights")  # each model point's own declared format (_resolved): a column, never silent
    columns = ["index", "key"] + fields + list(METRIC_NAMES) + ["level_used", "provenance", "attention_backend",
                                                               "accuracy_provenance", "energy_scope", "notes",
                                                               "status", "error"]
    parts = {c: [] for c in columns}  # per column, one array per record: concatenated once
    # records arrive as tasks finish; each is usually a run of consecutive indices, so
    # ordering the records by their first index mostly leaves no rows to sort
    for r in sorted(records, key=lambda r: r["index"][0] if len(r["index"]) else -1):
        n = len(r["keys"])
        if wanted is None or wanted.issuperset(r["keys"]):
            sel = slice(None)
        else:
            sel = np.array([k in wanted for k in r["keys"]], dtype=bool)
            if not sel.any():
                continue
        parts["index"].append(np.asarray(r["index"])[sel])
        parts["key"].append(r["keys"] if isinstance(sel, slice) else [k for k, s in zip(r["keys"], sel) if s])
        vals = np.asarray(r["values"], dtype=float).reshape(n, len(r["fields"]))
        for f in fields:
            if f.startswith("hw.") and f[3:] in r["fields"]:
                parts[f].append(vals[:, r["fields"].index(f[3:])][sel])
            else:
                parts[f].append(_Const(r["point"].get(f, _from_config(r["config"], f)), _count(sel, n)))
        for m in METRIC_NAMES:
            v = r["metrics"].get(m)
            parts[m].append((np.asarray(v, dtype=float) if isinstance(v, (list, np.ndarray)) else
                             np.full(n, np.nan if v is None else float(v)))[sel])
        # notes: absent from a store written before session 15; attention_backend before session 35, said so (an
        # empty one means the level names no backend)
        for c in ("level_used", "provenance", "attention_backend", "notes"):
            v = r.get(c) if c != "attention_backend" or c in r else NOT_RECORDED
            parts[c].append(_broadcast(v, n)[sel] if isinstance(v, list) else _Const(v, _count(sel, n)))
        acc = r["config"].get("accuracy") or {}
        # which tensors the accuracy metrics come from: never leave a reader guessing
        parts["accuracy_provenance"].append(_Const("checkpoint+synthetic" if acc.get("checkpoint") else
                                                   ("synthetic" if acc else "none"), _count(sel, n)))
        # the device's scope ('' with static power, swept or overridden; else "dynamic only (no static power in
        # <file>)": never a silent 0 W), labelled with the row's energy once the frame is built
        hw_cfg = r["config"].get("hw") or {}
        given = "energy.static_power" in r["fields"] or "energy.static_power" in (hw_cfg.get("overrides") or {})
        parts["energy_scope"].append(_Const("" if given else _device_energy_scope(hw_cfg.get("name")),
                                            _count(sel, n)))
        for c, v in (("status", r["status"]), ("error", r.get("error"))):
            parts[c].append(_broadcast(v, n)[sel] if isinstance(v, list) else _Const(v, _count(sel, n)))
    if parts["index"]:
        data = {c: (_key_column(v) if c == "key" else _concat(v)) for c, v in parts.items()}
        idx = data["index"]
        if len(idx) > 1 and not (idx[1:] >= idx[:-1]).all():  # sweep order (records arrive as tasks finish)
            order = np.argsort(idx, kind="stable")
            data = {c: v.take(order) if hasattr(v, "take") else v[order] for c, v in data.items()}
        df = pd.DataFrame(data, columns=columns)
    else:
        df = pd.DataFrame(columns=columns)
    df["fits_in_memory"] = df["fits_in_memory"].astype(float) > 0
    # no energy at all (a device without energy per FLOP, an error row): "unknown", not "dynamic only"
    _label_energy_scope(df)
    return _mark_front(spec, df)


def _mark_front(spec: SweepSpec, df):
    """The `feasible`, `pareto`, `pareto_ties` and `pareto_tie` columns of a results frame."""
    feasible = (df["status"] == "ok").to_numpy().copy()
    if spec.require_memory_fit:  # a configuration that does not fit is not a design point
        feasible &= df["fits_in_memory"].to_numpy(dtype=bool)
    for c in spec.constraints:
        feasible &= np.array([c.ok(v) for v in df[c.metric]], dtype=bool)
    df["feasible"] = feasible
    costs = np.column_stack([df[o].astype(float).to_numpy() * (1 if d == "min" else -1)
                             for o, d in spec.objectives.items()]) if len(df) else np.empty((0, 1))
    from cosim.dse.pareto import pareto_mask
    front = np.zeros(len(df), dtype=bool)
    ties = np.zeros(len(df), dtype=np.int64)
    tied = np.zeros(len(df), dtype=bool)
    if len(df) and feasible.any():
        sub = np.flatnonzero(feasible)
        front[sub[pareto_mask(costs[sub])]] = True
        ties, tied = pareto_ties(costs, feasible, front)
    df["pareto"] = front
    df["pareto_ties"] = ties  # front rows: how many other feasible rows have bit-identical objectives
    df["pareto_tie"] = tied  # a feasible row left off the front only as the duplicate of a front row
    return df


def pareto_ties(costs, feasible, front):
    """(ties, tied): pareto_mask keeps one of a set of rows whose objectives are bit-identical (a swept
    field that moves no objective); `ties` counts, for each front row, the other feasible rows equal to
    it in every objective, and `tied` marks those rows, so "1 on the Pareto front" can say "(+14 identical)"."""
    ties = np.zeros(len(costs), dtype=np.int64)
    tied = np.zeros(len(costs), dtype=bool)
    ok = np.flatnonzero(feasible & ~np.isnan(costs).any(axis=1))
    if not len(ok):
        return ties, tied
    _, inv, counts = np.unique(costs[ok], axis=0, return_inverse=True, return_counts=True)
    inv = inv.ravel()
    on_front = np.zeros(len(counts), dtype=bool)
    on_front[inv[front[ok]]] = True
    ties[ok[front[ok]]] = counts[inv[front[ok]]] - 1
    tied[ok[on_front[inv] & ~front[ok]]] = True
    return ties, tied


class _Const:
    """One value repeated `n` times (a field constant over a record), expanded late."""
    __slots__ = ("v", "n")

    def __init__(self, v, n):
        self.v, self.n = v, n


def _count(sel, n: int) -> int:
    return n if isinstance(sel, slice) else int(np.count_nonzero(sel))


def _concat(parts: list):
    """One column from its per-record parts: constant-per-record values (model, format,
    status...) are expanded by one take over the records, other parts concatenated.
    Object parts get the dtype pandas would infer for them (text: pandas' string dtype),
    inferred once on the distinct per-record values and expanded with `take`: the same
    column the DataFrame constructor would build from the object array, without
    converting every row's Python object."""
    import pandas as pd
    if not all(isinstance(p, _Const) for p in parts):
        col = np.concatenate([_broadcast(p.v, p.n) if isinstance(p, _Const) else p for p in parts])
        return col if col.dtype != object else _typed(pd.Series(col)).array
    values = [p.v for p in parts]
    counts = np.array([p.n for p in parts], dtype=np.int64)
    per_record = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):  # element-wise: a list value stays one object
        per_record[i] = v
    small = _typed(pd.Series(per_record))  # inferred on the per-record values, as on all rows
    take = np.repeat(np.arange(len(values)), counts)
    return small.to_numpy()[take] if isinstance(small.dtype, np.dtype) else small.array.take(take)


def _typed(s):
    """An object column as numbers when every value is a number (int64 if all are integers,
    else float64: a `batch` or `serve.qps` axis sorts and plots as numbers, not as text), as
    bool when every value is a bool; otherwise unchanged — text (pandas' string dtype) or
    mixed (e.g. `[null, 64]`, `[4, auto]`), which write_outputs stores as text."""
    vals = s.to_numpy(dtype=object) if s.dtype == object else None
    if vals is None or not len(vals):
        return s
    kinds = set(map(type, vals))  # one pass over the types, not an isinstance per row
    if kinds <= {bool, np.bool_}:
        return s.astype(bool)
    if all(issubclass(k, (int, float, np.integer, np.floating)) and not issubclass(k, (bool, np.bool_))
           for k in kinds):
        return s.infer_objects()
    return s


def _key_column(parts: list):
    """The key column with pandas' inferred dtype for text, built from the keys' bytes in
    one piece (pyarrow string buffers) when every key has the usual 24 characters, else
    by the same inference from the objects."""
    import pandas as pd
    n = sum(len(p) for p in parts)
    dtype = pd.Series(np.array(["0" * 24], dtype=object)).dtype
    if n and getattr(dtype, "storage", "") == "pyarrow" and all(min(map(len, p)) == 24 for p in parts if len(p)):
        joined = "".join("".join(p) for p in parts)
        if len(joined) == 24 * n and joined.isascii():  # one byte per character: fixed offsets
            import pyarrow as pa
            offsets = pa.py_buffer(np.arange(0, 24 * (n + 1), 24, dtype=np.int64))
            arr = pa.Array.from_buffers(pa.large_string(), n, [None, offsets, pa.py_buffer(joined.encode())])
            return pd.array(arr, dtype=dtype)
    col = np.empty(n, dtype=object)
    col[:] = [k for p in parts for k in p]
    return pd.Series(col).array


def _broadcast(v, n):
    a = np.empty(n, dtype=object)
    if isinstance(v, list):
        a[:] = v
    else:
        a.fill(v)
    return a


def _from_config(cfg: dict, f: str):
    if f in ("hw", "hw.name"):
        return cfg["hw"]["name"]
    if f.startswith("hw."):
        return cfg["hw"]["overrides"].get(f[3:])
    if f.startswith("accuracy."):
        return (cfg.get("accuracy") or {}).get(f[9:])
    return cfg.get(f)


def parquet_available() -> bool:
    """pyarrow installed (pip install 'cosim[parquet]'): the table is written as Parquet."""
    import importlib.util
    return importlib.util.find_spec("pyarrow") is not None


def level_counts(df) -> tuple[dict, int]:
    """({level_used: rows}, rows priced by `fallback: roofline`) over the ok rows: what the
    printed summary and summary.json say, so a front mixing levels never reads as one model."""
    ok = df[df["status"] == "ok"]
    levels = {str(k): int(v) for k, v in ok["level_used"].value_counts(dropna=False).sort_index().items()}
    return levels, int(ok["provenance"].astype(str).str.startswith("fallback:").sum())


def _row_text(spec: SweepSpec, row) -> str:
    """A row named by its swept fields ('hw tpu_v5e, batch 8'), else by its index."""
    parts = [f"{f} {row[f]}" for f in spec.fields() if f in row.index]
    return ", ".join(parts) if parts else f"index {row['index']}"


def objective_notes(spec: SweepSpec, df) -> dict:
    """What the summary (printed by `cosim sweep`, and summary.json) must not hide:
    - `nan_objectives`: ok rows with a NaN objective ({rows, feasible_rows, by_objective,
      examples}); `feasible_rows` counts those among the feasible rows (the ones the front
      would otherwise rank). The Pareto front cannot rank them, so they are never on it
      whatever their other values;
    - `energy_scopes`: {scope: ok rows}: "dynamic + static", "dynamic only (...)", "unknown (...)"
      (energy n/a), the column's own labels (cosim.energy_scope; blank until session 14);
    - `warnings`: an energy objective ranking rows of different scopes against each other
      (a dynamic-only J/token looks cheaper than a static-included one for no physical reason)."""
    ok = df[df["status"] == "ok"]
    objs = list(spec.objectives)
    nan = ok[objs].astype(float).isna() if len(ok) else ok[objs]
    bad = nan.any(axis=1) if len(ok) else np.zeros(0, dtype=bool)
    feas = ok["feasible"].to_numpy(dtype=bool) if len(ok) else np.zeros(0, dtype=bool)
    notes = {"nan_objectives": {"rows": int(np.sum(bad)),
                                "feasible_rows": int(np.sum(np.asarray(bad, dtype=bool) & feas)),
                                "by_objective": {o: int(nan[o].sum()) for o in objs if len(ok) and nan[o].any()},
                                "examples": [_row_text(spec, r) for _, r in ok[bad].head(3).iterrows()]},
             "energy_scopes": {str(k): int(v)  # every row labelled by results_frame (_label_energy_scope)
                               for k, v in ok["energy_scope"].value_counts(sort=False).items()},
             "warnings": []}
    n = notes["nan_objectives"]
    if n["rows"]:
        by = ", ".join(f"{o} in {k}" for o, k in n["by_objective"].items())
        notes["warnings"].append(
            f"{n['rows']} ok row{'s' if n['rows'] != 1 else ''} with a NaN objective ({by}; e.g. "
            f"{'; '.join(n['examples'])}) cannot be ranked and {'are' if n['rows'] != 1 else 'is'} not on the "
            f"Pareto front; energy_scope and error/provenance say why")
    energy = [o for o in objs if o.startswith("energy")]
    ranked = ok[feas & ~np.asarray(bad, dtype=bool)] if len(ok) else ok
    if energy and len(ranked):
        dyn = ranked["energy_scope"].map(is_dynamic_only).astype(bool)
        if dyn.any() and not dyn.all():
            which = sorted(set(ranked.loc[dyn, "energy_scope"].astype(str)))
            notes["warnings"].append(
                f"energy objective {', '.join(energy)} mixes energy scopes: {int(dyn.sum())} ranked row"
                f"{'s' if dyn.sum() != 1 else ''} {'are' if dyn.sum() != 1 else 'is'} {'; '.join(which)}, "
                f"{int((~dyn).sum())} include static power; the Pareto front ranks them against each other, so "
                f"dynamic-only energies look cheaper than they are. Compare within one scope, or give the "
                f"devices without static power a hw.energy.static_power override")
    return notes


SWEEP_ARTEFACTS = ("results.parquet", "results.csv", "pareto.csv", "pareto.png", "heatmap.png", "parallel.png")


def _not_rewritten(earlier: list, paths: dict) -> list:
    """The artefacts an earlier write listed that this write did not rewrite (results.parquet after a switch to
    --csv, heatmap.png after the axes changed...)."""
    now = {Path(v).name for v in paths.values()}
    return [n for n in earlier if n not in now]


def _earlier_outputs(out: Path) -> list:
    """The artefacts an earlier write of this folder listed in its summary.json ("outputs"): the
    files the sweep itself wrote there, by name, and only names a sweep writes."""
    from cosim.dse.output_guard import _is_sweep_summary
    f = out / "summary.json"
    if not _is_sweep_summary(f):
        return []
    listed = json.loads(f.read_text()).get("outputs")
    names = [Path(str(v)).name for v in (listed.values() if isinstance(listed, dict) else [])]
    return [n for n in dict.fromkeys(names) if n in SWEEP_ARTEFACTS]


def write_outputs(spec: SweepSpec, df) -> dict:
    """results.parquet (default; results.csv with `table_format: csv`), pareto.csv,
    pareto.png and heatmap.png (2-axis grid) or parallel.png, summary.json. Steps over
    2 s say so on stderr (cosim.progress); plots of many points are binned/sampled."""
    import pandas as pd

    from cosim.dse import sweep_plots as P
    from cosim.progress import step

    out = Path(spec.output)
    out.mkdir(parents=True, exist_ok=True)
    earlier = _earlier_outputs(out)  # what the previous write listed, read before summary.json is rewritten
    paths = {}
    fmt = spec.table_format
    if fmt == "parquet" and not parquet_available():
        print(f"cosim: pyarrow is not installed: writing {out / 'results.csv'} instead of results.parquet "
              f"(pip install pyarrow)", file=sys.stderr)
        fmt = "csv"
    with step(f"writing {len(df):,} rows to {out / ('results.' + fmt)}"):
        table = df.copy()
        for c in table.columns:  # mixed-type columns (e.g. a format name axis) as text for Parquet
            if pd.api.types.is_string_dtype(table[c]) and table[c].dtype != object:
                continue  # already text
            if not pd.api.types.is_numeric_dtype(table[c]) and not pd.api.types.is_bool_dtype(table[c]):
                table[c] = table[c].map(lambda v: None if v is None else str(v))
        paths["results"] = out / f"results.{fmt}"
        if fmt == "parquet":
            table.to_parquet(paths["results"], index=False)
        else:
            table.to_csv(paths["results"], index=False)
        paths["pareto_table"] = out / "pareto.csv"
        df[df["pareto"]].to_csv(paths["pareto_table"], index=False)
    ok = df[df["status"] == "ok"]
    title = f"{spec.name}: {len(df)} configurations, {int(df['feasible'].sum())} feasible"
    with step(f"plotting {len(ok):,} points to {out}"):
        phase = spec.base.phase if "phase" not in spec.fields() else None
        p = P.pareto_plot(ok, spec.objectives, out / "pareto.png", title, fields=spec.fields(), phase=phase)
        if p:
            paths["pareto_plot"] = p
        grid_fields = [f for kind, body in spec.axes if kind == "grid" for f in body]
        first_obj = next(iter(spec.objectives))
        if len(grid_fields) == 2 and len(spec.fields()) == 2 and not ok.empty:
            paths["heatmap"] = P.heatmap_plot(ok, grid_fields[0], grid_fields[1], first_obj, out / "heatmap.png", title,
                                              goal=spec.objectives[first_obj], phase=phase)
        elif not ok.empty:
            q = P.parallel_plot(ok, spec.fields() + list(spec.objectives), first_obj, out / "parallel.png", title)
            if q:
                paths["parallel"] = q
    summary = {"name": spec.name, "source": spec.source, "configurations": len(df),
               "ok": int((df["status"] == "ok").sum()), "feasible": int(df["feasible"].sum()),
               "pareto": int(df["pareto"].sum()), "pareto_identical": int(df["pareto_tie"].sum()),
               "objectives": spec.objectives,
               **dict(zip(("levels", "fallback_rows"), level_counts(df))),
               "constraints": [str(c) for c in spec.constraints], "store": str(spec.store_path),
               "store_other_rows": int(df.attrs.get("store_other_rows", 0)),
               **objective_notes(spec, df),
               "outputs": {k: str(v) for k, v in paths.items()},
               "removed_stale": remove_stale(out, _not_rewritten(earlier, paths), "this sweep")}
    (out / "summary.json").write_text(jsonio.dumps(summary, indent=1))
    paths["summary"] = out / "summary.json"
    return paths

