"""Session 9: re-choose the single-process launch floor on fit data only, validated leave one node out
(cosim.calibrate.launch_refit_s9), and check the bundled system files carry the chosen term.

Prints and writes benchmarks/results/launch_refit_s9.{md,json}. Run from the repo root:
PYTHONPATH=. python benchmarks/launch_refit_s9.py
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict
from pathlib import Path

from cosim.calibrate.launch_refit_s9 import (RULES, S4B_TERM, bundled_term, choose, fit_rows, loo, node_floors,
                                             node_weighted, pooled, rule_term, yaml_entry)
from hwmodels.system import load_system

OUT = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
_DESC = {"median": "median of the node floors", "mean": "mean of the node floors",
         "minimax": "2 / (1/min + 1/max) of the node floors", "rows_lsq": "relative least squares, every row",
         "nodes_lsq": "relative least squares, each node weighted once",
         "s4b": "session-4b term (reference, not re-fitted: in-sample on together_pod and ncb_quiet_g4)"}


def main() -> None:
    rows = fit_rows()
    folds = loo(rows, RULES + ("s4b",))
    cand = [f for f in folds if f.rule != "s4b"]
    best = choose(cand)
    term = rule_term(best, rows)
    nw, po = node_weighted(folds), pooled(folds, rows)
    files = {n: (load_system(n).collectives.get("launch") or {}).get("single_process") for n in ("dgx_h100", "dgx_h200")}
    agree = {n: f == yaml_entry(term) for n, f in files.items()}
    floors = node_floors(rows)
    nodes = list(dict.fromkeys(r.node for r in rows))
    md = ["# Single-process launch floor re-chosen on fit data, leave one node out (session 9)", "",
          f"Fit data: {len(rows)} all-reduce rows 1 KB - 1 GB of {len(nodes)} nodes, every single-process (`-g N`) "
          "table the project holds (all seen). t = the one-process-per-GPU analytical time (the run's forced "
          "algorithm, else the model's choice); a term prices a row max(t, a + b n). Error = model / measured - 1.", "",
          "## Node floors (median measured time of the node's 1 - 8 KB rows)", "",
          "| node | GPUs | rows | floor (us) |", "|---|---:|---:|---:|"]
    for node in nodes:
        n, fl = floors.get(node, (None, None))
        cnt = sum(r.node == node for r in rows)
        md.append(f"| {node} | {n or next(r.n for r in rows if r.node == node)} | {cnt} | "
                  f"{fl * 1e6:.2f} |" if fl else f"| {node} | {next(r.n for r in rows if r.node == node)} | {cnt} | "
                  "none (no row below 1 MB) |")
    f8 = [fl for n, fl in floors.values() if n == 8]
    md += ["", f"At 8 GPUs the node floors span {min(f8) * 1e6:.2f} - {max(f8) * 1e6:.2f} us (max / min "
           f"{max(f8) / min(f8):.2f}): a single floor within 15 % of both ends would need max / min <= 1.15 / 0.85 = "
           f"{1.15 / 0.85:.2f}.", "",
           "## Leave one node out (the rule sees the other nodes; the held-out node's rows are scored)", "",
           "| rule | held-out node | a (us) | b (us/GPU) | floor at 8 GPUs (us) | within 15 % | median | max |",
           "|---|---|---:|---:|---:|---:|---:|---:|"]
    for f in folds:
        md.append(f"| {f.rule} | {f.held_out} | {f.term.a_s * 1e6:.2f} | {f.term.b_s * 1e6:.2f} | "
                  f"{f.term.overhead(8) * 1e6:.2f} | {f.within} of {f.points} | {f.median_abs_pct:.1f}% | "
                  f"{f.max_abs_pct:.1f}% |")
    md += ["", "## Choice (highest node-weighted fraction within 15 %, then the lowest mean node median)", "",
           "| rule | node-weighted within 15 % | mean node median | pooled rows within 15 % | pooled median | "
           "term on every node (a, b; floor at 4 / 8 GPUs) |", "|---|---:|---:|---:|---:|---|"]
    for rule in RULES + ("s4b",):
        t = rule_term(rule, rows)
        mark = " **chosen**" if rule == best else ""
        md.append(f"| {rule}: {_DESC[rule]}{mark} | {100 * nw[rule][0]:.1f}% | {nw[rule][1]:.1f}% | {po[rule][1]} of "
                  f"{po[rule][0]} | {po[rule][2]:.1f}% | {t.a_s * 1e6:.2f} + {t.b_s * 1e6:.2f} n; "
                  f"{t.overhead(4) * 1e6:.2f} / {t.overhead(8) * 1e6:.2f} us |")
    md += ["", "Information (in-sample): the chosen term fitted on every node, scored per node:", "",
           "| node | within 15 % | median | max |", "|---|---:|---:|---:|"]
    for node in nodes:
        e = [abs(max(r.model_s, term.overhead(r.n)) / r.measured_s - 1) * 100 for r in rows if r.node == node]
        md.append(f"| {node} | {sum(x <= 15 + 1e-9 for x in e)} of {len(e)} | {statistics.median(e):.1f}% | {max(e):.1f}% |")
    md += ["", f"Chosen: {best}: floor {term.a_s * 1e6:.2f} + {term.b_s * 1e6:.2f} n us ({term.overhead(4) * 1e6:.2f} us "
           f"at 4 GPUs, {term.overhead(8) * 1e6:.2f} us at 8; session 4b: {S4B_TERM.overhead(8) * 1e6:.2f} us). System "
           "files carry it: " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in agree.items()) + "."]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "launch_refit_s9.md").write_text("\n".join(md) + "\n")
    (OUT / "launch_refit_s9.json").write_text(json.dumps(
        {"folds": [{**asdict(f), "term": yaml_entry(f.term)} for f in folds], "node_weighted": nw, "pooled": po,
         "chosen": best, "yaml_entry": yaml_entry(term), "system_files_agree": agree,
         "node_floors_us": {k: [n, fl * 1e6] for k, (n, fl) in floors.items()},
         "bundled_floor_8_us": bundled_term().overhead(8) * 1e6}, indent=1))
    print("\n".join(md))


if __name__ == "__main__":
    main()
