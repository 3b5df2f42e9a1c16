"""Session-17 hardware-override audit: a clock or array override reaches the compute peaks by one rule
(hwmodels.peak_scaling) in load_hw, so simulate, the vectorised paths and sweeps agree at every level; the
roofline stays a lower bound of the cycle level under array overrides; a bad accelerator: field is refused at load."""

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cosim
from cosim.dse import sweep
from hwmodels import gpu, roofline
from hwmodels.accelerators import config_for
from hwmodels.spec import HardwareError, load_hw
from workloads.ops import Op, TensorSpec
from workloads.trace import Trace

N = 8192


def _gemm_trace(fmt, n=N):
    op = Op("mm", "gemm", {"m": n, "n": n, "k": n}, (TensorSpec("a", (n, n), fmt), TensorSpec("w", (n, n), fmt, "weight")),
            (TensorSpec("c", (n, n), fmt),), fmt)
    return Trace(model="t", phase="prefill", batch=1, seq=n, ops=[op])


@pytest.mark.parametrize("name,fmt,peak", [("h100_sxm", "bf16", 989.4e12), ("mx_systolic_128", "mxfp8_e4m3", 131.072e12)])
def test_halving_the_clock_doubles_a_compute_bound_roofline(name, fmt, peak):
    # one 8192^3 GEMM: 2 x 8192^3 FLOP at the format's peak, far above its bytes / HBM bandwidth; half the clock
    # halves the peak (h100: 1.83 -> 0.915 GHz, a datasheet figure, scaled with a note; mx: 4 x 128 x 128 x 2 x clock)
    tr = _gemm_trace(fmt)
    base = load_hw(name)
    half = load_hw(name, overrides={"clock": base.clock_hz / 2})
    flops = 2.0 * N ** 3
    t0, t1 = cosim.simulate(tr, base).total_latency_s, cosim.simulate(tr, half).total_latency_s
    assert t0 == pytest.approx(flops / peak, rel=1e-12)
    assert t1 == pytest.approx(flops / (peak / 2), rel=1e-12) and t1 == pytest.approx(2 * t0, rel=1e-12)
    v = roofline.evaluate_tables(roofline.op_table(tr.ops, base),
                                 roofline.hw_table_variants(base, {"clock": np.array([base.clock_hz / 2])}))
    assert v["total_latency_s"][0] == t1  # the vectorised path: the same peak, to the bit


@pytest.mark.parametrize("name,level", [("h100_sxm", "roofline"), ("mx_systolic_128", "roofline"),
                                        ("h100_sxm", "analytical"), ("h200", "analytical")])
def test_clock_sweep_equals_simulate_and_the_vectorised_paths(tmp_path, name, level):
    # llama3_8b prefill 2048: the sweep (a clock is no vector field: one load_hw per value, the per-spec path)
    # equals simulate on load_hw(overrides), and the vectorised call (roofline.hw_table_variants /
    # gpu.evaluate_variants with a clock axis) too; before session 17 the first two ignored the clock. At the
    # roofline all three agree to the bit; at the analytical level the sweep prices each clock's spec with the
    # frozen gpu.evaluate_variants (time multipliers, not peaks), 1 ulp from simulate even at the file's own clock
    exact = level == "roofline"
    clocks = [load_hw(name).clock_hz * f for f in (0.5, 1.0)]
    df = sweep({"name": "clk", "output": str(tmp_path / "o"),
                "base": {"model": "llama3_8b", "hw": name, "level": level, "phase": "prefill", "seq": 2048},
                "axes": [{"grid": {"hw.clock": clocks}}]}, quiet=True, write=False)
    tr = cosim.build_trace("llama3_8b", phase="prefill", batch=1, seq=2048)
    base = load_hw(name)
    vec = (roofline.evaluate_tables(roofline.op_table(tr.ops, base),
                                    roofline.hw_table_variants(base, {"clock": np.array(clocks)}))
           if level == "roofline" else gpu.evaluate_variants(tr.ops, base, {"clock": np.array(clocks)}))
    lat = {}
    for j, c in enumerate(clocks):
        row = df[df["hw.clock"] == c].iloc[0]
        rep = cosim.simulate(tr, load_hw(name, overrides={"clock": c}), level=level)
        tol = 0 if exact else 1e-15
        assert row["latency_s"] == pytest.approx(rep.total_latency_s, rel=tol, abs=0)
        assert row["energy_j"] == pytest.approx(rep.total_energy_j, rel=tol, abs=0)
        assert vec["total_latency_s"][j] == pytest.approx(rep.total_latency_s, rel=tol, abs=0)
        lat[c] = rep.total_latency_s
    assert lat[clocks[0]] > 1.3 * lat[clocks[1]]  # half the clock: a prefill mostly compute-bound


