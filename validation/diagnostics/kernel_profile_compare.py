"""Compare the H100 kernel profile (kernel_profile.py's CSV) with the analytical model's choices on the same fit
shapes (a diagnostic, issue 11; fit rows only, no held-out row is read).

  PYTHONPATH=. python validation/diagnostics/kernel_profile_compare.py <profile.csv> [<out.txt>]

GEMM bf16: per shape the main kernel (the longest of the first call), its tile (from the name), its CTA count
(grid x * y * z), any other kernel of the call (a split-K reduction); against the model's tile, split and CTA count
(hwmodels.gpu.gemm_time's details) and its error on the shape's measured fit rows (median over runs). Tables by
kernel family and by whether the model's CTA count matches. FA2 prefill: the kernel name, block, registers, shared
memory and grid CTAs per SM (kineto's "blocks per SM", grid / SMs) against the model's block sizes
(hwmodels.gpu._fa2_blocks) and the library's split-KV dispatch rule. Kernel times are from one profiled call (call 0).
"""
from __future__ import annotations

import csv
import json
import re
import sys
from collections import defaultdict

import numpy as np

from cosim.calibrate import dataset, fit
from hwmodels import gpu
from hwmodels.gpu import analytical_params
from hwmodels.spec import load_hw

TILE = re.compile(r"_tst_(\d{1,3})x(\d{1,3})_")  # nvjet_sm90_tst_<weight rows>x<tokens>_<K tile>x<stages>_...


def family(name: str) -> str:
    """The kernel's name with its tile and variant digits kept, up to the first 60 characters."""
    return name[:60]


def tile_of(name: str):
    """(BM, BN) in the model's orientation (BM along F.linear's tokens m, BN along its weight rows n): cuBLAS is
    column-major, so y = x W^T runs as y^T = W x^T and the kernel name's first tile number is along n."""
    hit = TILE.search(name)
    return (int(hit.group(2)), int(hit.group(1))) if hit else None


def ctas(grid: str) -> int:
    g = json.loads(grid) if grid else None
    return int(np.prod(g)) if g else 0


def fa2_prefill_splits(d: dict, P) -> int:
    """FlashAttention-2's prefill dispatch (hwmodels.gpu.fa2_prefill_splits: mha_fwd -> set_params_splitkv) for a
    shape given as dims, on P's SM count."""
    return gpu.fa2_prefill_splits(P, *(int(d[k]) for k in ("batch", "heads", "q_len", "kv_len", "head_dim")))


def h100_fit_rows():
    """The H100's reliable fit rows (its run manifest and the session-9 file), read once."""
    return [m for path in ("validation/h100_runs.csv", "validation/h100_ops.csv") for m in dataset.load_ops(path)
            if m.split == "fit" and m.reliable]


def err_stats(e):
    e = np.abs(np.asarray(e)) * 100
    return f"{len(e):4d} | {np.median(e):5.1f} / {np.percentile(e, 90):5.1f}" if len(e) else "   0 |     -"


