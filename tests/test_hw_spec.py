"""Hardware specs: bundled numbers pinned by hand (hardware-data.yaml), the loader's
overrides/calibration/cache, and bad input that must come back as a clear InputError."""

import os
import time
from pathlib import Path

import pytest
import yaml

from hwmodels.spec import HardwareError, HardwareSpec, UnsupportedFormatError, list_hw, load_hw
from workloads.io import InputError

BUNDLED = ["h100_sxm", "h100_pcie", "h200", "a100_sxm_80gb", "b200", "mi300x", "l40s", "tpu_v5e"]
HW_DIR = Path(__file__).resolve().parents[1] / "cosim" / "configs" / "hw"


# ----------------------------------------------------------------------------- pinned numbers

def test_h100_sxm_pinned_numbers():
    h = load_hw("h100_sxm")
    # nvidia_h100_sxm5: 989.4 TF dense bf16, fp8 = 2 x bf16, 3350 GB/s HBM3, 700 W.
    assert h.peak("bf16") == 989.4e12
    assert h.peak("fp8_e4m3") == h.peak("fp8_e5m2") == 1978.9e12
    assert h.peak("int8") == 1978.9e12
    assert h.clock_hz == 1.83e9  # 1830e6 x 512 FMA x 2 x 528 TC = 989.4e12
    assert 1.83e9 * 512 * 2 * 528 == pytest.approx(h.peak("bf16"), rel=1e-4)
    hbm = h.main_memory
    assert hbm.name == "hbm" and hbm.bandwidth_Bps == 3.35e12
    # The vendor label "80 GB" is read as SI gigabytes (80e9 B), not 80 GiB = 85.9e9 B.
    assert hbm.capacity_bytes == 80e9
    assert hbm.energy_per_byte_j == pytest.approx(5.5e-12 * 8, rel=1e-6, abs=0)
    assert h.level("l2").capacity_bytes == 50e6
    assert h.tdp_w == 700.0 and h.static_power_w == 210.0
    assert h.interconnect == {"nvlink": 450e9, "pcie": 63e9}
    assert h.source == str(HW_DIR / "h100_sxm.yaml")
    assert h.kind == "gpu" and h.name == "h100_sxm"


@pytest.mark.parametrize("name,bf16,bw,cap,tdp", [
    ("h100_pcie", 756.5e12, 2.0e12, 80e9, 350.0),
    ("h200", 989.4e12, 4.8e12, 141e9, 700.0),
    ("a100_sxm_80gb", 312e12, 2039e9, 80e9, 400.0),
    ("b200", 2250e12, 7.67e12, 180e9, 1000.0),
    ("mi300x", 1307.4e12, 5.3e12, 192 * 2**30, 750.0),   # ROCm table writes 192 GiB
    ("l40s", 362.05e12, 864e9, 48e9, 350.0),
    ("tpu_v5e", 197e12, 819e9, 16e9, None),
])
def test_bundled_pinned_numbers(name, bf16, bw, cap, tdp):
    h = load_hw(name)
    assert h.peak("bf16") == bf16
    assert h.main_memory.bandwidth_Bps == bw
    assert h.main_memory.capacity_bytes == cap
    assert h.tdp_w == tdp


def test_all_bundled_load_and_are_listed():
    assert set(BUNDLED) <= set(list_hw())
    for name in BUNDLED:
        h = load_hw(name)
        assert isinstance(h, HardwareSpec) and h.name == name
        # Inner levels are smaller and faster than the level outside them.
        for outer, inner in zip(h.memory, h.memory[1:]):
            assert inner.capacity_bytes < outer.capacity_bytes
            assert inner.bandwidth_Bps > outer.bandwidth_Bps


@pytest.mark.parametrize("name", ["h100_sxm", "h100_pcie", "h200", "b200", "mi300x", "l40s"])
def test_fp8_is_twice_bf16_and_both_fp8_encodings_listed(name):
    h = load_hw(name)
    # L40S datasheet: 733 vs 2 x 362.05 = 724.1 (1.2% apart, as published); the rest are exact.
    tol = 0.015 if name == "l40s" else 1e-3
    assert h.peak("fp8_e4m3") == h.peak("fp8_e5m2") == pytest.approx(2 * h.peak("bf16"), rel=tol)