def test_a_datasheet_peak_scaled_by_the_clock_says_so_an_array_peak_does_not(tmp_path):
    tr = cosim.build_trace("llama3_8b", phase="prefill", batch=1, seq=512)
    h = load_hw("h100_sxm", overrides={"clock": "0.915 GHz"})
    note = ("clock 0.915 GHz (override; h100_sxm.yaml states 1.83 GHz): compute peaks fp32, tf32, bf16, fp16, "
            "fp8_e4m3, fp8_e5m2, int8 are datasheet figures, scaled by the clock ratio x0.5 (taken as units x "
            "ops/cycle x clock); memory bandwidths are not scaled")
    assert h.notes == (note,) and h.peak("bf16") == 989.4e12 * 0.5
    for level in ("roofline", "analytical"):
        assert note in cosim.simulate(tr, h, level=level).notes
    assert load_hw("h100_sxm", overrides={"clock": "1.83 GHz"}).notes == ()  # the file's own clock: nothing scaled
    mx = load_hw("mx_systolic_128", overrides={"clock": "2 GHz"})
    assert mx.notes == () and mx.peak("mxfp8_e4m3") == 2 * 131.072e12 and mx.peak("fp32") == 2 * 1.024e12
    df = sweep({"name": "n", "output": str(tmp_path / "o"),
                "base": {"model": "llama3_8b", "hw": "h100_sxm", "level": "roofline", "seq": 512},
                "axes": [{"grid": {"hw.clock": ["0.915 GHz", "1.83 GHz"]}}]}, quiet=True, write=False)
    notes = dict(zip(df["hw.clock"], df["notes"]))
    assert note in notes[0.915e9] and (not isinstance(notes[1.83e9], str) or "clock" not in notes[1.83e9])


@pytest.mark.parametrize("order", [("clock", "compute.bf16"), ("compute.bf16", "clock")])
def test_a_compute_override_is_the_peak_at_the_files_clock_in_every_path(order):
    # compute.bf16 = 1000 TFLOP/s with clock 0.915 GHz: 500 TFLOP/s in load_hw and in hw_table_variants,
    # whatever the order of the overrides (before: the last one won in hw_table_variants)
    vals = {"clock": 0.915e9, "compute.bf16": 1000e12}
    h = load_hw("h100_sxm", overrides={k: vals[k] for k in order})
    assert h.peak("bf16") == 500e12
    t = roofline.hw_table_variants(load_hw("h100_sxm"), {k: np.array([vals[k]]) for k in order})
    assert t.peak[0, t.formats.index("bf16")] == 500e12


def test_a_clock_override_without_a_clock_to_scale_from_is_refused(tmp_path):
    from hwmodels.spec import hw_path
    doc = yaml.safe_load(hw_path("mx_systolic_128").read_text())
    del doc["clock"]
    p = tmp_path / "noclock.yaml"
    p.write_text(yaml.safe_dump(doc))
    with pytest.raises(HardwareError) as e:
        load_hw(p, overrides={"clock": "1 GHz"})
    assert str(e.value).startswith(f"{p}: overrides['clock']: got '1 GHz'; expected a file that states its own clock "
                                   f"(noclock.yaml has none)")
    from dataclasses import replace
    bare = replace(load_hw("h100_sxm"), clock_hz=0.0)
    with pytest.raises(HardwareError, match=r"overrides\['clock'\].*no clock to scale from"):
        roofline.hw_table_variants(bare, {"clock": np.array([1e9])})


@pytest.mark.parametrize("over", [{"accelerator.rows": 256}, {"accelerator.cols": 64, "accelerator.arrays": 2},
                                  {"clock": 2e9}, {"accelerator.pe.lanes": 2}, {"accelerator.vector.lanes": 64}])
def test_array_overrides_reach_the_peaks_as_the_cycle_model_sees_them(over):
    hw = load_hw("mx_systolic_128", overrides=over)
    cfg = config_for(hw)
    for fmt in cfg.pe.formats:  # 2 x arrays x rows x cols x MACs/PE/cycle x clock, the cycle model's own peak
        assert hw.peak(fmt) == pytest.approx(cfg.peak_flops(fmt, hw.clock_hz), rel=1e-15), fmt
    assert hw.peak("fp32") == pytest.approx(cfg.vector_flops_per_cycle() * hw.clock_hz, rel=1e-15)
    assert hw.notes == ()


