"""Compression-recipe ops under TP/EP (issue 12): sharded with the op or block they serve."""

import pytest

import cosim


def _pair(model, recipe, parallel, phase="decode", batch=8, seq=4096):
    whole = cosim.build_trace(model, phase=phase, batch=batch, seq=seq, recipe=recipe)
    part = cosim.build_trace(model, phase=phase, batch=batch, seq=seq, recipe=recipe, parallel=parallel)
    return {o.name: o for o in whole.ops}, {o.name: o for o in part.ops}, part.meta["parallel"]


def test_kivi2_kv_ops_split_over_kv_heads_at_tp8():
    # llama3_70b: 8 KV heads over 8 ranks -> one head each: every KIVI op does 1/8 of its work
    W, P, meta = _pair("llama3_70b", "kivi2", {"tp": 8})
    assert meta["unsharded_ops"] == []
    assert meta["recipe_op_shares"] == {"kivi2.dequant": "1/8", "kivi2.k_chunk_quantize": "1/8",
                                        "kivi2.v_quantize": "1/8"}
    # v_quantize: rows = batch x kv_heads = 8 x 8 = 64 whole, 8 x 1 = 8 on one device
    assert (W["kivi2.v_quantize"].dims["rows"], P["kivi2.v_quantize"].dims["rows"]) == (64, 8)
    for n in meta["recipe_op_shares"]:
        assert P[n].flops == pytest.approx(W[n].flops / 8)


def test_weight_dequant_follows_its_gemm():
    # int4 weights at TP8: each GEMM's dequantisation touches that GEMM's 1/8 of the weight
    W, P, meta = _pair("llama3_70b", "int4_g128_weights", {"tp": 8})
    assert meta["unsharded_ops"] == []
    # down_proj: 28672 x 8192 weights -> fused dequant of 234,881,024 elements, 29,360,128 per device
    assert W["down_proj.weight_dequant"].dims["cols"] == 28672 * 8192
    assert P["down_proj.weight_dequant"].dims["cols"] == 28672 * 8192 // 8
    assert P["down_proj"].inputs[1].numel == P["down_proj.weight_dequant"].dims["cols"]


def test_replicated_kv_heads_keep_the_kv_share():
    # tp 16 > 8 KV heads: every rank holds one whole KV head, so a per-KV-head op does 1/8 (not 1/16);
    # the per-query-head score accumulation does 4 of 64 heads = 1/16
    W, P, meta = _pair("llama3_70b", "h2o", {"tp": 16})
    assert meta["recipe_op_shares"] == {"h2o.evict_argmin": "1/8", "h2o.score_accumulate": "1/16"}
    assert (W["h2o.evict_argmin"].dims["rows"], P["h2o.evict_argmin"].dims["rows"]) == (64, 8)
    assert (W["h2o.score_accumulate"].dims["rows"], P["h2o.score_accumulate"].dims["rows"]) == (512, 32)


def test_moe_recipe_ops_under_ep8():
    # Mixtral EP8: one expert per device: the expert dictionary decode does 1/8, the shared decode
    # table is read whole by every device
    W, P, meta = _pair("mixtral_8x7b", "qmoe", {"tp": 8, "ep": 8})
    assert meta["unsharded_ops"] == []
    assert meta["recipe_op_shares"]["expert_up_proj.dict_decode"] == "1/8"
    assert meta["recipe_op_shares"]["qmoe.table_load"] == "1/1"
    assert P["expert_up_proj.dict_decode"].dims["cols"] * 8 == W["expert_up_proj.dict_decode"].dims["cols"]
    assert P["qmoe.table_load"].bytes == W["qmoe.table_load"].bytes


def test_fp8_kv_per_head_scales_split_and_decode_builds():
    # fp8_kv carries a (kv_heads,) scale per cache: at TP8 each device holds its head's one scale
    _, P, _ = _pair("llama3_70b", "fp8_kv", {"tp": 8})
    shapes = {t.name: t.shape for t in P["attention"].inputs}
    assert shapes["k_cache.scale"] == (1,) and shapes["k_cache"][2] == 1


