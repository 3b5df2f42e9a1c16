"""docs/real-accuracy.md's "Small windows are noisy" table: SmolLM2-135M, --weights mxfp4 --acts mxfp8_e4m3, the
default window split (prompt = half), dequantize+BLAS against --exact (integer MX block products) at several
windows. Each row is what

    cosim accuracy --checkpoint smollm2_135m --tokens T --weights mxfp4 --acts mxfp8_e4m3 [--exact]

reports (cosim.accuracy.evaluate_accuracy, the function the command calls, run in this process).

    python benchmarks/window_noise.py [--tokens 16,64,128,256,512]

Writes benchmarks/results/window_noise.{json,md} with the commit it ran at (cosim.report.git_commit: whether
tracked files were modified, or why it is unknown).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "benchmarks" / "results"
from cosim.report import git_commit  # noqa: E402  (the one commit label: report JSONs' too)

OPTIONS = dict(checkpoint="smollm2_135m", weights="mxfp4", acts="mxfp8_e4m3")


def main(argv=None) -> int:
    from cosim.accuracy import evaluate_accuracy
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", default="16,64,128,256,512")
    a = ap.parse_args(argv)
    rows = []
    for n in (int(t) for t in a.tokens.split(",")):
        row = {"tokens": n}
        for key, exact in (("default", False), ("exact", True)):
            t0 = time.perf_counter()
            r = evaluate_accuracy(tokens=n, exact=exact, per_layer=False, **OPTIONS)
            row[key] = {"kl": r.kl, "top1": r.top1_agreement, "perplexity": r.perplexity, "predictions": r.tokens,
                        "elapsed_s": time.perf_counter() - t0}
        row["gap"] = abs(row["default"]["kl"] - row["exact"]["kl"]) / row["default"]["kl"]
        rows.append(row)
        print(f"{n:4d} tokens: KL {row['default']['kl']:.4f} / exact {row['exact']['kl']:.4f} "
              f"(gap {100 * row['gap']:.2f} %), top-1 {100 * row['default']['top1']:.1f} / "
              f"{100 * row['exact']['top1']:.1f} %", flush=True)
    commit = git_commit()
    (OUT / "window_noise.json").write_text(json.dumps({"commit": commit, "options": OPTIONS, "rows": rows},
                                                      indent=1) + "\n")
    lines = [f"SmolLM2-135M, `--weights mxfp4 --acts mxfp8_e4m3`, prompt = half the window, dequantize+BLAS vs "
             f"`--exact`; measured at commit {commit} by benchmarks/window_noise.py.", "",
             "| tokens (predictions) | KL default | KL `--exact` | gap | top-1 default / exact |",
             "|--:|--:|--:|--:|--:|"]
    for r in rows:
        d, e = r["default"], r["exact"]
        gap = "< 0.01 %" if r["gap"] < 1e-4 else f"{100 * r['gap']:.1f} %"
        lines.append(f"| {r['tokens']} ({d['predictions']}) | {d['kl']:.4f} | {e['kl']:.4f} | {gap} | "
                     f"{100 * d['top1']:.1f} % / {100 * e['top1']:.1f} % |")
    (OUT / "window_noise.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
