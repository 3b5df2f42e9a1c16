"""Accuracy of number formats and compression recipes on a real checkpoint (SmolLM2-135M
on the bundled text), and how often the synthetic twins rank them the same way.

    python benchmarks/real_accuracy_table.py [--tokens 512] [--fresh]

Rows are appended to benchmarks/results/real_accuracy.jsonl as they finish (a rerun
resumes; --fresh starts over); the table goes to benchmarks/results/real_accuracy.md and
.json. Every row is one `cosim.accuracy.evaluate_accuracy` run against the same
unquantized baseline on the same tokens.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "benchmarks" / "results"

# (group, label, options); eviction budgets are set for the 256-token prompt of a
# 512-token window: 25 % and 50 % of the prompt
CONFIGS = [
    ("weights", "bf16", dict(weights="bf16")),
    ("weights", "fp8_e4m3 (per-tensor scale)", dict(weights="fp8_e4m3")),
    ("weights", "mxfp8_e4m3", dict(weights="mxfp8_e4m3")),
    ("weights", "mxfp6_e2m3", dict(weights="mxfp6_e2m3")),
    ("weights", "mx6", dict(weights="mx6")),
    ("weights", "nvfp4", dict(weights="nvfp4")),
    ("weights", "mxfp4", dict(weights="mxfp4")),
    ("weights", "int4_g128", dict(weights="int4_g128")),
    ("weights", "mx4", dict(weights="mx4")),
    ("acts", "mxfp8_e4m3 acts", dict(acts="mxfp8_e4m3")),
    ("acts", "mxfp4 acts", dict(acts="mxfp4")),
    ("combined", "mxfp4 weights + mxfp8 acts", dict(weights="mxfp4", acts="mxfp8_e4m3")),
    ("kv_quant", "fp8_e4m3 KV (per-head scale)", dict(kv="fp8_e4m3")),
    ("kv_quant", "mxfp8 KV", dict(recipe="mxfp8_kv")),
    ("kv_quant", "mxfp4 KV", dict(recipe="mxfp4_kv")),
    ("kv_quant", "KIVI-4", dict(recipe="kivi4")),
    ("kv_quant", "KIVI-2", dict(recipe="kivi2")),
    ("kv_quant", "KIVI-2, per-token keys (ablation)", dict(recipe="kivi2", ablation="kivi_token_keys")),
    ("kv_quant", "KVQuant-3 (nuq3-1%)", dict(recipe="kvquant3")),
    ("eviction", "H2O 50%", dict(recipe="h2o(heavy_ratio=0.25,recent_ratio=0.25)")),
    ("eviction", "H2O 20%", dict(recipe="h2o")),
    ("eviction", "SnapKV 128", dict(recipe="snapkv(capacity=128,window=16)")),
    ("eviction", "SnapKV 64", dict(recipe="snapkv(capacity=64,window=16)")),
    ("eviction", "StreamingLLM 4+124", dict(recipe="streaming_llm(recent_tokens=124)")),
    ("eviction", "StreamingLLM 4+60", dict(recipe="streaming_llm(recent_tokens=60)")),
    ("eviction", "RocketKV 128", dict(recipe="rocketkv(token_budget=128,window=16)")),
    ("eviction", "RocketKV 64", dict(recipe="rocketkv(token_budget=64,window=16)")),
    # low-rank K/V from whitened SVDs of SmolLM2's own W_k/W_v (K+V width 384 per layer)
    ("low_rank", "Palu K 25 % / V 75 % rank", dict(recipe="palu")),
    ("low_rank", "Palu K 50 % / V 75 % rank", dict(recipe="palu(key_rank_ratio=0.5,value_rank_ratio=0.75)")),
    ("low_rank", "MLA latent 192", dict(recipe="mla(kv_lora_rank=192)")),
    ("low_rank", "MLA latent 96", dict(recipe="mla(kv_lora_rank=96)")),
] + [("weights_fp32_encoder", f"MiniLM {f}", dict(checkpoint="minilm_l6", weights=f))
     # an encoder whose published weights are fp32 (SmolLM2's bundled weights are already Q4_1):
     # the weight-format ranking without a 4-bit grid underneath
     for f in ("fp8_e4m3", "mxfp8_e4m3", "mxfp6_e2m3", "mx6", "nvfp4", "mxfp4", "int4_g128", "mx4")]


def _kivi_token_keys():
    from cosim.functional.compression.kv import KIVIPolicy
    return KIVIPolicy(2, 2, 32, 128, key_mode="token")


def run_row(label, opts, tokens):
    from cosim.accuracy import evaluate_accuracy
    opts = dict(opts)
    abl = opts.pop("ablation", None)
    if abl == "kivi_token_keys":
        opts.pop("recipe")
        opts["kv_policy"] = _kivi_token_keys
    ck = opts.pop("checkpoint", "smollm2_135m")
    r = evaluate_accuracy(ck, tokens=tokens, **opts)
    return {k: getattr(r, k) for k in ("checkpoint", "baseline_perplexity", "perplexity", "perplexity_delta", "kl",
                                       "top1_agreement", "mass_kept", "tokens_read", "hidden_sqnr_db",
                                       "embedding_cosine", "tokens", "prefill", "elapsed_s", "numerics",
                                       "baseline_note")}


def synthetic_score(group, opts):
    """The synthetic twin's error for the same choice (higher = worse), or None."""
    from cosim.functional.compression.twin import run_twin
    if group in ("weights", "weights_fp32_encoder"):
        fmt = opts["weights"]
        res = next(iter(run_twin(f"mxfp4_weights(format={fmt})").values()))
        return -res.get("weight_gemm_sqnr_db", math.nan)
    if group in ("kv_quant", "eviction") and "recipe" in opts and "ablation" not in opts:
        res = next(iter(run_twin(opts["recipe"], prompt=256, steps=32).values()))
        return res.get("attn_rel_error", math.nan)
    return None


