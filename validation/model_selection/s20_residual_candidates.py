"""Round 11 (session 19): the measured-residual correction of the attention classes compares fit rows by the KV
length's row alignment; chosen per class and GPU on the fit rows only (no held-out suite is read).

Why. Hugging Face eager attention prefill missed the goal on every fresh suite since the correction began (heldout14
to heldout16, both GPUs, ~7 / 20), and round 10's neighbour correction did not help it on the fit rows either
(s19_residual_candidates.txt: K = 8 worsened the median). Its neighbours in log2 shape space are the wrong ones: a KV
length of 511 and one of 512 are neighbours there, yet eager attention materialises (batch x heads, q_len, kv_len)
score matrices whose rows of kv_len bf16 elements start on a multiple of 2 x gcd(kv_len, 8) bytes; the score GEMMs
(cuBLAS picks narrower-alignment kernels) and the mask / softmax / cast passes (no 16-byte vector loads) slow down by
an amount that depends on that alignment. The analytical model has one multiplier for every unaligned length
(unfused.unaligned_mult); session 11 scored an odd-length multiplier as an analytical term on prefill and decode rows
together and the rule kept the one-multiplier form (s11_unfused_candidates.txt).

Exploration before this file (disclosed): the lead looked only at the TRAIN part of dataset.carve_validation's crc32
split of each GPU's fit rows, with the analytical model alone (gpu.analytical_params). Eager prefill's log-residual
means by alignment class (kv_len's largest power-of-two divisor up to 8): H200 odd +10.9 %, 2 -6.4 %, 4 -6.0 %,
8 +2.3 % (H100 +10.1, -5.4, -4.6, +1.1); its train errors 5.6 / 17.0 (H200), 5.7 / 16.3 (H100) with aligned rows at
2.8 / 6.0 and 2.5 / 8.9. No other attention class showed a mean beyond +-1.8 % by alignment class. The plain
alignment-class mean, fitted and scored on those train rows (in-sample), gave 4.4 / 12.4 and 4.8 / 13.2. No
candidate below had been scored on the decision split when this docstring was written.

The candidates (every attention class of each GPU; GEMM and elementwise classes keep s19's choices, since the
alignment is the KV row's). The correction is the model's own lookup (hwmodels.gpu_residuals.ResidualTable, built in
memory by groups_of), so the range rule and the structures it does not correct are scored exactly as priced:
  A  no correction (the analytical model alone)
  B  K = 8                       (round 10's form)
  C  K = 15                      (round 10's form)
  E  K = 8, rows of the op's KV alignment class only
  F  K = 15, rows of the op's KV alignment class only
  G  k = all, rows of the op's KV alignment class only: the plain mean residual of each (kind, alignment class)
  H  k = all: the plain mean residual of the class (one factor; G's control without the alignment)
Parameters counted: B, C, E, F the stored residuals of the class plus K (as s18 and s19); G the number of (kind,
alignment class) cells with rows; H one.

Decision split and rule as round 10 (s18's docstring): leave one fit suite out (each suite's rows corrected from the
other fit suites' rows only; H200: default, fit3 .. fit8; H100: its runs 4 .. 10, the same suites), the round-7 rule
per class and GPU (common.choose_resolved: target statistic, resolved paired-bootstrap gain over A, fewer parameters
within the margin). Because the model's lookup is used, A - C differ from s19's record by the range rule (at most
0.15 points there: s19_range_rule.txt); s19's crc32 "information" column is not printed (that split is seen).

Review note, after scoring (nothing above changed): the "at most 0.15 points" holds for the classes s19 chose only
(s19_range_rule.txt covers those); for HF eager prefill, B and C moved 0.2 - 0.3 points of median from s19's record
(H200 B 7.3 -> 7.0, H100 B 6.7 -> 7.0). No choice depends on it.
"""
from pathlib import Path

import numpy as np

