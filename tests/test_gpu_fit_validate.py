"""Fit and validate the analytical GPU model from the committed H100 CSVs (no GPU needed),
and hold the held-out errors to the targets of issue 4."""

import argparse
import sys
from pathlib import Path

import pytest
import yaml

from cosim.calibrate import dataset
from cosim.calibrate.fit import fit_to_file, lm_fit
from cosim.validate import validate
from hwmodels import gpu
from hwmodels.gpu_calibration import parse_section
from workloads.io import InputError

ROOT = Path(__file__).resolve().parents[1]
VAL = ROOT / "validation"
OPS = VAL / "h100_ops.csv"


@pytest.fixture(scope="module")
def held_out():
    return validate("h100_sxm", OPS, split="test")


def test_split_shares_no_shape_between_fit_and_test():
    meas = [m for m in dataset.load_ops(OPS) if m.op is not None]
    key = lambda m: (m.op.kind, m.op.compute_fmt, tuple(sorted(m.op.dims.items())))  # noqa: E731
    fit = {key(m) for m in meas if m.split == "fit"}
    test = {key(m) for m in meas if m.split == "test"}
    assert len(fit) > 500 and len(test) > 500
    assert not fit & test


def _split_residual_block(text):
    """(the calibration text up to its residual_correction block, the block parsed). The block is the file's last
    top-level key: a fresh fit writes it last (fit_to_file), `cosim calibrate --residuals-only` appends it."""
    head, sep, block = text.partition("\nresidual_correction:\n")
    assert sep and all(line.startswith(" ") for line in block.splitlines() if line.strip()), "block is not last"
    return head + "\n", yaml.safe_load("residual_correction:\n" + block)["residual_correction"]


@pytest.mark.slow  # ~4-6 min on 2 cores: a full re-fit over every fit row of validation/h100_runs.csv
def test_fit_reproduces_the_committed_calibration(tmp_path):
    """The committed H100 calibration is the session-16 re-fit (validation/h100_refit_s15.py; the command its header
    names): the lent-H100 fit suites (fit suites 9 and 10 among them since rounds 15 and 16, session 24), the H200 term
    set (since round 14, session 23, plus the in-stream speedup: r14_h100; since round 18, session 26, plus FA2
    prefill priced as the kernel FlashAttention-2 runs: r18_h100; since round 22, session 32, with GEMM tiles from the
    nvjet menus and fit suites 11 and 12 among its fit rows: r22_h100), the session-9 energy loops priced on FA2.
    Since round 10
    (session 18) it carries a residual_correction block written by `cosim calibrate --residuals-only` on those
    parameters (the re-fit is not repeated for it): the parameters are compared byte for byte without the block, and
    the block and its table are what residuals.build writes for the re-fitted parameters (fit_to_file calls it)."""
    out = tmp_path / "cal.yaml"
    runs = "validation/h100_runs.csv"  # relative, as the committed file names it (tests run from the root)
    section, rep = fit_to_file(runs, out, "h100_sxm", "validation/h100_energy.csv", runs, runs, "r22_h100", "fa2")
    committed_text = (ROOT / "cosim/configs/hw/calibration/h100_sxm.yaml").read_text()
    fresh_head, fresh_block = _split_residual_block(out.read_text())
    committed_head, committed_block = _split_residual_block(committed_text)
    assert fresh_head == committed_head  # every byte but the residual block, header (the re-fit command) included
    # the block names its table beside the calibration (cal_residuals.csv here); the rest is the committed block
    assert fresh_block == section["residual_correction"] == {**committed_block, "table": "cal_residuals.csv"}
    committed_table = (ROOT / "cosim/configs/hw/calibration/h100_sxm_residuals.csv").read_text()
    assert (tmp_path / "cal_residuals.csv").read_text() == committed_table
    # 4.27 / 13.19 before fit suite 9 joined the fit rows (round 15, session 24: its few-tile long-K GEMMs); 4.74 / 15.2
    # before round 22 (session 32: the nvjet menus, fit11 and fit12's 5,137 GEMM rows of the held-out distribution)
    assert rep["quality"]["gemm"]["median_abs_pct"] == 5.11 and rep["quality"]["gemm"]["p90_abs_pct"] == 14.72
    assert section["provenance"]["date"] == "2026-12-05"
    assert "torch 2.11.0+cu130" in section["provenance"]["software"]


