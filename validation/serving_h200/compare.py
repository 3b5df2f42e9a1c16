"""Predicted vs measured serving percentiles for the H200 continuous-batching runs.

For each measured QPS run (results/requests_qps*.csv and the later results_qps4/: the very
arrivals and lengths that ran), cosim.serve replays the trace with the measured engine's
settings (continuous batching, 32 sequence slots) and these step-time models:

- roofline: the H200 datasheet spec (configs/hw/h200.yaml) at level roofline;
- analytical (h200 calib.): the plain trace at level analytical (the H200 calibration);
- analytical + engine_gemm + host: the kernels the engine launches (fused QKV and gate-up,
  plain RoPE/norms), its padded CUDA-graph decode, eager prefill at the calibration's host
  time per kernel launch, one prompt per prefill step (calibration only, nothing fitted);
- the same + step overheads: per-decode-step, per-prefill and first-shape host time fitted
  as median residuals on a FIT SPLIT only: QPS 2 is predicted with constants fitted on the
  QPS 8 run and vice versa; the QPS 4 run (measured later, fresh process) with constants
  fitted on both;
- isolated-steps fit: a StepCostModel fitted to the step times measured in isolation before
  the runs (results/meta.json "isolated");
- same-run steps: the same form fitted to the run's own logged steps (decode: a + b*batch
  + c*batch*padded_len; prefill: a + b*tokens). Not a prediction: it checks the engine
  (queueing, batching, admission) when step times are right.

    python validation/serving_h200/compare.py    # writes results/comparison.{md,json}
"""

from __future__ import annotations

import dataclasses
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
from cosim.serving.config import HostOverhead  # noqa: E402
from cosim.serving.host import host_for  # noqa: E402
from cosim.serving.steptime import DeviceStepCost, StepBatch, StepCost, Workload  # noqa: E402

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


BATCH_BUCKETS = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64)  # measure_serving.py's CUDA-graph batch sizes
PROFILE = "engine_gemm"  # what measure_serving.py runs: fused QKV and gate-up GEMMs, unfused RoPE and norms


class EnginePadding:
    """The measured engine's decode graph runs a padded batch: the next batch bucket, every
    sequence attending over the padded length (multiple of LEN_BUCKET, masked). Prefills run
    as they are. Wraps any StepCostModel."""

    def __init__(self, inner):
        self.inner = inner

    @property
    def notes(self):
        return tuple(self.inner.notes) + ("decode priced at the engine's padded graph shape",)

    def step_cost(self, batch):
        if batch.prefill or not batch.decode_kv:
            return self.inner.step_cost(batch)
        B = len(batch.decode_kv)
        Bb = min(next((b for b in BATCH_BUCKETS if b >= B), B), SLOTS)
        Lb = LEN_BUCKET * math.ceil(max(batch.decode_kv) / LEN_BUCKET)
        return self.inner.step_cost(StepBatch((), (Lb,) * Bb, batch.tokens_per_decode))


def engine_model(h200, host):
    w = Workload(cosim.load_model("llama3_8b"), profile=PROFILE)
    return EnginePadding(host_for(DeviceStepCost(w, h200, "analytical", 0.02), host, h200, "analytical"))


ISOLATED_LENGTHS = (128, 512, 1024)  # prefill lengths measure_serving.py ran before the QPS runs


def warm_before(q) -> tuple:
    """Prompt lengths the measuring process had prefilled before run q started (runs go in
    QPS order after the isolated steps): their kernels were already chosen."""
    seen = set(ISOLATED_LENGTHS)
    for earlier in QPS[:QPS.index(q)]:
        s = pd.read_csv(HERE / f"steps_qps{earlier}.csv")
        seen |= set(int(x) for x in s[s.kind == "prefill"].tokens_or_padded_len)
    return tuple(sorted(seen))


def step_residuals(h200, steps: pd.DataFrame, warm) -> tuple:
    """Residuals (measured - modelled) of one run's logged steps: decode steps, prefills of
    lengths run before (`warm` and earlier in the run), prefills of new lengths."""
    base = engine_model(h200, HostOverhead(source="fit"))
    steps = steps.sort_values("start_s")
    s = steps[steps["duration_s"] < 0.15]  # graph captures (~0.2 s) are one-offs
    d, p = s[s.kind == "decode"], s[s.kind == "prefill"]
    # decode rows log (batch, padded length): price that padded graph directly
    dec = [base.step_cost(StepBatch((), (int(L),) * int(B))).latency_s for B, L in zip(d.batch, d.tokens_or_padded_len)]
    pre = np.array([base.step_cost(StepBatch(((int(L), 0, True),), ())).latency_s for L in p.tokens_or_padded_len])
    seen, new = set(warm), []
    for L in p.tokens_or_padded_len:
        new.append(int(L) not in seen)
        seen.add(int(L))
    new, res = np.array(new), p.duration_s.to_numpy() - pre
    return d.duration_s.to_numpy() - np.array(dec), res[~new], res[new]


def fit_step_overheads(h200, splits, source) -> HostOverhead:
    """Host time the model lacks, from the fit split only: medians of the pooled residuals of
    the given runs [(steps, warm lengths)] — per decode step, per prefill of a length run
    before, and the extra of a new length (eager PyTorch's first-shape cost)."""
    parts = [step_residuals(h200, st, warm) for st, warm in splits]
    dec, warm, new = (np.concatenate([p[i] for p in parts]) for i in range(3))
    w = float(np.median(warm))
    return HostOverhead(prefill_step_s=w, decode_step_s=float(np.median(dec)), new_shape_s=float(np.median(new)) - w,
                        source=source)


