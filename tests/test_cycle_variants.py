"""The vectorised cycle model (hwmodels.cycle_variants, issue 14) equals the per-point
cycle model bit for bit — per op, latency and energy — over array sizes, SRAM sizes,
array counts, dataflows and the tiling / overlap switches, and a cycle-level sweep over
array sizes equals `cosim.simulate` per point."""

from __future__ import annotations

import numpy as np
import pytest

import cosim
from cosim.dse import sweep
from hwmodels.cycle import area_breakdown
from hwmodels.cycle_variants import evaluate_variants
from hwmodels.estimate import estimate_ops
from hwmodels.spec import HardwareError

TRACE = cosim.build_trace("llama3_8b", "decode", 8, 4096, weights="mxfp4", acts="mxfp8_e4m3")
PREFILL = cosim.build_trace("llama3_8b", "prefill", 1, 512, weights="mxfp4", acts="mxfp8_e4m3", recipe=None)


def _compare(base_over: dict, variants: dict, trace=TRACE, hw="mx_systolic_128"):
    base = cosim.load_hw(hw, overrides=base_over or None)
    res = evaluate_variants(trace.ops, base, {k: np.asarray(v, dtype=float) for k, v in variants.items()}, True)
    n = len(next(iter(variants.values())))
    for j in range(n):
        point = cosim.load_hw(hw, overrides={**base_over, **{k: v[j] for k, v in variants.items()}})
        costs, _ = estimate_ops(trace.ops, point, "cycle", True)
        assert [c.latency_s for c in costs] == res["latency_s"][:, j].tolist()  # exactly
        assert [c.energy_j for c in costs] == res["energy_j"][:, j].tolist()
        assert res["area_mm2"][j] == area_breakdown(point)["total"]
        assert res["total_latency_s"][j] == sum(c.latency_s * op.repeat for op, c in zip(trace.ops, costs))
    return res


@pytest.mark.parametrize("base_over", [
    {},  # ws, fold overlap, stream tiling (ws cuts M when a K-fold's partial sums spill)
    {"accelerator.dataflow": "os", "accelerator.sram.filter": "300 KiB"},  # os K-tiling
    {"accelerator.dataflow": "is", "accelerator.sram.ofmap": "24 KiB", "accelerator.fold_overlap": False},
    {"accelerator.stream_tiling": False, "accelerator.arrays": 7},
])
def test_variants_equal_the_per_point_model(base_over):
    rng = np.random.default_rng(5)
    _compare(base_over, {"accelerator.rows": rng.integers(16, 257, 6).tolist(),
                         "accelerator.cols": rng.integers(16, 257, 6).tolist()})


def test_prefill_and_other_fields_equal_the_per_point_model():
    _compare({}, {"accelerator.rows": [32, 128, 200], "accelerator.arrays": [1, 4, 16],
                  "memory.hbm.bandwidth": [0.8e12, 1.6384e12, 4e12], "clock": [0.7e9, 1e9, 1.5e9],
                  "accelerator.vector.lanes": [64, 128, 256]}, trace=PREFILL)


def test_unchanged_variant_is_the_base_spec():
    base = cosim.load_hw("mx_systolic_128")
    res = evaluate_variants(TRACE.ops, base, {"accelerator.rows": np.array([128.0])})
    rep = cosim.simulate(TRACE, base, level="cycle", compute_fallback=False)
    assert res["total_latency_s"][0] == pytest.approx(rep.total_latency_s, rel=1e-15)


def test_bad_variants_are_named():
    base = cosim.load_hw("mx_systolic_128")
    with pytest.raises(HardwareError, match=r"variant 1: accelerator.sram.filter: got 8388608 B; expected at least"):
        evaluate_variants(TRACE.ops, base, {"accelerator.rows": np.array([128.0, 2048.0]),
                                            "accelerator.cols": np.array([128.0, 2048.0])})
    with pytest.raises(HardwareError, match=r"accelerator.rows: got 1.5; expected an integer >= 1"):
        evaluate_variants(TRACE.ops, base, {"accelerator.rows": np.array([1.5])})
    with pytest.raises(HardwareError, match=r"overrides\['compute.bf16'\]: not a field"):
        evaluate_variants(TRACE.ops, base, {"compute.bf16": np.array([1e14])})


def test_cycle_sweep_over_array_sizes_equals_simulate(tmp_path):
    spec = {"name": "arrays", "output": str(tmp_path / "o"),
            "base": {"model": "llama3_8b", "hw": "mx_systolic_128", "level": "cycle", "batch": 8, "seq": 4096,
                     "weights": "mxfp4", "acts": "mxfp8_e4m3"},
            "axes": [{"grid": {"hw.accelerator.rows": [64, 128, 256], "hw.accelerator.cols": [32, 128],
                               "hw.memory.hbm.bandwidth": ["0.8 TB/s", "3.2 TB/s"]}}]}
    df = sweep(spec, quiet=True, write=False)
    assert len(df) == 12 and (df["status"] == "ok").all()
    for _, r in df.iterrows():
        hw = cosim.load_hw("mx_systolic_128", overrides={
            "accelerator.rows": int(r["hw.accelerator.rows"]), "accelerator.cols": int(r["hw.accelerator.cols"]),
            "memory.hbm.bandwidth": r["hw.memory.hbm.bandwidth"]})
        rep = cosim.simulate(TRACE, hw, level="cycle")
        assert r["latency_s"] == pytest.approx(rep.total_latency_s, rel=1e-15)
        assert r["energy_j"] == pytest.approx(rep.total_energy_j, rel=1e-15)
        assert r["area_mm2"] == area_breakdown(hw)["total"]
