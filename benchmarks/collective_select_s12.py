"""Session 12: the ring LL line of dgx_h100 chosen on every seen single-node 8 x H100 all-reduce table, leave one table
out, by the rules committed first (validation/published/collective_selection_session12.md; cosim.calibrate.collective_select_s12),
and a check that the bundled files carry the chosen line.

Prints and writes benchmarks/results/collective_select_s12.{md,json}. Run from the repo root:
PYTHONPATH=. python benchmarks/collective_select_s12.py
"""

from __future__ import annotations

import json
from pathlib import Path

from cosim.calibrate.collective_select_s12 import (CANDIDATES, FITTED, MACHINES, bundled_ll, choose, ll_line, loto,
                                                   seen_rows, summarise, with_ll, yaml_ll)
from cosim.calibrate.protocol_crossovers import model_crossovers
from hwmodels.system import load_system

OUT = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
_DESC = {"C0": "incumbent: bw 0.2312, 0.9116 us / step", "C1": "NCCL Hopper LL bw (141 GB/s), latency from 1 KB",
         "C2": "bw + latency least squares, 1 KB - 1 MB one-process rows", "C3": "NCCL's LL line (141 GB/s, 0.6 us / step, base 6.6 us)"}


def _line(d: dict) -> str:
    fx = f", fixed {d['fixed_s'] * 1e6:.2f} us" if d.get("fixed_s") else ""
    return f"bw {d['bw']:.4f} ({d['bw'] * 450:.1f} GB/s), {d['latency_s'] * 1e6:.4f} us / step{fx}"


def main() -> None:
    rows = seen_rows()
    folds = loto(rows)
    res = summarise(folds)
    chosen, why = choose(res)
    system = load_system("dgx_h100")
    md = ["# The ring LL line chosen on seen data, leave one table out (session 12)", "",
          f"Rules: validation/published/collective_selection_session12.md (committed before this score). {len(rows)} all-reduce "
          f"rows 1 KB - 1 GB of {len(MACHINES)} seen single-node 8 x H100 tables (one machine each), each priced as its "
          "harness ran it, analytical level, no calibration, no exclusions. Error = model / published - 1. No held-out "
          "claim: every table is seen.", "",
          "## Selection", "",
          "| candidate | fitted | S (mean over tables of the fraction within 15 %) | worst table | pooled within 15 % | "
          "worst-table p90 | verdict |", "|---|---:|---:|---:|---:|---:|---|"]
    for c in CANDIDATES:
        r = res[c]
        md.append(f"| {c}: {_DESC[c]} | {FITTED[c]} | {100 * r['S']:.1f} % | {100 * r['worst_f']:.1f} % | "
                  f"{r['pooled_within']} of {r['points']} | {100 * r['worst_p90']:.1f} % | {why[c]} |")
    md += ["", f"**Choice by the rules: {chosen or 'none (the model stays as it is)'}.**", ""]
    md += ["## Per table (within 15 % / rows; median | p90 of |error|)", "",
           "| table | " + " | ".join(CANDIDATES) + " |", "|---|" + "---:|" * len(CANDIDATES)]
    for m in MACHINES:
        cells = [f"{res[c]['per'][m]['within']}/{res[c]['per'][m]['points']} ({100 * res[c]['per'][m]['median']:.1f} | "
                 f"{100 * res[c]['per'][m]['p90']:.1f} %)" for c in CANDIDATES]
        md.append(f"| {m} | " + " | ".join(cells) + " |")
    md += ["", "## Lines (C2: one fit per held-out table)", ""]
    for c in ("C0", "C1", "C3"):
        md.append(f"- {c}: {_line(ll_line(c, system))}")
    for f in (x for x in folds if x.cid == "C2"):
        md.append(f"- C2 without {f.machine}: {_line(f.line)}")
    md += ["", "Where the model leaves ring LL at 8 ranks (one process per GPU):", ""]
    for c in ("C0", "C1", "C3"):
        xs = model_crossovers(with_ll(system, ll_line(c, system)), "allreduce", 8, hi=float(1 << 26))
        md.append(f"- {c}: " + "; ".join(f"{a} -> {b} at {s / 2 ** 20:.2f} MiB" for s, a, b in xs))
    show = [m for m in MACHINES if any(r.machine == m and r.launch == "one_process_per_gpu" and r.size <= 4 << 20
                                       for r in rows)]
    md += ["", "## Rows 128 KB - 4 MB of the one-process-per-GPU tables (C0 -> " + (chosen or "C0") + ")", "",
           "| table | size | published (us) | C0 (us) | error | " + (chosen or "C0") + " (us) | error |",
           "|---|---:|---:|---:|---:|---:|---:|"]
    by = {(f.cid, f.machine): f for f in folds}
    for m in show:
        held = [r for r in rows if r.machine == m]
        for i, r in enumerate(held):
            if not 128 << 10 <= r.size <= 4 << 20:
                continue
            a, b = by[("C0", m)], by[(chosen or "C0", m)]
            md.append(f"| {m} | {r.size:,} | {r.published_s * 1e6:.2f} | {r.published_s * (1 + a.errors[i]) * 1e6:.2f} "
                      f"({a.algorithms[i]}) | {100 * a.errors[i]:+.1f}% | {r.published_s * (1 + b.errors[i]) * 1e6:.2f} "
                      f"({b.algorithms[i]}) | {100 * b.errors[i]:+.1f}% |")
    target = yaml_ll(ll_line(chosen, system)) if chosen else yaml_ll(ll_line("C0", system))
    files = {n: bundled_ll(n) for n in ("dgx_h100", "dgx_h200")}
    agree = {n: f == target for n, f in files.items()}
    md += ["", f"Bundled files against the chosen line {target}: " +
           ", ".join(f"{n} {'carries it' if ok else 'DIFFERS: ' + str(files[n])}" for n, ok in agree.items()) + "."]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "collective_select_s12.md").write_text("\n".join(md) + "\n")
    (OUT / "collective_select_s12.json").write_text(json.dumps(
        {"chosen": chosen, "why": why, "target": target, "files_agree": agree,
         "summary": {c: {k: v for k, v in r.items()} for c, r in res.items()},
         "folds": [{"candidate": f.cid, "held_out": f.machine, "line": f.line, "errors": list(f.errors),
                    "algorithms": list(f.algorithms)} for f in folds]}, indent=1))
    print("\n".join(md))


if __name__ == "__main__":
    main()
