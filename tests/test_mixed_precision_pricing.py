"""ZipCache / MiKV pricing stores and reads what the functional twin keeps: the prompt's
round(salient_ratio·P) salient tokens plus every decode token at hi_bits, less what each
method has demoted before the step's read (tests/test_s14_twin_audit.py pins the twin)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compression_helpers import LLAMA3_8B, trace_for
from cosim.functional.compression.kv import MixedPrecisionPolicy
from workloads.compression import apply_recipe
from workloads.compression.kv_quant import mixed_precision_hi_tokens


def kv_read(trace):
    return sum(sum(t.nbytes for t in op.inputs if t.role == "kv") * op.repeat
               for op in trace.ops if op.name == "attention")


def only(trace, name):
    ops = [o for o in trace.ops if o.name == name]
    assert len(ops) == 1, f"{name}: {len(ops)} ops"
    return ops[0]


def _twin_read_counts(saliency, ratio, interval, P=20, steps=24, seed=0):
    """hi tokens the twin holds while step g (1..steps) reads: what it held after step g - 1
    (its demotions run after the read) plus the new token, which enters at hi_bits."""
    rng = np.random.default_rng(seed)
    n = P + steps
    K, V = rng.standard_normal((n, 16)).astype(np.float32), rng.standard_normal((n, 16)).astype(np.float32)
    Q = rng.standard_normal((n, 2, 16)).astype(np.float32)
    pol = MixedPrecisionPolicy(4, 2, ratio, 0, saliency, 0.25, True, requant_interval=interval)
    pol.prefill(K[:P], V[:P], Q[:P])
    counts = {0: int(pol.hi.sum())}
    for g in range(1, steps + 1):
        counts[g] = int(pol.hi.sum()) + 1
        pol.step(g - 1, K[P + g - 1], V[P + g - 1], Q[P + g - 1])
    return counts


@pytest.mark.parametrize("saliency, ratio, interval", [("probe", 0.5, 0), ("probe", 0.5, 4), ("probe", 0.3, 5),
                                                       ("accumulated", 0.2, 0), ("accumulated", 0.5, 0)])
def test_priced_hi_count_equals_the_twins_at_every_step(saliency, ratio, interval):
    P = 20
    twin = _twin_read_counts(saliency, ratio, interval, P)
    priced = {g: mixed_precision_hi_tokens(P + g, g, ratio, saliency, interval) for g in twin}
    assert priced == twin


@pytest.mark.parametrize("spec, saliency, ratio, interval", [
    ("zipcache(requant_interval=4, new_tokens=13)", "probe", 0.5, 4),
    ("mikv(new_tokens=13)", "accumulated", 0.2, 0)])
def test_the_priced_trace_reads_the_twins_hi_tokens(spec, saliency, ratio, interval):
    twin = _twin_read_counts(saliency, ratio, interval, P=20, steps=13)
    t = apply_recipe(trace_for(LLAMA3_8B, seq=33), spec, LLAMA3_8B)
    hi = [x for x in only(t, "attention").inputs if x.name.endswith(".hi")]
    assert {x.shape[1] for x in hi} == {twin[13]}


def test_zipcache_bytes_at_8192_with_256_decode_tokens():
    """llama3_8b, 8 KV heads, d 128, 32 layers, n 8192 of which 256 generated (P 7936).
    interval 0: hi = round(0.5·7936) + 256 = 4224, lo 3968; per head and tensor 4224·64 B
    (int4) + 3968·32 B (int2) + 8192·4 B (fp16 scale + zero) = 430,080 B; + 8·128·2 B
    channel normalisers per layer and tensor: (8·430,080 + 2048)·2·32 = 220,332,032 B
    (was 218,234,880 B with round(0.5·8192) = 4096 hi). interval 16: 15 completed chunks
    before step 256's read lost 8 each: hi 4104, lo 4088 -> (8·426,240 + 2048)·64 =
    218,365,952 B. The new token is written at 4 bits: 2·8·(64 + 4)·32 = 34,816 B."""
    t = apply_recipe(trace_for(LLAMA3_8B, seq=8192), "zipcache", LLAMA3_8B)
    assert kv_read(t) == 220_332_032 == t.meta["footprint"]["kv_cache"]
    assert t.meta["recipe_effects"]["zipcache"]["hi_tokens"] == 4224
    w = only(t, "kv_write")
    assert sum(x.nbytes for x in w.outputs if x.role == "kv") * w.repeat == 34_816
    assert not [o for o in t.ops if "demote" in o.name]
    t16 = apply_recipe(trace_for(LLAMA3_8B, seq=8192), "zipcache(requant_interval=16)", LLAMA3_8B)
    assert kv_read(t16) == 218_365_952
    # 8 of every 16 tokens re-quantized int4 -> int2 (K and V, 8 heads): 0.5 token per step
    dem = [o for o in t16.ops if o.name.endswith(".demote_requant")]
    assert len(dem) == 1 and dem[0].dims["rows"] == 16 and dem[0].dims["cols"] == 64
    # reads 16·(64 + 4)·0.5 B, writes 16·(32 + 4)·0.5 B per layer
    assert sum(x.nbytes for x in dem[0].inputs) == 544 and sum(x.nbytes for x in dem[0].outputs) == 288


def test_mikv_bytes_at_8192_with_256_decode_tokens():
    """hi = round(0.2·8191) + 1 = 1639 bf16 tokens, 6553 at INT3 (48 B codes + 4 B scale/zero):
    per head 1639·256 + 6553·52 = 760,340 B; ·8·2·32 = 389,294,080 B (was 389,189,632 with
    1638 hi). The new token is written bf16: 2·8·256·32 = 131,072 B (was 26,624 at INT3)."""
    t = apply_recipe(trace_for(LLAMA3_8B, seq=8192), "mikv", LLAMA3_8B)
    assert kv_read(t) == 389_294_080 == t.meta["footprint"]["kv_cache"]
    w = only(t, "kv_write")
    assert sum(x.nbytes for x in w.outputs if x.role == "kv") * w.repeat == 131_072


def test_prefill_stores_the_ratio_of_the_prompt():
    tp = apply_recipe(trace_for(LLAMA3_8B, "prefill", seq=4096), "zipcache(new_tokens=999)", LLAMA3_8B)
    assert tp.meta["recipe_effects"]["zipcache(new_tokens=999)"]["hi_tokens"] == 2048


@settings(max_examples=25, deadline=None)
@given(saliency=st.sampled_from(["probe", "accumulated"]), ratio=st.sampled_from([0.0, 0.2, 0.35, 0.5, 0.8, 1.0]),
       interval=st.integers(0, 7), P=st.integers(1, 30), seed=st.integers(0, 3))
def test_priced_hi_count_follows_the_twin_for_any_lengths(saliency, ratio, interval, P, seed):
    interval = interval if saliency == "probe" else 0
    twin = _twin_read_counts(saliency, ratio, interval, P, steps=15, seed=seed)
    assert {g: mixed_precision_hi_tokens(P + g, g, ratio, saliency, interval) for g in twin} == twin


def test_new_token_is_quantized_only_below_16_bits():
    names = {o.name for o in apply_recipe(trace_for(LLAMA3_8B, seq=1024), "mikv", LLAMA3_8B).ops}
    assert "mikv.quantize_new" not in names and "mikv.demote_requant" in names  # bf16 on entry, INT3 on demotion
    names = {o.name for o in apply_recipe(trace_for(LLAMA3_8B, seq=1024), "zipcache", LLAMA3_8B).ops}
    assert "zipcache.quantize_new" in names