def pairwise_agreement(a, b):
    """Fraction of pairs that the two score lists order the same way (ties skipped)."""
    agree = total = 0
    for i, j in itertools.combinations(range(len(a)), 2):
        da, db = a[i] - a[j], b[i] - b[j]
        if da == 0 or db == 0 or math.isnan(da) or math.isnan(db):
            continue
        total += 1
        agree += (da > 0) == (db > 0)
    return agree / total if total else math.nan, total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=512)
    ap.add_argument("--fresh", action="store_true")
    ap.add_argument("--no-synthetic", action="store_true", help="skip the synthetic-twin ranking comparison")
    ap.add_argument("--tables-only", action="store_true",
                    help="rewrite the tables from the finished rows in real_accuracy.jsonl; run nothing")
    ap.add_argument("--resynthetic", action="store_true",
                    help="recompute only the synthetic twins' scores of finished rows (after a generator change)")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    log = OUT / "real_accuracy.jsonl"
    if args.fresh and log.exists():
        log.unlink()
    from cosim.jsonio import finished_rows
    done = {d["label"]: d for d in finished_rows(log, tokens_window=args.tokens)}  # a cut line is redone
    t0 = time.perf_counter()
    if args.tables_only:
        write_tables([done[label] for _, label, _ in CONFIGS if label in done], args.tokens, None)
        return 0
    if args.resynthetic:
        for group, label, opts in CONFIGS:
            row = done.get(label)
            if row and row["status"] == "ok":
                try:
                    row["synthetic_error"] = synthetic_score(group, opts)
                    row.pop("synthetic_status", None)
                except Exception as e:
                    row["synthetic_error"], row["synthetic_status"] = None, f"error: {e}"
        log.write_text("".join(json.dumps(r, default=float) + "\n" for r in done.values()))
    for group, label, opts in CONFIGS:
        if label in done:
            continue
        try:
            row = {"group": group, "label": label, "tokens_window": args.tokens, "status": "ok",
                   **run_row(label, opts, args.tokens)}
        except Exception as e:  # a config that cannot run is a row that says why, never a silent gap
            row = {"group": group, "label": label, "tokens_window": args.tokens, "status": f"error: {e}"}
        if not args.no_synthetic and row["status"] == "ok":
            try:
                row["synthetic_error"] = synthetic_score(group, opts)
            except Exception as e:
                row["synthetic_error"] = None
                row["synthetic_status"] = f"error: {e}"
        with log.open("a") as f:
            f.write(json.dumps(row, default=float) + "\n")
        done[label] = row
        print(f"{label:<36} ppl {row.get('perplexity', math.nan):8.3f}  KL {row.get('kl', math.nan):.4f}  "
              f"top1 {row.get('top1_agreement', math.nan):.3f}  {row['status']}", flush=True)
    rows = [done[label] for _, label, _ in CONFIGS if label in done]
    write_tables(rows, args.tokens, time.perf_counter() - t0)
    return 0


