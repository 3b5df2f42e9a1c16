"""Is cuBLAS's bf16 GEMM kernel choice a function a table can hold? (a diagnostic, issue 11, session 28)

gemm_choice_probe.py found that the kernel cuBLAS runs is worth 0.5 / 1.8 points of the H100's bf16 GEMM error
in-sample, but that the nearest other fit shape's kernel is the same for only 25 % of shapes. The fit shapes are
sparse, so that does not say whether the choice is smooth at a finer scale. This records, on one H100, the kernel
F.linear runs for two shape sets, fixed before the run:

  neighbours: each of NEIGHBOUR_SHAPES train shapes of the H100's bf16 GEMM fit rows (the validation part carved
              by dataset.carve_validation is not used; a fixed random sample) and its neighbours m +- 1, m +- 8,
              n +- 64, k +- 64, n +- 256, k +- 256 (those within the fit shapes' ranges): does the choice change
              between adjacent shapes?
  grid:       m in GRID_M, n and k in GRID_NK (multiples of 64, about 2^(1/3) apart): a table a model could ship.

Kernel names only (one call per shape, after one warm call; no timing is used): per shape the kernels of its call,
separated from the next shape's by a marker kernel (a one-element fill) in one profiler session per CHUNK shapes.

  shapes (here):  PYTHONPATH=. python validation/diagnostics/gemm_choice_map.py shapes <cases.csv>
  profile (GPU):  python3 validation/diagnostics/gemm_choice_map.py profile <cases.csv> <out.csv> [budget_s]
                  (writes as it goes, resumes where <out.csv> stops)
  compare (here): PYTHONPATH=. python validation/diagnostics/gemm_choice_map.py compare <cases.csv> <map.csv[.gz]>
                  [<record.txt>]
  Committed: h100_gemm_choice_map.csv.gz (the profile, gzipped), .log (where it ran), .txt (the comparison).

Questions fixed before the run (the comparison is written after it): (1) does this batched profile name the same
kernel as h100_kernel_profile.csv at the sampled shapes themselves; (2) for what fraction of each step's neighbours
is the tile (and the kernel family: cluster, raster, split-K, cooperative) the same as at the shape; (3) for the
bf16 train shapes, how often is the kernel at the nearest grid shape (log m, log n, log k) the profiled one, and what
in-sample bf16 error does gemm_choice_probe's oracle fit give when each row is priced at that grid kernel's tile.
"""
from __future__ import annotations

import csv
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

NEIGHBOUR_SHAPES, SEED, CHUNK, CHUNK_BYTES = 150, 20261206, 500, 24e9
GRID_M = (1, 2, 3, 4, 6, 8, *range(16, 257, 8), *range(288, 1025, 32), *range(1152, 4097, 128), 6144, 8192)
GRID_NK = tuple(sorted({64 * round(256 * 2 ** (i / 3) / 64) for i in range(28)}))  # 256 .. ~131072
N_MAX, K_MAX = 128256, 32768
STEPS = (("m", 1), ("m", -1), ("m", 8), ("m", -8), ("n", 64), ("n", -64), ("k", 64), ("k", -64), ("n", 256),
         ("n", -256), ("k", 256), ("k", -256))


