"""The measured-residual table a calibration carries (hwmodels.gpu_residuals; issue 11, round 9).

After the analytical parameters are fitted, every reliable fit row of a corrected class contributes its
log(measured / analytical) at its shape. Which classes are corrected, with how many neighbours, was chosen per GPU on
the fit rows, leaving one fit suite out (validation/model_selection/s19_residual_candidates.txt and, for attention,
s20_residual_candidates.txt; the H100's since round 15, s26_fit9_residuals.txt, re-run with fit10 for round 17 as
s29_fit10_residuals.txt and with fit11 and fit12 for round 22 as s39_fit12_residuals.txt; the round-7 rule):
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from cosim.calibrate import dataset
from hwmodels import gpu, gpu_residuals
from workloads.io import InputError

# The choices, per GPU and class: (K or "all", shrink, by KV alignment). Round 10 (s19_residual_candidates.txt: s18's
# candidates scored on |pred / meas - 1| against the analytical model alone; B: K 8, C: K 15) chose the GEMM classes
# and decode attention; round 11 (s20_residual_candidates.txt, attention classes only) kept those and chose E for
# Hugging Face eager prefill: K 8 among the fit rows whose KV length has the op's row alignment. Classes kept
# analytical (A) are absent. Round 9 (s18's choices, frozen at fe59c04 for heldout15) scored |meas / pred - 1|.
CHOSEN = {
    "h200": {"attention_decode": (15, False, False), "attention_decode_cudnn": (15, False, False),
             "attention_decode_unfused": (8, False, False), "attention_prefill_unfused": (8, False, True),
             "gemm_bf16": (8, False, False), "gemm_fp8": (15, False, False)},
    # round 15 (s26_fit9_residuals.txt: the H100's fit rows with fit suite 9, s20's candidates, one fit suite left out):
    # GEMM bf16 kept analytical (no gain resolved; K 8 since round 10), HF eager prefill the plain mean per (kind, KV
    # alignment class) (G; E since round 11); round 17 (s29_fit10_residuals.txt: s26 re-run on the fit rows with fit10):
    # HF eager prefill E again (K 8 within its KV alignment class); the other choices unchanged; round 22
    # (s39_fit12_residuals.txt: s26 re-run on the fit rows with fit11 and fit12 after round 22's re-fit): unchanged
    "h100_sxm": {"attention_decode_unfused": (8, False, False), "attention_prefill_unfused": (8, False, True),
                 "gemm_fp8": (15, False, False)},
}
SELECTION = ("validation/model_selection/s19_residual_candidates.txt; attention: "
             "validation/model_selection/s20_residual_candidates.txt")
SELECTION_BY_HW = {"h100_sxm": "validation/model_selection/s39_fit12_residuals.txt (round 22: s26's selection re-run "
                               "with fit suites 9 - 12; the same choices as round 17's s29_fit10_residuals.txt)"}


def rules_for(hw_name: str) -> tuple[dict, str]:
    """(class -> {k, shrink}, provenance line) of a GPU: its own selection, else the H200's (said: not validated on
    that GPU)."""
    stem = Path(str(hw_name)).stem
    own = stem in CHOSEN
    chosen = CHOSEN[stem if own else "h200"]
    line = (f"classes and neighbours chosen on {stem}'s fit rows, one fit suite left out "
            f"({SELECTION_BY_HW.get(stem, SELECTION)})" if own else
            f"the H200's classes and neighbours ({SELECTION}): {stem} has no selection of its own, not validated "
            f"on this GPU")
    return {c: {"k": k, "shrink": s, **({"by_alignment": True} if a else {})} for c, (k, s, a) in chosen.items()}, line


def table_rows(P, meas, hw, classes, predict) -> list:
    """(class, kind, features, log residual) of every reliable fit row of `classes`, priced by P's analytical model
    alone (any residual table P carries is ignored: a table is never built on another). `predict`: the fitter's
    (cosim.calibrate.fit.predict, passed in: fit imports this module)."""
    P = dataclasses.replace(P, residuals=None)
    rows = [m for m in meas if m.split == "fit" and m.reliable and m.op is not None and m.cls in classes]
    for m in rows:  # the model's class of the op must be the measurement's, or a lookup could never find the row
        if gpu.residual_class(m.op) != m.cls:
            raise InputError(f"{m.row.get('name', m.op.name)}: class: measured as {m.cls}, the model calls it "
                             f"{gpu.residual_class(m.op)}; expected them to agree (hwmodels.gpu.residual_class)")
    pred = predict(P, rows, hw)
    out = []
    for m, p in zip(rows, pred):
        if gpu_residuals.unmeasured_structure(m.cls, m.op.dims, gpu.stored_formats(m.op)):
            continue
        names = gpu_residuals.feature_names(m.op.kind, m.cls)
        x = gpu_residuals.features_of(m.op.dims, names)
        if x is not None and p > 0:
            out.append((m.cls, m.op.kind, dict(zip(names, x)), float(np.log(m.time_s / p))))
    return out


def build(cal_path: Path, P, ops_csv, hw, hw_name: str, predict) -> dict:
    """Write the table beside the calibration (<stem>_residuals.csv); the calibration's `residual_correction`
    block."""
    rules, line = rules_for(hw_name)
    rows = table_rows(P, dataset.load_ops(ops_csv), hw, set(rules), predict)
    table = Path(cal_path).with_name(Path(cal_path).stem + "_residuals.csv")
    n = gpu_residuals.write_table(table, rows)
    return {"table": table.name, "rows": n, "selection": line, "classes": rules}


def add_to_calibration(cal_path, ops_csv, hw_name: str, hw, predict) -> dict:
    """Give an existing calibration file its residual table without re-fitting it (`cosim calibrate
    --residuals-only`): its parameters are kept byte for byte; a previous residual_correction block is replaced."""
    import yaml

    from hwmodels.gpu_calibration import parse_section

    cal_path = Path(cal_path)
    if not cal_path.is_file():
        raise InputError(f"{cal_path}: calibration: missing; expected a calibration YAML written by cosim calibrate")
    text = cal_path.read_text()
    doc = yaml.safe_load(text)
    if not isinstance(doc, dict) or "params" not in doc:
        raise InputError(f"{cal_path}: params: missing; expected a calibration YAML written by cosim calibrate")
    P = parse_section({k: v for k, v in doc.items() if k != "residual_correction"}, str(cal_path))
    block = build(cal_path, P, ops_csv, hw, hw_name, predict)
    kept, skipping = [], False
    for line in text.splitlines(keepends=True):
        if line.startswith("residual_correction:"):
            skipping = True
            continue
        if skipping and (line.startswith(" ") or not line.strip()):
            continue
        skipping = False
        kept.append(line)
    body = "".join(kept)
    if body and not body.endswith("\n"):  # a file without a final newline: the block starts on its own line
        body += "\n"
    cal_path.write_text(body + yaml.safe_dump({"residual_correction": block}, sort_keys=False, width=110))
    return block
