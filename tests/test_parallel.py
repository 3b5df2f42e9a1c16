"""Parallel traces: hand-checkable shards, collectives, per-device memory and bad layouts."""

import pytest
from hypothesis import given, settings, strategies as st

import cosim
from workloads.io import InputError
from workloads.models import load_model
from workloads.parallel import Layout, bubble_fraction, device_params, stage_layers


def _comm(trace):
    return [op for op in trace.ops if op.kind in ("allreduce", "allgather", "reducescatter", "alltoall", "sendrecv")]


def test_llama3_70b_tp8_two_allreduces_per_layer_of_batch_x_hidden_x_2_bytes():
    t = cosim.build_trace("llama3_70b", phase="decode", batch=64, seq=8192, parallel={"tp": 8})
    per_layer = [op for op in _comm(t) if op.repeat == 80]
    assert [op.name for op in per_layer] == ["attn_allreduce", "mlp_allreduce"]
    for op in per_layer:
        assert op.kind == "allreduce" and op.dims["ranks"] == 8
        assert op.inputs[0].nbytes == 64 * 8192 * 2  # batch x hidden x 2 B = 1 MiB
    # plus the vocab-parallel embedding's all-reduce and the logits' all-gather, once each
    once = {op.name: op for op in _comm(t) if op.repeat == 1}
    assert once["embed_allreduce"].inputs[0].nbytes == 64 * 8192 * 2
    assert once["lm_head_allgather"].outputs[0].nbytes == 64 * 128256 * 2


def test_llama3_70b_tp8_shards_heads_and_widths():
    t = cosim.build_trace("llama3_70b", phase="decode", batch=64, seq=8192, parallel={"tp": 8})
    assert t.find("q_proj").dims["n"] == 8192 // 8
    assert t.find("k_proj").dims["n"] == 128  # 8 KV heads over 8 ranks: one each
    assert t.find("o_proj").dims["k"] == 1024
    assert t.find("gate_proj").dims["n"] == 28672 // 8
    assert t.find("down_proj").dims["k"] == 28672 // 8
    att = t.find("attention").dims
    assert (att["heads"], att["kv_heads"]) == (8, 1)


def test_sequence_parallel_swaps_allreduce_for_reducescatter_allgather():
    t = cosim.build_trace("llama3_70b", phase="prefill", batch=1, seq=4096, parallel={"tp": 8, "sp": True})
    names = [op.name for op in _comm(t) if op.repeat == 80]
    assert names == ["attn_allgather", "attn_reducescatter", "mlp_allgather", "mlp_reducescatter"]
    assert t.find("attn_norm").dims["rows"] == 4096 // 8
    rs = t.find("attn_reducescatter")
    assert rs.inputs[0].nbytes == 4096 * 8192 * 2 and rs.outputs[0].nbytes == 4096 * 8192 * 2 / 8


def test_replicated_kv_heads_when_fewer_than_tp():
    t = cosim.build_trace("llama3_70b", phase="decode", batch=8, seq=1024, parallel={"tp": 16})
    p = t.meta["parallel"]
    assert p["kv_heads_per_device"] == 1 and p["kv_heads_replicated"]
    assert t.find("k_proj").dims["n"] == 128 and t.find("q_proj").dims["n"] == 8192 // 16
    # KV cache per device: one head of the 8, over 80 layers
    whole = t.meta["footprint_whole_model"]["kv_cache"]
    assert t.meta["footprint"]["kv_cache"] == pytest.approx(whole / 8)


def test_per_device_weight_bytes_tp8_by_hand():
    # per layer: q,o 8192x8192/8 each; k,v one 128-wide head each; MLP 3 x 8192 x 28672 / 8; 2 norms
    layer = 2 * 8192 * 8192 // 8 + 2 * 8192 * 128 + 3 * 8192 * 28672 // 8 + 2 * 8192
    total = 80 * layer + 2 * 128256 * 8192 // 8 + 8192  # + vocab-parallel embedding, lm_head, final norm
    assert device_params(load_model("llama3_70b"), Layout(tp=8)) == [total]
    t = cosim.build_trace("llama3_70b", phase="decode", batch=1, seq=128, parallel={"tp": 8})
    assert t.meta["footprint"]["weights"] == pytest.approx(total * 2)


def test_per_device_weights_tp4_pp2_stage_split():
    m = load_model("llama3_70b")
    layer = 2 * 8192 * 8192 // 4 + 2 * 8192 * 256 + 3 * 8192 * 28672 // 4 + 2 * 8192
    first, last = device_params(m, Layout(tp=4, pp=2))
    assert first == 40 * layer + 128256 * 8192 // 4
    assert last == 40 * layer + 128256 * 8192 // 4 + 8192
    assert stage_layers(80, 3) == [27, 27, 26]


