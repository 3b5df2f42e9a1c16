"""Session-11 model selection (issue 11, round 6) for unfused (Hugging Face eager) attention on the fit rows
only: candidate terms fitted (cosim.calibrate.fit's own fit_unfused, through common.score_unfused) on the
train part of the fit split and scored on the validation part carved from it (dataset.carve_validation, crc32
mod 5). No held-out suite (test .. test11) is read: heldout10's published scores named the class (unfused
prefill 9.1 / 17.0, decode 7.3 / 17.0); the train rows named the candidates.

What the train rows showed (written before any candidate was scored; H200, 1,071 reliable train rows of both
unfused classes, the session-10 form fitted on them with the fit-order fix of this session (the group fitted
after the launch constants): 4.85 / 14.03; signed error = predicted / measured - 1, median):
- Decode (790 rows): 4.6 / 13.0, no structure beyond a few points: signed -2.5 aligned, -2.0 .. +2.3 for each
  residue kv_len mod 8; by GQA form, batch, time, suite within +-5 points.
- Prefill (281 rows; q_len = kv_len in every row): aligned KV lengths (88 rows) 2.9 / 6.0, unaligned (193) 8.4 /
  19.0. The unaligned rows split by the KV length's parity: odd lengths (100 rows; rows of bf16 elements only
  2-byte aligned) priced 8.4 % fast (signed -8.4 for gcd(kv, 8) = 1), even ones (93; 4- or 8-byte aligned rows)
  8.2 % slow (+8.6 for gcd 2, +7.5 for gcd 4). Within the odd rows the error grows with the score GEMMs'
  (QK^T, PV) share of the predicted time: -4.3 at a GEMM share near 0.1, -12.8 near 0.2, -18.5 near 0.3 (head
  dim 128 -10.0, 64 -0.7: the larger head dim has the larger GEMM share); even rows +9.5 near 0.1, +4.0 near
  0.2, -4.7 near 0.3. One shared unaligned multiplier on GEMMs and passes cannot serve the two alignments nor
  the two kernel kinds. Smaller groups, not addressed (few rows): MQA prefill -5.7 (14 rows), non-causal
  prefill +6.4 (21 rows); batch (1-4) and the GQA / MHA form move the prefill error by at most about 3 points.
Candidates (prefill only; decode keeps its own multiplier; each new multiplier replaces
unfused.unaligned_mult where it applies; hwmodels.gpu.unfused_unaligned):
- A: the session-10 form (6 fitted multipliers).
- B: odd KV lengths' own multiplier (unfused.odd_mult) on the score GEMMs and passes (7).
- C: the score GEMMs' own unaligned multiplier (unfused.gemm_unaligned_mult), the passes keep the shared one (7).
- D: B + C: passes by parity, GEMMs their own multiplier (8).
- E: D + the odd lengths' GEMMs' own multiplier (unfused.gemm_odd_mult): a 2 x 2 of parity and kernel kind (9).
These are fitted regularities of PyTorch's kernels on unaligned rows (no vectorised 16-byte loads; odd
lengths not even 4-byte ones), not derived from the kernels' code.

Rule (fixed before any candidate was scored, as in sessions 3-10): the candidate with the lowest validation
p90; a candidate with fewer parameters within 2 points of it is preferred (common.choose). Candidates whose
term the rule does not choose are removed from the model after this record. The H100 fit rows have no unfused
rows: nothing is scored there and its term set keeps every session-11 unfused term off.

Run from the repository root: PYTHONPATH=. python validation/model_selection/s11_unfused_candidates.py [hw ...]
Writes validation/model_selection/s11_unfused_candidates.txt.

FROZEN RECORD of commit 4727c13: the rule kept A; the candidate terms B-E (unfused.odd_mult,
unfused.gemm_unaligned_mult, unfused.gemm_odd_mult) left the model after this record; run it at that commit to
reproduce s11_unfused_candidates.txt (running it here says so and exits).
"""
if __name__ == "__main__":  # before the imports: the rejected terms' code is gone from the model
    from validation.model_selection.common import frozen_record
    frozen_record(__file__, "4727c13")

from pathlib import Path

from cosim.calibrate import fit
from validation.model_selection.common import rows_of, run_selection, score_candidates, score_unfused

OUT = Path("validation/model_selection/s11_unfused_candidates.txt")
CLASSES = ("attention_prefill_unfused", "attention_decode_unfused")
CANDIDATES = (({}, "A session-10 form"),
              ({"unfused_odd": True}, "B + odd KV lengths' own multiplier"),
              ({"unfused_gemm_unaligned": True}, "C + the score GEMMs' own unaligned multiplier"),
              ({"unfused_odd": True, "unfused_gemm_unaligned": True}, "D B + C"),
              ({"unfused_odd": True, "unfused_gemm_unaligned": True, "unfused_gemm_odd": True},
               "E D + odd lengths' GEMMs' own multiplier"))


def _per_gpu(hw_name, train, val, hw, lines):
    tr, va = rows_of(train, val, CLASSES)
    if not tr:  # the H100 fit suite has no unfused rows
        lines += [f"{hw_name}: no unfused attention fit rows: nothing scored", ""]
        return None
    base = {**fit.TERMS_BY_HW[hw_name], **fit.S11_UNFUSED_OFF}

    def score(on, label):
        return score_unfused(hw_name, hw, tr, va, {**base, **on}, lines, label)
    return score_candidates(tr, va, CANDIDATES, score, lines, f"{hw_name} unfused attention fit rows (prefill + decode)")


def main():
    run_selection(OUT, _per_gpu)


if __name__ == "__main__":
    main()
