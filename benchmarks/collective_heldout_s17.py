"""Session 17: the bundled dgx_h100 (no calibration), frozen at the commit validation/published/
PREREGISTRATION_nccl_session17.md names, scored once on 17 single-node 8 x H100 nccl-tests runs of a second xxrjun
cluster (example-cluster00, NCCL 2.28.7; rows in validation/published/nccl_8xh100_heldout_session17.csv, re-derived
from raw_s17/ by cosim.calibrate.collective_heldout_s17; sources in nccl_sources_session17.csv). Session 9's rules and
scoring code (cosim.calibrate.nccl_heldout_score). Nothing is fitted and no model change follows.

Every run prices every row with the frozen commit's own code (a `git archive` export) and with this tree; the frozen
prices are the ones scored. Without the frozen commit in the clone's history it stops with one `error:` line (exit 2)
and writes nothing.

Prints and writes benchmarks/results/collective_heldout_s17.{md,json}. Run from the repo root:
PYTHONPATH=. python benchmarks/collective_heldout_s17.py
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

from cosim.calibrate.collective_heldout_s17 import HELDOUT_S17_CSV, NODES, ROUND
from cosim.calibrate.nccl_heldout_score import (frozen_check, frozen_rows_or_error, row_records, rows_table,
                                                score_headline, score_table, write_result)

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results"
PREREG = ROOT / "validation" / "published" / "PREREGISTRATION_nccl_session17.md"
S9_CSV = ROOT / "validation" / "published" / "nccl_8xh100_heldout_session9.csv"
LABEL = "all-reduce, 17 nodes (headline)"


def frozen_commit() -> str:
    """The commit the pre-registration's 'Frozen model' section names."""
    from cosim.calibrate.frozen_commit import named_commit
    return named_commit(PREREG, "Frozen model")


def _by_size(rows) -> dict:
    out: dict = {}
    for r in rows:
        out.setdefault(r.size_bytes, []).append(r)
    return dict(sorted(out.items()))


def per_size(head) -> list:
    """One line per size: the 17 nodes' published range, the frozen model's price and algorithm, the error range and
    the spread of the nodes' errors (how far the 17 nodes are one machine configuration)."""
    md = ["| size | nodes | published (us): min / median / max | model (us) | algorithm | error: min / max | "
          "error spread (points) |", "|---:|---:|---|---:|---|---|---:|"]
    for size, rs in _by_size(head).items():
        pub = [r.published_us for r in rs]
        err = [r.err_pct for r in rs]
        models = {round(r.model_us, 6) for r in rs}
        algs = sorted({r.algorithm for r in rs})
        md.append(f"| {size >> 20} MB | {len(rs)} | {min(pub):.2f} / {statistics.median(pub):.2f} / {max(pub):.2f} | "
                  f"{'/'.join(f'{m:.2f}' for m in sorted(models))} | {', '.join(algs)} | {min(err):+.1f}% / "
                  f"{max(err):+.1f}% | {max(err) - min(err):.2f} |")
    return md


def vs_cluster01(head) -> list:
    """For information: the same harness on the author's other cluster (session 9's cnode3 rows, NCCL 2.29.2; seen
    data), median published time per size beside this cluster's."""
    import csv
    with open(S9_CSV, newline="") as f:
        s9 = [r for r in csv.DictReader(f) if r["collective"] == "allreduce" and r["in_range"] == "yes"]
    md = ["| size | cluster00 (cnode2, NCCL 2.28.7) median (us) | cluster01 (cnode3, NCCL 2.29.2, session 9) median "
          "(us) | ratio |", "|---:|---:|---:|---:|"]
    for size, rs in _by_size(head).items():
        a = statistics.median(r.published_us for r in rs)
        b = statistics.median(float(r["time_us"]) for r in s9 if int(r["size_bytes"]) == size)
        md.append(f"| {size >> 20} MB | {a:.2f} | {b:.2f} | {a / b:.3f} |")
    return md


def main(argv=None) -> int:
    frozen = frozen_commit()
    got = frozen_rows_or_error(frozen, HELDOUT_S17_CSV, ROOT)
    if got is None:
        return 2
    head_rows, rows, moved = got
    head = ROUND.headline_rows(rows, "allreduce")
    hl = score_headline(head, LABEL)
    md = ["# Session 17: bundled dgx_h100 (no calibration) on 17 single-node 8 x H100 nccl-tests runs (xxrjun "
          "example-cluster00, NCCL 2.28.7)", "",
          "Rules: validation/published/PREREGISTRATION_nccl_session17.md (committed with the sources list before any "
          f"latency was read; session 9's rules by reference). Frozen model {frozen[:10]}; every row priced as its "
          "harness ran it (one process per GPU: `nGpus 1`, 8 ranks; element type double; NCCL_ALGO not forced: the "
          "model's own choice), analytical level, no calibration. Time error = model / published - 1; bus-bandwidth "
          "error = published time / model time - 1. Scored once; no model change follows.", "",
          "## 1. Headline: all-reduce, cnode2-001..017, 32 MB - 1 GB (the runs start at 32 MB)", ""] + hl.md
    md += hl.verdict_lines()
    md += ["Per size (the 17 nodes; frozen prices):", ""] + per_size(head)
    md += ["", f"All {len(NODES)} logs come from one batch run (`runs/2511`) of one cluster with one NCCL build: one "
           "machine configuration measured 17 times, not 17 machines (the error spread above is across nodes).", ""]
    md += ["Per row (frozen price; model algorithm):", ""] + rows_table(head)
    others = {}
    for kind, label in (("allgather", "all-gather"), ("reducescatter", "reduce-scatter")):
        rs = [r for r in rows if r.collective == kind and r.in_range]
        t, s = score_table(rs, f"{label}, 17 nodes")
        md += ["", f"## {label} (same nodes; scored separately, not the all-reduce line)", ""] + t
        others[kind] = s[f"{label}, 17 nodes"]
    md += ["", "## The same harness on the author's other cluster (for information; session 9's rows are seen data)",
           ""] + vs_cluster01(head)
    md += ["", frozen_check(frozen, rows, moved)]
    write_result(OUT, "collective_heldout_s17", md, {
        "frozen": frozen, "moved": moved, "verdict": hl.verdict, "bands_covered": hl.covered,
        "headline": hl.stats, "others": others, "rows": row_records(rows, head_rows)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
