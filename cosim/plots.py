"""Plots an architect would put in a paper: the hierarchical roofline and the memory
footprint. (Sweep plots — Pareto, heatmap, parallel coordinates — are in cosim.dse.pareto.)

The roofline draws one ceiling per number format the ops use and one slanted ceiling per
memory level, marks and labels every ridge point (where a level's slope meets a format's
peak), colours ops by kind (attention apart, so it is never hidden among GEMMs), sizes
them by their share of time, labels the heaviest ops one by one at places where no label
overlaps another (greedy placement on the rendered text), and notes when a stored format
runs at a wider format's ceiling (MXFP4 weights at the bf16 peak of an H100)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from cosim import humanize as H

__all__ = ["roofline_plot", "roofline_figure", "footprint_plot", "kind_colour", "plot_kind", "pyplot",
           "place_labels", "wider_ceiling_notes"]

_LEVEL_STYLES = ["-", "--", ":", "-."]
# fixed colours for the kinds a transformer trace has, so a colour means the same in every plot
_KIND_COLOURS = {"gemm": "#1f77b4", "attention": "#d62728", "softmax": "#ff7f0e", "rmsnorm": "#2ca02c",
                 "layernorm": "#2ca02c", "add": "#9467bd", "silu_mul": "#8c564b", "gelu": "#8c564b",
                 "rope": "#e377c2", "copy": "#7f7f7f", "embedding": "#bcbd22", "quantize": "#17becf",
                 "dequantize": "#17becf", "topk": "#aec7e8", "moe_router": "#ffbb78", "allreduce": "#98df8a"}
_ATTENTION_OPS = ("attn_scores", "attn_pv", "attn_softmax")


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend (no display needed)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_kind(row) -> str:
    """The kind an op is shown as: its kind, except that the pieces of unfused attention
    (QK^T and PV GEMMs, the softmax) are shown as "attention", like the fused kernel."""
    if row["kind"] == "attention" or row["op"] in _ATTENTION_OPS:
        return "attention"
    return row["kind"]


def kind_colour(kind: str):
    if kind in _KIND_COLOURS:
        return _KIND_COLOURS[kind]
    import matplotlib
    return matplotlib.colormaps["tab20"](sum(map(ord, kind)) % 20)


# ---------------------------------------------------------------------------- label placement

# offsets (points) tried around a point, nearest ring first; labels off the first ring get a leader line
_OFFSETS = [(round(r * math.cos(a)), round(r * math.sin(a)))
            for r in (8, 20, 34, 50, 68, 88) for a in np.radians([30, -30, 150, -150, 90, -90, 0, 180,
                                                                    60, -60, 120, -120])]


def place_labels(ax, items, avoid_points=()) -> list:
    """Greedy placement: for each item in order — (text, (x, y)) or (text, (x, y), style
    dict of Text properties) — try offsets around the point and keep the first whose
    rendered box overlaps no earlier label and no marker and stays inside the axes; a label
    that fits nowhere is left out. Returns the placed matplotlib Text artists."""
    fig = ax.figure
    fig.draw_without_rendering()  # fixes the transforms and text sizes the placement measures (no raster)
    renderer = fig.canvas.get_renderer()
    axbox = ax.get_window_extent(renderer)
    taken = []
    for px, py in avoid_points:  # markers: a small box around each point, in display pixels
        dx, dy = ax.transData.transform((px, py))
        taken.append((dx - 3, dy - 3, dx + 3, dy + 3))
    for artist in [ax.get_legend(), *ax.texts]:  # the legend and notes already drawn stay readable
        if artist is not None:
            bb = artist.get_window_extent(renderer)
            taken.append((bb.x0, bb.y0, bb.x1, bb.y1))
    placed = []
    for item in items:
        text, xy, style = item if len(item) == 3 else (*item, {})
        for ox, oy in _OFFSETS:
            kw = {"xytext": (ox, oy), "textcoords": "offset points", "zorder": 5,
                  "ha": "left" if ox > 0 else ("right" if ox < 0 else "center"),
                  "va": "bottom" if oy > 0 else ("top" if oy < 0 else "center"), "fontsize": 7, **style,
                  "bbox": {"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.75}}
            t = ax.annotate(text, xy, **kw)
            bb = t.get_window_extent(renderer)  # the text alone: a leader line may cross markers
            box = (bb.x0, bb.y0, bb.x1, bb.y1)
            t.remove()
            inside = bb.x0 >= axbox.x0 and bb.x1 <= axbox.x1 and bb.y0 >= axbox.y0 and bb.y1 <= axbox.y1
            if inside and not any(_overlap(box, o) for o in taken):
                taken.append(box)
                if math.hypot(ox, oy) > 10:
                    kw["arrowprops"] = {"arrowstyle": "-", "lw": 0.4, "color": "0.4"}
                placed.append(ax.annotate(text, xy, **kw))
                break
    return placed


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


# ---------------------------------------------------------------------------- roofline

def wider_ceiling_notes(reports, hw) -> list[str]:
    """Where a report stores a tensor in a format the hardware has no peak for while its
    ops compute in another format: "MXFP4 weights: no MXFP4 peak on h100_sxm; GEMMs run
    at the BF16 ceiling (989 TFLOP/s)". Derived from the report's formats and rows."""
    notes = []
    for rep in reports:
        fm = rep.meta.get("formats") or {}
        stored, acts = fm.get("weights"), fm.get("acts")
        if not stored:
            continue
        used = sorted({r["compute_fmt"] for r in rep.rows if r["kind"] == "gemm" and r["op"] not in _ATTENTION_OPS
                       and r["compute_fmt"] != stored})
        for f in used:
            peak = hw.peak_flops.get(f)
            at = f"their GEMMs run at the {f.upper()} ceiling" + (f" ({H.flops_per_s(peak)})" if peak else "")
            if acts and f == acts and acts != stored:  # weight-only quantization: the wider operand sets the math
                note = (f"{stored.upper()} weights with {acts.upper()} activations compute in {acts.upper()} "
                        f"(weight-only quantization, on any hardware): {at}")
            elif stored not in hw.peak_flops:
                note = f"{stored.upper()} weights: {hw.name} has no {stored.upper()} peak; {at}"
            else:
                note = f"{stored.upper()} weights: {at}"
            if note not in notes:
                notes.append(note)
    return notes


