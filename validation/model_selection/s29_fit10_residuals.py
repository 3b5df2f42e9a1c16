"""Round 17 (session 24): s26's residual selection, candidates, split and rule unchanged, run on the H100's fit rows as
they are after fit suite 10 and round 16's re-fit (no held-out suite is read).

Why. Round 16 re-fitted the H100 with fit10 (240 prefill shapes on all four attention implementations, 240 of them HF
eager prefill rows) but kept s26's residual choices without re-running s26 on the new fit rows. The session's review
(after heldout21 was scored with round 16) re-ran s26 unchanged on them and found the rule would choose E (K 8 within
the op's KV alignment class) for HF eager prefill where round 16 kept G; heldout21 had missed that class's median (5.3).
Disclosed: so this round's motivation comes after heldout21's score; the choice itself is this script's mechanical
output on fit rows, and it is tested by a new suite (heldout22) drawn and frozen after it, not by heldout21.

Candidates, classes, split and rule: s26_fit9_residuals.py's (its `run`, imported unchanged): s20's candidates A - H per
class, one fit suite left out (the H100's fit suites default, fit3 .. fit10), the round-7 rule.

Run from the repository root: PYTHONPATH=. python validation/model_selection/s29_fit10_residuals.py
Writes validation/model_selection/s29_fit10_residuals.txt.
"""
from pathlib import Path

from validation.model_selection import s26_fit9_residuals as s26
from validation.model_selection.common import per_gpu_record

OUT = Path("validation/model_selection/s29_fit10_residuals.txt")

if __name__ == "__main__":
    import sys
    if sys.argv[1:] not in ([], ["h100_sxm"]):
        raise SystemExit("error: s29 scores the H100 only (the H200's fit rows have no fit9 / fit10)")
    sys.argv[1:] = ["h100_sxm"]
    per_gpu_record(OUT, s26.run)