def write_cases(out: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from cosim.calibrate import dataset
    from validation.model_selection.common import CSV

    meas = [m for m in dataset.load_ops(CSV["h100_sxm"]) if m.split == "fit" and m.op is not None]
    train, _ = dataset.carve_validation(meas)
    shapes = sorted({(m.op.dims["m"], m.op.dims["n"], m.op.dims["k"]) for m in train if m.cls == "gemm_bf16"})
    rows = []
    for s in random.Random(SEED).sample(shapes, NEIGHBOUR_SHAPES):
        rows.append(("neighbour", *s, *s))
        for dim, step in STEPS:
            d = dict(zip("mnk", s))
            d[dim] += step
            if d["m"] >= 1 and 256 <= d["n"] <= N_MAX and 256 <= d["k"] <= K_MAX:
                rows.append(("neighbour", d["m"], d["n"], d["k"], *s))
    rows += [("grid", m, n, k, 0, 0, 0) for n in GRID_NK if n <= N_MAX + 64 for k in GRID_NK if k <= K_MAX
             for m in GRID_M]
    with open(out, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["set", "m", "n", "k", "of_m", "of_n", "of_k"])
        w.writerows(rows)
    print(f"{sum(r[0] == 'neighbour' for r in rows)} neighbour and {sum(r[0] == 'grid' for r in rows)} grid shapes "
          f"-> {out}")


def _kernels(trace_path: str) -> list[dict]:
    with open(trace_path) as fh:
        events = json.load(fh).get("traceEvents", [])
    return sorted((e for e in events if e.get("ph") == "X" and e.get("cat") == "kernel"), key=lambda e: e["ts"])


def profile(cases_csv: Path, out_csv: Path, budget_s: float) -> None:
    import torch
    import torch.nn.functional as F
    from torch.profiler import ProfilerActivity, profile as tprofile

    cases = [(int(r["m"]), int(r["n"]), int(r["k"])) for r in csv.DictReader(open(cases_csv))]
    cases = list(dict.fromkeys(cases))  # a shape in both sets is profiled once
    done = {(int(r["m"]), int(r["n"]), int(r["k"])) for r in csv.DictReader(open(out_csv))} if out_csv.exists() \
        else set()
    todo = sorted((c for c in cases if c not in done), key=lambda c: (c[1], c[2], c[0]))  # one weight per (n, k)
    fh = open(out_csv, "a", newline="")
    w = csv.writer(fh)
    if not done:
        w.writerow(["m", "n", "k", "kernels", "grid"])
    marker = torch.zeros(1, device="cuda")
    trace = os.path.join(tempfile.mkdtemp(), "t.json")
    by_pair = {}
    for c in todo:
        by_pair.setdefault(c[1:], []).append(c)
    m_max = {pair: max(c[0] for c in shapes) for pair, shapes in by_pair.items()}
    chunks, cur, cur_bytes = [], [], 0  # whole (n, k) pairs per chunk, at most CHUNK shapes and CHUNK_BYTES of operands
    for (n, k), shapes in by_pair.items():
        nbytes = 2 * (n * k + m_max[(n, k)] * (n + k))
        if cur and (cur_bytes + nbytes > CHUNK_BYTES or len(cur) + len(shapes) > CHUNK):
            chunks.append(cur)
            cur, cur_bytes = [], 0
        cur += shapes
        cur_bytes += nbytes
    if cur:
        chunks.append(cur)
    t0, done_n = time.time(), 0
    for chunk in chunks:
        if time.time() - t0 > budget_s:
            print(f"budget {budget_s:.0f} s reached: {done_n} of {len(todo)} shapes this run", flush=True)
            break
        weights, calls = {}, []
        for m, n, k in chunk:
            if (n, k) not in weights:
                weights[(n, k)] = (torch.empty(n, k, device="cuda", dtype=torch.bfloat16).normal_(0, 0.02),
                                   torch.empty(m_max[(n, k)], k, device="cuda", dtype=torch.bfloat16).normal_())
            wt, a = weights[(n, k)]
            calls.append((a[:m], wt))
        for a, wt in calls:  # warm: cuBLAS's first call of a shape may differ (heuristic cache)
            F.linear(a, wt)
        torch.cuda.synchronize()
        with tprofile(activities=[ProfilerActivity.CUDA]) as prof:
            for a, wt in calls:
                F.linear(a, wt)
                marker.fill_(1.0)
            torch.cuda.synchronize()
        prof.export_chrome_trace(trace)
        groups, cur = [], []
        for e in _kernels(trace):
            if "fill" in e["name"].lower():
                groups.append(cur)
                cur = []
            else:
                cur.append(e)
        if len(groups) != len(chunk):
            raise SystemExit(f"error: {len(groups)} marker-separated groups for {len(chunk)} shapes (after {done_n})")
        for (m, n, k), ks in zip(chunk, groups):
            main = max(ks, key=lambda e: e.get("dur", 0)) if ks else {}
            w.writerow([m, n, k, "|".join(e["name"] for e in ks), json.dumps(main.get("args", {}).get("grid"))])
        fh.flush()
        done_n += len(chunk)
        calls = weights = prof = None
        torch.cuda.empty_cache()
        print(f"{done_n} of {len(todo)} shapes, {time.time() - t0:.0f} s", flush=True)
    fh.close()


def main_kernel(kernels: str) -> str:
    """The GEMM kernel of a call (its other kernel, where there is one, is split-K's reduction)."""
    names = kernels.split("|")
    return next((k for k in names if k.startswith("nvjet")), names[0])


def balanced_tiles(got: dict, name_re) -> list[str]:
    """(4, added after the run, having seen (2)) Is each tile dimension the tightest multiple of 8 that covers its
    dimension in the number of tiles the kernel uses (tile = 8 x ceil(dim / count / 8))? Tokens: m, weight rows: n."""
    import numpy as np

    n = tok = wgt = 0
    for (m, n_, _k), name in got.items():
        g = name_re.search(name)
        if not g:
            continue
        w, t = int(g.group(1)), int(g.group(2))
        n += 1
        tok += t == max(8, 8 * int(np.ceil(m / np.ceil(m / t) / 8)))
        wgt += w == 8 * int(np.ceil(n_ / np.ceil(n_ / w) / 8))
    return [f"(4, added after the run) of {n} shapes, the token tile is the tightest multiple of 8 for its tile count "
            f"in {tok / n:.1%}, the weight tile in {wgt / n:.1%}"]


def one_wave(got: dict, name_re, sms: int) -> list[str]:
    """(6, added after the run) Data-parallel kernels (no split-K): does cuBLAS run one wave (tiles <= SMs) exactly
    where tiles of at most T tokens x W weight rows could cover the shape in one wave?"""
    import math

    lines = [f"(6, added after the run) data-parallel kernels: one wave (tiles <= {sms}) vs 'a one-wave tiling with "
             "tiles <= T x W exists': T x W | agree | one wave predicted, more run | more predicted, one run"]
    dp = []
    for (m, n, _k), name in got.items():
        g = name_re.search(name)
        if g and "splitK" not in name:
            w, t = int(g.group(1)), int(g.group(2))
            dp.append((m, n, math.ceil(n / w) * math.ceil(m / t) <= sms))
    for tmax, wmax in ((192, 256), (256, 256), (256, 512)):
        pred = [math.ceil(m / tmax) * math.ceil(n / wmax) <= sms for m, n, _ in dp]
        agree = sum(p == one for p, (_, _, one) in zip(pred, dp))
        over = sum(p and not one for p, (_, _, one) in zip(pred, dp))
        under = sum(one and not p for p, (_, _, one) in zip(pred, dp))
        lines.append(f"  {tmax} x {wmax} | {agree / len(dp):.1%} of {len(dp)} | {over} | {under}")
    return lines


def one_slice(got: dict, name_re, family, n: int, k: int) -> list[str]:
    """(5, added after the run) The choice along m at one (n, k): tile, family, tile counts."""
    import math

    lines = [f"(5, added after the run) the choice along m at n {n}, k {k}: m | weight rows x tokens | family | "
             "tiles along n x along m = tiles"]
    for (m, n_, k_), name in sorted(got.items()):
        g = name_re.search(name)
        if (n_, k_) == (n, k) and g:
            w, t = int(g.group(1)), int(g.group(2))
            cw, ct = math.ceil(n / w), math.ceil(m / t)
            lines.append(f"  {m:5d} | {w:3d} x {t:3d} | {family(name):<36} | {cw:3d} x {ct:3d} = {cw * ct}")
    return lines


def compare(cases_csv: Path, map_csv: Path, out: Path | None) -> None:
    import numpy as np

    from cosim.calibrate import dataset, fit
    from validation.diagnostics import gemm_choice_probe as probe
    from validation.model_selection.common import CSV, stats

    import gzip
    with (gzip.open(map_csv, "rt", newline="") if map_csv.suffix == ".gz" else open(map_csv, newline="")) as fh:
        got = {(int(r["m"]), int(r["n"]), int(r["k"])): main_kernel(r["kernels"]) for r in csv.DictReader(fh)}
    cases = list(csv.DictReader(open(cases_csv)))
    earlier = probe.profiled_kernels()
    fam, tile = probe.family, lambda name: probe.NAME.search(name).groups()[:2]
    n_cases = len({(r["m"], r["n"], r["k"]) for r in cases})
    lines = [f"# gemm_choice_map.py compare: {len(got)} profiled shapes of {n_cases} ({map_csv.name})"]
    # (1) the sampled shapes themselves against the per-shape profile
    own = [(int(r["m"]), int(r["n"]), int(r["k"])) for r in cases if r["set"] == "neighbour"
           and (r["m"], r["n"], r["k"]) == (r["of_m"], r["of_n"], r["of_k"])]
    own = [s for s in own if s in got]
    same = sum(got[s] == earlier.get(s) for s in own)
    lines.append(f"(1) sampled shapes: {same} of {len(own)} name the same kernel as h100_kernel_profile.csv")
    # (2) neighbours
    lines += ["(2) neighbours: step | pairs | same kernel | same tile | same family"]
    by_step = {}
    for r in cases:
        if r["set"] != "neighbour":
            continue
        s, o = (int(r["m"]), int(r["n"]), int(r["k"])), (int(r["of_m"]), int(r["of_n"]), int(r["of_k"]))
        if s == o or s not in got or o not in got:
            continue
        step = next(f"{d} {s[i] - o[i]:+d}" for i, d in enumerate("mnk") if s[i] != o[i])
        by_step.setdefault(step, []).append((got[s], got[o]))
    for step, pairs in sorted(by_step.items(), key=lambda x: ("mnk".index(x[0][0]), abs(int(x[0][2:])), x[0])):
        share = [sum(f(a) == f(b) for a, b in pairs) / len(pairs) for f in (lambda x: x, tile, fam)]
        lines.append(f"  {step:<7} | {len(pairs):4d} | " + " | ".join(f"{x:5.0%}" for x in share))
    # (3) the nearest grid shape's kernel for the bf16 train rows
    grid = sorted({(int(r["m"]), int(r["n"]), int(r["k"])) for r in cases if r["set"] == "grid"} & set(got))
    gx = np.log(np.array(grid, dtype=float))
    hw = fit.base_spec(probe.HW)
    meas = [m for m in dataset.load_ops(CSV[probe.HW]) if m.split == "fit" and m.op is not None]
    train, _ = dataset.carve_validation(meas)
    tr = [m for m in train if m.cls in ("gemm_bf16", "gemm_fp8") and m.reliable]
    bf16 = [m for m in tr if m.cls == "gemm_bf16"]
    key = [probe.shape_of(m) for m in bf16]
    near = {}
    for s in set(key):
        d = ((gx - np.log(np.array(s, dtype=float))) ** 2).sum(axis=1)
        near[s] = got[grid[int(np.argmin(d))]]
    shapes = sorted(set(key))
    lines.append(f"(3) {len(shapes)} bf16 train shapes, {len(grid)} grid shapes: the nearest grid shape's kernel has "
                 f"the same tile for {np.mean([tile(near[s]) == tile(earlier[s]) for s in shapes]):.0%} and the same "
                 f"family for {np.mean([fam(near[s]) == fam(earlier[s]) for s in shapes]):.0%}")
    lines.append("    priced at | bf16 train in-sample median / p90 %")
    for label, src in (("profiled kernel's tile (oracle)", earlier), ("nearest grid shape's tile", near)):
        def menu_of(m, n, k, src=src):  # gemm_time's tiles are (tokens, weight rows)
            w, t = tile(src[(m, n, k)])
            return ((int(t), int(w)),)
        _, pred = probe.refit(probe.priced(menu_of, False), tr, bf16, hw)
        med, p90 = stats(pred, bf16)
        lines.append(f"    {label:<32} | {med:5.2f} / {p90:5.2f}")
    from hwmodels.gpu import params_for
    from hwmodels.spec import load_hw
    sms = params_for(load_hw(probe.HW)).sm_count  # the H100's calibration: 132 SMs
    lines += (balanced_tiles(got, probe.NAME) + one_wave(got, probe.NAME, sms)
              + one_slice(got, probe.NAME, probe.family, 4096, 4096))
    text = "\n".join(lines) + "\n"
    print(text)
    if out:
        out.write_text(text)


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "shapes":
        write_cases(Path(argv[1]))
        return 0
    if len(argv) >= 3 and argv[0] == "profile":
        profile(Path(argv[1]), Path(argv[2]), float(argv[3]) if len(argv) > 3 else 400.0)
        return 0
    if len(argv) >= 3 and argv[0] == "compare":
        compare(Path(argv[1]), Path(argv[2]), Path(argv[3]) if len(argv) > 3 else None)
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
