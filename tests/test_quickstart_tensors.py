"""`--weights mxfp4` stores every weight (embedding table and lm_head included) in MXFP4 and fuses the
dequantize; `--recipe mxfp4_weights` keeps both tables bf16 and adds dequantize ops. The quickstart
(`weights: mxfp4`) priced lm_head in MXFP4 while its real-checkpoint accuracy kept the embeddings and LM
head at baseline: now the checkpoint run quantizes the tensors the trace prices, and the console says which."""
import cosim
from cosim.cli import main
from cosim.experiment import head_follows_weights, load_experiment, weight_tensor_formats


def test_weights_flag_and_recipe_price_different_tensors():
    a = cosim.build_trace("llama3_8b", "decode", 1, 1024, weights="mxfp4")
    r = cosim.build_trace("llama3_8b", "decode", 1, 1024, recipe="mxfp4_weights")
    assert weight_tensor_formats(a) == {"embedding table": "mxfp4", "linear layers": "mxfp4", "lm_head": "mxfp4"}
    assert weight_tensor_formats(r) == {"embedding table": "bf16", "linear layers": "mxfp4", "lm_head": "bf16"}
    ra, rr = cosim.simulate(a, "h100_sxm"), cosim.simulate(r, "h100_sxm")
    # 1.54 GB: embedding table + lm_head (2 x 128,256 x 4,096 weights) and the 65 RMSNorm vectors
    # (2 per layer + the final one, 4,096 each) at 2 B instead of 4.25 / 8 B
    assert rr.footprint["weights"] - ra.footprint["weights"] == (2 * 128256 + 65) * 4096 * (2 - 4.25 / 8)
    dq = [x for x in rr.rows if x["kind"] == "dequantize"]
    assert sum(x["repeat"] for x in dq) == 224 and not any(x["kind"] == "dequantize" for x in ra.rows)
    ha, hr = (next(x["latency_s"] for x in rep.rows if x["op"] == "lm_head") for rep in (ra, rr))
    # 1.673 - 1.234 ms = 224 dequantize ops (0.209 ms) + lm_head in bf16 (313.7 - 83.4 us)
    gap = rr.total_latency_s - ra.total_latency_s
    assert abs(gap - (sum(x["latency_s"] for x in dq) + hr - ha)) < 1e-8  # + the embed row gather, 1.8 ns


def test_quickstart_checkpoint_run_quantizes_what_the_trace_prices(monkeypatch, tmp_path, capsys):
    exp = load_experiment("quickstart")
    assert exp.weights == "mxfp4" and not exp.recipe and head_follows_weights(exp.weights, exp.recipe)
    import dataclasses
    assert not head_follows_weights(exp.weights, "mxfp4_weights")
    seen = {}
    import cosim.accuracy as A
    real = A.evaluate_accuracy

    def spy(*a, **k):
        seen.update(k)
        return real(a[0], a[1], 16, *a[3:], **k)
    monkeypatch.setattr(A, "evaluate_accuracy", spy)
    monkeypatch.setenv("COSIM_ONE_PROCESS", "1")
    assert main(["run", "quickstart", "--out", str(tmp_path / "q")]) == 0
    out = capsys.readouterr().out
    assert seen["quantize_head"] is True
    assert "weights as priced (latency, energy, memory): embedding table mxfp4, linear layers mxfp4, lm_head mxfp4" in out
    assert "  quantized: linear layers, embedding table and LM head (weights mxfp4, acts bf16, kv bf16)" in out
