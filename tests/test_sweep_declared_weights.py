"""A sweep whose base names no `weights` prices each model of a `model` axis in that model's own declared
checkpoint format (config.json quantization_config), not the base model's."""

from pathlib import Path

import pytest

DSV3 = str(Path("tests/data/hf_configs/deepseek_v3.json").resolve())


def _sweep(tmp_path, base_extra=None, axis=None):
    from cosim.dse import sweep
    base = {"model": DSV3, "hw": "h200", "phase": "decode", "batch": 1, "seq": 128, **(base_extra or {})}
    spec = {"name": "s", "base": base, "axes": [{"grid": axis or {"model": [DSV3, "llama3_8b"]}}],
            "require_memory_fit": False, "output": str(tmp_path / "o")}
    return sweep(spec, quiet=True, write=False)


def test_each_model_point_takes_its_own_declared_weights(tmp_path):
    df = _sweep(tmp_path)
    by = {("llama" if "llama" in m else "dsv3"): r for m, r in zip(df["model"], df.to_dict("records"))}
    # Llama-3-8B declares nothing: bf16, 2 bytes a weight (16.1 GB of weights, not 8.0 GB at fp8 blocks)
    assert by["llama"]["weights"] == "bf16"
    assert by["dsv3"]["weights"] == "fp8_e4m3_b128x128"
    assert by["llama"]["memory_bytes"] == pytest.approx(16.08e9, rel=0.01)  # 8.03e9 params x 2 B + KV
    assert by["dsv3"]["memory_bytes"] == pytest.approx(673.05e9, rel=0.001)  # docs/quantized-checkpoints.md
    # reversed base: a Llama base names no weights either, so the DeepSeek-V3 point is still fp8 (673 GB)
    df2 = _sweep(tmp_path, {"model": "llama3_8b"})
    w = dict(zip(["dsv3" if "deepseek" in m else "llama" for m in df2["model"]], df2["weights"]))
    assert w == {"dsv3": "fp8_e4m3_b128x128", "llama": "bf16"}


def test_explicit_base_weights_apply_to_every_model(tmp_path):
    df = _sweep(tmp_path, {"weights": "mxfp4"})
    assert "weights" not in df.columns  # one format for every point: the base's, as written
    llama = df[df["model"] == "llama3_8b"].iloc[0]
    assert llama["memory_bytes"] < 5e9  # 8.03e9 params x 4.25 / 8 B = 4.27 GB (+ KV), not bf16's 16 GB


def test_pipelined_layout_energy_counts_the_idle_stages_static_power():
    """llama3_70b decode, batch 64, seq 8192 on dgx_h100 at tp1-pp8-mb4 (roofline): one micro-batch's trace is
    20.42 J over 54.63 ms; 4 micro-batches walk the 8 stages, so the traces cover 4 x 54.63 ms device-seconds
    of the 8 x 81.12 ms the step powers: the other 430.5 ms draw the H100's 210 W static power (90.4 J).
    Without pipelining (tp 8) every device is busy for the whole step: nothing is added."""
    from cosim.parallel_timing import layout_step
    from cosim.simulate import simulate
    from workloads.builder import build_trace
    r = simulate(build_trace("llama3_70b", "decode", 64, 8192, parallel={"tp": 1, "pp": 8, "microbatches": 4}),
                 "dgx_h100")
    st = layout_step(r)
    assert r.meta["parallel"]["static_power_w"] == 210.0  # energy.static_power of h100_sxm.yaml
    idle = 8 * st["step_latency_s"] - 4 * r.total_latency_s
    assert st["idle_static_energy_j"] == pytest.approx(210.0 * idle) and st["idle_static_energy_j"] == pytest.approx(90.4, abs=0.1)
    assert st["energy_j"] == pytest.approx(4 * r.total_energy_j + 90.4, abs=0.1)  # 81.7 + 90.4 = 172.1 J
    tp8 = layout_step(simulate(build_trace("llama3_70b", "decode", 64, 8192, parallel={"tp": 8}), "dgx_h100"))
    assert tp8["idle_static_energy_j"] == pytest.approx(0.0, abs=1e-9)
