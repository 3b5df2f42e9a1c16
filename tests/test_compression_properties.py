"""Property tests of the recipe arithmetic (hypothesis)."""

import pytest
from hypothesis import given, settings, strategies as st

from compression_helpers import LLAMA3_8B, trace_for
from workloads.compression import apply_recipe, recipe_from_dict
from workloads.compression.eviction import rocketkv_budget
from workloads.compression.kv_quant import kivi_key_bytes, kivi_value_bytes

FAST = settings(max_examples=25, deadline=None, derandomize=True)


@FAST
@given(S=st.integers(1, 200_000), G=st.sampled_from([16, 32, 64, 128]), mult=st.integers(1, 8))
def test_kivi_bytes_monotone_in_bits_and_below_fp16(S, G, mult):
    R = G * mult
    d = 128
    prev = None
    for b in (1, 2, 3, 4, 8):
        cur = kivi_key_bytes(S, d, b, G, R) + kivi_value_bytes(S, d, b, G, R)
        # strictly smaller with fewer bits once anything leaves the fp16 windows
        assert prev is None or (cur > prev if S > R else cur == prev)
        prev = cur
    assert kivi_key_bytes(S, d, 2, G, R) + kivi_value_bytes(S, d, 2, G, R) <= 2 * S * d * 2


@FAST
@given(budget=st.integers(16, 4096), factor=st.integers(4, 64), d=st.sampled_from([64, 128]))
def test_rocketkv_reads_about_two_budgets_of_elements(budget, factor, d):
    """By construction (doc §1.2) a step reads ≈ 2·B_tok·d elements per KV head."""
    S = budget * factor
    q = rocketkv_budget(S, budget, d, 0)
    assert 1 <= q.chunk and 1 <= q.r <= d and q.k <= q.capacity <= S
    assert q.read_elements(d) == pytest.approx(2 * budget * d, rel=0.05)


@settings(max_examples=10, deadline=None, derandomize=True)
@given(b1=st.integers(64, 8192), b2=st.integers(64, 8192))
def test_eviction_footprint_and_reads_monotone_in_budget(b1, b2):
    t = trace_for(LLAMA3_8B, seq=8192)
    lo, hi = sorted((b1, b2))
    out = [apply_recipe(t, recipe_from_dict({"name": f"h{b}", "method": "h2o", "citation": "c",
                                              "parameters": {"budget": b}}), LLAMA3_8B) for b in (lo, hi)]
    assert out[0].meta["footprint"]["kv_cache"] <= out[1].meta["footprint"]["kv_cache"]
    assert out[0].total_bytes <= out[1].total_bytes
    assert out[1].meta["kv_state"]["capacity"] == min(hi, 8192)


@settings(max_examples=10, deadline=None, derandomize=True)
@given(bits=st.sampled_from([2, 3, 4, 8]), S=st.integers(200, 40_000))
def test_kivi_trace_reads_equal_formula(bits, S):
    r = recipe_from_dict({"name": "k", "method": "kivi", "citation": "c",
                          "parameters": {"k_bits": bits, "v_bits": bits}})
    t2 = apply_recipe(trace_for(LLAMA3_8B, seq=S), r, LLAMA3_8B)
    attn = next(o for o in t2.ops if o.name == "attention")
    read = sum(x.nbytes for x in attn.inputs if x.role == "kv")
    # byte containers round each token-head row of 3-bit codes up to whole bytes (48 B for 128 x 3 bits)
    expect = 8 * (kivi_key_bytes(S, 128, bits, 32, 128) + kivi_value_bytes(S, 128, bits, 32, 128))
    assert read == pytest.approx(expect)


@settings(max_examples=10, deadline=None, derandomize=True)
@given(order=st.permutations(["kivi2", "h2o", "mxfp4_weights"]))
def test_composition_order_changes_little(order):
    """Weights commute with KV methods exactly; quantize-then-evict and
    evict-then-quantize differ only in where the fp16 windows are counted."""
    t = trace_for(LLAMA3_8B, seq=32768)
    a = apply_recipe(t, "+".join(order), LLAMA3_8B)
    b = apply_recipe(t, "mxfp4_weights+kivi2+h2o", LLAMA3_8B)
    assert a.meta["footprint"]["weights"] == pytest.approx(b.meta["footprint"]["weights"])
    assert a.meta["footprint"]["kv_cache"] == pytest.approx(b.meta["footprint"]["kv_cache"], rel=0.05)
    assert a.total_bytes == pytest.approx(b.total_bytes, rel=0.02)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(budget=st.integers(0, 10 ** 9), cap=st.integers(1, 10 ** 6), bits=st.integers(1, 16))
def test_inline_overrides_round_trip(budget, cap, bits):
    from workloads.compression import load_recipe
    r = load_recipe(f"h2o(budget={budget})+snapkv(capacity={cap}, window=1)+kivi2(k_bits={bits},v_bits={bits})")
    h, s, k = r.parts
    assert h.params["budget"] == budget and s.params["capacity"] == cap and k.params["k_bits"] == bits


@settings(max_examples=60, deadline=None, derandomize=True)
@given(text=st.text(alphabet="abcdhik2o()+=,-_. 0123456789", max_size=30))
def test_recipe_specs_fail_only_with_input_errors(text):
    from workloads.compression import load_recipe
    from workloads.io import InputError
    try:
        load_recipe(text)
    except InputError:
        pass
