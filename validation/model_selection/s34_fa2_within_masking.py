"""Round 19 candidate (session 26, after heldout23's score), FA2-pinned prefill on the H100: an uneven-length cost
within the masking steps. Fitted on the train part of the H100's fit rows and scored once on the validation part
carved from them (dataset.carve_validation, crc32 mod 5). No held-out suite is read.

Why. Round 18 (s33's GMS, hwmodels.gpu.fa2_prefill_kernels_time) prices the uneven-length terms only where a one-pass
launch's longest CTA iterates past the uneven kernel's masking steps (ceil(Bq / Bk) + 1) and nothing within them. The
fit-shape probe (validation/diagnostics/h100_fa2_uneven_probe.txt, its last table) measured some cost within them too:
3.0 us (d 64, 10 single-wave shapes), 1.6 us (d 64, 1 multi-wave), 6.1 us (d 128, 1). Seen before this script was
written (disclosed): round 18's re-score of the seen session-9 H100 suite, whose q = kv = 192 causal d 128 rows (every
KV block a masking step) are priced 20 - 31 % fast (docs/gpu-validation.md, session 26); heldout23's score (FA2-pinned
prefill 4.1 / 11.6, its tail groups leaning fast) - so this round's motivation comes after a held-out score, as
round 17's and round 18's did.

Candidates (each re-fits the FA2 prefill group from fit.INITIAL with round 18's terms, r18_h100, as the committed
calibration was fitted; the candidate term restarts from its start value):
  A   round 18 (the committed form);
  W   + `attn.ragged_within`: a fitted time (start 3 us) on every uneven causal one-pass launch whose KV blocks are all
      masking steps (where round 18 prices none). One parameter added.
The candidate's code lives in this script (common.prefill_candidate patches hwmodels.gpu.attention_prefill_time for
this process only); it enters the model only if the rule chooses it, in a later round with its own fresh suite.

Disclosed: these validation rows were scored before by s27 / s28, s30, s31, s32 and s33 (this is their seventh
scoring).

Rule: RULE_round7.md (common.choose_resolved), as s27 / s30 - s33: the target statistic is the median where only the
median misses the goal on the current form's validation figures, else the p90; a candidate is eligible only if its
gain on that statistic is resolved (95 % paired-bootstrap interval of candidate - current below 0); among the current
form and the eligible, the lowest target statistic, one with fewer parameters within 1 point (median) / 2 points (p90)
preferred.

Run from the repository root: PYTHONPATH=. python validation/model_selection/s34_fa2_within_masking.py
Writes validation/model_selection/s34_fa2_within_masking.txt.
"""
import math
from pathlib import Path

from cosim.calibrate import fit
from hwmodels import gpu
from hwmodels.spec import load_hw
from validation.model_selection import s27_fa2_waves as s27
from validation.model_selection.common import prefill_candidate, rows_of, run_one_gpu, score_fa2_prefill

OUT = Path("validation/model_selection/s34_fa2_within_masking.txt")  # relative: no machine path in the record
KEY = "attn.ragged_within"
ORIGINAL = gpu.attention_prefill_time


def within_masking(P, batch, heads, q_len, kv_len, d, causal) -> bool:
    """An uneven causal one-pass launch whose KV blocks are all masking steps (round 18 prices no uneven cost)."""
    if not causal or q_len % gpu.FA2_BQ == 0 or gpu.fa2_prefill_splits(P, batch, heads, q_len, kv_len, d) > 1:
        return False
    bq, bk = gpu._fa2_blocks(d)
    return math.ceil(kv_len / bk) <= math.ceil(bq / bk) + 1


def prefill_time_candidate(P, batch, heads, q_len, kv_len, d, dv, causal, peak, details=False, blocks=None):
    """The committed price, plus `attn.ragged_within` where P carries it and round 18 prices no uneven cost."""
    out = ORIGINAL(P, batch, heads, q_len, kv_len, d, dv, causal, peak, details=details, blocks=blocks)
    if blocks is not None or KEY not in P.values or not P.values.get("attn.prefill_kernels") \
            or not within_masking(P, batch, heads, q_len, kv_len, d, causal):
        return out
    return (out[0] + P[KEY], out[1]) if details else out + P[KEY]


def _set_terms(backend, terms, values):
    if backend != "fa2" or not terms.get("ragged_within"):
        return []
    values.setdefault(KEY, 3e-6)
    return [KEY]


def candidate_code():
    return prefill_candidate(prefill_time_candidate, _set_terms)


R18 = "r18_h100"  # the term set the committed H100 calibration (round 18) was fitted with
# every candidate term restarts from its start value, round 18's combine included (as the CLI's fit starts it);
# attn.tail has no effect under round 18 (the CLI does not fit it): counted out of the parameters
DROP = s27.PRE_KEYS + (KEY, "attn.skv_combine", "attn.skv_combine_bw")
PREFILL = (({}, "A round 18 (committed form)", -1),
           ({"ragged_within": True}, "W + uneven cost within the masking steps", -1))


def run_prefill(hw_name, train, val, hw, lines):
    tr, va = rows_of(train, val, ("attention_prefill_fa2",))
    P = gpu.params_for(load_hw(hw_name))
    n_within = sum(within_masking(P, int(m.op.dims["batch"]), int(m.op.dims["heads"]), int(m.op.dims["q_len"]),
                                  int(m.op.dims["kv_len"]), int(m.op.dims["head_dim"]), bool(m.op.dims.get("causal")))
                   for m in va)
    lines.append(f"{hw_name}: {n_within} of {len(va)} FA2 prefill validation rows are uneven causal one-pass launches "
                 f"within the masking steps")
    with candidate_code():
        return score_fa2_prefill(hw_name, hw, tr, va, lines, PREFILL, fit.TERM_SETS[R18], DROP)


if __name__ == "__main__":
    run_one_gpu(OUT, run_prefill, "h100_sxm", "s34 scores the H100 only (round 18 is the H100's form)")
