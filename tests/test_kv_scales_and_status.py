"""Issue 10: scaled FP8 KV caches (per-tensor / per-head fp32 scales, as serving engines
keep them) and NaN results that always show with their reason."""

from __future__ import annotations

import math

import numpy as np
import pytest

import cosim
from cosim.experiment import experiment_from_dict, run_experiment
from cosim.functional.compression import kv
from cosim.functional.compression.attention import evaluate_policy
from cosim.functional.compression.synthetic import kv_sequence
from cosim.functional.compression.twin import run_twin, with_status
from cosim.functional.metrics import sqnr_db
from cosim.functional.scaled import amax_scale, scaled_quantize
from cosim.layer_accuracy import trace_accuracy

F32 = np.float32


def test_amax_scale_per_tensor_and_per_head():
    x = np.zeros((4, 2, 3), F32)
    x[:, 0] = 896.0  # head 0 peaks at 2 x 448
    x[0, 1, 0] = -44.8  # head 1 at 0.1 x 448
    assert amax_scale(x, "fp8_e4m3", "tensor").tolist() == [2.0]
    np.testing.assert_allclose(amax_scale(x, "fp8_e4m3", "head", head_axis=1), [2.0, 0.1], rtol=1e-6)
    assert amax_scale(np.zeros(3, F32), "fp8_e4m3", "tensor").tolist() == [1.0]  # all-zero: scale 1


def test_per_head_scale_beats_per_tensor_when_heads_differ():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 4, 64)).astype(F32) * np.array([1e3, 1.0, 1e-2, 1e-4], F32)[None, :, None]
    yh, ih = scaled_quantize(x, "fp8_e4m3", "head", head_axis=1)
    yt, it = scaled_quantize(x, "fp8_e4m3", "tensor")
    yn, _ = scaled_quantize(x, "fp8_e4m3", "none")
    assert ih.scales.shape == (4,) and it.scales.shape == (1,)
    assert ih.label == "per-head fp32 scale (amax/448)"
    small = (slice(None), 3)  # the quiet head: a per-tensor scale pushes it into E4M3's subnormals
    assert sqnr_db(x[small], yh[small]) > sqnr_db(x[small], yt[small]) + 20
    assert not np.isinf(yn).any()  # unscaled: saturates (OCP), never Inf


def test_fp8_kv_twin_scale_calibrated_on_prompt_and_shown():
    seq = kv_sequence(np.random.default_rng(1), prompt=256, steps=8, head_dim=64, group=2)
    big = seq.__class__(seq.keys * 300, seq.values * 300, seq.prompt_queries / 300, seq.decode_queries / 300,
                        seq.prompt, seq.outlier_channels, seq.heavy_hitters)  # keys far beyond 448
    scaled = evaluate_policy(kv.FormatKVPolicy("fp8_e4m3", scale="head"), big)
    raw = evaluate_policy(kv.FormatKVPolicy("fp8_e4m3", scale="none"), big)
    assert math.isfinite(scaled["attn_rel_error"]) and scaled["attn_rel_error"] < 0.1
    assert math.isfinite(raw["attn_rel_error"]) and raw["attn_rel_error"] > 3 * scaled["attn_rel_error"]
    res = run_twin("fp8_kv", prompt=256, steps=4)["fp8_kv"]
    assert res["kv_scale"].startswith("K: per-head fp32 scale") and res["status"] == "ok"
    with pytest.raises(ValueError, match="kv scale must be one of"):
        kv.FormatKVPolicy("fp8_e4m3", scale="channel")


def test_layer_accuracy_fp8_kv_is_finite_and_labelled():
    # the case: kv=fp8_e4m3 without a scale gave a NaN attention SQNR
    tr = cosim.build_trace("llama3_8b", phase="decode", batch=1, seq=1024, kv="fp8_e4m3")
    res = trace_accuracy(tr, layers=1, rows=16, tokens=4)
    att = [r for r in res.by_layer if r["op"] == "attention"]
    assert att and all(math.isfinite(r["sqnr_db"]) and r["status"] == "ok" for r in att)
    assert att[0]["scale"] == "K: per-head fp32 scale (amax/448); V: per-head fp32 scale (amax/448)"
    # the KV twin's figure (one fitted head, 1024-token prompt): 24.6 dB; real SmolLM2 heads' median
    # is 25.8 dB (attention-output rel. error 0.051, real_kv_stats.json / docs/synthetic-vs-real.md)
    assert res.by_op["attention"] > 20
    gem = next(r for r in res.by_layer if r["op"] == "q_proj")
    assert "W:" in gem["scale"] and gem["status"] == "ok"


