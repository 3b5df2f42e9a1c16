"""Session 8: the frozen bundled dgx_h100 (no calibration) scored once on fresh published single-node 8 x H100
nccl-tests tables (validation/collective_heldout_s8_rules.md, committed before the search; rows in
validation/published/nccl_8xh100_heldout_session8.csv, re-derived from the verbatim raw text by
cosim.calibrate.collective_heldout_s8). Nothing is fitted and no model change follows from this score.

The rules freeze the model at bd5b763: every run re-prices every row with that commit's code (a `git archive`
export) and checks the prices are identical to this tree's (the session-8 clean-up must not move a price); where
they differ, the frozen prices are the ones scored and tabled (the rules: "the frozen commit's figures are the
result"), and the difference is reported. Without the frozen commit in the clone's history it stops with one
`error:` line (exit 2) and writes nothing.

Prints and writes benchmarks/results/collective_heldout_s8.{md,json}. Run from the repo root:
PYTHONPATH=. python benchmarks/collective_heldout_s8.py
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import subprocess
import sys
from pathlib import Path

from cosim.calibrate import frozen_commit
from cosim.calibrate.collective_default_s7 import band_table, default_rows, empty_sizes, feasibility, kept, score_table
from cosim.calibrate.collective_heldout_s8 import HELDOUT_S8_CSV, headline_sources
from cosim.calibrate.collective_holdout_s4b import score_file, session8_systems, x3_x4
from cosim.calibrate.collective_holdout_s6 import score_calibrated

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results"
FROZEN = "bd5b7632146966309e7ac64f3b065166f04ab636"  # validation/collective_heldout_s8_rules.md


def frozen_prices(csv_path: Path) -> list:
    """Model times (us) of every row priced by the frozen commit's own code (cosim.calibrate.frozen_commit)."""
    return frozen_commit.frozen_prices(FROZEN, csv_path, ROOT)


def frozen_rows(rows) -> tuple[list, int]:
    """(rows as scored, how many of them this tree prices differently): the frozen commit's prices replace this
    tree's where they differ (model_us; the algorithm column stays this tree's choice). Raises RuntimeError
    saying what failed when the frozen commit cannot price the rows."""
    try:
        fp = frozen_prices(HELDOUT_S8_CSV)
    except subprocess.CalledProcessError as e:
        why = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        raise RuntimeError(f"frozen commit {FROZEN[:7]}: `{' '.join(map(str, e.cmd))[:60]}` failed (exit "
                           f"{e.returncode}: {why.strip().splitlines()[-1] if why.strip() else 'no message'}); the "
                           f"rules score this held-out on that commit's code: fetch the full history "
                           f"(git fetch --unshallow) and re-run") from None
    except OSError as e:
        raise RuntimeError(f"frozen commit {FROZEN[:7]}: cannot run git / tar ({e})") from None
    if len(fp) != len(rows):
        raise RuntimeError(f"frozen commit {FROZEN[:7]} priced {len(fp)} rows of {HELDOUT_S8_CSV.name}, this tree "
                           f"read {len(rows)}; expected the same rows")
    moved = sum(f != r.model_us for f, r in zip(fp, rows))
    return [dataclasses.replace(r, model_us=f) for f, r in zip(fp, rows)], moved


def _frozen_line(moved: int, n: int) -> str:
    head = f"Frozen-commit check: every row re-priced by {FROZEN[:7]}'s own code: "
    if not moved:
        return head + f"identical ({n} rows)."
    return head + (f"DIFFERENT at {moved} of {n} rows; the frozen prices are the result and every table above shows "
                   f"them (this tree's prices differ: a bug of the clean-up).")


