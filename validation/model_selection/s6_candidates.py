"""Session-6 model selection (issue 11) on the fit rows only: the prefill diagonal-block term
and FlashAttention-2's split heuristic SM multiple, each fitted (cosim.calibrate.fit's own code)
on the train part of the fit split and scored on the validation part carved from it
(dataset.carve_validation, crc32 mod 5). No held-out suite (test, test2, test3, test4) is read.

Rule (fixed before any candidate was scored, as in sessions 3 and 4): per group, the candidate
with the lowest validation p90 is chosen; a candidate with fewer parameters within 2 points of
it is preferred. Also scored here: the decode transfer rule (H100 parameters -> the H200 fit
rows' validation part, with and without scaling attn.dec_bw_multi by the bandwidth ratio).

Run from the repository root: PYTHONPATH=. python validation/model_selection/s6_candidates.py [hw ...]
Writes validation/model_selection/s6_candidates.txt.

FROZEN RECORD of commit 4d5243a: the diagonal-block term (attn.diag_c), rejected here, left the
model in session 8; run it at that commit to reproduce s6_candidates.txt (running it here says so
and exits).
"""
if __name__ == "__main__":  # before the imports: the rejected terms' code is gone from the model
    from validation.model_selection.common import frozen_record
    frozen_record(__file__, "4d5243a")

from pathlib import Path

from cosim.calibrate import dataset, fit
from hwmodels import gpu_params
from hwmodels.gpu import GpuParams
from validation.model_selection.common import CSV, choose, run_selection, start_values, stats

OUT = Path("validation/model_selection/s6_candidates.txt")
PREFILL = {"fa2": ("attention_prefill_fa2",), "cudnn": ("attention_prefill_cudnn", "attention_prefill")}
DECODE_FA2 = ("attention_decode_fa2",)


def _fit_score(hw_name, hw, train, val, names, reset, default, lines, label, fixed=None):
    base, sms, l2 = start_values(hw_name)
    values = dict(base)
    for k in reset:
        values.pop(k, None)
    values.update(fixed or {})
    for k in names:
        values[k] = 1.0 if k.startswith("unfused.") else fit.INITIAL.get("attn." + k.split(".", 1)[1], 0.3)
    fit._fit_group(names, train, hw, values, sms, l2, default)
    P = GpuParams(values=values, sm_count=sms, l2_bytes=l2, provenance="candidate", attention_default=default)
    t, v = stats(fit.predict(P, train, hw), train), stats(fit.predict(P, val, hw), val)
    lines.append(f"{label:<62} | {len(names):3d} | {t[0]:5.1f} / {t[1]:5.1f} | {v[0]:5.1f} / {v[1]:5.1f}")
    return label, len(names), t, v


def run_prefill(hw_name, train, val, hw, lines, backend):
    tr = [m for m in train if m.cls in PREFILL[backend] and m.reliable]
    va = [m for m in val if m.cls in PREFILL[backend] and m.reliable]
    if not tr:
        return None
    pre = "attn." if backend == "fa2" else f"attn_{backend}."
    lines += [f"{hw_name} prefill ({backend}) fit rows: {len(tr)} train, {len(va)} validation",
              "cand | params | train med/p90 | validation med/p90"]
    keys = [pre + k for k in ("eff", "cta_overhead", "floor", "tail")]
    opt = [pre + "diag_c", pre + "soft_c"]
    res = []
    for cap, extra, label in ((False, [], "A session-4 prefill form"),
                              (False, [pre + "diag_c"], "B = A + masked diagonal block cost diag_c"),
                              (True, [], "C = A + wave cap (ceil(CTAs / SMs) x longest CTA)"),
                              (True, [pre + "soft_c"], "D = C + head-dim-independent softmax cost soft_c"),
                              (True, [pre + "soft_c", pre + "diag_c"], "E = D + diag_c")):
        gpu_params.ATTN_WAVE_CAP = cap
        res.append(_fit_score(hw_name, hw, tr, va, keys + extra, keys + opt, backend, lines, label))
    gpu_params.ATTN_WAVE_CAP = True
    return choose(res, lines)


