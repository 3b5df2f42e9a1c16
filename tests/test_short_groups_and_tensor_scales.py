"""One rule for what a weight stores, in every path that prices it (session 14 fixes):

- a group/block that does not divide K leaves a short last group stored whole with its own scale, in the
  recipe path (`int4_g128_weights`) as in the `--weights int4_g128_zp` path (it used to refuse K = 576);
- the memory footprint's weights are those stored bytes, not the format's amortised bits per element;
- NVFP4's fp32 per-tensor scale is priced, 4 B once per weight matrix (moved and resident).

The 576-wide model is SmolLM2-135M's shape (hidden 576, 30 layers, 9 heads / 3 KV heads, MLP 1536,
vocabulary 49,152, tied embeddings)."""

import pytest

from workloads.builder import build_trace
from workloads.compression import apply_recipe
from workloads.models import ModelSpec
from workloads.ops import TensorSpec

SMOL = ModelSpec(name="smollm2_135m_shape", hidden=576, layers=30, heads=9, kv_heads=3, intermediate=1536,
                 vocab=49152, tie_embeddings=True)
LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def _trace(weights, phase="decode", batch=1, seq=256, model=SMOL):
    return build_trace(model, phase=phase, batch=batch, seq=seq, weights=weights, acts="bf16", kv="bf16")


def _weight_bytes(op):
    return sum(t.nbytes for t in op.inputs if t.role == "weight")


def test_recipe_prices_a_short_last_group_as_the_weights_flag_does():
    # int4_g128_zp on K = 576 = 4.5 x 128: 4 whole groups + one of 64, each with a 16-bit scale and a 4-bit
    # zero: 576*4 + 5*(16+4) = 2404 bits per output column (4.1736 bits/element, not the amortised 4.15625)
    rec = apply_recipe(_trace("bf16"), "int4_g128_weights", SMOL)
    flag = _trace("int4_g128_zp")
    by_name = {op.name: op for op in flag.ops}
    for op in rec.ops:
        if op.name in LINEARS:
            assert _weight_bytes(op) == _weight_bytes(by_name[op.name]), op.name
    q = next(op for op in rec.ops if op.name == "q_proj")
    assert _weight_bytes(q) == 576 * 2404 / 8 == 173_088
    k = next(op for op in rec.ops if op.name == "k_proj")
    assert _weight_bytes(k) == 192 * 2404 / 8 == 57_696
    down = next(op for op in rec.ops if op.name == "down_proj")  # K = 1536 = 12 x 128: no short group
    assert _weight_bytes(down) == 576 * (1536 * 4 + 12 * 20) / 8 == 459_648


def test_recipe_footprint_moves_by_the_stored_bytes():
    # the recipe's footprint delta is bf16 -> int4_g128_zp of the 7 linears x 30 layers, each as stored
    rec = apply_recipe(_trace("bf16"), "int4_g128_weights", SMOL)
    per_layer_bf16 = (2 * 576 * 576 + 2 * 576 * 192 + 3 * 576 * 1536) * 2
    per_layer_q = (2 * 576 + 2 * 192 + 2 * 1536) * 2404 / 8 + 576 * (1536 * 4 + 12 * 20) / 8
    delta = rec.meta["footprint"]["weights"] - _trace("bf16").meta["footprint"]["weights"]
    assert delta == pytest.approx(30 * (per_layer_q - per_layer_bf16), rel=1e-12)
    assert 30 * per_layer_q == 30 * 1_844_352 == 55_330_560


def test_deepseek_v2_lite_dense_mlp_groups_are_priced_not_refused():
    # DeepSeek-V2-Lite's dense MLP is 10944 = 85.5 x 128 wide: the recipe used to refuse it; down_proj now
    # stores 86 groups per output column: 10944*4 + 86*20 = 45,496 bits, x 2048 columns = 11,646,976 B
    from compression_helpers import DSV2_LITE, trace_for
    t = apply_recipe(trace_for(DSV2_LITE), "int4_g128_weights", DSV2_LITE)
    down = next(op for op in t.ops if op.name == "down_proj")
    assert _weight_bytes(down) == 2048 * 45_496 / 8 == 11_646_976


def test_footprint_weights_are_the_bytes_the_gemms_move():
    # int4_g128 (fp16 scale per 128 along K): K = 576 -> 2384 bits a column, K = 1536 -> 6336 bits a column
    t = _trace("int4_g128")
    gemm = sum(_weight_bytes(op) * op.repeat for op in t.ops if op.kind == "gemm")  # the tied lm_head = the table
    norms = 30 * 2 * 576 + 576  # RMSNorm gains: no GEMM stores them; priced at 4.125 bits as before
    fp = t.meta["footprint"]["weights"]
    assert fp == pytest.approx(gemm + norms * 4.125 / 8, rel=1e-15)
    per_layer = ((2 * 576 + 2 * 192 + 2 * 1536) * 2384 + 576 * 6336) / 8
    assert per_layer == 1_829_376
    table = 49152 * 2384 / 8  # the embedding table's rows of 576, blocked along them
    assert table == 14_647_296
    assert fp == pytest.approx(30 * per_layer + table + 18_117, rel=1e-15) and fp == pytest.approx(69_546_693)
    # the amortised figure it replaces: 134,515,008 parameters x 4.125 / 8 = 69,359,301 B, 187,392 B (0.27 %)
    # under: each of the 30 x 4,608 + 49,152 = 187,392 columns of 576 stores 5 fp16 scales, not 4.5 (1 B more)
    assert SMOL.params == 134_515_008
    assert 30 * 4608 + 49152 == 187_392
    assert fp - SMOL.params * 4.125 / 8 == pytest.approx(187_392, abs=1e-6)