def gemm_table(rows, fit_rows, P, hw, lines):
    meas = defaultdict(list)  # (m, n, k) -> the bf16 F.linear fit rows of that shape, over the runs
    for m in fit_rows:
        if m.cls == "gemm_bf16" and m.impl == "F.linear":
            meas[(m.op.dims["m"], m.op.dims["n"], m.op.dims["k"])].append(m)
    by_shape = defaultdict(list)
    for r in rows:
        if r["case"] == "gemm_bf16" and r["call"] == "0":
            by_shape[r["dims"]].append(r)
    recs = []
    for dims, ks in by_shape.items():
        d = json.loads(dims)
        key = (d["m"], d["n"], d["k"])
        if key not in meas:
            continue
        ms = meas[key]
        t_meas = float(np.median([m.time_s for m in ms]))
        t_pred = float(np.median(fit.predict(P, ms[:1], hw)))
        _, det = gpu.gemm_time(P, [d["m"]], [d["n"]], [d["k"]], [1], hw.peak("bf16"), 2.0, details=True)
        bm, bn, waves, split, sk = det["tile"][0]
        model_ctas = int(np.ceil(np.ceil(d["m"] / bm) * np.ceil(d["n"] / bn) * split)) if not sk else P.sm_count
        main = max(ks, key=lambda r: float(r["dur_us"]))
        others = [r["kernel"][:40] for r in ks if r is not main]
        recs.append({"m": d["m"], "n": d["n"], "k": d["k"], "meas": t_meas, "err": t_pred / t_meas - 1,
                     "kernel": main["kernel"], "tile": tile_of(main["kernel"]), "ctas": ctas(main["grid"]),
                     "n_kernels": len(ks), "others": others, "model_tile": (int(bm), int(bn)),
                     "model_split": float(split), "model_ctas": model_ctas, "stream_k": bool(sk),
                     "kernel_us": sum(float(r["dur_us"]) for r in ks)})
    lines.append(f"GEMM bf16: {len(recs)} profiled fit shapes with measured fit rows")
    lines.append("kernel family (first 60 chars) | shapes | |pred/meas - 1| % median / p90")
    fams = defaultdict(list)
    for r in recs:
        fams[family(r["kernel"])].append(r["err"])
    for f, e in sorted(fams.items(), key=lambda kv: -len(kv[1])):
        lines.append(f"{f:<60} | {err_stats(e)}")
    split_k = [r for r in recs if r["n_kernels"] > 1]
    lines.append(f"shapes whose call runs more than one kernel (split-K reduction or similar): {len(split_k)}; "
                 f"error {err_stats([r['err'] for r in split_k])}")
    lines.append(f"  model splits K on {sum(r['model_split'] > 1 for r in recs)} shapes; both split on "
                 f"{sum(r['model_split'] > 1 and r['n_kernels'] > 1 for r in recs)}")
    small = [r for r in recs if r["m"] <= 256 and r["tile"]]
    cover = sum(r["tile"][0] >= r["m"] for r in small)
    tight = sum(r["tile"][0] >= r["m"] and r["tile"][0] - r["m"] < 8 for r in small)
    lines.append(f"shapes with m <= 256: {len(small)}; the kernel's token tile BM covers all m tokens on {cover}, "
                 f"within 8 of m on {tight}; token tiles seen: {sorted({r['tile'][0] for r in small})}")
    lines.append(f"kernels with no nvjet tile in the name: {sum(r['tile'] is None for r in recs)}")
    kinds = {w: sum(w in r["kernel"] for r in recs) for w in ("_splitK_", "_coopA_", "_coopB_", "stream", "Stream")}
    persistent = sum(r["tile"] is not None and r["n_kernels"] == 1 and "_splitK_" not in r["kernel"]
                     and r["ctas"] < np.ceil(r["m"] / r["tile"][0]) * np.ceil(r["n"] / r["tile"][1]) for r in recs)
    lines.append(f"main kernels by name: {kinds} (split-K variants, cooperative schedules; no name says stream-K); "
                 f"single-kernel launches with fewer CTAs than tiles (a persistent grid; how it schedules the tiles "
                 f"is not visible here): {persistent}; the model chose stream-K on {sum(r['stream_k'] for r in recs)} "
                 f"shapes")
    # one-wave data-parallel launches (no split-K, one CTA per tile, CTAs <= SMs) at K >= 4,096, token tile >= 64:
    # each CTA computes one BM x BN x K tile,
    # so the kernel time gives the tile's MAC rate per SM directly (kernel time from the profile, not the row's median)
    peak_sm = hw.peak("bf16") / P.sm_count
    one = defaultdict(list)
    for r in recs:
        if not r["tile"] or r["tile"][0] < 64:  # token tiles under 64 stream their weights (bandwidth-bound)
            continue
        bm, bn = r["tile"]
        tiles = np.ceil(r["m"] / bm) * np.ceil(r["n"] / bn)
        one_wave = tiles == r["ctas"] <= P.sm_count and r["n_kernels"] == 1 and "_splitK_" not in r["kernel"]
        if one_wave and r["k"] >= 4096:
            one[(bm, bn)].append(2.0 * bm * bn * r["k"] / (r["kernel_us"] * 1e-6) / peak_sm)
    lines.append("one-wave data-parallel launches (one CTA per tile), K >= 4,096, BM >= 64: the tile's rate per SM "
                 "over the datasheet peak per SM, one profiled call each, by kernel tile (BM tokens x BN weight "
                 "rows) | shapes | median | min .. max")
    for (bm, bn), f in sorted(one.items()):
        lines.append(f"  {bm:3d} x {bn:3d} | {len(f):3d} | {np.median(f):.2f} | {min(f):.2f} .. {max(f):.2f}")
    same_tile = [r for r in recs if r["tile"] == r["model_tile"]]
    lines.append(f"model tile = kernel tile on {len(same_tile)} of {len(recs)}; error where equal "
                 f"{err_stats([r['err'] for r in same_tile])}, elsewhere "
                 f"{err_stats([r['err'] for r in recs if r['tile'] != r['model_tile']])}")
    lines.append("few-tile shapes (model tiles < SMs), largest |error| first: m n k | meas us | err % | kernel | "
                 "grid CTAs | model (BM, BN) / split / CTAs (stream-K: one per SM) | other kernels of the call")
    few = [r for r in recs if np.ceil(r["m"] / r["model_tile"][0]) * np.ceil(r["n"] / r["model_tile"][1]) < P.sm_count]
    for r in sorted(few, key=lambda r: -abs(r["err"]))[:40]:
        lines.append(f"{r['m']} {r['n']} {r['k']} | {r['meas'] * 1e6:8.1f} | {r['err'] * 100:+6.1f} | "
                     f"{r['kernel'][:70]} | {r['ctas']} | {r['model_tile']} / {r['model_split']:.0f} / "
                     f"{r['model_ctas']} | {' '.join(r['others'])}")
    return recs


