"""Round 22 (session 32): s26's residual selection, candidates, split and rule unchanged, run on the H100's fit rows as
they are after fit suites 11 and 12 were listed and round 22's re-fit (GEMM tiles from the nvjet menus; no held-out
suite is read), as validation/fit12_rules.md item 5 fixed before fit12 was measured.

Why. The re-fit moves every H100 GEMM price and adds 5,140 GEMM fit rows of the held-out GEMM distribution (fit11,
fit12); whether GEMM bf16 (kept analytical since round 15) or any other class now gains from its neighbours is what
s26's selection decides. Its "fit9 rows" column is information only, as there.

Candidates, classes, split and rule: s26_fit9_residuals.py's (its `run`, imported unchanged): s20's candidates A - H
per class, one fit suite left out (the H100's fit suites default, fit3 .. fit12), the round-7 rule.

Run from the repository root: PYTHONPATH=. python validation/model_selection/s39_fit12_residuals.py
Writes validation/model_selection/s39_fit12_residuals.txt.
"""
from pathlib import Path

from validation.model_selection import s26_fit9_residuals as s26
from validation.model_selection.common import per_gpu_record

OUT = Path("validation/model_selection/s39_fit12_residuals.txt")

if __name__ == "__main__":
    import sys
    if sys.argv[1:] not in ([], ["h100_sxm"]):
        raise SystemExit("error: s39 scores the H100 only (the H200's fit rows have no fit9 - fit12)")
    sys.argv[1:] = ["h100_sxm"]
    per_gpu_record(OUT, s26.run)
