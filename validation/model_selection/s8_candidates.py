"""Session-8 model selection (issue 11) on the fit rows only (fit suite 7 merged): candidate decode
terms for the classes heldout6 missed, each fitted (cosim.calibrate.fit's own code) on the train part
of the fit split and scored on the validation part carved from it (dataset.carve_validation, crc32
mod 5). No held-out suite (test .. test6) is read; heldout6's per-row errors were read only to decide
which classes fit suite 7 measures, and fit suite 7's own rows (fit data) to name the candidates.

What fit suite 7 showed with the session-7 model (fit rows): FA2 decode with few (batch x KV heads)
rows and long contexts runs far slower than priced (b1 h16/1 kv 14,752: 35 us measured, 14 us
priced; 116 splits), growing with the number of splits, not with the bytes: FlashAttention-2's
combine kernel (flash_fwd_splitkv_combine_kernel) loops over the splits one after another, so
its time is a fixed cost plus a time per split (`attn.combine_split`). cuDNN decode misses on
launches of 100-600 CTAs (large query groups at short contexts, MQA at long ones): a per-wave CTA
time (the term FA2 decode carries since session 7) and the same per-split reduction time.

Rule (fixed before any candidate was scored, as in sessions 3, 4, 6 and 7): per group, the
candidate with the lowest validation p90; a candidate with fewer parameters within 2 points of it
is preferred. Groups: cuDNN decode (pinned + default-backend rows), FA2 decode.

Run from the repository root: PYTHONPATH=. python validation/model_selection/s8_candidates.py [hw ...]
Writes validation/model_selection/s8_candidates.txt.

FROZEN RECORD of commit 390db74: cuDNN Lean Attention and the SM share of the decode bandwidth
(candidates E-G), rejected here, left the model in session 8; run it at that commit to reproduce s8_candidates.txt (running it here says so and exits).
"""
if __name__ == "__main__":  # before the imports: the rejected terms' code is gone from the model
    from validation.model_selection.common import frozen_record
    frozen_record(__file__, "390db74")

from pathlib import Path

from cosim.calibrate import fit
from validation.model_selection.common import HEADER, choose, rows_of, run_selection, score_decode

OUT = Path("validation/model_selection/s8_candidates.txt")
# the session-7 (second-round) terms of each GPU, every session-8 candidate off
BASE_TERMS = {hw: {**terms, "cudnn_lean": False, "combine_split": (), "dec_sm_share": ()}
              for hw, terms in (("h200", fit.TERMS), ("h100_sxm", fit.TERMS_BY_HW["h100_sxm"]))}


def _terms(hw_name, **on):
    return {**BASE_TERMS[hw_name], **on}


def run_cudnn_decode(hw_name, train, val, hw, lines):
    tr, va = rows_of(train, val, ("attention_decode_cudnn", "attention_decode"))
    if not tr:
        return None
    lines += [f"{hw_name} cuDNN decode fit rows (pinned + default backend): {len(tr)} train, {len(va)} validation",
              HEADER]
    res = [score_decode(hw_name, hw, tr, va, "cudnn", _terms(hw_name, **on), lines, label)
           for on, label in (({}, "A session-7 form"),
                             ({"dec_cta_lat": ("cudnn",)}, "B + per-wave CTA time"),
                             ({"combine_split": ("cudnn",)}, "C + reduction time per split"),
                             ({"dec_cta_lat": ("cudnn",), "combine_split": ("cudnn",)}, "D = B + C"),
                             ({"cudnn_lean": True, "dec_cta_lat": ("cudnn",)},
                              "E Lean Attention + per-wave CTA time (s7b's D)"),
                             ({"dec_sm_share": ("cudnn",)}, "F + SM share of the bandwidth below one wave"),
                             ({"dec_sm_share": ("cudnn",), "combine_split": ("cudnn",)}, "G = C + F"))]
    return choose(res, lines)


def run_fa2_decode(hw_name, train, val, hw, lines):
    tr, va = rows_of(train, val, ("attention_decode_fa2",))
    lines += [f"{hw_name} FA2 decode fit rows: {len(tr)} train, {len(va)} validation", HEADER]
    cands = [({}, "A session-7 form"), ({"combine_split": ("fa2",)}, "B + combine time per split")]
    if "fa2" not in (BASE_TERMS[hw_name].get("dec_cta_lat") or ()):  # the H100 has no per-wave CTA time
        cands.append(({"combine_split": ("fa2",), "dec_cta_lat": ("fa2",)}, "C = B + per-wave CTA time"))
    res = [score_decode(hw_name, hw, tr, va, "fa2", _terms(hw_name, **on), lines, label) for on, label in cands]
    return choose(res, lines)


def _per_gpu(hw_name, train, val, hw, lines):
    run_cudnn_decode(hw_name, train, val, hw, lines)
    run_fa2_decode(hw_name, train, val, hw, lines)


def main():
    run_selection(OUT, _per_gpu)


if __name__ == "__main__":
    main()