def _rows_table(rows) -> list:
    x3, x4 = x3_x4(rows)
    md = ["| size (B) | published (us) | model (us) | algorithm | error | excluded |", "|---:|---:|---:|---|---:|---|"]
    md += [f"| {r.size_bytes:,} | {r.published_us:.2f} | {r.model_us:.2f} | {r.algorithm} | {r.err_pct:+.1f}% | "
           f"{'X3' if i in x3 else 'X4' if i in x4 else ''} |" for i, r in enumerate(rows) if r.in_range]
    return md


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="session-8 held-out nccl-tests score of the bundled dgx_h100")
    ap.add_argument("--frozen", action="store_true",
                    help=f"accepted for old command lines: every run prices the rows with the frozen commit {FROZEN[:7]}")
    ap.parse_args(argv)
    try:
        # this tree priced with the launch term the frozen commit carried (session 9 re-chose it on fit data)
        rows, moved = frozen_rows(score_file(HELDOUT_S8_CSV, systems=session8_systems()))
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    head = [r for r in rows if r.source in headline_sources()]
    ar = [r for r in head if r.collective == "allreduce"]
    ag = [r for r in head if r.collective == "allgather"]
    info = [r for r in rows if r.source not in headline_sources()]
    md = ["# Session 8: bundled dgx_h100 (no calibration) on fresh published single-node 8 x H100 nccl-tests tables", "",
          "Rules: validation/collective_heldout_s8_rules.md (committed before the search). Frozen model "
          f"{FROZEN[:7]}; each row priced as its harness ran it (`-g 8`: single_process; NCCL_ALGO not forced: the "
          "model's own choice), analytical level, no calibration; error = model / published - 1. Scored once; no "
          "model change is accepted or reverted on it.", "",
          "## 1. Headline: all-reduce, Voltage Park g138 (8 x H100 SXM, NCCL 2.24.3), 1 KB - 1 GB", ""]
    t_ar, s_ar = score_table(ar, "all-reduce (headline)")
    md += t_ar + ["", "Per row:", ""] + _rows_table(ar)
    t_ag, s_ag = score_table(ag, "all-gather (same node)")
    md += ["", "## 2. All-gather, same node (scored the same way; not part of the all-reduce acceptance line)", ""]
    md += t_ag + ["", "Per row:", ""] + _rows_table(ag)
    t_in, s_in = score_table(info, "information only (Q4 / Q1)")
    md += ["", "## 3. Information only (kept out of the headline by the rules)", ""] + t_in
    seen = [r for r in default_rows(session8_systems()) if r.gpu.startswith("H100")]
    pooled = seen + [r for r in ar if r.in_range]  # default_rows() holds scored (1 KB - 1 GB) rows only
    t_p, s_p = score_table(pooled, "every 8 x H100 all-reduce curve held (seen + new)")
    grp = lambda r: f"{r.launch} {r.forced or 'unforced'}"  # noqa: E731  (the groups the model tells apart)
    bands = feasibility(pooled, grp)
    empty = empty_sizes(bands)
    md += ["", "## 4. Pooled with every seen single-node 8 x H100 all-reduce curve (session 7's set), for information",
           ""] + t_p
    md += ["", f"Feasibility (any single prediction within 15 % of every curve of the same launch mode and algorithm "
               f"group): empty at {len(empty)} of {sum(b.curves > 1 for b in bands)} multi-curve cells "
               f"({', '.join(f'{g} {s:,}' for g, s in empty) or 'none'}).", ""] + band_table(bands)
    md += ["", "## 5. Information, not pre-registered: the session-6 per-machine calibration applied to g138", "",
           "validation/collective_calibration_rules.md's procedure as is: floor = median of the node's own 2 / 4 / 8 KB "
           "rows, latency of the algorithm the model runs at 1 - 2 MiB (ring: replace law) from its own 1 / 2 MiB rows; "
           "every other row of 1 KB - 1 GB scored (priced on the one-line-per-protocol model, as in session 6). "
           "A machine's calibration belongs in that machine's system file; the bundled dgx_h100 carries none.", ""]
    cal_rows, cals = score_calibrated(HELDOUT_S8_CSV, ("vp_g138_all_reduce",))
    cal_ar = [c for c in cal_rows if c.row.source == "vp_g138_all_reduce"]
    cal_kept = [c for c in cal_ar if not c.excluded]
    errs = lambda cs: [abs(c.err_pct) for c in cs]  # noqa: E731
    cal_s = {k: {"points": len(v), "within": sum(e <= 15 for e in v), "median_abs_err_pct": statistics.median(v),
                 "max_abs_err_pct": max(v)} for k, v in (("all", errs(cal_ar)), ("kept", errs(cal_kept)))}
    g = cals["vp_g138_all_reduce"]
    md += [f"Calibration: floor {g.floor_s * 1e6:.2f} us, latency "
           f"{', '.join(f'{a} {v * 1e6:.2f} us' for a, v in g.latency_s.items())}. Scored rows: "
           f"{cal_s['all']['within']} of {cal_s['all']['points']} within 15 % (max {cal_s['all']['max_abs_err_pct']:.1f} %); "
           f"without X3 / X4 {cal_s['kept']['within']} of {cal_s['kept']['points']}.", "",
           "| size (B) | published (us) | calibrated (us) | error | excluded |", "|---:|---:|---:|---:|---|"]
    md += [f"| {c.row.size_bytes:,} | {c.row.published_us:.2f} | {c.calibrated_us:.2f} | {c.err_pct:+.1f}% | {c.excluded} |"
           for c in cal_ar]
    met = all(abs(r.err_pct) <= 15.0 for r in kept(ar) if r.in_range)
    md += ["", f"Acceptance on this held-out (every kept headline all-reduce row within 15 %): "
               f"{'MET' if met else 'NOT MET'}."]
    res = {"headline_allreduce": s_ar, "allgather": s_ag, "info": s_in, "pooled": s_p, "met": met,
           "empty_cells": empty, "calibrated_g138": cal_s, "rows": [r.__dict__ for r in rows]}
    res["frozen_identical"] = not moved
    md += ["", _frozen_line(moved, len(rows))]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "collective_heldout_s8.json").write_text(json.dumps(res, indent=1, default=str))
    (OUT / "collective_heldout_s8.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
