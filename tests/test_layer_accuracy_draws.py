"""The synthetic tensors of `cosim.layer_accuracy` are drawn as documented (float32, in the
stated order from the op's seeded stream), keep the fitted distribution, and the float32
products it compares lose nothing a report shows against a float64 reference."""

import math

import numpy as np
import pytest

from cosim.functional.compression.synthetic import fitted_weight_stats
from cosim.functional.metrics import sqnr_db
from cosim.layer_accuracy import synthetic_activations, synthetic_weight


def test_synthetic_weight_is_the_documented_float32_draw():
    g = fitted_weight_stats()["generator"]
    df, n, k = g["t_df"], 8, 64
    w = synthetic_weight(n, k, np.random.default_rng([0, 3, 1]))
    rng = np.random.default_rng([0, 3, 1])  # the same stream, re-derived by hand: N, G, c, r
    z = rng.standard_normal((n, k), dtype=np.float32).astype(np.float64)
    gam = rng.standard_gamma(df / 2, size=(n, k), dtype=np.float32).astype(np.float64)
    c = np.exp(rng.normal(0.0, g["col_log_std"], size=(n, 1)))
    r = np.exp(rng.normal(0.0, g["row_log_std"], size=(1, k)))
    want = z / np.sqrt(gam / (df / 2)) / math.sqrt(df / (df - 2)) * c * r / math.sqrt(k)
    assert w.dtype == np.float32 and w.shape == (n, k) and w.flags.c_contiguous
    np.testing.assert_allclose(w, want, rtol=2e-6)


def test_synthetic_weight_entries_keep_the_fitted_student_t():
    """Unit variance and excess kurtosis 6 / (df - 4) (= the measured 0.29) of the
    scale-normalised entries, as fitted_weights' float64 draw has them."""
    g = fitted_weight_stats()["generator"]
    flat = {**fitted_weight_stats(), "generator": {**g, "row_log_std": 0.0, "col_log_std": 0.0}}
    from cosim.functional.compression.synthetic import fitted_weight_rows
    z = fitted_weight_rows(512, 4096, np.random.default_rng(7), stats=flat).astype(np.float64).ravel() * 64.0
    kurt = float(np.mean(z ** 4) / np.mean(z ** 2) ** 2 - 3.0)
    assert np.var(z) == pytest.approx(1.0, abs=0.005)
    assert kurt == pytest.approx(6.0 / (g["t_df"] - 4.0), abs=0.03)  # 2M samples: s.e. ~0.0035


def test_activation_draw_order_and_outlier_channels():
    x = synthetic_activations(16, 2000, np.random.default_rng(5))
    rng = np.random.default_rng(5)
    want = rng.standard_normal((16, 2000), dtype=np.float32) * \
        np.exp(rng.normal(0.0, 0.5, size=(1, 2000))).astype(np.float32)
    hot = rng.choice(2000, size=2, replace=False)  # 0.1 % of k
    want[:, hot] *= 30.0
    assert x.dtype == np.float32
    np.testing.assert_array_equal(x, want)
    # the attention sample's keys keep the float64 draw of earlier sessions
    rng = np.random.default_rng(5)
    old = rng.normal(0.0, 1.0, size=(16, 64)) * np.exp(rng.normal(0.0, 0.5, size=(1, 64)))
    old[:, rng.choice(64, size=1, replace=False)] *= 30.0
    np.testing.assert_array_equal(synthetic_activations(16, 64, np.random.default_rng(5), dtype=np.float64),
                                  old.astype(np.float32))


