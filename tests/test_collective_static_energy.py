"""While a collective runs (not hidden behind compute) every device of its group is powered and waits:
its energy is the link energy + the device's static power x its time (hwmodels.collectives.with_static_power,
applied once in estimate_system_ops, so simulate, plan, sweeps and serve all price it the same way)."""
import math

import pytest

from cosim import build_trace
from cosim.simulate import simulate
from hwmodels.collectives import estimate_system_ops
from hwmodels.system import load_system
from workloads.ops import COLLECTIVE_KINDS

H100_STATIC_W = 210.0  # h100_sxm.yaml energy.static_power: 0.30 x 700 W


def _tp8_70b(**kw):
    tr = build_trace("llama3_70b", phase="decode", batch=64, seq=8192, parallel={"tp": 8})
    return simulate(tr, "dgx_h100", level="roofline", **kw)


def test_tp8_allreduce_carries_static_power_times_its_time():
    """llama3_70b decode, batch 64, KV 8192, tp=8 on dgx_h100 (roofline): attn_allreduce runs 80 x 6.87 us =
    550 us for 6.52 mJ of link energy; the 8 devices wait for it at 210 W each: each device's trace
    adds 210 W x 550 us = 115.5 mJ, so the row is 122 mJ (was 6.52 mJ, ~12 W)."""
    rep = _tp8_70b()
    ar = next(r for r in rep.rows if r["op"] == "attn_allreduce")
    assert ar["latency_s"] == pytest.approx(550e-6, rel=2e-3)
    assert ar["energy_link_j"] == pytest.approx(6.52e-3, rel=2e-3)
    assert ar["energy_static_j"] == pytest.approx(H100_STATIC_W * ar["latency_s"], rel=1e-12)
    assert ar["energy_j"] == pytest.approx(ar["energy_link_j"] + H100_STATIC_W * ar["latency_s"], rel=1e-12)
    assert ar["energy_j"] == pytest.approx(0.122, rel=5e-3)
    comm = [r for r in rep.rows if r["kind"] in COLLECTIVE_KINDS]
    comm_s = sum(r["latency_s"] for r in comm)
    # the system step: 8 copies of the trace (no pipeline, no idle device); the collectives' static share is
    # 8 x 210 W x their time (1.14 ms: ~1.9 J of the step's 39.9 J, was 38.0 J)
    par = rep.meta["parallel"]
    assert par["system_energy_j"] == pytest.approx(8 * rep.total_energy_j, rel=1e-12)
    static_comm = 8 * H100_STATIC_W * comm_s
    assert static_comm == pytest.approx(1.92, rel=0.02)
    old = par["system_energy_j"] - static_comm
    assert old == pytest.approx(38.0, rel=5e-3)
    assert par["system_energy_j"] == pytest.approx(39.9, rel=5e-3)


def test_overlapped_communication_keeps_static_power_of_its_visible_time_only():
    # overlap 1: each collective hides behind the compute op before it; that op already carries the static
    # power of the hidden time, so the collective keeps 210 W x its visible time only (never counted twice)
    base, hid = _tp8_70b(), _tp8_70b(overlap=1.0)
    for r0, r1 in zip(base.rows, hid.rows):
        if r1["kind"] not in COLLECTIVE_KINDS:
            assert r1["energy_j"] == r0["energy_j"]
            continue
        assert r1["energy_link_j"] == r0["energy_link_j"]  # the bytes still cross the link
        assert r1["energy_static_j"] == pytest.approx(H100_STATIC_W * r1["latency_s"], rel=1e-9, abs=1e-15)
        assert r1["energy_j"] == pytest.approx(r0["energy_j"] - H100_STATIC_W * r1["hidden_s"], rel=1e-9)
    assert hid.total_energy_j < base.total_energy_j


def test_a_device_without_static_power_keeps_link_energy_only_and_says_so():
    # mx_systolic_board_4: mx_systolic_128.yaml gives no energy.static_power -> static unknown (NaN), the
    # collective's energy is its link energy (dynamic only, as the report labels every energy of it)
    s = load_system("mx_systolic_board_4")
    tr = build_trace("llama3_8b", phase="decode", batch=8, seq=1024, parallel={"tp": 4})
    costs, _ = estimate_system_ops(tr.ops, s, "roofline")
    comm = [c for o, c in zip(tr.ops, costs) if o.kind in COLLECTIVE_KINDS]
    assert comm
    for c in comm:
        assert math.isnan(c.energy_breakdown["static"])
        assert c.energy_j == c.energy_breakdown["link"]


def test_serving_step_on_tp_prices_the_collectives_static_power_too():
    # serve --tp prices its steps through the same estimate_system_ops: a step of only the allreduces costs
    # tp copies x (link energy + 210 W x time)
    from cosim.serving.steptime import DeviceStepCost, Workload
    from workloads.models import load_model
    s = load_system("dgx_h100")
    tr = build_trace("llama3_8b", phase="decode", batch=8, seq=1024, parallel={"tp": 2})
    ops = [o for o in tr.ops if o.kind in COLLECTIVE_KINDS]
    m = DeviceStepCost(Workload(load_model("llama3_8b"), parallel=(("tp", 2),)), s.device, "roofline", 0.0, system=s)
    cost = m._price(ops)
    costs, _ = estimate_system_ops(ops, s, "roofline")
    link = sum(c.energy_breakdown["link"] * o.repeat for o, c in zip(ops, costs))
    assert cost.energy_j == pytest.approx(2 * (link + H100_STATIC_W * cost.latency_s), rel=1e-12)
