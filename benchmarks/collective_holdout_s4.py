"""The session-4 NEW held-out set: single-node 8 x H100 nccl-tests tables (Together AI), scored once
against the frozen session-4 collective model (commit da1d2d0; split and rules pre-registered in
validation/published/PREREGISTRATION_nccl_session4.md and its addendum). Nothing here is fitted.

Prints and writes benchmarks/results/collective_holdout_s4.{md,json}: every row, and the median /
max absolute error and the count within 15 % per source, per collective, per size band, with and
without the pre-registered exclusion X3. Run from the repo root:
PYTHONPATH=. python benchmarks/collective_holdout_s4.py
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from cosim.calibrate.collective_holdout_s4b import session11_system
from cosim.calibrate.collective_holdout import HOLDOUT_S4_CSV, score_holdout, summarise, x3_spikes
from hwmodels.system import load_system

OUT = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
BANDS = (("1 KB - 512 KB", 1 << 10, 1 << 19), ("1 MB - 64 MB", 1 << 20, 1 << 26), ("128 MB - 1 GB", 1 << 27, 1 << 30))


def groups(rows, excluded) -> dict:
    kept = [r for i, r in enumerate(rows) if i not in excluded]
    out = {"all": summarise(rows), "all, without X3": summarise(kept)}
    for key in sorted({r.source for r in rows}):
        out[f"source {key}"] = summarise([r for r in rows if r.source == key])
    for coll in ("allreduce", "allgather", "reducescatter"):
        out[f"collective {coll}"] = summarise([r for r in rows if r.collective == coll])
    for name, lo, hi in BANDS:
        out[f"size {name}"] = summarise([r for r in rows if lo <= r.size_bytes <= hi])
    nvls_live = [r for r in rows if r.source == "together_slurm_all_reduce_nvls"]
    out["NVLS-active all-reduce, 128 MB - 1 GB"] = summarise([r for r in nvls_live if r.size_bytes >= 1 << 27])
    return out


def main() -> None:
    rows = score_holdout(session11_system("dgx_h100"), HOLDOUT_S4_CSV)  # the ring LL line of sessions 3-11
    excluded = x3_spikes(rows)
    summary = groups(rows, excluded)
    md = ["# Session-4 NEW held-out set: 8 x H100 nccl-tests (Together AI) vs the frozen model (dgx_h100, analytical)", "",
          "Scored once after the freeze (PREREGISTRATION_nccl_session4.md + addendum). error = model / published - 1; "
          "`forced` = the run's NCCL_ALGO, priced the same; otherwise the model chooses. X3 = pre-registered spike rule.", "",
          "| source | collective | forced | size (B) | published (us) | model (us) | algorithm | error | X3 |",
          "|---|---|---|---:|---:|---:|---|---:|---|"]
    for i, r in enumerate(rows):
        md.append(f"| [{r.source}]({r.url}) | {r.collective} | {r.forced or '-'} | {r.size_bytes:,} | {r.published_us:g} | "
                  f"{r.model_us:.2f} | {r.algorithm} | {r.err_pct:+.1f}% | {'excluded' if i in excluded else ''} |")
    md += ["", "| set | points | median abs error | max abs error | within 15 % |", "|---|---:|---:|---:|---:|"]
    for k, s in summary.items():
        md.append(f"| {k} | {s['points']} | {s['median_abs_err_pct']:.1f}% | {s['max_abs_err_pct']:.1f}% | "
                  f"{s['within']} of {s['points']} |")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "collective_holdout_s4.json").write_text(json.dumps(
        {"rows": [asdict(r) | {"err_pct": r.err_pct, "x3_excluded": i in excluded} for i, r in enumerate(rows)],
         "summary": summary}, indent=1))
    (OUT / "collective_holdout_s4.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
