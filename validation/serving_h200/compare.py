"""Predicted vs measured serving percentiles for the H200 continuous-batching run.

For each measured QPS run (results/requests_qps*.csv: the very arrivals and lengths that
ran), cosim.serve replays the trace with the measured engine's settings (continuous
batching, 32 sequence slots) and three step-time models:

- roofline: the H200 datasheet spec (cosim/configs/hw/h200.yaml) at level roofline;
- analytical: the analytical GPU model with the H100-SXM calibration (fitted on real
  PyTorch kernels) on an H100 spec whose HBM is overridden to the H200's 4.8 TB/s and
  141 GB (the H200 is the H100 die with HBM3e; no H200 calibration exists);
- isolated-steps: a StepCostModel fitted to the step times measured in isolation before
  the runs (results/meta.json "isolated": prefill at 128/512/1024 tokens, decode at batch
  1/8/32 x context 256/1024): a calibration independent of both runs;
- same-run steps: the same form fitted to the run's own logged steps (decode: a + b*batch
  + c*batch*padded_len; prefill: a + b*tokens). Not a prediction: it checks the engine
  (queueing, batching, admission) when step times are right.

    python validation/serving_h200/compare.py    # writes results/comparison.{md,json}
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import cosim  # noqa: E402
from cosim.serving import serve  # noqa: E402
from cosim.serving.steptime import StepCost  # noqa: E402

HERE = Path(__file__).resolve().parent / "results"
QPS = (2, 8)
SLOTS = 32
LEN_BUCKET = 256  # the measured engine pads decode attention to multiples of this


class MeasuredStepCost:
    """Step costs from least-squares fits of logged step durations (plugs in through
    the StepCostModel protocol, like a multi-device system would)."""
    notes = ("step times fitted to measured step durations",)

    def __init__(self, steps: pd.DataFrame):
        s = steps[steps["duration_s"] < 0.15]  # graph captures (~0.2 s) are one-offs
        d, p = s[s.kind == "decode"], s[s.kind == "prefill"]
        X = np.c_[np.ones(len(d)), d.batch, d.batch * d.tokens_or_padded_len]
        self.dec = np.linalg.lstsq(X, d.duration_s, rcond=None)[0]
        self.pre = np.linalg.lstsq(np.c_[np.ones(len(p)), p.tokens_or_padded_len], p.duration_s, rcond=None)[0]

    def step_cost(self, batch) -> StepCost:
        t = sum(self.pre[0] + self.pre[1] * c for c, _, _ in batch.prefill)
        if batch.decode_kv:
            B = len(batch.decode_kv)
            Lb = LEN_BUCKET * math.ceil(max(batch.decode_kv) / LEN_BUCKET)
            t += self.dec[0] + self.dec[1] * B + self.dec[2] * B * Lb
        return StepCost(float(t), 0.0)


def isolated_steps() -> pd.DataFrame:
    iso = json.loads((HERE / "meta.json").read_text())["isolated"]
    return pd.DataFrame({"kind": [r["kind"] for r in iso], "duration_s": [r["time_s"] for r in iso],
                         "batch": [r["batch"] for r in iso],
                         "tokens_or_padded_len": [r["context"] for r in iso]})


def predictions(q, trace_csv, own_steps):
    h200 = cosim.load_hw("h200")
    h100_hbm3e = cosim.load_hw("h100_sxm", overrides={"memory.hbm.bandwidth": "4.8 TB/s",
                                                       "memory.hbm.capacity": "141 GB"})
    common = dict(trace=str(trace_csv), scheduler="continuous", max_num_seqs=SLOTS, bucket=0.02)
    out = {"roofline (h200)": serve("llama3_8b", h200, level="roofline", **common),
           "analytical (H100 calib., H200 HBM)": serve("llama3_8b", h100_hbm3e, level="analytical", **common)}
    out["isolated-steps fit"] = serve("llama3_8b", h200, step_model=MeasuredStepCost(isolated_steps()), **common)
    out["same-run steps (engine check)"] = serve("llama3_8b", h200, step_model=MeasuredStepCost(own_steps), **common)
    return out


def markdown(df) -> str:
    cols = list(df.columns)
    fmt = lambda v: f"{v:.1f}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in df.itertuples(index=False)]
    return "\n".join(lines)


def pct(v):
    return {f"p{p}": float(np.percentile(v, p)) for p in (50, 90, 99)}


def main():
    rows, js = [], {}
    for i, q in enumerate(QPS):
        meas = pd.read_csv(HERE / f"requests_qps{q}.csv")
        trace = HERE / f"trace_qps{q}.csv"
        meas[["arrival_s", "prompt_len", "output_len"]].to_csv(trace, index=False)
        own = pd.read_csv(HERE / f"steps_qps{q}.csv")
        preds = predictions(q, trace, own)
        js[q] = {"measured": {m: pct(meas[f"{m}_s"]) for m in ("ttft", "tpot")}}
        for name, res in preds.items():
            js[q][name] = {m: pct(res.requests[f"{m}_s"]) for m in ("ttft", "tpot")}
        for m in ("ttft", "tpot"):
            for p in ("p50", "p90", "p99"):
                meas_v = js[q]["measured"][m][p]
                row = {"qps": q, "metric": f"{m.upper()} {p}", "measured_ms": 1e3 * meas_v}
                for name in preds:
                    v = js[q][name][m][p]
                    row[f"{name} ms"] = 1e3 * v
                    row[f"{name} err%"] = 100 * (v / meas_v - 1)
                rows.append(row)
    df = pd.DataFrame(rows)
    (HERE / "comparison.json").write_text(json.dumps(js, indent=1))
    md = markdown(df)
    (HERE / "comparison.md").write_text(md + "\n")
    print(md)


if __name__ == "__main__":
    main()
