"""Kernel dispatch, H200 vs H100, on the same fit-suite cases (read-only; run from the repo root:
    PYTHONPATH=. python validation/logs/kdp_h200/compare_with_h100.py > validation/logs/kdp_h200/compare_with_h100.txt
Facts only: the share of cases whose launched kernel names (in order) are the same on both GPUs, per kind and format,
and for GEMMs whether cuBLASLt split K on one GPU and not the other. No model file reads these."""
from pathlib import Path

import pandas as pd

HERE = Path(__file__).parent


def kernels(path):
    d = pd.read_csv(path)
    return d.groupby(["kind", "fmt", "impl", "dims"], sort=False).kernel.apply(tuple)


h200, h100 = kernels(HERE / "kernel_dispatch.csv"), kernels(HERE.parent / "kdp_h100" / "kernel_dispatch.csv")
both = pd.concat({"h200": h200, "h100": h100}, axis=1, join="inner")
both["same"] = [a == b for a, b in zip(both.h200, both.h100)]
print(f"cases on both GPUs: {len(both)} (H200 {len(h200)}, H100 {len(h100)})")
print(both.groupby(level=["kind", "fmt"]).same.agg(["size", "mean"]).round(3).to_string())
g = both.xs("gemm", level="kind")
split = pd.DataFrame({"h200": [any("splitK" in k for k in t) for t in g.h200],
                      "h100": [any("splitK" in k for k in t) for t in g.h100]}, index=g.index)
print("GEMM split-K (reduce kernel launched), rows H200 / columns H100:")
print(pd.crosstab(split.h200, split.h100).to_string())