def predictions(q, trace_csv, own_steps, fit_steps, fit_q):
    h200 = cosim.load_hw("h200")
    common = dict(trace=str(trace_csv), scheduler="continuous", max_num_seqs=SLOTS, bucket=0.02)
    engine = dict(common, max_prefill_seqs=1)  # the engine prefills one admitted prompt per step
    fit = fit_step_overheads(h200, [(fit_steps, warm_before(fit_q))], f"median residuals of the QPS {fit_q} run")
    fit = dataclasses.replace(fit, warm_lengths=warm_before(q))
    out = {"roofline (h200)": serve("llama3_8b", h200, level="roofline", **common),
           "analytical (h200 calib.)": serve("llama3_8b", h200, level="analytical", **common),
           f"analytical + {PROFILE} + host": serve("llama3_8b", h200, step_model=engine_model(h200, HostOverhead(
               source="calibration only")), **engine),
           f"same + step overheads fit on QPS {fit_q} (held out)": serve(
               "llama3_8b", h200, step_model=engine_model(h200, fit), **engine)}
    out["isolated-steps fit"] = serve("llama3_8b", h200, step_model=MeasuredStepCost(isolated_steps()), **common)
    out["same-run steps (engine check)"] = serve("llama3_8b", h200, step_model=MeasuredStepCost(own_steps), **common)
    return out, fit


HELD_OUT = Path(__file__).resolve().parent / "results_qps4"  # a later, separate measurement (fresh process)


def held_out_qps4():
    """QPS 4 measured in a new process after this model was built: every host overhead is fitted
    on the QPS 2 and 8 runs (pooled), nothing on this run."""
    h200 = cosim.load_hw("h200")
    meas = pd.read_csv(HELD_OUT / "requests_qps4.csv")
    trace = HELD_OUT / "trace_qps4.csv"
    meas[["arrival_s", "prompt_len", "output_len"]].to_csv(trace, index=False)
    fit = fit_step_overheads(h200, [(pd.read_csv(HERE / f"steps_qps{q}.csv"), warm_before(q)) for q in QPS],
                             "median residuals of the QPS 2 and 8 runs")
    fit = dataclasses.replace(fit, warm_lengths=ISOLATED_LENGTHS)  # a fresh process: only the isolated steps ran
    common = dict(trace=str(trace), scheduler="continuous", max_num_seqs=SLOTS, bucket=0.02)
    preds = {"analytical (h200 calib.)": serve("llama3_8b", h200, level="analytical", **common),
             f"analytical + {PROFILE} + host, overheads fit on QPS 2+8": serve(
                 "llama3_8b", h200, step_model=engine_model(h200, fit), max_prefill_seqs=1, **common)}
    rows = []
    for m in ("ttft", "tpot"):
        for p in (50, 90, 99):
            v = float(np.percentile(meas[f"{m}_s"], p))
            row = {"qps": 4, "metric": f"{m.upper()} p{p}", "measured_ms": 1e3 * v}
            for name, res in preds.items():
                u = float(np.percentile(res.requests[f"{m}_s"], p))
                row[f"{name} ms"], row[f"{name} err%"] = 1e3 * u, 100 * (u / v - 1)
            rows.append(row)
    return pd.DataFrame(rows), fit


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
        fit_q = QPS[1 - i]  # two-fold: each run is predicted with overheads fitted on the other
        preds, fit = predictions(q, trace, own, pd.read_csv(HERE / f"steps_qps{fit_q}.csv"), fit_q)
        js[q] = {"measured": {m: pct(meas[f"{m}_s"]) for m in ("ttft", "tpot")},
                 "fitted_overheads": {"fit_on_qps": fit_q, "prefill_step_s": fit.prefill_step_s,
                                      "decode_step_s": fit.decode_step_s, "new_shape_s": fit.new_shape_s}}
        for name, res in preds.items():
            js[q][name] = {m: pct(res.requests[f"{m}_s"]) for m in ("ttft", "tpot")}
        for m in ("ttft", "tpot"):
            for p in ("p50", "p90", "p99"):
                meas_v = js[q]["measured"][m][p]
                row = {"qps": q, "metric": f"{m.upper()} {p}", "measured_ms": 1e3 * meas_v}
                for j, name in enumerate(preds):
                    v = js[q][name][m][p]
                    label = name if not name.startswith("same + step") else "same + step overheads fit on the other QPS"
                    row[f"{label} ms"] = 1e3 * v
                    row[f"{label} err%"] = 100 * (v / meas_v - 1)
                rows.append(row)
    df = pd.DataFrame(rows)
    h4, fit4 = held_out_qps4()
    js["4 (held-out run)"] = {"rows": h4.to_dict("records"), "fitted_overheads": {
        "fit_on_qps": list(QPS), "prefill_step_s": fit4.prefill_step_s, "decode_step_s": fit4.decode_step_s,
        "new_shape_s": fit4.new_shape_s}}
    (HERE / "comparison.json").write_text(json.dumps(js, indent=1))
    md = markdown(df) + "\n\nHeld-out run (QPS 4, measured later in a fresh process; overheads fitted on QPS 2 + 8):\n\n" \
        + markdown(h4)
    (HERE / "comparison.md").write_text(md + "\n")
    print(md)


if __name__ == "__main__":
    main()
