"""Session 11 (issue 11 round 6), after the GEMM choice (s11_gemm_candidates.txt: B, fp8 GEMMs without stream-K,
chosen over A, the session-10 form, on validation p90 13.4 -> 13.2 at equal parameter count): is that gain larger
than the validation split can resolve? Fit rows only (dataset.carve_validation; no held-out suite is read).

A and B are fitted on the train part exactly as the selection did (common.fit_group, the H200 term set with and
without gemm_fp8_no_stream_k); both are scored on the same 419 validation rows; the p90 of |pred/meas - 1| of B
minus A's is re-computed on 4,000 paired resamples of those rows (seed 20261205) for a 95 % percentile interval.
This is a diagnosis for the held-out rules (validation/heldout12_rules.md says it before heldout12 is measured),
not a selection: no model change follows from it.

Run from the repository root: PYTHONPATH=. python validation/model_selection/s11_gemm_bootstrap.py
Writes validation/model_selection/s11_gemm_bootstrap.txt.
"""
import os
import time
from pathlib import Path

import numpy as np

from cosim.calibrate import dataset, fit
from hwmodels.gpu import GpuParams
from validation.model_selection.common import CSV, fit_group, rows_of

OUT = Path("validation/model_selection/s11_gemm_bootstrap.txt")
RESAMPLES, SEED = 4000, 20261205


def errors(hw, tr, va, terms):
    values, sms, l2, _ = fit_group("h200", hw, tr, "gemm", terms)
    P = GpuParams(values=values, sm_count=sms, l2_bytes=l2, provenance="candidate", attention_default="fa2")
    return np.abs(fit.predict(P, va, hw) / np.array([m.time_s for m in va]) - 1) * 100


def main():
    t0 = time.time()
    hw = fit.base_spec("h200")
    meas = [m for m in dataset.load_ops(CSV["h200"]) if m.split == "fit" and m.op is not None]
    tr, va = rows_of(*dataset.carve_validation(meas), ("gemm_bf16", "gemm_fp8"))
    e_a = errors(hw, tr, va, {**fit.TERMS, "gemm_fp8_no_stream_k": False})
    e_b = errors(hw, tr, va, dict(fit.TERMS))
    p90 = lambda e: float(np.percentile(e, 90))  # noqa: E731
    rng = np.random.default_rng(SEED)
    idx = rng.integers(0, len(va), size=(RESAMPLES, len(va)))
    diff = np.array([p90(e_b[i]) - p90(e_a[i]) for i in idx])
    lo, hi = np.percentile(diff, [2.5, 97.5])
    lines = [f"# {OUT.with_suffix('.py').as_posix()} (fit rows only; H200 GEMM, {len(tr)} train / {len(va)} validation rows)", "",
             f"A session-10 form, validation p90: {p90(e_a):.2f}",
             f"B fp8 without stream-K, validation p90: {p90(e_b):.2f}",
             f"B - A: {p90(e_b) - p90(e_a):+.2f} points; paired bootstrap ({RESAMPLES} resamples, seed {SEED}): "
             f"95 % interval [{lo:+.2f}, {hi:+.2f}], share of resamples with B below A {np.mean(diff < 0):.2f}",
             f"(load {os.getloadavg()[0]:.1f}, {time.time() - t0:.0f} s)"]
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
