"""Pareto fronts and the sweep plots (Pareto scatter, heatmap of a 2-axis grid,
parallel coordinates otherwise)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["pareto_mask", "pareto_plot", "heatmap_plot", "parallel_plot"]

MAX_SCATTER = 20_000  # more points than this: the Pareto plot bins them (hexbin density)
MAX_LINES = 2_000  # parallel coordinates draw at most about this many configurations


def pareto_mask(costs: np.ndarray) -> np.ndarray:
    """Boolean mask of the non-dominated rows of `costs` (n, k), every column minimised.
    Of duplicate rows exactly one (the first) is kept. NaN rows are never on the front."""
    costs = np.asarray(costs, dtype=float)
    n = len(costs)
    mask = np.zeros(n, dtype=bool)
    ok = ~np.isnan(costs).any(axis=1)
    idx = np.flatnonzero(ok)
    c = costs[idx]
    order = np.lexsort(c.T[::-1])  # by first objective, ties by the next ones
    idx, c = idx[order], c[order]
    if c.shape[1] == 2 and len(c):
        # two objectives, sorted: a point is on the front iff its second cost is below
        # every earlier point's (an equal one is dominated or a duplicate: the first stays)
        prev_min = np.minimum.accumulate(np.concatenate([[np.inf], c[:-1, 1]]))
        mask[idx[c[:, 1] < prev_min]] = True
        return mask
    keep = np.ones(len(idx), dtype=bool)
    for i in range(len(idx)):
        if not keep[i]:
            continue
        # points after i (sorted) that i dominates: no better anywhere, worse or equal everywhere
        later = np.arange(i + 1, len(idx))
        later = later[keep[later]]
        dominated = np.all(c[later] >= c[i], axis=1)
        keep[later[dominated]] = False
    mask[idx[keep]] = True
    return mask


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def pareto_plot(df, objectives: dict, path: Path, title: str = "") -> Path | None:
    objs = list(objectives)
    if len(objs) < 2 or df.empty:
        return None
    plt = _plt()
    x, y = objs[0], objs[1]
    fig, ax = plt.subplots(figsize=(6.5, 4.6), dpi=120)
    feas = df["feasible"].astype(bool).to_numpy()
    logs = {}
    for col in (x, y):
        vals = df[col].astype(float).to_numpy()
        logs[col] = bool((vals > 0).all() and vals.max() / max(vals.min(), 1e-300) > 30)
    if len(df) > MAX_SCATTER:
        # a million points as a binned density (every point counted), not a million markers
        xs, ys = df[x].astype(float).to_numpy(), df[y].astype(float).to_numpy()
        for sel, cmap, lab in ((~feas, "Greys", "violates constraints"), (feas, "Blues", "feasible")):
            if sel.any():
                ax.hexbin(xs[sel], ys[sel], gridsize=120, bins="log", mincnt=1, cmap=cmap, linewidths=0,
                          xscale="log" if logs[x] else "linear", yscale="log" if logs[y] else "linear")
                ax.plot([], [], "h", c=plt.get_cmap(cmap)(0.7), label=f"{lab} (binned, {int(sel.sum()):,})")
    else:
        ax.scatter(df.loc[~feas, x], df.loc[~feas, y], s=8, marker="x", c="0.75", label="violates constraints")
        ax.scatter(df.loc[feas, x], df.loc[feas, y], s=10, c="tab:blue", alpha=0.5, label="feasible")
    front = df[df["pareto"].astype(bool)].sort_values(x)
    ax.plot(front[x], front[y], "o-", c="tab:red", ms=4, lw=1.2, label=f"Pareto front ({len(front)})")
    for col, lab in ((x, ax.set_xlabel), (y, ax.set_ylabel)):
        lab(f"{col} ({objectives[col]})")
        if logs[col]:
            (ax.set_xscale if col == x else ax.set_yscale)("log")
    ax.grid(True, lw=0.4, alpha=0.5)
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def heatmap_plot(df, ax_x: str, ax_y: str, metric: str, path: Path, title: str = "") -> Path | None:
    """Metric over a 2-axis grid (first value of any other varied field)."""
    plt = _plt()
    xs = list(dict.fromkeys(df[ax_x]))
    ys = list(dict.fromkeys(df[ax_y]))
    grid = np.full((len(ys), len(xs)), np.nan)
    first = df.drop_duplicates([ax_x, ax_y], keep="first")  # first value per cell, as before, in one pass
    xi = {v: j for j, v in enumerate(xs)}
    yi = {v: i for i, v in enumerate(ys)}
    for vx, vy, m in zip(first[ax_x], first[ax_y], first[metric]):
        grid[yi[vy], xi[vx]] = m
    fig, ax = plt.subplots(figsize=(6.5, 4.6), dpi=120)
    im = ax.imshow(grid, aspect="auto", origin="lower", cmap="viridis")
    ax.set_xticks(range(len(xs)), [_short(v) for v in xs], rotation=30, fontsize=7)
    ax.set_yticks(range(len(ys)), [_short(v) for v in ys], fontsize=7)
    ax.set_xlabel(ax_x)
    ax.set_ylabel(ax_y)
    for i in range(len(ys)):
        for j in range(len(xs)):
            if not np.isnan(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.3g}", ha="center", va="center", fontsize=6, color="w")
    fig.colorbar(im, ax=ax, label=metric)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def parallel_plot(df, columns: list, color_by: str, path: Path, title: str = "") -> Path | None:
    cols = [c for c in columns if c in df and df[c].notna().any()]
    if len(cols) < 2 or df.empty:
        return None
    import pandas as pd
    from matplotlib.collections import LineCollection
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    plt = _plt()
    step = max(1, len(df) // MAX_LINES)  # a readable plot: every step-th configuration, not a million lines
    sub = df.iloc[::step]
    data = np.empty((len(sub), len(cols)))
    labels = []
    for j, c in enumerate(cols):
        v = df[c]
        if not is_numeric_dtype(v) or is_bool_dtype(v):
            codes, cats = pd.factorize(v.astype(str), sort=False)  # categories over every point
            data[:, j] = codes[::step] / max(1, len(cats) - 1)
            labels.append(c)
        else:
            f = v.astype(float).to_numpy()
            lo, hi = np.nanmin(f), np.nanmax(f)  # ranges over every point
            data[:, j] = (f[::step] - lo) / (hi - lo) if hi > lo else 0.5
            labels.append(f"{c}\n[{lo:.3g}, {hi:.3g}]")
    fig, ax = plt.subplots(figsize=(max(6.5, 1.3 * len(cols)), 4.2), dpi=120)
    cval = df[color_by].astype(float).to_numpy() if color_by in df else np.zeros(len(df))
    cmap = plt.get_cmap("viridis")
    cn = (cval - np.nanmin(cval)) / (np.nanmax(cval) - np.nanmin(cval) or 1.0)
    cn = cn[::step]
    colors = [cmap(c) if np.isfinite(c) else (0.8, 0.8, 0.8, 1.0) for c in cn]
    xs = np.arange(len(cols), dtype=float)
    ax.add_collection(LineCollection([np.column_stack([xs, row]) for row in data], colors=colors, linewidths=0.6,
                                     alpha=0.5))
    ax.set_xlim(-0.1, len(cols) - 0.9)
    ax.set_ylim(-0.05, 1.05)
    ax.set_xticks(range(len(cols)), labels, fontsize=7)
    ax.set_yticks([])
    shown = f"; every {step}th of {len(df):,} configurations drawn" if step > 1 else ""
    ax.set_title(title + f" (colour: {color_by}{shown})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _short(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)
