"""Session 18 (cleanup): a kv_format part's parameters are read in one place (workloads.compression.kv_quant.
kv_format_store); pricing, the KV twin, the attention figure's store and the real-checkpoint numerics call it."""

import pytest

from workloads.builder import build_trace
from workloads.compression import load_recipe
from workloads.compression.kv_quant import kv_format_store


@pytest.mark.parametrize("params,want", [
    ({}, ("fp8_e4m3", "fp8_e4m3", "head", False)),  # every registered default
    ({"format": "mxfp4"}, ("mxfp4", "mxfp4", "head", False)),  # '' key/value formats mean `format`
    ({"format": "mxfp4", "key_format": "", "value_format": "fp8_e4m3", "scale": "none"},
     ("mxfp4", "fp8_e4m3", "none", False)),
    ({"key_format": "fp8_e5m2", "scale": "tensor", "channel_sort": 1}, ("fp8_e5m2", "fp8_e4m3", "tensor", True)),
])
def test_kv_format_store_by_hand(params, want):
    assert kv_format_store(params) == dict(zip(("key", "value", "scale", "channel_sort"), want))


RECIPE = "fp8_kv(value_format=mxfp4,scale=tensor,channel_sort=true)"


def test_pricing_twin_and_attention_store_read_the_part_alike():
    part = load_recipe(RECIPE)
    store = kv_format_store(part.params)
    assert store == {"key": "fp8_e4m3", "value": "mxfp4", "scale": "tensor", "channel_sort": True}
    # pricing: K in fp8 with one fp32 scale per tensor, V in MXFP4 (its own block scales, no fp32 scale tensor)
    tr = build_trace("llama3_8b", phase="decode", batch=1, seq=512, recipe=RECIPE)
    kv = {t.name: (t.fmt, t.shape) for op in tr.ops for t in op.inputs + op.outputs if t.role == "kv"}
    assert kv["k_cache"][0] == "fp8_e4m3" and kv["v_cache"][0] == "mxfp4"
    assert kv["k_cache.scale"] == ("fp32", (1,)) and "v_cache.scale" not in kv
    # the attention figure's store, read off the trace and the part
    from cosim.layer_accuracy import kv_store
    assert kv_store(tr)[0] == store
    # the KV twin's policy
    from cosim.functional.compression.twin import KV_METHODS
    pol = KV_METHODS["kv_format"](part.params)
    assert (pol.kf, pol.vf, pol.scale, pol.sort) == ("fp8_e4m3", "mxfp4", "tensor", True)
    # the real-checkpoint numerics
    from cosim.functional.lm.numerics import Numerics
    num = Numerics.from_options(recipe=RECIPE)
    assert (num.kv, num.kv_values, num.kv_scale, num.kv_channel_sort) == ("fp8_e4m3", "mxfp4", "tensor", True)
