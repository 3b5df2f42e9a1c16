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

Second scoring (s10_candidates.txt): the same four candidates, each fitted with fit.fit_unfused (the
calibration's own group fit, which since this commit fits the group twice, the second pass from the first's
result: the committed calibration's fit stopped early, 6.3 / 18.3 in-sample, where a restart reached 4.7 / 13.8);
the first scoring (one pass, candidate code at ab7b72e) is kept in the .txt. The four candidates run in four
processes (multiprocessing), the lines in the same order.
"""

import multiprocessing
from pathlib import Path

from cosim.calibrate import fit
from hwmodels import gpu
from validation.model_selection.common import HEADER, choose, rows_of, run_selection, score_fitted, start_values

OUT = Path("validation/model_selection/s10_candidates.txt")
UNFUSED_ALL = gpu.UNFUSED_KEYS + ("unfused.unaligned_mult", "unfused.softmax_mult", "unfused.transpose_mult",
                                  "unfused.dec_unaligned_mult", "unfused.dec_score_mult")
BASE_TERMS = {"h200": dict(fit.TERMS), "h100_sxm": dict(fit.TERMS_BY_HW["h100_sxm"])}


def _terms(hw_name, **on):
    return {**BASE_TERMS[hw_name], **fit.S10_OFF, **on}


def score_unfused(hw_name, hw, tr, va, terms, lines, label):
    """Fit unfused attention's multipliers on tr with fit.fit_unfused (the calibration's own group fit, each
    multiplier from 1.0, the optional ones where the rows identify them); every other parameter keeps the
    committed calibration; score tr and va."""
    base, sms, l2 = start_values(hw_name)
    values = {k: v for k, v in base.items() if k not in UNFUSED_ALL}
    default = "cudnn" if hw_name == "h200" else "fa2"
    fit.fit_unfused(tr, hw, values, sms, l2, terms, default)
    names = [k for k in values if k.startswith("unfused.")]
    return score_fitted(values, sms, l2, default, tr, va, hw, len(names), lines, label)


def _one(args):
    hw_name, tr, va, on, label = args
    lines = []
    r = score_unfused(hw_name, fit.base_spec(hw_name), tr, va, _terms(hw_name, **on), lines, label)
    return r, lines


def run_unfused(hw_name, train, val, hw, lines):
    tr, va = rows_of(train, val, ("attention_prefill_unfused", "attention_decode_unfused"))
    if not tr:
        return None
    lines += [f"{hw_name} unfused attention fit rows (prefill + decode): {len(tr)} train, {len(va)} validation",
              HEADER]
    cands = (({}, "A session-9 form (multipliers shared by both phases)"),
             ({"unfused_dec_unaligned": True}, "B + decode's own unaligned multiplier"),
             ({"unfused_dec_score": True}, "C + decode's own score-pass multiplier"),
             ({"unfused_dec_unaligned": True, "unfused_dec_score": True}, "D + both"))
    with multiprocessing.get_context("fork").Pool(len(cands)) as pool:
        out = pool.map(_one, [(hw_name, tr, va, on, label) for on, label in cands])
    res = [r for r, _ in out]
    for _, ln in out:
        lines += ln
    return choose(res, lines)


def _per_gpu(hw_name, train, val, hw, lines):
    run_unfused(hw_name, train, val, hw, lines)  # the H100 fit suite has no unfused rows: nothing to score


def main():
    run_selection(OUT, _per_gpu)


if __name__ == "__main__":
    main()
