"""Session-14 accelerator audit: each defect pinned with a hand-checkable number or message."""

import pytest
import yaml

from cosim.dse import load_sweep
from workloads.io import InputError

MX = {"model": "llama3_8b", "hw": "mx_systolic_128", "seq": 1024, "weights": "mxfp4", "acts": "mxfp8_e4m3"}


def _sweep_err(tmp_path, doc):
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump({"output": str(tmp_path / "out"), **doc}))
    with pytest.raises(InputError) as e:
        load_sweep(p)
    assert not (tmp_path / "out").exists()
    return str(e.value), str(p)


@pytest.mark.parametrize("field,values", [("hw.accelerator.sram.ifmap", ["4 MiB", "8 MiB"]),
                                          ("hw.accelerator.dram_latency", ["100 ns", "200 ns"])])
def test_roofline_sweep_over_cycle_only_accelerator_axes_is_refused(tmp_path, field, values):
    # the roofline reads accelerator: only through the peaks its array sets (session 17: rows, cols, arrays, PE
    # rates, vector units; hwmodels.peak_scaling); buffer sizes and the DRAM latency never reach it, so every row
    # would be identical: refused like area_mm2
    msg, path = _sweep_err(tmp_path, {"base": {**MX, "level": "roofline"}, "axes": [{"grid": {field: values}}]})
    assert path in msg and f"axes[0].grid.{field}" in msg and "level: cycle" in msg and "accelerator:" in msg
    msg, _ = _sweep_err(tmp_path, {"base": {**MX, "level": "roofline"},
                                   "axes": [{"random": {"samples": 2, "fields": {field: values}}}]})
    assert f"axes[0].random.{field}" in msg


def test_accelerator_axes_accepted_when_a_point_is_cycle(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump({"output": str(tmp_path / "out"), "base": {**MX, "level": "roofline"},
                                 "axes": [{"grid": {"level": ["roofline", "cycle"], "hw.accelerator.rows": [64, 128]}}]}))
    assert load_sweep(p)


def _gemm(m, n, k, fmt="bf16"):
    from workloads.ops import Op, TensorSpec
    return Op("g", "gemm", {"m": m, "n": n, "k": k},
              (TensorSpec("a", (m, k), fmt), TensorSpec("w", (k, n), fmt, "weight")),
              (TensorSpec("c", (m, n), fmt),), fmt)


def test_elementwise_sram_bytes_are_priced():
    # was: SRAM bytes under key "default", priced .get("default", 0.0) = 0 J while bytes_sram listed them
    import cosim
    from hwmodels import cycle
    from hwmodels.energy import sram_access_energy_per_byte
    from workloads.ops import Op, TensorSpec
    hw = cosim.load_hw("mx_systolic_128")
    op = Op("n", "rmsnorm", {"rows": 4, "cols": 4096}, (TensorSpec("x", (4, 4096), "bf16"),),
            (TensorSpec("y", (4, 4096), "bf16"),), "bf16")
    c = cycle.estimate(op, hw)
    # 32,768 B in and out: fill + vector read in the 8 MiB ifmap buffer, vector write + write-back in the 4 MiB ofmap
    assert c.details["sram_bytes"] == {"ifmap": 65536, "ofmap": 65536}
    want = 65536 * sram_access_energy_per_byte(8 * 2 ** 20, 7, 0.75) + 65536 * sram_access_energy_per_byte(4 * 2 ** 20, 7, 0.75)
    assert c.energy_breakdown["sram"] == pytest.approx(want, rel=1e-12) and want > 1e-7  # 0.113 uJ, was 0


def test_op_energy_refuses_an_unpriced_buffer():
    from hwmodels.energy import EnergyParams, op_energy
    p = EnergyParams(sram_j_per_byte={"ifmap": 1e-12}, dram_j_per_byte=0.0, wire_j_per_byte=0.0,
                     static_power_w=None, vector_j_per_flop=0.0)
    with pytest.raises(KeyError, match="'default'.*charged 0 J"):
        op_energy(0, 0.0, {"default": 10}, 0.0, 0.0, 1e-6, p)


