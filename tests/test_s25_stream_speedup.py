"""Round 14 (issue 11, session 23; validation/model_selection/s25_graph_terms.txt): inside a stream or CUDA graph a
kernel runs `launch.stream_speedup` faster than event-timed alone, besides hiding `launch.overlap`. By hand, through
estimate and the sweep path, where the fit finds it, how a calibration file is checked, which GPU carries it."""
import dataclasses

import numpy as np
import pytest
import yaml

import cosim
from cosim.calibrate import fit
from hwmodels import gpu
from hwmodels.gpu_calibration import parse_section
from hwmodels.spec import HardwareError
from workloads.ops import Op, TensorSpec as Tensor


def _params(name="h200", **values):
    P = gpu.params_for(cosim.load_hw(name))
    base = {k: v for k, v in P.values.items() if k != "launch.stream_speedup"}
    return dataclasses.replace(P, values={**base, "launch.overlap": 1.9e-6, "graph.gap": 1e-6, **values})


def test_in_stream_time_by_hand():
    P = _params(**{"launch.stream_speedup": 0.02})
    # the fused gate-up GEMV of the fit run's profile, 86.5 us alone: 86.5 x 0.98 - 1.9 = 82.87 us in the stream
    assert gpu.in_stream_time(P, 86.5e-6, 1) == pytest.approx(82.87e-6)
    # a split-K GEMV (two kernels) of 18.4 us: 18.4 x 0.98 - 3.8 = 14.232 us
    assert gpu.in_stream_time(P, 18.4e-6, 2) == pytest.approx(14.232e-6)
    # a tiny kernel never falls below the in-graph gap per kernel
    assert gpu.in_stream_time(P, 2.5e-6, 1) == pytest.approx(1e-6)
    # vectorised as the sweep path calls it
    np.testing.assert_allclose(gpu.in_stream_time(P, np.array([86.5e-6, 2.5e-6]), np.array([1, 1])),
                               [82.87e-6, 1e-6])


def test_absent_speedup_is_the_round_13_form():
    P = _params()
    assert "launch.stream_speedup" not in P.values
    assert gpu.in_stream_time(P, 86.5e-6, 1) == pytest.approx(84.6e-6)


def _gemv():
    x = Tensor("x", (1, 4096), "bf16")
    w = Tensor("w", (4096, 28672), "bf16", role="weight")
    return Op("gate_up_proj", "gemm", {"m": 1, "n": 28672, "k": 4096}, (x, w), (Tensor("y", (1, 28672), "bf16"),))


def test_estimate_prices_the_stream_speedup_in_workload_only():
    hw = cosim.load_hw("h200")
    op = _gemv()
    off, on = _params(), _params(**{"launch.stream_speedup": 0.03})
    c_off, c_on = gpu.estimate(op, hw, params=off), gpu.estimate(op, hw, params=on)
    # the isolated price (what the op-level validation compares) does not move
    assert c_on.details["isolated_s"] == c_off.details["isolated_s"]
    t = c_off.details["power_capped_s"]
    k = c_off.details["kernels"]
    assert c_off.latency_s == pytest.approx(max(t - 1.9e-6 * k, 1e-6 * k))
    assert c_on.latency_s == pytest.approx(max(t * 0.97 - 1.9e-6 * k, 1e-6 * k))


def test_sweep_path_agrees_with_estimate_on_the_h100():
    # the committed H100 calibration carries the term: the vectorised sweep path prices it as estimate does
    from workloads.builder import build_trace
    from workloads.models import load_model
    hw = cosim.load_hw("h100_sxm")
    assert gpu.params_for(hw).values.get("launch.stream_speedup", 0.0) > 0
    trace = build_trace(load_model("llama3_8b"), "decode", 4, 1025)
    want = sum(c.latency_s * op.repeat for c, op in zip(gpu.estimate_trace(trace.ops, hw)[0], trace.ops))
    got = gpu.evaluate_variants(trace.ops, hw, {})["total_latency_s"]
    np.testing.assert_allclose(got, [want], rtol=1e-9)


