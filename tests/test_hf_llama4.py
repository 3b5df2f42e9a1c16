"""Llama-4 (Scout 17B-16E, Maverick 17B-128E) from their Hugging Face config.json
(tests/data/hf_configs/SOURCES.md): chunked local attention on the RoPE layers, NoPE global
layers, interleaved MoE with a shared expert, the dense layers' intermediate_size_mlp, the
vision tower left out with a note. Every figure below is derived by hand from the config."""

import json

import pytest

import cosim
from workloads.io import InputError
from workloads.models import model_from_hf_config
from workloads.ops import attended_pairs

from tests.test_hf_import import DATA

SCOUT = DATA / "llama4_scout_17b_16e.json"
MAVERICK = DATA / "llama4_maverick_17b_128e.json"

H, V = 5120, 202048
ATTN = H * 5120 + 2 * H * 1024 + 5120 * H + 2 * H  # q (40 x 128), k and v (8 x 128), o, two RMSNorm gains
EXPERT = 3 * H * 8192  # one SwiGLU expert (gate, up, down), intermediate_size 8192
DENSE = 3 * H * 16384  # intermediate_size_mlp
TABLES = 2 * V * H + H  # untied embedding and lm_head, final norm
VISION = 871_932_416  # workloads.hf_layers.llama4_vision_params on the vision_config of both files


def _moe(experts):  # routed experts + the shared expert (as wide) + router (no bias)
    return experts * EXPERT + EXPERT + H * experts


def test_hand_counts():
    assert ATTN == 62_924_800 and EXPERT == 125_829_120 and DENSE == 251_658_240 and TABLES == 2_068_976_640


def test_scout_total_and_active_parameters():
    m = model_from_hf_config(SCOUT)
    assert (m.moe.num_experts, m.moe.top_k, m.moe_layers, m.dense_layers, m.intermediate) == (16, 1, 48, 0, 0)
    assert m.params == 48 * (ATTN + _moe(16)) + TABLES == 107_769_861_120
    # the model card's 109B counts the vision tower too: text-only is 1.13 % below, text + vision 0.33 %
    assert abs(m.params / 109e9 - 1) > 0.005
    assert abs((m.params + VISION) / 109e9 - 1) <= 0.005
    # active: one routed expert + the shared one per layer; embedding and lm_head counted
    assert m.active_params_per_token() == 48 * (ATTN + 2 * EXPERT + H * 16) + TABLES == 17_172_894_720
    assert abs(m.active_params_per_token() - 17e9) <= 0.5e9  # "17B" (two significant figures): +1.0 %


def test_maverick_total_and_active_parameters():
    m = model_from_hf_config(MAVERICK)
    # interleave_moe_layer_step 2: layers 1, 3, ... 47 are MoE (128 experts), 0, 2, ... 46 dense (16384 wide)
    assert m.moe.layer_ids == tuple(range(1, 48, 2)) and m.dense_layers == 24 and m.intermediate == 16384
    assert m.params == 48 * ATTN + 24 * DENSE + 24 * _moe(128) + TABLES == 400_711_848_960
    assert abs(m.params / 400e9 - 1) <= 0.005  # +0.18 % (text + vision 401.58 B: +0.40 %)
    assert abs((m.params + VISION) / 400e9 - 1) <= 0.005
    active = 48 * ATTN + 24 * DENSE + 24 * (2 * EXPERT + H * 128) + TABLES
    assert m.active_params_per_token() == active == 17_184_691_200
    assert abs(m.active_params_per_token() - 17e9) <= 0.5e9  # +1.1 %


