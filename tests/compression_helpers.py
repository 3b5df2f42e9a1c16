"""Traces and models for the compression tests (the lead's builder and bundled models)."""

from __future__ import annotations

from workloads.builder import build_trace
from workloads.models import load_model

LLAMA3_8B = load_model("llama3_8b")
LLAMA2_7B = load_model("llama2_7b")
MIXTRAL = load_model("mixtral_8x7b")
DSV2_LITE = load_model("deepseek_v2_lite")


def trace_for(model, phase: str = "decode", batch: int = 1, seq: int = 4096, weights: str = "bf16",
              kv: str = "bf16", attention: str = "fused"):
    # the recipe tests run Llama-3-8B (8K context) at 16-32K on purpose, as the papers do
    return build_trace(model, phase=phase, batch=batch, seq=seq, weights=weights, acts="bf16", kv=kv,
                       attention=attention, allow_beyond_max_context=True)
