"""The sweep plots: Pareto scatter with labelled front points, heatmap of a 2-axis grid
and parallel coordinates — axes in units people read ("latency per token (ms), lower is
better", ticks "2 TB/s"), categorical axes with their category names as ticks, and a
density rendering (2-D histogram per axis pair) once a sweep has too many points for
lines to be read."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import numpy as np

from cosim import humanize as H
from cosim.plots import place_labels, pyplot

__all__ = ["pareto_plot", "heatmap_plot", "parallel_plot", "metric_label", "axis_scale", "value_text",
           "DENSITY_ABOVE"]

# metric -> (what it is, unit, per-token in decode?)
_METRIC_TEXT = {"latency_s": ("latency per forward pass", "s"), "energy_j": ("energy per forward pass", "J"),
                "tokens_per_s": ("throughput", "tokens/s"), "energy_per_token_j": ("energy per token", "J"),
                "memory_bytes": ("memory footprint", "B"), "capacity_bytes": ("memory capacity", "B"),
                "sqnr_db": ("worst op output SQNR", "dB"), "gemm_sqnr_db": ("worst GEMM output SQNR", "dB"),
                "attention_sqnr_db": ("worst attention output SQNR", "dB"), "area_mm2": ("area", "mm²")}
_NO_PREFIX = ("dB", "mm²", "tokens/s")  # units shown as they are, never rescaled
MAX_SCATTER = 20_000  # more points than this: the Pareto plot bins them (hexbin density of every point)
DENSITY_ABOVE = 2000  # lines drawn one by one up to this many points, a density image beyond
_FRONT_LABELS = 12
MAX_CELL_LABELS = 400  # heatmap cells that get their number printed (20 x 20)
MAX_TICKS = 30  # tick labels per heatmap axis


def axis_scale(values, unit: str) -> tuple[float, str]:
    """(divisor, unit text) that puts the median |value| between 1 and 1000: seconds
    around 2e-3 -> (1e-3, "ms")."""
    v = np.abs(np.asarray(values, dtype=float))
    v = v[np.isfinite(v) & (v > 0)]
    if unit in _NO_PREFIX or not len(v):
        return 1.0, unit
    med = float(np.median(v))
    for scale, p in H.PREFIXES:
        if med >= scale * 0.9995:
            return scale, p + unit
    return H.PREFIXES[-1][0], H.PREFIXES[-1][1] + unit


def metric_label(metric: str, values=(), goal: str | None = None, phase: str | None = None) -> tuple[float, str]:
    """(divisor, axis label): "latency per token (ms), lower is better" for a decode sweep."""
    what, unit = _METRIC_TEXT.get(metric, (metric, ""))
    if phase == "decode" and metric == "latency_s":
        what = "latency per token"  # one decode pass emits one token per sequence
    scale, shown = axis_scale(values, unit) if len(values) else (1.0, unit)
    better = {"min": ", lower is better", "max": ", higher is better"}.get(goal, "")
    return scale, f"{what} ({shown}){better}" if shown else f"{what}{better}"


def _field_kind(field: str):
    """Quantity kind of a swept hardware field ("hw.memory.hbm.bandwidth" -> "bandwidth")."""
    if not field.startswith("hw."):
        return None
    from hwmodels.spec import override_kind
    try:
        return override_kind(field[3:].split("."))
    except (KeyError, IndexError):
        return None


def value_text(field: str, v) -> str:
    """One swept value as people write it: 2e12 on hw.memory.hbm.bandwidth -> "2 TB/s"."""
    if isinstance(v, (float, np.floating)) and float(v).is_integer() and _field_kind(field) is None:
        return str(int(v))
    return H.quantity(v.item() if hasattr(v, "item") else v, _field_kind(field))


def _short_field(field: str) -> str:
    return field.split(".")[-2] + "." + field.split(".")[-1] if field.startswith("hw.") else field


def _log_if_wide(ax, axis: str, vals) -> None:
    vals = np.asarray(vals, dtype=float)
    if len(vals) and (vals > 0).all() and vals.max() / max(vals.min(), 1e-300) > 30:
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")


@contextmanager
def interrupts_held():
    """Ctrl-C / SIGTERM while a figure is laid out and saved waits until that is done, then is raised as
    the interrupt it is (cosim.cli: one line, exit 130 / 143). Raised inside matplotlib's renderer, a
    KeyboardInterrupt came out as "ValueError: Invalid bounding box" (a 67-line traceback, exit 1;
    session 14 audit). Only Python-level handlers are held (Ctrl-C's default one, the CLI's SIGTERM), and
    only in the main thread, where signals are delivered; a save that fails for its own reason with no
    signal pending fails as before."""
    import signal
    import threading
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got, held = [], {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        h = signal.getsignal(sig)
        if callable(h):
            held[sig] = h
            signal.signal(sig, lambda signum, frame: got.append(signum))
    try:
        yield
    except BaseException:
        if not got:
            raise
    finally:
        for sig, h in held.items():
            signal.signal(sig, h)
    if got:  # the handler the signal would have run: KeyboardInterrupt (Ctrl-C) or the CLI's Terminated
        held[got[0]](got[0], None)


def _save(fig, path):
    plt = pyplot()
    try:
        with interrupts_held():
            fig.tight_layout()
            fig.savefig(path)
    finally:
        plt.close(fig)
    return Path(path)


def pareto_plot(df, objectives: dict, path: Path, title: str = "", fields=(), phase: str | None = None,
                draw_only: bool = False):
    """Scatter of the first two objectives; the Pareto front joined and each of its points
    labelled with the swept values that made it ("mxfp4, kv fp8_e4m3, batch 16").
    Returns the path (or the Figure with `draw_only`), None with < 2 objectives."""
    objs = list(objectives)
    if len(objs) < 2 or df.empty:
        return None
    plt = pyplot()
    x, y = objs[0], objs[1]
    sx, lx = metric_label(x, df[x].to_numpy(), objectives[x], phase)
    sy, ly = metric_label(y, df[y].to_numpy(), objectives[y], phase)
    fig, ax = plt.subplots(figsize=(7.5, 5.2), dpi=120)
    feas = df["feasible"].astype(bool)
    if len(df) > MAX_SCATTER:
        # a million points as a binned density (every point counted), not a million markers
        xs, ys = df[x].to_numpy(dtype=float) / sx, df[y].to_numpy(dtype=float) / sy
        log = {a: bool((v > 0).all() and v.max() / max(v.min(), 1e-300) > 30) for a, v in (("x", xs), ("y", ys))}
        for sel, cmap, lab in ((~feas.to_numpy(), "Greys", "violates constraints"), (feas.to_numpy(), "Blues",
                                                                                      "feasible")):
            if sel.any():
                ax.hexbin(xs[sel], ys[sel], gridsize=120, bins="log", mincnt=1, cmap=cmap, linewidths=0,
                          xscale="log" if log["x"] else "linear", yscale="log" if log["y"] else "linear")
                ax.plot([], [], "h", c=plt.get_cmap(cmap)(0.7), label=f"{lab} (binned, {int(sel.sum()):,})")
    else:
        ax.scatter(df.loc[~feas, x] / sx, df.loc[~feas, y] / sy, s=10, marker="x", c="0.7",
                   label="violates constraints")
        ax.scatter(df.loc[feas, x] / sx, df.loc[feas, y] / sy, s=12, c="tab:blue", alpha=0.5, label="feasible")
    front = df[df["pareto"].astype(bool)].sort_values(x)
    ax.plot(front[x] / sx, front[y] / sy, "o-", c="tab:red", ms=5, lw=1.2, label=f"Pareto front ({len(front)})")
    ax.set_xlabel(lx)
    ax.set_ylabel(ly)
    _log_if_wide(ax, "x", df[x] / sx)
    _log_if_wide(ax, "y", df[y] / sy)
    ax.grid(True, lw=0.4, alpha=0.5)
    ax.legend(fontsize=7, loc="best")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fields = [f for f in fields if f in df]
    if fields and len(front):
        step = max(1, len(front) // _FRONT_LABELS)  # a long front: every k-th point, ends included
        pick = front.iloc[sorted(set(range(0, len(front), step)) | {len(front) - 1})]
        items = [(", ".join(f"{_short_field(f)} {value_text(f, r[f])}" for f in fields), (r[x] / sx, r[y] / sy))
                 for _, r in pick.iterrows()]
        place_labels(ax, items, avoid_points=[xy for _, xy in items])
    return fig if draw_only else _save(fig, path)


def heatmap_plot(df, ax_x: str, ax_y: str, metric: str, path: Path, title: str = "", goal: str | None = None,
                 phase: str | None = None, draw_only: bool = False):
    """Metric over a 2-axis grid (the first value of any other varied field), ticks and
    cells in units ("2 TB/s", "12.3 ms")."""
    import pandas as pd

    plt = pyplot()
    xs = sorted(dict.fromkeys(df[ax_x]), key=_sort_key)
    ys = sorted(dict.fromkeys(df[ax_y]), key=_sort_key)
    first = df.drop_duplicates([ax_y, ax_x], keep="first")  # one vectorised lookup, not list.index per cell
    grid = np.full((len(ys), len(xs)), np.nan)
    grid[pd.Index(ys).get_indexer(first[ax_y]), pd.Index(xs).get_indexer(first[ax_x])] = \
        first[metric].astype(float).to_numpy()
    scale, label = metric_label(metric, grid[np.isfinite(grid)], goal, phase)
    fig, ax = plt.subplots(figsize=(7, 4.8), dpi=120)
    im = ax.imshow(grid / scale, aspect="auto", origin="lower", cmap="viridis", interpolation="nearest")
    for field, vals, set_ticks, kw in ((ax_x, xs, ax.set_xticks, {"rotation": 30}), (ax_y, ys, ax.set_yticks, {})):
        idx = list(range(0, len(vals), max(1, -(-len(vals) // MAX_TICKS))))  # at most MAX_TICKS labels
        set_ticks(idx, [value_text(field, vals[i]) for i in idx], fontsize=7, **kw)
    ax.set_xlabel(ax_x)
    ax.set_ylabel(ax_y)
    lo, hi = np.nanmin(grid / scale), np.nanmax(grid / scale)
    if grid.size <= MAX_CELL_LABELS:  # beyond ~20 x 20 per-cell numbers are unreadable
        for i, j in zip(*np.nonzero(~np.isnan(grid))):
            v = grid[i, j] / scale
            dark = hi > lo and (v - lo) / (hi - lo) > 0.6  # viridis is light at the top: dark text there
            ax.text(j, i, f"{v:.3g}", ha="center", va="center", fontsize=7, color="k" if dark else "w")
    fig.colorbar(im, ax=ax, label=label)
    ax.set_title(title, fontsize=9)
    return fig if draw_only else _save(fig, path)


def _sort_key(v):
    return (0, float(v), "") if isinstance(v, (int, float, np.number)) and not isinstance(v, bool) else (1, 0.0, str(v))


def _axis_data(df, c):
    """(values in [0, 1], tick positions, tick labels) of one parallel-coordinates axis:
    category names for text/bool columns, 5 unit-formatted ticks for numbers."""
    from pandas.api.types import is_bool_dtype, is_numeric_dtype
    v = df[c]
    if not is_numeric_dtype(v) or is_bool_dtype(v):
        # a null axis value (recipe: null) is the category "null": astype(str) kept it NaN, which sorted() refused
        text = v.map(lambda x: "null" if x is None or (isinstance(x, float) and x != x) else str(x))
        cats = sorted(dict.fromkeys(text))
        pos = np.linspace(0, 1, len(cats)) if len(cats) > 1 else np.array([0.5])
        index = {s: pos[i] for i, s in enumerate(cats)}
        return np.array([index[s] for s in text]), pos, cats
    f = v.astype(float).to_numpy()
    lo, hi = np.nanmin(f), np.nanmax(f)
    if hi <= lo:
        return np.full(len(f), 0.5), np.array([0.5]), [_num_text(c, lo)]
    ticks = np.linspace(lo, hi, 5)
    return (f - lo) / (hi - lo), (ticks - lo) / (hi - lo), [_num_text(c, t) for t in ticks]


def _num_text(col: str, v: float) -> str:
    if col in _METRIC_TEXT:
        unit = _METRIC_TEXT[col][1]
        return f"{v:.3g} {unit}" if unit in _NO_PREFIX else H.si(v, unit)
    return value_text(col, v)


def parallel_plot(df, columns: list, color_by: str, path: Path, title: str = "", draw_only: bool = False):
    """Parallel coordinates, one vertical axis per column with its own tick labels (category
    names or unit-formatted numbers). Up to DENSITY_ABOVE points every line is drawn,
    coloured by `color_by`; above that each gap between axes is a 2-D histogram of line
    positions (log density), which stays readable at a million points."""
    cols = [c for c in columns if c in df and df[c].notna().any()]
    if len(cols) < 2 or df.empty:
        return None
    plt = pyplot()
    axes_data = [_axis_data(df, c) for c in cols]
    data = np.column_stack([a[0] for a in axes_data])
    fig, ax = plt.subplots(figsize=(max(7.0, 1.6 * len(cols)), 4.6), dpi=120)
    if len(df) <= DENSITY_ABOVE:
        cval = df[color_by].astype(float).to_numpy() if color_by in df else np.zeros(len(df))
        span = (np.nanmax(cval) - np.nanmin(cval)) or 1.0
        cn = (cval - np.nanmin(cval)) / span
        cmap = plt.get_cmap("viridis")
        for i in range(len(df)):
            ax.plot(range(len(cols)), data[i], c=cmap(cn[i]) if np.isfinite(cn[i]) else "0.8", lw=0.7, alpha=0.6)
        if color_by in df:
            scale, label = metric_label(color_by, cval)
            sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(np.nanmin(cval) / scale, np.nanmax(cval) / scale))
            fig.colorbar(sm, ax=ax, label=label, pad=0.01)
        how = f"colour: {color_by}"
    else:
        _density(ax, data)
        how = f"density of {len(df):,} configurations (log scale)"
    for j, (_, pos, labels) in enumerate(axes_data):
        ax.axvline(j, color="k", lw=0.8)
        for p, lab in zip(pos, labels):
            ax.text(j + 0.03, p, lab, fontsize=6.5, va="center", ha="left",
                    bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.7})
    ax.set_xticks(range(len(cols)), [_short_field(c) for c in cols], fontsize=7)
    ax.set_yticks([])
    ax.set_xlim(-0.1, len(cols) - 0.6)
    ax.set_ylim(-0.05, 1.05)
    ax.set_title(f"{title} ({how})" if title else how, fontsize=9)
    return fig if draw_only else _save(fig, path)


def _density(ax, data, bins: int = 120) -> None:
    """Each gap between neighbouring axes as an image: how many lines cross each pixel.
    Binned by arithmetic and np.bincount (not np.histogram2d, whose searchsorted over the
    edges took 6 of 15 s of a 300,000-point sweep's outputs): each line is sampled at
    len(t) columns, column k is x-bin k, and y in [0, 1] falls in bin floor(y * bins)
    (y == 1 in the top bin); lines off the axis range (NaN) are not counted."""
    t = np.linspace(0, 1, 48)
    cols = np.arange(len(t))[None, :] * bins
    for j in range(data.shape[1] - 1):
        h = np.zeros(len(t) * bins)
        for k in range(0, len(data), 50_000):  # chunks keep memory flat at a million lines
            a, b = data[k:k + 50_000, j], data[k:k + 50_000, j + 1]
            ys = a[:, None] + (b - a)[:, None] * t[None, :]  # each line sampled across the gap
            ok = (ys >= 0) & (ys <= 1)
            iy = np.minimum((np.where(ok, ys, 0.0) * bins).astype(np.int64), bins - 1)
            h += np.bincount((cols + iy)[ok], minlength=h.size)
        ax.imshow(np.log1p(h.reshape(len(t), bins).T), extent=(j, j + 1, 0, 1), origin="lower", aspect="auto",
                  cmap="magma_r", interpolation="bilinear")