def test_layer_plan_rope_chunking_and_norms():
    s, mv = model_from_hf_config(SCOUT), model_from_hf_config(MAVERICK)
    for m in (s, mv):  # no_rope_layers empty / absent: every 4th layer is NoPE and attends globally
        assert (m.rope_layers, m.nope_layers, m.attention_chunk, m.chunk_layers) == (36, 12, 8192, 36)
        assert m.attn_temperature and not m.tie_embeddings and m.sliding_window is None
    assert s.qk_l2norm and not mv.qk_l2norm  # use_qk_norm true / false
    assert (s.max_context, mv.max_context) == (262144, 1048576)
    reps = {op.name: op.repeat for op in cosim.build_trace(s, "decode", 1, 1024).ops}
    assert (reps["rope"], reps["q_norm"], reps["k_norm"], reps["q_temperature"]) == (36, 36, 36, 12)
    assert (reps["attention_chunked"], reps["attention"]) == (36, 12)
    reps = {op.name: op.repeat for op in cosim.build_trace(mv, "decode", 1, 1024).ops}
    assert "q_norm" not in reps and (reps["gate_proj"], reps["expert_gate_proj"], reps["shared_gate_proj"]) == (24,) * 3


def test_kv_cache_at_a_long_context_with_chunked_attention():
    m = model_from_hf_config(SCOUT)
    per_token_layer = 2 * 8 * 128 * 2  # K and V, 8 KV heads of 128, bf16: 4,096 B
    t = cosim.build_trace(m, "decode", 1, 131072)
    # 36 chunked layers hold one chunk (8,192 tokens), the 12 global layers all 131,072
    assert t.meta["footprint"]["kv_cache"] == (36 * 8192 + 12 * 131072) * per_token_layer == 7_650_410_496
    assert 48 * 131072 * per_token_layer == 25_769_803_776  # every layer global: 3.4x more
    ops = {op.name: op for op in t.ops}
    assert ops["attention_chunked"].dims["kv_len"] == 8192 and ops["attention"].dims["kv_len"] == 131072
    # the new token at position S - 1 reads the (S - 1) mod 8192 + 1 keys of its own chunk
    for S, keys in ((131073, 1), (20000, 3616), (8192, 8192), (100, 100)):
        op = next(o for o in cosim.build_trace(m, "decode", 2, S).ops if o.name == "attention_chunked")
        assert op.dims["kv_len"] == keys


def test_chunked_prefill_is_whole_chunks_plus_a_tail():
    m = model_from_hf_config(SCOUT)
    t = cosim.build_trace(m, "prefill", 2, 20000)
    ops = {op.name: op for op in t.ops}
    whole, tail = ops["attention_chunked"], ops["attention_chunked_tail"]
    # 20,000 = 2 x 8,192 + 3,616: 2 prompts x 2 whole chunks, then each prompt's tail
    assert (whole.dims["batch"], whole.dims["q_len"], whole.dims["kv_len"]) == (4, 8192, 8192)
    assert (tail.dims["batch"], tail.dims["q_len"], tail.dims["kv_len"]) == (2, 3616, 3616)
    pairs = 4 * attended_pairs(whole.dims) + 2 * attended_pairs(tail.dims)
    assert pairs == 4 * 8192 * 8193 / 2 + 2 * 3616 * 3617 / 2
    # FLOPs per layer: 40 heads x pairs x 2 (128 + 128) (QK^T and PV), vs the causal full attention
    assert whole.flops + tail.flops == 40 * pairs * 2 * 256
    assert ops["attention"].flops == 2 * 40 * 20000 * 20001 / 2 * 2 * 256
    # a prompt shorter than a chunk is one causal attention over it (no whole chunk)
    names = [o.name for o in cosim.build_trace(m, "prefill", 1, 100).ops if o.kind == "attention"]
    assert names == ["attention_chunked_tail", "attention"]


def test_vision_tower_note_and_footprint():
    m = model_from_hf_config(SCOUT)
    t = cosim.build_trace(m, "decode", 1, 1024)
    note = [n for n in t.meta["notes"] if n.startswith("text-only pricing")]
    assert len(note) == 1 and "871,932,416 parameters" in note[0] and "vision tower" in note[0]
    assert t.meta["footprint"]["weights"] == 2 * m.params  # bf16 text weights only


def _write(tmp_path, base, **changes):
    cfg = json.loads(base.read_text())
    for k, v in changes.items():
        where, _, key = k.rpartition(".")
        d = cfg["text_config"] if where == "text_config" else cfg
        if v is None:
            d.pop(key, None)
        else:
            d[key] = None if v == "null" else v
    p = tmp_path / "config.json"
    p.write_text(json.dumps(cfg))
    return p


