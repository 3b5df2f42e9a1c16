"""The measured-residual correction (hwmodels.gpu_residuals; issue 11 round 9): hand-checkable lookups, the
bundled tables' agreement with the measured classes, where the correction applies and where it says it does not."""
import dataclasses
import math
import shutil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwmodels import gpu, gpu_residuals
from hwmodels.gpu import params_for
from hwmodels.spec import HardwareError, load_hw
from workloads.ops import Op, TensorSpec


def _table(tmp_path, rows, classes):
    path = tmp_path / "t_residuals.csv"
    gpu_residuals.write_table(path, rows)
    return gpu_residuals.load({"path": str(path), "table": path.name, "classes": classes}, "test.yaml")


def test_two_nearest_rows_weighted_by_inverse_distance(tmp_path):
    # rows at m = 1024, 2048, 8192 (n = k = 1024); query m = 1024: distances 0, 1, 3 octaves; K = 2 takes the first two
    rows = [("gemm_bf16", "gemm", {"m": m, "n": 1024, "k": 1024}, r)
            for m, r in ((1024, 0.10), (2048, -0.20), (8192, 0.50))]
    t = _table(tmp_path, rows, {"gemm_bf16": {"k": 2, "shrink": False}})
    c = t.correction("gemm_bf16", "gemm", {"m": 1024, "n": 1024, "k": 1024})
    w0, w1 = 1 / 0.25, 1 / 1.25  # 1 / (d + 0.25)
    assert c.factor == pytest.approx(math.exp((0.10 * w0 - 0.20 * w1) / (w0 + w1)))
    assert c.neighbours == 2 and c.nearest_octaves == 0.0


def test_shrink_scales_the_log_correction_by_exp_of_minus_the_nearest_distance(tmp_path):
    rows = [("elementwise", "add", {"rows": r, "cols": 4096}, 0.30) for r in (4096, 16384)]
    t = _table(tmp_path, rows, {"elementwise": {"k": 1, "shrink": True}})
    c = t.correction("elementwise", "add", {"rows": 8192, "cols": 4096})  # one octave from either row
    assert c.factor == pytest.approx(math.exp(0.30 * math.exp(-1.0)))
    assert c.nearest_octaves == pytest.approx(1.0)


def test_a_shape_outside_the_measured_range_keeps_the_analytical_price(tmp_path):
    rows = [("gemm_bf16", "gemm", {"m": m, "n": 1024, "k": 1024}, 0.2) for m in (256, 512, 1024)]
    t = _table(tmp_path, rows, {"gemm_bf16": {"k": 2, "shrink": False}})
    assert t.correction("gemm_bf16", "gemm", {"m": 300, "n": 1024, "k": 1024}).factor == pytest.approx(math.exp(0.2))
    assert t.correction("gemm_bf16", "gemm", {"m": 2048, "n": 1024, "k": 1024}) == \
        "m outside the measured gemm_bf16 gemm rows' range"
    assert "n outside" in t.correction("gemm_bf16", "gemm", {"m": 512, "n": 512, "k": 1024})


def test_structures_no_fit_row_has_are_not_corrected(tmp_path):
    rows = [("attention_prefill_fa2", "attention", {"batch": 1, "heads": 32, "kv_heads": 8, "q_len": s, "kv_len": s,
                                                    "head_dim": 128}, 0.1) for s in (512, 1024, 2048)]
    t = _table(tmp_path, rows, {"attention_prefill_fa2": {"k": 2, "shrink": False},
                                "gemm_bf16": {"k": 2, "shrink": False}})
    chunk = {"batch": 1, "heads": 32, "kv_heads": 8, "q_len": 512, "kv_len": 2048, "head_dim": 128}
    assert "q_len != kv_len" in t.correction("attention_prefill_fa2", "attention", chunk)
    assert "stored int4" in t.correction("attention_prefill_fa2", "attention", {**chunk, "q_len": 2048},
                                         ("int4", "int4"))
    assert "MoE expert GEMM" in t.correction("gemm_bf16", "gemm", {"m": 8, "n": 64, "k": 64, "experts": 8})


def test_no_correction_says_why(tmp_path):
    rows = [("gemm_bf16", "gemm", {"m": 64, "n": 64, "k": 64}, 0.1)]
    t = _table(tmp_path, rows, {"gemm_bf16": {"k": 2, "shrink": False}})
    assert "needs 2" in t.correction("gemm_bf16", "gemm", {"m": 64, "n": 64, "k": 64})
    assert "not corrected" in t.correction("gemm_fp8", "gemm", {"m": 64, "n": 64, "k": 64})
    assert "batched GEMM" in t.correction("gemm_bf16", "gemm", {"m": 64, "n": 64, "k": 64, "b": 8})


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-0.5, 0.5), min_size=3, max_size=12), st.integers(1, 3), st.integers(6, 14))
def test_factor_stays_within_the_neighbours_residuals(rs, k, m_log2):
    rows = [("gemm_bf16", "gemm", {"m": 2 ** (i + 4), "n": 512, "k": 512}, r) for i, r in enumerate(rs)]
    table = gpu_residuals.ResidualTable(
        rules={"gemm_bf16": gpu_residuals.ClassRule(k=k, shrink=False)},
        groups={("gemm_bf16", "gemm", ("m", "n", "k")):
                (np.array([[i + 4, 9, 9] for i in range(len(rs))], float), np.array(rs))}, source="mem")
    c = table.correction("gemm_bf16", "gemm", {"m": 2 ** m_log2, "n": 512, "k": 512})
    inside = 4 <= m_log2 <= 3 + len(rs)  # rows at m = 2^4 .. 2^(3 + len(rs))
    if not inside:
        assert c == "m outside the measured gemm_bf16 gemm rows' range"
        return
    assert math.exp(min(rs)) - 1e-12 <= c.factor <= math.exp(max(rs)) + 1e-12
    assert rows  # (the rows' shapes the table holds, for a reader)