def run_decode_fa2(hw_name, train, val, hw, lines):
    tr = [m for m in train if m.cls in DECODE_FA2 and m.reliable]
    va = [m for m in val if m.cls in DECODE_FA2 and m.reliable]
    lines += [f"{hw_name} decode (fa2) fit rows: {len(tr)} train, {len(va)} validation",
              "cand | params | train med/p90 | validation med/p90"]
    keys = ["attn." + k for k in ("dec_floor", "dec_bw", "cta_bw_split", "cta_bw_nosplit", "combine", "dec_bw_multi")]
    res = []
    for x, label in ((1, "A split heuristic over 1 x SMs (session 4)"),
                     (gpu_params.FA2_SPLIT_SMS_X, "B split heuristic over 2 x SMs (flash_api.cpp)")):
        res.append(_fit_score(hw_name, hw, tr, va, keys, keys, "fa2", lines, label, {"attn.split_sms_x": x}))
    return choose(res, lines)


def run_unfused(hw_name, train, val, hw, lines):
    cls = ("attention_prefill_unfused", "attention_decode_unfused")
    tr = [m for m in train if m.cls in cls and m.reliable]
    va = [m for m in val if m.cls in cls and m.reliable]
    if not tr:
        return None
    lines += [f"{hw_name} unfused attention fit rows: {len(tr)} train, {len(va)} validation",
              "cand | params | train med/p90 | validation med/p90"]
    keys = ["unfused.gather_mult", "unfused.score_mult"]
    default = "cudnn" if hw_name == "h200" else "fa2"
    res = [_fit_score(hw_name, hw, tr, va, keys, keys + ["unfused.unaligned_mult"], default, lines,
                      "A session-4 unfused form"),
           _fit_score(hw_name, hw, tr, va, keys + ["unfused.unaligned_mult"], keys, default, lines,
                      "B + unaligned KV rows multiplier (kv_len % 8 != 0)")]
    return choose(res, lines)


def run_transfer(lines):
    """The decode transfer rule: FA2 decode rows of each GPU's fit-split validation part, priced
    by the sibling's calibration transferred (hwmodels.gpu_transfer), with attn.dec_bw_multi
    scaled by the datasheet bandwidth (A) or by SMs x clock (B, SM-bound)."""
    import numpy as np
    from cosim.calibrate.transfer import transferred_spec
    from hwmodels import gpu, gpu_transfer
    keep = gpu_transfer.SM_BOUND_BW
    for target, sib in (("h200", "h100_sxm"), ("h100_sxm", "h200")):
        meas = [m for m in dataset.load_ops(CSV[target]) if m.split == "fit" and m.op is not None]
        va = [m for m in dataset.carve_validation(meas)[1] if m.cls == "attention_decode_fa2"]
        spec = transferred_spec(target, sib, 132)
        lines.append(f"transfer {sib} -> {target}, FA2 decode validation rows: {len(va)}")
        res = []
        for rule, label in (((), "A dec_bw_multi scaled by the datasheet bandwidth (session 4)"),
                            (keep, "B dec_bw_multi SM-bound (SMs x clock)")):
            gpu_transfer.SM_BOUND_BW = rule
            e = np.array([abs(gpu.estimate(m.op, spec).details["isolated_s"] / m.time_s - 1) * 100 for m in va])
            res.append((label, 0, (0, 0), (float(np.median(e)), float(np.percentile(e, 90)))))
            lines.append(f"{label:<62} | validation {res[-1][3][0]:5.1f} / {res[-1][3][1]:5.1f}")
        gpu_transfer.SM_BOUND_BW = keep
        choose(res, lines)


def _per_gpu(hw_name, train, val, hw, lines):
    for backend in ("fa2", "cudnn"):
        run_prefill(hw_name, train, val, hw, lines, backend)
    run_decode_fa2(hw_name, train, val, hw, lines)
    run_unfused(hw_name, train, val, hw, lines)


def _transfer_when_both(hws, lines):
    if len(hws) == 2:
        run_transfer(lines)


def main():
    run_selection(OUT, _per_gpu, after=_transfer_when_both)


if __name__ == "__main__":
    main()
