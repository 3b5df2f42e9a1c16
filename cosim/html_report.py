"""One experiment's report on disk: report.csv (per-op table, SI units), report.json
(totals, rows, accuracy by layer, provenance) and report.html, rendered from the jinja2
template cosim/templates/report.html.j2: a summary in units people read (ms, GB,
TFLOP/s, %), the memory footprint per device, the roofline, latency/energy by op kind,
accuracy by layer, a sortable per-op table and the provenance of every figure.
`interactive=True` adds report_interactive.html (plotly, optional extra)."""

from __future__ import annotations

import base64
import io
import math
from pathlib import Path

from cosim import humanize as H

__all__ = ["write_report", "report_files", "render_html", "breakdown_plot", "accuracy_plot", "FOOTPRINT_PARTS"]

FOOTPRINT_PARTS = (("weights", "weights"), ("kv_cache", "KV cache"), ("activations", "activations"))
# the report's PNGs are saved at this dpi and every figure is drawn at it from the start:
# matplotlib caches text sizes per dpi, so a figure drawn at another one lays its text out twice
PNG_DPI = 110
_MIN_VISIBLE = 0.01  # op kinds under 1 % of both latency and energy are drawn as one "other" segment


def _png(fig) -> str:
    import matplotlib.pyplot as plt
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=PNG_DPI, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _kind_shares(rows, key: str) -> dict:
    total = sum(r[key] for r in rows) or 1.0
    out: dict = {}
    for r in rows:
        out[r["kind"]] = out.get(r["kind"], 0.0) + r[key] / total
    return out


def visible_kinds(rows) -> tuple[list, list]:
    """(kinds drawn on their own, kinds folded into "other"): a kind is drawn when it is
    at least 1 % of latency or of energy, so the legend lists only what can be seen."""
    lat, en = _kind_shares(rows, "latency_s"), _kind_shares(rows, "energy_j")
    kinds = sorted(lat, key=lambda k: -lat[k])
    shown = [k for k in kinds if max(lat[k], en.get(k, 0.0)) >= _MIN_VISIBLE]
    return shown, [k for k in kinds if k not in shown]


def breakdown_plot(rep):
    """Two stacked horizontal bars, share of latency and of energy per op kind; kinds too
    small to see are one grey "other" segment whose legend entry names them."""
    from cosim.plots import kind_colour, pyplot

    plt = pyplot()
    shown, small = visible_kinds(rep.rows)
    lat, en = _kind_shares(rep.rows, "latency_s"), _kind_shares(rep.rows, "energy_j")
    segments = [(k, kind_colour(k)) for k in shown] + ([("other", "0.75")] if small else [])
    fig, ax = plt.subplots(figsize=(7.5, 2.6), dpi=PNG_DPI)
    for y, shares in enumerate((lat, en)):
        left = 0.0
        for k, colour in segments:
            w = sum(shares.get(s, 0.0) for s in small) if k == "other" else shares.get(k, 0.0)
            label = None
            if y == 0:
                label = (f"other: {', '.join(small)} (< {H.percent(_MIN_VISIBLE, 2)} each)"
                         if k == "other" else k)
            ax.barh(y, w, left=left, color=colour, edgecolor="white", lw=0.5, label=label)
            if w > 0.06:
                ax.text(left + w / 2, y, H.percent(w, 2), ha="center", va="center", fontsize=7)
            left += w
    ax.set_yticks([0, 1], ["latency", "energy"])
    ax.set_xlim(0, 1)
    ax.xaxis.set_major_formatter(lambda v, _: H.percent(v, 2))
    ax.set_xlabel("share of the forward pass")
    ax.legend(fontsize=7, ncol=min(len(segments), 4), loc="upper center", bbox_to_anchor=(0.5, -0.4))
    fig.tight_layout()
    return fig


def accuracy_plot(rep):
    """SQNR (dB) of every sampled (op, layer); None when the report has no accuracy."""
    acc = rep.meta.get("accuracy")
    if not acc or not acc.get("by_layer"):
        return None
    from cosim.plots import pyplot

    plt = pyplot()
    recs = acc["by_layer"]
    ops = list(dict.fromkeys(r["op"] for r in recs))
    layers = sorted({r["layer"] for r in recs})
    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=PNG_DPI)
    width = 0.8 / max(1, len(layers))
    for j, layer in enumerate(layers):
        ys = [next((r["sqnr_db"] for r in recs if r["op"] == op and r["layer"] == layer), math.nan) for op in ops]
        ax.bar([i + j * width for i in range(len(ops))], ys, width, label=f"layer {layer}")
    ax.set_xticks([i + width * (len(layers) - 1) / 2 for i in range(len(ops))], ops, rotation=30, fontsize=7)
    ax.set_ylabel("output SQNR (dB), higher is better")
    ax.set_title(f"accuracy by layer ({acc['sample']['tokens']} tokens x <= {acc['sample']['rows']} rows sampled)",
                 fontsize=9)
    ax.grid(True, axis="y", lw=0.4, alpha=0.5)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------- the page's data