def test_footprint_unchanged_where_every_group_is_whole():
    # Llama-3-8B: every K (4096, 14336) and the table rows (4096) are multiples of 32: MXFP4 at 4.25 b exactly
    from workloads.models import load_model
    t = build_trace("llama3_8b", "decode", batch=8, seq=4096, weights="mxfp4")
    assert t.meta["footprint"]["weights"] == pytest.approx(load_model("llama3_8b").params * 4.25 / 8, rel=1e-15)


def test_nvfp4_weight_carries_its_fp32_tensor_scale_once_per_matrix():
    # 576 x 576 in NVFP4: 4 bits + an E4M3 scale per 16 = 4.5 bits/element, + one fp32 (4 B) per matrix
    w = TensorSpec("q_proj.weight", (576, 576), "nvfp4", "weight")
    assert w.tensor_scales == 1 and w.nbytes == 576 * 576 * 4.5 / 8 + 4 == 186_628
    # a routed-experts tensor (8 experts): 8 scales stored, the touched fraction of them moved
    e = TensorSpec("expert_up_proj.weight", (8, 576, 1536), "nvfp4", "weight", density=0.25)
    assert e.tensor_scales == 8
    assert e.stored_bytes == 8 * 576 * 1536 * 4.5 / 8 + 8 * 4
    assert e.nbytes == 0.25 * 8 * 576 * 1536 * 4.5 / 8 + 2 * 4
    # an activation's per-tensor scale is folded into the GEMM's fp32 alpha, not a streamed tensor
    x = TensorSpec("x", (4, 576), "nvfp4")
    assert x.tensor_scales == 0 and x.nbytes == 4 * 576 * 4.5 / 8
    # formats without one are untouched
    assert TensorSpec("w", (576, 576), "mxfp4", "weight").tensor_scales == 0


def test_nvfp4_tensor_scales_in_the_footprint_and_the_ops():
    t = _trace("nvfp4")
    q = next(op for op in t.ops if op.name == "q_proj")
    assert _weight_bytes(q) == 576 * 576 * 4.5 / 8 + 4
    # 7 matrices x 30 layers + the (tied) embedding table = 211 fp32 scales = 844 B over 4.5 bits/element
    fp = t.meta["footprint"]["weights"]
    assert fp == pytest.approx(SMOL.params * 4.5 / 8 + 211 * 4, rel=1e-15)
    assert fp - SMOL.params * 4.5 / 8 == pytest.approx(844, abs=1e-6)


def test_fp8_block_scales_count_the_2d_tiles_stored():
    # DeepSeek-V3's kv_a_proj_with_mqa, 7168 x 576 in fp8 with one fp32 per 128 x 128 tile: 56 x 5 = 280 tiles
    # (576 = 4.5 x 128 ends in a short tile), not 7168 x 576 / 16384 = 252 amortised, nor one 16384-long
    # 1-D block per column of 7168 (576 scales, what a 1-D row rule would store)
    w = TensorSpec("kv_a_proj.weight", (7168, 576), "fp8_e4m3_b128x128", "weight")
    assert w.nbytes == 7168 * 576 + 280 * 4 == 4_129_888
    whole = TensorSpec("q_a_proj.weight", (7168, 1536), "fp8_e4m3_b128x128", "weight")
    assert whole.nbytes == 7168 * 1536 + 56 * 12 * 4  # whole tiles: the amortised 8 + 32/16384 bits exactly


def test_fp8_block_gathered_rows_and_the_template_agree():
    # an embedding op gathers T rows of the table: each row of 7168 reads the 56 tile scales it crosses
    # (T x (7168 + 56 x 4) B); the template (T symbolic) prices the same as the built ops
    import cosim
    from workloads.template import op_numbers
    g = TensorSpec("embed.weight", (8, 7168), "fp8_e4m3_b128x128", "weight", block_axis=-1)
    assert g.nbytes == 8 * (7168 + 56 * 4)
    t = cosim.build_trace("llama3_8b", "decode", 8, 1024, weights="fp8_e4m3_b128x128")
    tmpl, nums = t._numbers
    parts = tmpl.split(nums)
    got = list(zip(parts["flops"], parts["bytes"], parts["mnk"], parts["elem_bytes"]))
    assert got == [op_numbers(o) for o in t.ops]
    # the footprint's table is stored in tiles: 128256 x 4096 = 1002 x 32 whole tiles, the amortised figure
    emb = TensorSpec("t", (128256, 4096), "fp8_e4m3_b128x128", "weight")
    assert emb.stored_bytes == 128256 * 4096 + 1002 * 32 * 4
