"""The compression-recipe pricing audit (session 14): each defect pinned on a number a
reader can check by hand."""

import pytest

from compression_helpers import LLAMA3_8B, trace_for
from workloads.compression import apply_recipe


def kv_read(trace):
    """KV bytes the decode attention op(s) read per step (all layers, whole batch)."""
    return sum(sum(t.nbytes for t in op.inputs if t.role == "kv") * op.repeat
               for op in trace.ops if op.kind == "attention")


# ---- 1. quantize then evict: the fp16 window survives eviction whole ----------------
@pytest.mark.parametrize("phase", ["decode", "prefill"])
def test_kivi_then_h2o_footprint_keeps_the_fp16_value_window(phase):
    """Llama-3-8B, 8192 tokens, H2O keeps int(0.1·8192)·2 = 1638. Per KV head and layer:
    K = 1638·128 codes at 2 bit + fp16 scale/zero per 32 tokens per channel (3 bit/elem)
    = 78,624 B; V = 1510 quantized tokens · (32 B codes + 16 B scale/zero) + 128 fp16
    tokens · 256 B = 105,248 B; total 183,872 B · 8 heads · 32 layers = 47,071,232 B. The
    trace keeps whole K stat groups (51 of 51.19), 24,576 B less."""
    t = apply_recipe(trace_for(LLAMA3_8B, phase=phase, seq=8192), "kivi2+h2o", LLAMA3_8B)
    assert t.meta["kv_state"]["capacity"] == 1638
    kv = t.meta["footprint"]["kv_cache"]
    assert kv == pytest.approx(183_872 * 8 * 32, rel=1e-3)
    assert kv == pytest.approx(183_872 * 8 * 32 - 0.19 * 512 * 8 * 32, abs=512 * 8 * 32 * 0.5)
    if phase == "decode":
        assert kv >= kv_read(t)  # what a step reads is stored


def test_evict_then_quantize_prices_the_kept_cache_directly():
    """h2o+kivi2: KIVI lays out 1638 tokens itself: 1638 mod 128 = 102 keys still fp16."""
    t = apply_recipe(trace_for(LLAMA3_8B, seq=8192), "h2o+kivi2", LLAMA3_8B)
    k = 1536 * 128 * 2 / 8 + 1536 / 32 * 128 * 4 + 102 * 256
    v = 1510 * 48 + 128 * 256
    assert t.meta["footprint"]["kv_cache"] == pytest.approx((k + v) * 8 * 32)
    assert t.meta["footprint"]["kv_cache"] >= kv_read(t)


@pytest.mark.parametrize("spec", ["kivi2+h2o", "kvquant3+snapkv", "gear2+streaming_llm", "kivi2+snapkv",
                                  "fp8_kv+h2o", "mikv+h2o", "zipcache+snapkv", "h2o"])
def test_footprint_holds_what_a_step_reads(spec):
    t = apply_recipe(trace_for(LLAMA3_8B, seq=8192), spec, LLAMA3_8B)
    assert t.meta["footprint"]["kv_cache"] >= kv_read(t) * (1 - 1e-9)
