"""Session 7: the bundled dgx_h100 (no machine calibration) against every published single-node 8 x H100
all-reduce nccl-tests curve, and whether any single default could meet 15 % on all of them
(validation/collective_default_rules_s7.md, committed before this ran; cosim.calibrate.collective_default_s7).

Prints and writes benchmarks/results/collective_default_s7.{md,json}. Run from the repo root:
PYTHONPATH=. python benchmarks/collective_default_s7.py
"""

from __future__ import annotations

import json
from pathlib import Path

from cosim.calibrate.collective_default_s7 import band_table as _band_table, default_rows, empty_sizes, feasibility
from cosim.calibrate.collective_default_s7 import score_table as _score_table
from cosim.calibrate.collective_holdout_s4b import session4b_systems, session8_systems, session11_system
from cosim.calibrate.protocol_crossovers import model_crossovers, tuner_crossovers
from hwmodels.system import load_system

OUT = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def _split(rows) -> tuple[list, list]:
    return [r for r in rows if r.gpu.startswith("H100")], [r for r in rows if r.gpu.startswith("H200")]


def main() -> None:
    # N1: the bundled files (with the NVLS small-chunk line) and the launch term of session 7 (re-chosen in session 9)
    h100, h200 = _split(default_rows(session8_systems()))
    h100_n0, h200_n0 = _split(default_rows(session4b_systems()))  # N0: one NVLS line (sessions 4b-6)
    md = ["# Session 7: bundled dgx_h100 (no calibration) vs every published single-node 8 x H100 nccl-tests curve", "",
          "Rules: validation/collective_default_rules_s7.md and validation/nvls_regime_rules_s7.md (both committed "
          "before scoring). Each row priced as its harness ran it (single_process, the run's forced algorithm, else "
          "the model's choice), analytical level, no calibration. error = model / published - 1. All rows were seen "
          "in sessions 4-6 (the launch term was fitted on together_pod_all_reduce_ring). N1 = the bundled files "
          "(NVLS small-chunk line, fitted on ND H200 v5: ND H100 v5 is its held-out); N0 = one NVLS line (as scored "
          "in sessions 4b-6).", "", "## 1. Scores, 8 x H100 on dgx_h100, N1 (bundled)", ""]
    t1, s1 = _score_table(h100)
    t0, s0 = _score_table(h100_n0)
    md += t1 + ["", "## 1b. The same rows, N0 (one NVLS line)", ""] + t0
    md += ["", "## 2. ND H200 v5 on dgx_h200 (the N1 fit machine: no held-out claim), N1 then N0", ""]
    t2, s2 = _score_table(h200, "ND H200 v5, N1")
    md += t2 + [""] + _score_table(h200_n0, "ND H200 v5, N0")[0]
    b_all = feasibility(h100)
    b_grp = feasibility(h100, lambda r: r.forced or "unforced")
    e_all, e_grp = empty_sizes(b_all), empty_sizes(b_grp)
    md += ["", "## 3. Could any single default meet 15 % on every curve? (interval: max 0.85 p_i .. min 1.15 p_i; "
           "prices: N1)", "",
           f"Over all 8 x H100 curves: empty at {len(e_all)} of {len(b_all)} sizes "
           f"({', '.join(f'{s:,}' for _, s in e_all) or 'none'}). Within the groups the model tells apart (forced "
           f"algorithm): empty at {len(e_grp)} of {sum(b.curves > 1 for b in b_grp)} multi-curve cells "
           f"({', '.join(f'{g} {s:,}' for g, s in e_grp) or 'none'}).", ""]
    md += _band_table(b_all) + [""] + _band_table(b_grp)
    md += ["", "## 4. Protocol / regime crossovers: the model's fitted lines vs NCCL's own tuning table", "",
           "NCCL 2.29.2's tuner table (ring all-reduce, 4 x H100; cosim.calibrate.protocol_crossovers) vs the bundled "
           "dgx_h100's fitted lines (one_process_per_gpu, the model's own choice; forced NVLS for the regime line).", "",
           "| what | switch | at |", "|---|---|---:|"]
    system = session11_system("dgx_h100")  # session 7's lines (the ring LL line of sessions 3-11)
    cross = {"NCCL 2.29.2 tuner, 4 ranks": tuner_crossovers(),
             "model, 4 ranks": model_crossovers(system, "allreduce", 4),
             "model, 8 ranks": model_crossovers(system, "allreduce", 8),
             "model, 8 ranks, NVLS forced": model_crossovers(system, "allreduce", 8, "nvls")}
    md += [f"| {k} | {a} -> {b} | {S / 2**20:.2f} MiB |" for k, v in cross.items() for S, a, b in v]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "collective_default_s7.json").write_text(json.dumps({
        "h100": {k: {"all": a, "kept": b} for k, (a, b) in s1.items()},
        "h100_n0": {k: {"all": a, "kept": b} for k, (a, b) in s0.items()},
        "h200": {k: {"all": a, "kept": b} for k, (a, b) in s2.items()},
        "empty_all": e_all, "empty_grouped": e_grp, "crossovers": cross,
        "bands_all": [b.__dict__ for b in b_all], "bands_grouped": [b.__dict__ for b in b_grp]}, indent=1))
    (OUT / "collective_default_s7.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
