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


def test_shrink_scales_the_log_correction_by_exp_of_minus_the_nearest_distance(tmp_path):
    rows = [("elementwise", "add", {"rows": r, "cols": 4096}, 0.30) for r in (4096, 16384)]
    t = _table(tmp_path, rows, {"elementwise": {"k": 1, "shrink": True}})
    c = t.correction("elementwise", "add", {"rows": 8192, "cols": 4096})  # one octave from either row
    assert c.factor == pytest.approx(math.exp(0.30 * math.exp(-1.0)))


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
    assert "int4 operands" in t.correction("attention_prefill_fa2", "attention", {**chunk, "q_len": 2048},
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
    # rows at m = 2^4 .. 2^(3 + len(rs)), n = k = 512 (log2 9), residuals rs
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


# review findings (round 10): corrupt values, table resolution, the device check, the selection in provenance,
# the in-sample note, a calibration without a final newline, typos in the class rules, the bounded lookup cache

def _raw_table(tmp_path, lines, name="t_residuals.csv"):
    path = tmp_path / name
    path.write_text("cls,kind,features,log_residual\n" + "".join(line + "\n" for line in lines))
    return path


@pytest.mark.parametrize("line, field, value", [
    ("gemm_bf16,gemm,m=64;n=64;k=64,nan", "log_residual", "nan"),
    ("gemm_bf16,gemm,m=64;n=64;k=64,inf", "log_residual", "inf"),
    ("gemm_bf16,gemm,m=64;n=64;k=64,", "log_residual", ""),
    ("gemm_bf16,gemm,m=0;n=64;k=64,0.1", "features.m", "0"),
    ("gemm_bf16,gemm,m=64;n=-64;k=64,0.1", "features.n", "-64"),
    ("gemm_bf16,gemm,m=64;n=64;k=inf,0.1", "features.k", "inf"),
    ("gemm_bf16,gemm,m=64;n=64;k=nan,0.1", "features.k", "nan"),
    ("gemm_bf16,gemm,m=64;n=sixty;k=64,0.1", "features.n", "sixty"),
    ("gemm_bf16,gemm,m=64;n;k=64,0.1", "features", "m=64;n;k=64"),
    ("gemm_bf61,gemm,m=64;n=64;k=64,0.1", "cls", "gemm_bf61"),  # a class no lookup would ever ask for
    ("gemm_bf16,gemm,m=64;n=64,0.1", "features", "m=64;n=64"),  # not a GEMM's shape fields
])
def test_a_corrupt_table_value_is_refused_with_its_line_field_and_value(tmp_path, line, field, value):
    good = "gemm_bf16,gemm,m=128;n=64;k=64,0.2"
    path = _raw_table(tmp_path, [good, line])  # the bad row is line 3 (the header is line 1)
    with pytest.raises(HardwareError) as e:
        gpu_residuals.load({"path": str(path), "table": path.name, "classes": {"gemm_bf16": {"k": 1}}}, "c.yaml")
    assert str(e.value).startswith(f"{path}: line 3: {field}: got {value!r}; expected ")


def _cal_beside(folder, table="t_residuals.csv"):
    """A calibration file (the bundled H200's, its table renamed) whose residual table is `table`."""
    import yaml

    doc = yaml.safe_load(open("cosim/configs/hw/calibration/h200.yaml"))
    doc["residual_correction"]["table"] = table
    folder.mkdir(parents=True, exist_ok=True)
    cal = folder / "cal.yaml"
    cal.write_text(yaml.safe_dump(doc, sort_keys=False))
    return cal, doc


def test_a_missing_table_is_never_read_from_the_current_directory(tmp_path, monkeypatch):
    from hwmodels.gpu_calibration import parse_section

    cal, doc = _cal_beside(tmp_path / "cal")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    _raw_table(elsewhere, ["gemm_bf16,gemm,m=64;n=64;k=64,0.1"])  # same name, in the current directory only
    monkeypatch.chdir(elsewhere)
    tried = cal.parent / "t_residuals.csv"
    with pytest.raises(HardwareError, match=rf"^{cal}: analytical.residual_correction.table: got 't_residuals.csv'; "
                                            rf"tried {tried} \(beside the calibration {cal}\): no such file"):
        parse_section(doc, str(cal))
    # no calibration file to be beside (a section built in memory): refused, not looked up in the current directory
    with pytest.raises(HardwareError, match="'in memory' is not a calibration file the table could be beside"):
        parse_section(doc, "in memory")


def test_a_missing_table_through_the_hardware_loader_names_the_calibration(tmp_path, monkeypatch):
    hw_dir = tmp_path / "hw"
    cal, _doc = _cal_beside(hw_dir / "calibration")
    text = open("cosim/configs/hw/h200.yaml").read().replace("calibration: calibration/h200.yaml",
                                                             "calibration: calibration/cal.yaml")
    (hw_dir / "mygpu.yaml").write_text(text)
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    _raw_table(elsewhere, ["gemm_bf16,gemm,m=64;n=64;k=64,0.1"])
    monkeypatch.chdir(elsewhere)
    with pytest.raises(HardwareError) as e:
        params_for(load_hw(str(hw_dir / "mygpu.yaml")))
    msg = str(e.value)
    assert f"tried {cal.resolve().parent / 't_residuals.csv'} (beside the calibration {cal.resolve()})" in msg


def test_provenance_names_the_resolved_table_and_the_selection(tmp_path):
    from cosim.calibrate.residuals import rules_for
    from hwmodels.gpu_calibration import parse_section

    rules, line = rules_for("madeup_gpu")  # no selection of its own: the H200's choices, said so
    assert "madeup_gpu has no selection of its own, not validated on this GPU" in line
    cal, doc = _cal_beside(tmp_path)
    _raw_table(tmp_path, ["gemm_bf16,gemm,m=64;n=64;k=64,0.1"])
    doc["residual_correction"].update(selection=line, classes=rules)
    P = parse_section(doc, str(cal))
    assert f"1 fit rows, {(tmp_path / 't_residuals.csv').resolve()}; the H200's classes and neighbours: madeup_gpu " \
           f"has no selection of its own, not validated on this GPU)" in P.provenance
    # the bundled table: named from the project root (the same on every checkout), with its own GPU's selection
    bundled = params_for(load_hw("h200")).provenance
    assert "fit rows, cosim/configs/hw/calibration/h200_residuals.csv; classes and neighbours chosen on h200's fit " \
           "rows, one fit suite left out)" in bundled


def test_residuals_only_refuses_another_gpus_measurements(tmp_path, capsys):
    from cosim.cli import main

    cal = tmp_path / "h100_sxm.yaml"
    shutil.copy("cosim/configs/hw/calibration/h100_sxm.yaml", cal)
    before = cal.read_bytes()
    rc = main(["calibrate", "--residuals-only", "--hw", "h100_sxm", "--measurements", "validation/h200_runs.csv",
               "--out", str(cal)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert err[0].startswith("error: --hw: got 'h100_sxm'") and "'NVIDIA H200'" in err[0]
    assert cal.read_bytes() == before and not (tmp_path / "h100_sxm_residuals.csv").exists()  # nothing written


def test_residuals_only_on_a_calibration_without_a_final_newline(tmp_path):
    import yaml

    from cosim.cli import main

    text = open("cosim/configs/hw/calibration/h100_sxm.yaml").read()
    params_part = text.split("residual_correction:")[0].rstrip("\n")  # no block, no final newline
    cal = tmp_path / "h100_sxm.yaml"
    cal.write_text(params_part)
    assert main(["calibrate", "--residuals-only", "--hw", "h100_sxm", "--measurements", "validation/h100_runs.csv",
                 "--out", str(cal)]) == 0
    after = cal.read_text()
    assert after.startswith(params_part + "\nresidual_correction:\n")
    assert yaml.safe_load(after)["residual_correction"] == yaml.safe_load(text)["residual_correction"]


def test_in_sample_note_on_the_fit_split(tmp_path):
    from cosim import validate as v

    P = params_for(load_hw("h200"))
    note = v._in_sample_note("fit", P)
    assert len(note) == 1 and "fit rows are their own nearest neighbours: in-sample, optimistic" in note[0]
    assert "fit rows among them" in v._in_sample_note("all", P)[0]
    assert v._in_sample_note("test", P) == [] and v._in_sample_note("fit", dataclasses.replace(P, residuals=None)) == []
    # end to end through validate(): a one-run manifest of the first 20 GEMM rows of the H200's first (fit) run
    raw = tmp_path / "raw_r1"
    raw.mkdir()
    lines = open("validation/raw_h200_run1/ops.csv").read().splitlines()
    (raw / "ops.csv").write_text("\n".join([lines[0]] + [x for x in lines if x.startswith("gemm,")][:20]) + "\n")
    shutil.copy("validation/raw_h200_run1/env.json", raw / "env.json")
    (tmp_path / "h200_runs.csv").write_text("run,suite\nr1,default\n")
    res = v.validate("h200", tmp_path / "h200_runs.csv", split="fit", include_unreliable=True)
    assert res.ops and sum("in-sample, optimistic" in n for n in res.notes) == 1
    assert "in-sample, optimistic" in v.format_tables(res)


@pytest.mark.parametrize("classes, message", [
    ({"gemm_bf61": {"k": 2}}, "classes: got class 'gemm_bf61'; expected one of gemm_bf16, gemm_fp8, "
                              "attention_prefill, attention_prefill_fa2"),
    ({"attention_decode_flash": {"k": 2}}, "classes: got class 'attention_decode_flash'; expected one of"),
    ({"gemm_bf16": {"k": 2, "shrnk": True}}, "classes.gemm_bf16: got key 'shrnk'; expected only k, shrink"),
    ({"gemm_bf16": 8}, "classes.gemm_bf16: got 8; expected a mapping"),
])
def test_typos_in_the_class_rules_are_refused(tmp_path, classes, message):
    path = _raw_table(tmp_path, ["gemm_bf16,gemm,m=64;n=64;k=64,0.1"])
    with pytest.raises(HardwareError) as e:
        gpu_residuals.load({"path": str(path), "table": path.name, "classes": classes}, "c.yaml")
    assert str(e.value).startswith("c.yaml: analytical.residual_correction.") and message in str(e.value)


def test_the_rule_classes_are_the_measured_classes():
    from cosim.validate import OP_CLASSES

    assert set(gpu_residuals.CLASSES) == set(OP_CLASSES)


def test_the_lookup_cache_is_bounded_and_prices_do_not_depend_on_it(tmp_path, monkeypatch):
    rows = [("gemm_bf16", "gemm", {"m": 2 ** i, "n": 64, "k": 64}, 0.05 * i) for i in range(4, 10)]
    t = _table(tmp_path, rows, {"gemm_bf16": {"k": 2, "shrink": False}})
    queries = [{"m": 2 ** i + 3, "n": 64, "k": 64} for i in range(4, 9)]  # inside the rows' range (16 .. 512)
    first = [t.correction("gemm_bf16", "gemm", q).factor for q in queries]  # cache of 5
    monkeypatch.setattr(gpu_residuals, "CACHE_SIZE", 3)
    t._cache.clear()
    again = [t.correction("gemm_bf16", "gemm", q).factor for q in queries + queries[:2]]
    assert len(t._cache) == 3  # the 3 most recent: queries 4, 0, 1
    assert again == first + first[:2]  # evicted lookups are recomputed to the same bits


def test_the_in_sample_note_is_for_the_calibrated_devices_own_fit_rows_only():
    from cosim.validate import validate

    own = validate("h200", "validation/h200_runs.csv", split="fit")
    assert any(n.startswith("in-sample:") and "reliable fit rows are their own" in n for n in own.notes)
    other = validate("h200", "validation/h100_runs.csv", split="fit")  # the H200 table holds no H100 row
    assert any(n.startswith("cross-device:") for n in other.notes)
    assert not any(n.startswith("in-sample:") for n in other.notes)


def test_a_calibration_file_cannot_point_its_table_elsewhere(tmp_path):
    # a `path` written into the file would be read relative to the current directory: only the loader sets it
    from hwmodels.gpu_calibration import parse_section

    cal, doc = _cal_beside(tmp_path / "cal")
    doc["residual_correction"]["path"] = "elsewhere.csv"
    with pytest.raises(HardwareError, match=r"cal.yaml: analytical.residual_correction: got key 'path'; expected only"):
        parse_section(doc, str(cal))


def test_an_fp8_kv_cache_keeps_the_analytical_price_and_says_why():
    # every attention fit row reads a bf16 cache: an fp8 one (its per-head fp32 scales aside) has no measured neighbour
    from workloads.builder import build_trace

    hw = load_hw("h200")
    for kw in ({"kv": "fp8_e4m3"}, {"recipe": "fp8_kv"}):
        op = next(o for o in build_trace("llama3_8b", "decode", 8, 1024, **kw).ops if o.kind == "attention")
        c = gpu.estimate(op, hw)
        assert "residual_factor" not in c.details, kw
        assert any("fp8_e4m3 operands (every attention_decode fit row computes in and stores bf16)" in n
                   for n in c.notes), (kw, c.notes)
    bf16 = next(o for o in build_trace("llama3_8b", "decode", 8, 1024).ops if o.kind == "attention")
    assert "residual_factor" in gpu.estimate(bf16, hw).details  # the bf16 cache of the same shape is corrected


def _attn(kv):
    return {"batch": 1, "heads": 32, "kv_heads": 8, "q_len": kv, "kv_len": kv, "head_dim": 128}


def test_kv_alignment_is_the_largest_power_of_two_up_to_8_dividing_the_length():
    assert [int(gpu_residuals.kv_alignment(n)) for n in (511, 510, 508, 504, 512, 1, 6, 12, 24)] == \
        [1, 2, 4, 8, 8, 1, 2, 4, 8]


def test_by_alignment_compares_only_rows_of_the_ops_kv_alignment(tmp_path):
    # odd lengths +0.10, lengths = 2 mod 4 -0.20, multiples of 8 +0.30 (round 11: HF eager prefill's structure)
    rows = [("attention_prefill_unfused", "attention", _attn(kv), r)
            for kv, r in ((255, 0.10), (257, 0.10), (511, 0.10), (254, -0.20), (510, -0.20), (256, 0.30), (512, 0.30))]
    cls = "attention_prefill_unfused"
    t = _table(tmp_path, rows, {cls: {"k": 2, "shrink": False, "by_alignment": True}})
    # 509 is odd: its two nearest odd rows (511 and 255, the nearest in log2 distance) both carry +0.10
    assert t.correction(cls, "attention", _attn(509)).factor == pytest.approx(math.exp(0.10))
    assert t.correction(cls, "attention", _attn(384)).factor == pytest.approx(math.exp(0.30))
    # a length aligned to 4 has no comparable row
    assert t.correction(cls, "attention", _attn(260)) == \
        f"0 measured {cls} attention (kv_len aligned to 4) rows (the correction needs 2)"
    # without the alignment, 509's two nearest rows are 510 (-0.20) and 511 (+0.10)
    t2 = _table(tmp_path, rows, {cls: {"k": 2, "shrink": False}})
    # q_len and kv_len both differ: distance sqrt(2) x the octaves
    w510, w511 = 1 / (math.log2(510 / 509) * math.sqrt(2) + 0.25), 1 / (math.log2(511 / 509) * math.sqrt(2) + 0.25)
    assert t2.correction(cls, "attention", _attn(509)).factor == \
        pytest.approx(math.exp((-0.20 * w510 + 0.10 * w511) / (w510 + w511)))


def test_k_all_is_the_plain_mean_of_every_comparable_row(tmp_path):
    rows = [("attention_prefill_unfused", "attention", _attn(kv), r)
            for kv, r in ((255, 0.10), (1023, 0.40), (254, -0.20), (256, 0.30))]
    cls = "attention_prefill_unfused"
    t = _table(tmp_path, rows, {cls: {"k": "all", "shrink": False, "by_alignment": True}})
    assert t.correction(cls, "attention", _attn(511)).factor == pytest.approx(math.exp(0.25))  # mean of 0.10, 0.40
    t2 = _table(tmp_path, rows, {cls: {"k": "all", "shrink": False}})
    assert t2.correction(cls, "attention", _attn(511)).factor == pytest.approx(math.exp(0.15))  # all four


@pytest.mark.parametrize("spec, msg", [({"k": "some"}, "expected a positive integer (neighbours averaged) or 'all'"),
                                       ({"k": 8, "by_alignment": "yes"}, "by_alignment: got 'yes'"),
                                       ({"k": 8, "by_alignment": True}, "true only for an attention class")])
def test_bad_rule_forms_are_refused_by_name(tmp_path, spec, msg):
    rows = [("gemm_bf16", "gemm", {"m": 64, "n": 64, "k": 64}, 0.1)]
    with pytest.raises(HardwareError, match="gemm_bf16") as e:
        _table(tmp_path, rows, {"gemm_bf16": spec})
    assert msg in str(e.value)


def test_groups_of_builds_the_groups_a_table_file_reads(tmp_path):
    rows = [("gemm_bf16", "gemm", {"m": m, "n": 1024, "k": 512}, r) for m, r in ((64, 0.1), (128, -0.2))]
    mem = gpu_residuals.groups_of(rows)
    disk = _table(tmp_path, rows, {"gemm_bf16": {"k": 1, "shrink": False}}).groups
    assert mem.keys() == disk.keys()
    for key in mem:
        np.testing.assert_array_equal(mem[key][0], disk[key][0])
        np.testing.assert_array_equal(mem[key][1], disk[key][1])


def test_a_bad_rule_through_the_hardware_loader_names_the_calibration_file_and_field(tmp_path):
    """A review finding (round 11): the error named the hardware file and a field path that is not in it."""
    import yaml
    hw_dir = tmp_path / "hw"
    (hw_dir / "calibration").mkdir(parents=True)
    doc = yaml.safe_load(open("cosim/configs/hw/calibration/h200.yaml"))
    doc["residual_correction"]["classes"]["attention_prefill_unfused"]["by_alignment"] = "yes please"
    cal = hw_dir / "calibration" / "cal.yaml"
    cal.write_text(yaml.safe_dump(doc, sort_keys=False))
    shutil.copy("cosim/configs/hw/calibration/h200_residuals.csv", hw_dir / "calibration")
    (hw_dir / "mygpu.yaml").write_text(open("cosim/configs/hw/h200.yaml").read().replace(
        "calibration: calibration/h200.yaml", "calibration: calibration/cal.yaml"))
    with pytest.raises(HardwareError) as e:
        params_for(load_hw(str(hw_dir / "mygpu.yaml")))
    assert str(e.value).startswith(f"{cal.resolve()}: residual_correction.classes.attention_prefill_unfused."
                                   f"by_alignment: got 'yes please'; expected true or false")


def test_by_alignment_weights_and_the_range_rule_work_inside_the_alignment_class(tmp_path):
    cls = "attention_prefill_unfused"
    # odd rows at 255 (+0.1) and 1023 (+0.4), one row aligned to 8 at 4096 (outside the odd rows' range above 1023)
    rows = [(cls, "attention", _attn(kv), r) for kv, r in ((255, 0.10), (1023, 0.40), (4096, 0.0))]
    t = _table(tmp_path, rows, {cls: {"k": 2, "shrink": False, "by_alignment": True}})
    # 511: log2 distances sqrt(2) x log2(511/255), sqrt(2) x log2(1023/511) (q_len and kv_len both move)
    d0, d1 = math.sqrt(2) * math.log2(511 / 255), math.sqrt(2) * math.log2(1023 / 511)
    w0, w1 = 1 / (d0 + 0.25), 1 / (d1 + 0.25)
    assert t.correction(cls, "attention", _attn(511)).factor == pytest.approx(math.exp((0.1 * w0 + 0.4 * w1) /
                                                                                        (w0 + w1)))
    # 2047 is odd and above every odd row (the aligned 4096 row does not widen the odd rows' range)
    assert t.correction(cls, "attention", _attn(2047)) == \
        f"q_len, kv_len outside the measured {cls} attention (kv_len aligned to 1) rows' range"


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 2 ** 40))
def test_kv_alignment_property(n):
    a = int(gpu_residuals.kv_alignment(n))
    assert a in (1, 2, 4, 8) and n % a == 0
    assert a == 8 or (n // a) % 2 == 1


def test_a_rule_object_refuses_a_bad_k():
    with pytest.raises(ValueError, match="ClassRule.k: got 0"):
        gpu_residuals.ClassRule(0, False)


@pytest.mark.parametrize("hw_name", ["h200", "h100_sxm"])
def test_the_chosen_rules_are_the_ones_s20_and_s19_printed(hw_name):
    """CHOSEN carries each selection record's 'chosen' lines: the H200's attention classes from s20, the others from
    s19; the H100's every class from s29 (round 17: s26 re-run on its fit rows with fit suites 9 and 10)."""
    import re

    from cosim.calibrate.residuals import CHOSEN
    forms = {"A no correction": None, "B K = 8": (8, False, False), "C K = 15": (15, False, False),
             "E K = 8, same KV alignment": (8, False, True), "F K = 15, same KV alignment": (15, False, True),
             "G mean per kind and KV alignment": ("all", False, True), "H mean of the class": ("all", False, False)}
    records = ((("s29_fit10_residuals", lambda c: True),) if hw_name == "h100_sxm" else
               (("s19_residual_candidates", lambda c: not c.startswith("attention")),
                ("s20_residual_candidates", lambda c: c.startswith("attention"))))
    printed = {}
    for record, keep in records:
        text = open(f"validation/model_selection/{record}.txt").read()
        for m in re.finditer(rf"^{hw_name} (\w+): \d+ rows(?: \(\d+ of fit9\))?$(.*?)^chosen \(\w+, resolved gains only\): "
                             rf"([^\n]+)$", text, re.M | re.S):
            if keep(m.group(1)):
                printed[m.group(1)] = forms[m.group(3).strip()]
    assert {c: v for c, v in printed.items() if v is not None} == CHOSEN[hw_name]
    assert "attention_prefill_unfused" in printed and "gemm_bf16" in printed


def test_in_table_is_the_exact_shape_only(tmp_path):
    from cosim.validate import _in_table

    t = _table(tmp_path, [("gemm_bf16", "gemm", {"m": 64, "n": 128, "k": 256}, 0.1)], {"gemm_bf16": {"k": 1}})
    assert _in_table(t, "gemm_bf16", "gemm", {"m": 64, "n": 128, "k": 256})
    assert not _in_table(t, "gemm_bf16", "gemm", {"m": 65, "n": 128, "k": 256})
    assert not _in_table(t, "gemm_fp8", "gemm", {"m": 64, "n": 128, "k": 256})  # no rows of that class


def test_the_in_sample_note_counts_the_table_rows_and_is_left_out_for_rows_measured_after_it(tmp_path):
    from cosim.validate import validate

    own = validate("h100_sxm", "validation/h100_runs.csv", split="fit")
    note = [n for n in own.notes if n.startswith("in-sample:")]
    # every reliable fit row of the corrected classes is in the table: as many as the table holds (5,660 since round
    # 22 added fit11's and fit12's fp8 GEMMs, 3,095 before; as h100_sxm.yaml's residual_correction.rows says)
    rows = sum(len(r) for _, r in params_for(load_hw("h100_sxm")).residuals.groups.values())
    assert rows == 5660
    assert len(note) == 1
    assert f"; {rows:,} of the {rows:,} scored rows of its classes are reliable fit rows in it" in note[0]
    # every split: fast-accumulation and held-out rows that share a fit row's shape are not counted as table rows
    every = validate("h100_sxm", "validation/h100_runs.csv", split="all")
    scored = sum(every.classes[c]["analytical"]["n"] for c in {key[0] for key in params_for(
        load_hw("h100_sxm")).residuals.groups})  # every scored row of the corrected classes (11,538 in session 32)
    counted = f"; {rows:,} of the {scored:,} scored rows of its classes are reliable fit rows in it"
    assert sum(counted in n for n in every.notes) == 1
    # fit rows measured after the table was built (fit12's run with every K moved by 8: shapes no table row has) are out
    # of sample for the correction, so no in-sample note
    import csv
    import json
    import shutil
    run = tmp_path / "raw_later"
    run.mkdir()
    shutil.copy("validation/raw_h100_run25/env.json", run / "env.json")
    with open("validation/raw_h100_run25/ops.csv", newline="") as f:
        rows_in = list(csv.DictReader(f))
    for r in rows_in:
        d = json.loads(r["dims"])
        r["dims"] = json.dumps({**d, "k": d["k"] + 8})
    with open(run / "ops.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows_in[0]))
        w.writeheader()
        w.writerows(rows_in)
    fresh = validate("h100_sxm", str(run / "ops.csv"), split="fit")
    assert fresh.classes["gemm_fp8"]["analytical"]["n"] > 1400
    assert not any(n.startswith("in-sample:") for n in fresh.notes)
