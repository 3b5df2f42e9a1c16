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


OUT = Path("validation/model_selection/s29_fit10_residuals.txt")

if __name__ == "__main__":  # the record is round 17's: fit11, fit12 and round 22 (session 32) changed the rows
    raise SystemExit("error: s29_fit10_residuals.txt is a record of round 17's fit rows and calibration; fit suites 11 "
                     "and 12 and round 22 changed both, so a run here would overwrite it with other figures (s39 is "
                     "the same selection on today's rows). Reproduce it at d811af4 in a git worktree.")