def footprints(rep) -> list[dict]:
    """[{name, parts: {weights, kv_cache, activations} bytes, capacity}] — one entry per
    device: `rep.meta["footprint_by_device"]` ({device: {part: bytes, "capacity": bytes}})
    when a report spans several devices, else the report's own footprint."""
    per = rep.meta.get("footprint_by_device")
    if per:
        return [{"name": name, "parts": {k: float(d.get(k, 0.0)) for k, _ in FOOTPRINT_PARTS},
                 "capacity": float(d.get("capacity", rep.capacity_bytes))} for name, d in per.items()]
    return [{"name": rep.hw, "parts": {k: float(rep.footprint.get(k, 0.0)) for k, _ in FOOTPRINT_PARTS},
             "capacity": float(rep.capacity_bytes)}]


def _footprint_view(rep) -> dict:
    devices = []
    for d in footprints(rep):
        total = sum(d["parts"].values())
        devices.append({"name": d["name"], "sizes": [H.nbytes(d["parts"][k]) for k, _ in FOOTPRINT_PARTS],
                        "total": H.nbytes(total), "capacity": H.nbytes(d["capacity"]),
                        "fits": total <= d["capacity"]})
    return {"parts": [label for _, label in FOOTPRINT_PARTS], "devices": devices}


def _layout_summary(rep) -> tuple[list[tuple], str]:
    """A parallel run's rows and totals are one device's micro-batch trace: the layout's own
    figures (step, tokens/s, system energy) come first, as `cosim simulate --parallel` prints
    its `layout:` line; the per-device rows then say whose they are."""
    par = rep.meta.get("parallel") or {}
    if not par.get("step_latency_s"):
        return [], ""
    from cosim.parallel_timing import layout_step, system_energy_formula
    st, mb = layout_step(rep), par["microbatches"]
    return [("layout", f"{par['label']} ({par['devices']} devices), global batch {par['global_batch']}, {mb} "
                       f"micro-batch{'es' if mb > 1 else ''}, pipeline bubble {H.percent(par['bubble_fraction'])}",
             False),
            ("layout step time", H.seconds(st["step_latency_s"]), False),
            ("layout throughput", f"{st['tokens_per_s']:,.1f} tokens/s", False),
            ("system energy per token", H.joules(st["energy_per_token_j"]), False),
            ("system energy per step", f"{H.joules(st['energy_j'])} = {system_energy_formula(rep, st)}", False)], \
        " (one device's micro-batch trace)"


def _scope(t: dict) -> str:
    """', dynamic only (no static power in <file>)' when the device gives no static power."""
    return f", {t['energy_scope']}" if t.get("energy_scope") else ""