def test_formats_a_device_lacks_are_missing_not_invented():
    h100, b200, mi300x, a100 = (load_hw(n) for n in ("h100_sxm", "b200", "mi300x", "a100_sxm_80gb"))
    for fmt in ("fp4_e2m1", "mxfp4", "nvfp4", "mxfp8_e4m3", "int4", "fp6_e2m3"):
        assert not h100.supports(fmt)
        with pytest.raises(UnsupportedFormatError, match=fmt):
            h100.peak(fmt)
    assert not a100.supports("fp8_e4m3") and a100.peak("int4") == 1248e12
    assert mi300x.supports("fp8_e4m3") and not any(
        mi300x.supports(f) for f in ("mxfp8_e4m3", "mxfp4", "mxfp6_e2m3", "nvfp4", "fp4_e2m1"))
    # Blackwell: FP6 = FP8 rate, FP4 = 2 x FP8; mxfp4 and mxfp4_e2m1 are one encoding.
    assert b200.peak("fp4_e2m1") == b200.peak("nvfp4") == b200.peak("mxfp4") == 9000e12
    assert b200.peak("mxfp4_e2m1") == 9000e12
    assert b200.peak("fp6_e3m2") == b200.peak("mxfp6_e2m3") == b200.peak("mxfp8_e5m2") == 4500e12
    assert "mxfp4_e2m1" not in b200.energy_per_flop_j  # one canonical key per encoding


# SMs per device from hardware-data.yaml compute_units (used to re-derive the L2 bandwidths).
_SMS = {"h100_sxm": 132, "h100_pcie": 114, "h200": 132, "a100_sxm_80gb": 108, "b200": 148, "l40s": 142}


@pytest.mark.parametrize("name", [n for n in BUNDLED if n != "tpu_v5e"])
def test_derived_numbers_follow_their_stated_formulas(name):
    h = load_hw(name)
    # energy.per_flop = 0.40 x TDP / peak; static = 0.30 x TDP (GenZ power split).
    assert set(h.energy_per_flop_j) == set(h.peak_flops)
    for fmt, e in h.energy_per_flop_j.items():
        assert e == pytest.approx(0.40 * h.tdp_w / h.peak(fmt), rel=2e-3, abs=0), fmt
    assert h.static_power_w == pytest.approx(0.30 * h.tdp_w)
    if name in _SMS:  # L2: 40 B/clk/SM x SMs x clock
        assert h.level("l2").bandwidth_Bps == pytest.approx(40 * _SMS[name] * h.clock_hz, rel=5e-3)


def test_tpu_v5e_has_no_invented_power_numbers():
    h = load_hw("tpu_v5e")
    assert h.tdp_w is None and h.static_power_w is None and h.energy_per_flop_j == {}
    assert h.peak("int8") == 393e12 and h.interconnect["ici"] == 200e9


def test_memory_energy_matches_its_technology_row():
    # energy.dram_and_io_pj_per_bit: HBM2E 6.0 [V], GDDR6 7.5 [V], HBM2 3.9 [R], HBM3(E) 4-7 [U] -> 5.5.
    pj_bit = {"h100_pcie": 6.0, "a100_sxm_80gb": 6.0, "l40s": 7.5, "tpu_v5e": 3.9,
              "h100_sxm": 5.5, "h200": 5.5, "b200": 5.5, "mi300x": 5.5}
    for name, e in pj_bit.items():
        assert load_hw(name).main_memory.energy_per_byte_j == pytest.approx(e * 8e-12, rel=1e-6, abs=0), name


# ----------------------------------------------------------------------------- loader features

def _doc():
    doc = yaml.safe_load((HW_DIR / "h100_sxm.yaml").read_text())
    doc.pop("calibration", None)  # relative to cosim/configs/hw: a copy written elsewhere cannot carry it
    return doc


def _write(tmp_path, doc, name="my_hw.yaml"):
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False))
    return path


def test_user_path_loads_and_records_its_source(tmp_path):
    doc = _doc()
    doc["name"] = "my_gpu"
    path = _write(tmp_path, doc)
    h = load_hw(path)
    assert h.name == "my_gpu" and h.source == str(path) and h.peak("bf16") == 989.4e12
    assert load_hw(str(path)).name == "my_gpu"


