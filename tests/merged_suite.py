"""One measured device run merged into validation/h200_ops.csv: the raw rows and the merged
rows of its suite, checked to be the same rows, once each, unchanged (fit and held-out
suites alike; the split each lands in is the caller's check)."""

import csv


def merged_row_for_row(run_number: int, suite: str, n_rows: int) -> list[dict]:
    """The merged rows of `suite`, after asserting they are run `run_number`'s raw rows
    (validation/raw_h200_run<N>/ops.csv), `n_rows` of them, in order and unchanged."""
    with open(f"validation/raw_h200_run{run_number}/ops.csv", newline="") as f:
        raw = list(csv.DictReader(f))
    with open("validation/h200_ops.csv", newline="") as f:
        merged = [r for r in csv.DictReader(f) if r["suite"] == suite]
    assert len(raw) == len(merged) == n_rows
    assert all(r["run"] == f"h200_run{run_number}" and {k: r[k] for k in raw[0]} == q for r, q in zip(merged, raw))
    return merged
