"""ZipCache / MiKV pricing stores and reads what the functional twin keeps at each step's read:
ZipCache's (hi, lo, 16-bit streaming buffer) split (`zipcache_token_split`: int() counts, the
authors' streaming gap), MiKV's important set (tests/test_s14_twin_audit.py pins the twin)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compression_helpers import LLAMA3_8B, trace_for
from cosim.functional.compression.kv import MixedPrecisionPolicy
from workloads.compression import apply_recipe
from workloads.compression.kv_quant import mixed_precision_hi_tokens, zipcache_token_split


def kv_read(trace):
    return sum(sum(t.nbytes for t in op.inputs if t.role == "kv") * op.repeat
               for op in trace.ops if op.name == "attention")


def only(trace, name):
    ops = [o for o in trace.ops if o.name == name]
    assert len(ops) == 1, f"{name}: {len(ops)} ops"
    return ops[0]


def _twin_read_splits(saliency, ratio, interval, P=20, steps=24, seed=0):
    """(hi, lo, buffer) tokens the twin holds while step g (1..steps) reads: what it held after
    step g - 1 (its demotions and chunk quantizations run after the read) plus the new token,
    which enters at hi_bits (ZipCache streaming: into the 16-bit buffer)."""
    rng = np.random.default_rng(seed)
    n = P + steps
    K, V = rng.standard_normal((n, 16)).astype(np.float32), rng.standard_normal((n, 16)).astype(np.float32)
    Q = rng.standard_normal((n, 2, 16)).astype(np.float32)
    pol = MixedPrecisionPolicy(4, 2, ratio, 0, saliency, 0.25, True, requant_interval=interval)
    pol.prefill(K[:P], V[:P], Q[:P])
    buffered = saliency == "probe" and interval > 0
    splits = {0: pol.counts()}
    for g in range(1, steps + 1):
        hi, lo, buf = pol.counts()
        splits[g] = (hi + (not buffered), lo, buf + buffered)
        pol.step(g - 1, K[P + g - 1], V[P + g - 1], Q[P + g - 1])
    return splits


def _priced_split(n, g, ratio, saliency, interval):
    if saliency == "probe":
        return zipcache_token_split(n, g, ratio, interval)
    hi = mixed_precision_hi_tokens(n, g, ratio, saliency, interval)
    return hi, n - hi, 0


@pytest.mark.parametrize("saliency, ratio, interval", [("probe", 0.5, 0), ("probe", 0.5, 4), ("probe", 0.3, 5),
                                                       ("probe", 0.6, 10), ("accumulated", 0.2, 0),
                                                       ("accumulated", 0.5, 0)])
def test_priced_split_equals_the_twins_at_every_step(saliency, ratio, interval):
    P = 20
    twin = _twin_read_splits(saliency, ratio, interval, P)
    assert {g: _priced_split(P + g, g, ratio, saliency, interval) for g in twin} == twin


@pytest.mark.parametrize("spec, saliency, ratio, interval", [
    ("zipcache(salient_ratio=0.5, requant_interval=4, new_tokens=13)", "probe", 0.5, 4),
    ("mikv(new_tokens=13)", "accumulated", 0.2, 0)])
def test_the_priced_trace_reads_the_twins_hi_tokens(spec, saliency, ratio, interval):
    hi_t, lo_t, buf_t = _twin_read_splits(saliency, ratio, interval, P=20, steps=13)[13]
    t = apply_recipe(trace_for(LLAMA3_8B, seq=33), spec, LLAMA3_8B)
    ins = only(t, "attention").inputs
    for suffix, want in ((".hi", hi_t), (".lo", lo_t), (".buffer", buf_t)):
        assert {x.shape[1] for x in ins if x.name.endswith(suffix)} == ({want} if want else set())


def test_zipcache_bytes_at_8192_with_256_decode_tokens():
    """llama3_8b, 8 KV heads, d 128, 32 layers, n 8192 of which 256 generated (P 7936), the
    bundled zipcache (ratio 0.6, streaming gap 100): prompt lo int(0.4·7936) = 3174, hi 4762;
    2 completed chunks of int(0.4·100) = 40 lo + 60 hi; 56 tokens in the bf16 buffer: hi 4882,
    lo 3254. Per head, V: 4882·64 B (int4) + 3254·32 B (int2) + 8136·4 B (fp16 scale + zero per
    token) + 56·256 B = 463,456 B, + 8·128·2 B channel normalisers per layer; K, channel-wise:
    the same codes and buffer + (1 prompt + 2 chunks)·2 subsets·128 channels·(min, step) fp16 =
    3,072 B instead of per-token scales: 433,984 B. (8·433,984 + 8·463,456 + 2048)·32 =
    229,810,176 B (keys per token, `key_quant=token`: 237,420,544 B; was 220,332,032 B at ratio
    0.5, round(), per-token keys, decode tokens at 4 bits and never re-scored). The new token is written bf16 into the buffer:
    2·8·256·32 = 131,072 B (was 34,816 B at 4 bits). Without streaming (requant_interval 0)
    every decode token is hi: 4762 + 256 = 5018 hi, 3174 lo, 4 bits written."""
    t = apply_recipe(trace_for(LLAMA3_8B, seq=8192), "zipcache", LLAMA3_8B)
    e = t.meta["recipe_effects"]["zipcache"]
    assert (e["hi_tokens"], e["lo_tokens"], e["buffer_tokens"]) == (4882, 3254, 56)
    assert kv_read(t) == 229_810_176 == t.meta["footprint"]["kv_cache"]
    tok = apply_recipe(trace_for(LLAMA3_8B, seq=8192), "zipcache(key_quant=token)", LLAMA3_8B)
    assert kv_read(tok) == 237_420_544
    w = only(t, "kv_write")
    assert sum(x.nbytes for x in w.outputs if x.role == "kv") * w.repeat == 131_072
    assert not [o for o in t.ops if "demote" in o.name or "quantize_new" in o.name]
    # every 100 steps the chunk is scored by the step's query and quantized: 60 tokens to int4 and 40 to
    # int2, K and V of 8 heads, amortised over the 100 steps (density 0.01)
    cq = only(t, "zipcache.chunk_quantize")
    assert cq.dims == {"rows": 16, "cols": 128, "every": 100}
    assert [(x.name, x.shape) for x in cq.outputs] == [
        ("chunk_hi.k", (1, 60, 8, 128)), ("chunk_lo.k", (1, 40, 8, 128)), ("chunk.k_channel_min_step", (1, 2, 8, 256)),
        ("chunk_hi.v", (1, 60, 8, 128)), ("chunk_hi.v.scale_zero", (1, 60, 8, 2)),
        ("chunk_lo.v", (1, 40, 8, 128)), ("chunk_lo.v.scale_zero", (1, 40, 8, 2))]
    assert sum(x.nbytes for x in cq.inputs) == pytest.approx(100 * 16 * 256 / 100)
    t0 = apply_recipe(trace_for(LLAMA3_8B, seq=8192), "zipcache(requant_interval=0,key_quant=token)", LLAMA3_8B)
    e0 = t0.meta["recipe_effects"]["zipcache(requant_interval=0,key_quant=token)"]
    assert (e0["hi_tokens"], e0["lo_tokens"], e0["buffer_tokens"]) == (5018, 3174, 0)
    w0 = only(t0, "kv_write")
    assert sum(x.nbytes for x in w0.outputs if x.role == "kv") * w0.repeat == 34_816
    assert not [o for o in t0.ops if "chunk_quantize" in o.name or "probe_attention" in o.name]


def test_mikv_bytes_at_8192_with_256_decode_tokens():
    """hi = round(0.2·8191) + 1 = 1639 bf16 tokens, 6553 at INT3 (48 B codes + 4 B scale/zero):
    per head 1639·256 + 6553·52 = 760,340 B; ·8·2·32 = 389,294,080 B (was 389,189,632 with
    1638 hi). The new token is written bf16: 2·8·256·32 = 131,072 B (was 26,624 at INT3)."""
    t = apply_recipe(trace_for(LLAMA3_8B, seq=8192), "mikv", LLAMA3_8B)
    assert kv_read(t) == 389_294_080 == t.meta["footprint"]["kv_cache"]
    w = only(t, "kv_write")
    assert sum(x.nbytes for x in w.outputs if x.role == "kv") * w.repeat == 131_072


def test_prefill_stores_the_ratio_of_the_prompt():
    """4096 - int(0.4·4096) = 4096 - 1638 = 2458 hi (round(0.6·4096) would say 2458 too; 4095: 4095 -
    int(1638.0) = 2457, where round(2457.0) = 2457; 10: 10 - int(4.0) = 6)."""
    tp = apply_recipe(trace_for(LLAMA3_8B, "prefill", seq=4096), "zipcache(new_tokens=999)", LLAMA3_8B)
    assert tp.meta["recipe_effects"]["zipcache(new_tokens=999)"]["hi_tokens"] == 2458


@settings(max_examples=25, deadline=None)
@given(saliency=st.sampled_from(["probe", "accumulated"]), ratio=st.sampled_from([0.0, 0.2, 0.35, 0.5, 0.8, 1.0]),
       interval=st.integers(0, 7), P=st.integers(1, 30), seed=st.integers(0, 3))
def test_priced_hi_count_follows_the_twin_for_any_lengths(saliency, ratio, interval, P, seed):
    interval = interval if saliency == "probe" else 0
    twin = _twin_read_splits(saliency, ratio, interval, P, steps=15, seed=seed)
    assert {g: _priced_split(P + g, g, ratio, saliency, interval) for g in twin} == twin


def test_new_token_is_quantized_only_below_16_bits():
    names = {o.name for o in apply_recipe(trace_for(LLAMA3_8B, seq=1024), "mikv", LLAMA3_8B).ops}
    assert "mikv.quantize_new" not in names and "mikv.demote_requant" in names  # bf16 on entry, INT3 on demotion
    names = {o.name for o in apply_recipe(trace_for(LLAMA3_8B, seq=1024), "zipcache", LLAMA3_8B).ops}
    assert "zipcache.quantize_new" not in names and "zipcache.chunk_quantize" in names  # bf16 buffer, then chunks
    names = {o.name for o in apply_recipe(trace_for(LLAMA3_8B, seq=1024), "zipcache(requant_interval=0,key_quant=token)",
                                          LLAMA3_8B).ops}
    assert "zipcache(requant_interval=0,key_quant=token).quantize_new" in names
