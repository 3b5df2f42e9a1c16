"""Predicted vs measured: per-op-class and aggregate errors of the roofline and analytical
levels on measurement CSVs, end-to-end step times and energy.

Errors are absolute percentage errors |pred/meas - 1| x 100, summarised by their median
and 90th percentile. By default only the held-out split is scored (dataset.split_of:
the held-out suite, whose shapes the fit never saw).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from cosim.calibrate import dataset
from cosim.eager_host import eager_pipeline
from hwmodels import gpu, gpu_residuals, roofline
from hwmodels.spec import HardwareError, load_hw
from workloads.io import InputError

__all__ = ["ValidationResult", "validate", "e2e_predict", "summarize", "format_tables", "OP_CLASSES", "scatter_plot"]

OP_CLASSES = ("gemm_bf16", "gemm_fp8", "attention_prefill", "attention_decode", "attention_prefill_cudnn",
              "attention_decode_cudnn", "attention_prefill_fa2", "attention_decode_fa2", "attention_prefill_unfused",
              "attention_decode_unfused", "elementwise")


@dataclasses.dataclass
class ValidationResult:
    """Predicted vs measured on one device: per-op rows and per-class error summaries
    (roofline and analytical), plus end-to-end steps and energy loops when measured."""
    hw: str
    split: str
    ops: list  # rows: cls, kind, dims, fmt, measured_s, roofline_s, analytical_s, provenance
    classes: dict  # op class (and "all") -> {"roofline"|"analytical": {n, median, p90}}
    notes: list
    provenance: str  # the analytical parameters' provenance (or fallback:uncalibrated)
    e2e: list | None = None  # rows: model, phase, mode, batch, seq, ctx, layers, fusion, *_s, kernels
    energy: list | None = None  # rows: name, measured_j, analytical_j, roofline_j, measured_w, analytical_w

    def to_dict(self) -> dict:
        """The JSON of `cosim validate --json` (e2e / energy only when measured)."""
        d = dataclasses.asdict(self)
        return {k: v for k, v in d.items() if not (k in ("e2e", "energy") and v is None)}


def ape(pred, meas):
    return np.abs(np.asarray(pred, dtype=float) / np.asarray(meas, dtype=float) - 1.0) * 100.0


def summarize(errors) -> dict:
    e = np.asarray(errors, dtype=float)
    if e.size == 0:
        return {"n": 0, "median": float("nan"), "p90": float("nan")}
    return {"n": int(e.size), "median": float(np.median(e)), "p90": float(np.percentile(e, 90))}


def _roofline_latency(op, hw):
    return roofline.estimate(op, hw).latency_s


def _trace_of(row):
    from workloads.builder import build_trace
    from workloads.models import load_model

    model = dataclasses.replace(load_model(row["model"]), layers=int(row["layers"]))
    phase = row["phase"]
    seq = int(row["seq"]) if phase == "prefill" else int(row["ctx"]) + 1  # decode attends ctx + the new token
    # a measured row: the GPU ran this length (e.g. decode at a 4,096-token prompt + 1 on Llama-2)
    return build_trace(model, phase, int(row["batch"]), seq, profile=e2e_profile(row), allow_beyond_max_context=True)


def e2e_profile(row: dict):
    """The implementation profile the measured end-to-end model ran (microbench.Llama):
    fusion eager = the plain model; engine = fused QKV and gate-up GEMMs (RoPE and norms
    as in the plain model); attention = the SDPA backend of the row (attn_impl)."""
    from workloads.profiles import get_profile
    backend = dataset.backend_of(row.get("attn_impl") or "")
    name = {"engine": "engine_gemm", "engine_fused": "engine"}.get(row.get("fusion") or "eager", "eager")
    return get_profile(name, attention=backend)


def e2e_parts(row: dict, hw, P):
    """(power-capped op time before the launch overlap, kernels, repeat) arrays over the ops of
    one end-to-end row's trace."""
    trace = _trace_of(row)
    costs = [gpu.estimate(op, hw, params=P) for op in trace.ops]
    return (np.array([c.details["power_capped_s"] for c in costs]), np.array([c.details["kernels"] for c in costs]),
            np.array([op.repeat for op in trace.ops]))


