"""Session 17 (new-user audit): a sweep row at the analytical level carries the level's per-op notes (the GPU
model's vectorised variants return totals only), and a stored operand a GPU has no unit for is said at the
roofline level -- and at the analytical level where it falls back to the roofline -- as on an accelerator."""

import pytest

from cosim.dse.evaluate import join_notes
from cosim.simulate import simulate
from hwmodels.spec import load_hw
from workloads.builder import build_trace

MXFP4_GEMM = ("q_proj: weight-only mxfp4 GEMM priced as the calibrated bf16 kernel with the stored format's bytes; "
              "no dequantizing mxfp4 kernel is measured")


def _unit(hw, fmt, what="weights"):
    return (f"{what} in {fmt}: {hw} has no {fmt} unit, priced as bf16 MACs (the {fmt} -> bf16 conversion is "
            f"not charged)")


def _sweep(tmp_path, base, axis):
    from cosim.dse import sweep
    spec = {"name": "s", "base": {"model": "llama3_8b", "phase": "decode", "batch": 1, "seq": 256, "accuracy": False,
                                  **base},
            "axes": [{"grid": axis}], "require_memory_fit": False, "fallback": "roofline",
            "output": str(tmp_path / "o")}
    return sweep(spec, quiet=True, write=False)


def test_analytical_sweep_rows_carry_simulates_notes_per_variant(tmp_path):
    bws, peaks = [3.35e12, 4.8e12], [989.4e12, 1.5e15]
    df = _sweep(tmp_path, {"hw": "h100_sxm", "level": "analytical"},
                {"weights": ["bf16", "mxfp4"], "hw.memory.hbm.bandwidth": bws, "hw.compute.bf16": peaks})
    assert len(df) == 8 and set(df["level_used"]) == {"analytical"}  # the vectorised hook priced them
    for _, row in df.iterrows():
        hw = load_hw("h100_sxm", overrides={"memory.hbm.bandwidth": row["hw.memory.hbm.bandwidth"],
                                            "compute.bf16": row["hw.compute.bf16"]})
        rep = simulate(build_trace("llama3_8b", "decode", 1, 256, weights=row["weights"]), hw, level="analytical")
        want = join_notes(rep.notes)
        # was: None for every row (hwmodels.gpu.evaluate_variants returns totals, the row read its "notes")
        assert (row["notes"] if isinstance(row["notes"], str) else None) == want
        assert (MXFP4_GEMM in want.split(" | ")) if row["weights"] == "mxfp4" else want is None
        assert row["tokens_per_s"] == pytest.approx(rep.tokens_per_s, rel=1e-9)


def test_sweep_notes_for_several_gpus_and_a_fallback(tmp_path):
    df = _sweep(tmp_path, {"level": "analytical", "weights": "mxfp4"}, {"hw": ["h200", "a100_sxm_80gb"]})
    row = dict(zip(df["hw"], df["notes"]))
    assert MXFP4_GEMM in row["h200"].split(" | ")
    # a100 has no calibration: the sweep's `fallback: roofline` prices it, and the roofline's unit note stays
    assert row["a100_sxm_80gb"] == _unit("a100_sxm_80gb", "mxfp4")


@pytest.mark.parametrize("hw, fmt", [("a100_sxm_80gb", "fp8_e4m3"), ("h100_sxm", "mxfp4"), ("h100_sxm", "int4_g128")])
def test_a_gpu_without_the_unit_says_so_at_the_roofline(hw, fmt):
    rep = simulate(build_trace("llama3_8b", "decode", 1, 256, weights=fmt), hw, level="roofline")
    assert [n for n in rep.notes if "unit, priced as" in n] == [_unit(hw, fmt)]  # was: no note


def test_kv_cache_without_the_unit_and_no_note_where_the_unit_exists():
    rep = simulate(build_trace("llama3_8b", "decode", 1, 256, kv="fp8_e4m3"), "a100_sxm_80gb", level="roofline")
    assert [n for n in rep.notes if "unit, priced as" in n] == [_unit("a100_sxm_80gb", "fp8_e4m3", "KV cache")]
    # h100_sxm lists fp8_e4m3: weight-only fp8 needs no unit note (the accelerator rule)
    rep = simulate(build_trace("llama3_8b", "decode", 1, 256, weights="fp8_e4m3"), "h100_sxm", level="roofline")
    assert not [n for n in rep.notes if "unit, priced as" in n]


def test_uncalibrated_analytical_keeps_the_roofline_notes():
    # hwmodels.gpu sums an uncalibrated GPU up in one note; the ops it hands to the roofline keep the roofline's
    rep = simulate(build_trace("llama3_8b", "decode", 1, 256, weights="fp8_e4m3"), "a100_sxm_80gb",
                   level="analytical")
    assert rep.level == "roofline" and _unit("a100_sxm_80gb", "fp8_e4m3") in rep.notes
    assert any("has no calibration" in n for n in rep.notes)


def test_an_fpga_still_names_its_pe():
    rep = simulate(build_trace("llama3_8b", "decode", 1, 256, weights="fp8_e4m3"), "alveo_u280", level="roofline")
    assert _unit("the PE", "fp8_e4m3") in rep.notes