def test_committed_calibration_header_is_its_refit_command():
    text = (ROOT / "cosim/configs/hw/calibration/h100_sxm.yaml").read_text()
    assert ("#   cosim calibrate --fit-only --hw h100_sxm --measurements validation/h100_runs.csv --energy "
            "validation/h100_energy.csv --terms r22_h100 --energy-backend fa2\n") in text
    prov = yaml.safe_load(text)["provenance"]
    assert prov["measurements"] == {"ops": "validation/h100_runs.csv", "energy": "validation/h100_energy.csv",
                                    "e2e": "validation/h100_runs.csv", "env": "validation/h100_runs.csv"}
    assert "attention priced with the fa2 backend they ran (energy_backend)" in prov["fit"]


def test_heldout_op_errors_meet_the_targets(held_out):
    a = held_out.classes["all"]["analytical"]
    r = held_out.classes["all"]["roofline"]
    assert a["n"] > 500
    assert a["median"] <= 8.0 and a["p90"] <= 20.0  # issue 4 acceptance, across all op classes
    assert r["median"] > 4 * a["median"]  # the roofline on the same rows, for contrast
    # the H100 runs pinned FlashAttention-2 (its default-backend attention was not measured)
    for cls in ("gemm_bf16", "gemm_fp8", "attention_prefill_fa2", "attention_decode_fa2", "elementwise"):
        assert held_out.classes[cls]["analytical"]["median"] <= 8.0, cls


def _summ(rows, phase, mode):
    from cosim.validate import ape, summarize
    g = [x for x in rows if x["phase"] == phase and x["mode"] == mode]
    return summarize(ape([x["analytical_s"] for x in g], [x["measured_s"] for x in g]))


def test_heldout_end_to_end(held_out):
    rows = held_out.e2e
    assert {r["model"] for r in rows} == {"qwen2_5_7b", "llama2_13b"}  # models never used by the fit
    dec = _summ(rows, "decode", "graph")
    pre = _summ(rows, "prefill", "eager")
    assert dec["n"] == 38 and dec["median"] <= 10.0 and dec["p90"] <= 10.0
    assert pre["n"] == 38 and pre["median"] <= 10.0


def test_heldout_energy(held_out):
    from cosim.validate import ape, summarize
    e = held_out.energy
    s = summarize(ape([x["analytical_j"] for x in e], [x["measured_j"] for x in e]))
    # issue 4's goal, median and p90 <= 20 %: the session-9 fit met it (7.3 / 19.97); the session-16 re-fit scores
    # 9.0 / 20.01, missing p90 by 0.01 point (its energy coefficients come from the same session-9 loops, priced on
    # the re-fitted latency model); these loops are seen data, nothing was chosen on them; published as measured.
    # 9.0 / 20.01 -> 9.1 / 20.01 (round 10, session 18: the measured-residual correction as s19 chose it moves the
    # latencies the energy is priced on; a seen suite re-scored, nothing chosen on it): p90 still misses the 20 %
    # goal, by 0.01. 9.1 / 20.01 -> 9.5 / 19.52 (round 13, session 21: the re-fit moves the elementwise latencies and
    # byte multipliers the loops are priced on: the RMSNorm loop -16 -> -20 % (ew.rmsnorm.mult fell as the re-read took
    # the wide rows; the re-read's bytes count), the softmax loop -21 -> -18 %, add -7 -> -4 %); a seen suite
    # re-scored, nothing chosen on it; p90 within the goal again. 9.5 / 19.52 -> 10.0 / 19.52 (round 14, session 23:
    # the loops' in-stream latencies run launch.stream_speedup faster, so their static energy is less; seen, nothing
    # chosen on it). 10.0 / 19.52 -> 9.9 / 19.52 (round 22, session 32: the re-fit's GEMM prices and in-stream speedup;
    # seen, nothing chosen on it)
    assert s["n"] == 16 and round(s["median"], 1) == 9.9 and round(s["p90"], 2) == 19.52


def test_unreliable_rows_are_counted_not_hidden(held_out):
    assert any("excluded rows whose repeats spread" in n for n in held_out.notes)
    every = validate("h100_sxm", OPS, split="test", include_unreliable=True)
    assert every.classes["all"]["analytical"]["n"] > held_out.classes["all"]["analytical"]["n"]


