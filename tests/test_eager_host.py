"""Eager host launches (cosim.eager_host): the pipeline's step time by hand, and a pass priced without CUDA graphs
says that its total is GPU time and what the host makes of it (report note + totals.eager_host; sweep rows' note)."""

from types import SimpleNamespace

import pytest

import cosim
from cosim.dse import sweep
from cosim.eager_host import GPU_TIME_NOTE, eager_host_step, eager_pipeline, launch_order


def _op(repeat):
    return SimpleNamespace(repeat=repeat, kind="gemm")


def _cost(latency_s, kernels):
    return SimpleNamespace(latency_s=latency_s, details={"kernels": kernels})


def test_pipeline_step_by_hand():
    # A: once, one 10 us kernel; B: twice (a two-layer body), two kernels of 2 us each; the host issues one every 5 us.
    # Issue at 5, 10, 15, 20, 25 us; the GPU runs A 5-15, B 15-17 and 17-19, then waits: 20-22, 25-27 -> 27 us.
    ops, costs = [_op(1), _op(2)], [_cost(10e-6, 1), _cost(4e-6, 2)]
    assert eager_pipeline(ops, costs, 5e-6) == pytest.approx(27e-6)
    step = eager_host_step(ops, costs, 5e-6)
    assert (step.kernels, step.host_issue_s, step.gpu_s) == (5, pytest.approx(25e-6), pytest.approx(18e-6))
    assert step.host_bound
    # a fast host: the GPU's 18 us plus the first kernel's issue
    assert eager_pipeline(ops, costs, 0.1e-6) == pytest.approx(18.1e-6)


def test_launch_order_plays_the_layer_body_layer_by_layer():
    # embed, a 4-layer body whose middle op runs in 2 of the 4 layers (Gemma-2's global attention), head
    ops = [_op(1), _op(4), _op(2), _op(4), _op(1)]
    assert launch_order(ops) == [0, 1, 3, 1, 2, 3, 1, 3, 1, 2, 3, 4]  # op 2 in layers 1 and 3, not all at once
    costs = [_cost(1e-6, 1)] * 5
    assert eager_host_step(ops, costs, 10e-6).kernels == 1 + 4 + 2 + 4 + 1
    assert eager_pipeline(ops, costs, 10e-6) == pytest.approx(121e-6)  # host-bound: 12 x 10 us issued, 1 us after


def test_kernel_count_caveats_are_said():
    ops = [_op(1), SimpleNamespace(repeat=2, kind="moe_router")]
    step = eager_host_step(ops, [_cost(1e-6, 1), SimpleNamespace(latency_s=1e-6, details={})], 10e-6)
    assert step.ops_counted_as_one_kernel == 1 and step.moe
    assert "a lower bound: 1 op(s) priced without a kernel count" in step.describe()
    assert "MoE experts as the trace's ops" in step.describe()


def test_eager_pass_reports_the_host_launch_step():
    rep = cosim.simulate(cosim.build_trace("llama3_8b", "decode", 1, 2048), "h100_sxm", level="analytical")
    e = rep.meta["eager_host"]
    assert e["gpu_s"] == pytest.approx(rep.total_latency_s)
    assert e["step_s"] >= max(e["gpu_s"], e["host_issue_s"])
    assert e["kernels"] * e["cpu_per_kernel_s"] == pytest.approx(e["host_issue_s"])
    assert GPU_TIME_NOTE in rep.notes and rep.totals()["eager_host"] == e
    from cosim.cli.roofline import format_report
    assert f"eager launch: {e['kernels']} kernels at the calibration host's" in format_report(rep)
    # batch-1 decode of an 8B model: hundreds of kernels of a few us each, so the host is the bound
    assert e["host_issue_s"] > e["gpu_s"]


@pytest.mark.parametrize("profile, level", [("engine", "analytical"), (None, "roofline")])
def test_no_host_step_with_cuda_graphs_or_at_the_roofline(profile, level):
    rep = cosim.simulate(cosim.build_trace("llama3_8b", "decode", 1, 2048, profile=profile), "h100_sxm", level=level)
    assert "eager_host" not in rep.meta and not any("CUDA graphs off" in n for n in rep.notes)


