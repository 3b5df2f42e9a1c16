"""How far accuracy figures move under ~1-ulp input noise (SmolLM2-135M, the 512-token
window of benchmarks/real_accuracy_table.py: 256-token prompt, 255 scored predictions).

    python benchmarks/acts_noise_spread.py [--tokens 512] [--seeds 5] [--fresh]

Seed 0 is the unperturbed model (its row equals real_accuracy_table's); seed s > 0
multiplies the compressed model's embedding table by (1 + 2^-24 * N(0,1)) drawn with
numpy default_rng(s), rounded to float32 (cosim.accuracy.perturb_embedding, what
`cosim accuracy --spread N` runs): 47 % of SmolLM2's entries move, 42 % by one float32
ulp, 5 % by two or more; nothing else changes. The baseline is never perturbed. A
configuration whose figures move by more than the differences you want to resolve
cannot rank them: quantized activations (MX round-to-nearest on every GEMM and
attention operand) amplify such noise; weight-only formats and elementwise bf16 acts are
the controls. Rows are appended to benchmarks/results/acts_noise_spread.jsonl as they
finish (a rerun resumes); the table goes to acts_noise_spread.md and .json.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "benchmarks" / "results"

CONFIGS = [  # (label, weights, acts)
    ("mxfp8_e4m3 acts", "fp32", "mxfp8_e4m3"),
    ("mxfp4 acts", "fp32", "mxfp4"),
    ("mxfp4 weights + mxfp8 acts", "mxfp4", "mxfp8_e4m3"),
    ("mxfp4 weights (control)", "mxfp4", "fp32"),
    ("bf16 acts (control)", "fp32", "bf16"),
]
from cosim.accuracy import NOISE_REL as NOISE  # noqa: E402  relative standard deviation 2^-24


def run(label, weights, acts, seed, tokens):
    from cosim.accuracy import (_baseline_run, _checkpoint, load_text_tokens, next_token_scores, perplexity,
                                perturb_embedding)
    from cosim.functional.lm import DecoderLM, Numerics
    from cosim.functional.metrics import log_softmax
    t0 = time.perf_counter()
    ck = _checkpoint("smollm2_135m")
    ids, _ = load_text_tokens(ck, None, tokens)
    P = ids.size // 2
    base = _baseline_run("smollm2_135m", ids.tobytes(), P)
    m = DecoderLM(ck, Numerics.from_options(weights, acts, "fp32"), weight_sqnr=False)
    moved, pert = 0.0, None
    if seed:  # the perturbed table is the pass's argument (cosim.accuracy._spread's way), the model unchanged
        e = np.asarray(m.embed, np.float32)
        pert = perturb_embedding(e, seed)
        moved = float(np.mean(pert != e))
    out = m.forward(ids, P, embed=pert)
    lr, lp = log_softmax(base.logits, axis=1), log_softmax(out.logits, axis=1)
    tgt = ids[out.positions + 1]
    sc = next_token_scores(lr, lp, tgt)  # what cosim accuracy reports, the same function
    return {"label": label, "weights": weights, "acts": acts, "seed": seed, "tokens_window": tokens,
            "embed_entries_moved": moved, "baseline_perplexity": perplexity(lr, tgt),
            "perplexity": sc["perplexity"], "kl": sc["kl"], "top1_agreement": sc["top1"],
            "elapsed_s": time.perf_counter() - t0}


def summarise(rows):
    out = []
    for label, w, a in CONFIGS:
        rs = [r for r in rows if r["label"] == label]
        if not rs:
            continue
        ppl, kl, t1 = (np.array([r[k] for r in rs]) for k in ("perplexity", "kl", "top1_agreement"))
        out.append({"label": label, "seeds": len(rs), "ppl_min": ppl.min(), "ppl_max": ppl.max(),
                    "ppl_spread_pct": 100 * (ppl.max() - ppl.min()) / np.median(ppl),
                    "kl_min": kl.min(), "kl_max": kl.max(),
                    "kl_spread_pct": 100 * (kl.max() - kl.min()) / np.median(kl) if np.median(kl) > 0 else math.nan,
                    "top1_min": t1.min(), "top1_max": t1.max(), "unperturbed_ppl": rs[0]["perplexity"] if
                    rs[0]["seed"] == 0 else math.nan})
    return out


def write(rows, tokens):
    summ = summarise(rows)
    base = rows[0]["baseline_perplexity"] if rows else math.nan
    lines = [f"# Accuracy spread under ~1-ulp input noise: SmolLM2-135M, {tokens}-token window", "",
             f"Seed 0 unperturbed; seeds 1.. multiply the compressed model's embedding table by (1 + 2^-24 N(0,1)) "
             f"(float32; 47 % of its entries move, 42 % by one ulp). Baseline perplexity {base:.3f} (never perturbed). "
             "Spread = (max - min) / median over the seeds. Written by benchmarks/acts_noise_spread.py.", "",
             "| configuration | seeds | perplexity min .. max | spread | KL min .. max | spread | top-1 min .. max |",
             "|---|--:|--:|--:|--:|--:|--:|"]
    for s in summ:
        lines.append(f"| {s['label']} | {s['seeds']} | {s['ppl_min']:.2f} .. {s['ppl_max']:.2f} | "
                     f"{s['ppl_spread_pct']:.1f} % | {s['kl_min']:.4g} .. {s['kl_max']:.4g} | "
                     f"{s['kl_spread_pct']:.1f} % | {100 * s['top1_min']:.1f} .. {100 * s['top1_max']:.1f} % |")
    (OUT / "acts_noise_spread.md").write_text("\n".join(lines) + "\n")
    (OUT / "acts_noise_spread.json").write_text(json.dumps({"tokens": tokens, "noise_rel_std": NOISE,
                                                            "summary": summ, "rows": rows}, indent=1, default=float))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokens", type=int, default=512)
    ap.add_argument("--seeds", type=int, default=5, help="seed 0 (unperturbed) .. seeds-1")
    ap.add_argument("--fresh", action="store_true")
    args = ap.parse_args()
    log = OUT / "acts_noise_spread.jsonl"
    if args.fresh and log.exists():
        log.unlink()
    from cosim.jsonio import finished_rows
    done = {(d["label"], d["seed"]): d for d in finished_rows(log, tokens_window=args.tokens)}
    for seed in range(args.seeds):
        for label, w, a in CONFIGS:
            if (label, seed) in done:
                continue
            row = run(label, w, a, seed, args.tokens)
            with log.open("a") as f:
                f.write(json.dumps(row, default=float) + "\n")
            done[row["label"], seed] = row
            print(f"{label:<30} seed {seed}  ppl {row['perplexity']:8.3f}  KL {row['kl']:.4f}  "
                  f"top1 {row['top1_agreement']:.3f}  {row['elapsed_s']:.0f} s", flush=True)
            write([done[k] for k in sorted(done, key=lambda k: (k[1], k[0]))], args.tokens)
    write([done[k] for k in sorted(done, key=lambda k: (k[1], k[0]))], args.tokens)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
