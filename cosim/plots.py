"""Plots an architect would put in a paper: the hierarchical roofline."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

__all__ = ["roofline_plot"]

_PHASE_COLOURS = {"prefill": "#1f77b4", "decode": "#d62728"}
_LEVEL_STYLES = ["-", "--", ":", "-."]


def roofline_plot(reports, hw, path: str | Path, title: str | None = None, label_top: int = 5):
    """Log-log roofline: one ceiling per number format the ops use (and the widest
    the device has), one slanted ceiling per memory level, each op a point at
    (FLOP per byte of off-chip traffic, achieved FLOP/s) sized by its share of time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    reports = reports if isinstance(reports, (list, tuple)) else [reports]
    fig, ax = plt.subplots(figsize=(7.5, 5.2), dpi=150)
    pts = [r for rep in reports for r in rep.rows if r["flops"] > 0 and r["latency_s"] > 0]
    xs = np.array([r["flops"] / r["bytes"] for r in pts]) if pts else np.array([1.0])
    x_lo = 10 ** math.floor(math.log10(max(min(xs.min(), 0.5), 1e-3)))
    x_hi = 10 ** math.ceil(math.log10(max(xs.max(), 1e3) * 2))
    x = np.logspace(math.log10(x_lo), math.log10(x_hi), 256)

    used = {r["compute_fmt"] for r in pts}
    fmts = sorted((f for f in hw.peak_flops if f in used or f in ("bf16", "fp8_e4m3", "mxfp4", "fp32")),
                  key=lambda f: -hw.peak_flops[f])
    top_peak = max(hw.peak_flops[f] for f in fmts) if fmts else max(hw.peak_flops.values())
    for lvl, style in zip(hw.memory, _LEVEL_STYLES):
        y = np.minimum(x * lvl.bandwidth_Bps, top_peak)
        ax.plot(x, y, style, color="0.35", lw=1.2)
        xr = top_peak / lvl.bandwidth_Bps
        xl = x_lo * 1.3
        if xl < xr:
            ax.text(xl, xl * lvl.bandwidth_Bps * 1.15, f"{lvl.name.upper()} {lvl.bandwidth_Bps / 1e12:.3g} TB/s",
                    rotation=0, fontsize=7, color="0.3")
    cmap = plt.get_cmap("tab10")
    for i, f in enumerate(fmts):
        peak = hw.peak_flops[f]
        ridge = peak / hw.memory[0].bandwidth_Bps
        ax.hlines(peak, ridge, x_hi, colors=[cmap(i + 2)], lw=1.4)
        kind = " (vector)" if f == "fp32" else ""
        ax.text(x_hi / 1.1, peak * 1.08, f"{f}{kind} {peak / 1e12:.4g} TFLOP/s", ha="right", fontsize=7, color=cmap(i + 2))

    total = sum(r["latency_s"] for r in pts) or 1.0
    for phase in sorted({r["phase"] for r in pts}):
        sel = [r for r in pts if r["phase"] == phase]
        ax.scatter([r["flops"] / r["bytes"] for r in sel], [r["flops"] / r["latency_s"] for r in sel],
                   s=[15 + 600 * r["latency_s"] / total for r in sel], c=_PHASE_COLOURS.get(phase, "0.2"),
                   alpha=0.7, edgecolors="k", linewidths=0.4, label=phase, zorder=3)
    # ops at (nearly) the same point share one label, heaviest first
    clusters: list[list] = []
    for r in sorted(pts, key=lambda r: -r["latency_s"]):
        xy = (r["flops"] / r["bytes"], r["flops"] / r["latency_s"])
        for c in clusters:
            if abs(math.log10(c[0][0] / xy[0])) < 0.05 and abs(math.log10(c[0][1] / xy[1])) < 0.05:
                c[1].append(r)
                break
        else:
            clusters.append((xy, [r]))
    clusters.sort(key=lambda c: -sum(r["latency_s"] for r in c[1]))
    mid = math.sqrt(x_lo * x_hi)
    for i, (xy, members) in enumerate(clusters[:label_top]):
        names = [m["op"] for m in members]
        text = ", ".join(names[:3]) + (f" +{len(names) - 3}" if len(names) > 3 else "")
        share = 100 * sum(m["latency_s"] for m in members) / total
        right = xy[0] > mid  # keep labels inside the axes: right-hand points label leftwards
        dy = (-14, 8, -26, 20, -38)[i % 5]  # stagger neighbours so labels do not overprint
        ax.annotate(f"{text} ({share:.0f}%)", xy, fontsize=7, xytext=(-8 if right else 8, dy),
                    textcoords="offset points", ha="right" if right else "left",
                    arrowprops={"arrowstyle": "-", "lw": 0.4, "color": "0.4"})
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(x_lo, x_hi)
    ymin = min([r["flops"] / r["latency_s"] for r in pts] + [top_peak / 1e4]) / 3
    ax.set_ylim(ymin, top_peak * 2.5)
    ax.set_xlabel("arithmetic intensity (FLOP per byte of off-chip traffic)")
    ax.set_ylabel("attained performance (FLOP/s)")
    rep = reports[0]
    fm = rep.meta.get("formats", {})
    fmt_txt = f" — W {fm.get('weights')}, A {fm.get('acts')}, KV {fm.get('kv')}" if fm else ""
    ax.set_title(title or f"{rep.model} on {rep.hw}: {rep.phase}, batch {rep.batch}, seq {rep.seq}{fmt_txt}",
                 fontsize=9)
    ax.grid(True, which="major", lw=0.4, alpha=0.5)
    ax.legend(title="phase (size = share of time)", fontsize=7, title_fontsize=7, loc="lower right")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
