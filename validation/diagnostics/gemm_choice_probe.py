"""How much of the H100's bf16 GEMM error is cuBLAS's kernel choice (a diagnostic, issue 11, session 28; train rows
only: the H100's fit rows, the validation part carved by dataset.carve_validation is never read, no held-out suite).

Each variant re-fits the GEMM group (common.fit_group: every GEMM parameter from fit.INITIAL, the r18_h100 term set)
on the train rows and prints the bf16 train rows' in-sample |pred / meas - 1| median / p90 (%):

  A   the committed form (gemm.tile_set 1's tile list, stream-K among the library's choices);
  M   a menu like nvjet's: token tiles 8 - 256 in steps of 8 x the weight tiles the profile shows (either way round;
      192 x 192 among them);
  MN  M without stream-K for bf16 (the profile has no stream-K kernel: every kernel is data-parallel or split-K);
  O   an oracle: each row priced at its profiled kernel's tile alone (weight rows x tokens, as the kernel name reads;
      gemm.tile_set's 192 x 192 is not added), without stream-K, the split still the model's;
  OK  O with stream-K kept; OS  O with the tile read the other way round (tokens x weight rows);
  OL  O with the MMA time floored by the operand traffic of the CTAs running at once through L2 (one more parameter,
      gemm.l2_bw): is the slow few-tile long-K kernels' time an L2 bandwidth limit?

Then, for O, the bf16 train rows' signed error by the kernel's cluster shape and raster (name fields), to show what
a correct tile leaves to the per-kernel rate. Last, whether cuBLAS's choice can be learnt from the profiled shapes:
each train shape takes the kernel of its nearest other train shape (log m, log n, log k; leave one shape out), priced
at that kernel's tile (NN) and with a per-family time factor (the family's median log ratio on the train rows, and
leaving the shape's own rows out), beside the oracle with the same factor.

  PYTHONPATH=. python validation/diagnostics/gemm_choice_probe.py [<out.txt>]
Reads validation/diagnostics/h100_kernel_profile.csv (kernel_profile.py's fit-shape profile).
"""
from __future__ import annotations

import csv
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from cosim.calibrate import dataset, fit
from hwmodels import gpu
from hwmodels.gpu import GpuParams
from validation.model_selection.common import CSV, fit_group, stats

HW = "h100_sxm"
PROFILE = Path("validation/diagnostics/h100_kernel_profile.csv")
# nvjet_sm90_tst_<weight rows>x<tokens>_<K>x<stages>_<cluster>_<raster>_...
NAME = re.compile(r"_tst_(\d+)x(\d+)_\d+x\d+_(\d)x(\d)_([vh])_")
TOKENS = tuple(range(8, 257, 8))
WEIGHTS = (64, 80, 96, 112, 128, 144, 160, 168, 176, 192, 208, 256, 320, 384, 512)
MENU = tuple((t, w) for t in TOKENS for w in WEIGHTS) + tuple((w, t) for t in TOKENS for w in WEIGHTS)
MODEL_GEMM_TIME = gpu.gemm_time  # the model's own, whatever a variant patches in


def shape_of(m) -> tuple:
    """(m, n, k) of a GEMM measurement."""
    return m.op.dims["m"], m.op.dims["n"], m.op.dims["k"]


