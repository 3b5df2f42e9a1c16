import pytest

from workloads.builder import build_trace, experts_touched
from workloads.io import InputError
from workloads.models import load_model
from workloads.ops import Op, TensorSpec
from workloads.trace import Trace, TraceError


def weight_bytes(trace):
    return sum(op.bytes_by_role().get("weight", 0.0) * op.repeat for op in trace.ops if op.kind != "embedding")


def kv_read_bytes(trace):
    return sum(op.bytes_by_role().get("kv", 0.0) * op.repeat for op in trace.ops if op.kind == "attention")


def test_mxfp4_weight_bytes():
    t = TensorSpec("w", (4096, 4096), "mxfp4", "weight")
    assert t.nbytes == 8_912_896  # 4096*4096*4.25/8


def test_llama2_7b_decode_bytes():
    t = build_trace("llama2_7b", "decode", batch=1, seq=2048)
    # 6.61 B parameters of layers + LM head, 2 B each; embedding rows are gathered, not streamed
    assert weight_bytes(t) / 1e9 == pytest.approx(13.2, abs=0.05)
    assert kv_read_bytes(t) == 2048 * 524_288  # 1.07 GB
    # LLM-Viewer (hahnyuan/LLM-Viewer, Llama-2-7b, decode, batch 1, seq 2048) reports ~14.3 GB moved
    # and ~14.2 GFLOP. We move 14.30 GB (13.21 weights + 1.07 KV + activations). Our 14.29 GFLOP counts the
    # LM head (0.26 GFLOP) for the one new token and all attention as 2 matmuls (1.07 GFLOP); LLM-Viewer
    # additionally counts norms/softmax element ops but its attention FLOPs are computed for the new
    # token's q against seq keys the same way, so the ~0.6 % difference is the element-op convention.
    assert t.total_bytes / 1e9 == pytest.approx(14.3, rel=0.01)
    assert t.total_flops / 1e9 == pytest.approx(14.2, rel=0.01)


def test_prefill_linear_flops_are_2_tokens_params():
    m = load_model("llama2_7b")
    t = build_trace(m, "prefill", batch=2, seq=512)
    linear = sum(op.total_flops for op in t.ops if op.kind == "gemm" and op.name != "lm_head")
    lin_params = m.layers * (4 * m.hidden * m.hidden + 3 * m.hidden * m.intermediate)
    assert linear == 2 * 1024 * lin_params


def test_decode_attention_intensity_mha_vs_gqa():
    mha = build_trace("llama2_7b", "decode", batch=1, seq=4096).find("attention")
    gqa = build_trace("llama3_8b", "decode", batch=1, seq=4096).find("attention")
    assert mha.intensity == pytest.approx(1.0, rel=0.01)  # 4*H*S*d FLOP over 2*2*H*S*d B
    assert gqa.intensity == pytest.approx(32 / 8, rel=0.01)  # H/Hkv


def test_causal_prefill_attention_flops():
    op = build_trace("llama2_7b", "prefill", batch=1, seq=1024).find("attention")
    # sum over query i of (i+1) keys = S(S+1)/2 pairs; 4*d FLOPs each (QK^T and PV)
    assert op.flops == 4 * 32 * 128 * 1024 * 1025 / 2


def test_unfused_attention_has_three_ops():
    t = build_trace("llama3_8b", "prefill", batch=1, seq=256, attention="unfused")
    names = [o.name for o in t.ops]
    assert {"attn_scores", "attn_softmax", "attn_pv"} <= set(names) and "attention" not in names
    sm = t.find("attn_softmax")
    assert sm.dims == {"rows": 32 * 256, "cols": 256}


def test_moe_experts_touched_and_flops():
    assert experts_touched(8, 2, 1) == pytest.approx(2.0)
    assert experts_touched(8, 2, 1000) == pytest.approx(8.0)
    m = load_model("mixtral_8x7b")
    t = build_trace(m, "decode", batch=1, seq=128)
    up = t.find("expert_up_proj")
    assert up.total_flops == 2 * 2 * 4096 * 14336 * 32  # top-2 tokens x layers
    # one token touches 2 of 8 experts: a quarter of the expert weights stream
    assert up.bytes_by_role()["weight"] == pytest.approx(8 * 4096 * 14336 * 2 / 4)


def test_mla_decode_reads_latent_cache():
    t = build_trace("deepseek_v2_lite", "decode", batch=1, seq=1000)
    att = t.find("attention")
    assert att.dims["kv_heads"] == 1 and att.dims["head_dim"] == 576
    assert kv_read_bytes(t) == 1000 * 31_104


def test_sliding_window_caps_decode_cache():
    t = build_trace("mistral_7b", "decode", batch=1, seq=16384)
    assert t.find("attention").dims["kv_len"] == 4096


def test_footprint():
    t = build_trace("llama3_8b", "decode", batch=8, seq=4096, weights="mxfp4", kv="fp8_e4m3")
    fp = t.meta["footprint"]
    # + each sequence's fp32 scales, one per KV head for K and V in each layer (8 x 32 x 8 x 4 B x 2)
    assert fp["kv_cache"] == 8 * 4096 * 131_072 / 2 + 8 * 32 * 8 * 4 * 2
    assert fp["weights"] == pytest.approx(load_model("llama3_8b").params * 4.25 / 8)