@pytest.mark.parametrize("fmt, k", [("mxfp4", 4096), ("bf16", 14336)])
def test_float32_products_agree_with_a_float64_reference(fmt, k):
    """SQNR from float32 GEMMs (what _gemm_accuracy computes) vs float64 GEMMs of the same
    operands: equal to far below the 0.01 dB a report prints (bf16 ~ 50 dB is the closest
    a quantized product gets to the float32 rounding floor of ~120 dB)."""
    pytest.importorskip("numba")
    from cosim.layer_accuracy import _quantize
    rng = np.random.default_rng(11)
    w, x = synthetic_weight(32, k, rng), synthetic_activations(64, k, rng)
    wq, xq = _quantize(w, fmt)[0], _quantize(x, fmt)[0]
    f32 = sqnr_db((x @ w.T).astype(np.float64), (xq @ wq.T).astype(np.float64))
    f64 = sqnr_db(x.astype(np.float64) @ w.astype(np.float64).T, xq.astype(np.float64) @ wq.astype(np.float64).T)
    assert abs(f32 - f64) < 1e-3
    assert sqnr_db((x @ w.T).astype(np.float64), (x.copy() @ w.copy().T).astype(np.float64)) == math.inf


def test_one_sampling_thread_gives_the_same_figures_as_two():
    """cosim run samples on one thread beside its second process: each (op, layer) draws
    from its own seeded stream, so the thread count cannot change a figure."""
    from cosim.layer_accuracy import trace_accuracy
    from workloads.builder import build_trace
    tr = build_trace("llama3_8b", phase="decode", batch=1, seq=64, weights="mxfp4", acts="bf16", kv="bf16")
    one = trace_accuracy(tr, layers=1, rows=8, tokens=4, threads=1)
    two = trace_accuracy(tr, layers=1, rows=8, tokens=4, threads=2)
    assert one.by_op == two.by_op and len(one.by_op) >= 8


def test_sqnr_provenance_names_the_draw_precision(monkeypatch):
    """The SQNR provenance names the precision of the synthetic draws, after the clause
    `cosim run` prints (up to the first ';', unchanged); drawing the GEMM activations in
    float64 instead changes both the figures and what the provenance says."""
    import cosim.layer_accuracy as LA
    from workloads.builder import build_trace
    tr = build_trace("llama3_8b", phase="decode", batch=1, seq=64, weights="mxfp4", acts="mxfp8_e4m3", kv="bf16")
    res = LA.trace_accuracy(tr, layers=1, rows=8, tokens=4, threads=1)
    head, draw = res.provenance.split("; ")[:2]
    assert head == "functional:synthetic (weights fitted to SmolLM2-135M statistics)"
    assert draw == "synthetic draws: GEMM weights in float32, GEMM activations in float32"
    monkeypatch.setattr(LA, "GEMM_ACT_DRAW", np.float64)
    res64 = LA.trace_accuracy(tr, layers=1, rows=8, tokens=4, threads=1)
    assert "GEMM activations in float64" in res64.provenance
    assert res64.by_op["q_proj"] != res.by_op["q_proj"]


def test_the_weight_twin_names_its_float64_draw(monkeypatch):
    """The recipe twin's synthetic weights are a float64 draw rounded to float32
    (cosim.functional.compression.twin._weights_twin says why): the first matrix it uses
    equals the float64 Student-t draw of its seeded stream, re-derived by hand and
    rounded, and its source names those two dtypes."""
    pytest.importorskip("numba")
    import cosim.functional.compression.twin as T
    used = []
    real = T.fitted_weights
    monkeypatch.setattr(T, "fitted_weights", lambda *a, **kw: used.append(real(*a, **kw)) or used[-1])
    src = T.run_twin("int4_g128_weights")["int4_g128_weights"]["source"]
    g = fitted_weight_stats()["generator"]
    df, k, n = g["t_df"], 1024, 256  # no model: k = 1024 inputs, 256 outputs, seed 0, first draws of the stream
    rng = np.random.default_rng(0)
    z = rng.standard_t(df, size=(k, n)) / np.sqrt(df / (df - 2.0))
    r = np.exp(rng.normal(0.0, g["row_log_std"], size=(k, 1)))
    c = np.exp(rng.normal(0.0, g["col_log_std"], size=(1, n)))
    drawn = z * r * c / np.sqrt(k)
    assert drawn.dtype == np.float64 and used[0].dtype == np.float32
    np.testing.assert_array_equal(used[0], drawn.astype(np.float32))
    assert src.endswith(f"drawn in {drawn.dtype.name}, rounded to {used[0].dtype.name})")


