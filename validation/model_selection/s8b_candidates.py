"""Session-8 second-round model selection (issue 11) on the fit rows only (fit suite 8 merged):
candidate terms for the classes heldout7 missed, each fitted (cosim.calibrate.fit's own code) on the
train part of the fit split and scored on the validation part carved from it (dataset.carve_validation,
crc32 mod 5). No held-out suite (test .. test7) is read: heldout7's per-row errors were read only to
decide which classes fit suite 8 measures, and the fit rows (fit suites 3-8) to name the candidates.

What the fit rows showed with the session-8 model:
- fp8 (and bf16) GEMMs of small M and long K, priced with split-K over 3-18 K-slices, ran 25-40 %
  slower than priced (fit 8: M 165, N 1664, K 11,136, 14 slices: 20.2 us measured, 12.8 us priced).
  cuBLAS's split-K writes each slice's partial tile in fp32 to a workspace and reduces it: 2 x split x
  M x N x 4 bytes at the GEMM bandwidth (no new parameter; `gemm.splitk_ws`), and optionally the
  reduction's fixed time (`gemm.splitk_floor`).
- FA2 causal prefills whose length is no multiple of 128 (the uneven kernel, Is_even_MN false) ran
  3-5 us slower than priced on multi-wave launches and 13-17 us slower on single-wave launches of 96-128
  CTAs, while lengths that are multiples of 128 are priced within 1-2 us at the same CTA counts: a
  fixed time of the uneven kernel (`attn.ragged`), and optionally its part that grows with the fill of a
  single wave above half the SMs (`attn.ragged_wave`).

Rule (fixed before any candidate was scored, as in sessions 3, 4, 6, 7 and 8): per group, the
candidate with the lowest validation p90; a candidate with fewer parameters within 2 points of it is
preferred. Groups: GEMM (bf16 + fp8), FA2 prefill; on both GPUs where their fit rows have the shapes.

Run from the repository root: PYTHONPATH=. python validation/model_selection/s8b_candidates.py [hw ...]
Writes validation/model_selection/s8b_candidates.txt (committed with 7909f6d, whose fit.py lacked the terms'
switches; re-run at the frozen commit 523b183 it reproduces every line but the load line).

FROZEN RECORD of commit 523b183: split-K's fixed reduction time (candidate C), rejected here and again in
s9_candidates, left the model in session 9; run it at that commit to reproduce s8b_candidates.txt (running
it here says so and exits).
"""
if __name__ == "__main__":  # before the imports: the rejected term's code is gone from the model
    from validation.model_selection.common import frozen_record
    frozen_record(__file__, "523b183")

from pathlib import Path

from cosim.calibrate import fit
from validation.model_selection.common import (HEADER, choose, rows_of, run_selection, score_decode, score_fitted,
                                               start_values)

OUT = Path("validation/model_selection/s8b_candidates.txt")
NEW_KEYS = ("gemm.splitk_ws", "gemm.splitk_floor", "attn.ragged", "attn.ragged_wave", "attn_cudnn.dec_qhead_ctas")
# the session-8 terms of each GPU, every second-round candidate off
BASE_TERMS = {hw: {**terms, **fit.S8B_OFF} for hw, terms in (("h200", fit.TERMS), ("h100_sxm", fit.TERMS_BY_HW["h100_sxm"]))}


def _terms(hw_name, **on):
    return {**BASE_TERMS[hw_name], **on}


def score_group(hw_name, hw, tr, va, group, terms, lines, label):
    """Fit one FA2 group's parameters (fit.GROUPS[group] from fit.INITIAL, plus the optional terms
    `terms` switch on, through cosim.calibrate.fit's own code) on tr; score tr and va. Every other
    parameter keeps the committed calibration; no candidate starts from a fitted value of itself."""
    base, sms, l2 = start_values(hw_name)
    values = {k: v for k, v in base.items() if k not in NEW_KEYS}
    names = list(fit.GROUPS[group])
    for k in names:
        values[k] = fit.INITIAL[k]
    names += fit._s7_optional(group, tr, values, terms)
    if group == "attention_prefill":
        names += fit._prefill_optional("attn.", "fa2", terms, values)
    fit._fit_group(names, tr, hw, values, sms, l2, "fa2")
    return score_fitted(values, sms, l2, "fa2", tr, va, hw, len(names), lines, label)


def run_gemm(hw_name, train, val, hw, lines):
    tr, va = rows_of(train, val, ("gemm_bf16", "gemm_fp8"))
    lines += [f"{hw_name} GEMM fit rows (bf16 + fp8): {len(tr)} train, {len(va)} validation", HEADER]
    res = [score_group(hw_name, hw, tr, va, "gemm", _terms(hw_name, **on), lines, label)
           for on, label in (({}, "A session-8 form"),
                             ({"gemm_splitk_ws": True}, "B + split-K fp32 workspace reduction"),
                             ({"gemm_splitk_ws": True, "splitk_floor": True}, "C = B + the reduction's fixed time"))]
    return choose(res, lines)


def run_fa2_prefill(hw_name, train, val, hw, lines):
    tr, va = rows_of(train, val, ("attention_prefill_fa2",))
    lines += [f"{hw_name} FA2 prefill fit rows: {len(tr)} train, {len(va)} validation", HEADER]
    res = [score_group(hw_name, hw, tr, va, "attention_prefill", _terms(hw_name, **on), lines, label)
           for on, label in (({}, "A session-8 form"),
                             ({"ragged": ("fa2",)}, "B + uneven-length fixed time"),
                             ({"ragged": ("fa2",), "ragged_wave": True},
                              "C = B + its part on single waves above half the SMs"))]
    return choose(res, lines)


def run_cudnn_decode(hw_name, train, val, hw, lines):
    tr, va = rows_of(train, val, ("attention_decode_cudnn", "attention_decode"))
    if not tr:
        return None
    lines += [f"{hw_name} cuDNN decode fit rows (pinned + default backend): {len(tr)} train, {len(va)} validation",
              HEADER]
    res = [score_decode(hw_name, hw, tr, va, "cudnn", _terms(hw_name, **on), lines, label)
           for on, label in (({}, "A session-8 form"),
                             ({"dec_qhead_ctas": ("cudnn",)}, "B one CTA per query head"),
                             ({"dec_qhead_ctas": ("cudnn",), "dec_cta_lat": ("cudnn",)},
                              "C = B + per-wave CTA time"))]
    return choose(res, lines)


def _per_gpu(hw_name, train, val, hw, lines):
    run_gemm(hw_name, train, val, hw, lines)
    run_fa2_prefill(hw_name, train, val, hw, lines)
    run_cudnn_decode(hw_name, train, val, hw, lines)


def main():
    run_selection(OUT, _per_gpu)


if __name__ == "__main__":
    main()
