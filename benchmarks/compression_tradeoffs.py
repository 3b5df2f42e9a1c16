"""Accuracy next to cost, per bundled recipe: one table a co-design study starts from.

For each recipe: decode latency and memory of Llama-3-8B (dense recipes) or Mixtral
(MoE recipes) at 32K context, batch 8, on the H100 SXM roofline, and the recipe's
functional-twin error on synthetic tensors of the model's shapes (or `--checkpoint`).

    PYTHONPATH=. python benchmarks/compression_tradeoffs.py [--hw h100_sxm] [--prompt 4096]

Writes benchmarks/results/compression_tradeoffs.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from cosim.functional.compression.twin import METRICS, run_twin
from cosim.simulate import simulate
from workloads.builder import build_trace
from workloads.compression import list_recipes, load_recipe

OUT = Path(__file__).resolve().parent / "results"
MOE = ("moe_prune", "resmoe", "qmoe")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hw", default="h100_sxm")
    ap.add_argument("--prompt", type=int, default=4096)
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--checkpoint", default=None)
    args = ap.parse_args(argv)
    rows = []
    base = {}
    for name in ["(none)"] + list_recipes():
        method = load_recipe(name).method if name != "(none)" else ""
        model = "mixtral_8x7b" if method in MOE else "llama3_8b"
        # 32K on Llama-3-8B (8K context): a long-context study, priced on request (every row notes it)
        trace = build_trace(model, phase="decode", batch=8, seq=32768, recipe=None if name == "(none)" else name,
                            allow_beyond_max_context=True)
        rep = simulate(trace, args.hw, compute_fallback=True)
        if name == "(none)":
            for m in ("llama3_8b", "mixtral_8x7b"):
                r = simulate(build_trace(m, phase="decode", batch=8, seq=32768, allow_beyond_max_context=True),
                             args.hw)
                base[m] = r.total_latency_s
        row = {"recipe": name, "method": method, "model": model, "decode_ms": rep.total_latency_s * 1e3,
               "speedup": base[model] / rep.total_latency_s, "memory_GB": rep.memory_bytes / 1e9,
               "kv_GB": trace.meta["footprint"]["kv_cache"] / 1e9}
        if name != "(none)":
            tw = run_twin(name, model=model, checkpoint=args.checkpoint, prompt=args.prompt, steps=args.steps)[name]
            for key in METRICS:
                row[key] = tw.get(key)  # None: the method has no such metric (blank cell)
            row["seed"] = tw.get("seed")  # the twin's synthetic draws come from it (run_twin)
            row["status"] = tw.get("status", "ok")  # a NaN or skipped twin says why
        rows.append(row)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "compression_tradeoffs.json").write_text(json.dumps({"hw": args.hw, "rows": rows}, indent=1))
    keys = ["recipe", "model", "decode_ms", "speedup", "memory_GB", "kv_GB", "weight_gemm_sqnr_db",
            "attn_rel_error", "attn_kl", "mass_kept", "moe_rel_error", "seed", "status"]
    fmt = lambda v: "" if v is None else ("NaN" if isinstance(v, float) and math.isnan(v) else (
        f"{v:.3g}" if isinstance(v, float) else str(v)[:80]))
    lines = [f"# Recipes on {args.hw}: decode at 32K, batch 8 (roofline) and twin error", "",
             "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(fmt(r.get(k)) for k in keys) + " |" for r in rows]
    text = "\n".join(lines)
    (OUT / "compression_tradeoffs.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
