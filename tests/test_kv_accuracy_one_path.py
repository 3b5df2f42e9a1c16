"""One KV cache, one accuracy figure (session 17): `kv: fp8_e4m3` and `recipe: fp8_kv` store the
same fp8 codes with an fp32 scale per KV head, so the synthetic attention figure is one run of
one policy on one draw (cosim.layer_accuracy._kv_attention -> twin.kv_store_twin), and a
token-selection method keeps the stored tokens (fp8 + H2O is never more accurate than fp8)."""

import numpy as np
import pytest

from workloads.builder import build_trace

pytest.importorskip("numba")

ACC = dict(layers=1, rows=8, tokens=2, seed=0, threads=1, model="llama3_8b")


def _att(**kw):
    from cosim.layer_accuracy import trace_accuracy
    tr = build_trace("llama3_8b", phase="decode", batch=1, seq=512, **kw)
    return trace_accuracy(tr, **ACC).by_op["attention"]


def test_kv_format_and_kv_format_recipe_give_the_same_figure_to_the_bit():
    plain, recipe = _att(kv="fp8_e4m3"), _att(recipe="fp8_kv")
    assert plain == recipe and 20 < plain < 60
    assert _att(kv="mxfp8_e4m3") == _att(recipe="mxfp8_kv")


def test_eviction_on_top_of_a_format_never_raises_the_figure():
    fp8 = _att(kv="fp8_e4m3")
    both = _att(kv="fp8_e4m3", recipe="h2o")
    assert both == _att(recipe="fp8_kv+h2o")  # the README's equivalence, to the bit
    assert both < fp8
    assert both < _att(recipe="h2o")  # the fp8 cast of the kept tokens costs something too


def test_kv_store_reads_the_trace():
    from cosim.layer_accuracy import kv_store
    for kw in (dict(kv="fp8_e4m3"), dict(recipe="fp8_kv")):
        store, methods = kv_store(build_trace("llama3_8b", phase="decode", batch=1, seq=512, **kw))
        assert store == {"key": "fp8_e4m3", "value": "fp8_e4m3", "scale": "head", "channel_sort": False}
        assert methods == []
    store, methods = kv_store(build_trace("llama3_8b", phase="decode", batch=1, seq=512, recipe="fp8_kv+h2o"))
    assert store["key"] == "fp8_e4m3" and [m.method for m in methods] == ["h2o"]


def test_fp8_per_head_scale_by_hand():
    """Prompt keys of one head: amax 2, so the scale is 2/448; 0.3 -> 0.3 x 224 = 67.2 lies in
    [64, 128) where e4m3 steps by 8: 64 -> 64 / 224 = 2/7 (error 0.3 - 2/7 = 1/70). The decode key 3.0 is
    beyond the calibrated range: 672 saturates at 448 -> 2.0; 0.03 -> 6.72 in [4, 8), step 0.5:
    6.5 -> 6.5 / 224 = 0.029017857."""
    from cosim.functional.compression.kv import FormatKVPolicy
    k = np.array([[2.0, 0.5], [-1.0, 0.3]], np.float32)
    pol = FormatKVPolicy("fp8_e4m3")
    pol.prefill(k, k, np.zeros((1, 1, 2)))
    view = pol.step(0, np.array([3.0, 0.03], np.float32), np.array([3.0, 0.03], np.float32), np.zeros((1, 2)))
    want = np.array([[2.0, 0.5], [-1.0, 2 / 7], [2.0, 6.5 / 224]])
    np.testing.assert_allclose(view.keys, want, rtol=1e-6)
    np.testing.assert_allclose(view.values, want, rtol=1e-6)
    assert abs(float(view.keys[1, 1]) - 0.3) == pytest.approx(1 / 70, rel=1e-5)


def test_eviction_keeps_a_per_head_kv_scale_whole():
    """fp8_kv's fp32 scale is one per KV head (kv_quant.kv_scale_tensors), static: H2O keeping 1638 of 8192
    tokens keeps all 8 (it was cut like a token count to round(8 x 0.2) = 2), in either order of the parts;
    a tensor-parallel shard of 4 of the 8 KV heads holds their 4."""
    for r in ("fp8_kv+h2o", "h2o+fp8_kv", "fp8_kv+snapkv"):
        att = next(op for op in build_trace("llama3_8b", phase="decode", batch=1, seq=8192, recipe=r).ops
                   if op.kind == "attention")
        assert {t.name: t.shape for t in att.inputs if t.name.endswith(".scale")} == \
            {"k_cache.scale": (8,), "v_cache.scale": (8,)}
    tp = build_trace("llama3_8b", phase="decode", batch=1, seq=8192, recipe="fp8_kv+h2o", parallel={"tp": 2})
    att = next(op for op in tp.ops if op.kind == "attention")
    assert [t.shape for t in att.inputs if t.name.endswith(".scale")] == [(4,), (4,)]


def test_a_format_beside_a_method_with_its_own_storage_is_said_not_simulated():
    """Pricing stores kv: fp8_e4m3 + kivi2's fp16 residual window in fp8; KIVI's twin keeps it exact, so the
    figure is KIVI-2's alone -- said in the row and the provenance, never silently."""
    from cosim.layer_accuracy import trace_accuracy
    tr = build_trace("llama3_8b", phase="decode", batch=1, seq=512, kv="fp8_e4m3", recipe="kivi2")
    res = trace_accuracy(tr, **ACC)
    row = next(r for r in res.by_layer if r["op"] == "attention")
    assert "KV format fp8_e4m3 beside kivi2 (its own storage) is not simulated" in row["note"]
    assert "is not simulated" in res.provenance
    assert res.by_op["attention"] == _att(recipe="kivi2")
    plain = trace_accuracy(build_trace("llama3_8b", phase="decode", batch=1, seq=512, recipe="kivi2"), **ACC)
    assert "note" not in next(r for r in plain.by_layer if r["op"] == "attention")


def test_a_method_that_leaves_the_cache_as_it_is_still_gets_the_stores_figure():
    """MLA on a natively-MLA model changes nothing in the cache: its twin has no figure, and the attention op lost its
    row silently (review, session 17); now the stored cache is scored, as without the recipe, and the note says why."""
    from cosim.layer_accuracy import trace_accuracy
    plain = trace_accuracy(build_trace("deepseek_v2_lite", phase="decode", batch=1, seq=2048, kv="fp8_e4m3"),
                           layers=1, rows=16, tokens=4, model="deepseek_v2_lite")
    mla = trace_accuracy(build_trace("deepseek_v2_lite", phase="decode", batch=1, seq=2048, kv="fp8_e4m3",
                                           recipe="mla"), layers=1, rows=16, tokens=4, model="deepseek_v2_lite")
    assert mla.by_op["attention"] == plain.by_op["attention"] and mla.status_by_op["attention"] == "ok"
    assert "not scored by its own twin: mla: deepseek_v2_lite is natively MLA" in mla.provenance
