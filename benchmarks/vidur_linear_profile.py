"""Per-layer linear/norm/activation kernel times: Vidur's measured H100 profile for
Llama-2-7B (data/profiling/compute/h100/meta-llama/Llama-2-7b-hf/mlp.csv, TP=1, median
of its profiling runs) vs cosim's roofline and analytical (H100-SXM calibration) prices of
the same ops. This is the part of a serving step the Vidur comparison does NOT share
(attention is shared by construction, see serving_vs_vidur.py), so it explains the
TTFT/TPOT differences there. Writes benchmarks/results/vidur_linear_profile.md."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cosim  # noqa: E402
from hwmodels.estimate import estimate_ops  # noqa: E402

if len(sys.argv) != 2:
    raise SystemExit("usage: python benchmarks/vidur_linear_profile.py VIDUR_CHECKOUT")
VIDUR = Path(sys.argv[1])
# Vidur op -> cosim ops of one layer (Vidur's attn_pre_proj is the fused QKV GEMM)
GROUPS = {"attn_pre_proj": ("q_proj", "k_proj", "v_proj"), "attn_post_proj": ("o_proj",),
          "mlp_up_proj": ("gate_proj", "up_proj"), "mlp_act": ("act",), "mlp_down_proj": ("down_proj",),
          "input_layernorm": ("attn_norm",), "post_attention_layernorm": ("mlp_norm",), "attn_rope": ("rope",),
          "add": ("attn_residual", "mlp_residual")}
TOKENS = (1, 8, 32, 128, 512, 2048)


def main():
    df = pd.read_csv(VIDUR / "data/profiling/compute/h100/meta-llama/Llama-2-7b-hf/mlp.csv")
    df = df[df.num_tensor_parallel_workers == 1].groupby("num_tokens").median(numeric_only=True)
    hw = cosim.load_hw("h100_sxm")
    rows = []
    for T in TOKENS:
        tr = cosim.build_trace("llama2_7b", phase="decode", batch=T, seq=1024)
        ops = {o.name: o for o in tr.ops}
        tot = {"vidur": 0.0, "roofline": 0.0, "analytical": 0.0}
        for vop, names in GROUPS.items():
            v = float(df.loc[T, f"time_stats.{vop}.median"]) * 1e-3 if f"time_stats.{vop}.median" in df else 0.0
            sel = [ops[n] for n in names]
            r = {lvl: sum(c.latency_s for c in estimate_ops(sel, hw, lvl)[0]) for lvl in ("roofline", "analytical")}
            tot["vidur"] += v
            for lvl in r:
                tot[lvl] += r[lvl]
        rows.append({"tokens": T, "vidur_us": 1e6 * tot["vidur"], "roofline_us": 1e6 * tot["roofline"],
                     "analytical_us": 1e6 * tot["analytical"],
                     "roofline/vidur": tot["roofline"] / tot["vidur"], "analytical/vidur": tot["analytical"] / tot["vidur"]})
    out = pd.DataFrame(rows)
    lines = ["Per-layer linear + norm + activation + residual time, Llama-2-7B, H100, TP1 "
             "(Vidur: measured; cosim: modelled)", "",
             "| tokens | Vidur measured (us) | cosim roofline (us) | cosim analytical (us) | roofline/Vidur | analytical/Vidur |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r.tokens} | {r.vidur_us:.1f} | {r.roofline_us:.1f} | {r.analytical_us:.1f} | "
              f"{r._5:.2f} | {r._6:.2f} |" for r in out.itertuples()]
    (ROOT / "benchmarks/results/vidur_linear_profile.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