@pytest.mark.parametrize("base, changes, field", [
    (SCOUT, {"text_config": None}, "text_config"),  # the multimodal wrapper without its text model
    (SCOUT, {"text_config.attention_chunk_size": None}, "text_config.attention_chunk_size"),
    (MAVERICK, {"text_config.intermediate_size_mlp": None}, "text_config.intermediate_size_mlp"),
    (SCOUT, {"text_config.num_local_experts": None}, "text_config.num_local_experts"),
    (SCOUT, {"text_config.head_dim": None}, "text_config.head_dim"),
    (SCOUT, {"text_config.no_rope_layers": [1, 0]}, "text_config.no_rope_layers"),
    (SCOUT, {"text_config.layer_types": ["sliding_attention"] * 48}, "text_config.layer_types"),
    (SCOUT, {"text_config.tie_word_embeddings": True}, "tie_word_embeddings"),  # wrapper false, text true
    (SCOUT, {"audio_config": {"hidden_size": 8}}, "audio_config"),
    (SCOUT, {"vision_config": {"hidden_size": 8}}, "vision_config.intermediate_size"),
])
def test_unmodelled_or_unguessable_llama4_fields_are_refused(tmp_path, base, changes, field):
    with pytest.raises(InputError) as e:
        model_from_hf_config(_write(tmp_path, base, **changes))
    assert f"config.json: {field}: got" in str(e.value) and "expected" in str(e.value)


def test_tied_embeddings_and_an_explicit_plan(tmp_path):
    # tie_word_embeddings true in both: the lm_head is the embedding table (202,048 x 5,120 fewer)
    m = model_from_hf_config(_write(tmp_path, SCOUT, tie_word_embeddings=True, **{"text_config.tie_word_embeddings": True}))
    assert m.tie_embeddings and m.params == 107_769_861_120 - V * H
    # moe_layers overrides the interleave step; an explicit no_rope_layers / layer_types list sets the plan
    m = model_from_hf_config(_write(tmp_path, SCOUT, **{
        "text_config.moe_layers": [0, 47], "text_config.no_rope_layers": [1, 0] * 24,
        "text_config.layer_types": ["chunked_attention"] * 8 + ["full_attention"] * 40}))
    assert (m.moe_layers, m.dense_layers, m.intermediate, m.rope_layers, m.chunk_layers) == (2, 46, 16384, 24, 8)
    # attention_chunk_size null: no chunked attention (every layer global); absent: refused (above)
    m = model_from_hf_config(_write(tmp_path, SCOUT, **{"text_config.attention_chunk_size": "null"}))
    assert m.chunk_layers == 0 and m.attention_chunk is None


def test_sharded_chunked_attention_under_tp():
    m = model_from_hf_config(MAVERICK)
    t = cosim.build_trace(m, "prefill", 1, 20000, parallel={"tp": 8})
    assert t.meta["parallel"]["unsharded_ops"] == []
    ops = {op.name: op for op in t.ops}
    assert ops["attention_chunked"].dims["heads"] == 5 and ops["attention_chunked_tail"].dims["kv_heads"] == 1
    assert ops["q_temperature"].dims["cols"] == 5 * 128


def test_serving_capacity_says_chunked_layers_are_paged_like_full_ones():
    from cosim.serving.kv_memory import window_note
    (note,) = window_note(model_from_hf_config(SCOUT))
    assert "36 chunked-attention layers (chunk 8,192 tokens) are paged per token like full-attention layers" in note


def _chunk_model(chunk, layers=4, chunked=3):
    from workloads.models import _build
    return _build({"name": "tiny_chunked", "hidden": 64, "layers": layers, "heads": 4, "kv_heads": 2,
                   "intermediate": 128, "vocab": 100, "attention_chunk": chunk, "chunked_layers": chunked,
                   "rope_layers": chunked}, "<test>")


try:
    from hypothesis import given, settings, strategies as st
except ImportError:  # pragma: no cover
    given = None