def test_overrides_vary_hardware_fields_without_touching_the_cache():
    h = load_hw("h100_sxm", overrides={
        "memory.hbm.bandwidth": "4 TB/s",
        "memory.1.capacity": "60 MB",            # by index as well as by name
        "compute.bf16": 1.2e15,                   # numbers are SI base units
        "compute.fp4_e2m1": "3958 TFLOP/s",       # a hypothetical new unit
        "compute.int8": None,                     # None deletes
        "energy.per_flop.int8": None,
        "clock": "2 GHz",
        "power.tdp": "800 W",
    })
    assert h.main_memory.bandwidth_Bps == 4e12 and h.level("l2").capacity_bytes == 60e6
    # a compute: figure (the file's or an override's) is the peak at the file's clock; the clock override scales
    # every one by 2 / 1.83 GHz (hwmodels.peak_scaling), and the spec's note says so
    assert h.peak("bf16") == 1.2e15 * (2e9 / 1.83e9) and h.peak("fp4_e2m1") == 3958e12 * (2e9 / 1.83e9)
    assert not h.supports("int8") and h.peak("fp16") == 989.4e12 * (2e9 / 1.83e9)
    assert h.notes == ("clock 2 GHz (override; h100_sxm.yaml states 1.83 GHz): compute peaks fp32, tf32, fp16, "
                       "fp8_e4m3, fp8_e5m2 are datasheet figures; bf16, fp4_e2m1 are the compute override (the peak at "
                       "the file's clock), scaled by the clock ratio x1.0929 (taken as units x ops/cycle x clock); "
                       "memory bandwidths are not scaled",)
    assert h.clock_hz == 2e9 and h.tdp_w == 800.0
    assert h.sections["overrides"]["memory.hbm.bandwidth"] == "4 TB/s"
    again = load_hw("h100_sxm")
    assert again.main_memory.bandwidth_Bps == 3.35e12 and again.supports("int8")
    assert "overrides" not in again.sections


def test_memory_instances(tmp_path):
    doc = _doc()
    # e.g. a per-SM scratchpad: capacity is the total over the copies.
    doc["memory"].append({"name": "smem", "capacity": "30096 KB", "bandwidth": "20 TB/s", "instances": 132})
    h = load_hw(_write(tmp_path, doc))
    assert h.level("smem").instances == 132 and h.level("smem").capacity_bytes == 30096e3
    assert h.level("hbm").instances == 1
    h2 = load_hw(_write(tmp_path, doc), overrides={"memory.smem.instances": 66})
    assert h2.level("smem").instances == 66
    doc["memory"][2]["instances"] = 0
    _refused(_write(tmp_path, doc), "memory.smem.instances", "got 0", "positive whole number")


def test_calibration_file_lands_in_analytical_section(tmp_path):
    (tmp_path / "cal").mkdir()
    (tmp_path / "cal" / "h.yaml").write_text("model: fitted\nfit_quality: 0.92\n")
    doc = _doc()
    doc["calibration"] = "cal/h.yaml"
    doc["analytical"] = {"fit_quality": 0.9}   # inline keys win over the file
    # an accelerator: section is built at load (a bad one is refused there): a whole one, whose int4 PEs have no
    # compute: figure to check (fp32 dropped: the vector units would have to give the file's 66.9 TFLOP/s)
    del doc["compute"]["fp32"], doc["energy"]["per_flop"]["fp32"]
    doc["accelerator"] = {"rows": 8, "cols": 8, "pe": {"formats": ["int4"], "lanes": 1},
                          "sram": {"ifmap": "1 MiB", "filter": "1 MiB", "ofmap": "1 MiB"}}
    h = load_hw(_write(tmp_path, doc), overrides={"accelerator.pe.lanes": 64})
    assert h.sections["analytical"] == {"model": "fitted", "fit_quality": 0.9}
    assert h.sections["accelerator"]["pe"] == {"formats": ["int4"], "lanes": 64}


def test_typos_inside_raw_sections_are_refused(tmp_path):
    # issue 15: nested typos were ignored silently
    _refused("mx_systolic_128", "accelerator.pe.lanse", "did you mean 'lanes'",
             overrides={"accelerator.pe.lanse": 2})
    _refused("h100_sxm", "analytical.paramz", "did you mean 'params'", overrides={"analytical.paramz": 1})



def test_cache_sees_edits(tmp_path):
    path = _write(tmp_path, _doc())
    assert load_hw(path).peak("bf16") == 989.4e12
    doc = _doc()
    doc["compute"]["bf16"] = "1000 TFLOP/s"
    path.write_text(yaml.safe_dump(doc))
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert load_hw(path).peak("bf16") == 1000e12


def test_spec_passes_through():
    h = load_hw("h100_sxm")
    assert load_hw(h) is h


# ----------------------------------------------------------------------------- bad input
# Each case: the error is an InputError (never a traceback from inside the library) and its
# message names the file, the field, the bad value and what was expected.

def _bad(tmp_path, mutate):
    doc = _doc()
    mutate(doc)
    return _write(tmp_path, doc)


def _refused(target, *needles, overrides=None):
    with pytest.raises(InputError) as e:
        load_hw(target, overrides=overrides)
    msg = str(e.value)
    for n in needles:
        assert str(n) in msg, f"{n!r} not in: {msg}"
    return msg


