"""Session-8 third round (issue 11): the cuDNN decode start-value fix, checked on the validation split
the selection used (validation/model_selection/s8b_candidates.py: fit rows only, dataset.carve_validation).

Until the fix, cosim.calibrate.fit started cuDNN's decode parameters from FA2's fitted values, so
`attn_cudnn.combine` started at FA2's 1 ps floor and stayed there, while the selection started every
cuDNN decode key from fit.INITIAL: the committed cuDNN decode was not the candidate validated. Now
fit.backend_start starts them where the selection did. This script scores, on the same train /
validation rows (cuDNN pinned + default backend decode):
- a committed calibration file (`--calibration FILE`, default the committed h200.yaml), fitted on all
  fit rows, so its validation score is no held-out figure: it shows the file holds the validated form;
- the validated candidate B again (s8b's score_decode: fitted on the train rows from fit.INITIAL);
- fit.backend_start against score_decode's start, key by key (the fix is that they agree).

Run from the repository root: PYTHONPATH=. python validation/model_selection/s8c_fix.py [--calibration FILE ...]
(its output at the fix's commit, with the calibration before the fix, is in s8c_fix.md)
"""
import argparse

import yaml

from cosim.calibrate import dataset, fit
from hwmodels.gpu import GpuParams, scaled_to
from hwmodels.gpu_calibration import parse_section
from validation.model_selection.common import CSV, DEC_KEYS, HEADER, rows_of, score_decode, stats
from validation.model_selection.s8b_candidates import _terms

DEFAULT_CAL = "cosim/configs/hw/calibration/h200.yaml"


def score_file(path, hw, tr, va, lines):
    P = parse_section(yaml.safe_load(open(path)), path)
    P = scaled_to(P, hw.main_memory.bandwidth_Bps)
    P = GpuParams(values=P.values, sm_count=P.sm_count, l2_bytes=P.l2_bytes, provenance=path,
                  attention_default=P.attention_default)
    t, v = stats(fit.predict(P, tr, hw), tr), stats(fit.predict(P, va, hw), va)
    lines.append(f"{'calibration ' + path:<62} |   - | {t[0]:5.1f} / {t[1]:5.1f} | {v[0]:5.1f} / {v[1]:5.1f}"
                 f"  (attn_cudnn.combine {P.values.get('attn_cudnn.combine', float('nan')):.4g} s)")
    return t, v


def decode_rows():
    """The cuDNN decode (pinned + default backend) train and validation rows the selection used."""
    hw = fit.base_spec("h200")
    meas = [m for m in dataset.load_ops(CSV["h200"]) if m.split == "fit" and m.op is not None]
    train, val = dataset.carve_validation(meas)
    return hw, *rows_of(train, val, ("attention_decode_cudnn", "attention_decode"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--calibration", action="append", help="calibration file(s) to score (default: committed h200)")
    args = ap.parse_args()
    hw, tr, va = decode_rows()
    lines = [f"h200 cuDNN decode fit rows (pinned + default backend): {len(tr)} train, {len(va)} validation", HEADER]
    for path in args.calibration or [DEFAULT_CAL]:
        score_file(path, hw, tr, va, lines)
    score_decode("h200", hw, tr, va, "cudnn", _terms("h200", dec_qhead_ctas=("cudnn",)), lines,
                 "validated candidate B (s8b score_decode, train rows)")
    fa2_floor = {f"attn.{k}": 1e-12 for k in DEC_KEYS}  # FA2 at the floor must not move the start
    for k in DEC_KEYS:
        got = fit.backend_start(k, {**fit.INITIAL, **fa2_floor})
        lines.append(f"start attn_cudnn.{k}: fit.backend_start {got:.4g}, selection {fit.INITIAL[f'attn.{k}']:.4g}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