def _summary(rep) -> list[tuple]:
    t = rep.totals()
    lat = t["total_latency_s"]
    s, one = _layout_summary(rep)
    s += [("latency per forward pass" + one, H.seconds(lat), False),
          # the trace's own figures (a parallel report's totals.tokens_per_s / energy_per_token_j are the layout's,
          # given above)
          ("throughput" + one, f"{rep.tokens_per_s:,.1f} tokens/s", False),
          ("energy per token" + one, H.joules(rep.energy_per_token_j) + _scope(t), False),
          ("energy per forward pass" + one, H.joules(t["total_energy_j"]) + _scope(t), False),
          ("work", f"{H.flops(t['total_flops'])}, {H.nbytes(t['total_bytes'])} moved", False),
          ("attained compute", H.flops_per_s(t["total_flops"] / lat if lat else math.nan), False),
          ("attained bandwidth", H.si(t["total_bytes"] / lat if lat else math.nan, "B/s"), False),
          ("implementation", rep.meta.get("implementation") or "none given: a plain Hugging Face model's kernels "
                                                                "(as profile eager)", False),
          ("memory footprint", f"{H.nbytes(t['memory_bytes'])} of {H.nbytes(t['capacity_bytes'])} "
           f"({H.percent(t['memory_bytes'] / t['capacity_bytes'] if t['capacity_bytes'] else math.nan)})"
           + ("" if t["fits_in_memory"] else " — DOES NOT FIT"), not t["fits_in_memory"])]
    inputs = rep.meta.get("inputs") or {}
    if inputs.get("attention_backend"):  # as the CLI header: the backend that priced attention, and who chose it
        after = next(i for i, row in enumerate(s) if row[0] == "implementation") + 1
        s.insert(after, ("attention backend", f"{inputs['attention_backend']} ({inputs['backend_chosen_by']})", False))
    if rep.meta.get("eager_host"):  # the latency above is GPU time: what eager PyTorch's host launches make of it
        from cosim.eager_host import EagerHostStep
        eager = EagerHostStep(**rep.meta["eager_host"])
        after = next(i for i, row in enumerate(s) if row[0].startswith("latency per forward pass")) + 1
        s.insert(after, ("latency launched eagerly (CUDA graphs off)" + one, eager.describe(), eager.host_bound))
    if rep.meta.get("area_mm2") is not None:
        n = rep.meta.get("area_devices") or 1
        s.append(("area", f"{rep.meta['area_mm2']:.4g} mm²" if n == 1 else
                  f"{rep.meta['area_mm2']:.4g} mm² per device × {n} = {rep.meta['area_total_mm2']:.4g} mm²", False))
    acc = rep.meta.get("accuracy") or {}
    if acc.get("min_sqnr_db") is not None:
        s.append(("worst op output SQNR (synthetic tensors, pooled over the sampled layers)", f"{acc['min_sqnr_db']:.2f} dB", False))
    n_nan = sum(1 for r in rep.rows if str(r.get("accuracy_status", "ok")).startswith("nan"))
    if n_nan:  # a NaN figure is shown with its reason, never dropped
        s.append(("ops with NaN accuracy", f"{n_nan} (see the accuracy status column)", True))
    ck = acc.get("checkpoint")
    if ck:
        s.append((f"perplexity on {ck['checkpoint']} (real checkpoint)",
                  f"{ck['baseline_perplexity']:.4g} → {ck['perplexity']:.4g} (Δ {ck['perplexity_delta']:+.3g}), "
                  f"KL {ck['kl']:.3g}, top-1 agreement {H.percent(ck['top1_agreement'])}"
                  + (f" — proxy for {ck['proxy_for']}" if ck.get("proxy_for") else "")
                  + ("".join(f" — WARNING: {n}" for n in _ck_warnings(ck))), bool(_ck_warnings(ck))))
    return s


def _ck_warnings(ck: dict) -> list:
    return list(ck.get("warnings") or ck.get("did_not_act") or ())


def checkpoint_notes(rep) -> list:
    """Every note of the real-checkpoint accuracy run (report.json's accuracy.checkpoint.notes), shown in the
    page too; a note saying the recipe did not act comes first (and beside the perplexity in the summary)."""
    ck = (rep.meta.get("accuracy") or {}).get("checkpoint") or {}
    idle = _ck_warnings(ck)
    rest = [n for n in ck.get("notes") or () if n not in idle and n != ck.get("baseline_note")]
    return [f"checkpoint accuracy ({ck.get('checkpoint')}): " + ("WARNING: " if n in idle else "") + n
            for n in idle + rest]


# (column key, header, type, help text, display function of the raw value)
_COLUMNS = (
    ("op", "op", "text", "operation name in the trace", str),
    ("kind", "kind", "text", "op kind", str),
    ("group", "group", "text", "block the op belongs to", str),
    ("repeat", "repeat", "num", "times the op runs per pass (e.g. layers)", lambda v: f"{int(v):,}"),
    ("compute_fmt", "format", "text", "number format the op computes in", lambda v: str(v).upper()),
    ("flops", "FLOPs", "num", "floating-point operations, all repeats", H.flops),
    ("bytes", "bytes", "num", "off-chip bytes moved, all repeats", H.nbytes),
    ("intensity", "intensity", "num", "FLOP per byte of off-chip traffic (n/a: the op moves no off-chip bytes)",
     lambda v: "n/a" if v is None or v != v or math.isinf(v) else f"{v:.3g} FLOP/B"),
    ("bound", "bound", "text", "what limits the op: compute, a memory level, or the systolic array loading its "
                               "stationary tiles (weight-load, kv-load, input-load)", str),
    ("latency_s", "latency", "num", "time, all repeats", H.seconds),
    ("energy_j", "energy", "num", "energy, all repeats", H.joules),
    ("utilization", "utilisation", "num", "attained / peak compute", H.percent),
    ("share", "share of time", "num", "fraction of the pass's latency", H.percent),
    ("sqnr_db", "SQNR (pooled)", "num", "output signal-to-quantization-noise ratio (functional core), pooled over "
                                        "the sampled layers: summed signal / summed noise (per layer: the accuracy plot)",
     lambda v: "" if v is None or v != v else f"{v:.2f} dB"),
    ("accuracy_status", "accuracy status", "text", "ok, nan: <why>, or not measured (no weight or KV operand)",
     str),
    ("provenance", "provenance", "text", "model level and source of the figure", str),
)