def test_bad_unknown_hw_name():
    msg = _refused("h100", "hw", "'h100'", "h100_sxm", "h100_pcie", "bundled hardware name")
    assert "path" in msg


def test_bad_not_a_name():
    _refused(42, "hw", "42", "bundled hardware name")


def test_bad_missing_file(tmp_path):
    _refused(tmp_path / "nope.yaml", "nope.yaml", "no such hardware file")
    _refused(tmp_path / "h100_sxm.yaml", "h100_sxm.yaml", "pass the bare name 'h100_sxm'")


def test_bad_calibration_not_a_mapping(tmp_path):
    (tmp_path / "cal.yaml").write_text("- 0.78\n")
    path = _bad(tmp_path, lambda d: d.update(calibration="cal.yaml"))
    _refused(path, "cal.yaml", "'list'", "a YAML mapping of analytical-model parameters")


def test_bad_malformed_yaml(tmp_path):
    path = _write(tmp_path, "name: x\ncompute: {bf16: 1 TFLOP/s\nmemory: [\n")
    _refused(path, str(path), "malformed YAML", "line")


def test_bad_python_object_tag(tmp_path):
    path = _write(tmp_path, "name: !!python/object/apply:os.system ['echo pwned']\nkind: gpu\n")
    _refused(path, str(path), "refused a YAML tag", "plain data")


def test_bad_binary_file(tmp_path):
    path = tmp_path / "bin.yaml"
    path.write_bytes(b"name: \xff\xfe\x00\x81\n")
    _refused(path, str(path), "UTF-8")


def test_bad_duplicate_key(tmp_path):
    text = (HW_DIR / "h100_sxm.yaml").read_text().replace(
        "  fp16: 989.4 TFLOP/s", "  fp16: 989.4 TFLOP/s\n  bf16: 1979 TFLOP/s")
    path = _write(tmp_path, text)
    _refused(path, str(path), "bf16", "each key once", "YAML would silently keep only the last")


def test_bad_huge_file(tmp_path):
    path = tmp_path / "huge.yaml"
    with open(path, "wb") as f:
        f.truncate(17 * 2**20)  # sparse: no 17 MiB actually written
    _refused(path, str(path), "refusing files over")


def test_bad_document_not_a_mapping(tmp_path):
    _refused(_write(tmp_path, "- just\n- a list\n"), "my_hw.yaml", "'list'", "a YAML mapping")
    _refused(_write(tmp_path, "", name="empty.yaml"), "empty.yaml", "an empty file")


def test_bad_wrong_unit_for_bandwidth(tmp_path):
    path = _bad(tmp_path, lambda d: d["memory"][0].update(bandwidth="3.35 TB"))
    _refused(path, str(path), "memory.hbm.bandwidth", "'3.35 TB'", "B/s", "'TB' is a bytes unit")


def test_bad_negative_bandwidth(tmp_path):
    path = _bad(tmp_path, lambda d: d["memory"][1].update(bandwidth="-9.66 TB/s"))
    _refused(path, str(path), "memory.l2.bandwidth", "'-9.66 TB/s'", "positive")


def test_bad_zero_capacity(tmp_path):
    path = _bad(tmp_path, lambda d: d["memory"][0].update(capacity="0 GB"))
    _refused(path, str(path), "memory.hbm.capacity", "'0 GB'", "positive bytes")


def test_bad_unknown_format_key(tmp_path):
    path = _bad(tmp_path, lambda d: d["compute"].update(fp9="1 TFLOP/s"))
    _refused(path, str(path), "compute.fp9", "'fp9'", "registered number-format name")


def test_bad_missing_memory(tmp_path):
    path = _bad(tmp_path, lambda d: d.pop("memory"))
    _refused(path, str(path), "memory", "missing", "list of memory levels")


def test_bad_empty_memory_list(tmp_path):
    path = _bad(tmp_path, lambda d: d.update(memory=[]))
    _refused(path, str(path), "memory", "[]", "non-empty list")


def test_bad_wrong_types(tmp_path):
    path = _bad(tmp_path, lambda d: d.update(compute=["bf16"], clock=1.83e9))
    _refused(path, str(path), "compute", "['bf16']", "mapping of format name",
             "clock", "1830000000.0", "unit written as text", "2 problems")


def test_bad_unknown_top_level_key(tmp_path):
    path = _bad(tmp_path, lambda d: d.update(clok="1 GHz"))
    _refused(path, str(path), "clok", "known top-level key", "did you mean clock")