def test_reliability_rule():
    assert dataset.reliable({"median_s": "10", "p10_s": "9", "p90_s": "11"})
    assert not dataset.reliable({"median_s": "60e-6", "p10_s": "37e-6", "p90_s": "90e-6"})


def test_lm_fit_recovers_a_known_curve():
    import numpy as np
    x = np.linspace(1, 10, 40)
    y = 3.0 * x ** 1.5

    def resid(p):
        return np.log(np.exp(p[0]) * x ** np.exp(p[1]) / y)

    p, r = lm_fit(resid, [0.0, 0.0])
    assert np.exp(p) == pytest.approx([3.0, 1.5], rel=1e-4)


def test_bad_dims_name_the_row():
    with pytest.raises(InputError, match="row 7: dims"):
        dataset.op_from_row({"kind": "gemm", "dims": "{m: 1"}, "ops.csv: row 7")


def test_missing_measurements_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        dataset.load_ops(tmp_path / "nope.csv")


def test_cli_validate(tmp_path, capsys):
    from cosim.cli import validate as cli
    ns = argparse.Namespace(hw="h100_sxm", measurements=str(OPS), energy=None, e2e=None, split="test",
                            include_unreliable=False, plot=str(tmp_path / "s.png"), json=str(tmp_path / "v.json"))
    assert cli.run(ns) == 0
    out = capsys.readouterr().out
    assert "ALL op classes" in out and "End to end" in out and (tmp_path / "s.png").stat().st_size > 10000
    import json
    doc = json.loads((tmp_path / "v.json").read_text())  # the ValidationResult's to_dict, format unchanged
    assert {"hw", "split", "ops", "classes", "notes", "provenance", "e2e"} <= set(doc) and doc["split"] == "test"
    assert doc["classes"]["all"]["analytical"]["n"] == len(doc["ops"])
    ns.measurements = str(tmp_path / "missing_ops.csv")
    assert cli.run(ns) == 2
    assert "error:" in capsys.readouterr().err


def test_cli_calibrate_fit_only(tmp_path, capsys):
    from cosim.cli import calibrate as cli
    ns = argparse.Namespace(hw="h100_sxm", out_dir=str(VAL), measurements=str(OPS),
                            calibration=str(tmp_path / "c.yaml"), fit_only=True, variant="default", sections="", run_name=None)
    assert cli.run(ns) == 0
    assert (tmp_path / "c.yaml").is_file() and "gemm" in capsys.readouterr().out


def test_microbench_needs_torch(monkeypatch):
    from cosim.calibrate import microbench
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(SystemExit, match=r"cosim\[torch\]"):
        microbench._lazy_torch()


def test_merge_run_tags_and_appends(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "ops.csv").write_text("section,kind,median_s\ngemm,gemm,1e-5\n")
    (raw / "env.json").write_text('{"device_name": "X"}')
    ops = tmp_path / "x_ops.csv"
    assert dataset.merge_run(raw, ops, "heldout", "r1") == {str(ops): 1}
    dataset.merge_run(raw, ops, "default", "r2")
    lines = ops.read_text().splitlines()
    assert lines[0] == "suite,run,section,kind,median_s" and lines[1].startswith("heldout,r1,") and len(lines) == 3
    assert '"r1"' in (tmp_path / "x_env.json").read_text()
    (raw / "ops.csv").write_text("other,cols\n1,2\n")
    with pytest.raises(InputError, match="header"):
        dataset.merge_run(raw, ops, "default", "r3")


def test_simulate_uses_the_calibration_for_a_held_out_model():
    # Llama-2-13B decode, batch 1, 128 cached tokens + 1: measured 12.05 ms per step as a
    # CUDA graph (validation/h100_e2e.csv, run2); the model was never fitted on Llama-2-13B.
    import cosim
    from hwmodels.spec import load_hw
    rep = cosim.simulate(cosim.build_trace("llama2_13b", phase="decode", batch=1, seq=129), load_hw("h100_sxm"),
                         level="analytical")
    assert rep.total_latency_s == pytest.approx(12.05e-3, rel=0.10)