if given is not None:
    @settings(max_examples=60, deadline=None)
    @given(S=st.integers(1, 5000), C=st.integers(1, 700), B=st.integers(1, 3))
    def test_chunked_attention_pairs_match_a_brute_force_count(S, C, B):
        m = _chunk_model(C)
        ops = [o for o in cosim.build_trace(m, "prefill", B, S).ops if o.name.startswith("attention_chunked")]
        # query at position p attends the (p mod C) + 1 keys of its own chunk
        brute = B * sum(p % C + 1 for p in range(S))
        assert sum(o.dims["batch"] * attended_pairs(o.dims) for o in ops) == brute
        assert sum(o.dims["batch"] * o.dims["q_len"] for o in ops) == B * S  # every query once
        dec = next(o for o in cosim.build_trace(m, "decode", B, S).ops if o.name == "attention_chunked")
        assert dec.dims["kv_len"] == (S - 1) % C + 1 <= min(S, C)
        kv = cosim.build_trace(m, "decode", B, S).meta["footprint"]["kv_cache"]
        assert kv == B * (3 * min(S, C) + 1 * S) * 2 * 2 * 16 * 2  # 2 KV heads of 16, K and V, bf16


def test_template_numbers_match_the_built_ops_across_chunk_branches():
    import numpy as np

    from workloads.builder import _Builder
    from workloads.template import numbers_many, op_numbers
    m = _chunk_model(64)
    seqs = np.array([1, 63, 64, 65, 128, 200, 640])
    for phase in ("prefill", "decode"):
        for rows, tmpl, parts in numbers_many(m, phase, np.full(len(seqs), 2), seqs, "bf16", "bf16", "bf16",
                                              "fused", builder=_Builder):
            for r, j in enumerate(rows):
                ops = _Builder(m, phase, 2, int(seqs[j]), "bf16", "bf16", "bf16", "fused").ops()
                assert list(tmpl.names) == [o.name for o in ops]
                assert [float(np.asarray(f)[r]) if np.ndim(f) else float(f) for f in parts["flops"]] == \
                    [float(op_numbers(o)[0]) for o in ops]


def test_yaml_fields_of_the_layer_plan_are_checked():
    from workloads.models import _build
    base = {"name": "t", "hidden": 64, "layers": 4, "heads": 4, "intermediate": 96, "vocab": 100,
            "moe": {"num_experts": 4, "top_k": 1, "expert_intermediate": 32, "layer_ids": [1, 3]}}
    m = _build(base, "<t>")
    assert m.moe.layer_ids == (1, 3) and m.dense_layers == 2 and [m.is_moe_layer(i) for i in range(4)] == [0, 1, 0, 1]
    for moe, field in (({"layer_ids": [3, 1]}, "moe.layer_ids"), ({"layer_ids": [4]}, "moe.layer_ids"),
                       ({"layer_ids": [1], "first_dense_layers": 1}, "moe.first_dense_layers")):
        with pytest.raises(InputError, match=f"<t>: {field}: got"):
            _build({**base, "moe": {**base["moe"], **moe}}, "<t>")
    with pytest.raises(InputError, match="<t>: intermediate: got 0"):
        _build({**base, "intermediate": 0}, "<t>")
    with pytest.raises(InputError, match="<t>: attention_chunk: got 8"):
        _build({**base, "attention_chunk": 8, "sliding_window": 16}, "<t>")


def test_class_defaults_the_published_configs_leave_out_are_said_in_the_import_notes():
    """Neither published config holds no_rope_layer_interval or attn_temperature_tuning: the transformers
    defaults (every 4th layer NoPE; temperature tuning on) set 12 NoPE / 36 RoPE-and-chunked layers and a
    query temperature op, and the import notes say so (review: applied silently before)."""
    from workloads.models import model_from_hf_config
    m = model_from_hf_config("tests/data/hf_configs/llama4_scout_17b_16e.json")
    assert any("interval 4 -> 36 RoPE layers, 12 NoPE layers" in n for n in m.import_notes)
    assert any(n.startswith("attn_temperature_tuning absent") for n in m.import_notes)