def test_no_host_step_without_a_calibration():
    # a100 has no analytical section: the analytical level falls back to the roofline, which has no launches
    rep = cosim.simulate(cosim.build_trace("llama3_8b", "decode", 1, 2048), "a100_sxm_80gb", level="analytical")
    assert "eager_host" not in rep.meta and GPU_TIME_NOTE not in rep.notes


def test_sweep_rows_say_their_latency_is_gpu_time(tmp_path):
    base = {"model": "llama3_8b", "hw": "h100_sxm", "seq": 1024, "phase": "decode", "batch": 1,
            "level": "analytical"}
    spec = {"name": "t", "base": base, "axes": [{"grid": {"profile": ["eager", "engine"]}}],
            "output": str(tmp_path / "out")}
    df = sweep(spec, quiet=True, write=False)
    notes = dict(zip(df["profile"], df["notes"].fillna("")))
    assert GPU_TIME_NOTE in notes["eager"] and GPU_TIME_NOTE not in notes["engine"]
    rep = cosim.simulate(cosim.build_trace("llama3_8b", "decode", 1, 1024, profile="eager"), "h100_sxm", "analytical")
    assert notes["eager"] == " | ".join(rep.notes)  # the row's notes are simulate's


def test_generation_says_its_times_are_gpu_time():
    from cosim.eager_host import GENERATION_GPU_TIME_NOTE
    from cosim.serving.generate import generate

    res = generate("llama3_8b", "h100_sxm", level="analytical", prompt_len=128, output_len=4)
    assert GENERATION_GPU_TIME_NOTE in res.notes
    assert GPU_TIME_NOTE not in res.notes  # the prefill pass's note, said of the whole generation instead


def test_html_summary_names_the_implementation_and_the_eager_step():
    from cosim.html_report import _summary

    rep = cosim.simulate(cosim.build_trace("llama3_8b", "decode", 1, 1024), "h100_sxm", "analytical")
    rows = {label: value for label, value, _ in _summary(rep)}
    assert rows["implementation"].startswith("none given: a plain Hugging Face model's kernels")
    assert rows["latency launched eagerly (CUDA graphs off)"].startswith(f"{rep.meta['eager_host']['kernels']} kernels")
    eng = cosim.simulate(cosim.build_trace("llama3_8b", "decode", 1, 1024, profile="engine"), "h100_sxm", "analytical")
    rows = {label: value for label, value, _ in _summary(eng)}
    assert rows["implementation"].startswith("engine:") and "latency launched eagerly (CUDA graphs off)" not in rows


def test_fused_work_launches_no_kernel():
    # A (one 10 us kernel) then a dequantize fused into it (3 us): the host issues one kernel at 5 us; the GPU runs
    # A 5-15 and the fused work inside it, 15-18 -> 18 us; one kernel, 13 us of GPU time
    ops = [_op(1), _op(1)]
    costs = [_cost(10e-6, 1), SimpleNamespace(latency_s=3e-6, details={"fused": True, "kernels": 0})]
    assert eager_pipeline(ops, costs, 5e-6) == pytest.approx(18e-6)
    step = eager_host_step(ops, costs, 5e-6)
    assert (step.kernels, step.gpu_s, step.ops_counted_as_one_kernel) == (1, pytest.approx(13e-6), 0)
    # placed before its host kernel (Palu's key reconstruction before the attention): the same 18 us; added to the
    # stream before the first issue it vanished into the GPU's wait for the host (15 us)
    assert eager_pipeline(ops[::-1], costs[::-1], 5e-6) == pytest.approx(18e-6)


def test_a_recipes_fused_dequantize_adds_no_launch():
    # fp8_kv's dequantize runs inside the attention kernel and its quantize inside the KV write: the eager pass
    # launches the kernels of the same model with a plain fp8 cache (it counted 64 more on Llama-3-8B's 32 layers)
    plain = cosim.simulate(cosim.build_trace("llama3_8b", "decode", 4, 1024, kv="fp8_e4m3"), "h100_sxm", "analytical")
    recipe = cosim.simulate(cosim.build_trace("llama3_8b", "decode", 4, 1024, recipe="fp8_kv"), "h100_sxm",
                            "analytical")
    assert recipe.meta["eager_host"]["kernels"] == plain.meta["eager_host"]["kernels"]
