"""Session-10 family-transfer diagnosis (issue 11, round 5) on the fit rows only: why do H100 parameters
miss on H200 kernels (FA2 prefill, FA2 decode, elementwise) and H200 parameters on H100 kernels (FA2 decode,
elementwise), when the two GPUs share 132 SMs, the 1.98 GHz SM clock and the software stack (torch 2.11.0,
CUDA 13.0, cuDNN 9.19.0, triton 3.6.0, driver 580.159.04 in both validation/h100_env.json and h200_env.json)?
No held-out suite is read.

Per direction, on the target's fit rows (all rows, as the transfer table scores them, and the reliable
ones), per class: the transferred parameters' error, the target's own calibration's error, and the rows
split by whether the target's own calibration prices them with an optional term the sibling's calibration
does not have (the sibling never measured rows that identify it: its prediction falls back to the
session-3 form or an alias kind). Elementwise rows also per kind.

Transfer-law candidates (hwmodels/gpu_transfer.py switches; no parameter is fitted: each is scored on
the fit rows of both directions, all rows as the transfer table scores them):
- T-B: decode's per-CTA KV rate (attn.cta_bw_split / cta_bw_nosplit) scales with SMs x clock, not with
  the datasheet bandwidth (class: FA2 decode);
- T-C: rotate_half RoPE's streaming multiplier scales with SMs x clock (class: elementwise).
Rule (fixed before either was scored): a law is adopted when, on the fit rows, its class's p90 averaged
over the two directions drops by more than 2 points and rises in neither direction by more than 2 points;
otherwise the current law is kept (the current law is preferred within 2 points, as the model rule
prefers fewer parameters).

Run from the repository root: PYTHONPATH=. python validation/model_selection/s10_transfer.py
Writes validation/model_selection/s10_transfer.txt.

FROZEN RECORD of commit ab7b72e: T-B was adopted (on by default since) and T-C's code left the model after
this record; run it at that commit to reproduce s10_transfer.txt (running it here says so and exits).
"""
if __name__ == "__main__":  # before the imports: the rejected law's code is gone from the model
    from validation.model_selection.common import frozen_record
    frozen_record(__file__, "ab7b72e")

import dataclasses
from collections import defaultdict
from pathlib import Path

import numpy as np

from cosim.calibrate import dataset, fit
from cosim.calibrate.transfer import transferred_spec
from hwmodels import gpu
from hwmodels.spec import load_hw

OUT = Path("validation/model_selection/s10_transfer.txt")
CSV = {"h200": "validation/h200_runs.csv", "h100_sxm": "validation/h100_ops.csv"}
CLASSES = ("gemm_bf16", "gemm_fp8", "attention_prefill_fa2", "attention_decode_fa2", "elementwise")
WHOLE_BACKENDS = ("attn_cudnn.", "unfused.")  # a backend the sibling never measured is not transferred at all


def _fmt(e):
    e = np.asarray(e)
    if not len(e):
        return "      -      "
    return f"{np.median(np.abs(e)) * 100:5.1f} / {np.percentile(np.abs(e), 90) * 100:5.1f} ({np.median(e) * 100:+5.1f})"


def direction(target, sibling, lines):
    spec, own = transferred_spec(target, sibling, 132), load_hw(target)
    Pt, Po = gpu.params_for(spec), gpu.params_for(own)
    missing = sorted(k for k in set(Po.values) - set(gpu.params_for(load_hw(sibling)).values)
                     if not k.startswith(WHOLE_BACKENDS))
    Pm = dataclasses.replace(Po, values={k: v for k, v in Po.values.items() if k not in missing})
    meas = [m for m in dataset.load_ops(CSV[target]) if m.split == "fit" and m.op is not None]
    lines += [f"## {sibling} params -> {target} kernels (fit rows of {CSV[target]})", "",
              f"optional terms the {target} calibration has and the {sibling} one lacks: {', '.join(missing) or '-'}",
              "", "class | rows | transfer all rows med / p90 (signed med) | reliable rows | own calibration "
              "(reliable) | rows using a term the sibling lacks: n, transfer | the other rows: n, transfer"]
    for cls in CLASSES:
        rows = [m for m in meas if m.cls == cls]
        if not rows:
            continue
        t = np.array([m.time_s for m in rows])
        et = fit.predict(Pt, rows, spec) / t - 1
        eo = fit.predict(Po, rows, own) / t - 1
        em = fit.predict(Pm, rows, own) / t - 1
        rel = np.array([m.reliable for m in rows])
        uses = np.abs(em - eo) > 0.005
        lines.append(f"{cls} | {len(rows)} | {_fmt(et)} | {_fmt(et[rel])} | {_fmt(eo[rel])} | {int(uses.sum())}, "
                     f"{_fmt(et[uses])} | {int((~uses).sum())}, {_fmt(et[~uses])}")
        if cls == "elementwise":
            g = defaultdict(list)
            for i, m in enumerate(rows):
                g[m.row.get("kind")].append(i)
            for k, idx in sorted(g.items()):
                idx = np.array(idx)
                lines.append(f"    {k:<12} | {len(idx)} | {_fmt(et[idx])} | own {_fmt(eo[idx])} | "
                             f"uses a missing term: {int(uses[idx].sum())}")
    lines.append("")


def _p90(target, sibling, cls):
    spec = transferred_spec(target, sibling, 132)
    P = gpu.params_for(spec)
    rows = [m for m in dataset.load_ops(CSV[target]) if m.split == "fit" and m.op is not None and m.cls == cls]
    e = fit.predict(P, rows, spec) / np.array([m.time_s for m in rows]) - 1
    return float(np.median(np.abs(e)) * 100), float(np.percentile(np.abs(e), 90) * 100)


def laws(lines):
    from hwmodels import gpu_transfer as gt
    lines += ["## transfer-law candidates (fit rows, all rows; rule in the docstring)", "",
              "law | class | H100 -> H200 med / p90 | H200 -> H100 med / p90 | mean p90 | decision"]
    for label, attr, keys, cls in (("T-B per-CTA decode KV rate SM-bound", "SM_BOUND_CTA_BW", gt.CTA_BW_KEYS,
                                    "attention_decode_fa2"),
                                   ("T-C rotate_half RoPE stream SM-bound", "SM_BOUND_MULT", gt.ROPE_KEYS,
                                    "elementwise")):
        res = {}
        for on in (False, True):
            setattr(gt, attr, keys if on else ())
            res[on] = (_p90("h200", "h100_sxm", cls), _p90("h100_sxm", "h200", cls))
        setattr(gt, attr, ())
        base, cand = res[False], res[True]
        mean_b, mean_c = (base[0][1] + base[1][1]) / 2, (cand[0][1] + cand[1][1]) / 2
        adopt = mean_c < mean_b - 2.0 and all(c[1] <= b[1] + 2.0 for b, c in zip(base, cand))
        for name, r, m, d in (("A current law", base, mean_b, ""),
                              (label, cand, mean_c, "ADOPTED" if adopt else "not adopted (rule)")):
            lines.append(f"{name} | {cls} | {r[0][0]:5.1f} / {r[0][1]:5.1f} | {r[1][0]:5.1f} / {r[1][1]:5.1f} | "
                         f"{m:5.1f} | {d}")
    lines.append("")


def main():
    lines = ["# validation/model_selection/s10_transfer.py (fit rows only; diagnosis, no choice)", "",
             "figures: median / p90 of |pred/meas - 1| in %, (signed median)", ""]
    direction("h200", "h100_sxm", lines)
    direction("h100_sxm", "h200", lines)
    laws(lines)
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