def test_nan_rows_are_kept_with_a_reason(monkeypatch, capsys, tmp_path):
    import cosim.layer_accuracy as la
    real = la._quantize

    def poisoned(x, fmt, granularity="tensor", head_axis=None):
        y, lab = real(x, fmt, granularity, head_axis)
        if fmt == "mxfp4":  # stands for any operand that overflowed or held NaN
            y = y.copy()
            y.reshape(-1)[0] = np.nan
        return y, lab

    monkeypatch.setattr(la, "_quantize", poisoned)
    exp = experiment_from_dict({"model": "llama3_8b", "hw": "h100_sxm", "weights": "mxfp4",
                                "accuracy": {"layers": 1, "rows": 16, "tokens": 4, "seed": 0}})
    rep = run_experiment(exp)
    q = next(r for r in rep.rows if r["op"] == "q_proj")
    assert math.isnan(q["sqnr_db"]) and q["accuracy_status"].startswith("nan: 4 of 64")  # 1 NaN weight x 4 tokens of 16 x 4
    norm = next(r for r in rep.rows if r["kind"] == "rmsnorm")
    assert norm["accuracy_status"].startswith("not measured")
    assert math.isnan(rep.meta["accuracy"]["min_sqnr_db"])  # the worst op is the NaN one, not skipped
    # the CLI lists the NaN op with its reason (and names it worst)
    from cosim.cli import main
    y = tmp_path / "exp.yaml"
    y.write_text("model: llama3_8b\nhw: h100_sxm\nweights: mxfp4\n"
                 "accuracy: {layers: 1, rows: 16, tokens: 4, seed: 0}\n")
    assert main(["run", str(y), "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("q_proj") and "dB" in ln)
    assert "nan" in line and "quantized outputs are NaN/Inf" in line
    assert "worst: q_proj NaN" in out or "NaN (" in out
    html = (tmp_path / "r" / "report.html").read_text()
    assert "accuracy status" in html and "ops with NaN accuracy" in html


def test_twin_status_marks_nan_skipped_and_missing():
    assert with_status({"method": "kivi", "attn_rel_error": 0.1})["status"] == "ok"
    assert with_status({"method": "kivi", "attn_rel_error": math.nan})["status"] == "nan: attn_rel_error not finite"
    assert with_status({"method": "x", "skipped": "needs numba"})["status"] == "skipped: needs numba"
    assert with_status({"method": "y", "note": "no functional twin for 'y'"})["status"].startswith("no twin")


def _bert_like(tmp_path):
    import safetensors.numpy
    rng = np.random.default_rng(0)
    path = tmp_path / "bert.safetensors"
    safetensors.numpy.save_file({
        "encoder.layer.0.attention.self.query.weight": rng.standard_normal((64, 64)).astype(F32),
        "encoder.layer.0.output.dense.weight": rng.standard_normal((64, 256)).astype(F32)}, str(path))
    return path


def test_non_llama_checkpoint_is_one_clear_error_not_nan(tmp_path, capsys):
    from workloads.io import InputError
    path = _bert_like(tmp_path)
    with pytest.raises(InputError) as e:
        run_twin("mxfp4_weights", checkpoint=path)
    msg = str(e.value)
    assert str(path) in msg and "model.layers.0.self_attn.q_proj.weight" in msg
    assert "encoder.layer.0.attention.self.query.weight" in msg  # what the file does have
    with pytest.raises(InputError, match="palu|k_proj"):
        run_twin("palu", checkpoint=path, prompt=64, steps=2)
    tr = cosim.build_trace("llama3_8b", phase="decode", batch=1, seq=256, weights="mxfp4")
    with pytest.raises(InputError, match=r"bert\.safetensors: none of the expected tensors "
                                         r"model\.layers\.0\.self_attn\.q_proj\.weight"):
        trace_accuracy(tr, layers=1, rows=8, tokens=2, checkpoint=path)
    from cosim.cli import main
    assert main(["recipe", "mxfp4_weights", "--accuracy", "--checkpoint", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and str(path) in err and len(err.strip().splitlines()) == 1
