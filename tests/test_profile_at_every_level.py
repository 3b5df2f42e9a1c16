"""A profile's attention backend at levels without a kernel-library model of attention (roofline, cycle, an
uncalibrated GPU): eager attention is priced as the kernels it launches, a flash backend as the level's one fused
kernel, and a note says which; contradictory options are refused."""

import math
from pathlib import Path

import pytest

import cosim
from hwmodels.estimate import estimate_ops, ops_as_priced, prices_attention_backends
from workloads.io import InputError
from workloads.profiles import expand_unfused, unfused_attention_ops

GEMMA2 = str(Path(__file__).parent / "data" / "hf_configs" / "gemma2_9b.json")


def _total(rep):
    return sum(r["latency_s"] for r in rep.rows)


@pytest.mark.parametrize("model,phase,batch,seq,kv", [
    ("llama3_8b", "prefill", 2, 1000, "bf16"),
    ("llama3_8b", "decode", 3, 5000, "fp8_e4m3"),  # a narrow cache carries scale tensors
    (GEMMA2, "prefill", 1, 6000, "bf16"),  # alternating windowed layers, soft-capped scores
    ("deepseek_v2_lite", "decode", 2, 3000, "bf16"),  # MLA: the latent read again as V
], ids=["llama-prefill", "llama-decode-fp8kv", "gemma2-windowed", "mla-decode"])
def test_the_decomposition_is_the_trace_builders_unfused_form(model, phase, batch, seq, kv):
    fused = cosim.build_trace(model, phase, batch, seq, kv=kv)
    unfused = cosim.build_trace(model, phase, batch, seq, kv=kv, attention="unfused")
    expanded, spans = expand_unfused([op.with_(dims={**op.dims, "backend": "unfused"})
                                      if op.kind == "attention" else op for op in fused.ops])
    assert len(spans) == len(fused.ops)
    assert [(o.name, o.kind, o.dims, o.inputs, o.outputs, o.compute_fmt, o.repeat) for o in expanded] == \
        [(o.name, o.kind, o.dims, o.inputs, o.outputs, o.compute_fmt, o.repeat) for o in unfused.ops]


def test_score_gemm_of_a_known_layer():
    # llama3_8b prefill, batch 1, 4096 tokens: 32 heads x 4096 x 4096 scores, head dim 128
    att = next(op for op in cosim.build_trace("llama3_8b", "prefill", 1, 4096).ops if op.kind == "attention")
    scores, softmax, pv = unfused_attention_ops(att)
    assert scores.flops == 2 * 32 * 4096 * 4096 * 128  # 137.4 GFLOP: the whole matrix, the causal half too
    assert softmax.dims == {"rows": 32 * 4096, "cols": 4096}
    assert softmax.outputs[0].nbytes == 32 * 4096 * 4096 * 2  # 1.07 GB of bf16 probabilities
    assert pv.outputs == att.outputs


@pytest.mark.parametrize("level,hw", [("roofline", "h100_sxm"), ("cycle", "mx_systolic_128"),
                                      ("analytical", "a100_sxm_80gb")])  # a100: no calibration (roofline)
def test_hf_eager_prices_the_unfused_kernels_where_no_level_models_backends(level, hw):
    prof = cosim.simulate(cosim.build_trace("llama3_8b", "prefill", 1, 4096, profile="hf_eager"), hw, level=level)
    ops = cosim.simulate(cosim.build_trace("llama3_8b", "prefill", 1, 4096, attention="unfused"), hw, level=level)
    assert _total(prof) == pytest.approx(_total(ops), rel=1e-12)
    assert sum(r["bytes"] for r in prof.rows) == pytest.approx(sum(r["bytes"] for r in ops.rows), rel=1e-12)
    att = next(r for r in prof.rows if r["kind"] == "attention")
    parts = [r for r in ops.rows if r["op"] in ("attn_scores", "attn_softmax", "attn_pv")]
    assert att["latency_s"] == pytest.approx(sum(r["latency_s"] for r in parts), rel=1e-12)
    assert att["attention_backend"] == "unfused"
    assert any("attention backend unfused (Hugging Face eager)" in n for n in prof.notes)
    # the score matrix counts in the live activations, as attention="unfused" counts it
    assert prof.footprint == ops.footprint
    assert prof.meta["inputs"]["attention_backend"] == "unfused"


def test_a_flash_backend_without_a_backend_model_is_noted_not_priced_differently():
    plain = cosim.simulate(cosim.build_trace("llama3_8b", "prefill", 1, 2048, profile="eager"), "h100_sxm")
    fa2 = cosim.simulate(cosim.build_trace("llama3_8b", "prefill", 1, 2048, profile="eager+fa2"), "h100_sxm")
    assert _total(fa2) == _total(plain)
    assert any("attention backend fa2: level roofline on h100_sxm" in n for n in fa2.notes)
    assert not any("attention backend" in n for n in plain.notes)