def _table(rep) -> tuple[list, list]:
    cols = [c for c in _COLUMNS if any(c[0] in r for r in rep.rows)]
    rows = []
    for r in rep.rows:
        cells = []
        for key, _, typ, _, show in cols:
            v = r.get(key)
            if typ == "num":
                num = float(v) if isinstance(v, (int, float)) and v == v else math.nan
                cells.append({"num": True, "sort": "NaN" if math.isnan(num) else repr(num),
                              "text": "" if v is None else show(v)})
            else:
                cells.append({"num": False, "text": "" if v is None else _clean(show(v))})
        rows.append(cells)
    return [{"label": c[1], "type": c[2], "help": c[3]} for c in cols], rows


def _clean(text: str) -> str:
    """Install paths of bundled files become bundled names (no site-packages in a report)."""
    from workloads.io import bundled_root
    root = str(bundled_root().resolve())
    return text.replace(root + "/", "cosim/configs/").replace(root, "cosim/configs")


def performance_figures(rep, hw, stop=None) -> list | None:
    """The figures drawn from the priced trace alone (roofline, breakdown, footprint);
    None if `stop()` turns true between two figures."""
    from cosim.plots import footprint_plot, roofline_figure

    parts = [("roofline", "Roofline", lambda: roofline_figure(rep, hw, dpi=PNG_DPI),
              "Each point is one op (size = share of time); ceilings per number format "
              "and per memory level, ridge points marked."),
             ("breakdown", "Latency and energy by op kind", lambda: breakdown_plot(rep), None),
             ("footprint", "Memory footprint by part (chart)", lambda: footprint_plot(footprints(rep), dpi=PNG_DPI), None)]
    out = []
    for fid, title, draw, caption in parts:
        if stop is not None and stop():
            return None
        out.append({"id": fid, "title": title, "png": _png(draw())} | ({"caption": caption} if caption else {}))
    return out


