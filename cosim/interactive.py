"""The interactive roofline: one self-contained HTML page (plotly, with its JavaScript
inlined, so it opens offline) where hovering a point shows the op, its kind, format,
FLOPs, bytes, intensity, latency, share and bound. plotly is an optional extra
(`pip install 'cosim[interactive]'`), imported here only; the static PNG/SVG roofline in
cosim.plots needs nothing beyond matplotlib."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cosim import humanize as H
from cosim.plots import kind_colour, plot_kind, wider_ceiling_notes

__all__ = ["roofline_interactive", "write_interactive", "require_plotly"]

_MISSING = ("interactive report: plotly is not installed; install the optional extra with "
            "`pip install 'cosim[interactive]'` (the static report needs nothing more)")


def require_plotly() -> None:
    """Refuse an interactive report before any work (report.csv/json were written, then the run exited 2
    without report.html): finds plotly without importing it."""
    import importlib.util

    if importlib.util.find_spec("plotly") is None:
        from workloads.io import InputError
        raise InputError(_MISSING + "; nothing was run or written (drop --interactive for the static report)")


def _plotly():
    try:
        import plotly.graph_objects as go
    except ImportError:
        from workloads.io import InputError
        raise InputError(_MISSING) from None
    return go


def _hover(r, total) -> str:
    return "<br>".join([f"<b>{r['op']}</b> ({r['kind']}, x{r['repeat']})",
                        f"format {str(r['compute_fmt']).upper()}, bound: {r['bound']}",
                        f"{H.flops(r['flops'])}, {H.nbytes(r['bytes'])}, {r['flops'] / r['bytes']:.3g} FLOP/B",
                        f"{H.seconds(r['latency_s'])} ({H.percent(r['latency_s'] / total)} of the pass)",
                        f"attained {H.flops_per_s(r['flops'] / r['latency_s'])}"])


def roofline_interactive(rep, hw):
    """A plotly Figure: ceilings per format and memory level, ridge points, ops by kind."""
    go = _plotly()
    pts = [r for r in rep.rows if r["flops"] > 0 and r["latency_s"] > 0 and r["bytes"] > 0]
    total = sum(r["latency_s"] for r in pts) or 1.0
    xs = [r["flops"] / r["bytes"] for r in pts] or [1.0]
    x = np.logspace(np.log10(min(min(xs), 0.5) / 2), np.log10(max(max(xs), 1e3) * 2), 128)
    fmts = sorted({r["compute_fmt"] for r in pts if r["compute_fmt"] in hw.peak_flops} or
                  {max(hw.peak_flops, key=hw.peak_flops.get)}, key=lambda f: -hw.peak_flops[f])
    top = hw.peak_flops[fmts[0]]
    fig = go.Figure()
    for lvl in hw.memory:
        fig.add_trace(go.Scatter(x=x, y=np.minimum(x * lvl.bandwidth_Bps, top), mode="lines",
                                 line={"color": "gray", "dash": "dash"},
                                 name=f"{lvl.name.upper()} {H.si(lvl.bandwidth_Bps, 'B/s')}"))
    for f in fmts:
        peak = hw.peak_flops[f]
        ridges = [peak / lvl.bandwidth_Bps for lvl in hw.memory]
        fig.add_trace(go.Scatter(x=[min(ridges), x[-1]], y=[peak, peak], mode="lines",
                                 name=f"{f.upper()} {H.flops_per_s(peak)}"))
        fig.add_trace(go.Scatter(x=ridges, y=[peak] * len(ridges), mode="markers", marker={"symbol": "diamond"},
                                 name=f"ridge points {f.upper()}",
                                 hovertext=[f"ridge {f.upper()}/{lvl.name.upper()}: {rx:.3g} FLOP/B"
                                            for lvl, rx in zip(hw.memory, ridges)], hoverinfo="text"))
    for kind in sorted({plot_kind(r) for r in pts}):
        sel = [r for r in pts if plot_kind(r) == kind]
        fig.add_trace(go.Scatter(
            x=[r["flops"] / r["bytes"] for r in sel], y=[r["flops"] / r["latency_s"] for r in sel],
            mode="markers", name=kind, hovertext=[_hover(r, total) for r in sel], hoverinfo="text",
            marker={"color": _css(kind_colour(kind)), "line": {"width": 0.5, "color": "black"},
                    "size": [6 + 40 * (r["latency_s"] / total) ** 0.5 for r in sel]}))
    notes = wider_ceiling_notes([rep], hw)
    fig.update_layout(title=f"{rep.model} on {rep.hw}: {rep.phase}, batch {rep.batch}, seq {rep.seq}"
                            + (f"<br><sup>{'; '.join(notes)}</sup>" if notes else ""),
                      xaxis={"type": "log", "title": "arithmetic intensity (FLOP per byte of off-chip traffic)"},
                      yaxis={"type": "log", "title": "attained performance (FLOP/s)"},
                      legend={"title": "hover a point to see the op; marker area = share of time"},
                      template="plotly_white", height=620)
    return fig


def _css(colour) -> str:
    from matplotlib.colors import to_hex
    return to_hex(colour)


def write_interactive(rep, hw, path: str | Path) -> Path:
    """Write the interactive roofline page (plotly.js inlined: works offline)."""
    path = Path(path)
    roofline_interactive(rep, hw).write_html(str(path), include_plotlyjs=True, full_html=True)
    return path