def test_roofline_sweep_over_the_array_rows_moves_the_roofline(tmp_path):
    # accelerator.rows sets the compute peak, so a roofline sweep over it is accepted (session 14 refused it) and
    # its rows differ: prefill 2048, mxfp8 on mx_systolic_128: 0.244 s at 128 rows, 0.127 s at 256 (the compute
    # share halves); each row equals simulate on load_hw(overrides)
    df = sweep({"name": "rows", "output": str(tmp_path / "o"),
                "base": {"model": "llama3_8b", "hw": "mx_systolic_128", "level": "roofline", "phase": "prefill",
                         "seq": 2048, "weights": "mxfp8_e4m3", "acts": "mxfp8_e4m3"},
                "axes": [{"grid": {"hw.accelerator.rows": [128, 256]}}]}, quiet=True, write=False)
    tr = cosim.build_trace("llama3_8b", phase="prefill", batch=1, seq=2048, weights="mxfp8_e4m3", acts="mxfp8_e4m3")
    got = dict(zip(df["hw.accelerator.rows"], df["latency_s"]))
    for r in (128, 256):
        assert got[r] == cosim.simulate(tr, load_hw("mx_systolic_128", overrides={"accelerator.rows": r})).total_latency_s
    assert got[128] == pytest.approx(0.24416032730566406, rel=1e-12)
    assert got[256] == pytest.approx(0.12671571930566405, rel=1e-12)


_OPS = st.tuples(st.integers(1, 4096), st.integers(1, 4096), st.integers(1, 4096))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.integers(4, 256), cols=st.integers(4, 256), arrays=st.integers(1, 8),
       clock=st.floats(0.2e9, 3e9), mnk=_OPS, fmt=st.sampled_from(["mxfp8_e4m3", "mxfp4", "bf16"]))
def test_roofline_is_a_lower_bound_of_the_cycle_level_on_any_array(rows, cols, arrays, clock, mnk, fmt):
    # speed of light: whatever the array's geometry and clock, no op is faster at the cycle level than at the
    # roofline (before session 17: rows 256 or clock 2 GHz gave cycle < roofline, the peak stayed the file's)
    hw = load_hw("mx_systolic_128", overrides={"accelerator.rows": rows, "accelerator.cols": cols,
                                                "accelerator.arrays": arrays, "clock": clock})
    m, n, k = mnk
    gemm = Op("mm", "gemm", {"m": m, "n": n, "k": k},
              (TensorSpec("a", (m, k), fmt), TensorSpec("w", (k, n), fmt, "weight")), (TensorSpec("c", (m, n), fmt),), fmt)
    norm = Op("n", "rmsnorm", {"rows": m, "cols": k}, (TensorSpec("x", (m, k), "bf16"),),
              (TensorSpec("y", (m, k), "bf16"),), "bf16")
    tr = Trace(model="t", phase="prefill", batch=1, seq=m, ops=[gemm, norm])
    r = cosim.simulate(tr, hw, level="roofline")
    c = cosim.simulate(tr, hw, level="cycle")
    for a, b in zip(r.rows, c.rows):
        assert a["latency_s"] <= b["latency_s"] * (1 + 1e-12), (a["op"], a["latency_s"], b["latency_s"])


def _bad_file(tmp_path, **accel):
    from hwmodels.spec import hw_path
    doc = yaml.safe_load(hw_path("mx_systolic_128").read_text())
    doc["accelerator"].update(accel)
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(doc, sort_keys=False))
    return p