def fa2_table(rows, fit_rows, P, hw, lines):
    by_case = defaultdict(list)
    for r in rows:
        if r["case"] == "fa2_prefill" and r["call"] == "0":
            by_case[r["dims"]].append(r)
    kinds = defaultdict(list)
    agree, total = 0, 0
    for dims, ks in by_case.items():
        d = json.loads(dims)
        agree += (fa2_prefill_splits(d, P) > 1) == any("splitkv" in r["kernel"] for r in ks)
        total += 1
        main = max(ks, key=lambda r: float(r["dur_us"]))
        kinds[(main["kernel"][:90], main["block"], main["registers"], main["shared_bytes"],
               main["blocks_per_sm"])].append((d, ctas(main["grid"])))
    lines.append(f"FA2-pinned prefill: {len(by_case)} profiled fit shapes; model blocks (Bq, Bk) for d = 128: "
                 f"{gpu._fa2_blocks(128)}")
    n_split = sum(any("splitkv" in r["kernel"] for r in ks) for ks in by_case.values())
    lines.append(f"  ran the split-KV kernel: {n_split} shapes; FA2's set_params_splitkv rule (2 x {P.sm_count} SMs, "
                 f"64-row query blocks) says split on exactly those: {agree} of {total} shapes agree")
    # every FA2-pinned prefill fit row (not only the profiled ones), the model's error by the dispatch rule's answer
    fa2 = [m for m in fit_rows if m.cls == "attention_prefill_fa2"]
    err = fit.predict(P, fa2, hw) / np.array([m.time_s for m in fa2]) - 1
    splits = np.array([fa2_prefill_splits(m.op.dims, P) for m in fa2])
    for label, sel in (("split-KV kernel (rule)", splits > 1), ("one-pass kernel", splits == 1)):
        lines.append(f"  FA2-pinned prefill fit rows on the {label}: |pred/meas - 1| % {err_stats(err[sel])}, "
                     f"signed median {np.median(err[sel]) * 100:+.1f} %")
    lines.append("kernel | block | registers | shared bytes | grid CTAs per SM (kineto's \"blocks per SM\") | shapes | "
                 "example grid CTAs vs batch x heads x ceil(q / Bq)")
    for (name, block, regs, smem, bps), ds in sorted(kinds.items(), key=lambda kv: -len(kv[1])):
        d, c = ds[0]
        bq = gpu._fa2_blocks(d["head_dim"])[0]
        expect = d["batch"] * d["heads"] * int(np.ceil(d["q_len"] / bq))
        lines.append(f"{name} | {block} | {regs} | {smem} | {bps} | {len(ds)} | {c} vs {expect}")


def main(argv):
    if not argv:
        print(__doc__)
        return 2
    rows = list(csv.DictReader(open(argv[0])))
    lines = [f"kernel profile {argv[0]}: {len(rows)} kernel rows"]
    fit_rows = h100_fit_rows()
    P, hw = analytical_params(load_hw("h100_sxm")), fit.base_spec("h100_sxm")
    gemm_table(rows, fit_rows, P, hw, lines)
    fa2_table(rows, fit_rows, P, hw, lines)
    text = "\n".join(lines) + "\n"
    if len(argv) > 1:
        open(argv[1], "w").write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