# The README's compact table: one line per family, configurations joined by " / ".
SUMMARY = [
    ("weights bf16 / fp8_e4m3 (scaled) / mxfp8", ["bf16", "fp8_e4m3 (per-tensor scale)", "mxfp8_e4m3"]),
    ("weights mxfp6_e2m3 / mx6", ["mxfp6_e2m3", "mx6"]),
    ("weights nvfp4 / mxfp4 / int4_g128 / mx4", ["nvfp4", "mxfp4", "int4_g128", "mx4"]),
    ("activations mxfp8_e4m3 / mxfp4", ["mxfp8_e4m3 acts", "mxfp4 acts"]),
    ("weights mxfp4 + activations mxfp8_e4m3", ["mxfp4 weights + mxfp8 acts"]),
    ("KV fp8_e4m3 (per-head scale) / mxfp8 / mxfp4", ["fp8_e4m3 KV (per-head scale)", "mxfp8 KV", "mxfp4 KV"]),
    ("KV KIVI-4 / KIVI-2 / KIVI-2 per-token keys / KVQuant-3",
     ["KIVI-4", "KIVI-2", "KIVI-2, per-token keys (ablation)", "KVQuant-3 (nuq3-1%)"]),
    ("H2O 50 % / 20 % of the prompt", ["H2O 50%", "H2O 20%"]),
    ("SnapKV 128 / 64 tokens", ["SnapKV 128", "SnapKV 64"]),
    ("StreamingLLM 4+124 / 4+60", ["StreamingLLM 4+124", "StreamingLLM 4+60"]),
    ("RocketKV 128 / 64 tokens", ["RocketKV 128", "RocketKV 64"]),
    ("Palu K/V rank 25/75 % / 50/75 % (whitened SVD, no fine-tuning)",
     ["Palu K 25 % / V 75 % rank", "Palu K 50 % / V 75 % rank"]),
    ("MLA conversion, latent 192 / 96 of {kv_width} (whitened joint SVD, no fine-tuning)",
     ["MLA latent 192", "MLA latent 96"]),
]


def kv_width(checkpoint: str = "smollm2_135m") -> int:
    """K+V width per token of one layer (2 x kv_heads x head_dim), read from the checkpoint's
    config so the MLA label's denominator is derived, not typed."""
    from cosim.functional.checkpoint.loader import load_checkpoint
    cfg = load_checkpoint(checkpoint).config
    return 2 * cfg.kv_heads * cfg.head_dim


def _joined(rows, fmt) -> str:
    return " / ".join("n/a" if r is None or r["status"] != "ok" else fmt(r) for r in rows)


def summary_lines(rows, tokens) -> list[str]:
    """The README-sized table (benchmarks/readme_sync.py copies it into README.md);
    a configuration that did not run shows as n/a, never as a gap."""
    by_label = {r["label"]: r for r in rows}
    out = [f"| choice (SmolLM2-135M, {tokens}-token window) | Δ perplexity | KL (nats/token) | top-1 agreement |",
           "|---|--:|--:|--:|"]
    fields = {"kv_width": kv_width()} if any("{kv_width}" in t for t, _ in SUMMARY) else {}
    for title, labels in SUMMARY:
        title = title.format(**fields)
        rs = [by_label.get(lb) for lb in labels]
        delta = _joined(rs, lambda r: f"{r['perplexity_delta']:+.2f}")
        kl = _joined(rs, lambda r: f"{r['kl']:#.3g}")
        top1 = _joined(rs, lambda r: f"{100 * r['top1_agreement']:.1f}")
        out.append(f"| {title} | {delta} | {kl} | {top1} % |")
    return out


