"""Session 12: the bundled dgx_h100 / dgx_h200 (no calibration), frozen at the commit the pre-registration's addendum
names, scored once on NVIDIA AIConfigurator's measured NCCL 2.29.2 tables
(validation/published/PREREGISTRATION_nccl_session12.md; rows in validation/published/nccl_heldout_session12.csv,
re-derived from raw_s12/ by cosim.calibrate.collective_heldout_s12; the search in nccl_search_session12.md). Session 9's
rules and scoring code (cosim.calibrate.nccl_heldout_score). Nothing is fitted and no model change follows.

Every run prices every row with the frozen commit's own code (a `git archive` export) and with this tree; the frozen
prices are the ones scored. Without the frozen commit in the clone's history it stops with one `error:` line (exit 2)
and writes nothing.

Prints and writes benchmarks/results/collective_heldout_s12.{md,json}. Run from the repo root:
PYTHONPATH=. python benchmarks/collective_heldout_s12.py
"""

from __future__ import annotations

import sys
from pathlib import Path

from cosim.calibrate.collective_heldout_s12 import HELDOUT_S12_CSV
from cosim.calibrate.nccl_heldout_score import (frozen_check, frozen_rows_or_error, row_records, rows_table,
                                                score_headline, score_table, write_result)

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results"
PREREG = ROOT / "validation" / "published" / "PREREGISTRATION_nccl_session12.md"
LABEL = "all-reduce, 8 x H100, fp16 (headline)"


def frozen_commit() -> str:
    """The commit the pre-registration's addendum names."""
    from cosim.calibrate.frozen_commit import named_commit
    return named_commit(PREREG, "Addendum: frozen commit")



def _single_process(rows) -> list:
    """The headline rows priced with the model's single-process launch term: for information, not the score."""
    from hwmodels.collectives import collective_cost
    from hwmodels.system import load_system
    s = load_system("dgx_h100")
    md = ["| size (B) | published (us) | single_process model (us) | error |", "|---:|---:|---:|---:|"]
    for r in rows:
        t = collective_cost("allreduce", r.size_bytes, 8, 1, s, "analytical", launch="single_process").time_s * 1e6
        md.append(f"| {r.size_bytes:,} | {r.published_us:.2f} | {t:.2f} | {100 * (t / r.published_us - 1):+.1f}% |")
    return md


# main before session 12's ring LL re-choice (the session-11 collective model): its prices of the headline rows show
# whether that seen-data choice carried to this unseen table (information; the score is the frozen commit's)
BEFORE_LL = "f94078e19b551437623bb50912460ee175cec7c9"


def _before_ll(head, csv_rows) -> list:
    from cosim.calibrate import frozen_commit
    old = frozen_commit.frozen_prices(BEFORE_LL, HELDOUT_S12_CSV, ROOT)
    by_row = {(r.source, r.size_bytes): t for r, t in zip(csv_rows, old)}
    md = ["| size (B) | published (us) | session-11 model (us) | error | frozen model (us) | error |",
          "|---:|---:|---:|---:|---:|---:|"]
    for r in head:
        t = by_row[(r.source, r.size_bytes)]
        md.append(f"| {r.size_bytes:,} | {r.published_us:.2f} | {t:.2f} | {100 * (t / r.published_us - 1):+.1f}% | "
                  f"{r.model_us:.2f} | {r.err_pct:+.1f}% |")
    within = sum(abs(by_row[(r.source, r.size_bytes)] / r.published_us - 1) <= 0.15 for r in head)
    return md + ["", f"Session-11 model: {within} of {len(head)} headline rows within 15 %."]


def main(argv=None) -> int:
    frozen = frozen_commit()
    got = frozen_rows_or_error(frozen, HELDOUT_S12_CSV, ROOT)
    if got is None:
        return 2
    head_rows, rows, moved = got
    scored = [r for r in rows if r.in_range]
    head = [r for r in scored if r.source == "aic_h100_2_29_2_all_reduce_8gpu_half"]
    hl = score_headline(head, LABEL)
    t_head, s_head, covered, v = hl.md, hl.stats, hl.covered, hl.verdict
    md = ["# Session 12: bundled dgx_h100 / dgx_h200 (no calibration) on AIConfigurator's measured NCCL 2.29.2 tables",
          "", f"Rules: validation/published/PREREGISTRATION_nccl_session12.md (rulings and session 9's rules by "
          f"reference, committed before any latency was read). Frozen model {frozen[:10]}; every row priced one "
          "process per GPU (the ruling on `-t N -g 1`), NCCL's algorithm unforced (the model's own choice), analytical "
          "level, no calibration. Time error = model / published - 1; bus-bandwidth error = published time / model "
          "time - 1. Scored once; no model change follows.", "",
          "## 1. Headline: all-reduce, 8 x H100, fp16, 1 KB - 512 MB (the table has no 1 GB row)", ""] + t_head
    md += hl.verdict_lines("X3", "it")
    md += ["Per row (frozen price; model algorithm):", ""] + rows_table(head)
    md += ["", "## 2. Scored beside the headline (not the headline)", ""]
    others = {}
    for src in dict.fromkeys(r.source for r in scored):
        if src != "aic_h100_2_29_2_all_reduce_8gpu_half":
            t, s = score_table([r for r in scored if r.source == src], src)
            md += [f"### {src}", ""] + t + [""]
            others[src] = s[src]
    md += ["## 3. The headline rows priced single_process (for information, not the score)", ""] + _single_process(head)
    md += ["", "## 4. The session-11 model (before the LL re-choice) on the headline rows (for information)", ""]
    md += _before_ll(head, rows)
    md += ["", frozen_check(frozen, rows, moved)]
    write_result(OUT, "collective_heldout_s12", md, {
        "frozen": frozen, "moved": moved, "verdict": v, "bands_covered": covered, "headline": s_head, "others": others,
        "rows": row_records(rows, head_rows)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
