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

import re
import sys
from pathlib import Path

from cosim.calibrate.collective_heldout_s9 import FROZEN, HELDOUT_S9_CSV, RAW, ROUND, TABLES
from cosim.calibrate.collective_holdout_s4b import score_file, session8_systems
from cosim.calibrate.nccl_heldout_score import TOL, frozen_check, frozen_rows_or_error, score_headline, write_result
from cosim.calibrate.nccl_heldout_score import score_table as _table
from cosim.calibrate.nccl_table import read_nccl_tests

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results"


def _one_configuration(ar) -> list:
    """What the headline rows are: which batch job(s) the source URLs name, the spread of the published 32 MB times
    and of the per-size errors across nodes, and the dtype each raw log ran (read from the tables, not typed)."""
    jobs = sorted({m.group(1) for t in TABLES if (m := re.search(r"/runs/([^/]+)/", t.url))})
    by_size: dict = {}
    for r in ar:
        by_size.setdefault(r.size_bytes, []).append(r)
    small = by_size[min(by_size)]
    spread = max(max(r.err_pct for r in v) - min(r.err_pct for r in v) for v in by_size.values())
    dtypes = sorted({row.dtype for t in TABLES for row in read_nccl_tests(RAW / t.raw, t.collective).rows})
    nodes = len({r.source for r in ar})
    what = (f"effectively **one machine configuration**, not {nodes} independent machines" if len(jobs) == 1 else
            f"{len(jobs)} batch jobs")
    return [f"What this score is: {what}. All {nodes} nodes' logs come from {'one batch job' if len(jobs) == 1 else f'{len(jobs)} batch jobs'} "
            f"(`runs/{', '.join(jobs)}` in every source URL); the {min(by_size) >> 20} MB row takes "
            f"{min(r.published_us for r in small):.2f} - {max(r.published_us for r in small):.2f} us on every node, "
            f"and at each size the nodes' errors agree within {spread:.2f} percentage points. The runs used `-d "
            f"{', '.join(dtypes)}` (nccl-tests' default is float; stated in each CSV row's note): bus bandwidth is "
            "bytes over time, and the model (hwmodels.collectives.collective_cost) takes bytes only, with no dtype "
            "input, so it prices a double all-reduce the same as a float one of equal bytes (NCCL allows NVLS for a "
            "double sum, src/include/device.h ncclNvlsSupported). Whether the hardware reduces doubles at the same "
            "byte rate as floats is not tested here."]


def _session8_line(rows, head_rows) -> list:
    """The pre-registration's 'session-8 term (information, not the score)': the same rows priced with the
    session-4b/8 single-process term (collective_holdout_s4b.session8_systems)."""
    old = score_file(HELDOUT_S9_CSV, systems=session8_systems())
    same = sum(a.model_us == b.model_us for a, b in zip(old, head_rows))
    heads = ROUND.headline_sources()
    ar = [o for o, r in zip(old, rows) if r.source in heads and r.in_range]
    within = sum(abs(o.err_pct) <= TOL for o in ar)
    return ["", "## Session-8 term (information, not the score)", "",
            f"Priced with the session-8 single-process term (8.35 + 3.72 n us, session8_systems()): {same} of "
            f"{len(head_rows)} rows priced as with the session-9 term ({within} of {len(ar)} headline all-reduce rows "
            "within 15 %): every row here is one process per GPU, which does not use the single-process term."]


def main(argv=None) -> int:
    got = frozen_rows_or_error(FROZEN, HELDOUT_S9_CSV, ROOT)
    if got is None:
        return 2
    head_rows, rows, moved = got
    ar = ROUND.headline_rows(rows)
    other = {k: [r for r in rows if r.collective == k and r.in_range] for k in ("allgather", "reducescatter")}
    h = score_headline(ar, "all-reduce, 10 nodes (headline)")
    t_ar, s_ar, covered, verdict_ = h.md, h.stats, h.covered, h.verdict
    md = ["# Session 9: bundled dgx_h100 (no calibration) on published single-node 8 x H100 nccl-tests tables", "",
          f"Rules: validation/published/PREREGISTRATION_nccl_session9.md (committed before the search). Frozen model "
          f"{FROZEN[:7]}; each row priced as its harness ran it (one process per GPU: `nGpus 1`, 8 ranks; NCCL_ALGO not "
          "forced: the model's own choice), analytical level, no calibration. Time error = model / published - 1; "
          "bus-bandwidth error = published time / model time - 1. Scored once; no model change follows.", "",
          "## 1. Headline: all-reduce, xxrjun/nccl-tests-cluster cnode3-002..011 (NCCL 2.29.2), 32 MB - 1 GB", ""]
    md += t_ar
    md += [""] + _one_configuration(ar)
    md += ["", f"Bands covered: {', '.join(covered)} (the tables start at 32 MB). Verdict by the rules: **{verdict_}**.", "",
           "Per row (frozen price; model algorithm):", "", "| node | size (B) | published (us) | model (us) | error | algorithm |",
           "|---|---:|---:|---:|---:|---|"]
    md += [f"| {r.source.split('_')[1]} | {r.size_bytes:,} | {r.published_us:.2f} | {r.model_us:.2f} | "
           f"{r.err_pct:+.1f}% | {r.algorithm} |" for r in ar]
    for k, label in (("allgather", "all-gather"), ("reducescatter", "reduce-scatter")):
        t, _ = _table(other[k], f"{label}, 10 nodes")
        md += ["", f"## {label} (same nodes; scored separately, not the all-reduce line)", ""] + t
    md += _session8_line(rows, head_rows)
    md += ["", frozen_check(FROZEN, rows, moved)]
    write_result(OUT, "collective_heldout_s9", md, {
        "frozen": FROZEN, "moved": moved, "verdict": verdict_, "bands_covered": covered, "allreduce": s_ar,
        "allgather": _table(other["allgather"], "all")[1], "reducescatter": _table(other["reducescatter"], "all")[1],
        "rows": [{"source": r.source, "size": r.size_bytes, "published_us": r.published_us, "model_us": r.model_us,
                  "algorithm": r.algorithm, "collective": r.collective} for r in rows if r.in_range]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
