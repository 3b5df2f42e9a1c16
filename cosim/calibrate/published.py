"""Published attention forward times as a held-out set for a GPU we cannot measure.

`validation/published/fa3_paper_h100_attention.csv` holds the H100 SXM5 forward-speed bar
labels of the FlashAttention-3 paper (TFLOP/s per implementation, head dim, mask, sequence
length; batch x seqlen = 16k tokens, heads = 2048 / head dim); the time is derived from
the paper's FLOP convention, 4·b·s²·h·d, halved when causal. Each row becomes an attention
op on the named backend, priced by `level="analytical"` on a hardware spec, and scored
like a microbenchmark row (the model's isolated time against the measured time).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from cosim.calibrate.dataset import op_from_row
from workloads.io import InputError

__all__ = ["load_published", "score_published", "summary"]

_IMPL = {"cudnn": "sdpa:CUDNN_ATTENTION", "fa2": "sdpa:FLASH_ATTENTION"}


def load_published(path) -> list[dict]:
    """Rows with their op (the backend the row names) and measured time in seconds."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: published attention times: no such file")
    out = []
    with open(p, newline="") as f:
        for i, r in enumerate(csv.DictReader(f), start=2):
            if r["impl"] not in _IMPL:
                raise InputError(f"{p}: line {i}: impl: got {r['impl']!r}; expected one of {', '.join(_IMPL)}")
            b, h, s, d = (int(r[k]) for k in ("batch", "heads", "seqlen", "head_dim"))
            causal = r["causal"] == "true"
            flops = 4.0 * b * s * s * h * d / (2 if causal else 1)
            t = flops / (float(r["tflops"]) * 1e12)
            dims = {"batch": b, "heads": h, "kv_heads": h, "q_len": s, "kv_len": s, "head_dim": d, "causal": causal}
            op = op_from_row({"kind": "attention", "fmt": "bf16", "dims": json.dumps(dims),
                              "impl": _IMPL[r["impl"]]})
            out.append({**r, "op": op, "measured_s": t, "causal": causal, "head_dim": d})
    return out


def score_published(rows: list[dict], hw) -> list[dict]:
    """Each row with the analytical isolated time and the error, |pred / measured - 1| (%)."""
    from hwmodels import gpu
    out = []
    for r in rows:
        c = gpu.estimate(r["op"], hw)
        pred = c.details.get("isolated_s", c.latency_s)
        out.append({**r, "analytical_s": pred, "err_pct": abs(pred / r["measured_s"] - 1) * 100,
                    "provenance": c.provenance})
    return out


def summary(scored: list[dict]) -> dict:
    from cosim.validate import summarize
    return summarize([r["err_pct"] for r in scored])
