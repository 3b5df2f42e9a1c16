"""Round 19 candidate (session 27), FA2-pinned prefill on the H200: round 18's form (the kernel FlashAttention-2 runs,
chosen on the H100's rows by s33) fitted on the train part of the H200's fit rows and scored once on the validation
part carved from them (dataset.carve_validation, crc32 mod 5). No held-out suite is read.

Why. Round 18 priced the H100's FA2-pinned prefill as the kernels FlashAttention-2 runs (hwmodels.gpu
fa2_prefill_kernels_time: the split-KV kernel and its combine where FA2's dispatch rule splits, the uneven-length
terms only past a one-pass launch's masking steps, CTAs scheduled greedily onto two slots per SM). The kernels, their
blocks and the dispatch rule are PyTorch's vendored FlashAttention-2 and the SM count (132) is the same on the H200,
so the form is the H200's question too; s33 did not score the H200 (no profile or probe was taken there, and none is
now: the premise that the uneven cost sits past the masking steps is the H100 probe's). The H200 keeps round 14's
form (one one-pass kernel for every launch, `attn.ragged` / `attn.ragged_wave` on every uneven causal launch).
Disclosed before this script was written: the H200's seen held-out suites' FA2-pinned prefill medians (5.1 heldout18,
5.7 heldout16, 5.6 heldout10; validation/heldout_tables.txt), which motivate a round for this class; no held-out row
enters this script.

Candidates (each re-fits the FA2 prefill group from fit.INITIAL with the H200's term set, as s33 did on the H100;
`attn.ragged`, `attn.ragged_wave` and round 18's keys restart from their start values in every candidate):
  A  the H200's current form (the h200 term set: round 14's FA2 prefill);
  K  A with round 18's FA2 prefill (term fa2_prefill_kernels: attn.prefill_kernels recorded, attn.skv_combine and
     attn.skv_combine_bw fitted; attn.tail has no effect under it and is counted out).
No candidate code: K is the committed model's form (hwmodels.gpu.fa2_prefill_kernels_time).

Disclosed: these validation rows were scored before by s11_fa2ew_candidates and s12_fa2_candidates (this is their
third scoring); the residual selections s18 - s20 read them leave-one-suite-out.

Rule: RULE_round7.md (common.choose_resolved), as s33: the target statistic is the median where only the median
misses the goal on the current form's validation figures, else the p90; a candidate is eligible only if its gain on
that statistic is resolved (95 % paired-bootstrap interval of candidate - current below 0); among the current form
and the eligible, the lowest target statistic, one with fewer parameters within 1 point (median) / 2 points (p90)
preferred.

Run from the repository root: PYTHONPATH=. python validation/model_selection/s35_h200_fa2_kernels.py
Writes validation/model_selection/s35_h200_fa2_kernels.txt.
"""
from pathlib import Path

from cosim.calibrate import fit
from validation.model_selection import s27_fa2_waves as s27
from validation.model_selection.common import rows_of, run_one_gpu, score_fa2_prefill

OUT = Path("validation/model_selection/s35_h200_fa2_kernels.txt")  # relative: no machine path in the record
R18_KEYS = ("attn.prefill_kernels", "attn.skv_combine", "attn.skv_combine_bw")
H200_SET = "h200"  # the H200's committed term set (fit.DEFAULT_SET) at the time of this selection

PREFILL = (({}, "A current form (h200 set: round 14's FA2 prefill)", 0),
           ({"fa2_prefill_kernels": True}, "K = A + round 18's FA2 kernels form", -1))


def run_prefill(hw_name, train, val, hw, lines):
    tr, va = rows_of(train, val, ("attention_prefill_fa2",))
    return score_fa2_prefill(hw_name, hw, tr, va, lines, PREFILL, fit.TERM_SETS[H200_SET], s27.PRE_KEYS + R18_KEYS)


if __name__ == "__main__":
    run_one_gpu(OUT, run_prefill, "h200", "s35 scores the H200 only (s33 chose the H100's form)")
