"""Session-7 model selection (issue 11) on the fit rows only (fit suite 5 merged): the library
dispatch rules of hwmodels/gpu_library.py, each fitted (cosim.calibrate.fit's own code) on the
train part of the fit split and scored on the validation part carved from it
(dataset.carve_validation, crc32 mod 5). No held-out suite (test, test2, test3, test4) is read.

Rule (fixed before any candidate was scored, as in sessions 3, 4 and 6): per group, the candidate
with the lowest validation p90 is chosen; a candidate with fewer parameters within 2 points of it
is preferred. Groups: GEMM (bf16 + fp8; tile list), elementwise (multi-pass block softmax,
small-index embedding), unfused attention (MQA copies inside matmul; their transposing K^T copy).

Run from the repository root: PYTHONPATH=. python validation/model_selection/s7_candidates.py [hw ...]
Writes validation/model_selection/s7_candidates.txt.

FROZEN RECORD of commit 70c3bc3: FA2's forward split-KV (attn.fwd_split), rejected here, left the
model in session 8; run it at that commit to reproduce s7_candidates.txt (running it here says so
and exits).
"""
if __name__ == "__main__":  # before the imports: the rejected terms' code is gone from the model
    from validation.model_selection.common import frozen_record
    frozen_record(__file__, "70c3bc3")

from pathlib import Path

from cosim.calibrate import fit
from hwmodels import gpu_params
from hwmodels.gpu import GpuParams
from validation.model_selection.common import choose, run_selection, start_values, stats

OUT = Path("validation/model_selection/s7_candidates.txt")
HEADER = "cand | params | train med/p90 | validation med/p90"


def _score(hw_name, hw, tr, va, group, terms, lines, label, default="fa2", reset=()):
    """Fit `group`'s parameters (fit.GROUPS names + the optional ones `terms` switch on) on tr
    from their starting values, score tr and va; other groups keep the committed calibration."""
    base, sms, l2 = start_values(hw_name)
    values = {k: v for k, v in base.items() if not k.startswith(reset)}
    values.update({k: v for k, v in fit.INITIAL.items() if k.startswith(reset)})
    values.update(fit.FIXED)
    if group == "unfused":
        names = list(gpu_params.UNFUSED_KEYS) + ["unfused.unaligned_mult"]
        for k in names:
            values[k] = 1.0
    else:
        names = list(fit.GROUPS[group])
    names += fit._s7_optional(group, tr, values, terms)
    if group == "attention_prefill" and terms.get("fa2_fwd_split"):
        values["attn.fwd_split"] = 1.0
    if group == "elementwise":
        names += fit._ew_optional(tr, values, terms)
    fit._fit_group(names, tr, hw, values, sms, l2, default)
    P = GpuParams(values=values, sm_count=sms, l2_bytes=l2, provenance="candidate", attention_default=default)
    t, v = stats(fit.predict(P, tr, hw), tr), stats(fit.predict(P, va, hw), va)
    lines.append(f"{label:<62} | {len(names):3d} | {t[0]:5.1f} / {t[1]:5.1f} | {v[0]:5.1f} / {v[1]:5.1f}")
    return label, len(names), t, v


def _rows(train, val, classes):
    return ([m for m in train if m.cls in classes and m.reliable], [m for m in val if m.cls in classes and m.reliable])


def run_gemm(hw_name, train, val, hw, lines):
    tr, va = _rows(train, val, fit.CLASSES["gemm"])
    lines += [f"{hw_name} GEMM fit rows: {len(tr)} train, {len(va)} validation", HEADER]
    T = {**fit.TERMS_BY_HW.get(hw_name, fit.TERMS), **fit.S7_OFF}
    res = [_score(hw_name, hw, tr, va, "gemm", {**T, "gemm_tile_set": 0}, lines, "A session-4 tile list", reset=("gemm.",)),
           _score(hw_name, hw, tr, va, "gemm", {**T, "gemm_tile_set": 1}, lines,
                  "B + cuBLAS 192 x 192 tile (nvjet profiles)", reset=("gemm.",))]
    return choose(res, lines)


def run_ew(hw_name, train, val, hw, lines):
    tr, va = _rows(train, val, fit.CLASSES["elementwise"])
    lines += [f"{hw_name} elementwise fit rows: {len(tr)} train, {len(va)} validation", HEADER]
    T = {**fit.TERMS_BY_HW.get(hw_name, fit.TERMS), **fit.S7_OFF}
    res = []
    for extra, label in (({}, "A session-6 elementwise form"),
                         ({"softmax_multipass": True}, "B + multi-pass block softmax (no smem row cache)"),
                         ({"embedding_small": True}, "C + small-index embedding (<= 16 rows, serial)"),
                         ({"softmax_multipass": True, "embedding_small": True}, "D = B + C")):
        res.append(_score(hw_name, hw, tr, va, "elementwise", {**T, **extra}, lines, label, reset=("ew.",)))
    return choose(res, lines)


def run_unfused(hw_name, train, val, hw, lines):
    tr, va = _rows(train, val, ("attention_prefill_unfused", "attention_decode_unfused"))
    if not tr:
        return None
    lines += [f"{hw_name} unfused attention fit rows: {len(tr)} train, {len(va)} validation "
              f"({sum(m.op.dims['kv_heads'] == 1 for m in tr)} train rows MQA)", HEADER]
    T = {**fit.TERMS_BY_HW.get(hw_name, fit.TERMS), **fit.S7_OFF}
    default = "cudnn" if hw_name == "h200" else "fa2"
    res = []
    for view, extra, label in ((False, {}, "A session-6 form (repeat_kv copies for MQA too)"),
                               (True, {}, "B MQA: copies inside matmul, none at batch 1"),
                               (True, {"unfused_transpose": True}, "C = B + own multiplier of the K^T transposing copy")):
        gpu_params.UNFUSED_MQA_VIEW = view
        res.append(_score(hw_name, hw, tr, va, "unfused", {**T, **extra}, lines, label, default))
    gpu_params.UNFUSED_MQA_VIEW = True
    return choose(res, lines)


def run_prefill_fa2(hw_name, train, val, hw, lines):
    tr, va = _rows(train, val, ("attention_prefill_fa2",))
    lines += [f"{hw_name} prefill (fa2) fit rows: {len(tr)} train, {len(va)} validation", HEADER]
    T = {**fit.TERMS_BY_HW.get(hw_name, fit.TERMS), **fit.S7_OFF}
    res = []
    for extra, label in (({}, "A session-6 prefill form"),
                         ({"fa2_fwd_split": True}, "B + FA2 forward split-KV (flash_api.cpp mha_fwd)")):
        res.append(_score(hw_name, hw, tr, va, "attention_prefill", {**T, **extra}, lines, label,
                          reset=("attn.eff", "attn.cta_overhead", "attn.floor", "attn.tail", "attn.fwd_split")))
    return choose(res, lines)


def _per_gpu(hw_name, train, val, hw, lines):
    run_prefill_fa2(hw_name, train, val, hw, lines)
    run_gemm(hw_name, train, val, hw, lines)
    run_ew(hw_name, train, val, hw, lines)
    run_unfused(hw_name, train, val, hw, lines)


def main():
    run_selection(OUT, _per_gpu)


if __name__ == "__main__":
    main()
