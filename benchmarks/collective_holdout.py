"""Held-out all-reduce curves on H100 NVLink4 (1 KB - 1 GB) vs the fitted collective model.

The fit/hold-out split was fixed before these points were collected
(validation/published/PREREGISTRATION_nccl_8xh100.md); nothing is re-fitted here. Prints and
writes benchmarks/results/collective_holdout.{md,json}: every point, its error, and the median /
max absolute error per source. Run from the repo root: PYTHONPATH=. python benchmarks/collective_holdout.py
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from cosim.calibrate.collective_holdout_s4b import session11_system
from cosim.calibrate.collective_holdout import score_holdout, summarise
from hwmodels.system import load_system

OUT = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def main() -> None:
    rows = score_holdout(session11_system("dgx_h100"))  # the ring LL line of sessions 3-11
    groups = {8: [r for r in rows if r.n_gpus == 8], 4: [r for r in rows if r.n_gpus == 4]}
    summary = {f"{n}_gpus": summarise(g) for n, g in groups.items()}
    summary["8_gpus_without_2MB_outlier"] = summarise([r for r in groups[8] if r.size_bytes != 1 << 21])
    summary["all"] = summarise(rows)
    # X3 of PREREGISTRATION_nccl_session4.md: a row > 2x the geometric mean of its two neighbours
    summary["all_with_exclusion_X3"] = summarise([r for r in rows if r.size_bytes != 1 << 21 or r.n_gpus != 8])
    md = ["# Session-3 held-out H100 all-reduce curves vs the analytical collective model (dgx_h100)", "",
          "Model: the session-4 refit (docs/multi-device.md 5.1.2). These 33 in-range points were a hold-out in "
          "session 3 and are PREVIOUSLY SEEN now; the 4-GPU rows come from the same box as part of the session-4 "
          "fit data (nccl-collectives-bench). The new session-4 held-out set has no transcribed rows "
          "(validation/published/nccl_sources_session4.csv). error = model / published - 1.",
          "| source | GPUs | harness | size (B) | published (us) | model (us) | algorithm | error | in 1 KB-1 GB |",
          "|---|---:|---|---:|---:|---:|---|---:|---|"]
    for r in rows:
        md.append(f"| [{r.source}]({r.url}) | {r.n_gpus} | {r.harness} | {r.size_bytes:,} | {r.published_us:g} | "
                  f"{r.model_us:.2f} | {r.algorithm} | {r.err_pct:+.1f}% | {'yes' if r.in_range else 'no'} |")
    md += ["", "| set | points | median abs error | max abs error | within 15 % |", "|---|---:|---:|---:|---:|"]
    for k, s in summary.items():
        md.append(f"| {k} | {s['points']} | {s['median_abs_err_pct']:.1f}% | {s['max_abs_err_pct']:.1f}% | "
                  f"{s['within']} of {s['points']} |")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "collective_holdout.json").write_text(json.dumps({"rows": [asdict(r) | {"err_pct": r.err_pct} for r in rows],
                                                             "summary": summary}, indent=1))
    (OUT / "collective_holdout.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