def test_bad_table_and_rules_are_named(tmp_path):
    bad = tmp_path / "x_residuals.csv"
    bad.write_text("cls,kind\n")
    with pytest.raises(HardwareError, match="x_residuals.csv: header"):
        gpu_residuals.load({"path": str(bad), "table": bad.name, "classes": {"gemm_bf16": {"k": 2}}}, "c.yaml")
    with pytest.raises(HardwareError, match=r"c.yaml: analytical.residual_correction.classes.gemm_bf16.k: got 0"):
        gpu_residuals.load({"path": str(bad), "table": bad.name, "classes": {"gemm_bf16": {"k": 0}}}, "c.yaml")
    with pytest.raises(HardwareError, match="residual_correction.table: got 'gone.csv'"):
        gpu_residuals.load({"table": "gone.csv", "classes": {"gemm_bf16": {"k": 2}}}, "c.yaml")


def _gemm(m, n, k, fmt="bf16", b=None):
    dims = {"m": m, "n": n, "k": k, **({"b": b} if b else {})}
    nb = b or 1
    return Op("g", "gemm", dims, (TensorSpec("a", (nb, m, k), fmt), TensorSpec("w", (nb, n, k), fmt, "weight")),
              (TensorSpec("o", (nb, m, n), "bf16"),), fmt)


def test_bundled_h200_corrects_a_gemm_and_says_when_it_cannot():
    hw = load_hw("h200")
    P = params_for(hw)
    assert "measured-residual correction" in P.provenance and "h200_residuals.csv" in P.provenance
    c = gpu.estimate(_gemm(4096, 4096, 4096), hw)
    f = c.details["residual_factor"]
    raw = gpu.estimate(_gemm(4096, 4096, 4096), hw, params=dataclasses.replace(P, residuals=None))
    assert c.details["isolated_s"] == pytest.approx(raw.details["isolated_s"] * f)
    assert 0.5 < f < 2.0
    batched = gpu.estimate(_gemm(128, 128, 128, b=16), hw)
    assert "residual_factor" not in batched.details
    assert any("without the measured-residual correction: batched GEMM" in n for n in batched.notes)


def test_every_bundled_table_row_is_the_class_the_model_prices():
    # the lookup keys by hwmodels.gpu.residual_class: every measured fit row must be that class, or its residual is
    # never found (cosim.calibrate.residuals.table_rows refuses a disagreement; here on both bundled GPUs' fit rows)
    from cosim.calibrate import dataset

    for g, csv in (("h200", "validation/h200_runs.csv"), ("h100_sxm", "validation/h100_runs.csv")):
        meas = [m for m in dataset.load_ops(csv) if m.split == "fit" and m.op is not None and m.cls != "launch"]
        assert {m.cls for m in meas if gpu.residual_class(m.op) != m.cls} == set(), g


def test_a_transferred_calibration_carries_no_table():
    hw = load_hw("h100_pcie")
    P = params_for(hw)
    if "transferred from" not in P.provenance:
        pytest.skip("h100_pcie is not a transferred calibration in this tree")
    assert P.residuals is None
    assert "measured-residual correction not transferred" in P.provenance
    assert "residual_factor" not in gpu.estimate(_gemm(4096, 4096, 4096), hw).details


def test_variants_apply_the_same_factor_as_estimate():
    from workloads.builder import build_trace

    hw = load_hw("h200")
    ops = build_trace("llama3_8b", phase="decode", batch=4, seq=1024).ops
    one = sum(c.latency_s * op.repeat for op, c in zip(ops, gpu.estimate_trace(ops, hw)[0]))
    v = gpu.evaluate_variants(ops, hw, {"memory.hbm.bandwidth": [hw.main_memory.bandwidth_Bps]})
    assert v["total_latency_s"][0] == pytest.approx(one, rel=1e-9)


def test_residuals_only_keeps_the_parameters(tmp_path):
    from cosim.cli import main

    src = "cosim/configs/hw/calibration/h100_sxm.yaml"
    cal = tmp_path / "h100_sxm.yaml"
    shutil.copy(src, cal)
    before = cal.read_text().split("residual_correction:")[0]
    assert main(["calibrate", "--residuals-only", "--hw", "h100_sxm", "--measurements", "validation/h100_runs.csv",
                 "--out", str(cal)]) == 0
    after = cal.read_text()
    assert after.split("residual_correction:")[0] == before and after.count("residual_correction:") == 1
    bundled = open("cosim/configs/hw/calibration/h100_sxm_residuals.csv").read()
    assert (tmp_path / "h100_sxm_residuals.csv").read_text() == bundled  # the bundled table is reproducible
