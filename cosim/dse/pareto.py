"""Pareto fronts and the sweep plots (Pareto scatter, heatmap of a 2-axis grid,
parallel coordinates otherwise)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["pareto_mask", "pareto_plot", "heatmap_plot", "parallel_plot"]


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
    feas = df["feasible"].astype(bool)
    ax.scatter(df.loc[~feas, x], df.loc[~feas, y], s=8, marker="x", c="0.75", label="violates constraints")
    ax.scatter(df.loc[feas, x], df.loc[feas, y], s=10, c="tab:blue", alpha=0.5, label="feasible")
    front = df[df["pareto"].astype(bool)].sort_values(x)
    ax.plot(front[x], front[y], "o-", c="tab:red", ms=4, lw=1.2, label=f"Pareto front ({len(front)})")
    for col, lab in ((x, ax.set_xlabel), (y, ax.set_ylabel)):
        lab(f"{col} ({objectives[col]})")
        vals = df[col].astype(float)
        if (vals > 0).all() and vals.max() / max(vals.min(), 1e-300) > 30:
            (ax.set_xscale if col == x else ax.set_yscale)("log")
    ax.grid(True, lw=0.4, alpha=0.5)
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


MAX_CELL_LABELS = 400  # 20 x 20: beyond this, per-cell numbers are unreadable (and drawing each is slow)
MAX_TICKS = 30


def heatmap_plot(df, ax_x: str, ax_y: str, metric: str, path: Path, title: str = "") -> Path | None:
    """Metric over a 2-axis grid (first value of any other varied field). Cells are
    placed with one vectorised lookup (a 1000 x 1000 grid drew forever with a
    `list.index` per cell); numbers are printed in cells only for small grids and tick
    labels thinned to at most MAX_TICKS per axis."""
    import pandas as pd

    plt = _plt()
    xs = list(dict.fromkeys(df[ax_x]))
    ys = list(dict.fromkeys(df[ax_y]))
    first = df.drop_duplicates([ax_y, ax_x], keep="first")
    xi = pd.Index(xs).get_indexer(first[ax_x])
    yi = pd.Index(ys).get_indexer(first[ax_y])
    grid = np.full((len(ys), len(xs)), np.nan)
    grid[yi, xi] = first[metric].astype(float).to_numpy()
    fig, ax = plt.subplots(figsize=(6.5, 4.6), dpi=120)
    im = ax.imshow(grid, aspect="auto", origin="lower", cmap="viridis", interpolation="nearest")
    for vals, set_ticks, kw in ((xs, ax.set_xticks, {"rotation": 30}), (ys, ax.set_yticks, {})):
        step = max(1, -(-len(vals) // MAX_TICKS))
        idx = list(range(0, len(vals), step))
        set_ticks(idx, [_short(vals[i]) for i in idx], fontsize=7, **kw)
    ax.set_xlabel(ax_x)
    ax.set_ylabel(ax_y)
    if grid.size <= MAX_CELL_LABELS:
        for i, j in zip(*np.nonzero(~np.isnan(grid))):
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
    plt = _plt()
    data = np.empty((len(df), len(cols)))
    labels = []
    for j, c in enumerate(cols):
        v = df[c]
        from pandas.api.types import is_bool_dtype, is_numeric_dtype
        if not is_numeric_dtype(v) or is_bool_dtype(v):
            cats = list(dict.fromkeys(v.astype(str)))
            data[:, j] = [cats.index(s) / max(1, len(cats) - 1) for s in v.astype(str)]
            labels.append(c)
        else:
            f = v.astype(float).to_numpy()
            lo, hi = np.nanmin(f), np.nanmax(f)
            data[:, j] = (f - lo) / (hi - lo) if hi > lo else 0.5
            labels.append(f"{c}\n[{lo:.3g}, {hi:.3g}]")
    fig, ax = plt.subplots(figsize=(max(6.5, 1.3 * len(cols)), 4.2), dpi=120)
    cval = df[color_by].astype(float).to_numpy() if color_by in df else np.zeros(len(df))
    cmap = plt.get_cmap("viridis")
    cn = (cval - np.nanmin(cval)) / (np.nanmax(cval) - np.nanmin(cval) or 1.0)
    step = max(1, len(df) // 2000)  # a readable plot, not every line of a million-point sweep
    for i in range(0, len(df), step):
        ax.plot(range(len(cols)), data[i], c=cmap(cn[i]) if np.isfinite(cn[i]) else "0.8", lw=0.6, alpha=0.5)
    ax.set_xticks(range(len(cols)), labels, fontsize=7)
    ax.set_yticks([])
    ax.set_title(title + f" (colour: {color_by})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _short(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)
