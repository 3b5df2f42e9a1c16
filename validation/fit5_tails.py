"""Fit suite 5 (validation/raw_h200_run8/, measured in session 6) against the CURRENT H200 model,
grouped by the held-out-4 tail each group was drawn for. Session 6 scored it before fitting (the
table in docs/gpu-validation.md, "Left after session 6"); since session 7 fit5 is merged and
fitted, so these are in-sample figures of the session-7 model. validation/heldout_tables.py
groups heldout5's tail classes with `_group` and `table` too.

    PYTHONPATH=. python validation/fit5_tails.py    # writes validation/fit5_tails.txt
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from cosim import load_hw
from cosim.calibrate import dataset
from hwmodels import gpu

RAW = Path(__file__).parent / "raw_h200_run8" / "ops.csv"


def _group(m) -> str | None:
    op, cls = m.op, m.cls
    if op.kind == "gemm":
        small = op.dims["m"] <= 64
        return f"{cls} {'M 1-64, K 16-32 K' if small else 'M just above a tile multiple'}"
    if op.kind == "attention":
        h, kvh = op.dims["heads"], op.dims["kv_heads"]
        if op.dims["q_len"] > 1:
            return f"{cls} causal 200-500"
        lay = "MQA (1 KV head)" if kvh == 1 else "GQA group 2"
        align = "ctx % 8 == 0" if op.dims["kv_len"] % 8 == 0 else "ctx % 8 != 0"
        return f"{cls} {lay}" + (f", {align}" if cls.endswith("unfused") else "")
    return {"embedding": "embedding 1-32 rows", "softmax": "softmax 10-16 K wide"}.get(op.kind)


def rows(hw_name="h200"):
    hw = load_hw(hw_name)
    out = {}
    for m in dataset.load_ops(RAW):
        if m.op is None or m.split != "fit":  # fast-accum fp8 is 'other'
            continue
        c = gpu.estimate(m.op, hw)
        pred = c.details.get("isolated_s", c.latency_s)
        out.setdefault(_group(m), []).append(pred / m.time_s - 1.0)
    return out


def table(groups, title="group (fit5, H200 run 8)") -> str:
    lines = [f"| {title} | n | median signed err % | median |err| % | p90 |err| % | min..max % |",
             "|---|---:|---:|---:|---:|---:|"]
    for g in sorted(groups):
        e = np.array(groups[g]) * 100
        a = np.abs(e)
        lines.append(f"| {g} | {len(e)} | {np.median(e):+.1f} | {np.median(a):.1f} | {np.percentile(a, 90):.1f} | "
                     f"{e.min():+.0f}..{e.max():+.0f} |")
    return "\n".join(lines) + "\n(signed error: model / measured - 1; negative = the model is too fast)\n"


if __name__ == "__main__":
    text = table(rows())
    (Path(__file__).parent / "fit5_tails.txt").write_text(text)
    print(text)