@pytest.mark.parametrize("kw,needle", [
    ({"batch": 0}, "batch"), ({"batch": -3}, "batch"), ({"seq": 0}, "seq"), ({"batch": 1.5}, "batch"),
    ({"phase": "train"}, "phase"), ({"seq": 10**12}, "at most"), ({"batch": 10**9}, "at most"), ({"weights": "mxfp5"}, "weights"), ({"kv": "nope"}, "kv"),
])
def test_bad_build_arguments(kw, needle):
    with pytest.raises(InputError, match=needle):
        build_trace("llama3_8b", **{"phase": "decode", **kw})


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_trace_roundtrip(tmp_path, suffix):
    t = build_trace("mixtral_8x7b", "decode", batch=4, seq=512, weights="mxfp4")
    p = t.save(tmp_path / f"t{suffix}")
    u = Trace.load(p)
    assert u.ops == t.ops and u.total_bytes == t.total_bytes and u.meta["footprint"] == t.meta["footprint"]


@pytest.mark.parametrize("content,needle", [
    ("ops: []\n", "ops"),
    ("ops:\n  - {name: a, kind: gemm, dims: {m: 1, n: 1, k: 1}, inputs: [], outputs: [], repeat: 0}\n", "repeat"),
    ("ops:\n  - {name: a, kind: warp, dims: {}, inputs: [], outputs: []}\n", "kind"),
    ("ops:\n  - {name: a, kind: copy, dims: {rows: 1, cols: 1}, inputs: [{name: x, shape: [1], fmt: fp5}], outputs: []}\n", "fp5"),
    ("ops:\n  - {name: a, kind: copy, dims: {rows: 1, cols: 1}, inputs: [{name: x, shape: [-1], fmt: bf16}], outputs: []}\n", "shape"),
    ("batch: 0\nops:\n  - {name: a, kind: copy, dims: {rows: 1, cols: 1}, inputs: [], outputs: []}\n", "batch"),
])
def test_bad_trace_files(tmp_path, content, needle):
    p = tmp_path / "bad.yaml"
    p.write_text(content)
    with pytest.raises(TraceError) as e:
        Trace.load(p)
    assert needle in str(e.value) and str(p) in str(e.value)


def test_op_derived_quantities():
    op = Op("g", "gemm", {"m": 2, "n": 3, "k": 4}, (TensorSpec("a", (2, 4), "bf16"), TensorSpec("b", (4, 3), "bf16", "weight")),
            (TensorSpec("c", (2, 3), "bf16"),), repeat=5)
    assert op.flops == 48 and op.total_flops == 240
    assert op.bytes == (8 + 12 + 6) * 2


def _old_style_embed(extra=None):
    """An embedding op as a trace saved before block_axis was written (schema_version 1)."""
    w = {"name": "embed.weight", "shape": [8, 576], "fmt": "int4_g128", "role": "weight"}
    w.update(extra or {})
    return {"schema_version": 1, "ops": [
        {"name": "embed", "kind": "embedding", "dims": {"n": 8},
         "inputs": [w], "outputs": [{"name": "h", "shape": [8, 576], "fmt": "bf16"}]}]}


def test_old_trace_embedding_prices_as_new():
    # the table's rows (576 = 4.5 x 128) are the groups: 4 whole + 1 short group of 64, each with a
    # 16-bit scale: 576*4 + 5*16 = 2384 bits per row (4.1389 bits/element); 8 rows -> 2384 B.
    # Blocked along the 8-token axis instead it was (8*4 + 16)/8 = 6.0 bits/element, 3456 B.
    old = Trace.from_dict(_old_style_embed()).ops[0].inputs[0]
    assert old.block_axis == -1
    assert old.nbytes == pytest.approx(2384.0)
    assert old.bits_per_element == pytest.approx(2384 / 576)
    new = TensorSpec("embed.weight", (8, 576), "int4_g128", "weight", block_axis=-1)
    assert old.nbytes == new.nbytes
    # an explicit block_axis in the file still wins
    assert Trace.from_dict(_old_style_embed({"block_axis": 0})).ops[0].inputs[0].nbytes == pytest.approx(3456.0)


def test_old_trace_resmoe_residual_values_block_along_last_axis():
    t = {"schema_version": 1, "ops": [
        {"name": "expert_up_proj.residual", "kind": "custom", "dims": {"flops": 10},
         "inputs": [{"name": "expert_up_proj.residual_values", "shape": [4, 576], "fmt": "int4_g128",
                     "role": "weight"},
                    {"name": "w2", "shape": [576, 8], "fmt": "int4_g128", "role": "weight"}],
         "outputs": [{"name": "y", "shape": [8, 8], "fmt": "bf16"}]}]}
    vals, other = Trace.from_dict(t).ops[0].inputs
    assert vals.block_axis == -1 and other.block_axis is None


@pytest.mark.parametrize("bad", [5, -3, "x", True, 1.7, [1]])
def test_bad_block_axis_is_one_clear_error(bad):
    with pytest.raises(TraceError) as e:
        Trace.from_dict(_old_style_embed({"block_axis": bad}), source="t.yaml")
    msg = str(e.value)
    assert "t.yaml" in msg and "inputs[0].block_axis" in msg and repr(bad)[:3] in msg
    assert "integer axis in -2..1" in msg


@pytest.mark.parametrize("ok", [0, 1, -1, -2])
def test_block_axis_in_range_loads(ok):
    assert Trace.from_dict(_old_style_embed({"block_axis": ok})).ops[0].inputs[0].block_axis == ok