def e2e_predict(row: dict, hw, P, mode: str = "graph", level: str = "analytical") -> dict:
    """Predicted step time of one end-to-end row: the lead's trace builder on the same
    model shape (layers as measured), each op costed by the level, plus launch costs:
    graph = sum of in-stream kernel times; eager = a host/GPU pipeline (`eager_pipeline`)."""
    trace = _trace_of(row)
    if level == "roofline":
        from hwmodels.estimate import ops_as_priced
        ops = ops_as_priced(trace.ops, hw, "roofline")[0]  # an eager-attention profile: the kernels it launches
        costs, _ = roofline.estimate_trace(ops, hw)
        return {"latency_s": sum(c.latency_s * op.repeat for c, op in zip(costs, ops)), "kernels": 0,
                "gpu_s": None}
    costs = [gpu.estimate(op, hw, params=P) for op in trace.ops]
    gpu_s = sum(c.latency_s * op.repeat for c, op in zip(costs, trace.ops))
    kernels = sum(c.details.get("kernels", 1) * op.repeat for c, op in zip(costs, trace.ops))
    t = gpu_s  # op latencies are in-stream times (launch latency hidden), as in a CUDA graph
    if mode == "eager":
        t = eager_pipeline(trace.ops, costs, P["eager.cpu_per_kernel"])
    return {"latency_s": t, "kernels": kernels, "gpu_s": gpu_s}


def _default_sibling(measurements: Path, what: str):
    """The e2e/energy measurements of the same runs: a run manifest itself where any listed run has
    raw_<run>/<what>.csv, a flat *_ops.csv's sibling *_<what>.csv where it exists, else None (nothing to score)."""
    if dataset.is_manifest(measurements):
        return measurements if dataset.run_files(measurements, f"{what}.csv") else None
    try:
        p = dataset.sibling(measurements, what)
    except InputError:  # a name with neither _ops nor _runs has no siblings
        return None
    return p if p.is_file() else None


def _suites_of(split: str) -> str:
    """The suite(s) whose rows make up a --split (from dataset.SUITES, the one split table)."""
    if split == "all":
        return "any suite"
    names = [s for s, sp in dataset.SUITES.items() if sp == split]
    return f"the {' / '.join(names)} suite{'s' if len(names) > 1 else ''}" if names else f"a {split!r} suite"


def _missing_sibling_note(measurements: Path, what: str) -> str:
    """The visible note when validate finds no <what> measurements next to the ops measurements."""
    if dataset.is_manifest(measurements):
        where = f"no run listed in {measurements} has raw_<run>/{what}.csv"
    else:
        try:
            where = f"{dataset.sibling(measurements, what)} is absent"
        except InputError:  # a name with neither _ops nor _runs has no siblings
            where = f"{measurements.name} is not named <prefix>_ops.csv / <prefix>_runs.csv, so it has no sibling"
    return f"no {what} table: {where} (give --{what} to score one)"


def _given_or_sibling(given, measurements: Path, what: str, notes: list):
    """The <what> measurements to score: --<what> when given, else the default sibling; where there is none,
    a note saying which file is absent (the table is omitted, never silently)."""
    path = Path(given) if given else _default_sibling(measurements, what)
    if path is None:
        notes.append(_missing_sibling_note(measurements, what))
    return path


def measured_devices(measurements: Path) -> list:
    """The GPU names the measurement runs recorded (a manifest's raw_<run>/env.json, or the sibling
    *_env.json that `cosim calibrate` writes beside a flat *_ops.csv: one entry per device run), or [] where
    there is none."""
    if dataset.is_manifest(measurements):
        env = measurements
    else:
        try:
            env = dataset.sibling(measurements, "env", "json")
        except InputError:
            return []
        if not env.is_file():
            return []
    return env_devices(env)


def env_devices(env: Path) -> list:
    """The GPU names an env record lists (a manifest's runs, a flat *_env.json or a raw_<run>/env.json)."""
    try:
        runs = dataset.load_env(env)
    except (OSError, ValueError):
        return []
    if isinstance(runs, dict) and runs.get("device_name"):  # one run's env.json
        return [runs["device_name"]]
    names = {r.get("device_name") for r in runs.values() if isinstance(r, dict)} if isinstance(runs, dict) else set()
    return sorted(n for n in names if n)


def _cross_device_note(measurements: Path, hw, P) -> list:
    """A note where the model scored is not calibrated on the GPU that was measured (validate --hw mi300x
    against H100 kernels is a transfer study, and the table should say so)."""
    devices = measured_devices(measurements)
    if not devices:
        return []
    if P is not None and len(devices) == 1 and P.provenance.startswith(f"calibrated:{devices[0]} ("):
        return []
    priced = P.provenance.split(" (")[0] if P is not None else "no analytical calibration"
    return [f"cross-device: the measurements were taken on {', '.join(devices)}; {hw.name} is priced "
            f"with {priced}"]


DEFAULT_BACKEND_CLASSES = ("attention_prefill", "attention_decode")