def test_bad_unknown_memory_field_and_duplicate_level(tmp_path):
    def mutate(d):
        d["memory"][1]["bandwith"] = "1 TB/s"
        d["memory"][1]["name"] = "hbm"
    _refused(_bad(tmp_path, mutate), "memory.hbm.bandwith", "'bandwith'", "did you mean bandwidth",
             "memory.hbm.name", "not used by another level")


def test_bad_unknown_kind(tmp_path):
    _refused(_bad(tmp_path, lambda d: d.update(kind="gpuu")), "kind", "'gpuu'",
             "one of gpu, tpu, fpga, accelerator", "did you mean gpu")


def test_bad_energy_format_not_in_compute(tmp_path):
    path = _bad(tmp_path, lambda d: d["energy"]["per_flop"].update(fp4_e2m1="0.07 pJ"))
    _refused(path, str(path), "energy.per_flop.fp4_e2m1", "'fp4_e2m1'", "a format listed under compute")


def test_bad_energy_unit_slip_caught_by_tdp_check(tmp_path):
    # 0.283 nJ instead of pJ: compute alone would draw 280 kW on a 700 W part.
    path = _bad(tmp_path, lambda d: d["energy"]["per_flop"].update(bf16="0.283 nJ"))
    _refused(path, str(path), "energy.per_flop.bf16", "'0.283 nJ'", "at most TDP/peak", "700 W TDP")


def test_bad_static_power_above_tdp(tmp_path):
    path = _bad(tmp_path, lambda d: d["energy"].update(static_power="900 W"))
    _refused(path, str(path), "energy.static_power", "'900 W'", "at most the TDP")


def test_bad_absurd_magnitude(tmp_path):
    path = _bad(tmp_path, lambda d: d.update(clock="1830 GHz"))
    _refused(path, str(path), "clock", "'1830 GHz'", "plausible range")


def test_bad_missing_calibration_file(tmp_path):
    path = _bad(tmp_path, lambda d: d.update(calibration="calibration/none.yaml"))
    _refused(path, str(path), "calibration", "'calibration/none.yaml'", "an existing YAML file")


def test_bad_override_of_unknown_field():
    _refused("h100_sxm", "h100_sxm.yaml", "overrides['memory.hbm.bandwith']", "memory field",
             "did you mean bandwidth", overrides={"memory.hbm.bandwith": "4 TB/s"})
    _refused("h100_sxm", "overrides['memroy.hbm.bandwidth']", "did you mean memory",
             overrides={"memroy.hbm.bandwidth": "4 TB/s"})
    _refused("h100_sxm", "overrides['memory.dram.bandwidth']", "a memory level of this file (hbm, l2)",
             overrides={"memory.dram.bandwidth": "4 TB/s"})
    _refused("h100_sxm", "overrides['power.idle']", "'power.tdp'", overrides={"power.idle": "1 W"})


def test_bad_override_values_are_validated_like_the_file():
    _refused("h100_sxm", "h100_sxm.yaml (with overrides)", "memory.hbm.bandwidth", "'4 TB'",
             "B/s", overrides={"memory.hbm.bandwidth": "4 TB"})
    _refused("h100_sxm", "compute.fp3", "registered number-format name",
             overrides={"compute.fp3": "1 TFLOP/s"})
    _refused("h100_sxm", "overrides", "'list'", "a dict of dotted paths", overrides=[("clock", "1 GHz")])


def test_bad_input_never_leaks_other_exception_types(tmp_path):
    # A grab-bag of structurally odd documents: each must be an InputError.
    odd = ["name: [1, 2]\nkind: gpu\nclock: 1 GHz\ncompute: {bf16: 1 TFLOP/s}\nmemory: [{name: a, capacity: 1 GB, bandwidth: 1 TB/s}]\n",
           "name: x\nkind: gpu\nclock: 1 GHz\ncompute: {1: 1 TFLOP/s}\nmemory: [3]\n",
           "name: x\nkind: gpu\nclock: {a: 1}\ncompute: {bf16: [1]}\nmemory: [{name: [a], capacity: 1 GB, bandwidth: 1 TB/s}]\nenergy: 5\npower: [1]\ninterconnect: {nvlink: true}\n",
           "name: x\nkind: gpu\nclock: 1 GHz\ncompute: {}\nmemory: {hbm: 1}\nanalytical: 3\n",
           "42\n"]
    for i, text in enumerate(odd):
        path = _write(tmp_path, text, name=f"odd{i}.yaml")
        with pytest.raises(InputError) as e:
            load_hw(path)
        assert str(path) in str(e.value)
    assert issubclass(HardwareError, InputError)
