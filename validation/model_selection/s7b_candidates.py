"""Session-7 second-round model selection (issue 11) on the fit rows only (fit suite 6 merged):
candidate terms for the classes heldout5 missed, each fitted (cosim.calibrate.fit's own code) on the
train part of the fit split and scored on the validation part carved from it (dataset.carve_validation,
crc32 mod 5). No held-out suite (test .. test5) is read; heldout5's per-row errors were read only to
decide which classes fit suite 6 should measure.

Rule (fixed before any candidate was scored, as in sessions 3, 4, 6 and 7): per group, the candidate
with the lowest validation p90; a candidate with fewer parameters within 2 points of it is preferred.
Groups: cuDNN decode (pinned + default-backend rows; Lean Attention, per-wave CTA time), FA2 decode
(per-wave CTA time), unfused attention (own score-softmax multiplier), elementwise (on-chip re-reads
of small multi-pass softmax rows).

Run from the repository root: PYTHONPATH=. python validation/model_selection/s7b_candidates.py [hw ...]
Writes validation/model_selection/s7b_candidates.txt.

FROZEN RECORD of commit 8757251: cuDNN Lean Attention (attn_cudnn.lean) and the softmax re-read
threshold (ew.softmax.reread_bytes), rejected here, left the model in session 8; run it at that
commit to reproduce s7b_candidates.txt (running it here says so and exits).
"""
if __name__ == "__main__":  # before the imports: the rejected terms' code is gone from the model
    from validation.model_selection.common import frozen_record
    frozen_record(__file__, "8757251")

from pathlib import Path

from cosim.calibrate import fit
from hwmodels import gpu_params
from validation.model_selection.common import choose, run_selection, score_decode as _score_decode
from validation.model_selection.s7_candidates import HEADER, _rows
from validation.model_selection.s7_candidates import _score as _score_fa2

OUT = Path("validation/model_selection/s7b_candidates.txt")


def _terms(hw_name, **on):
    """The session-7 (first-round) terms of this GPU with the second-round candidates `on`."""
    return {**fit.TERMS_BY_HW.get(hw_name, fit.TERMS), **fit.S7B_OFF, **on}


def run_cudnn_decode(hw_name, train, val, hw, lines):
    tr, va = _rows(train, val, ("attention_decode_cudnn", "attention_decode"))
    if not tr:
        return None
    lines += [f"{hw_name} cuDNN decode fit rows (pinned + default backend): {len(tr)} train, {len(va)} validation",
              HEADER]
    res = []
    for on, label in (({}, "A session-7 form (FA2's split heuristic)"),
                      ({"cudnn_lean": True}, "B Lean Attention (stream-K, lean_reduction_kernel)"),
                      ({"dec_cta_lat": ("cudnn",)}, "C + per-wave CTA time"),
                      ({"cudnn_lean": True, "dec_cta_lat": ("cudnn",)}, "D = B + C")):
        res.append(_score_decode(hw_name, hw, tr, va, "cudnn", _terms(hw_name, **on), lines, label))
    return choose(res, lines)


def run_fa2_decode(hw_name, train, val, hw, lines):
    tr, va = _rows(train, val, ("attention_decode_fa2",))
    lines += [f"{hw_name} FA2 decode fit rows: {len(tr)} train, {len(va)} validation", HEADER]
    res = [_score_decode(hw_name, hw, tr, va, "fa2", _terms(hw_name, **on), lines, label)
           for on, label in (({}, "A session-7 form"), ({"dec_cta_lat": ("fa2",)}, "B + per-wave CTA time"))]
    return choose(res, lines)


def run_unfused(hw_name, train, val, hw, lines):
    tr, va = _rows(train, val, ("attention_prefill_unfused", "attention_decode_unfused"))
    if not tr:
        return None
    lines += [f"{hw_name} unfused attention fit rows: {len(tr)} train, {len(va)} validation", HEADER]
    default = "cudnn" if hw_name == "h200" else "fa2"
    gpu_params.UNFUSED_MQA_VIEW = True
    res = [_score_fa2(hw_name, hw, tr, va, "unfused", _terms(hw_name, **on), lines, label, default)
           for on, label in (({}, "A session-7 form (score softmax shares the score passes' multiplier)"),
                             ({"unfused_softmax": True}, "B + own multiplier of the score softmax"))]
    return choose(res, lines)


def run_ew(hw_name, train, val, hw, lines):
    tr, va = _rows(train, val, fit.CLASSES["elementwise"])
    lines += [f"{hw_name} elementwise fit rows: {len(tr)} train, {len(va)} validation", HEADER]
    res = [_score_fa2(hw_name, hw, tr, va, "elementwise", _terms(hw_name, **on), lines, label, reset=("ew.",))
           for on, label in (({}, "A session-7 form"),
                             ({"softmax_reread": True}, "B + on-chip re-reads of small multi-pass rows"))]
    return choose(res, lines)


def _per_gpu(hw_name, train, val, hw, lines):
    run_cudnn_decode(hw_name, train, val, hw, lines)
    run_fa2_decode(hw_name, train, val, hw, lines)
    run_unfused(hw_name, train, val, hw, lines)
    run_ew(hw_name, train, val, hw, lines)


def main():
    run_selection(OUT, _per_gpu)


if __name__ == "__main__":
    main()
