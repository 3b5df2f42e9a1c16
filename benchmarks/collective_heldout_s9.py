"""Session 9: the bundled dgx_h100 (no calibration), frozen at the pre-registration commit, scored once on the
session-9 published single-node 8 x H100 nccl-tests tables (validation/published/PREREGISTRATION_nccl_session9.md;
rows in validation/published/nccl_8xh100_heldout_session9.csv, re-derived from raw_s9/ by
cosim.calibrate.collective_heldout_s9). Nothing is fitted and no model change follows from this score.

Every run prices every row with the frozen commit's own code (a `git archive` export) and with this tree; the frozen
prices are the ones scored, and a difference is reported. Without the frozen commit in the clone's history it stops
with one `error:` line (exit 2) and writes nothing.

Prints and writes benchmarks/results/collective_heldout_s9.{md,json}. Run from the repo root:
PYTHONPATH=. python benchmarks/collective_heldout_s9.py
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import subprocess
import sys
from pathlib import Path

from cosim.calibrate import frozen_commit
from cosim.calibrate.collective_heldout_s9 import FROZEN, HELDOUT_S9_CSV, headline_sources
from cosim.calibrate.collective_holdout_s4b import BANDS, score_file, x3_x4

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results"
TOL = 15.0


def frozen_prices(csv_path: Path) -> list:
    """Model times (us) of every row priced by the frozen commit's own code (cosim.calibrate.frozen_commit)."""
    return frozen_commit.frozen_prices(FROZEN, csv_path, ROOT)


def _stats(rows, busbw: bool = False) -> dict:
    """Time error |model / published - 1| (busbw: |published / model - 1|, the bus-bandwidth error) over in-range rows."""
    e = [abs(100 * ((r.published_us / r.model_us) if busbw else (r.model_us / r.published_us)) - 100)
         for r in rows if r.in_range]
    if not e:
        return {"points": 0}
    return {"points": len(e), "within": sum(x <= TOL for x in e), "median": statistics.median(e), "max": max(e)}


def _fmt(s: dict) -> str:
    return "- | - | -" if not s["points"] else f"{s['within']} of {s['points']} | {s['median']:.1f}% | {s['max']:.1f}%"


def _table(rows, label: str) -> tuple[list, dict]:
    x3, x4 = x3_x4(rows)
    keep = [r for i, r in enumerate(rows) if i not in x3 | x4]
    sets = {label: rows}
    for src in dict.fromkeys(r.source for r in rows):
        sets[src] = [r for r in rows if r.source == src]
    for name, lo, hi in BANDS:
        sets[f"size {name}"] = [r for r in rows if lo <= r.size_bytes <= hi]
    res = {k: {"time": _stats(v), "busbw": _stats(v, True),
               "time_kept": _stats([r for r in v if r in keep])} for k, v in sets.items()}
    md = ["| set | time: within 15 % | median | max | busbw: within 15 % | median | max | without X3 / X4 (time) |",
          "|---|---:|---:|---:|---:|---:|---:|---|"]
    md += [f"| {k} | {_fmt(v['time'])} | {_fmt(v['busbw'])} | {_fmt(v['time_kept'])} |" for k, v in res.items()]
    return md, res


def main(argv=None) -> int:
    head_rows = score_file(HELDOUT_S9_CSV)
    try:
        fp = frozen_prices(HELDOUT_S9_CSV)
    except (subprocess.CalledProcessError, OSError) as e:
        print(f"error: frozen commit {FROZEN[:7]} could not price {HELDOUT_S9_CSV.name} ({e}); the rules score this "
              f"held-out on that commit's code: fetch the full history (git fetch --unshallow) and re-run",
              file=sys.stderr)
        return 2
    moved = sum(a != r.model_us for a, r in zip(fp, head_rows))
    rows = [dataclasses.replace(r, model_us=a) for a, r in zip(fp, head_rows)]
    ar = [r for r in rows if r.source in headline_sources() and r.in_range]
    other = {k: [r for r in rows if r.collective == k and r.in_range] for k in ("allgather", "reducescatter")}
    t_ar, s_ar = _table(ar, "all-reduce, 10 nodes (headline)")
    met_all = s_ar["all-reduce, 10 nodes (headline)"]["time_kept"]
    covered = [name for name, lo, hi in BANDS if any(lo <= r.size_bytes <= hi for r in ar)]
    verdict = ("met on the covered bands only" if met_all["within"] == met_all["points"] and len(covered) < len(BANDS)
               else "met" if met_all["within"] == met_all["points"] else "not met")
    md = ["# Session 9: bundled dgx_h100 (no calibration) on published single-node 8 x H100 nccl-tests tables", "",
          f"Rules: validation/published/PREREGISTRATION_nccl_session9.md (committed before the search). Frozen model "
          f"{FROZEN[:7]}; each row priced as its harness ran it (one process per GPU: `nGpus 1`, 8 ranks; NCCL_ALGO not "
          "forced: the model's own choice), analytical level, no calibration. Time error = model / published - 1; "
          "bus-bandwidth error = published time / model time - 1. Scored once; no model change follows.", "",
          "## 1. Headline: all-reduce, xxrjun/nccl-tests-cluster cnode3-002..011 (NCCL 2.29.2), 32 MB - 1 GB", ""]
    md += t_ar
    md += ["", f"Bands covered: {', '.join(covered)} (the tables start at 32 MB). Verdict by the rules: **{verdict}**.", "",
           "Per row (frozen price; model algorithm):", "", "| node | size (B) | published (us) | model (us) | error | algorithm |",
           "|---|---:|---:|---:|---:|---|"]
    md += [f"| {r.source.split('_')[1]} | {r.size_bytes:,} | {r.published_us:.2f} | {r.model_us:.2f} | "
           f"{r.err_pct:+.1f}% | {r.algorithm} |" for r in ar]
    for k, label in (("allgather", "all-gather"), ("reducescatter", "reduce-scatter")):
        t, _ = _table(other[k], f"{label}, 10 nodes")
        md += ["", f"## {label} (same nodes; scored separately, not the all-reduce line)", ""] + t
    md += ["", f"Frozen-commit check: {len(rows)} rows re-priced by {FROZEN[:7]}'s own code: "
           + ("identical to this tree's prices." if not moved else
              f"DIFFERENT at {moved} rows; the frozen prices are the result (every table above).")]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "collective_heldout_s9.md").write_text("\n".join(md) + "\n")
    (OUT / "collective_heldout_s9.json").write_text(json.dumps(
        {"frozen": FROZEN, "moved": moved, "verdict": verdict, "bands_covered": covered, "allreduce": s_ar,
         "allgather": _table(other["allgather"], "all")[1], "reducescatter": _table(other["reducescatter"], "all")[1],
         "rows": [{"source": r.source, "size": r.size_bytes, "published_us": r.published_us, "model_us": r.model_us,
                   "algorithm": r.algorithm, "collective": r.collective} for r in rows if r.in_range]}, indent=1))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