def test_a_speedup_out_of_range_is_refused_with_the_field_named():
    sec = yaml.safe_load(open("cosim/configs/hw/calibration/h100_sxm.yaml"))
    sec = sec.get("analytical", sec)
    for bad in (-0.01, 0.5, 2.0):
        s = {**sec, "params": {**sec["params"], "launch": {**sec["params"]["launch"], "stream_speedup": bad}}}
        with pytest.raises(HardwareError, match=r"analytical\.params\.launch\.stream_speedup: got .*expected a "
                                                r"fraction in \[0, 0\.5\)"):
            parse_section(s, "x.yaml")
    sec = {k: v for k, v in sec.items() if k != "residual_correction"}  # the table's path is the bundled file's
    for ok in (0.0, 0.4999):  # the range's ends that are in it
        s = {**sec, "params": {**sec["params"], "launch": {**sec["params"]["launch"], "stream_speedup": ok}}}
        assert parse_section(s, "x.yaml").values["launch.stream_speedup"] == ok


def test_the_fit_searches_the_grid_the_selection_searched():
    from validation.model_selection import s25_graph_terms as s25
    np.testing.assert_array_equal(fit.LAUNCH_DELTAS, s25.DELTAS)
    np.testing.assert_array_equal(fit.STREAM_SPEEDUPS, s25.GAINS)


def test_the_h100_calibration_carries_it_and_the_h200_does_not():
    h100 = gpu.params_for(cosim.load_hw("h100_sxm"))
    h200 = gpu.params_for(cosim.load_hw("h200"))
    assert 0.0 < h100.values["launch.stream_speedup"] <= 0.1  # fitted on the round-14 grid
    assert "launch.stream_speedup" not in h200.values
    # r14_h100 plus round 18's FA2 prefill and round 22's GEMM tile menus; the H200's set plus the same FA2 prefill
    # form (round 19)
    assert fit.DEFAULT_SET == {"h100_sxm": "r22_h100", "h200": "r19_h200"}
    assert fit.TERM_SETS["r14_h100"] == {**fit.TERM_SETS["h200"], "stream_speedup": True}


def _synthetic_parts(rng, n=24):
    parts = []
    for _ in range(n):
        ops = rng.integers(8, 20)
        iso = rng.uniform(3e-6, 90e-6, ops)
        k = rng.integers(1, 3, ops).astype(float)
        parts.append((iso, k, np.full(ops, 32.0)))
    return parts


@pytest.mark.parametrize("terms, want_g", [({"stream_speedup": True}, 0.03), (None, None)])
def test_fit_launch_recovers_the_speedup_it_was_made_with(monkeypatch, terms, want_g):
    rng = np.random.default_rng(7)
    parts = _synthetic_parts(rng)
    gap, delta, g = 1e-6, 1.5e-6, 0.03
    rows = [{"split": "fit", "mode": "graph", "phase": "decode", "i": i,
             "median_s": float(np.sum(rep * np.maximum(iso * (1 - g) - delta * k, gap * k)))}
            for i, (iso, k, rep) in enumerate(parts)]
    import cosim.validate
    monkeypatch.setattr(cosim.validate, "e2e_parts", lambda r, hw, P: parts[r["i"]])
    values = {**gpu.params_for(cosim.load_hw("h200")).values, "graph.gap": gap}
    values.pop("launch.stream_speedup", None)
    q = fit.fit_launch(rows, None, values, 132, 50 * 2 ** 20, terms=terms)
    assert q["graph_rows"] == len(rows)
    if want_g is None:  # the term off: one scalar, no speedup key written
        assert "launch.stream_speedup" not in values
    else:
        assert values["launch.stream_speedup"] == pytest.approx(want_g)
        assert values["launch.overlap"] == pytest.approx(delta)
        assert q["overlap_median_abs_log_err"] == 0.0
