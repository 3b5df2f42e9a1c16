"""Pareto fronts: the non-dominated mask. (The sweep plots are in cosim.dse.sweep_plots,
re-exported here for callers of the old names.)"""

from __future__ import annotations

import numpy as np

from cosim.dse.sweep_plots import heatmap_plot, parallel_plot, pareto_plot  # noqa: F401

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
