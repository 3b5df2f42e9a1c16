"""Session 15 review leftovers: each figure or list has one source of truth. Each test failed (or
could not run) on the code before its fix."""

import pytest

from cosim import parallel_timing
from cosim.serving.steptime import DeviceStepCost, StepBatch, Workload, device_step_cost
from workloads.models import load_model

MODEL, HW = "llama3_8b", "h100_sxm"


# ---- 1. the serving step's static power: one figure per step model, not a running (J, s) sum ----------

def test_stall_draws_the_calibrated_static_power_before_any_step_is_priced():
    """h100_sxm at level analytical: its calibration's measured idle power, 132.64 W
    (calibration/h100_sxm.yaml `energy.static`), whether or not a step was priced before. The running sum
    answered the device file's 210 W until a step had been priced, 132.64 W after."""
    m = device_step_cost(MODEL, HW, level="analytical")
    assert m.stall_cost(1.0).energy_j == pytest.approx(132.64, rel=1e-9)
    m.step_cost(StepBatch(((300, 0, True),), (700, 900)))
    assert m.stall_cost(0.5).energy_j == pytest.approx(0.5 * 132.64, rel=1e-9)
    # the figure of any step's device ops, by simulate's rule (parallel_timing.device_static_power_w)
    ops = m.workload.trace("prefill", 1, 300).ops
    costs, _ = m._estimate(ops)
    assert parallel_timing.device_static_power_w(ops, costs, m.hw) == pytest.approx(m.static_power_w, rel=1e-12)


def test_the_static_power_is_read_once_not_per_priced_component(monkeypatch):
    """A pp2 replica's idle stage draws static_power_w x the step: the figure is read once for the model
    (the old code re-derived it, and added to the running sum, on every priced component)."""
    from hwmodels.system import load_system
    calls = []
    real = parallel_timing.device_static_power_w
    monkeypatch.setattr(parallel_timing, "device_static_power_w", lambda *a: calls.append(1) or real(*a))
    s = load_system("dgx_h100")
    m = DeviceStepCost(Workload(load_model(MODEL), parallel=(("pp", 2),)), s.device, "roofline", 0.0, system=s)
    for kv in (300, 900, 2000):
        m.step_cost(StepBatch(((128, 0, True),), (kv,) * 4))
    assert len(m._cache) >= 6 and len(calls) == 1
    # roofline: no op reports a static term, so the device file's 210 W (h100_sxm.yaml energy.static_power)
    assert m.static_power_w == 210.0
    one = DeviceStepCost(Workload(load_model(MODEL), parallel=(("pp", 2),)), s.device, "roofline", 0.0, system=s,
                         replica_devices=1)  # the same priced trace, no idle stage
    b = StepBatch((), (1000,) * 8)
    c, c1 = m.step_cost(b), one.step_cost(b)
    assert c.latency_s == c1.latency_s and c.energy_j - c1.energy_j == pytest.approx(210.0 * c.latency_s, rel=1e-12)
