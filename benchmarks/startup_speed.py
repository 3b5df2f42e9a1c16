"""Warm start and big outputs (issue 14), wall clock of fresh processes:

- `cosim run quickstart` cold (empty numba cache: every kernel it calls compiles) and
  warm (the numba cache the cold run filled), each in a new process, with the defaults a
  user gets: the opt-in checkpoint cache (COSIM_CACHE_DIR) is NOT set, so nothing but
  numba's own cache is written and the bundled GGUF checkpoint is parsed every time;
  then warm again with COSIM_ONE_PROCESS=1 (the checkpoint accuracy in the same process
  instead of a second one: which of the two is faster depends on how idle the cores are);
  next to `python -c "import numpy"` timed the same way (the floor any Python tool
  pays) in the same run;
- a 1,000,000-point hardware sweep (roofline, Llama-3-8B decode on random H100-SXM
  variants) end to end in a new process: plan, evaluation, store, results table
  (Parquet), Pareto front and the plots (binned).

    python benchmarks/startup_speed.py [--points 1000000] [--no-sweep] [--repeat 3] [--against REV]

The warm quickstart is run `--repeat` times (default 3) and its median is the figure
(every sample is kept in the JSON): on a shared machine one run can be seconds off.
Each timed run also records its CPU time (user + system of the process and the children
it waited for: resource.getrusage(RUSAGE_CHILDREN) before and after).

`--against REV` (e.g. `--against 08bb993`) also times the quickstart of that git revision,
extracted with `git archive` into the temporary folder and given its own numba cache
(warmed by one untimed run): old and new warm runs alternate (the order swapped every
round, so a load change hits both) and the table gets the ratio of the medians, wall
and CPU — a same-run comparison on the same machine at the same load.

Prints PASS/FAIL per goal and the load average before and after; writes
benchmarks/results/startup_speed.{json,md}. Goals: quickstart < 5 s warm, < 20 s cold;
the 1M-point sweep < 20 s including writing results and plots.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SWEEP = """name: million
base: {{model: llama3_8b, phase: decode, batch: 8, seq: 4096, weights: mxfp4, hw: h100_sxm, level: roofline}}
axes:
  - random: {{samples: {n}, seed: 0, fields: {{
      hw.memory.hbm.bandwidth: {{low: 1 TB/s, high: 10 TB/s, log: true}},
      hw.compute.bf16: {{low: 200 TFLOP/s, high: 2400 TFLOP/s, log: true}},
      hw.memory.l2.bandwidth: {{low: 5 TB/s, high: 40 TB/s}}}}}}
objectives: {{latency_s: min, energy_j: min}}
batch_size: 65536
output: {out}
"""


def _progress(stderr: str, tmp) -> list[str]:
    """The run's progress lines, with its temporary folder shown as <tmp> (results stay machine-free)."""
    return [ln.replace(str(tmp), "<tmp>") for ln in stderr.splitlines() if ln.startswith("cosim:")]


def _timed(cmd: list, env: dict, cwd: Path) -> tuple[float, str, float]:
    """(wall seconds, stderr, CPU seconds of the process and the children it reaped)."""
    import resource
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr[-800:]}")
    return dt, r.stderr, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def _env(code: Path, cache: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(code) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "NUMBA_CACHE_DIR": str(cache)}
    env.pop("COSIM_CACHE_DIR", None)  # the defaults: no opt-in checkpoint cache
    return env


def _old_tree(rev: str, d: Path) -> Path:
    """The repository at `rev`, extracted (git archive: tracked files only) under `d`."""
    out = d / f"rev-{rev}"
    out.mkdir()
    archive = subprocess.run(["git", "archive", "--format=tar", rev], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive.stdout, check=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--no-sweep", action="store_true", help="time the quickstart only")
    ap.add_argument("--repeat", type=int, default=3, help="warm quickstart runs; the median is reported")
    ap.add_argument("--against", metavar="REV", help="also time the warm quickstart of this git revision, "
                                                     "alternating with this tree's")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "startup_speed"))
    args = ap.parse_args(argv)
    rows = []
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        env = _env(ROOT, d / "numba_cache")  # cold: an empty numba cache
        floor, _, _ = _timed([sys.executable, "-c", "import numpy"], env, ROOT)
        rows.append({"what": "python -c 'import numpy' (floor)", "seconds": floor, "goal_s": None})
        rows += _quickstart(d, env, args)
        if not args.no_sweep:
            rows.append(_sweep(d, env, args.points))
    return _finish(rows, floor, load_before, args.out)