def test_gemm_sram_counts_dram_fills_and_write_backs_by_hand():
    # 128 x 128 x 128 bf16 on one 128x128 ws array: one fold. Array side: A read once (16,384 x 2 B),
    # W read once (16,384 x 2 B), fp32 partial sums written once (16,384 x 4 B). DRAM: A, W in and C out,
    # 32,768 B each; each is one more SRAM access (fill = write, write-back = read).
    import cosim
    from hwmodels import cycle
    hw = cosim.load_hw("mx_systolic_128", overrides={"accelerator.arrays": 1})
    c = cycle.estimate(_gemm(128, 128, 128), hw)
    assert c.details["dram_bytes"] == {"ifmap": 32768, "filter": 32768, "ofmap": 32768}
    assert c.details["sram_bytes"] == {"ifmap": 32768 + 32768, "filter": 32768 + 32768, "ofmap": 65536 + 32768}
    ep = cycle._energy_params(hw, cycle.config_for(hw))
    e = ep.sram_j_per_byte
    assert c.energy_breakdown["sram"] == pytest.approx(65536 * e["ifmap"] + 65536 * e["filter"] + 98304 * e["ofmap"],
                                                       rel=1e-12)


def test_sram_access_is_priced_at_the_bank_not_the_whole_buffer():
    import math
    from hwmodels.energy import SRAM_BANK_BYTES, sram_access_energy_per_byte, sram_area_mm2, sram_energy_per_byte
    assert SRAM_BANK_BYTES == 128 * 1024
    # 45 nm / 0.9 V (no scaling): a 128 KiB bank on Horowitz's curve, 20 pJ x 4 ** (ln 5 / ln 32) = 38.07 pJ per
    # 64-bit read = 4.759 pJ/B, inside his 8 KB - 1 MB range
    assert sram_energy_per_byte(128 * 1024, 45, 0.9) == pytest.approx(20 * 4 ** (math.log(5) / math.log(32)) / 8 * 1e-12,
                                                                        rel=1e-12, abs=0)
    bank = sram_energy_per_byte(128 * 1024, 7, 0.75)  # 0.3165 pJ/B
    # 8 MiB at 7 nm / 0.75 V: the bank + 0.1 pJ/bit/mm x 8 bit x half the side of its 2.574 mm^2 = 0.642 pJ/B
    big = sram_access_energy_per_byte(8 * 2 ** 20, 7, 0.75)
    assert big == pytest.approx(bank + 0.1e-12 * 8 * math.sqrt(sram_area_mm2(8 * 2 ** 20)) / 2, rel=1e-12, abs=0)
    assert big == pytest.approx(0.958e-12, rel=1e-3, abs=0)  # was 2.183 pJ/B (Horowitz extrapolated 8x past 1 MB)
    small = sram_access_energy_per_byte(256 * 1024, 7, 0.75)  # the same bank, a shorter wire: 0.430 pJ/B
    assert small == pytest.approx(0.430e-12, rel=1e-3, abs=0)
    assert bank < small < big < sram_energy_per_byte(8 * 2 ** 20, 7, 0.75)
    assert sram_access_energy_per_byte(64 * 1024, 7, 0.75) == sram_energy_per_byte(64 * 1024, 7, 0.75)


def test_narrow_int_operands_without_a_unit_are_named_not_silent():
    import cosim
    from hwmodels.cycle_variants import evaluate_variants
    hw = cosim.load_hw("mx_systolic_128")
    t = cosim.build_trace("llama3_8b", phase="decode", batch=1, seq=256, weights="int4_g128", acts="bf16", kv="int4")
    r = cosim.simulate(t, hw, level="cycle")
    own_row = "; a dequantize op in the trace, e.g. a recipe's, is priced as its own row)"
    w = ("weights in int4_g128: the PE has no int4_g128 unit, priced as bf16 MACs (the matrix unit's int4_g128 -> bf16 "
         "conversion is not charged" + own_row)
    kv = ("KV cache in int4: the PE has no int4 unit, priced as bf16 MACs (the matrix unit's int4 -> bf16 "
          "conversion is not charged" + own_row)
    assert w in r.notes and kv in r.notes
    assert w in evaluate_variants(t.ops, hw, {})["notes"]  # the sweeps' vectorised path says the same
    t = cosim.build_trace("llama3_8b", phase="decode", batch=1, seq=256, weights="mxfp4", acts="mxfp8_e4m3",
                          kv="int4")
    notes = cosim.simulate(t, hw, level="cycle").notes
    assert any(n.startswith("KV cache in int4") and "priced as mxfp8_e4m3 MACs" in n for n in notes)
    assert not any(n.startswith("weights in") for n in notes)  # the PE has an mxfp4 unit


