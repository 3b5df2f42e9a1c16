"""Session-9 model selection (issue 11, round 4) on the fit rows only: candidate terms for the classes
heldout9 missed, each fitted (cosim.calibrate.fit's own code) on the train part of the fit split and
scored on the validation part carved from it (dataset.carve_validation, crc32 mod 5). No held-out
suite (test .. test9) is read: heldout9's scores named the classes; the fit rows named the candidates.

What the fit rows showed with the session-8 third-round model (after the session-9 bug fixes):
- GEMMs priced as one wave of 100-130 tiles run up to 30 % faster than priced, while others of the same
  tile count run slower: cuBLAS's Hopper kernels can spread a tile's K iterations over the SMs
  (stream-K) instead of whole tiles per wave or a split-K with its reduction kernel: candidate B
  (`gemm.stream_k`, structure, no fitted parameter; gpu_library.streamk_time). Candidate C re-scores
  split-K's fixed reduction time (`gemm.splitk_floor`, rejected in s8b) on the larger fit set.
- cuDNN decode (pinned and default backend): time minus the KV bytes at full bandwidth rises from
  about 7 us at one 128-row KV block to 11-12 us at four blocks and stays there, split or not, while
  the model has one floor (9.6 us): the short contexts run 20-30 % faster than priced, contexts of
  1-4 K with 128 CTAs 5-14 % slower. Candidate B: a time per KV block of the first four
  (`attn_cudnn.dec_fill`, one fitted parameter).
- Tensor.copy_ (a device-to-device memcpy) of 1.4-50 MiB whose size is no multiple of 4 KiB takes
  about 2.5 us longer than an aligned copy of the same size (every such fit row: -16 to -33 % priced);
  below 1 MiB no difference. Candidate B: a fixed time for those copies (`ew.copy.unaligned`, one
  fitted parameter).
FA2 prefill (heldout9 median 6.2) and unfused attention get no candidate this round (none identified
in the time available); their form is unchanged.

Rule (fixed before any candidate was scored, as in sessions 3-8): per group, the candidate with the
lowest validation p90; a candidate with fewer parameters within 2 points of it is preferred. Candidates
whose term the rule does not choose are removed from the model after this record (they stay at the
commit named in the .txt).

Run from the repository root: PYTHONPATH=. python validation/model_selection/s9_candidates.py [hw ...]
Writes validation/model_selection/s9_candidates.txt.

FROZEN RECORD of commit 269e754: the unaligned memcpy's fixed time and split-K's fixed reduction time
(rejected here) left the model after this record; run it at that commit to reproduce s9_candidates.txt
(running it here says so and exits).
"""
if __name__ == "__main__":  # before the imports: the rejected terms' code is gone from the model
    from validation.model_selection.common import frozen_record
    frozen_record(__file__, "269e754")

from pathlib import Path

from cosim.calibrate import fit
from validation.model_selection.common import (HEADER, choose, rows_of, run_selection, score_decode, score_fitted,
                                               start_values)

OUT = Path("validation/model_selection/s9_candidates.txt")
NEW_KEYS = ("gemm.stream_k", "gemm.splitk_floor", "attn_cudnn.dec_fill", "attn.dec_fill", "ew.copy.unaligned")
BASE_TERMS = {"h200": dict(fit.TERMS), "h100_sxm": dict(fit.TERMS_BY_HW["h100_sxm"])}


def _terms(hw_name, **on):
    return {**BASE_TERMS[hw_name], **fit.S9_OFF, **on}


def score_group(hw_name, hw, tr, va, group, terms, lines, label):
    """Fit one group's parameters (fit.GROUPS[group] from fit.INITIAL, plus the optional terms `terms`
    switch on, through cosim.calibrate.fit's own code) on tr; score tr and va. Every other parameter keeps
    the committed calibration; no candidate term starts from a fitted value of itself."""
    base, sms, l2 = start_values(hw_name)
    values = {k: v for k, v in base.items() if k not in NEW_KEYS}
    names = list(fit.GROUPS[group])
    for k in names:
        values[k] = fit.INITIAL[k]
    names += fit._s7_optional(group, tr, values, terms)
    if group == "elementwise":
        names += fit._ew_optional(tr, values, terms)
    fit._fit_group(names, tr, hw, values, sms, l2, "fa2")
    return score_fitted(values, sms, l2, "fa2", tr, va, hw, len(names), lines, label)


def run_gemm(hw_name, train, val, hw, lines):
    tr, va = rows_of(train, val, ("gemm_bf16", "gemm_fp8"))
    lines += [f"{hw_name} GEMM fit rows (bf16 + fp8): {len(tr)} train, {len(va)} validation", HEADER]
    res = [score_group(hw_name, hw, tr, va, "gemm", _terms(hw_name, **on), lines, label)
           for on, label in (({}, "A session-8 form (split-K workspace reduction)"),
                             ({"gemm_stream_k": True}, "B + stream-K among the library's choices"),
                             ({"splitk_floor": True}, "C + split-K reduction's fixed time"))]
    return choose(res, lines)


def run_cudnn_decode(hw_name, train, val, hw, lines):
    tr, va = rows_of(train, val, ("attention_decode_cudnn", "attention_decode"))
    if not tr:
        return None
    lines += [f"{hw_name} cuDNN decode fit rows (pinned + default backend): {len(tr)} train, {len(va)} validation",
              HEADER]
    res = [score_decode(hw_name, hw, tr, va, "cudnn", _terms(hw_name, **on), lines, label)
           for on, label in (({}, "A session-8 form (one CTA per query head)"),
                             ({"dec_fill": ("cudnn",)}, "B + KV pipeline fill per block (first 4)"))]
    return choose(res, lines)


def run_elementwise(hw_name, train, val, hw, lines):
    tr, va = rows_of(train, val, ("elementwise",))
    lines += [f"{hw_name} elementwise fit rows: {len(tr)} train, {len(va)} validation", HEADER]
    res = [score_group(hw_name, hw, tr, va, "elementwise", _terms(hw_name, **on), lines, label)
           for on, label in (({}, "A session-8 form"),
                             ({"copy_unaligned": True}, "B + unaligned memcpy fixed time"))]
    return choose(res, lines)


def _per_gpu(hw_name, train, val, hw, lines):
    run_gemm(hw_name, train, val, hw, lines)
    run_cudnn_decode(hw_name, train, val, hw, lines)
    if hw_name == "h200":  # the H100 fit suite's copies are all 4 KiB multiples: no row identifies the term
        run_elementwise(hw_name, train, val, hw, lines)


def main():
    run_selection(OUT, _per_gpu)


if __name__ == "__main__":
    main()