def test_synthetic_activations_refuse_other_draw_dtypes():
    from cosim.layer_accuracy import synthetic_activations
    with pytest.raises(ValueError, match="float16: expected float32 or float64"):
        synthetic_activations(4, 8, np.random.default_rng(0), dtype=np.float16)


def _tiny_checkpoint(tmp_path, skip=()):
    """A 2-layer Llama-shaped model and a safetensors file of its weights (less `skip`)."""
    import yaml
    from safetensors.numpy import save_file

    import cosim
    p = tmp_path / "tiny.yaml"
    p.write_text(yaml.safe_dump({"name": "tiny", "hidden": 64, "layers": 2, "heads": 4, "kv_heads": 2,
                                 "intermediate": 128, "vocab": 256}))
    m = cosim.load_model(p)
    rng = np.random.default_rng(1)
    shapes = {"self_attn.q_proj": (m.q_dim, m.hidden), "self_attn.k_proj": (m.kv_dim, m.hidden),
              "self_attn.v_proj": (m.kv_dim, m.hidden), "self_attn.o_proj": (m.hidden, m.q_dim),
              "mlp.gate_proj": (m.intermediate, m.hidden), "mlp.up_proj": (m.intermediate, m.hidden),
              "mlp.down_proj": (m.hidden, m.intermediate)}
    tensors = {f"model.layers.{layer}.{name}.weight": rng.normal(size=shape).astype(np.float32)
               for layer in range(m.layers) for name, shape in shapes.items()}
    tensors["lm_head.weight"] = rng.normal(size=(m.vocab, m.hidden)).astype(np.float32)
    save_file({k: v for k, v in tensors.items() if not any(s in k for s in skip)}, str(tmp_path / "model.safetensors"))
    return m, tmp_path / "model.safetensors"


def test_checkpoint_provenance_names_only_the_draws_made(tmp_path):
    """A checkpoint run draws no GEMM weight: its provenance names the activations only
    (the attention figure is the KV twin's, named in its own clause); a checkpoint without
    lm_head names the one op drawn."""
    pytest.importorskip("numba")
    import cosim
    from cosim.layer_accuracy import trace_accuracy
    m, ck = _tiny_checkpoint(tmp_path)
    tr = cosim.build_trace(m, "decode", 1, 64, weights="mxfp4")
    res = trace_accuracy(tr, layers=2, rows=16, tokens=4, checkpoint=ck, threads=1)
    assert all(r["source"] == "checkpoint" for r in res.by_layer if r["op"] != "attention")
    assert res.provenance.split("; ")[:2] == ["functional:checkpoint model.safetensors",
                                              "synthetic draws: GEMM activations in float32"]
    assert not any(k.startswith("_") for r in res.by_layer for k in r)  # private draw keys never reach the report
    m, ck = _tiny_checkpoint(tmp_path, skip=("lm_head",))
    res = trace_accuracy(tr, layers=2, rows=16, tokens=4, checkpoint=ck, threads=1)
    assert {r["op"] for r in res.by_layer if r["source"] == "synthetic"} == {"lm_head"}
    assert res.provenance.split("; ")[1] == ("synthetic draws: GEMM weights of lm_head in float32 (the rest from the "
                                             "checkpoint), GEMM activations in float32")


def test_kv_twin_provenance_names_its_own_head_not_a_gemm_draw():
    """The attention figure is the KV twin's (its head named in its own clause); the draw
    clause names the GEMM draws only."""
    pytest.importorskip("numba")
    from cosim.layer_accuracy import trace_accuracy
    from workloads.builder import build_trace
    tr = build_trace("llama3_8b", phase="decode", batch=1, seq=256, weights="mxfp4", kv="bf16", recipe="kivi2")
    res = trace_accuracy(tr, layers=1, rows=8, tokens=4, threads=1, model="llama3_8b")
    assert any(r["source"].startswith("KV twin") for r in res.by_layer)
    assert res.provenance.split("; ")[1] == "synthetic draws: GEMM weights in float32, GEMM activations in float32"
    assert "attention: KV-cache twin" in res.provenance and "kivi" in res.provenance
