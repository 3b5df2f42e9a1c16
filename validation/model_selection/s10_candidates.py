"""Session-10 model selection (issue 11, round 5) on the fit rows only: candidate terms for a class
heldout10 missed, each fitted (cosim.calibrate.fit's own code) on the train part of the fit split and
scored on the validation part carved from it (dataset.carve_validation, crc32 mod 5). No held-out suite
(test .. test10) is read: heldout10's scores named the classes; the fit rows named the candidates.

What the fit rows showed with the session-9 model (H200, unfused = Hugging Face eager attention, 1,313
reliable fit rows, 8.0 / 18.6 in-sample): the model runs fast on both phases, and the shared multipliers
split the wrong way between them: decode (q_len 1) rows whose KV length is no multiple of 8 are priced
6.5 % fast (median, signed), aligned decode 1.1 %; prefill rows with an aligned KV length 11.7 % fast,
unaligned prefill 1.0 % slow. One unaligned multiplier and one score-pass multiplier are fitted to both
phases' score matrices ((bh, 1, kv) rows against (bh, q, kv) matrices).
- Candidate B: decode's own unaligned multiplier (`unfused.dec_unaligned_mult`, one fitted parameter).
- Candidate C: decode's own score-pass multiplier (`unfused.dec_score_mult`, one fitted parameter).
- Candidate D: both (two).
These are fitted regularities per phase, not derived from PyTorch's kernels.

FA2 prefill (one/two-wave launches), the fp8 split-K tail and elementwise (the unaligned memcpy term
was rejected by this rule in session 9 and is not re-scored: the rule is not re-argued after its
score was seen) get no candidate this round.

Rule (fixed before any candidate was scored, as in sessions 3-9): per group, the candidate with the
lowest validation p90; a candidate with fewer parameters within 2 points of it is preferred. Candidates
whose term the rule does not choose are removed from the model after this record (they stay at the
commit named in the .txt).

Family transfer (diagnosis on fit rows only, `validation/model_selection/s10_transfer.py`): see that
script; no transfer law is chosen here.

Run from the repository root: PYTHONPATH=. python validation/model_selection/s10_candidates.py [hw ...]
Writes validation/model_selection/s10_candidates.txt.

FROZEN RECORD of commit ab7b72e: decode's own score-pass multiplier (rejected here) left the model after this
record; run it at that commit to reproduce s10_candidates.txt (running it here says so and exits).
"""
if __name__ == "__main__":  # before the imports: the rejected term's code is gone from the model
    from validation.model_selection.common import frozen_record
    frozen_record(__file__, "ab7b72e")

from pathlib import Path

from cosim.calibrate import fit
from hwmodels import gpu, gpu_params
from validation.model_selection.common import HEADER, choose, rows_of, run_selection, score_fitted, start_values

OUT = Path("validation/model_selection/s10_candidates.txt")
UNFUSED_ALL = gpu.UNFUSED_KEYS + ("unfused.unaligned_mult", "unfused.softmax_mult", "unfused.transpose_mult",
                                  "unfused.dec_unaligned_mult", "unfused.dec_score_mult")
BASE_TERMS = {"h200": dict(fit.TERMS), "h100_sxm": dict(fit.TERMS_BY_HW["h100_sxm"])}


def _terms(hw_name, **on):
    return {**BASE_TERMS[hw_name], **fit.S10_OFF, **on}


def score_unfused(hw_name, hw, tr, va, terms, lines, label):
    """Fit unfused attention's multipliers on tr exactly as fit.fit_latency does (each from 1.0, the optional
    ones where the rows identify them, through fit's own helpers); every other parameter keeps the committed
    calibration; score tr and va."""
    base, sms, l2 = start_values(hw_name)
    values = {k: v for k, v in base.items() if k not in UNFUSED_ALL}
    for k in gpu.UNFUSED_KEYS:
        values[k] = 1.0
    names = list(gpu.UNFUSED_KEYS)
    if terms.get("unfused_unaligned") and sum(int(m.op.dims["kv_len"]) % gpu_params.UNFUSED_ALIGN != 0
                                              for m in tr) >= 3:
        values["unfused.unaligned_mult"] = 1.0
        names.append("unfused.unaligned_mult")
    names += fit._s7_optional("unfused", tr, values, terms)
    names += fit._unfused_optional(tr, values, terms)
    fit._fit_group(names, tr, hw, values, sms, l2, "cudnn" if hw_name == "h200" else "fa2")
    return score_fitted(values, sms, l2, "cudnn" if hw_name == "h200" else "fa2", tr, va, hw, len(names), lines,
                        label)


def run_unfused(hw_name, train, val, hw, lines):
    tr, va = rows_of(train, val, ("attention_prefill_unfused", "attention_decode_unfused"))
    if not tr:
        return None
    lines += [f"{hw_name} unfused attention fit rows (prefill + decode): {len(tr)} train, {len(va)} validation",
              HEADER]
    res = [score_unfused(hw_name, hw, tr, va, _terms(hw_name, **on), lines, label)
           for on, label in (({}, "A session-9 form (multipliers shared by both phases)"),
                             ({"unfused_dec_unaligned": True}, "B + decode's own unaligned multiplier"),
                             ({"unfused_dec_score": True}, "C + decode's own score-pass multiplier"),
                             ({"unfused_dec_unaligned": True, "unfused_dec_score": True}, "D + both"))]
    return choose(res, lines)


def _per_gpu(hw_name, train, val, hw, lines):
    run_unfused(hw_name, train, val, hw, lines)  # the H100 fit suite has no unfused rows: nothing to score


def main():
    run_selection(OUT, _per_gpu)


if __name__ == "__main__":
    main()
