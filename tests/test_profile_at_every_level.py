"""A profile's attention backend at levels without a kernel-library model of attention (roofline, cycle, an
uncalibrated GPU): eager attention is priced as the kernels it launches, a flash backend as the level's one fused
kernel, and a note says which; contradictory options are refused."""

from pathlib import Path

import pytest

import cosim
from hwmodels.estimate import estimate_ops, ops_as_priced, prices_attention_backends
from workloads.io import InputError
from workloads.ops import Op, TensorSpec
from workloads.profiles import (eager_attention_kernels, eager_attention_peak_bytes, expand_unfused,
                                unfused_attention_ops)

GEMMA2 = str(Path(__file__).parent / "data" / "hf_configs" / "gemma2_9b.json")


def _total(rep):
    return sum(r["latency_s"] for r in rep.rows)


@pytest.mark.parametrize("model,phase,batch,seq,kv", [
    ("llama3_8b", "prefill", 2, 1000, "bf16"),
    ("llama3_8b", "decode", 3, 5000, "fp8_e4m3"),  # a narrow cache carries scale tensors
    (GEMMA2, "prefill", 1, 6000, "bf16"),  # alternating windowed layers, soft-capped scores
    ("deepseek_v2_lite", "decode", 2, 3000, "bf16"),  # MLA: the latent read again as V
], ids=["llama-prefill", "llama-decode-fp8kv", "gemma2-windowed", "mla-decode"])
def test_eager_kernels_are_the_unfused_algorithm_plus_its_passes(model, phase, batch, seq, kv):
    """The score and PV GEMMs the trace builder's unfused form emits (same shapes, same outputs; GQA's GEMMs read
    repeat_kv's copies), with Hugging Face eager's passes over the score matrix between them."""
    fused = cosim.build_trace(model, phase, batch, seq, kv=kv)
    unfused = cosim.build_trace(model, phase, batch, seq, kv=kv, attention="unfused")
    expanded, spans = expand_unfused([op.with_(dims={**op.dims, "backend": "unfused"})
                                      if op.kind == "attention" else op for op in fused.ops])
    assert len(spans) == len(fused.ops)
    gemms = lambda ops: [(o.name, o.dims, o.outputs, o.compute_fmt, o.repeat) for o in ops if o.kind == "gemm"]
    assert gemms(expanded) == gemms(unfused.ops)
    for op, span in zip(fused.ops, spans):
        if op.kind != "attention":
            continue
        kinds = [expanded[i].kind for i in span]
        # GQA's repeat_kv copies; one KV head (MLA's latent here) is copied by torch.matmul when batch > 1
        copied = op.dims["heads"] != op.dims["kv_heads"] and (op.dims["kv_heads"] > 1 or batch > 1)
        assert (kinds[:2] == ["copy", "copy"] if copied else kinds[0] == "gemm") and kinds[-2:] == ["copy", "gemm"]
        assert ("softcap" in kinds) == bool(op.dims.get("softcap")) and ("add" in kinds) == (phase == "prefill")