def _points(reports):
    return [r for rep in reports for r in rep.rows if r["flops"] > 0 and r["latency_s"] > 0 and r["bytes"] > 0]


def _draw_ceilings(ax, hw, fmts, x, x_lo, x_hi) -> list:
    """Slanted memory ceilings and flat compute ceilings, each labelled, and a marker on the
    ridge point of each (format, memory level); returns the ridge labels, for placement."""
    top_peak = max(hw.peak_flops[f] for f in fmts)
    for lvl, style in zip(hw.memory, _LEVEL_STYLES):
        ax.plot(x, np.minimum(x * lvl.bandwidth_Bps, top_peak), style, color="0.35", lw=1.2, zorder=1)
        xl = x_lo * 10 ** 0.8
        if xl * lvl.bandwidth_Bps < top_peak:  # text up-left of a point on the line: the line never crosses it
            ax.annotate(f"{lvl.name.upper()} {H.si(lvl.bandwidth_Bps, 'B/s')}", (xl, xl * lvl.bandwidth_Bps),
                        xytext=(-2, 2), textcoords="offset points", ha="right", va="bottom", fontsize=7,
                        color="0.25", zorder=2)
    ridges = []
    for i, f in enumerate(fmts):
        peak = hw.peak_flops[f]
        colour = f"C{(i + 4) % 10}"
        ridge_main = peak / hw.memory[0].bandwidth_Bps
        ax.hlines(peak, ridge_main, x_hi, colors=[colour], lw=1.4, zorder=1)
        vec = " (vector)" if f == "fp32" else ""
        ax.text(x_hi / 1.1, peak * 1.1, f"{f.upper()}{vec} {H.flops_per_s(peak)}", ha="right", fontsize=7,
                color=colour)
        for lvl in hw.memory:
            ridge = peak / lvl.bandwidth_Bps
            if x_lo < ridge < x_hi:
                ax.plot([ridge], [peak], "D", ms=4, color=colour, mec="k", mew=0.4, zorder=4)
                ridges.append((f"ridge {f.upper()}/{lvl.name.upper()} {ridge:.3g} FLOP/B", (ridge, peak),
                               {"fontsize": 6, "color": colour}))
    return ridges


