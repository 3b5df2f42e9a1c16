"""Wall clock of `cosim accuracy` with per-call-scaled activations (NVFP4, plain intN: one scale per call), whose
decode rows and decode attention steps are quantized causally (each decode row / step its own scale), before and
after they were vectorised (session 14: one pass over all rows / steps, the same bits).

    python benchmarks/acts_decode_speed.py [--against 46428ed] [--acts nvfp4,int8] [--tokens 256] [--repeat 3]

Each run is a fresh process, `python -m cosim accuracy --checkpoint smollm2_135m --tokens N --acts FMT --out x.json`
(the figure a user waits for: import, checkpoint parse, baseline and compressed forward passes). The revision
`--against` is extracted with `git archive` into a temporary folder; each tree has its own numba cache, warmed by
one untimed run. Old and new runs alternate (the order swapped every round, so a load change hits both); the
table gives each side's median of `--repeat` runs (wall, the elapsed time the command reports, CPU) and the
ratios, and checks that both report the same
perplexity, KL and top-1 (exact equality of the JSON figures). Writes benchmarks/results/acts_decode_speed.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from startup_speed import _old_tree, _timed  # noqa: E402  (one extraction and timing rule for both benchmarks)

ROOT = Path(__file__).resolve().parent.parent
FIGURES = ("perplexity", "kl", "top1_agreement", "baseline_perplexity", "hidden_sqnr_db")


def _env(code: Path, cache: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(code), "NUMBA_CACHE_DIR": str(cache)}
    env.pop("COSIM_CACHE_DIR", None)  # no opt-in checkpoint cache: every run parses the GGUF, as a user's does
    return env


def _run(code: Path, cache: Path, out: Path, acts: str, tokens: int) -> tuple[float, float, float, dict]:
    """(wall s of the process, its CPU s, the elapsed_s it reports: checkpoint load, baseline and compressed passes
    without interpreter start and imports; its figures)."""
    cmd = [sys.executable, "-m", "cosim", "accuracy", "--checkpoint", "smollm2_135m", "--tokens", str(tokens),
           "--acts", acts, "--out", str(out)]
    wall, _, cpu = _timed(cmd, _env(code, cache), code)
    res = json.loads(out.read_text())
    return wall, cpu, res["elapsed_s"], {k: res[k] for k in FIGURES}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--against", default="46428ed", help="git revision before the vectorisation (default 46428ed)")
    ap.add_argument("--acts", default="nvfp4,int8")
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args(argv)
    rows = []
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        trees = {"old": _old_tree(a.against, tmp), "new": ROOT}
        caches = {k: tmp / f"numba-{k}" for k in trees}
        for acts in a.acts.split(","):
            figs, wall, cpu, inner = {}, {"old": [], "new": []}, {"old": [], "new": []}, {"old": [], "new": []}
            for side in trees:  # untimed: fills each tree's numba cache
                *_, figs[side] = _run(trees[side], caches[side], tmp / f"{side}.json", acts, a.tokens)
            for r in range(a.repeat):
                for side in (("old", "new") if r % 2 == 0 else ("new", "old")):
                    w, c, e, f = _run(trees[side], caches[side], tmp / f"{side}.json", acts, a.tokens)
                    if f != figs[side]:
                        raise RuntimeError(f"{side} {acts}: figures changed between runs: {figs[side]} vs {f}")
                    wall[side].append(w)
                    cpu[side].append(c)
                    inner[side].append(e)
            same = figs["old"] == figs["new"]
            med = {s: statistics.median(wall[s]) for s in wall}
            rows.append({"acts": acts, "tokens": a.tokens, "old_wall_s": wall["old"], "new_wall_s": wall["new"],
                         "old_cpu_s": cpu["old"], "new_cpu_s": cpu["new"], "old_elapsed_s": inner["old"],
                         "new_elapsed_s": inner["new"], "old_median_s": med["old"],
                         "new_median_s": med["new"], "ratio": med["old"] / med["new"], "figures_identical": same,
                         "figures": figs["new"], "figures_old": figs["old"]})
            eo, en = statistics.median(inner["old"]), statistics.median(inner["new"])
            print(f"{acts:8s} wall old {med['old']:6.2f} s  new {med['new']:6.2f} s  x{med['old'] / med['new']:.2f};  "
                  f"elapsed old {eo:6.2f} s  new {en:6.2f} s  x{eo / en:.2f};  "
                  f"figures {'identical' if same else 'DIFFER'}", flush=True)
    meta = {"against": a.against, "repeat": a.repeat, "machine": platform.machine(), "cpus": os.cpu_count(),
            "load_before": load0, "load_after": os.getloadavg(),
            "command": "python -m cosim accuracy --checkpoint smollm2_135m --tokens N --acts FMT --out x.json"}
    res = ROOT / "benchmarks" / "results"
    (res / "acts_decode_speed.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    lines = ["# `cosim accuracy` with per-call-scaled activations: decode rows quantized one by one vs in one pass",
             "", f"`benchmarks/acts_decode_speed.py --against {a.against} --repeat {a.repeat}`: fresh processes, "
             f"old ({a.against}) and new alternating, median wall seconds of {a.repeat} runs each (numba caches "
             f"warmed by one untimed run per tree). {os.cpu_count()} CPUs; load average "
             f"{load0[0]:.2f} before, {meta['load_after'][0]:.2f} after (a shared machine).", "",
             "Wall: the whole process (interpreter, imports, checkpoint parse, baseline and compressed forward passes); "
             "elapsed: what the command itself reports (the same without interpreter start and imports).", "",
             "| acts | tokens | old wall s | new wall s | old / new (wall) | old elapsed s | new elapsed s "
             "| old / new (elapsed) | old CPU s | new CPU s | perplexity | KL | top-1 | figures identical |",
             "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|"]
    for r in rows:
        f = r["figures"]
        eo, en = statistics.median(r["old_elapsed_s"]), statistics.median(r["new_elapsed_s"])
        lines.append(f"| {r['acts']} | {r['tokens']} | {r['old_median_s']:.2f} | {r['new_median_s']:.2f} | "
                     f"{r['ratio']:.2f} | {eo:.2f} | {en:.2f} | {eo / en:.2f} | {statistics.median(r['old_cpu_s']):.2f} | "
                     f"{statistics.median(r['new_cpu_s']):.2f} | {f['perplexity']:.4f} | {f['kl']:.4f} | "
                     f"{100 * f['top1_agreement']:.2f}% | {'yes' if r['figures_identical'] else 'NO'} |")
    (res / "acts_decode_speed.md").write_text("\n".join(lines) + "\n")
    return 0 if all(r["figures_identical"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