def test_the_calibrated_analytical_level_keeps_its_own_eager_attention_model():
    hw = cosim.load_hw("h100_sxm")
    assert prices_attention_backends(hw, "analytical") and not prices_attention_backends(hw, "roofline")
    trace = cosim.build_trace("llama3_8b", "prefill", 1, 4096, profile="hf_eager")
    att = [op for op in trace.ops if op.kind == "attention"]
    costs, notes = estimate_ops(att, hw, "analytical")
    assert costs[0].details["attention_backend"] == "unfused" and "kernel_bytes" not in costs[0].details
    assert not any("kernel-library" in n for n in notes)
    assert ops_as_priced(att, hw, "analytical") == (att, ())
    assert len(ops_as_priced(att, hw, "roofline")[0]) == 3


@pytest.mark.parametrize("hw,level,bandwidths", [
    ("h100_sxm", "roofline", ["2 TB/s", "3.35 TB/s"]),
    # session 33's review: the cycle level's vectorised sweep path took the fused op (0.90 x simulate's time)
    ("mx_systolic_128", "cycle", ["1638.4 GB/s", "3 TB/s"]),
])
def test_a_sweep_prices_eager_attention_as_simulate_does(tmp_path, hw, level, bandwidths):
    from cosim.dse import sweep

    base = {"model": "llama3_8b", "hw": hw, "phase": "prefill", "batch": 1, "seq": 2048, "level": level,
            "profile": "hf_eager", "accuracy": False}
    spec = {"name": "t", "base": base, "output": str(tmp_path / "o"),
            "axes": [{"grid": {"hw.memory.hbm.bandwidth": bandwidths}}]}
    df = sweep(spec, quiet=True, write=False)
    trace = cosim.build_trace("llama3_8b", "prefill", 1, 2048, profile="hf_eager")
    for _, r in df.iterrows():
        variant = cosim.load_hw(hw, overrides={"memory.hbm.bandwidth": r["hw.memory.hbm.bandwidth"]})
        assert r["latency_s"] == pytest.approx(cosim.simulate(trace, variant, level=level).total_latency_s, rel=1e-9)
        assert "attention backend unfused" in str(r["notes"])


def test_generate_prices_eager_attention_in_its_vectorised_decode_path():
    from cosim.serving.generate import generate

    prof = generate("llama3_8b", "h100_sxm", 512, 16, profile="hf_eager")
    ops = generate("llama3_8b", "h100_sxm", 512, 16, attention="unfused")
    assert prof.total_s == pytest.approx(ops.total_s, rel=1e-9)
    assert math.isfinite(prof.tpot_s)


def test_unfused_attention_with_a_flash_profile_is_refused():
    with pytest.raises(InputError, match=r"attention 'unfused' .* profile 'engine\+fa2' .* contradict"):
        cosim.build_trace("llama3_8b", "prefill", 1, 2048, attention="unfused", profile="engine+fa2")
    t = cosim.build_trace("llama3_8b", "prefill", 1, 2048, attention="unfused", profile="engine")
    assert t.meta["implementation"].startswith("engine+unfused: attention unfused")


def test_the_cli_refuses_the_contradiction_in_one_line(capsys):
    from cosim.cli import main

    rc = main(["simulate", "--model", "llama3_8b", "--hw", "h100_sxm", "--phase", "prefill", "--seq", "2048",
               "--attention", "unfused", "--profile", "engine+fa2"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "contradict" in err


def test_a_profile_off_a_gpu_says_cuda_graphs_do_not_apply():
    rep = cosim.simulate(cosim.build_trace("llama3_8b", "decode", 1, 1024, profile="engine"), "mx_systolic_128",
                         level="cycle")
    assert any("CUDA graphs setting does not apply" in n for n in rep.notes)


def test_the_header_names_the_backend_a_default_profile_priced():
    from cosim.cli.roofline import format_report

    rep = cosim.simulate(cosim.build_trace("llama3_8b", "prefill", 1, 2048, profile="engine"), "h100_sxm",
                         level="analytical")
    line = next(x for x in format_report(rep).splitlines() if x.startswith("implementation:"))
    assert line.endswith("(attention priced as cudnn, the calibration's default)")


@pytest.mark.parametrize("bad", ["engine+", "+fa2"])
def test_a_profile_with_an_empty_part_is_refused_not_read_as_another(bad):
    with pytest.raises(InputError, match=r"profile: got '\+?\w*\+?'; expected one of eager"):
        cosim.build_trace("llama3_8b", "decode", 1, 1024, profile=bad)