def test_system_area_is_labelled_per_device_and_totalled(tmp_path):
    from cosim.experiment import experiment_from_dict, run_experiment
    from hwmodels import cycle
    import cosim
    one = cycle.area_breakdown(cosim.load_hw("mx_systolic_128"))["total"]  # 71.43 mm^2
    e = experiment_from_dict({"model": "llama3_8b", "system": "mx_systolic_board_4", "hw": "mx_systolic_128",
                              "parallel": {"tp": 4}, "level": "cycle", "seq": 256})
    r = run_experiment(e, out_dir=tmp_path / "o", accuracy=False)
    assert r.meta["area_mm2"] == one and r.meta["area_devices"] == 4
    assert r.meta["area_total_mm2"] == pytest.approx(4 * one, rel=1e-12)  # 285.7 mm^2
    assert "one device" in r.meta["provenance"]["area_mm2"]
    html = (tmp_path / "o" / "report.html").read_text()
    assert f"{one:.4g} mm² per device × 4 = {4 * one:.4g} mm²" in html
    single = run_experiment(experiment_from_dict({"model": "llama3_8b", "hw": "mx_systolic_128", "level": "cycle",
                                                  "seq": 256}), accuracy=False)
    assert single.meta["area_devices"] == 1 and single.meta["area_total_mm2"] == single.meta["area_mm2"] == one


def test_decode_gemv_on_a_ws_array_is_weight_load_bound():
    # 1 x 4096 x 4096 on 128x128 ws arrays: each fold streams t = 1 row but takes R = 128 cycles to load its
    # weight tile; the MACs could finish in 1 cycle per fold, the load path sets the time
    import cosim
    from hwmodels import cycle
    hw = cosim.load_hw("mx_systolic_128")
    c = cycle.estimate(_gemm(1, 4096, 4096, "mxfp8_e4m3"), hw)
    assert c.bound == "weight-load" and c.details["stationary_load_bound"]
    c = cycle.estimate(_gemm(2048, 4096, 4096, "mxfp8_e4m3"), hw)  # prefill: 2048 rows per fold > 128
    assert c.bound == "compute" and not c.details["stationary_load_bound"]
    t = cosim.build_trace("llama3_8b", phase="decode", batch=1, seq=1024, weights="mxfp4", acts="mxfp8_e4m3")
    att = next(o for o in t.ops if o.kind == "attention")
    assert cycle.estimate(att, hw).bound == "kv-load"  # q x group = 4 rows per fold against K/V tiles


def test_an_override_error_names_the_override_not_the_bundled_file():
    import cosim
    from hwmodels.accelerators import config_for
    from hwmodels.spec import HardwareError
    with pytest.raises(HardwareError) as e:  # a number is bytes, as other overrides take SI base units
        config_for(cosim.load_hw("mx_systolic_128", overrides={"accelerator.sram.filter": 1024}))
    assert str(e.value) == ("override accelerator.sram.filter (applied to mx_systolic_128.yaml): got 1024 B; "
                            "expected at least 65536 B (one 128x128 tile, double buffered)")
    # the file's own 8 MiB filter buffer made too small by an override of rows (40,000 x 128 x 2 B (bf16, the
    # widest PE format) x 2 halves > 8 MiB):
    # the file's field, with the overrides applied
    with pytest.raises(HardwareError) as e:
        config_for(cosim.load_hw("mx_systolic_128", overrides={"accelerator.rows": 40000}))
    assert str(e.value).endswith("mx_systolic_128.yaml (with overrides accelerator.rows=40000): accelerator.sram.filter: "
                                 "got 8388608 B; expected at least 20480000 B (one 40000x128 tile, double buffered)")


def _systolic(*argv):
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    return subprocess.run([sys.executable, "-m", "cosim", "systolic", *argv], cwd=root, capture_output=True,
                          text=True, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})


def test_systolic_cli_refuses_ignored_options_and_undersized_buffers():
    r = _systolic("pipeline", "64", "64", "64", "--array", "8x8", "--sram", "10", "--bandwidth", "4")
    assert r.returncode == 2
    assert "--sram (ifmap): got 10 B; expected at least 16 B (one 8x8 tile, double buffered)" in r.stderr
    r = _systolic("gemm", "1", "4096", "4096", "--bandwidth", "4")
    assert r.returncode == 2 and "--bandwidth 4.0: not read by gemm (it applies to pipeline)" in r.stderr
    r = _systolic("area", "alveo_u280")
    assert r.returncode == 0 and "FPGA: area of the equivalent standard-cell design" in r.stdout
    r = _systolic("gemm", "1", "4096", "4096", "--array", "128x128", "--dataflow", "ws", "--overlap")
    assert r.returncode == 0 and "compute_cycles              131327" in r.stdout