def _default_backend_unscored(rows, unpriced, P):
    """Default-backend rows a calibration cannot price honestly: (rows kept, note or None).

    PyTorch's default SDPA on Hopper runs cuDNN. When the measurements hold cuDNN-pinned rows (the device had
    cuDNN) that this calibration could not price, its default backend (e.g. the H100's session-9 FA2-only fit)
    would compare another kernel with the default-backend rows: they are counted as not scored, never priced with
    the other backend's parameters (heldout13/heldout14 rules; review finding s15: priced silently before)."""
    if P is None or not any(c.endswith("_cudnn") for c in unpriced):
        return rows, None
    kept = [r for r in rows if r["cls"] not in DEFAULT_BACKEND_CLASSES]
    counts = {}
    for r in rows:
        if r["cls"] in DEFAULT_BACKEND_CLASSES:
            counts[r["cls"]] = counts.get(r["cls"], 0) + 1
    if not counts:
        return rows, None
    return kept, ("not scored (default-backend rows: the device's default SDPA ran cuDNN, which this calibration "
                  f"did not measure; its default is {P.attention_default}): "
                  + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


def _in_table(table, cls: str, kind: str, dims: dict) -> bool:
    """Is this very shape among a measured-residual table's rows (so a measurement of it is its own nearest
    neighbour)? Read here, not in hwmodels.gpu_residuals: that file is frozen with the held-out suites' model."""
    names = gpu_residuals.feature_names(kind, cls)
    x, group = gpu_residuals.features_of(dims, names), table.groups.get((cls, kind, names))
    if x is None or group is None:
        return False
    return bool((np.abs(group[0] - np.log2(x)).max(axis=1) < 1e-9).any())


def _in_sample_note(split: str, P, include_unreliable: bool = False, meas=None) -> list:
    """A calibration's measured-residual table holds its reliable fit rows' residuals (hwmodels.gpu_residuals): a
    fit row scored with it is corrected by itself, so the fit split's figures are in-sample (review finding, round 9).
    Only for the calibrated device's own rows (validate leaves it out when the rows are another GPU's). `meas`: the
    rows scored; when given, the note counts those of the corrected classes whose shape is in the table, and is left
    out when none is (fit-suite rows measured after the table was built are out of sample for it)."""
    if P is None or P.residuals is None or split not in ("fit", "all"):
        return []
    count = ""
    if meas is not None:
        classes = [(m, gpu.residual_class(m.op)) for m in meas]
        corrected = [(m, c) for m, c in classes if c in P.residuals.rules]
        # the table is the reliable fit rows': a row of another split (fast accumulation, held out) whose shape a fit
        # row shares is not one of them
        inside = sum(m.split == "fit" and m.reliable and _in_table(P.residuals, c, m.op.kind, m.op.dims)
                     for m, c in corrected)
        if not inside:
            return []
        count = f"; {inside:,} of the {len(corrected):,} scored rows of its classes are reliable fit rows in it"
    rows = "reliable fit rows" if split == "fit" else "reliable fit rows among them"
    rows += " (unreliable rows, included here, are not in the table)" if include_unreliable else ""
    return [f"in-sample: the calibration's measured-residual correction ({P.residuals.source}) is built from the fit "
            f"rows{count}, so the {rows} are their own nearest neighbours: in-sample, optimistic (the held-out splits "
            f"are the out-of-sample figures)"]


def validate(hw_name: str, measurements, energy=None, e2e=None, split: str = "test",
             include_unreliable: bool = False) -> ValidationResult:
    """All comparisons of the device's models with the measurements."""
    measurements = Path(measurements)
    hw = load_hw(hw_name)
    P = gpu.params_for(hw)
    notes = ([f"{hw.source}: no analytical calibration — the analytical column is the roofline "
              f"(fallback:uncalibrated)"] if P is None else [])
    cross = _cross_device_note(measurements, hw, P)
    meas = [m for m in dataset.load_ops(measurements) if m.op is not None]
    if split != "all":
        meas = [m for m in meas if m.split == split]
    notes += cross
    unreliable = {}
    for m in meas:
        if not m.reliable:
            unreliable[m.cls] = unreliable.get(m.cls, 0) + 1
    if not include_unreliable:
        meas = [m for m in meas if m.reliable]
    notes += [] if cross else _in_sample_note(split, P, include_unreliable, meas)  # another GPU's rows: no table
    if unreliable:
        notes.append(f"{'included' if include_unreliable else 'excluded'} rows whose repeats spread > "
                     f"{dataset.MAX_SPREAD:.0%} of the median (host-bound launches, see dataset.py): "
                     + ", ".join(f"{k} {v}" for k, v in sorted(unreliable.items())))
    if not meas:
        raise InputError(f"{measurements}: rows: no {split}-split rows; expected rows of {_suites_of(split)}")
    rows, unpriced = [], {}
    for m in meas:
        try:
            a = gpu.estimate(m.op, hw)
        except HardwareError as e:  # a backend this calibration did not measure: counted, not guessed
            if "attention backend" not in str(e):
                raise
            unpriced[m.cls] = unpriced.get(m.cls, 0) + 1
            continue
        rows.append({"cls": m.cls, "kind": m.op.kind, "dims": dict(m.op.dims), "fmt": m.op.compute_fmt, "impl": m.impl,
                     "measured_s": m.time_s, "roofline_s": _roofline_latency(m.op, hw),
                     # microbenchmarks time each op alone: compare with the model's isolated time
                     "analytical_s": a.details.get("isolated_s", a.latency_s), "provenance": a.provenance})
    if unpriced:
        notes.append("not scored (attention backend the calibration did not measure): "
                     + ", ".join(f"{k} {v}" for k, v in sorted(unpriced.items())))
    rows, unscored = _default_backend_unscored(rows, unpriced, P)
    notes += [unscored] if unscored else []
    classes = {}
    for cls in OP_CLASSES + ("all",):
        sel = [r for r in rows if cls == "all" or r["cls"] == cls]
        classes[cls] = {lvl: summarize(ape([r[f"{lvl}_s"] for r in sel], [r["measured_s"] for r in sel]))
                        for lvl in ("roofline", "analytical")}
    out = ValidationResult(hw=hw.name, split=split, ops=rows, classes=classes, notes=notes,
                           provenance=P.provenance if P else "fallback:uncalibrated")
    e2e = _given_or_sibling(e2e, measurements, "e2e", out.notes)
    if e2e and P is not None:
        out.e2e = []
        for r in dataset.load_e2e(e2e):
            if split != "all" and r["split"] != split:
                continue
            if r["mode"] not in ("graph", "eager"):
                continue
            pa = e2e_predict(r, hw, P, mode=r["mode"])
            pr = e2e_predict(r, hw, P, mode=r["mode"], level="roofline")
            out.e2e.append({**{k: r[k] for k in ("model", "phase", "mode", "batch", "seq", "ctx", "layers")},
                               "fusion": r.get("fusion") or "eager",
                               "measured_s": r["median_s"], "analytical_s": pa["latency_s"],
                               "roofline_s": pr["latency_s"], "kernels": pa["kernels"]})
    energy = _given_or_sibling(energy, measurements, "energy", out.notes)
    if energy and P is not None:
        out.energy = []
        for r in dataset.load_energy(energy):
            if r["kind"] == "idle" or (split != "all" and r["split"] != split):
                continue
            fake = {"kind": r["kind"], "fmt": r.get("fmt") or "bf16", "dims": __import__("json").dumps(r["dims"]),
                    "note": ""}
            op = dataset.op_from_row(fake)
            c = gpu.estimate(op, hw)
            rc = roofline.estimate(op, hw)
            out.energy.append({"name": r["name"], "measured_j": r["energy_per_iter_j"], "analytical_j": c.energy_j,
                                  "roofline_j": rc.energy_j, "measured_w": r["avg_power_w"],
                                  "analytical_w": c.energy_j / c.latency_s})
    return out


def _fmt_row(name, d):
    r, a = d["roofline"], d["analytical"]
    return f"| {name:<18} | {a['n']:>4} | {r['median']:8.1f} | {r['p90']:8.1f} | {a['median']:8.1f} | {a['p90']:8.1f} |"


def format_tables(res: ValidationResult) -> str:
    lines = [f"hardware {res.hw}, split={res.split} ({'held-out shapes only' if res.split == 'test' else res.split}); "
             f"analytical parameters: {res.provenance}", ""]
    lines += ["Per-op kernel time, absolute % error",
              "| op class           |    n | roofline median | p90 | analytical median | p90 |".replace(
                  " roofline median | p90 | analytical median | p90 |", " roof med | roof p90 |  ana med |  ana p90 |"),
              "|--------------------|-----:|---------:|---------:|---------:|---------:|"]
    for cls in OP_CLASSES + ("all",):
        if res.classes[cls]["analytical"]["n"]:
            lines.append(_fmt_row("ALL op classes" if cls == "all" else cls, res.classes[cls]))
    if res.e2e:
        lines += ["", "End to end (predicted sum over the trace vs measured step), absolute % error",
                  "| model        | fusion | phase   | mode  |  n | roof med | roof p90 |  ana med |  ana p90 |",
                  "|--------------|--------|---------|-------|---:|---------:|---------:|---------:|---------:|"]
        groups = {}
        for r in res.e2e:
            groups.setdefault((r["model"], r.get("fusion", "eager"), r["phase"], r["mode"]), []).append(r)
        for phase, mode in (("decode", "graph"), ("prefill", "eager"), ("decode", "eager")):
            for fu in sorted({k[1] for k in groups}):
                groups[("ALL", fu, phase, mode)] = [r for r in res.e2e if r["phase"] == phase and r["mode"] == mode
                                                    and r.get("fusion", "eager") == fu]
        for key in sorted(groups, key=lambda k: (k[0] == "ALL", k)):
            g = groups[key]
            if not g:
                continue
            ra = summarize(ape([x["roofline_s"] for x in g], [x["measured_s"] for x in g]))
            aa = summarize(ape([x["analytical_s"] for x in g], [x["measured_s"] for x in g]))
            lines.append(f"| {key[0]:<12} | {key[1]:<6} | {key[2]:<7} | {key[3]:<5} | {aa['n']:>2} | {ra['median']:8.1f} | "
                         f"{ra['p90']:8.1f} | {aa['median']:8.1f} | {aa['p90']:8.1f} |")
    if res.energy:
        lines += ["", "Energy per op (NVML loops), absolute % error",
                  "| op                          | measured J | analytical J | err % | roofline J | err % |",
                  "|-----------------------------|-----------:|-------------:|------:|-----------:|------:|"]
        for r in res.energy:
            ea = abs(r["analytical_j"] / r["measured_j"] - 1) * 100
            er = abs(r["roofline_j"] / r["measured_j"] - 1) * 100
            lines.append(f"| {r['name']:<27} | {r['measured_j']:10.4g} | {r['analytical_j']:12.4g} | {ea:5.1f} | "
                         f"{r['roofline_j']:10.4g} | {er:5.1f} |")
        ea = summarize(ape([r["analytical_j"] for r in res.energy], [r["measured_j"] for r in res.energy]))
        er = summarize(ape([r["roofline_j"] for r in res.energy], [r["measured_j"] for r in res.energy]))
        lines.append(f"| ALL (median / p90)          |            |              | {ea['median']:5.1f} | "
                     f"           | {er['median']:5.1f} |")
        lines.append(f"|                             |            |              | {ea['p90']:5.1f} |            | {er['p90']:5.1f} |")
    for n in res.notes:
        lines.append(f"note: {n}")
    return "\n".join(lines)


def scatter_plot(res: ValidationResult, path) -> Path:
    """Write the predicted-vs-measured scatter to `path` (.png, .svg or .pdf; its folder is made) and return it."""
    path = Path(path)
    if path.suffix.lower() not in (".png", ".svg", ".pdf"):  # matplotlib would write a JPEG, or noext.png
        raise InputError(f"scatter_plot: {str(path)[:200]}: unknown extension {path.suffix or '(none)'!r}; "
                         f"expected .png or .svg or .pdf")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 5), sharex=True, sharey=True)
    colors = dict(zip(OP_CLASSES, plt.get_cmap("tab20").colors))
    for ax, lvl in zip(axes, ("roofline", "analytical")):
        for cls in OP_CLASSES:
            sel = [r for r in res.ops if r["cls"] == cls]
            if sel:
                ax.scatter([r["measured_s"] * 1e6 for r in sel], [r[f"{lvl}_s"] * 1e6 for r in sel], s=9,
                           alpha=0.7, color=colors[cls], label=cls)
        lo = min(r["measured_s"] for r in res.ops) * 1e6 / 2
        hi = max(r["measured_s"] for r in res.ops) * 1e6 * 2
        ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
        ax.plot([lo, hi], [lo * 1.2, hi * 1.2], "k:", lw=0.6)
        ax.plot([lo, hi], [lo / 1.2, hi / 1.2], "k:", lw=0.6)
        ax.set_xscale("log")
        ax.set_yscale("log")
        s = res.classes["all"][lvl]
        ax.set_title(f"{lvl}: median {s['median']:.1f} %, p90 {s['p90']:.1f} % (n={s['n']})")
        ax.set_xlabel("measured kernel time (us)")
        ax.grid(True, which="both", alpha=0.2)
    axes[0].set_ylabel("predicted (us)")
    axes[1].legend(fontsize=8, loc="upper left")
    fig.suptitle(f"{res.hw}: predicted vs measured, {res.split} split (dotted: +-20 %)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