def not_drawn_note(reports, total: float) -> str | None:
    """The ops a roofline cannot place (no FLOPs, no off-chip bytes or no time), by kind with their share of the
    step's time: "not drawn (no FLOPs or no off-chip bytes): allreduce x3 (collectives) 19.0 % of time, ..."."""
    from workloads.ops import COLLECTIVE_KINDS
    drawn = {id(r) for r in _points(reports)}
    kinds: dict = {}
    for rep in reports:
        for r in rep.rows:
            if id(r) not in drawn:
                k = kinds.setdefault(r["kind"], [0, 0.0])
                k[0] += 1
                k[1] += r["latency_s"] if r["latency_s"] == r["latency_s"] else 0.0
    if not kinds:
        return None
    parts = [f"{k} x{n}" + (" (collective)" if k in COLLECTIVE_KINDS else "") + f" {100 * s / total:.1f} % of time"
             for k, (n, s) in sorted(kinds.items(), key=lambda kv: -kv[1][1])]
    if len(parts) > 4:  # the note box stays small: the largest shares, then how many more kinds
        rest = sum(s for _, s in sorted(kinds.values(), key=lambda v: -v[1])[4:])
        parts = parts[:4] + [f"{len(parts) - 4} more kind(s) {100 * rest / total:.1f} % of time"]
    return (f"{sum(n for n, _ in kinds.values())} op(s) not drawn (no FLOPs or no off-chip bytes): "
            + ", ".join(parts))


def roofline_figure(reports, hw, title: str | None = None, label_top: int = 8, dpi: float = 150,
                    extra_notes: tuple = ()):
    """The roofline as a matplotlib Figure (see roofline_plot). `dpi`: give the one it will
    be saved at: matplotlib caches text sizes per dpi, so the label placement's
    measurements are then reused by the save instead of being redone. `extra_notes`: lines
    the caller adds to the figure's note box (e.g. ceilings of another device)."""
    plt = pyplot()
    reports = list(reports) if isinstance(reports, (list, tuple)) else [reports]
    fig, ax = plt.subplots(figsize=(8, 5.6), dpi=dpi)
    pts = _points(reports)
    xs = np.array([r["flops"] / r["bytes"] for r in pts]) if pts else np.array([1.0])
    x_lo = 10 ** math.floor(math.log10(max(min(xs.min(), 0.5), 1e-3)))
    x_hi = 10 ** math.ceil(math.log10(max(xs.max(), 1e3) * 2))
    x = np.logspace(math.log10(x_lo), math.log10(x_hi), 256)
    used = {r["compute_fmt"] for r in pts}
    fmts = sorted((f for f in hw.peak_flops if f in used or f in ("bf16", "fp8_e4m3", "mxfp4")),
                  key=lambda f: -hw.peak_flops[f]) or [max(hw.peak_flops, key=hw.peak_flops.get)]
    ax.set_xscale("log")
    ax.set_yscale("log")
    _plain_log_ticks(ax)
    ax.set_xlim(x_lo, x_hi)
    top_peak = max(hw.peak_flops[f] for f in fmts)
    ymin = min([r["flops"] / r["latency_s"] for r in pts] + [top_peak / 1e4]) / 3
    ax.set_ylim(ymin, top_peak * 3)
    ridges = _draw_ceilings(ax, hw, fmts, x, x_lo, x_hi)
    # label % and marker area: share of the whole step's latency (every op, collectives and FLOP-less ops
    # included), the table's `share`, not of the drawn ops only; several reports: of their summed latency
    total = sum(rep.total_latency_s for rep in reports) or 1.0
    for kind in sorted({plot_kind(r) for r in pts}):
        sel = [r for r in pts if plot_kind(r) == kind]
        ax.scatter([r["flops"] / r["bytes"] for r in sel], [r["flops"] / r["latency_s"] for r in sel],
                   s=[12 + 500 * r["latency_s"] / total for r in sel], c=[kind_colour(kind)], alpha=0.75,
                   edgecolors="k", linewidths=0.4, label=kind, zorder=3)
    ax.set_xlabel("arithmetic intensity (FLOP per byte of off-chip traffic)")
    ax.set_ylabel("attained performance (FLOP/s)")
    rep = reports[0]
    fm = rep.meta.get("formats", {})
    fmt_txt = f" — W {fm.get('weights')}, A {fm.get('acts')}, KV {fm.get('kv')}" if fm else ""
    ax.set_title(title or f"{rep.model} on {rep.hw}: {rep.phase}, batch {rep.batch}, seq {rep.seq}{fmt_txt}",
                 fontsize=9)
    ax.grid(True, which="major", lw=0.4, alpha=0.5)
    ax.legend(title="op kind (marker area = share of time)", fontsize=7, title_fontsize=7, loc="lower right")
    notes = [*extra_notes, *wider_ceiling_notes(reports, hw)]
    note = not_drawn_note(reports, total)
    if note:
        notes.append(note)
    if len(reports) > 1:
        notes.append(f"op % = share of the {len(reports)} reports' summed latency")
    if notes:
        ax.text(0.01, 0.99, "\n".join(notes), transform=ax.transAxes, ha="left", va="top", fontsize=6.5,
                bbox={"boxstyle": "round,pad=0.3", "fc": "#fff8e1", "ec": "#f0b400", "lw": 0.6}, zorder=6)
    fig.tight_layout()
    _label_ops(ax, pts, total, label_top, ridges)
    return fig