def test_mixtral_ep8_places_one_expert_per_device_and_dispatches_tokens():
    t = cosim.build_trace("mixtral_8x7b", phase="decode", batch=64, seq=4096, parallel={"tp": 8, "ep": 8})
    assert t.meta["parallel"]["experts_per_device"] == 1
    up = t.find("expert_up_proj")
    assert up.inputs[1].shape == (1, 4096, 14336)  # one whole expert
    assert up.dims["m"] == 64 * 2 // 8  # T x top_k / tp token-expert rows on average
    disp = t.find("moe_dispatch_alltoall")
    assert disp.dims["ranks"] == 8 and disp.inputs[0].nbytes == (64 // 8) * 2 * 4096 * 2
    assert t.find("moe_combine_alltoall").inputs[0].nbytes == disp.inputs[0].nbytes
    # expert weights per device: 32 layers x 1 expert x 3 x 4096 x 14336 (+ attention etc.)
    m = load_model("mixtral_8x7b")
    dense = device_params(m, Layout(tp=8, ep=8))[0]
    no_ep = device_params(m, Layout(tp=8))[0]
    assert dense == pytest.approx(no_ep)  # EP8 whole experts = TP8 slices of all 8, same bytes


def test_mixtral_ep1_splits_every_expert_by_tp():
    t = cosim.build_trace("mixtral_8x7b", phase="decode", batch=16, seq=1024, parallel={"tp": 4})
    up = t.find("expert_up_proj")
    assert up.inputs[1].shape == (8, 4096, 14336 // 4)
    assert t.find("moe_allreduce").inputs[0].nbytes == 16 * 4096 * 2


def test_pipeline_sends_and_bubble():
    t = cosim.build_trace("llama3_70b", phase="decode", batch=64, seq=2048,
                          parallel={"tp": 2, "pp": 4, "microbatches": 4})
    send = t.find("pp_sendrecv")
    assert send.repeat == 3 and send.dims["stride"] == 2
    assert send.inputs[0].nbytes == 16 * 8192 * 2  # one micro-batch of 64/4 sequences
    assert t.batch == 16 and t.meta["parallel"]["global_batch"] == 64
    assert t.meta["parallel"]["bubble_fraction"] == pytest.approx(3 / 7)
    assert bubble_fraction(2, 6) == pytest.approx(1 / 7)


def test_pipeline_timing_from_report_rows():
    from cosim.parallel_timing import pipeline_timing
    rows = [{"latency_s": 0.8, "group": "attn"}, {"latency_s": 0.1, "group": "embed"},
            {"latency_s": 0.1, "group": "head"}, {"latency_s": 0.06, "group": "pp"}]
    t = pipeline_timing(rows, {"stage_layers": [2, 2], "microbatches": 3})
    assert t.stage_latency_s == pytest.approx([0.4 + 0.1 + 0.06, 0.4 + 0.1])
    assert t.step_latency_s == pytest.approx(4 * 0.56) and t.bubble_s == pytest.approx(0.56)
    assert t.to_dict()["bubble_fraction"] == pytest.approx(1 / 4)  # (p - 1) / (m + p - 1) = 1 / 4


@pytest.mark.parametrize("parallel, words", [
    ({"tp": 3}, "divisor of the 64 attention heads"),
    ({"tp": 128}, "divisor of the 64 attention heads"),
    ({"tp": 2, "ep": 2}, "no experts"),
    ({"tp": 0}, "positive integer"),
    ({"tq": 2}, "expected one of"),
    ({"dp": 3}, "divisor of the batch"),
])
def test_bad_layouts_are_clear_errors(parallel, words):
    with pytest.raises(InputError, match=words):
        cosim.build_trace("llama3_70b", phase="decode", batch=64, seq=128, parallel=parallel)


def test_ep_not_dividing_experts_is_an_error():
    with pytest.raises(InputError, match="divisor of the 8 experts"):
        cosim.build_trace("mixtral_8x7b", phase="decode", batch=8, seq=128, parallel={"tp": 1, "dp": 3, "ep": 3})
    with pytest.raises(InputError, match="multiple of tp"):
        cosim.build_trace("mixtral_8x7b", phase="decode", batch=8, seq=128, parallel={"tp": 8, "ep": 4})


def test_mla_latent_cache_is_replicated_under_tp():
    t = cosim.build_trace("deepseek_v2_lite", phase="decode", batch=4, seq=512, parallel={"tp": 4})
    whole = t.meta["footprint_whole_model"]["kv_cache"]
    assert t.meta["footprint"]["kv_cache"] == pytest.approx(whole)
    assert t.find("attention").dims["kv_heads"] == 1


@settings(max_examples=25, deadline=None)
@given(tp=st.sampled_from([1, 2, 4, 8]), batch=st.integers(1, 64), phase=st.sampled_from(["prefill", "decode"]))
def test_tensor_parallel_gemm_flops_add_up_to_the_whole_model(tp, batch, phase):
    seq = 64
    whole = cosim.build_trace("llama3_8b", phase=phase, batch=batch, seq=seq)
    shard = cosim.build_trace("llama3_8b", phase=phase, batch=batch, seq=seq, parallel={"tp": tp})
    for name in ("q_proj", "o_proj", "gate_proj", "down_proj", "attention", "lm_head"):
        assert shard.find(name).total_flops * tp == pytest.approx(whole.find(name).total_flops)


def test_unfused_attention_shards_heads_and_bytes():
    whole = cosim.build_trace("llama3_70b", phase="prefill", batch=2, seq=512, attention="unfused")
    t = cosim.build_trace("llama3_70b", phase="prefill", batch=2, seq=512, attention="unfused", parallel={"tp": 8})
    for name in ("attn_scores", "attn_softmax", "attn_pv"):
        assert t.find(name).total_flops * 8 == pytest.approx(whole.find(name).total_flops)
    sm, w = t.find("attn_softmax"), whole.find("attn_softmax")
    assert sm.inputs[0].shape == (2 * 64 // 8, 512, 512) and sm.bytes * 8 == pytest.approx(w.bytes)
    assert t.find("attn_scores").inputs[1].shape == (2, 512, 1, 128)  # one KV head per rank
