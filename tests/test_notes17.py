"""Session 17 (new-user audit): a sweep row at the analytical level carries the level's per-op notes (the GPU
model's vectorised variants return totals only), and a stored operand a GPU has no unit for is said at the
roofline level -- and at the analytical level where it falls back to the roofline -- as on an accelerator."""

import pytest

from cosim.dse.evaluate import join_notes
from cosim.eager_host import GPU_TIME_NOTE
from cosim.simulate import simulate
from hwmodels.spec import load_hw
from workloads.builder import build_trace

MXFP4_GEMM = ("q_proj: weight-only mxfp4 GEMM priced as the calibrated bf16 kernel with the stored format's bytes; "
              "no dequantizing mxfp4 kernel is measured")


def _unit(hw, fmt, what="weights"):
    return (f"{what} in {fmt}: {hw} has no {fmt} unit, priced as bf16 MACs (the matrix unit's {fmt} -> bf16 "
            f"conversion is not charged; a dequantize op in the trace, e.g. a recipe's, is priced as its own row)")


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
        assert (MXFP4_GEMM in want.split(" | ")) if row["weights"] == "mxfp4" else want == GPU_TIME_NOTE
        assert GPU_TIME_NOTE in want.split(" | ")  # no profile: eager launches, the latency is GPU time
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


# ---- a parallel `cosim run` report agrees with the sweep row and labels its scopes (session 17 audit)

def test_parallel_run_report_matches_the_sweep_row(tmp_path):
    import json

    import pandas as pd

    from cosim.cli import main
    from cosim.dse import sweep
    exp = {"name": "p", "model": "llama3_70b", "phase": "decode", "batch": 16, "seq": 2048, "system": "dgx_h100",
           "parallel": {"tp": 4, "dp": 2}, "level": "analytical", "accuracy": False}
    path = tmp_path / "p.yaml"
    path.write_text(json.dumps(exp))
    assert main(["run", str(path), "--out", str(tmp_path / "o")]) == 0
    doc = json.loads((tmp_path / "o" / "report.json").read_text())
    t, par = doc["totals"], doc["totals"]["parallel"]
    assert doc["schema_version"] == 2
    # the user's batch (was 8: one replica's micro-batch) and the batch the per-op rows price, each named
    assert (t["batch"], t["trace_batch"], t["replica_batch"]) == (16, 8, 8)
    csv = pd.read_csv(tmp_path / "o" / "report.csv")
    assert set(csv["batch"]) == {16} and set(csv["trace_batch"]) == {8}
    # hand check: tokens/s = global batch / step; system = dp x replica; J/token = system J per step / 16 tokens
    step = t["system_step_latency_s"]
    assert step == par["step_latency_s"] == pytest.approx(t["total_latency_s"], rel=1e-12)  # pp 1: step = trace
    assert t["tokens_per_s"] == pytest.approx(16 / step, rel=1e-12)
    assert t["replica_tokens_per_s"] == pytest.approx(8 / step, rel=1e-12)
    assert t["tokens_per_s"] == pytest.approx(2 * t["replica_tokens_per_s"], rel=1e-12)
    assert t["trace_tokens_per_s"] == pytest.approx(8 / t["total_latency_s"], rel=1e-12)
    # tp 4 x dp 2 x 1 micro-batch = 8 copies of the trace's energy, no idle device-seconds (pp 1)
    assert t["system_energy_j"] == pytest.approx(8 * t["total_energy_j"], rel=1e-12)
    assert t["energy_per_token_j"] == pytest.approx(t["system_energy_j"] / 16, rel=1e-12)
    assert t["device_energy_per_token_j"] == pytest.approx(t["total_energy_j"] / 8, rel=1e-12)
    # the sweep row of the same point gives the same figures (was: tokens/s 2x, J/token 4x the report's)
    df = sweep({"name": "s", "base": exp, "axes": [{"grid": {"batch": [16]}}], "output": str(tmp_path / "s")},
               quiet=True, write=False)
    row = df.iloc[0]
    assert row["batch"] == t["batch"]
    assert row["tokens_per_s"] == pytest.approx(t["tokens_per_s"], rel=1e-9)
    assert row["energy_per_token_j"] == pytest.approx(t["energy_per_token_j"], rel=1e-9)
    assert row["latency_s"] == pytest.approx(step, rel=1e-9)
