"""Checks shared by the calibration-suite tests: the shapes a suite measures (to prove fit and
held-out suites disjoint), and a measured device run listed in validation/h200_runs.csv merged row
for row (fit and held-out suites alike; the split each lands in is the caller's check)."""

import csv

from cosim.calibrate import dataset
from cosim.calibrate.suite_digest import suite_cases


def suite_shapes(variant: str) -> set:
    """The shape each case measures (what dataset.op_from_row rebuilds): GEMM (M, N, K), the
    attention tuple, elementwise (kind, rows, cols) with rows as section_elementwise computes them."""
    c = suite_cases(variant)
    ew = set()
    for kind, cols, sz in c["elementwise"]:
        ew.add((kind, cols, sz) if kind == "rope_fused" else (kind, (sz // 2) // cols, cols))
    return {("gemm",) + tuple(x) for x in c.get("gemm", ())} | {tuple(x) for x in c["attention"]} | ew


def merged_row_for_row(run_number: int, suite: str, n_rows: int) -> list[dict]:
    """The merged rows of `suite`, after asserting they are run `run_number`'s raw rows
    (validation/raw_h200_run<N>/ops.csv), `n_rows` of them, in order and unchanged."""
    with open(f"validation/raw_h200_run{run_number}/ops.csv", newline="") as f:
        raw = list(csv.DictReader(f))
    merged = [r for _, _, r in dataset.merged_rows("validation/h200_runs.csv")[1] if r["suite"] == suite]
    assert len(raw) == len(merged) == n_rows
    assert all(r["run"] == f"h200_run{run_number}" and {k: r[k] for k in raw[0]} == q for r, q in zip(merged, raw))
    return merged
