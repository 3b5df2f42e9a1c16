"""Session 14 serving audit fixes: transfer stalls draw static power; the static scheduler's batch;
TPOT of one-token outputs; which memory a fit uses."""

from __future__ import annotations

import pytest

from cosim.serving import serve

MODEL = "llama3_8b"


def _trace(tmp_path, n=8, prompt=496, output=500):
    p = tmp_path / "t.csv"
    p.write_text("arrival_s,prompt_len,output_len\n" + f"0,{prompt},{output}\n" * n)
    return str(p)


def test_offload_stall_draws_static_power(tmp_path):
    """Audit: with 4096 tokens of KV and 1 GiB offload, 8 x (496 + 500) tokens took 4.45 s instead of 2.43 s
    at the same 903.352 J: the offloaded-KV fetches stalled the steps and drew nothing. The steps are the same
    batches either way, so the extra energy is the h100_sxm file's static power (210 W) x the extra time."""
    t = _trace(tmp_path)
    base = serve(MODEL, "h100_sxm", trace=t).summary
    off = serve(MODEL, "h100_sxm", trace=t, kv_capacity_tokens=4096,
                offload={"host_capacity": "1 GiB", "fetch_fraction": 1.0})
    s = off.summary
    assert s["steps"] == base["steps"] and s["preemptions"] == 0
    stall = s["makespan_s"] - base["makespan_s"]
    assert base["makespan_s"] == pytest.approx(2.431, abs=5e-4) and s["makespan_s"] == pytest.approx(4.445, abs=5e-4)
    assert base["energy_j"] == pytest.approx(903.352, abs=1e-3)
    assert s["energy_j"] - base["energy_j"] == pytest.approx(210.0 * stall, rel=1e-9)
    assert s["energy_j"] == pytest.approx(1326.362, abs=1e-3)
    assert any("charged the replica's static power over the stall" in n for n in off.notes)


def test_stall_of_a_tp2_replica_draws_both_devices(tmp_path):
    from cosim.serving.steptime import DeviceStepCost, StepBatch
    from cosim.serving import _device, _workload
    from cosim.serving.config import ServeConfig
    from workloads.models import load_model
    cfg = ServeConfig(model=MODEL, hw="dgx_h100", parallel={"tp": 2}, qps=1.0)
    hw, system = _device(cfg)
    steps = DeviceStepCost(_workload(cfg, load_model(MODEL), (("tp", 2),)), hw, system=system)
    steps.step_cost(StepBatch((), (512,) * 4, 1))
    c = steps.stall_cost(0.5)
    # roofline: the device file's static power (210 W for the H100 SXM) on each of the 2 devices
    assert c.latency_s == 0.5 and c.energy_j == pytest.approx(2 * 210.0 * 0.5, rel=1e-12)