def test_eager_kernels_of_a_small_layer_by_hand():
    """batch 2, 4 heads on 2 KV heads, 8 x 8 causal scores, head dim 16, bf16: E = 2*4*8*8 = 512 scores."""
    att = Op("attention", "attention", {"batch": 2, "heads": 4, "kv_heads": 2, "q_len": 8, "kv_len": 8,
                                         "head_dim": 16, "causal": True},
             (TensorSpec("q", (2, 8, 4, 16), "bf16"), TensorSpec("k_cache", (2, 8, 2, 16), "bf16", "kv"),
              TensorSpec("v_cache", (2, 8, 2, 16), "bf16", "kv")), (TensorSpec("o", (2, 8, 4, 16), "bf16"),), "bf16")
    ks = eager_attention_kernels(att)
    assert [k.name for k in ks] == ["repeat_k", "repeat_v", "attn_scores", "attn_scale", "attn_mask", "attn_softmax",
                                    "attn_cast", "attn_pv"]
    b = {k.name: k.bytes for k in ks}
    E = 512
    assert b["repeat_k"] == b["repeat_v"] == 2 * 8 * 2 * 16 * 2 + 8 * 8 * 16 * 2  # the cache in, 4 heads' copy out
    assert b["attn_scale"] == 2 * E * 2 and b["attn_mask"] == 2 * E * 2 + 8 * 8 * 2
    assert b["attn_softmax"] == E * 2 + E * 4 and b["attn_cast"] == E * 4 + E * 2  # fp32 probabilities
    assert b["attn_scores"] == 2 * 8 * 4 * 16 * 2 + 8 * 8 * 16 * 2 + E * 2  # q, the K copy, the scores
    assert ks[-1].inputs[0].fmt == "bf16" and ks[-1].outputs == att.outputs
    mqa_one = att.with_(dims={**att.dims, "kv_heads": 1, "batch": 1})  # MQA at batch 1: matmul broadcasts, no copy
    assert [k.kind for k in eager_attention_kernels(mqa_one)][:1] == ["gemm"]
    # MQA at batch 2: matmul's copies are temporaries of their GEMMs, never live with the softmax's 8 bytes a score
    mqa = att.with_(dims={**att.dims, "kv_heads": 1})
    assert [k.name for k in eager_attention_kernels(mqa)][:2] == ["repeat_k", "repeat_v"]
    assert eager_attention_peak_bytes(mqa) == 8 * E  # > K's copy (8 x 8 x 16 x 2) + the scores (2 E)
    decode = att.with_(dims={**att.dims, "q_len": 1})
    assert "attn_mask" not in [k.name for k in eager_attention_kernels(decode)]


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
def test_hf_eager_prices_the_eager_kernels_where_no_level_models_backends(level, hw):
    trace = cosim.build_trace("llama3_8b", "prefill", 1, 4096, profile="hf_eager")
    prof = cosim.simulate(trace, hw, level=level)
    ops = cosim.simulate(cosim.build_trace("llama3_8b", "prefill", 1, 4096, attention="unfused"), hw, level=level)
    att_op = next(op for op in trace.ops if op.kind == "attention")
    kernels = eager_attention_kernels(att_op)
    alone = estimate_ops(kernels, cosim.load_hw(hw), level)[0]
    att = next(r for r in prof.rows if r["kind"] == "attention")
    assert att["latency_s"] == pytest.approx(att_op.repeat * sum(c.latency_s for c in alone), rel=1e-12)
    assert att["bytes"] == pytest.approx(att_op.repeat * sum(k.bytes for k in kernels), rel=1e-12)
    # eager's further passes cost more than the unfused algorithm's three kernels, never less
    assert _total(prof) > _total(ops) and att["attention_backend"] == "unfused"
    assert any("attention backend unfused (Hugging Face eager)" in n for n in prof.notes)
    # eager's peak counts in the live activations: bf16 scores, fp32 probabilities and their bf16 cast live at once
    # (32 heads x 4,096 x 4,096 scores), with repeat_kv's bf16 copies of K and V (32 heads x 4,096 x 128 each)
    plain = cosim.build_trace("llama3_8b", "prefill", 1, 4096).meta["footprint"]
    assert prof.footprint["activations"] == plain["activations"] + 8 * 32 * 4096 ** 2 + 2 * 2 * 32 * 4096 * 128
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
    assert costs[0].details["attention_backend"] == "unfused"
    # its own fitted model prices the time; the row shows the FLOPs and bytes of the kernels eager launches (the
    # fused op's 4.4 TFLOP over 2.7 GB read as 1,640 FLOP/B and memory-bound at once: session 34's review)
    kernels = eager_attention_kernels(att[0])
    assert (costs[0].details["kernel_flops"], costs[0].details["kernel_bytes"]) == \
        (sum(k.flops for k in kernels), sum(k.bytes for k in kernels))
    from hwmodels import gpu
    assert costs[0].latency_s == gpu.estimate_trace(att, hw)[0][0].latency_s
    assert not any("kernel-library" in n for n in notes)
    assert ops_as_priced(att, hw, "analytical") == (att, ())
    assert len(ops_as_priced(att, hw, "roofline")[0]) == 8  # GQA prefill: as the calibrated model's eight kernels


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
    step = lambda phase, seq: cosim.simulate(cosim.build_trace("llama3_8b", phase, 1, seq, profile="hf_eager"),
                                             "h100_sxm").total_latency_s
    assert prof.ttft_s == pytest.approx(step("prefill", 512), rel=1e-9)
    # the first and last decode steps hold 513 and 527 tokens of KV
    assert list(prof.decode_times_s[[0, -1]]) == pytest.approx([step("decode", 513), step("decode", 527)], rel=1e-9)


@pytest.mark.parametrize("profile, form", [
    *[(p, {"attention": "unfused"}) for p in ("engine+fa2", "eager+cudnn", "hf_eager", "engine+unfused")],
    # H2O's prefill reads Hugging Face eager's own probabilities under an eager backend (session 35): not refused
    ("engine+fa2", {"recipe": "h2o"}), ("eager+cudnn", {"recipe": "h2o"})])
def test_the_unfused_algorithm_with_a_profile_naming_a_backend_is_refused(profile, form):
    """A trace holding the unfused algorithm's score GEMM, softmax and PV GEMM (attention="unfused", H2O's
    prefill) is not what a flash backend or Hugging Face eager's kernels price (session 34's review: hf_eager with
    attention unfused was labelled hf_eager at 108 ms, hf_eager alone 191 ms; h2o with engine+fa2 said fa2)."""
    with pytest.raises(InputError, match=r"unfused algorithm's score GEMM, softmax and PV GEMM, and profile .* "
                                         r"contradict each other"):
        cosim.build_trace("llama3_8b", "prefill", 1, 2048, profile=profile, **form)


def test_the_unfused_algorithm_with_a_default_backend_profile_names_it_in_the_header():
    t = cosim.build_trace("llama3_8b", "prefill", 1, 2048, attention="unfused", profile="engine")
    assert t.meta["implementation"].startswith("engine: attention unfused algorithm (the trace's score GEMM")
    eager = cosim.build_trace("llama3_8b", "prefill", 1, 2048, profile="eager+unfused")
    assert eager.meta["implementation"].startswith("eager+unfused: attention unfused, ")
    assert cosim.simulate(eager, "h100_sxm").total_latency_s > cosim.simulate(
        cosim.build_trace("llama3_8b", "prefill", 1, 2048, attention="unfused", profile="eager"), "h100_sxm"
    ).total_latency_s  # eager's passes over the score matrix


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
    assert rep.meta["implementation"].endswith("CUDA graphs n/a (accelerator)")  # not "on" beside that note


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


@pytest.mark.parametrize("bad,hint", [("hf-eager", "hf_eager"), ("HF_EAGER", "hf_eager"), ("engin", "engine"),
                                      ("engine+FA2", "fa2")])
def test_a_mistyped_profile_on_the_command_line_gets_a_did_you_mean(capsys, bad, hint):
    from cosim.cli import main
    rc = main(["simulate", "--model", "llama3_8b", "--hw", "h100_sxm", "--phase", "decode", "--seq", "512",
               "--profile", bad])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and f"(did you mean {hint!r}?)" in err


def test_an_empty_profile_is_refused_not_read_as_none():
    with pytest.raises(InputError, match="profile: got ''; expected one of eager, hf_eager"):
        cosim.build_trace("llama3_8b", "decode", 1, 512, profile="")