def profiled_kernels(path=PROFILE, case="gemm_bf16"):
    """(m, n, k) -> the main kernel's name (the longest of call 0) of each profiled GEMM fit shape of `case` in the
    kernel_profile.py record `path` (by default the bf16 fit shapes)."""
    best = {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            if r["case"] != case or r["call"] != "0":
                continue
            d = json.loads(r["dims"])
            key = (d["m"], d["n"], d["k"])
            if key not in best or float(r["dur_us"]) > best[key][1]:
                best[key] = (r["kernel"], float(r["dur_us"]))
    return {k: v[0] for k, v in best.items()}


def priced(menu_of, stream_k, l2=False):
    """gemm_time for bf16 with the tile list `menu_of` (one list for every row, or a function of (m, n, k) giving
    each row's) and stream-K on or off. `l2`: the MMA time floored by the operand traffic of the CTAs running at once
    through L2 (per wave min(CTAs, SMs) x (BM + BN) x K-slice x 2 bytes at the fitted `gemm.l2_bw`)."""
    orig = MODEL_GEMM_TIME

    def gemm_time(P, m, n, k, b, peak, e_in, e_out=2.0, fmt="bf16", details=False, bw=None):
        if fmt != "bf16":
            return orig(P, m, n, k, b, peak, e_in, e_out, fmt, details, bw)
        if l2:
            m, n, k, b = (np.atleast_1d(np.asarray(x, dtype=float)) for x in (m, n, k, b))
            _, d = priced(menu_of, stream_k)(P, m, n, k, b, peak, e_in, e_out, fmt, True, bw)
            bm, bn, waves, split = (d["tile"][:, i] for i in range(4))
            units = b * np.ceil(m / bm) * np.ceil(n / bn) * split
            t_l2 = waves * np.minimum(units, P.sm_count) * (bm + bn) * (k / split) * 2.0 / P["gemm.l2_bw"]
            p = P["gemm.overlap_p"]
            t = (P["gemm.floor"] + (np.maximum(d["t_compute"], t_l2) ** p + d["t_memory"] ** p) ** (1.0 / p)
                 + d["t_reduce"])
            return (t, {**d, "t_l2": t_l2}) if details else t
        # the menu is the whole list: no tile set adds cuBLAS's 192 x 192 to it (gpu_library.tiles)
        P = GpuParams(values={**P.values, "gemm.tile_set": 0.0,
                              "gemm.stream_k": P.values.get("gemm.stream_k", 0.0) if stream_k else 0.0},
                      sm_count=P.sm_count, l2_bytes=P.l2_bytes, provenance="probe", attention_default="fa2")
        m, n, k, b = (np.atleast_1d(np.asarray(x, dtype=float)) for x in (m, n, k, b))
        base = gpu.TILES
        if not callable(menu_of):  # one menu: vectorised
            gpu.TILES = menu_of
            try:
                return orig(P, m, n, k, b, peak, e_in, e_out, fmt, details, bw)
            finally:
                gpu.TILES = base
        parts = []
        try:
            for i in range(len(m)):
                gpu.TILES = menu_of(int(m[i]), int(n[i]), int(k[i]))
                parts.append(orig(P, m[i:i + 1], n[i:i + 1], k[i:i + 1], b[i:i + 1], peak, e_in, e_out, fmt, True, bw))
        finally:
            gpu.TILES = base
        out = np.array([t[0] for t, _ in parts])
        if not details:
            return out
        return out, {key: np.concatenate([d[key] for _, d in parts]) for key in parts[0][1]}
    return gemm_time


def refit(gemm_time, tr, rows, hw, extra=None):
    """Re-fit the GEMM group (common.fit_group, r18_h100 terms) on the train rows `tr` with `gemm_time` in place of the
    model's (None: the model's own); `extra` ({name: start value}) adds parameters to the group. Returns (fitted
    values, the predictions of `rows`); the model, fit.GROUPS and fit.INITIAL are restored."""
    groups, initial = list(fit.GROUPS["gemm"]), dict(fit.INITIAL)
    try:
        gpu.gemm_time = gemm_time or MODEL_GEMM_TIME
        if extra:
            fit.GROUPS["gemm"] = groups + list(extra)
            fit.INITIAL.update(extra)
        values, sms, l2, _ = fit_group(HW, hw, tr, "gemm", fit.TERM_SETS["r18_h100"])
        P = GpuParams(values=values, sm_count=sms, l2_bytes=l2, provenance="probe", attention_default="fa2")
        return values, fit.predict(P, rows, hw)
    finally:
        gpu.gemm_time = MODEL_GEMM_TIME
        fit.GROUPS["gemm"] = groups
        fit.INITIAL.clear()
        fit.INITIAL.update(initial)


def family(name: str) -> str:
    g = NAME.search(name)
    return (f"cluster {g.group(3)}x{g.group(4)} raster {g.group(5)}" + (" split-K" if "splitK" in name else "")
            + (" coop" if "coop" in name else ""))


def learnt_choice(tr, bf16, hw, kern, tile, oracle_pred):
    """The nearest-neighbour choice (leave one shape out) against the oracle (its predictions `oracle_pred`, variant O),
    each with a per-family factor."""
    key = [shape_of(m) for m in bf16]
    shapes = sorted(set(key))
    x = np.log(np.array(shapes, dtype=float))
    near = {}
    for i, s in enumerate(shapes):
        d = ((x - x[i]) ** 2).sum(axis=1)
        d[i] = np.inf
        near[s] = shapes[int(np.argmin(d))]
    same_tile = np.mean([tile[near[s]] == tile[s] for s in shapes])
    same_family = np.mean([family(kern[near[s]]) == family(kern[s]) for s in shapes])
    lines = [f"Learnt choice: {len(shapes)} train shapes; the nearest other shape's kernel has the same tile for "
             f"{same_tile:.0%} and the same family for {same_family:.0%}",
             "choice | tile only | + family factor (in-sample) | + family factor (shape left out)"]
    t = np.array([m.time_s for m in bf16])
    index = {s: i for i, s in enumerate(shapes)}
    shape_id = np.array([index[s] for s in key])
    _, near_pred = refit(priced(lambda m, n, k: ((tile[near[(m, n, k)]][1], tile[near[(m, n, k)]][0]),), False),
                         tr, bf16, hw)
    for label, src, pred in (("oracle (profiled kernel)", {s: s for s in shapes}, oracle_pred),
                             ("nearest other shape's kernel", near, near_pred)):
        fams = np.array([family(kern[src[s]]) for s in key])
        lr = np.log(t / pred)
        f_in, f_out = np.ones(len(t)), np.ones(len(t))
        for f in set(fams):
            sel = fams == f
            f_in[sel] = np.exp(np.median(lr[sel]))
            for i in np.where(sel)[0]:
                rest = sel & (shape_id != shape_id[i])
                f_out[i] = np.exp(np.median(lr[rest])) if rest.any() else 1.0
        a, b, c = stats(pred, bf16), stats(pred * f_in, bf16), stats(pred * f_out, bf16)
        lines.append(f"{label:<30} | {a[0]:5.2f} / {a[1]:5.2f} | {b[0]:5.2f} / {b[1]:5.2f} | {c[0]:5.2f} / {c[1]:5.2f}")
    return lines


def main(argv):
    out = Path(argv[1]) if len(argv) > 1 else None
    hw = fit.base_spec(HW)
    meas = [m for m in dataset.load_ops(CSV[HW]) if m.split == "fit" and m.op is not None]
    train, _ = dataset.carve_validation(meas)  # the validation part is dropped here, unread
    tr = [m for m in train if m.cls in ("gemm_bf16", "gemm_fp8") and m.reliable]
    bf16 = [m for m in tr if m.cls == "gemm_bf16"]
    kern = profiled_kernels()
    tile = {}
    for key, name in kern.items():
        g = NAME.search(name)
        if g:
            tile[key] = (int(g.group(1)), int(g.group(2)))  # (weight rows, tokens)
    missing = sum(shape_of(m) not in tile for m in bf16)

    def oracle(swap):
        def menu_of(m, n, k):
            w, t = tile.get((m, n, k), (128, 128))
            return ((w, t),) if swap else ((t, w),)  # gemm_time's tiles are (along m = tokens, along n = weights)
        return menu_of

    variants = [("A committed form", None, True), ("M nvjet-like menu", MENU, True),
                ("MN M without stream-K", MENU, False),
                ("O profiled tile, no stream-K", oracle(False), False),
                ("OK profiled tile, stream-K kept", oracle(False), True),
                ("OS profiled tile read the other way", oracle(True), False),
                ("OL O + an L2 operand-traffic floor", oracle(False), False, True)]
    lines = [f"# {Path(__file__).name}: H100 bf16 GEMM train rows {len(bf16)} ({len(tr)} GEMM train rows fitted; "
             f"{missing} bf16 train rows without a profiled tile priced at 128 x 128 by the oracles)",
             "variant | bf16 train in-sample median / p90 % | gemm.tile_c | gemm.mma_eff.bf16"]
    fitted_o = None
    for label, menu_of, sk, *l2_floor in variants:
        values, pred = refit(None if menu_of is None else priced(menu_of, sk, bool(l2_floor)), tr, bf16, hw,
                             {"gemm.l2_bw": 10e12} if l2_floor else None)  # the L2 floor's bandwidth, from 10 TB/s
        med, p90 = stats(pred, bf16)
        lines.append(f"{label:<38} | {med:5.2f} / {p90:5.2f} | {values['gemm.tile_c']:6.2f} | "
                     f"{values['gemm.mma_eff.bf16']:.3f}" + (f" | L2 {values['gemm.l2_bw'] / 1e12:.2f} TB/s"
                                                            if l2_floor else ""))
        print(lines[-1], flush=True)
        if label.startswith("O "):
            fitted_o = pred
    err = (fitted_o / np.array([m.time_s for m in bf16]) - 1) * 100
    by = defaultdict(list)
    for m, e in zip(bf16, err):
        name = kern.get(shape_of(m), "")
        by[family(name) if NAME.search(name) else "no profile"].append(e)
    lines += ["", "O's signed error by kernel family (cluster shape, raster, split-K, cooperative)",
              "family | rows | signed median % | |err| median / p90 %"]
    for fam, es in sorted(by.items(), key=lambda x: -len(x[1])):
        es = np.array(es)
        lines.append(f"{fam:<40} | {len(es):4d} | {np.median(es):+6.1f} | {np.median(np.abs(es)):5.1f} / "
                     f"{np.percentile(np.abs(es), 90):5.1f}")
    lines += ["", *learnt_choice(tr, bf16, hw, kern, tile, fitted_o)]
    text = "\n".join(lines) + "\n"
    print("\n".join(lines[len(variants) + 2:]))
    if out:
        out.write_text(text)


if __name__ == "__main__":
    main(sys.argv)
