"""Session-4b: score the NEW held-out set (Azure ND H100 v5 / ND H200 v5 nccl-tests, NVLS forced, `-g 8`)
once against the frozen model with its launch-mode term (commit 1470d5a; split and rules in
validation/published/PREREGISTRATION_nccl_session4b.md), and re-score the previously seen sets with each
row in its harness's launch mode. Nothing here is fitted.

Prints and writes benchmarks/results/collective_holdout_s4b.{md,json}. Run from the repo root:
PYTHONPATH=. python benchmarks/collective_holdout_s4b.py
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from cosim.calibrate.collective_holdout import HOLDOUT_CSV, HOLDOUT_S4_CSV
from cosim.calibrate.collective_holdout_s4b import BANDS, HELDOUT_S4B_CSV, score_file, session4b_systems, summary, x3_x4

OUT = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
SETS = (("NEW held-out: Azure ND H100 v5 / ND H200 v5 (NVLS forced, -g 8)", HELDOUT_S4B_CSV),
        ("SEEN: session-3 set (Triton-distributed #57 torch.distributed; nccl-collectives-bench -g 4)", HOLDOUT_CSV),
        ("SEEN, fit data of the launch term: Together AI 8 x H100 (-g 8)", HOLDOUT_S4_CSV))


def groups(rows) -> dict:
    x3, x4 = x3_x4(rows)
    keep = lambda ex: [r for i, r in enumerate(rows) if i not in ex]  # noqa: E731
    out = {"all": summary(rows), "without X3": summary(keep(x3)), "without X4": summary(keep(x4)),
           "without X3 and X4": summary(keep(x3 | x4))}
    for key in sorted({r.source for r in rows}):
        out[f"source {key}"] = summary([r for r in rows if r.source == key])
    for name, lo, hi in BANDS:
        band = [r for r in rows if lo <= r.size_bytes <= hi]
        out[f"size {name}"] = summary(band)
        out[f"size {name}, without X3 and X4"] = summary([r for r in band if rows.index(r) not in x3 | x4])
    if any(r.forced for r in rows):
        out["information only: the model's own algorithm choice (not the score)"] = summary(rows, free=True)
    return out


def table(title, rows) -> list[str]:
    x3, x4 = x3_x4(rows)
    md = [f"## {title}", "", "| source | GPUs | collective | forced | launch | size (B) | published (us) | model (us) | "
          "algorithm | error | own choice (info) | excluded |", "|---|---:|---|---|---|---:|---:|---:|---|---:|---|---|"]
    for i, r in enumerate(rows):
        ex = ",".join(k for k, s in (("X3", x3), ("X4", x4)) if i in s) or ("X2" if not r.in_range else "")
        md.append(f"| [{r.source}]({r.url}) | {r.n_gpus} | {r.collective} | {r.forced or '-'} | {r.launch} | "
                  f"{r.size_bytes:,} | {r.published_us:g} | {r.model_us:.2f} | {r.algorithm} | {r.err_pct:+.1f}% | "
                  f"{r.free_algorithm} {r.free_us:.1f} | {ex} |")
    return md


def main() -> None:
    md = ["# Session-4b: collective model with the launch-mode term vs published nccl-tests", "",
          "error = model / published - 1; each row priced in its harness's launch mode (one_process_per_gpu | "
          "single_process) and with the run's forced algorithm (NCCL_ALGO), as pre-registered. "
          "X2: outside 1 KB - 1 GB (not scored); X3: single-row spike; X4: busbw < 0.10 GB/s (rounding). "
          "Model frozen at commit 1470d5a (PREREGISTRATION_nccl_session4b.md); the new held-out is scored once.", ""]
    result, summaries = {}, []
    for title, path in SETS:
        rows = score_file(path, systems=session4b_systems())  # the session-4b model (no NVLS regime line)
        g = groups(rows)
        result[title] = {"rows": [asdict(r) | {"err_pct": r.err_pct} for r in rows], "summary": g}
        summaries += [f"### {title}", "", "| set | points | median abs error | max abs error | within 15 % |",
                      "|---|---:|---:|---:|---:|"]
        summaries += [f"| {k} | {s['points']} | {s['median_abs_err_pct']:.1f}% | {s['max_abs_err_pct']:.1f}% | "
                      f"{s['within']} of {s['points']} |" for k, s in g.items() if s["points"]]
        summaries.append("")
        md += table(title, rows) + [""]
    md = md[:4] + ["# Summary", ""] + summaries + md[4:]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "collective_holdout_s4b.json").write_text(json.dumps(result, indent=1))
    (OUT / "collective_holdout_s4b.md").write_text("\n".join(md) + "\n")
    print("\n".join(md[:4] + ["# Summary", ""] + summaries))


if __name__ == "__main__":
    main()