def _quickstart(d: Path, env: dict, args) -> list:
    runs = iter(range(1 << 30))  # a fresh --out per run: `cosim run` refuses to overwrite an earlier run's report

    def run_cmd():
        return [sys.executable, "-m", "cosim", "run", "quickstart", "--out", str(d / f"qs{next(runs)}")]

    print("quickstart, cold (empty numba cache) ...", flush=True)
    cold, err_cold, cold_cpu = _timed(run_cmd(), env, ROOT)
    rows = [{"what": "cosim run quickstart, cold (empty numba cache, defaults)", "seconds": cold, "goal_s": 20.0,
             "cpu_s": round(cold_cpu, 2), "progress_lines": _progress(err_cold, d)}]
    trees = [("this tree", ROOT, env)]
    if args.against:
        old = _old_tree(args.against, d)
        trees.append((f"rev {args.against}", old, _env(old, d / "numba_cache_old")))
        print(f"rev {args.against}: warming its numba cache (untimed) ...", flush=True)
        _timed(run_cmd(), trees[1][2], old)
    n = max(1, args.repeat)
    samples = {name: [] for name, _, _ in trees}
    cpu = {name: [] for name, _, _ in trees}
    for i in range(n):
        for name, code, e in (trees if i % 2 == 0 else trees[::-1]):
            print(f"quickstart, warm, {name} ({i + 1} of {n}) ...", flush=True)
            wall, err, c = _timed(run_cmd(), e, code)
            samples[name].append(round(wall, 3))
            cpu[name].append(round(c, 2))
            if code == ROOT:
                err_warm = err
    rows.append({"what": f"cosim run quickstart, warm (numba cache filled, defaults; median of {n})",
                 "seconds": statistics.median(samples["this tree"]), "samples_s": samples["this tree"],
                 "cpu_s": statistics.median(cpu["this tree"]), "cpu_samples_s": cpu["this tree"], "goal_s": 5.0,
                 "progress_lines": _progress(err_warm, d)})
    if args.against:
        rows.append(_against_row(args.against, samples, cpu))
    print("quickstart, warm, one process ...", flush=True)
    one, _, one_cpu = _timed(run_cmd(), {**env, "COSIM_ONE_PROCESS": "1"}, ROOT)
    rows.append({"what": "cosim run quickstart, warm, checkpoint accuracy in this process (COSIM_ONE_PROCESS=1)",
                 "seconds": one, "cpu_s": round(one_cpu, 2), "goal_s": None})
    return rows


def _against_row(rev: str, samples: dict, cpu: dict) -> dict:
    name = f"rev {rev}"
    wall_old, cpu_old = statistics.median(samples[name]), statistics.median(cpu[name])
    wall_new, cpu_new = statistics.median(samples["this tree"]), statistics.median(cpu["this tree"])
    return {"what": f"cosim run quickstart, warm, git rev {rev} (same run, alternating; median of "
                    f"{len(samples[name])})", "seconds": wall_old, "samples_s": samples[name], "cpu_s": cpu_old,
            "cpu_samples_s": cpu[name], "goal_s": None, "against": rev,
            "this_tree_over_rev_wall": round(wall_new / wall_old, 3),
            "this_tree_over_rev_cpu": round(cpu_new / cpu_old, 3)}


def _sweep(d: Path, env: dict, points: int) -> dict:
    sweep_file = d / "million.yaml"
    sweep_file.write_text(SWEEP.format(n=points, out=d / "million"))
    print(f"{points:,}-point sweep ...", flush=True)
    big, err_big, big_cpu = _timed([sys.executable, "-m", "cosim", "sweep", str(sweep_file), "--quiet"], env, ROOT)
    outs = sorted(p.name for p in (d / "million").iterdir())
    return {"what": f"{points:,}-point sweep end to end (results.parquet, Pareto, plots)", "seconds": big,
            "cpu_s": round(big_cpu, 2), "goal_s": 20.0, "outputs": outs, "progress_lines": _progress(err_big, d)}


def _finish(rows: list, floor: float, load_before: float, out: str) -> int:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = ["| what | seconds | CPU seconds | x the `import numpy` floor | goal |", "|---|---|---|---|---|"]
    for r in rows:
        g = r["goal_s"]
        met = "" if g is None else f"< {g:g} s " + ("(met)" if r["seconds"] < g else "(NOT met)")
        c = f"{r['cpu_s']:.2f}" if r.get("cpu_s") is not None else ""
        lines.append(f"| {r['what']} | {r['seconds']:.2f} | {c} | {r['seconds'] / floor:.1f}x | {met} |")
    for r in rows:
        if "against" in r:
            lines.append(f"\nThis tree / rev {r['against']}, same run: wall {r['this_tree_over_rev_wall']:.2f}x, "
                         f"CPU {r['this_tree_over_rev_cpu']:.2f}x (medians; samples in the JSON).")
    text = "\n".join(lines)
    print(text)
    for r in rows:
        for ln in r.get("progress_lines", []):
            print(f"  [{r['what'][:30]}] {ln}")
    machine = f"{platform.machine()} ({os.cpu_count()} cpus), Python {platform.python_version()}"
    for r in rows:
        if r["goal_s"] is not None:
            print(f"{'PASS' if r['seconds'] < r['goal_s'] else 'FAIL'}: {r['what']}: {r['seconds']:.2f} s "
                  f"(goal < {r['goal_s']:g} s)")
    print(f"load average: {load_before:.2f} before, {load:.2f} after")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out + ".md").write_text(f"# startup_speed\n\nFresh processes, {machine}, load average {load_before:.1f} "
                                 f"before and {load:.1f} after, {time.strftime('%Y-%m-%d')}. Defaults: no "
                                 f"COSIM_CACHE_DIR (nothing written but numba's cache).\n\n{text}\n")
    Path(out + ".json").write_text(json.dumps({"benchmark": "startup_speed", "machine": machine,
                                               "load_average": load, "load_average_before": load_before,
                                               "date": time.strftime("%Y-%m-%d"), "rows": rows}, indent=1))
    print(f"wrote {out}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