def _plain_log_ticks(ax) -> None:
    """Decade ticks as plain text (0.01, 1, 1000, 10 k; 100 T for FLOP/s) instead of
    matplotlib's mathtext 10^n: the same values, and no mathtext parse on every draw
    (~0.1 s a figure, and ~0.2 s to build the parser on the first). No minor ticks: the
    eight unlabelled marks per decade were ~100 tick objects re-laid out on every draw
    (0.2 s of the report's 0.75 s of figures, measured); the decade grid stays."""
    from matplotlib.ticker import FuncFormatter, NullLocator
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}" if 1e-3 <= v < 1e4 else H.si(v)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: H.si(v)))
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_minor_locator(NullLocator())


def _label_ops(ax, pts, total, label_top, ridges=()):
    """Label every attention op, then the `label_top` heaviest other ops, then the ridge
    points; each op by its own name (never merged, so attention is never hidden in a list)."""
    order = sorted(pts, key=lambda r: -r["latency_s"])
    attn = [r for r in order if plot_kind(r) == "attention"]
    chosen = attn + [r for r in order if plot_kind(r) != "attention"][:label_top]
    items = [(f"{r['op']} ({H.percent(r['latency_s'] / total, 2)})",
              (r["flops"] / r["bytes"], r["flops"] / r["latency_s"])) for r in chosen]
    return place_labels(ax, items + list(ridges), avoid_points=[it[1] for it in items + list(ridges)])


def roofline_plot(reports, hw, path: str | Path, title: str | None = None, label_top: int = 8,
                  extra_notes: tuple = ()):
    """Log-log roofline of one or more reports on `hw`, saved to `path` (.png or .svg):
    each op a point at (FLOP per byte of off-chip traffic, attained FLOP/s)."""
    plt = pyplot()
    fig = roofline_figure(reports, hw, title, label_top, extra_notes=extra_notes)
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------- memory footprint

_PART_COLOURS = {"weights": "#1f77b4", "kv_cache": "#ff7f0e", "activations": "#2ca02c"}
_PART_LABELS = {"weights": "weights", "kv_cache": "KV cache", "activations": "activations"}


def footprint_plot(devices, path: str | Path | None = None, title: str = "", dpi: float | None = None):
    """Stacked horizontal bar per device — weights, KV cache, activations in GB — with the
    device's capacity marked and the parts written out beside it. `devices`: [{name,
    parts: {part: bytes}, capacity: bytes}] (cosim.html_report.footprints(report) gives
    it). Returns the Figure, or the path when `path` is given. `dpi`: the one it will be
    saved at (see roofline_figure); None: matplotlib's default."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 1.5 + 0.5 * len(devices)), dpi=dpi)
    most = max(max(sum(d["parts"].values()), d["capacity"]) for d in devices) / 1e9
    for y, d in enumerate(devices):
        left = 0.0
        for part, b in d["parts"].items():
            ax.barh(y, b / 1e9, left=left, color=_PART_COLOURS.get(part, "0.6"), edgecolor="white", lw=0.5,
                    label=_PART_LABELS.get(part, part) if y == 0 else None)
            left += b / 1e9
        ax.plot([d["capacity"] / 1e9] * 2, [y - 0.42, y + 0.42], color="k", lw=1.6,
                label="capacity" if y == 0 else None)
        fits = left * 1e9 <= d["capacity"]
        parts = " + ".join(f"{_PART_LABELS.get(p, p)} {H.nbytes(b)}" for p, b in d["parts"].items())
        ax.text(most * 0.02 + left, y, f"{parts} = {H.nbytes(left * 1e9)} of {H.nbytes(d['capacity'])}"
                + ("" if fits else " — DOES NOT FIT"), va="center", fontsize=7, color="k" if fits else "#b00020")
    ax.set_yticks(range(len(devices)), [d["name"] for d in devices], fontsize=8)
    ax.set_ylim(-0.6, len(devices) - 0.4)
    ax.set_xlim(0, most * 1.08)
    ax.set_xlabel("memory (GB)")
    ax.legend(fontsize=7, ncol=4, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    if path is None:
        return fig
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