def write_tables(rows, tokens, elapsed):
    groups = {}
    for r in rows:
        if r["status"] == "ok" and r.get("synthetic_error") is not None:
            groups.setdefault(r["group"], []).append(r)
    agreement = {}
    for g, rs in groups.items():
        real = [(-r["hidden_sqnr_db"] if g == "weights_fp32_encoder" else r["kl"]) for r in rs]
        frac, n = pairwise_agreement(real, [r["synthetic_error"] for r in rs])
        agreement[g] = {"pairwise_agreement": frac, "pairs": n, "configs": [r["label"] for r in rs]}
    base = next((r for r in rows if r["status"] == "ok" and r["group"] != "weights_fp32_encoder"), {})
    lines = [f"# Accuracy on a real checkpoint: SmolLM2-135M, {tokens}-token window of the bundled text",
             "", f"{base.get('baseline_note', '')}. Prompt {base.get('prefill', '?')} tokens, then "
             f"{base.get('tokens', '?')} teacher-forced decode predictions scored; baseline perplexity "
             f"{base.get('baseline_perplexity', math.nan):.3f}. KL = mean KL(baseline || compressed) per token "
             "(nats); top-1 = fraction of next tokens ranked first by both; mass kept = exact attention mass on "
             "the tokens the cache still holds (eviction). Written by benchmarks/real_accuracy_table.py.", "",
             "| group | configuration | perplexity | Δ ppl | KL | top-1 | mass kept | status |",
             "|---|---|--:|--:|--:|--:|--:|---|"]
    enc = [r for r in rows if r["group"] == "weights_fp32_encoder"]
    for r in rows:
        if r in enc:
            continue
        if r["status"] != "ok":
            lines.append(f"| {r['group']} | {r['label']} | | | | | | {r['status']} |")
            continue
        mk = "" if math.isnan(r["mass_kept"]) else f"{r['mass_kept']:.3f}"
        lines.append(f"| {r['group']} | {r['label']} | {r['perplexity']:.3f} | {r['perplexity_delta']:+.3f} | "
                     f"{r['kl']:.4f} | {r['top1_agreement']:.1%} | {mk} | ok |")
    if enc:
        lines += ["", f"## Weight formats on an fp32 checkpoint: all-MiniLM-L6-v2 (encoder), {tokens} tokens", "",
                  "SmolLM2's bundled weights already lie on a Q4_1 grid, which can favour some 4-bit grids over "
                  "others; MiniLM's published weights are fp32. Encoders have no next-token distribution: the "
                  "metrics are the SQNR of the final hidden states and the cosine of mean-pooled sentence "
                  "embeddings against the fp32 model.", "",
                  "| weights | final hidden SQNR (dB) | embedding cosine | status |", "|---|--:|--:|---|"]
        for r in enc:
            if r["status"] != "ok":
                lines.append(f"| {r['label']} | | | {r['status']} |")
            else:
                lines.append(f"| {r['label']} | {r['hidden_sqnr_db']:.2f} | {r['embedding_cosine']:.5f} | ok |")
    lines += ["", "## Do the synthetic twins rank these choices like the real checkpoint?", "",
              "Pairwise agreement between the real KL and the synthetic twin's error (weights: GEMM SQNR on "
              "synthetic weights; KV: attention output error on a synthetic head), over all pairs in a group.", "",
              "| group | pairs | agreement |", "|---|--:|--:|"]
    for g, a in agreement.items():
        lines.append(f"| {g} | {a['pairs']} | {a['pairwise_agreement']:.0%} |")
    (OUT / "real_accuracy.md").write_text("\n".join(lines) + "\n")
    (OUT / "real_accuracy_summary.md").write_text("\n".join(summary_lines(rows, tokens)) + "\n")
    if elapsed is None:  # --tables-only: the JSON (and its run time) stays as the run wrote it
        print("\n".join(lines))
        return
    (OUT / "real_accuracy.json").write_text(json.dumps({"tokens": tokens, "rows": rows, "agreement": agreement,
                                                        "elapsed_s": elapsed}, indent=1, default=float) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