def test_bad_accelerator_fields_are_refused_at_load_by_every_level(tmp_path):
    p = _bad_file(tmp_path, rows=0, dataflow="xx")
    tr = cosim.build_trace("llama3_8b", phase="decode", batch=1, seq=128)
    for level in ("roofline", "analytical", "cycle"):
        with pytest.raises(HardwareError) as e:
            cosim.simulate(tr, str(p), level=level)
        assert str(e.value) == (f"{p}: 2 problems:\n  {p}: accelerator.rows: got 0; expected an integer >= 1 and at "
                                f"most 10,000,000\n  {p}: accelerator.dataflow: got 'xx'; expected one of os, ws, is "
                                f"(output / weight / input stationary)")
    for bad in (-4, 12.5):
        with pytest.raises(HardwareError, match=rf"\(with overrides\): accelerator.rows: got {bad}; expected an "
                                                rf"integer >= 1"):
            load_hw("mx_systolic_128", overrides={"accelerator.rows": bad})
    with pytest.raises(HardwareError, match=r"accelerator.vector.flops_per_lane: got 0; expected a number > 0"):
        load_hw(_bad_file(tmp_path, vector={"lanes": 128, "flops_per_lane": 0}))
    with pytest.raises(HardwareError, match=r"accelerator.pe.formats: got 'fp7'"):  # the array is built at load
        load_hw(_bad_file(tmp_path, pe={"formats": ["fp7"]}))


def test_a_compute_figure_that_is_not_the_arrays_peak_is_refused(tmp_path):
    from hwmodels.spec import hw_path
    doc = yaml.safe_load(hw_path("mx_systolic_128").read_text())
    doc["compute"]["mxfp8_e4m3"] = "100 TFLOP/s"
    p = tmp_path / "odd.yaml"
    p.write_text(yaml.safe_dump(doc, sort_keys=False))
    with pytest.raises(HardwareError) as e:
        load_hw(p)
    assert str(e.value) == (f"{p}: compute.mxfp8_e4m3: got '100 TFLOP/s'; expected the array's peak 2 x 4 x 128x128 "
                            f"PEs x 1 MAC/PE/cycle x 1 GHz = 131.072 TFLOP/s (within 0.1%: the roofline and the cycle "
                            f"level price the same array)")


@pytest.mark.parametrize("name,level,axes,fmt", [
    ("h100_sxm", "roofline", {"hw.clock": [0.915e9, 1.83e9], "hw.compute.bf16": [1e15, 2e15]}, "bf16"),
    ("h100_sxm", "analytical", {"hw.clock": [0.915e9, 1.83e9], "hw.compute.bf16": [1e15, 2e15]}, "bf16"),
    ("mx_systolic_128", "roofline", {"hw.accelerator.rows": [128, 256],
                                     "hw.compute.mxfp8_e4m3": [131.072e12, 65.536e12]}, "mxfp8_e4m3")])
def test_a_compute_axis_beside_a_clock_or_array_axis_is_scaled_as_load_hw_scales_it(tmp_path, name, level, axes, fmt):
    # review finding (session 17): a compute.<fmt> axis was written unscaled over a spec whose clock / array axis had
    # already scaled its peaks (h100 roofline at 0.915 GHz with compute.bf16 1000 TFLOP/s: 0.03386 s in the sweep,
    # 0.06354 s by simulate, whose peak is 500 TFLOP/s); now every row equals simulate on load_hw(the row's overrides)
    df = sweep({"name": "cc", "output": str(tmp_path / "o"),
                "base": {"model": "llama3_8b", "hw": name, "level": level, "phase": "prefill", "seq": 2048,
                         "weights": fmt, "acts": fmt}, "axes": [{"grid": axes}]}, quiet=True, write=False)
    tr = cosim.build_trace("llama3_8b", phase="prefill", batch=1, seq=2048, weights=fmt, acts=fmt)
    assert len(df) == 4
    for _, row in df.iterrows():
        over = {k.removeprefix("hw."): row[k] for k in axes}
        over = {k: int(v) if k.startswith("accelerator.") else float(v) for k, v in over.items()}
        rep = cosim.simulate(tr, load_hw(name, overrides=over), level=level)
        assert row["latency_s"] == pytest.approx(rep.total_latency_s, rel=1e-15, abs=0), over
    if name == "h100_sxm" and level == "roofline":  # the hand check: 0.915 GHz halves the 1000 TFLOP/s override
        row = df[(df["hw.clock"] == 0.915e9) & (df["hw.compute.bf16"] == 1e15)].iloc[0]
        assert row["latency_s"] == pytest.approx(0.06354, rel=1e-3)


def test_the_clock_note_names_a_compute_override_as_the_users_not_the_datasheets():
    notes = load_hw("h100_sxm", overrides={"clock": 0.915e9, "compute.bf16": 1e15}).notes
    assert len(notes) == 1 and "fp32, tf32, fp16, fp8_e4m3, fp8_e5m2, int8 are datasheet figures" in notes[0]
    assert "bf16 is the compute override (the peak at the file's clock), scaled by the clock ratio x0.5" in notes[0]
