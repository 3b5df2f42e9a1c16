"""The static power a priced trace carries is one function (cosim.parallel_timing.device_static_power_w),
used by `simulate` (a parallel report's meta.parallel.static_power_w, charged to idle devices by
layout_step) and by the serving step (the replica's devices beyond the trace's copies)."""
from types import SimpleNamespace

import pytest

from cosim import build_trace, parallel_timing
from cosim.serving.steptime import DeviceStepCost, Workload
from cosim.simulate import simulate
from hwmodels.system import load_system
from workloads.models import load_model


def _op(kind, repeat):
    return SimpleNamespace(kind=kind, repeat=repeat)


def _cost(latency_s, static_j=None):
    return SimpleNamespace(latency_s=latency_s, energy_breakdown={} if static_j is None else {"static": static_j})


def test_the_rule_by_hand():
    # a: 2 x (1 ms, 0.3 J static); b: 1 x (2 ms, 0.1 J); a collective (1 ms, 5 J) and an op without a static
    # term are left out: (2 x 0.3 + 0.1) J / (2 x 1 + 2) ms = 0.7 / 0.004 = 175 W (not 133 W ignoring
    # repeats, nor 1140 W counting the collective)
    ops = [_op("gemm", 2), _op("add", 1), _op("allreduce", 1), _op("rmsnorm", 3)]
    costs = [_cost(1e-3, 0.3), _cost(2e-3, 0.1), _cost(1e-3, 5.0), _cost(1e-3)]
    hw = SimpleNamespace(static_power_w=999.0)
    assert parallel_timing.device_static_power_w(ops, costs, hw) == pytest.approx(175.0, rel=1e-12)
    # no op reports one: the device file's figure; none there: 0 W
    assert parallel_timing.device_static_power_w(ops[3:], costs[3:], hw) == 999.0
    assert parallel_timing.device_static_power_w(ops[3:], costs[3:], SimpleNamespace(static_power_w=None)) == 0.0


def _both(par, level="analytical"):
    s = load_system("dgx_h100")
    tr = build_trace("llama3_8b", "decode", batch=8, seq=1024, parallel=par)
    rep = simulate(tr, s, level=level)
    m = DeviceStepCost(Workload(load_model("llama3_8b"), parallel=tuple(sorted(par.items()))), s.device, level,
                       0.0, system=s)
    return rep, m._price(tr.ops)


@pytest.mark.parametrize("level", ["analytical", "roofline"])
def test_a_serve_step_and_simulate_of_the_same_trace_give_the_same_energy(level):
    # tp2 x pp2: the serving step = 2 trace copies + the static power of the 2 devices of the other stage over
    # the step; simulate's report of the same trace carries the same trace energy, latency and static power
    rep, step = _both({"tp": 2, "pp": 2}, level)
    P = rep.meta["parallel"]["static_power_w"]
    if level == "analytical":  # the calibrated energy.static of the H100 (hwmodels.gpu.calibrated_params)
        from hwmodels.gpu import params_for
        assert P == pytest.approx(params_for(load_system("dgx_h100").device)["energy.static"], rel=1e-12)
    else:  # no op reports a static term: h100_sxm.yaml energy.static_power, 0.30 x 700 W
        assert P == 210.0
    assert step.latency_s == rep.total_latency_s
    # the same terms summed in another order: equal to the last bits only (rel 1e-12)
    assert step.energy_j == pytest.approx(2 * rep.total_energy_j + P * 2 * rep.total_latency_s, rel=1e-12)
    # tp2 alone: no idle device; the layout step (simulate) and the serving step are the same 2 copies
    rep, step = _both({"tp": 2}, level)
    assert step.energy_j == 2 * rep.total_energy_j
    assert rep.meta["parallel"]["system_energy_j"] == pytest.approx(step.energy_j, rel=1e-12)


def test_both_paths_call_the_one_function(monkeypatch):
    seen = []

    def spy(ops, costs, hw):
        seen.append(len(list(ops)))
        return 1000.0
    monkeypatch.setattr(parallel_timing, "device_static_power_w", spy)
    rep, step = _both({"tp": 2, "pp": 2})
    assert len(seen) == 2
    assert rep.meta["parallel"]["static_power_w"] == 1000.0
    assert step.energy_j == 2 * rep.total_energy_j + 1000.0 * 2 * rep.total_latency_s
