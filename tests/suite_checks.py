"""Checks shared by the calibration-suite tests: the shapes a suite measures (to prove fit and
held-out suites disjoint), and how a measured device run is listed in validation/h200_runs.csv (its
suite, its row count, every merged row tagged with its run name; the split each lands in is the caller's
check). The listing check reads the same raw file the merged table is built from, so it cannot catch a
changed measurement: the measured values of runs 1-16 are pinned by digest in
tests/test_h200_runs_manifest.py."""

import csv

from cosim.calibrate import dataset
from cosim.calibrate.suite_digest import suite_cases


# suites without a GEMM list of their own whose runs measured the default GEMM grid (section_gemm's fallback): the
# default suite, and fit4 on the H100 (run h100_run6; the H200's fit4 run measured no GEMM). suite_cases leaves their
# GEMMs out (fit4's digest is pinned without them), so until session 31 the overlap checks did not see the grid.
DEFAULT_GRID_SUITES = ("default", "fit4")


def suite_shapes(variant: str, default_grid: bool = True) -> set:
    """The shape each case measures (what dataset.op_from_row rebuilds): GEMM (M, N, K), the
    attention tuple, elementwise (kind, rows, cols) with rows as section_elementwise computes them.
    default_grid=False: without the default GEMM grid, as the held-out seed searches saw the suites."""
    c = suite_cases(variant)
    if default_grid and variant in DEFAULT_GRID_SUITES:
        from cosim.calibrate import microbench as mb
        c = {**c, "gemm": mb.gemm_cases(mb.DEFAULT_GEMM)}
    ew = set()
    for kind, cols, sz in c["elementwise"]:
        ew.add((kind, cols, sz) if kind == "rope_fused" else (kind, (sz // 2) // cols, cols))
    return {("gemm",) + tuple(x) for x in c.get("gemm", ())} | {tuple(x) for x in c["attention"]} | ew


def listed_run_rows(run_number: int, suite: str, n_rows: int) -> list[dict]:
    """The merged rows of `suite`, after asserting that they come from run `run_number` alone
    (validation/raw_h200_run<N>/ops.csv): `n_rows` of them, each with run h200_run<N>, in the raw file's order
    with its columns passed through (merged_rows adds suite and run only)."""
    with open(f"validation/raw_h200_run{run_number}/ops.csv", newline="") as f:
        raw = list(csv.DictReader(f))
    merged = [r for _, _, r in dataset.merged_rows("validation/h200_runs.csv")[1] if r["suite"] == suite]
    assert len(raw) == len(merged) == n_rows
    assert all(r["run"] == f"h200_run{run_number}" and {k: r[k] for k in raw[0]} == q for r, q in zip(merged, raw))
    return merged
