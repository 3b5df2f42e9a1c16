"""Unfused (Hugging Face eager) attention: model selection on the fit split only.

The measured time is CUDA events around the whole eager sequence (repeat_kv, QK^T, scale,
mask, fp32 softmax, cast, PV). Candidates, fitted on the train part of the fit rows and scored
on the validation part carved from them (dataset.carve_validation); the held-out suite is
not read:
  A  sum of each kernel's isolated time (gather and score passes x fitted multipliers) [current]
  B  A, but kernels after the first are issued while their predecessor runs: each hides the
     calibrated launch latency (launch.overlap, fitted on CUDA-graph decode), floored at the
     in-stream gap (graph.gap)
  C  B, and the host cannot issue faster than one op per `host` seconds (eager PyTorch):
     t = max(B, ops x host), host fitted
  D  B, with the gather / score multipliers on each kernel's streaming term only (a strided
     gather is slow per byte; its launch floor is the plain kernel's floor)
Run: PYTHONPATH=. python validation/model_selection/unfused_candidates.py [ops.csv] [hw]
"""
import math
import sys

import numpy as np

from cosim.calibrate import dataset
from cosim.calibrate.fit import lm_fit
from hwmodels import gpu
from hwmodels.spec import load_hw

OPS = sys.argv[1] if len(sys.argv) > 1 else "validation/h200_runs.csv"
HW = sys.argv[2] if len(sys.argv) > 2 else "h200"


def parts_of(m, hw, P):
    """(isolated s, group, ew terms or None) per kernel: group 0 plain, 1 gather, 2 score pass."""
    out = []
    for part, _ in gpu.unfused_scaled(m.op, P):
        iso = gpu.estimate(part, hw, params=P).details["isolated_s"]
        terms = None
        if part.kind != "gemm":
            hbm = sum(t.nbytes for t in part.inputs) + sum(t.nbytes for t in part.outputs)
            _, fl, st, fx, p = gpu.ew_terms(P, part.kind, hbm, 1, float(part.dims.get("cols", 0)),
                                            float(part.dims.get("rows", 0)))
            terms = (float(fl), float(st), float(fx), p)
        out.append((iso, 1 if part.name in gpu._GATHER else 2 if part.name in gpu._SCORE else 0, terms))
    return out


def predict(x, rows, cand, P):
    g, s = math.exp(x[0]), math.exp(x[1])
    host = math.exp(x[2]) if cand == 2 else 0.0
    ov, gap = P["launch.overlap"], P["graph.gap"]
    out = []
    for parts in rows:
        t = 0.0
        for i, (iso, grp, terms) in enumerate(parts):
            f = g if grp == 1 else s if grp == 2 else 1.0
            if cand == 3 and terms is not None:
                fl, st, fx, p = terms
                tt = (fl ** p + (st * f + fx) ** p) ** (1.0 / p)
            else:
                tt = iso * f
            if cand >= 1 and i > 0:
                tt = max(tt - ov, gap)
            t += tt
        out.append(max(t, host * len(parts)))
    return np.array(out)


def main():
    hw = load_hw(HW)
    P = gpu.params_for(hw)
    rows = [m for m in dataset.load_ops(OPS) if m.split == "fit" and m.reliable and m.cls.endswith("_unfused")]
    train, val = dataset.carve_validation(rows)
    ptr, pva = [parts_of(m, hw, P) for m in train], [parts_of(m, hw, P) for m in val]
    ttr, tva = np.array([m.time_s for m in train]), np.array([m.time_s for m in val])
    print(f"{HW} unfused fit rows: {len(train)} train, {len(val)} validation (held-out suite not read)")
    labels = {0: "A sum of isolated kernels [current]", 1: "B + launch latency hidden after the first kernel",
              2: "C = B + host issue rate bound", 3: "D = B + multipliers on the streaming term only"}
    scores = {}
    for cand in range(4):
        k = 3 if cand == 2 else 2
        x0 = [math.log(P.values.get("unfused.gather_mult", 1.0)), math.log(P.values.get("unfused.score_mult", 1.0)),
              math.log(P["eager.cpu_per_kernel"])][:k]
        x, _ = lm_fit(lambda x: np.log(predict(x, ptr, cand, P) / ttr), x0, iters=100)
        etr = np.abs(predict(x, ptr, cand, P) / ttr - 1) * 100
        eva = np.abs(predict(x, pva, cand, P) / tva - 1) * 100
        scores[cand] = (np.percentile(eva, 90), k)
        print(f"{labels[cand]:50s} | {k} | train {np.median(etr):5.1f} / {np.percentile(etr, 90):5.1f} | "
              f"validation {np.median(eva):5.1f} / {np.percentile(eva, 90):5.1f} | "
              f"fitted {', '.join(f'{math.exp(v):.3g}' for v in x)}")
    best = min(scores, key=lambda c: scores[c][0])  # same rule as ew_candidates.py
    pick = min((c for c in scores if scores[c][0] <= scores[best][0] + 2.0), key=lambda c: scores[c][1])
    print(f"chosen: {labels[pick]}")


if __name__ == "__main__":
    main()
