"""Functional twins of the weight and MoE recipes, and the safetensors loading path."""

import ml_dtypes
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from cosim.functional.compression import moe as moe_twin
from cosim.functional.compression.metrics import rel_error
from cosim.functional.compression.quant import register_format_quant, sym_group_quant
from cosim.functional.checkpoint import CheckpointError
from cosim.functional.checkpoint import lazy as lazy_reader
from cosim.functional.checkpoint.lazy import LazySafetensors, hf_linear
from cosim.functional.compression.synthetic import activations, heavy_tailed_weights, moe_layer
from cosim.functional.compression.weights import gemm_sqnr, ocs_quantize, spqr_quantize
from workloads.io import InputError



def write_safetensors(path, tensors, metadata=None):
    import safetensors.numpy
    safetensors.numpy.save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(path), metadata=metadata)
    return path


SETTINGS = settings(max_examples=8, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def wx(seed=0, k=512, n=128):
    rng = np.random.default_rng(seed)
    return heavy_tailed_weights(k, n, rng), activations(32, k, rng)


def test_sym_group_quant_by_hand():
    x = np.array([[-7.0, 3.5, 1.0, 0.2]])
    # 4 bits: qmax 7, scale 1 -> rounds to integers
    assert np.array_equal(sym_group_quant(x, 4, 4), np.array([[-7, 4, 1, 0]], np.float32))


@SETTINGS
@given(seed=st.integers(0, 10_000), pair=st.sampled_from([(2, 3), (3, 4), (4, 8), (3, 8)]))
def test_int_group_weight_sqnr_increases_with_bits(seed, pair):
    w, x = wx(seed)
    lo, hi = (gemm_sqnr(x, w, register_format_quant(w, f"int{b}_g128", axis=0)) for b in pair)
    assert hi > lo


def test_int8_group_sqnr_near_theory():
    # uniform quantization noise: ~6 dB per bit; 8-bit groups on heavy tails land well above 30 dB
    w, x = wx()
    assert gemm_sqnr(x, w, register_format_quant(w, "int8_g128", axis=0)) > 30


@SETTINGS
@given(seed=st.integers(0, 10_000), bits=st.sampled_from([(2, 3), (3, 4)]))
def test_spqr_sqnr_increases_with_bits(seed, bits):
    w, x = wx(seed)
    assert gemm_sqnr(x, w, spqr_quantize(w, bits=bits[1])) > gemm_sqnr(x, w, spqr_quantize(w, bits=bits[0]))


def test_spqr_sensitivity_ranked_outliers_help():
    w, x = wx()
    none = gemm_sqnr(x, w, spqr_quantize(w, outlier_fraction=0.0))
    ranked = gemm_sqnr(x, w, spqr_quantize(w, outlier_fraction=0.01, act_norms=np.linalg.norm(x, axis=0)))
    assert ranked > none + 1


def test_ocs_beats_plain_quantization_on_outlier_channels():
    w, x = wx(k=1024)
    plain = register_format_quant(w, "int4_g128", axis=0)
    eff, wide = ocs_quantize(w, expand_ratio=0.02, format="int4_g128")
    assert wide.shape[0] == 1024 + int(np.ceil(0.02 * 1024))
    assert gemm_sqnr(x, w, eff) > gemm_sqnr(x, w, plain)


def test_registered_mx_format_through_the_functional_core():
    try:
        from cosim.functional import quantize  # noqa: F401
    except ImportError:
        pytest.skip("cosim.functional.quantize (the functional core) is not in this checkout yet")
    w, x = wx()
    s4 = gemm_sqnr(x, w, register_format_quant(w, "mxfp4", axis=0))
    s8 = gemm_sqnr(x, w, register_format_quant(w, "mxfp8_e4m3", axis=0))
    assert s8 > s4 > 5


# ---- MoE ------------------------------------------------------------------------------
def moe_setup(seed=0):
    rng = np.random.default_rng(seed)
    layer = moe_layer(rng, hidden=64, ffn=128, experts=8, top_k=2)
    return layer, activations(256, 64, rng, outlier_scale=3.0), activations(256, 64, rng, outlier_scale=3.0)


def test_moe_forward_routes_top_k():
    layer, x, _ = moe_setup()
    y = moe_twin.moe_forward(layer, x)
    assert y.shape == (256, 64) and np.isfinite(y).all()
    assert moe_twin.expert_usage(layer, x).sum() == 256 * 2


@SETTINGS
@given(seed=st.integers(0, 1000), dens=st.sampled_from([(0.0, 0.25), (0.25, 0.5), (0.5, 1.0)]))
def test_resmoe_error_decreases_with_residual_density(seed, dens):
    layer, x, _ = moe_setup(seed)
    ref = moe_twin.moe_forward(layer, x)
    lo, hi = (rel_error(ref, moe_twin.moe_forward(moe_twin.resmoe_compress(layer, d), x)) for d in dens)
    assert hi < lo


def test_resmoe_svd_error_decreases_with_rank():
    layer, x, _ = moe_setup()
    ref = moe_twin.moe_forward(layer, x)
    errs = [rel_error(ref, moe_twin.moe_forward(moe_twin.resmoe_compress(layer, residual="svd", rank_ratio=q), x))
            for q in (0.0, 0.25, 0.5)]
    assert errs[0] > errs[1] > errs[2]


def test_resmoe_full_density_is_exact():
    layer, x, _ = moe_setup()
    ref = moe_twin.moe_forward(layer, x)
    assert rel_error(ref, moe_twin.moe_forward(moe_twin.resmoe_compress(layer, 1.0), x)) < 1e-5


@SETTINGS
@given(seed=st.integers(0, 1000), keep=st.sampled_from([(0.5, 0.75), (0.75, 1.0), (0.25, 0.75)]))
def test_pruning_error_decreases_with_experts_kept(seed, keep):
    layer, x, calib = moe_setup(seed)
    ref = moe_twin.moe_forward(layer, x)

    def e(f):
        new, alive = moe_twin.prune_experts(layer, calib, keep_fraction=f)
        return rel_error(ref, moe_twin.moe_forward(new, x, alive=alive))
    assert e(keep[1]) < e(keep[0])


def test_merging_is_no_worse_than_dropping_by_much_and_keeps_router_alive():
    layer, x, calib = moe_setup()
    _, alive = moe_twin.prune_experts(layer, calib, keep_fraction=0.5)
    merged, alive2 = moe_twin.prune_experts(layer, calib, keep_fraction=0.5, merge=True)
    assert alive.sum() == alive2.sum() == 4
    assert np.isfinite(moe_twin.moe_forward(merged, x, alive=alive2)).all()


def test_qmoe_is_ternary_per_output_channel_and_gptq_beats_round_to_nearest():
    layer, x, calib = moe_setup()
    t, stats = moe_twin.qmoe_ternary(layer, calib)
    for w in (t.gate, t.up, t.down):  # (E, in, out): every output channel holds {its min, 0, its max}
        for e in range(w.shape[0]):
            col = w[e][:, 0]
            assert set(np.unique(col)) <= {0.0, col.min(), col.max()} and col.min() <= 0 <= col.max()
    assert 0 < stats["zero_fraction"] < 1 and stats["experts_without_calibration"] == 0
    rtn, rtn_stats = moe_twin.qmoe_ternary(layer, None)  # no calibration: identity Hessian = round to nearest
    assert rtn_stats["experts_without_calibration"] == layer.num_experts
    assert np.isfinite(moe_twin.moe_forward(t, x)).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gptq_has_less_output_error_than_round_to_nearest_on_its_calibration(seed):
    """What GPTQ minimises: ||X·Wᵀ - X·Qᵀ|| on the calibration inputs (ample data, so H is
    well conditioned); ternary rounding alone ignores the inputs."""
    from cosim.functional.compression.gptq import gptq
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((512, 32)) * np.exp(rng.normal(0, 0.7, 32))
    w = rng.standard_normal((16, 32))
    err = lambda q: np.linalg.norm(x @ w.T - x @ q.T)  # noqa: E731
    assert err(gptq(w, x, damp=0.01)) < err(gptq(w, None))


def test_gptq_by_hand():
    """One output row, two inputs: column 0 rounds to the grid and its error moves onto
    column 1 through H^-1 (the textbook OBS update)."""
    from cosim.functional.compression.gptq import gptq, ternary
    w = np.array([[0.3, 1.0]])
    x = np.array([[1.0, 1.0], [1.0, -1.0], [2.0, 0.0]])
    q = gptq(w, x, damp=0.0)
    h = x.T @ x * (2 / 3)
    hinv = np.linalg.inv(h)
    # lo = 0, hi = 1: 0.3 < 0.5 -> 0; error 0.3 is compensated on w1 by -e * Hinv01 / Hinv00
    w1 = 1.0 - 0.3 * hinv[0, 1] / hinv[0, 0]
    assert q[0, 0] == 0.0 and q[0, 1] == ternary(np.array([w1]), np.array([0.0]), np.array([1.0]))[0]
    assert np.array_equal(gptq(w, None), ternary(w[0], np.array([0.0]), np.array([1.0]))[None])


# ---- safetensors ------------------------------------------------------------------------
@pytest.fixture
def tiny_checkpoint(tmp_path):
    """A two-layer Llama-shaped checkpoint in HF layout ((out, in) weights), written
    with numpy in the safetensors format; one tensor in bf16."""
    rng = np.random.default_rng(7)
    D, F, kv = 128, 256, 64
    t = {}
    for layer in range(2):
        p = f"model.layers.{layer}."
        t[p + "self_attn.q_proj.weight"] = heavy_tailed_weights(D, D, rng).T.copy()
        t[p + "self_attn.k_proj.weight"] = heavy_tailed_weights(D, kv, rng).T.copy()
        t[p + "mlp.down_proj.weight"] = heavy_tailed_weights(F, D, rng).T.astype(np.float16).copy()
        t[p + "input_layernorm.weight"] = np.ones(D, np.float32)
    t["model.embed_tokens.weight"] = rng.standard_normal((100, D)).astype(np.float32)
    bf = "model.layers.1.self_attn.q_proj.weight"
    path = write_safetensors(tmp_path / "model.safetensors", {k: (v.astype(ml_dtypes.bfloat16) if k == bf else v)
                                                              for k, v in t.items()}, metadata={"format": "pt"})
    return path, t


def test_safetensors_lazy_load_f32_f16_bf16(tiny_checkpoint):
    path, t = tiny_checkpoint
    ck = LazySafetensors(path)
    assert ck.metadata == {"format": "pt"} and len(ck.names()) == len(t)
    assert ck.loaded == []  # header only
    q = ck.tensor("model.layers.0.self_attn.q_proj.weight")
    assert q.dtype == np.float32 and np.array_equal(q, t["model.layers.0.self_attn.q_proj.weight"])
    assert ck.loaded == ["model.layers.0.self_attn.q_proj.weight"]
    down = ck.tensor("model.layers.0.mlp.down_proj.weight")  # stored F16: widened exactly
    assert down.dtype == np.float32 and np.array_equal(down, t["model.layers.0.mlp.down_proj.weight"])
    bf = ck.tensor("model.layers.1.self_attn.q_proj.weight")
    ref = t["model.layers.1.self_attn.q_proj.weight"]
    assert np.allclose(bf, ref, rtol=2 ** -8, atol=0) and not np.array_equal(bf, ref)
    assert hf_linear(ck, "model.layers.0.self_attn.k_proj.weight").shape == (128, 64)  # (in, out) = (k, n)
    rows = ck.rows("model.layers.0.self_attn.q_proj.weight", [5, 2])
    assert np.array_equal(rows, t["model.layers.0.self_attn.q_proj.weight"][[2, 5]])
    assert ck.shape("model.layers.0.mlp.down_proj.weight") == (128, 256)


def test_run_twin_on_checkpoint_reads_only_one_layers_projections(tiny_checkpoint, monkeypatch):
    from cosim.functional.compression.twin import run_twin
    path, t = tiny_checkpoint
    opened = []
    real = lazy_reader.LazySafetensors

    class Spy(real):
        def __init__(self, p):
            super().__init__(p)
            opened.append(self)
    monkeypatch.setattr(lazy_reader, "LazySafetensors", Spy)
    r = run_twin("int4_g128_weights", checkpoint=path)["int4_g128_weights"]
    assert r["source"] == str(path)
    assert sorted(opened[0].loaded) == ["model.layers.0.mlp.down_proj.weight",
                                         "model.layers.0.self_attn.k_proj.weight",
                                         "model.layers.0.self_attn.q_proj.weight"]
    assert 10 < r["weight_gemm_sqnr_db"] < 40
    r3 = run_twin("spqr3", checkpoint=path)["spqr3"]
    assert set(r3["per_tensor_sqnr_db"]) == set(r["per_tensor_sqnr_db"])


def test_bad_checkpoints(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        LazySafetensors(tmp_path / "nope.safetensors")
    p = tmp_path / "bad.safetensors"
    for raw in ((10 ** 12).to_bytes(8, "little") + b"{}", (4).to_bytes(8, "little") + b"{not", b"\xff" * 3):
        p.write_bytes(raw)
        with pytest.raises(CheckpointError, match="bad.safetensors: not a readable safetensors file"):
            LazySafetensors(p)
    good = write_safetensors(tmp_path / "g.safetensors", {"a": np.zeros(3, np.float32), "i": np.zeros(2, np.int64)})
    with pytest.raises(CheckpointError, match="no tensor 'b'"):
        LazySafetensors(good).tensor("b")
    with pytest.raises(CheckpointError, match="tensor 'i' has dtype int64; expected a floating-point"):
        LazySafetensors(good).tensor("i")
    with pytest.raises(CheckpointError, match="has 3 rows; rows 1..7"):
        LazySafetensors(good).rows("a", [1, 7])
    assert issubclass(CheckpointError, InputError)  # the CLI's one-line error path


def test_moe_twin_from_a_mixtral_style_checkpoint_reads_one_layer(tmp_path, monkeypatch):
    from cosim.functional.compression.twin import run_twin
    rng = np.random.default_rng(3)
    D, F, E = 64, 128, 4
    t = {}
    for layer in range(2):
        p = f"model.layers.{layer}.block_sparse_moe."
        t[p + "gate.weight"] = rng.standard_normal((E, D)).astype(np.float32) / 8
        for e in range(E):
            t[p + f"experts.{e}.w1.weight"] = heavy_tailed_weights(D, F, rng).T.copy()
            t[p + f"experts.{e}.w3.weight"] = heavy_tailed_weights(D, F, rng).T.copy()
            t[p + f"experts.{e}.w2.weight"] = heavy_tailed_weights(F, D, rng).T.copy()
    path = write_safetensors(tmp_path / "moe.safetensors", t)
    opened = []
    real = lazy_reader.LazySafetensors

    class Spy(real):
        def __init__(self, p):
            super().__init__(p)
            opened.append(self)
    monkeypatch.setattr(lazy_reader, "LazySafetensors", Spy)
    r = run_twin("resmoe", checkpoint=path, layer=1)["resmoe"]
    assert r["source"] == str(path) and 0 < r["moe_rel_error"] < 1
    assert all(n.startswith("model.layers.1.") for n in opened[0].loaded) and len(opened[0].loaded) == 1 + 3 * E
    exact = run_twin("resmoe", checkpoint=path, layer=1)["resmoe"]["moe_rel_error"]
    assert exact == r["moe_rel_error"]  # deterministic
    with pytest.raises(InputError, match="layer 5 has no routed experts"):
        run_twin("qmoe", checkpoint=path, layer=5)


def test_float_casts_by_hand():
    x = np.array([1.0 + 2 ** -9, 1.0 + 3 * 2 ** -9, 65520.0], np.float32)
    bf = register_format_quant(x, "bf16")
    assert bf[0] == 1.0 and bf[1] == 1.0 + 2 ** -7  # 1/4 LSB rounds down, 3/4 LSB up
    assert register_format_quant(x, "fp16")[2] == np.inf  # beyond fp16's max


def test_palu_on_checkpoint_projections(tiny_checkpoint):
    from cosim.functional.compression.lowrank import grouped_low_rank
    from cosim.functional.compression.twin import run_twin
    path, t = tiny_checkpoint
    w = hf_linear(LazySafetensors(path), "model.layers.0.self_attn.k_proj.weight")  # 128 x 64: 2 heads of 32
    assert np.allclose(grouped_low_rank(w, 32, 2, 1.0), w, atol=1e-5)  # full rank: exact
    lo, hi = (gemm_sqnr(activations(16, 128, np.random.default_rng(0)), w, grouped_low_rank(w, 32, 2, q))
              for q in (0.25, 0.75))
    assert hi > lo
    r = run_twin("palu", checkpoint=path, prompt=256, steps=2)["palu"]
    assert r["source"] == str(path) and "k_proj_sqnr_db" in r and "attn_rel_error" in r


@pytest.mark.parametrize("lo,hi", [("mxint4", "mxint8"), ("mxfp4", "mxfp6_e2m3"), ("mxfp6_e2m3", "mxfp8_e4m3"),
                                   ("nvfp4", "mx6"), ("mx6", "mx9")])
def test_registered_format_sqnr_increases_with_bits(lo, hi):
    pytest.importorskip("cosim.functional.quantize", reason="needs the functional core")
    w, x = wx()
    assert gemm_sqnr(x, w, register_format_quant(w, hi, axis=0)) > gemm_sqnr(x, w, register_format_quant(w, lo, axis=0))


def test_bare_fp8_is_cast_with_a_tensor_scale():
    pytest.importorskip("cosim.functional.quantize", reason="needs the functional core")
    x = np.array([[1000.0, -3.0, 0.5, 2.0]], np.float32)  # 1000 is beyond E4M3's 448
    y = register_format_quant(x, "fp8_e4m3")
    assert np.isfinite(y).all() and abs(y[0, 0] - 1000.0) < 1e-6 * 1000 + 32


def test_fp8_kv_twin_is_finite_and_close():
    pytest.importorskip("cosim.functional.quantize", reason="needs the functional core")
    from cosim.functional.compression.twin import run_twin
    r = run_twin("fp8_kv", prompt=512, steps=2)["fp8_kv"]
    assert 0 < r["attn_rel_error"] < 0.1
    s4 = run_twin("mxfp4_kv", prompt=512, steps=2)["mxfp4_kv"]["attn_rel_error"]
    assert s4 > r["attn_rel_error"]
