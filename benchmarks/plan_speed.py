"""`cosim plan` speed for Llama-3-70B decode on DGX H100 (issue 12 acceptance: under 1 s on 2 cores).

Same run, side by side: planning in process with the micro-batch search (default) and with the
micro-batch count fixed (the previous behaviour, m = pp), median of 5 after a warm-up; then the
whole command (`python -m cosim plan ... --out --plot`, a fresh interpreter each time) wall and
CPU seconds, median of 3. Writes benchmarks/results/plan_speed.{md,json} and the plan table
and plot (benchmarks/results/plan_llama3_70b_dgx_h100.{csv,png}). Run from the repo root:
PYTHONPATH=. python benchmarks/plan_speed.py
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from cosim.plan import plan

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results"
ARGS = dict(phase="decode", batch=64, seq=8192, objective="latency")


def in_process(**kw) -> tuple[float, object]:
    plan("llama3_70b", "dgx_h100", **ARGS, **kw)
    ts, res = [], None
    for _ in range(5):
        t = time.perf_counter()
        res = plan("llama3_70b", "dgx_h100", **ARGS, **kw)
        ts.append(time.perf_counter() - t)
    return statistics.median(ts), res


def command(outputs: bool) -> tuple[float, float]:
    cmd = [sys.executable, "-m", "cosim", "plan", "--model", "llama3_70b", "--system", "dgx_h100", "--phase", "decode",
           "--batch", "64", "--seq", "8192", "--objective", "latency"]
    if outputs:  # pandas (CSV) and matplotlib (plot) imports dominate this variant
        cmd += ["--out", str(OUT / "plan_llama3_70b_dgx_h100.csv"), "--plot", str(OUT / "plan_llama3_70b_dgx_h100.png")]
    walls, cpus = [], []
    for _ in range(3):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        walls.append(time.perf_counter() - t)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    load0 = os.getloadavg()
    t_search, res = in_process()
    t_fixed, res_fixed = in_process(max_microbatches=1)  # m = 1 only: no search
    wall, cpu = command(False)
    wall_o, cpu_o = command(True)
    best = res.best
    out = {"load_avg_1_5_15": os.getloadavg(), "load_avg_at_start": load0, "cores": os.cpu_count(),
           "plan_in_process_s": {"microbatch_search": t_search, "microbatches_fixed_1": t_fixed},
           "layouts_priced": {"search": len(res.rows), "fixed": len(res_fixed.rows)},
           "command_wall_s": wall, "command_cpu_s": cpu,
           "command_with_csv_and_plot_wall_s": wall_o, "command_with_csv_and_plot_cpu_s": cpu_o,
           "best": {"layout": best.layout, "step_ms": best.step_latency_s * 1e3,
                    "memory_per_device_GB": best.memory_per_device_bytes / 1e9}}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "plan_speed.json").write_text(json.dumps(out, indent=1))
    md = ["# `cosim plan` speed: Llama-3-70B decode, batch 64, context 8192, DGX H100, roofline", "",
          f"machine: {os.cpu_count()} cores, load average {out['load_avg_1_5_15'][0]:.2f} (1 min)", "",
          "| what | seconds |", "|---|---:|",
          f"| planning in process, micro-batch search (median of 5) | {t_search:.3f} |",
          f"| planning in process, one micro-batch count (median of 5) | {t_fixed:.3f} |",
          f"| whole `cosim plan` command, wall (median of 3) | {wall:.2f} |",
          f"| whole `cosim plan` command, CPU (median of 3) | {cpu:.2f} |",
          f"| the command with `--out plan.csv --plot plan.png`, wall | {wall_o:.2f} |",
          f"| the command with `--out plan.csv --plot plan.png`, CPU | {cpu_o:.2f} |", "",
          f"best for latency: {best.layout}, {best.step_latency_s * 1e3:.1f} ms/token, "
          f"{best.memory_per_device_bytes / 1e9:.1f} GB per GPU"]
    (OUT / "plan_speed.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
