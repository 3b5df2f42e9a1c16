"""Session 7: the bundled dgx_h100 (no machine calibration) against every published single-node 8 x H100
all-reduce nccl-tests curve, and whether any single default could meet 15 % on all of them
(validation/collective_default_rules_s7.md, committed before this ran; cosim.calibrate.collective_default_s7).

Prints and writes benchmarks/results/collective_default_s7.{md,json}. Run from the repo root:
PYTHONPATH=. python benchmarks/collective_default_s7.py
"""

from __future__ import annotations

import json
from pathlib import Path

from cosim.calibrate.collective_default_s7 import default_rows, empty_sizes, feasibility, kept
from cosim.calibrate.collective_holdout_s4b import BANDS, session4b_systems, summary
from cosim.calibrate.protocol_crossovers import model_crossovers, tuner_crossovers
from hwmodels.system import load_system

OUT = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def _fmt(s: dict) -> str:
    if not s.get("points"):
        return "- | - | -"
    return f"{s['median_abs_err_pct']:.1f}% | {s['max_abs_err_pct']:.1f}% | {s['within']} of {s['points']}"


def _score_table(rows, label: str = "all 8 x H100 curves") -> tuple[list, dict]:
    keep = kept(rows)
    sets = {label: (rows, keep)}
    for src in dict.fromkeys(r.source for r in rows):
        sets[src] = ([r for r in rows if r.source == src], [r for r in keep if r.source == src])
    for name, lo, hi in BANDS:
        sets[f"size {name}"] = ([r for r in rows if lo <= r.size_bytes <= hi], [r for r in keep if lo <= r.size_bytes <= hi])
    res = {k: (summary(a), summary(b)) for k, (a, b) in sets.items()}
    md = ["| set | median | max | within 15 % | without X3 / X4: median | max | within 15 % |",
          "|---|---:|---:|---:|---:|---:|---:|"]
    md += [f"| {k} | {_fmt(a)} | {_fmt(b)} |" for k, (a, b) in res.items()]
    return md, res


def _band_table(bands) -> list:
    md = ["| group | size (B) | curves | feasible interval (us) | empty? | default's prices (us) |",
          "|---|---:|---:|---|---|---|"]
    md += [f"| {b.group} | {b.size_bytes:,} | {b.curves} | {b.lo_us:.1f} - {b.hi_us:.1f} | "
           f"{'**empty**' if b.curves > 1 and not b.feasible else 'no'} | {', '.join(f'{m:.1f}' for m in b.model_us)} |"
           for b in bands]
    return md


def _split(rows) -> tuple[list, list]:
    return [r for r in rows if r.gpu.startswith("H100")], [r for r in rows if r.gpu.startswith("H200")]


def main() -> None:
    h100, h200 = _split(default_rows())  # N1: the bundled files (with the NVLS small-chunk line)
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
    system = load_system("dgx_h100")
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
