"""Driving a sweep: expand the axes, skip what the store already holds, run the rest
in tasks on an executor, append each task's records the moment it returns, then build
the results table, the Pareto front and the plots."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from cosim.experiment import si_override
from cosim.sweep.evaluate import METRIC_NAMES, _hw_shape, group_key
from cosim.sweep.executors import run_tasks
from cosim.sweep.spec import SweepSpec, apply_point
from cosim.sweep.store import ResultStore, config_key

__all__ = ["run_sweep", "resolve_points", "make_tasks", "results_frame", "write_outputs"]


def _version() -> str:
    from cosim import __version__
    return __version__


def _resolved(base_cfg: dict, point: dict, source: str) -> dict:
    cfg = apply_point(base_cfg, point, source)
    cfg.pop("output", None)
    cfg.pop("name", None)
    cfg["hw"]["overrides"] = {k: si_override(k, v, source) for k, v in sorted(cfg["hw"]["overrides"].items())}
    return cfg


def _point_si(point: dict, source: str) -> dict:
    return {f: (si_override(f[3:], v, source) if f.startswith("hw.") and f != "hw.name" else v)
            for f, v in point.items()}


def resolve_points(spec: SweepSpec, points: list[dict], start_index: int = 0) -> list[dict]:
    """Points -> work items {key, version, index, point, config}, duplicates removed."""
    version = _version()
    items, seen = [], set()
    for i, p in enumerate(points):
        cfg = _resolved(spec.base.config, p, spec.source)
        key = config_key(cfg, version)
        if key in seen:
            continue
        seen.add(key)
        items.append({"key": key, "version": version, "index": start_index + i,
                      "point": _point_si(p, spec.source), "config": cfg})
    return items


def make_tasks(items: list, batch_size: int, workers: int = 1) -> list[list]:
    """Group items that share a trace/base spec; cut groups into tasks of at most
    `batch_size` (roofline) or `max(1, batch_size // 256)` (other levels) points, and
    small enough that every worker gets work."""
    shapes, groups = {}, {}
    for it in items:
        name = it["config"]["hw"]["name"]
        if name not in shapes:
            shapes[name] = _hw_shape(name)
    for it in items:
        g = group_key(it["config"], shapes) if it["config"]["level"] == "roofline" else \
            json.dumps({k: v for k, v in it["config"].items() if k != "hw"}, sort_keys=True, default=str)
        groups.setdefault(g, []).append(it)
    tasks = []
    n_total = len(items)
    for members in groups.values():
        roof = members[0]["config"]["level"] == "roofline"
        cap = batch_size if roof else max(1, batch_size // 256)
        fair = max(1, math.ceil(n_total / max(1, 4 * workers))) if workers > 1 else cap
        size = max(1, min(cap, fair))
        tasks += [members[i:i + size] for i in range(0, len(members), size)]
    return tasks


def _progress(total: int, quiet: bool, desc: str):
    if quiet:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit="cfg", smoothing=0.1, dynamic_ncols=True)


def _execute(spec: SweepSpec, items: list, store: ResultStore, quiet: bool, desc: str) -> int:
    todo = [it for it in items if it["key"] not in store]
    if not todo:
        return 0
    bar = _progress(len(todo), quiet, desc)
    n = 0
    try:
        for records in run_tasks(make_tasks(todo, spec.batch_size, spec.workers), spec.executor,
                                 spec.workers, spec.scheduler):
            n += store.append(records)
            if bar is not None:
                bar.update(len(records))
    finally:
        if bar is not None:
            bar.close()
    return n


def run_sweep(spec: SweepSpec, quiet: bool = False, write: bool = True):
    """Run (or resume) a sweep; returns the results as a pandas DataFrame (one row
    per configuration, in axis order) and writes the outputs into `spec.output`."""
    with ResultStore(spec.store_path) as store:
        items = resolve_points(spec, spec.points()) if spec.axes else []
        _execute(spec, items, store, quiet, spec.name)
        if spec.search:
            items += _search(spec, store, quiet, start_index=len(items))
        df = results_frame(spec, [store.records[it["key"]] for it in items if it["key"] in store.records])
    if write:
        write_outputs(spec, df)
    return df


def _search(spec: SweepSpec, store: ResultStore, quiet: bool, start_index: int) -> list:
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
    items_all = []
    bar = _progress(s["trials"], quiet, f"{spec.name} (nsga2)")
    done = 0
    while done < s["trials"]:
        n = min(s["population"], s["trials"] - done)
        trials = [study.ask(dists) for _ in range(n)]
        points = [dict(tr.params) for tr in trials]
        items = resolve_points(spec, points, start_index + done)
        by_key = {it["key"]: it for it in items}
        _execute(spec, items, store, True, spec.name)
        for tr, p in zip(trials, points):
            key = resolve_points(spec, [p])[0]["key"]
            rec = store.records[key]
            m = rec["metrics"]
            viol = [c.violation(m.get(c.metric)) for c in spec.constraints] or [0.0]
            if per_trial:
                for j, v in enumerate(viol):
                    tr.set_constraint(f"c{j}", v)
            else:
                tr.set_user_attr("violation", viol)
            vals = [m.get(o) for o in spec.objectives]
            if rec["status"] != "ok" or any(v is None or (isinstance(v, float) and math.isnan(v)) for v in vals):
                study.tell(tr, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(tr, vals)
        items_all += list(by_key.values())
        done += n
        if bar is not None:
            bar.update(n)
    if bar is not None:
        bar.close()
    return items_all


def _optuna_dist(optuna, d):
    if "choices" in d:
        return optuna.distributions.CategoricalDistribution(d["choices"])
    if d.get("int"):
        return optuna.distributions.IntDistribution(int(d["low_si"]), int(d["high_si"]), log=bool(d.get("log")))
    return optuna.distributions.FloatDistribution(d["low_si"], d["high_si"], log=bool(d.get("log")))


def results_frame(spec: SweepSpec, records: list):
    """One row per record: index, key, the swept fields (SI units), every metric,
    status/error, `feasible` (all constraints hold) and `pareto` (on the front of the
    objectives among feasible points)."""
    import pandas as pd

    fields = spec.fields()
    rows = []
    for r in sorted(records, key=lambda r: r.get("index", 0)):
        row = {"index": r.get("index"), "key": r["key"]}
        for f in fields:
            row[f] = r["point"].get(f, _from_config(r["config"], f))
        for m in METRIC_NAMES:
            v = r["metrics"].get(m)
            row[m] = math.nan if v is None else v
        row["status"], row["error"] = r["status"], r.get("error")
        rows.append(row)
    df = pd.DataFrame(rows, columns=["index", "key"] + fields + list(METRIC_NAMES) + ["status", "error"])
    feasible = (df["status"] == "ok").to_numpy().copy()
    for c in spec.constraints:
        feasible &= np.array([c.ok(v) for v in df[c.metric]], dtype=bool)
    df["feasible"] = feasible
    costs = np.column_stack([df[o].astype(float).to_numpy() * (1 if d == "min" else -1)
                             for o, d in spec.objectives.items()]) if len(df) else np.empty((0, 1))
    from cosim.sweep.pareto import pareto_mask
    front = np.zeros(len(df), dtype=bool)
    if len(df) and feasible.any():
        sub = np.flatnonzero(feasible)
        front[sub[pareto_mask(costs[sub])]] = True
    df["pareto"] = front
    return df


def _from_config(cfg: dict, f: str):
    if f in ("hw", "hw.name"):
        return cfg["hw"]["name"]
    if f.startswith("hw."):
        return cfg["hw"]["overrides"].get(f[3:])
    if f.startswith("accuracy."):
        return (cfg.get("accuracy") or {}).get(f[9:])
    return cfg.get(f)


def write_outputs(spec: SweepSpec, df) -> dict:
    """results.parquet (or .csv without pyarrow), pareto.csv, pareto.png and heatmap.png
    (2-axis grid) or parallel.png, summary.json."""
    import pandas as pd

    from cosim.sweep import pareto as P

    out = Path(spec.output)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    table = df.copy()
    for c in table.columns:  # mixed-type columns (e.g. a format name axis) as text for Parquet
        if not pd.api.types.is_numeric_dtype(table[c]) and not pd.api.types.is_bool_dtype(table[c]):
            table[c] = table[c].map(lambda v: None if v is None else str(v))
    try:
        import pyarrow  # noqa: F401
        paths["results"] = out / "results.parquet"
        table.to_parquet(paths["results"], index=False)
    except ImportError:
        paths["results"] = out / "results.csv"
        table.to_csv(paths["results"], index=False)
    paths["pareto_table"] = out / "pareto.csv"
    df[df["pareto"]].to_csv(paths["pareto_table"], index=False)
    ok = df[df["status"] == "ok"]
    title = f"{spec.name}: {len(df)} configurations, {int(df['feasible'].sum())} feasible"
    p = P.pareto_plot(ok, spec.objectives, out / "pareto.png", title)
    if p:
        paths["pareto_plot"] = p
    grid_fields = [f for kind, body in spec.axes if kind == "grid" for f in body]
    first_obj = next(iter(spec.objectives))
    if len(grid_fields) == 2 and len(spec.fields()) == 2 and not ok.empty:
        paths["heatmap"] = P.heatmap_plot(ok, grid_fields[0], grid_fields[1], first_obj, out / "heatmap.png", title)
    elif not ok.empty:
        q = P.parallel_plot(ok, spec.fields() + list(spec.objectives), first_obj, out / "parallel.png", title)
        if q:
            paths["parallel"] = q
    summary = {"name": spec.name, "source": spec.source, "configurations": len(df),
               "ok": int((df["status"] == "ok").sum()), "feasible": int(df["feasible"].sum()),
               "pareto": int(df["pareto"].sum()), "objectives": spec.objectives,
               "constraints": [str(c) for c in spec.constraints], "store": str(spec.store_path),
               "outputs": {k: str(v) for k, v in paths.items()}}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    paths["summary"] = out / "summary.json"
    return paths

