"""Round 15 (session 24), FA2-pinned causal prefill on the H100: candidate forms of the one- and two-wave launches
fit suite 9 measured, each fitted (cosim.calibrate.fit's own code, common.score_group) on the train part of the H100's
fit rows and scored once on the validation part carved from them (dataset.carve_validation, crc32 mod 5). No
held-out suite is read: heldout19's published H100 score named the class (FA2-pinned prefill 4.1 / 19.4).

Why. After the H100 re-fit with fit9 (commit a5adf41) the fitted FA2 prefill group is 6.07 / 16.52 in sample, and
s26 found no measured-residual correction whose gain resolves (s26_fit9_residuals.txt). The lead printed the
re-fitted model's signed errors on the H100's FA2 fit rows by (head dim, causal, waves of 128-row query-block CTAs over
132 SMs, even / uneven length, length <= 384) before writing this docstring (disclosed; fit rows only):
- two-wave causal launches: even lengths priced slow (signed median d 128 +6 / +10 %, d 64 +16 / +33 %: long / short),
  uneven lengths priced fast (d 128 -7.5 / -11 %, d 64 -5.6 % long); the uneven kernel's cost grows with the waves,
  the fixed `attn.ragged` (3 us) and the single-wave `attn.ragged_wave` do not;
- one-wave launches: uneven lengths spread widest (p90 +24 % at d 128, +50 % at d 64 short), even lengths at d 128
  priced fast (-12 %), at d 64 short slow (+13 %).
FlashAttention-2's uneven causal kernel (Is_even_MN false) runs one more masking iteration per CTA
(flash_fwd_kernel.h: n_masking_steps ceil(Bm / Bn) + 1): a per-CTA cost in score blocks, s12's candidate C, which s12
rejected on the H100 with its fit rows then (no gain resolved; session 12, before fit8 and fit9). And the kernel's
CTAs are small enough (128 threads; d 64: 48 KiB of shared memory, d 128: 64 KiB) that two run on one SM at once:
a launch of up to 2 x 132 CTAs need not take two waves of the longest CTA.

Candidates (every one re-fits the FA2 prefill group from fit.INITIAL; `attn.ragged`, `attn.ragged_wave` and the
candidate terms restart from their start values in every candidate, none from a fitted value of itself):
  A   the current form (round 14: ragged + ragged_wave);
  C   + the uneven kernel's masking iteration per CTA, `attn.ragged_step` score blocks (start 0.5), s12's C;
  C2  C without `attn.ragged_wave` (the per-CTA step in place of the single-wave time);
  P   + two co-resident CTAs per SM: the wave cap becomes ceil(CTAs / (2 x SMs)) x `attn.pair` x the longest CTA for
      launches of more CTAs than SMs (one CTA per SM below), `attn.pair` fitted (start 1.5; 1 = a pair costs one CTA's
      time, 2 = two CTAs' time);
  CP  C + P;
  C2P C2 + P.
The candidates' code lives in this script (`candidate_code`: hwmodels.gpu.attention_prefill_time and
fit._prefill_optional patched for this process only), not in the model; it enters the model only if the rule chooses
a term. The H200 is not scored: its fit rows have no fit9 (its FA2 prefill form stays round 14's; heldout19 may still
be measured on it with its pinned prices).

Rule: RULE_round7.md (common.choose_resolved): the target statistic is the median where only the median misses the
goal on the current form's validation figures, else the p90; a candidate is eligible only if its gain on that
statistic is resolved (95 % paired-bootstrap interval of candidate - current below 0, 4,000 resamples, seed
20261206); among the current form and the eligible, the lowest target statistic, one with fewer parameters within
1 point (median) / 2 points (p90) preferred.

Run from the repository root: PYTHONPATH=. python validation/model_selection/s27_fa2_waves.py
Writes validation/model_selection/s27_fa2_waves.txt.

FROZEN RECORD of commit 82c7e2e (a note added after the record, session 24's review): fit suite 10 changed the fit rows,
so running this on a later commit would print s28's figures over this record; it refuses, naming the commit.
s28_fa2_waves_fit10 imports its candidate code and run_prefill. Under the rule a candidate with more parameters than A
is chosen only if its p90 beats A's by more than 2 points (A, with fewer parameters, is preferred within that margin):
C and CP (-1.3, -1.4 points) could not have been chosen even had their gains resolved.
"""
import contextlib
import math

import numpy as np

from cosim.calibrate import fit
from hwmodels import gpu
from hwmodels import gpu_params as _gp
from validation.model_selection.common import choose_resolved, rows_of, score_candidates, score_group

PRE_KEYS = ("attn.ragged", "attn.ragged_wave", "attn.ragged_step", "attn.pair")
START = {"ragged_step": 0.5, "pair": 1.5}
PAIR_SLOTS = 2  # CTAs of the FA2 forward kernel one SM runs at once (128 threads, <= 64 KiB shared memory each)


