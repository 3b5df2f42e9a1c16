"""H2O's prefill memory by hand (session 20, kvfix): what is live at the layer being evicted and
which part moves with the KV format.

Llama-3-8B, batch 1, a 2048-token prompt, H2O heavy 10 % + recent 10 %: kept = 204 + 204 = 408.
L = 32 layers, 32 query heads, 8 KV heads of 128: K+V per token and layer = 2·8·128 = 2048 elements.
  one layer's probabilities  32·2048·2048 bf16     = 268,435,456 B   (activation format: KV-independent)
  its column sums            32·2048 fp32           =     262,144 B   (h2o_scores: fp32 whatever the KV)
  the evicting layer's K/V   (2048 − 408)·2048·b    = 6,717,440 B (bf16, b = 2) / 3,358,720 B (fp8, b = 1)
The fused builder's own activations (176,673,792 B) do not depend on the KV format; kv_cache is 32 layers
at 408 tokens: 408·32·4096 = 53,477,376 B (bf16), half (+ the fp8 per-head scales) in fp8.
So bf16 -> fp8 moves the prefill activations by exactly 3,358,720 B: half the KV-dependent term and no
more (the probabilities and column sums are the same bytes)."""

import pytest

from compression_helpers import LLAMA3_8B, trace_for
from workloads.compression import apply_recipe

BASE = 176_673_792
PROBS, COLSUMS = 32 * 2048 * 2048 * 2, 32 * 2048 * 4
TRANSIENT_BF16, TRANSIENT_FP8 = (2048 - 408) * 2048 * 2, (2048 - 408) * 2048 * 1


def act(t):
    return t.meta["footprint"]["activations"]


def test_h2o_prefill_activations_by_hand():
    tp = trace_for(LLAMA3_8B, "prefill", seq=2048)
    assert act(tp) == BASE
    assert act(apply_recipe(tp, "h2o", LLAMA3_8B)) == BASE + PROBS + COLSUMS + TRANSIENT_BF16 == 452_088_832
    for r in ("fp8_kv+h2o", "h2o+fp8_kv", "fp8_kv(scale=none)+h2o"):  # either order: the same bytes
        assert act(apply_recipe(tp, r, LLAMA3_8B)) == BASE + PROBS + COLSUMS + TRANSIENT_FP8 == 448_730_112, r
    # the builder's kv format: the same
    t8 = trace_for(LLAMA3_8B, "prefill", seq=2048, kv="fp8_e4m3")
    assert act(apply_recipe(t8, "h2o", LLAMA3_8B)) == 448_730_112
    bf, f8 = apply_recipe(tp, "h2o", LLAMA3_8B), apply_recipe(t8, "h2o", LLAMA3_8B)
    assert act(bf) - act(f8) == TRANSIENT_BF16 / 2  # only the KV term moves, by half


def test_h2o_prefill_transient_keeps_kivi_residual():
    # kivi2 keeps a 128-token fp16 residual that eviction does not free: the transient is one layer's stored
    # bytes at 1000 tokens minus at the 200 kept, not (1000 − 200) x the average bytes per token. Per layer and
    # sequence (footprints / 32): kivi2 at 1000 tokens 0.28175·1000·4096 = 1,154,048 B, kept 200 at
    # 0.46375·200·4096 = 379,904 B: 774,144 B (the old rule gave 800·0.28175·4096 = 923,238.4 B)
    tp = trace_for(LLAMA3_8B, "prefill", seq=1000)
    t2 = apply_recipe(tp, "kivi2+h2o", LLAMA3_8B)
    assert act(t2) - act(tp) == pytest.approx(32 * 1000 * 1000 * 2 + 32 * 1000 * 4 + 774_144)


def test_h2o_decode_score_state_is_said_not_silently_dropped():
    # H2O keeps fp32 scores per layer, query head and kept token: 32 x 32 x 408 x 4 = 1,671,168 B per sequence,
    # outside kv_cache (not charged: said in the recipe's effects with its size)
    t = apply_recipe(trace_for(LLAMA3_8B, "decode", seq=2048), "h2o", LLAMA3_8B)
    eff = t.meta["recipe_effects"]["h2o"]
    assert eff["h2o_score_state_bytes_per_sequence"] == 32 * 32 * 408 * 4 == 1_671_168
    assert "not counted in the memory footprint" in eff["note_h2o_score_state"]
    assert t.meta["footprint"]["kv_cache"] == 408 * 32 * 4096  # unchanged: the state is said, not charged



def test_chained_evictions_record_the_whole_transient():
    # snapkv keeps 1,024 of 2,048, then h2o 408 of those: the evicting layer's K/V beyond the last kept is
    # (2,048 - 1,024) + (1,024 - 408) = 1,640 tokens x 2,048 elements: 6,717,440 B in bf16, as h2o alone; an fp8
    # cache applied after the chain re-prices all of it (3,358,720 B), not only h2o's part (it added 835,584 B
    # before: an 8-bit cache grew the prefill peak)
    tp = trace_for(LLAMA3_8B, "prefill", seq=2048)
    chain = apply_recipe(tp, "snapkv+h2o", LLAMA3_8B)
    assert chain.meta["kv_state"]["prefill_transient"] == TRANSIENT_BF16 == 6_717_440
    assert act(chain) == act(apply_recipe(tp, "h2o", LLAMA3_8B))
    for r in ("snapkv+h2o+fp8_kv", "fp8_kv+snapkv+h2o"):
        t = apply_recipe(tp, r, LLAMA3_8B)
        assert t.meta["kv_state"]["prefill_transient"] == TRANSIENT_FP8, r
        assert act(chain) - act(t) == TRANSIENT_BF16 - TRANSIENT_FP8, r
