"""Session 11: the bundled dgx_h100 (no calibration), frozen at main's f26af7b, scored once on the session-11 published
single-node 8 x H100 nccl-tests table (validation/published/PREREGISTRATION_nccl_session11.md; rows in
validation/published/nccl_8xh100_heldout_session11.csv, re-derived from raw_s11/ by cosim.calibrate.collective_heldout_s11;
every source considered in nccl_sources_session11.csv). Session 9's rules and scoring code
(cosim.calibrate.nccl_heldout_score). Nothing is fitted and no model change follows from this score.

Every run prices every row with the frozen commit's own code (a `git archive` export) and with this tree; the frozen
prices are the ones scored, and a difference is reported. Without the frozen commit in the clone's history it stops
with one `error:` line (exit 2) and writes nothing.

Prints and writes benchmarks/results/collective_heldout_s11.{md,json}. Run from the repo root:
PYTHONPATH=. python benchmarks/collective_heldout_s11.py
"""

from __future__ import annotations

import sys
from pathlib import Path

from cosim.calibrate.collective_heldout_s11 import FROZEN, HELDOUT_S11_CSV, ROUND, TABLES
from cosim.calibrate.nccl_heldout_score import (frozen_check, frozen_rows_or_error, row_records, rows_table,
                                                score_headline, write_result)

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results"
LABEL = "all-reduce, pool0-01806 (headline)"



def main(argv=None) -> int:
    got = frozen_rows_or_error(FROZEN, HELDOUT_S11_CSV, ROOT)
    if got is None:
        return 2
    head_rows, rows, moved = got
    ar = ROUND.headline_rows(rows, "allreduce")
    h = score_headline(ar, LABEL)
    t_ar, s_ar, covered, v = h.md, h.stats, h.covered, h.verdict
    md = ["# Session 11: bundled dgx_h100 (no calibration) on a published single-node 8 x H100 nccl-tests table", "",
          f"Rules: validation/published/PREREGISTRATION_nccl_session11.md (session 9's Q1-Q4 / E1-E5 / X2-X4 and scoring, "
          f"by reference; committed before the table's rows were read). Frozen model {FROZEN[:7]}; each row priced as its "
          "harness ran it (one process per GPU: `nGpus 1`, 8 ranks; NCCL_ALGO not forced: the model's own choice), "
          "analytical level, no calibration. Time error = model / published - 1; bus-bandwidth error = published time "
          "/ model time - 1. Scored once; no model change follows.", "",
          f"Source: {TABLES[0].url} (NVIDIA's sample output of its DGX Cloud NCCL recipe, node pool0-01806; the README "
          "does not date it; the recipe's settings at that commit force nothing; NCCL version not stated).", "",
          "## 1. Headline: all-reduce, 1 KB - 1 GB", ""] + t_ar
    md += h.verdict_lines()
    md += ["Per row (frozen price; model algorithm):", ""] + rows_table(ar)
    md += ["", frozen_check(FROZEN, rows, moved)]
    write_result(OUT, "collective_heldout_s11", md, {
        "frozen": FROZEN, "moved": moved, "verdict": v, "bands_covered": covered, "allreduce": s_ar,
        "rows": row_records(rows, head_rows)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
