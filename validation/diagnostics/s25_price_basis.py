"""Diagnostic after round 14 was chosen, frozen and scored on heldout19's H100 run (session 23, a review finding;
disclosed, nothing chosen, changed, accepted or reverted on it). Fit rows only.

1. Price basis. s25_graph_terms.py priced each op with the committed model, measured-residual correction included
   (gpu.params_for). cosim.calibrate.fit.fit_launch, which fits the shipped launch constants, prices them without it
   (it runs before the residual table is built, as launch.overlap always was since round 9). This re-runs s25's
   candidates and rule with fit_launch's prices (no residual table) on both GPUs.
2. Power floor. The in-stream speedup applies after the power cap, so a power-limited op runs past the board limit
   in the stream. This fits fit_launch's grid on the H100's fit CUDA-graph decode rows with and without a floor at
   the op's dynamic energy over the power headroom on the sped-up time.

Run from the repository root: PYTHONPATH=. python validation/diagnostics/s25_price_basis.py
Writes validation/diagnostics/s25_price_basis.txt.
"""
import dataclasses
from pathlib import Path

import numpy as np

from cosim.calibrate import dataset, fit
from cosim.validate import _trace_of
from hwmodels import gpu
from hwmodels.spec import load_hw
from validation.model_selection import s25_graph_terms as s25

OUT = Path(__file__).with_suffix(".txt")


def residual_free(P):
    return dataclasses.replace(P, residuals=None)


def power_floor(lines):
    hw = load_hw("h100_sxm")
    P = residual_free(gpu.params_for(hw))
    rows = [r for r in dataset.load_e2e(s25.CSV["h100_sxm"]) if r["split"] == "fit" and r["mode"] == "graph"]
    parts, n_capped = [], 0
    for r in rows:
        costs = [gpu.estimate(op, hw, params=P) for op in _trace_of(r).ops]
        n_capped += sum(bool(c.details.get("power_limited")) for c in costs)
        parts.append((np.array([c.details["power_capped_s"] for c in costs]),
                      np.array([c.details["kernels"] for c in costs], dtype=float),
                      np.array([op.repeat for op in _trace_of(r).ops], dtype=float),
                      np.array([c.energy_j - P["energy.static"] * c.latency_s for c in costs])))
    meas = np.array([r["median_s"] for r in rows])
    gap, head = P["graph.gap"], P["energy.power_cap"] - P["energy.static"]
    lines += ["## Power floor (H100, fit_launch's prices, every fit CUDA-graph decode row)", "",
              f"{len(rows)} rows; op instances priced power-limited in them: {n_capped}", "",
              "| form | median abs log err | delta us | g |", "|---|--:|--:|--:|"]
    for floor in (False, True):
        best = (np.inf, 0.0, 0.0)
        for g in fit.STREAM_SPEEDUPS:
            pred = []
            for t, k, rep, e_dyn in parts:
                fast = t * (1 - g)
                if floor:
                    fast = np.maximum(fast, e_dyn / head)
                pred.append(np.sum(rep * np.maximum(fast - fit.LAUNCH_DELTAS[:, None] * k, gap * k), axis=1))
            err = np.median(np.abs(np.log(np.array(pred) / meas[:, None])), axis=0)
            i = int(np.argmin(err))
            if err[i] < best[0]:
                best = (float(err[i]), float(fit.LAUNCH_DELTAS[i]), float(g))
        lines.append(f"| {'speedup floored at the power limit' if floor else 'as shipped (no floor)'} | "
                     f"{best[0]:.4f} | {best[1] * 1e6:.2f} | {best[2]:.4f} |")
    lines.append("")


def main():
    lines = ["# s25's choice on fit_launch's price basis, and a power floor under the in-stream speedup "
             "(validation/diagnostics/s25_price_basis.py; fit rows only, after the fact)", "",
             "## s25's candidates and rule, ops priced without the measured-residual correction", ""]
    params_for = gpu.params_for
    s25.gpu.params_for = lambda hw: residual_free(params_for(hw))
    try:
        for hw_name in ("h100_sxm", "h200"):
            s25.run_gpu(hw_name, lines)
    finally:
        s25.gpu.params_for = params_for
    power_floor(lines)
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
