"""After round 21's record (session 31): the committed H100 model (round 19's, frozen for heldout24; round 21 chose
nothing, so unchanged) on fit suite 11's 1,103 GEMM shapes. fit11 is drawn with the held-out suites' own GEMM
construction, measured after the freeze and never fitted or chosen on; it is NOT a held-out suite under the rules
(validation/fit11_rules.md made it round 21's validation rows), so these figures are information beside the held-out
tables, not a score. What they add: about six held-out suites' worth of GEMM shapes, so the p90's sampling spread is
visible (a 95 % bootstrap interval; 4,000 resamples, seed 20261207), against heldout24's 184 shapes a class missed
by 0.003 points on.

Per class, analytical |pred / meas - 1| median / p90 % as `cosim validate` prices them (the measured-residual correction
included), with and without rows whose repeats spread > 50 % (dataset.MAX_SPREAD; the held-out tables' exclusion rule).

  PYTHONPATH=. python validation/diagnostics/fit11_committed_model.py [<out.txt>]
"""
import sys
from pathlib import Path

import numpy as np

from cosim.validate import ape, validate

RUN = "validation/raw_h100_run24/ops.csv"
RESAMPLES, SEED = 4000, 20261207


def p90_interval(err):
    idx = np.random.default_rng(SEED).integers(0, len(err), size=(RESAMPLES, len(err)))
    return np.percentile(np.percentile(err[idx], 90, axis=1), [2.5, 97.5])


def main(argv):
    lines = [f"# {Path(__file__).name}: the committed H100 model on fit suite 11 ({RUN}); information, not a score",
             "rows | class | n | analytical median / p90 % | p90 95 % interval | roofline median / p90 %"]
    for include in (True, False):
        r = validate("h100_sxm", RUN, split="fit", include_unreliable=include)
        for cls in ("gemm_bf16", "gemm_fp8"):
            rows = [o for o in r.ops if o["cls"] == cls]
            err = ape([o["analytical_s"] for o in rows], [o["measured_s"] for o in rows])
            lo, hi = p90_interval(err)
            a, f = r.classes[cls]["analytical"], r.classes[cls]["roofline"]
            lines.append(f"{'all' if include else 'spread <= 50 %':<14} | {cls:<9} | {a['n']:4d} | "
                         f"{a['median']:5.2f} / {a['p90']:6.3f} | [{lo:5.2f}, {hi:5.2f}] | "
                         f"{f['median']:5.1f} / {f['p90']:5.1f}")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if len(argv) > 1:
        Path(argv[1]).write_text(text)


if __name__ == "__main__":
    main(sys.argv)
