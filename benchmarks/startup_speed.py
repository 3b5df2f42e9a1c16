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

    python benchmarks/startup_speed.py [--points 1000000] [--no-sweep] [--repeat 3]

The warm quickstart is run `--repeat` times (default 3) and its median is the figure
(every sample is kept in the JSON): on a shared machine one run can be seconds off.

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


def _timed(cmd: list, env: dict, cwd: Path) -> tuple[float, str]:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr[-800:]}")
    return dt, r.stderr


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--no-sweep", action="store_true", help="time the quickstart only")
    ap.add_argument("--repeat", type=int, default=3, help="warm quickstart runs; the median is reported")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "startup_speed"))
    args = ap.parse_args(argv)
    rows = []
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               "NUMBA_CACHE_DIR": str(d / "numba_cache")}  # cold: an empty numba cache
        env.pop("COSIM_CACHE_DIR", None)  # the defaults: no opt-in checkpoint cache
        floor, _ = _timed([sys.executable, "-c", "import numpy"], env, ROOT)
        rows.append({"what": "python -c 'import numpy' (floor)", "seconds": floor, "goal_s": None})
        run = [sys.executable, "-m", "cosim", "run", "quickstart", "--out", str(d / "qs")]
        print("quickstart, cold (empty numba cache) ...", flush=True)
        cold, err_cold = _timed(run, env, ROOT)
        rows.append({"what": "cosim run quickstart, cold (empty numba cache, defaults)", "seconds": cold,
                     "goal_s": 20.0,
                     "progress_lines": _progress(err_cold, d)})
        samples = []
        for i in range(max(1, args.repeat)):
            print(f"quickstart, warm ({i + 1} of {max(1, args.repeat)}) ...", flush=True)
            warm, err_warm = _timed(run, env, ROOT)
            samples.append(round(warm, 3))
        rows.append({"what": f"cosim run quickstart, warm (numba cache filled, defaults; median of {len(samples)})",
                     "seconds": statistics.median(samples), "samples_s": samples, "goal_s": 5.0,
                     "progress_lines": _progress(err_warm, d)})
        print("quickstart, warm, one process ...", flush=True)
        one, _ = _timed(run, {**env, "COSIM_ONE_PROCESS": "1"}, ROOT)
        rows.append({"what": "cosim run quickstart, warm, checkpoint accuracy in this process (COSIM_ONE_PROCESS=1)",
                     "seconds": one, "goal_s": None})
        if args.no_sweep:
            return _finish(rows, floor, load_before, args.out)
        sweep_file = d / "million.yaml"
        sweep_file.write_text(SWEEP.format(n=args.points, out=d / "million"))
        print(f"{args.points:,}-point sweep ...", flush=True)
        big, err_big = _timed([sys.executable, "-m", "cosim", "sweep", str(sweep_file), "--quiet"], env, ROOT)
        outs = sorted(p.name for p in (d / "million").iterdir())
        rows.append({"what": f"{args.points:,}-point sweep end to end (results.parquet, Pareto, plots)",
                     "seconds": big, "goal_s": 20.0, "outputs": outs,
                     "progress_lines": _progress(err_big, d)})
    return _finish(rows, floor, load_before, args.out)


def _finish(rows: list, floor: float, load_before: float, out: str) -> int:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = ["| what | seconds | x the `import numpy` floor | goal |", "|---|---|---|---|"]
    for r in rows:
        g = r["goal_s"]
        met = "" if g is None else f"< {g:g} s " + ("(met)" if r["seconds"] < g else "(NOT met)")
        lines.append(f"| {r['what']} | {r['seconds']:.2f} | {r['seconds'] / floor:.1f}x | {met} |")
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
