"""Session 7: the CUDA-graph launch term of the collective model, chosen and fitted on a same-run eager / graph
A/B (validation/published/PREREGISTRATION_nccl_graph_session7.md; cosim.calibrate.graph_fit).

Prints and writes benchmarks/results/collective_graph_s7.{md,json}. Run from the repo root:
PYTHONPATH=. python benchmarks/collective_graph_s7.py
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from cosim.calibrate.collective_holdout_s4b import session11_system
from cosim.calibrate.graph_fit import EAGER_SOURCE, GRAPH_SOURCE, ab_rows, choose_graph, fit_graph_laws, split
from cosim.calibrate.launch_refit_s9 import S4B_TERM, with_term
from hwmodels.collectives import collective_cost
from hwmodels.system import load_system

OUT = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def main() -> None:
    # the eager check column prices with the single_process term of session 7 (re-chosen in session 9: the same rows
    # under the new term are in benchmarks/results/launch_refit_s9.md, node ncb_symmetric_g4)
    system = with_term(session11_system("dgx_h100"), S4B_TERM)  # the model the term was fitted on
    fits = fit_graph_laws(system)
    best = choose_graph(fits)
    md = ["# Session 7: CUDA-graph launch term (4 x H100, nccl-tests -g 4 with / without -G, NCCL 2.29.2)", "",
          "Rules: validation/published/PREREGISTRATION_nccl_graph_session7.md (committed before fitting). "
          "error = model / published - 1.", "",
          "## 1. Laws (fit: even log2 size rows; validation: odd)", "",
          "| law | g | fit median | validation median | validation within 15 % |", "|---|---:|---:|---:|---:|"]
    md += [f"| {'**' + f.law + '**' if f is best else f.law} ({'max(t, g)' if f.law == 'GF' else 't + g'}) | "
           f"{f.g_s * 1e6:.2f} us | {f.fit_median_pct:.1f}% | {f.val_median_pct:.1f}% | {f.val_within15} of {f.val_points} |"
           for f in fits]
    graph = ab_rows(system, GRAPH_SOURCE)
    eager = {r.size: r for r in ab_rows(system, EAGER_SOURCE)}
    fit_sizes = {r.size for r in split(graph)[0]}
    md += ["", "## 2. Every row (graph: the chosen law; eager: the existing single_process term, a check only)", "",
           "| size (B) | role | graph measured (us) | graph model (us) | error | eager measured (us) | eager model (us) "
           "| error | measured graph / eager | model graph / eager |", "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    rows = []
    for r in graph:
        g = collective_cost("allreduce", r.size, r.n, 1, system, "analytical", launch="graph").time_s
        e = collective_cost("allreduce", r.size, r.n, 1, system, "analytical", launch="single_process").time_s
        em = eager[r.size].measured_s
        rows.append({"size_bytes": r.size, "role": "fit" if r.size in fit_sizes else "validation",
                     "graph_measured_us": r.measured_s * 1e6, "graph_model_us": g * 1e6,
                     "graph_err_pct": 100 * (g / r.measured_s - 1), "eager_measured_us": em * 1e6,
                     "eager_model_us": e * 1e6, "eager_err_pct": 100 * (e / em - 1)})
        md.append(f"| {r.size:,} | {rows[-1]['role']} | {r.measured_s * 1e6:.2f} | {g * 1e6:.2f} | "
                  f"{rows[-1]['graph_err_pct']:+.1f}% | {em * 1e6:.2f} | {e * 1e6:.2f} | {rows[-1]['eager_err_pct']:+.1f}% | "
                  f"{r.measured_s / em:.2f} | {g / e:.2f} |")
    e_in = sum(abs(x["eager_err_pct"]) <= 15 for x in rows)
    md += ["", f"Chosen: {best.law}, g = {best.g_s * 1e6:.2f} us (dgx_h100 / dgx_h200 collectives.launch.graph). "
           f"Eager check (existing single_process term, not refitted): {e_in} of {len(rows)} rows within 15 %. "
           f"Geometric-mean measured graph / eager ratio: "
           f"{math.exp(sum(math.log(x['graph_measured_us'] / x['eager_measured_us']) for x in rows) / len(rows)):.2f}."]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "collective_graph_s7.json").write_text(json.dumps({"laws": [f.__dict__ for f in fits], "chosen": best.law,
                                                             "rows": rows}, indent=1))
    (OUT / "collective_graph_s7.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