class EarlyFigures:
    """`performance_figures` drawn on a background thread while the caller runs the
    accuracy checks, which spend most of their time in numpy and BLAS with the GIL
    released: the report's plots then cost little extra time (report.csv needs no
    pandas: cosim.table_csv). The figures read a snapshot of the report taken here, so
    what the accuracy checks add to it later cannot change them. `add_accuracy(rep)`
    (once the synthetic check is done) draws the accuracy figure on the same thread
    while the checkpoint check still runs. `result()` waits; an error in the thread is
    not kept: render_html then draws the figures itself and the error surfaces there.
    The thread is not a daemon: interpreter exit waits for it (a daemon thread stopped
    inside matplotlib's C++ at exit aborted the process); `cancel()` (Ctrl-C, an error)
    stops it after the figure in progress."""

    def __init__(self, rep, hw):
        import dataclasses
        import threading
        snap = dataclasses.replace(rep, rows=[dict(r) for r in rep.rows], meta=dict(rep.meta))
        self._figures = None
        self._accuracy = None  # the meta["accuracy"] dict add_accuracy handed over
        self.accuracy_png = _NOT_DRAWN  # its figure: PNG text, or None for "no figure"
        self._wake = threading.Event()  # add_accuracy, result or cancel
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._draw, args=(snap, hw), name="cosim-report-plots")
        self._thread.start()

    def _draw(self, rep, hw) -> None:
        try:
            self._figures = performance_figures(rep, hw, stop=self._stop.is_set)
        except Exception:
            self._figures = None
        self._wake.wait()
        acc = self._accuracy
        if acc is not None and not self._stop.is_set():
            try:
                fig = accuracy_plot(_MetaOnly({"accuracy": acc}))
                self.accuracy_png = _png(fig) if fig is not None else None
            except Exception:
                self.accuracy_png = _NOT_DRAWN

    def add_accuracy(self, rep) -> None:
        """Draw the accuracy figure of `rep` now (its per-layer SQNR, which nothing after the
        synthetic check changes; render_html checks that it is still the same list)."""
        acc = rep.meta.get("accuracy")
        if acc is not None:
            self._accuracy = {k: acc.get(k) for k in ("by_layer", "sample")}  # what accuracy_plot reads
        self._wake.set()

    def accuracy_for(self, rep):
        """The drawn accuracy PNG (None: no figure) if it was drawn from `rep`'s figures, else _NOT_DRAWN."""
        acc = rep.meta.get("accuracy")
        same = self._accuracy is not None and acc is not None and \
            all(acc.get(k) is v for k, v in self._accuracy.items())
        return self.accuracy_png if same else _NOT_DRAWN

    def result(self):
        self._wake.set()
        self._thread.join()
        return self._figures

    def cancel(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join()


_NOT_DRAWN = object()


class _MetaOnly:
    """What accuracy_plot reads of a report: its meta."""

    def __init__(self, meta: dict):
        self.meta = meta


def render_html(rep, hw, interactive: str | None = None, early: EarlyFigures | None = None) -> str:
    """The report page as text (jinja2 template, autoescaped)."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    figures = (early.result() if early is not None else None) or performance_figures(rep, hw)
    png = early.accuracy_for(rep) if early is not None else _NOT_DRAWN
    if png is _NOT_DRAWN:
        fig = accuracy_plot(rep)
        png = _png(fig) if fig is not None else None
    if png is not None:
        figures.append({"id": "accuracy", "title": "Accuracy by layer", "png": png})
    columns, rows = _table(rep)
    par = rep.meta.get("parallel") or {}
    batch = (f"batch {rep.batch}" if not par.get("label") else  # the trace's batch is one micro-batch's
             f"global batch {par['global_batch']} on {par['label']} (micro-batch {rep.batch})")
    title = (f"{rep.model} on {rep.hw} — {rep.phase}, {batch}, "
             f"{'prompt' if rep.phase == 'prefill' else 'context'} {rep.seq:,} tokens, {rep.level} model")
    env = Environment(loader=PackageLoader("cosim", "templates"), autoescape=select_autoescape(["html", "j2"]))
    return env.get_template("report.html.j2").render(
        title=title, formats=formats_html_line(rep), recipe=rep.recipe,
        notes=[_clean(n) for n in [*rep.notes, *checkpoint_notes(rep)]], summary=_summary(rep), footprint=_footprint_view(rep),
        figures=figures, interactive=interactive, columns=columns, rows=rows,
        provenance=[(k, _clean(str(v))) for k, v in _provenance(rep).items()])


def formats_html_line(rep) -> str:
    """The page's formats line: the requested formats (H.formats_line), each followed by which stored tensors a
    recipe keeps in which format (meta.format_detail) where it differs."""
    fm = rep.meta.get("formats", {}) or {}
    detail = rep.meta.get("format_detail") or {}
    return ", ".join(H.formats_line({k: v}) + (f" — as stored: {detail[k]}" if k in detail else "")
                     for k, v in fm.items())


def _provenance(rep) -> dict:
    """The report's own provenance (run_experiment fills it), else what every report knows."""
    return rep.meta.get("provenance") or {
        "latency_s, energy_j": f"{rep.level} model on {rep.hw}; per-op provenance column",
        "footprint": "trace builder: parameters x bits/element, KV cache per token x context, live activations"}


# the files write_report writes, by key (report_interactive.html only with `interactive`)
REPORT_FILES = {"csv": "report.csv", "json": "report.json", "html": "report.html",
                "interactive": "report_interactive.html"}


def report_files(interactive: bool) -> list[str]:
    """The names write_report writes into its folder (what `cosim run` guards and cleans up)."""
    return [n for k, n in REPORT_FILES.items() if interactive or k != "interactive"]


def write_report(rep, hw, out_dir: str | Path, interactive: bool = False, early: EarlyFigures | None = None) -> dict:
    """Write report.csv, report.json and report.html (and report_interactive.html when
    `interactive`) into `out_dir`; returns their paths. `early`: the performance figures
    already being drawn (EarlyFigures, started before the accuracy checks)."""
    from cosim import jsonio
    from cosim.report import _default

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {k: out / REPORT_FILES[k] for k in ("csv", "json", "html")}
    rep.to_csv(paths["csv"])
    doc = rep.to_dict()
    doc["accuracy"] = rep.meta.get("accuracy")
    doc["provenance"] = rep.meta.get("provenance", {})
    if rep.meta.get("serve"):  # the serve: block's run (its files are under serve/; the console text is not kept)
        sv = rep.meta["serve"]
        doc["serve"] = {"config": sv.get("config"), "summary": sv["summary"], "notes": sv["notes"],
                        "files": [f"serve/{f}" for f in sv.get("files", ())]}
    paths["json"].write_text(jsonio.dumps(doc, indent=1, default=_default))
    link = None
    if interactive:
        from cosim.interactive import write_interactive
        paths["interactive"] = write_interactive(rep, hw, out / REPORT_FILES["interactive"])
        link = paths["interactive"].name
    paths["html"].write_text(render_html(rep, hw, interactive=link, early=early))
    return paths