def prefill_time_candidate(P, batch, heads, q_len, kv_len, d, dv, causal, peak, details=False, blocks=None):
    """hwmodels.gpu.attention_prefill_time (as committed) plus the candidate terms where P carries them."""
    bq, bk = blocks or gpu._fa2_blocks(d)
    nq = math.ceil(q_len / bq)
    nk = math.ceil(kv_len / bk)
    offset = kv_len - q_len
    i = np.arange(nq)
    if causal:
        vis = np.minimum(offset + (i + 1) * bq, kv_len)
        blocks = np.ceil(vis / bk)
    else:
        blocks = np.full(nq, float(nk))
    t_blk = 2.0 * bq * bk * (d + dv + P.values.get("attn.soft_c", 0.0) * (128 + 128)) / (peak / P.sm_count * P["attn.eff"])
    t_cta = blocks * t_blk + P["attn.cta_overhead"]
    if causal and q_len % bq != 0 and "attn.ragged_step" in P.values:  # C: one more masking iteration per CTA
        t_cta = t_cta + P["attn.ragged_step"] * t_blk
    work = batch * heads * t_cta.sum()
    t_comp = work / P.sm_count + P["attn.tail"] * t_cta.max()
    ctas = batch * heads * nq
    if _gp.ATTN_WAVE_CAP:
        if "attn.pair" in P.values and ctas > P.sm_count:  # P: two co-resident CTAs per SM
            cap = math.ceil(ctas / (PAIR_SLOTS * P.sm_count)) * P["attn.pair"] * float(t_cta.max())
        else:
            cap = math.ceil(ctas / P.sm_count) * float(t_cta.max())
        t_comp = min(t_comp, cap)
    t = P["attn.floor"] + t_comp + gpu.ragged_time(P, ctas, q_len, bq, causal)
    if details:
        return t, {"t_compute_s": t_comp, "score_blocks": float(blocks.sum()) * batch * heads,
                   "block_q_k": (bq, bk), "critical_path_s": float(t_cta.max()), "splits": 1}
    return t


@contextlib.contextmanager
def candidate_code():
    """The candidates' code for this process: the candidate prefill time, and fit._prefill_optional adding their
    parameters where the terms switch them on (`ragged_step`, `pair`: tuples of backends)."""
    orig_time, orig_opt = gpu.attention_prefill_time, fit._prefill_optional

    def optional(pre, backend, terms, values):
        names = []
        for key in ("ragged_step", "pair"):
            if backend in (terms.get(key) or ()):
                values.setdefault(pre + key, START[key])
                names.append(pre + key)
        return names + orig_opt(pre, backend, terms, values)

    gpu.attention_prefill_time, fit._prefill_optional = prefill_time_candidate, optional
    try:
        yield
    finally:
        gpu.attention_prefill_time, fit._prefill_optional = orig_time, orig_opt


def _terms(hw_name, **on):
    t = dict(fit.TERM_SETS[fit.DEFAULT_SET[hw_name]])
    t.update(on)
    return t


FA2 = ("fa2",)
PREFILL = (({}, "A current form (round 14)"),
           ({"ragged_step": FA2}, "C + uneven kernel's masking iteration per CTA"),
           ({"ragged_step": FA2, "ragged_wave": False}, "C2 = C without the single-wave time"),
           ({"pair": FA2}, "P + two co-resident CTAs per SM"),
           ({"ragged_step": FA2, "pair": FA2}, "CP = C + P"),
           ({"ragged_step": FA2, "ragged_wave": False, "pair": FA2}, "C2P = C2 + P"))


def run_prefill(hw_name, train, val, hw, lines):
    tr, va = rows_of(train, val, ("attention_prefill_fa2",))
    with candidate_code():
        return score_candidates(
            tr, va, PREFILL,
            lambda on, label: score_group(hw_name, hw, tr, va, "attention_prefill", _terms(hw_name, **on), lines,
                                          label, drop=PRE_KEYS),
            lines, f"{hw_name} FA2 prefill fit rows", rule=choose_resolved)


if __name__ == "__main__":  # the record is round 15's: fit10 and round 16 changed the rows and the calibration
    raise SystemExit("error: s27_fa2_waves.txt is a record of commit 82c7e2e's fit rows and calibration (round 15); "
                     "fit suite 10 and round 16 changed both, so a run here would overwrite it with other figures "
                     "(s28_fa2_waves_fit10 is that re-scoring). Reproduce it there: git worktree add ../s27 82c7e2e "
                     "&& cd ../s27 && PYTHONPATH=. python validation/model_selection/s27_fa2_waves.py")