@pytest.mark.parametrize("recipe", ["kivi2", "int4_g128_weights", "spqr3", "snapkv", "palu"])
def test_recipe_ops_do_less_work_per_device(recipe):
    seen = 0
    for phase in ("decode", "prefill"):
        W, P, meta = _pair("llama3_8b", recipe, {"tp": 8}, phase=phase, batch=4, seq=2048)
        names = list(meta["recipe_op_shares"])
        assert not meta["unsharded_ops"]
        for n in names:
            assert P[n].flops <= W[n].flops and P[n].bytes <= W[n].bytes
            assert P[n].flops + P[n].bytes < W[n].flops + W[n].bytes
        seen += len(names)
    assert seen


def test_fastkv_token_selective_propagation_under_tp():
    # llama3_70b TP8 prefill, batch 2 x 4096: the TSP window scores do the device's 8 of 64 query heads
    # (b = 2 x 64 = 128 -> 16), their head sums are all-reduced over the 8 ranks (2 x 4096 fp32 = 32 KiB),
    # and the gather of the kept hidden rows reads the replicated residual stream whole (1640 x 8192)
    W, P, meta = _pair("llama3_70b", "fastkv", {"tp": 8}, phase="prefill", batch=2, seq=4096)
    assert meta["unsharded_ops"] == []
    assert meta["recipe_op_shares"]["fastkv.tsp_scores"] == "1/8"
    assert meta["recipe_op_shares"]["fastkv.tsp_gather"] == "1/1"
    assert (W["fastkv.tsp_scores"].dims["b"], P["fastkv.tsp_scores"].dims["b"]) == (128, 16)
    assert P["fastkv.tsp_gather"].dims == W["fastkv.tsp_gather"].dims == {"rows": 1640, "cols": 8192, "per_prompt": True}
    ar = P["fastkv.tsp_scores_allreduce"]
    assert ar.kind == "allreduce" and ar.dims["ranks"] == 8 and ar.inputs[0].nbytes == 2 * 4096 * 4
    assert "fastkv.tsp_scores_allreduce" not in W
    # with sequence parallelism each rank gathers its token shard: ceil(1640 / 8) = 205 rows
    _, P2, meta2 = _pair("llama3_70b", "fastkv", {"tp": 8, "sp": True}, phase="prefill", batch=2, seq=4096)
    assert meta2["recipe_op_shares"]["fastkv.tsp_gather"] == "1/8" and P2["fastkv.tsp_gather"].dims["rows"] == 205


@pytest.mark.parametrize("model, parallel, want", [
    # llama3_8b TP2: the row-parallel GEMMs' all-reduces of layers 15-31 carry the 200 propagated rows
    ("llama3_8b", {"tp": 2}, {"attn_allreduce": 200, "mlp_allreduce": 200, "q_proj": 200}),
    # mixtral TP2 (experts split by columns): 200 tokens x top_k 2 = 400 routed pairs, all-reduce 200 rows
    ("mixtral_8x7b", {"tp": 2}, {"attn_allreduce": 200, "moe_allreduce": 200, "expert_act": 400, "router": 200}),
    # mixtral TP2 x EP2: 200 tokens x 2 pairs / 2 ranks = 200 pairs a rank (uniform expected routing)
    ("mixtral_8x7b", {"tp": 2, "ep": 2}, {"moe_dispatch_alltoall": 200, "expert_act": 200, "attn_allreduce": 200}),
])
def test_fastkv_collectives_after_the_selection_layer_carry_the_propagated_tokens(model, parallel, want):
    """A 1,000-token prefill with FastKV (TSP at layer 15, rate 0.2: 200 tokens after it): the sharder's ops
    for the 17 later layers (collectives included) run the 200 propagated tokens, the 15 earlier ones 1,000.
    Before session 17 the sharder sized them from trace.tokens: all-reduces of 1,000 rows after the selection
    layer, and under EP the routed rows of the whole prompt."""
    t = cosim.build_trace(model, phase="prefill", batch=1, seq=1000, recipe="fastkv", parallel=parallel)
    token_dim = lambda o: next(o.dims[k] for k in ("m", "tokens", "rows") if k in o.dims)
    for name, n in want.items():
        got = sorted((o.repeat, token_dim(o), bool(o.dims.get("tsp_after"))) for o in t.ops if o.name == name)
        assert got[-1] == (17, n, True), (name, got)  # the later layers
        assert got[0][0] == 15 and got[0][1] == n * 5 and not got[0][2], (name, got)  # the earlier ones: 5x