from cosim.calibrate import dataset, fit
from hwmodels import gpu, gpu_residuals
from hwmodels.gpu import analytical_params
from hwmodels.gpu_residuals import ClassRule, ResidualTable
from hwmodels.spec import load_hw
from validation.model_selection.common import CSV, choose_resolved, per_gpu_record
from validation.model_selection.s19_residual_candidates import pred_over_meas

OUT = Path(__file__).with_suffix(".txt")
CANDIDATES = (("A no correction", None), ("B K = 8", ClassRule(8, False)), ("C K = 15", ClassRule(15, False)),
              ("E K = 8, same KV alignment", ClassRule(8, False, True)),
              ("F K = 15, same KV alignment", ClassRule(15, False, True)),
              ("G mean per kind and KV alignment", ClassRule(None, False, True)),
              ("H mean of the class", ClassRule(None, False, False)))


def n_params(rule, rows) -> int:
    if rule is None:
        return 0
    if rule.k is not None:
        return len(rows) + 1
    if not rule.by_alignment:
        return 1
    return len({(kind, int(gpu_residuals.kv_alignment(int(f["kv_len"])))) for _, kind, f, _ in rows})


def table_rows(meas, idx, cls, logr) -> dict:
    """{row index: (class, kind, features, log residual)} of the rows `idx` of class `cls`, as
    cosim.calibrate.residuals.table_rows writes them (rows of unmeasured structure left out)."""
    rows = {}
    for i in idx:
        m = meas[i]
        if gpu_residuals.unmeasured_structure(cls, m.op.dims, gpu.stored_formats(m.op)):
            continue
        names = gpu_residuals.feature_names(m.op.kind, cls)
        x = gpu_residuals.features_of(m.op.dims, names)
        if x is not None:
            rows[i] = (cls, m.op.kind, dict(zip(names, x)), float(logr[i]))
    return rows


def suite_out_errors(meas, idx, rows, cls, rule, logr, suites) -> np.ndarray:
    """|corrected / measured - 1| % of each row of `idx`, its correction (`rule`; None: none) built by the model's own
    lookup from the other suites' rows only."""
    err = np.zeros(len(idx))
    for s in suites:
        table = None if rule is None else ResidualTable(
            rules={cls: rule}, groups=gpu_residuals.groups_of(r for i, r in rows.items() if meas[i].suite != s),
            source="memory")
        for j, i in enumerate(idx):
            m = meas[i]
            if m.suite != s:
                continue
            c = table.correction(cls, m.op.kind, m.op.dims, gpu.stored_formats(m.op)) if table else None
            log_c = float(np.log(c.factor)) if isinstance(c, gpu_residuals.Correction) else 0.0
            err[j] = pred_over_meas(logr[i], log_c)
    return err


def run(hw_name, lines):
    hw = fit.base_spec(hw_name)
    meas = [m for m in dataset.load_ops(CSV[hw_name]) if m.split == "fit" and m.op is not None and m.reliable
            and m.cls.startswith("attention")]
    pred = fit.predict(analytical_params(load_hw(hw_name)), meas, hw)
    logr = np.log(np.array([m.time_s for m in meas]) / pred)
    suites = sorted({m.suite for m in meas})
    lines += [f"{hw_name}: {len(meas)} reliable attention fit rows, suites {', '.join(suites)}",
              "cand | params | suite-out med/p90 (decides)"]
    for cls in sorted({m.cls for m in meas}):
        idx = [i for i, m in enumerate(meas) if m.cls == cls]
        rows = table_rows(meas, idx, cls, logr)
        lines.append(f"{hw_name} {cls}: {len(idx)} rows")
        res = []
        for label, rule in CANDIDATES:
            err = suite_out_errors(meas, idx, rows, cls, rule, logr, suites)
            so = (float(np.median(err)), float(np.percentile(err, 90)))
            n = n_params(rule, list(rows.values()))
            lines.append(f"{label:<40} | {n:5d} | {so[0]:5.1f} / {so[1]:5.1f}")
            res.append((label, n, None, so, err))
        choose_resolved(res, lines)


def main():
    per_gpu_record(OUT, run)


if __name__ == "__main__":
    main()
