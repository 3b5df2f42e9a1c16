"""Per-system collective calibration (hwmodels.collective_calibration, cosim.calibrate.collective_calibrate):
hand-checkable fits, provenance in every priced row, clear errors, and the pre-registered held-out score."""

from dataclasses import replace

import pytest
import yaml

from cosim.calibrate.calibration_fit import fit_calibration, single_line, uncalibrated
from cosim.calibrate.collective_calibrate import main
from hwmodels.collective_calibration import CollectiveCalibration, calibration_of_block
from hwmodels.collectives import collective_cost, estimate_collective
from hwmodels.spec import HardwareError
from hwmodels.system import load_system
from tests.system_edit import write_system
from workloads.ops import Op, TensorSpec

H100 = load_system("dgx_h100")
MIB = 1 << 20
# dgx_h100 NVLS algbw: 0.618 x 450 GB/s x (1 - 0.35 / 8) = 265.96 GB/s (collectives.efficiency.intra_node.nvls)
B_NVLS = 0.618 * 450e9 * (1 - 0.35 / 8)


def _law(a_us, S):  # a known alpha-beta law on the model's NVLS bandwidth
    return a_us * 1e-6 + S / B_NVLS


def test_two_points_of_a_known_law_recover_alpha_and_price_beta():
    pts = [(MIB, _law(20.0, MIB)), (2 * MIB, _law(20.0, 2 * MIB))]
    cal = fit_calibration(pts, H100, "allreduce", 8, "nvls", "one_process_per_gpu", "synthetic")
    assert cal.latency_s["nvls"] * 1e6 == pytest.approx(20.0, abs=1e-6)  # alpha back exactly
    assert cal.floor_s is None and cal.law == "replace"
    # beta stays the model's: 4 MiB costs 20 us + 4 MiB / 265.96 GB/s = 20 + 15.77 us
    c = collective_cost("allreduce", 4 * MIB, 8, 1, H100, "analytical", "nvls", calibration=cal)
    assert c.time_s * 1e6 == pytest.approx(20.0 + 4 * MIB / B_NVLS * 1e6, rel=1e-9)
    assert c.time_s * 1e6 == pytest.approx(35.77, abs=0.01)


def test_floor_is_the_median_of_the_small_rows_and_blend_weight_by_hand():
    pts = [(2048, 25e-6), (4096, 27e-6), (8192, 26e-6)]
    cal = fit_calibration(pts, H100, "allreduce", 8, "nvls", "single_process", "synthetic")
    assert cal.floor_s == pytest.approx(26e-6) and cal.latency_s == {}
    blend = CollectiveCalibration("s", "V", "one_process_per_gpu", {"nvls": 30e-6}, None, "blend", {"nvls": (16 * MIB, 1.5)})
    assert blend.weight(16 * MIB, "nvls") == pytest.approx(0.5) and blend.weight(16 * MIB, "ring") == 0.0
    # at S = half the intercept is halfway between the measured 30 us and the model's: t - i + (30 + i) / 2
    # (a calibrated algorithm is priced on its base line: nvls/simple, without the simple_small regime line)
    base = single_line(uncalibrated(H100))
    c0 = collective_cost("allreduce", 0, 8, 1, base, "analytical", "nvls")
    c = collective_cost("allreduce", 16 * MIB, 8, 1, H100, "analytical", "nvls", calibration=blend)
    raw = collective_cost("allreduce", 16 * MIB, 8, 1, base, "analytical", "nvls")
    assert c.algorithm == raw.algorithm == "nvls/simple"
    assert c.time_s == pytest.approx(raw.time_s - c0.time_s + (30e-6 + c0.time_s) / 2)


def test_blend_fit_recovers_alpha_from_its_own_law():
    cal0 = CollectiveCalibration("s", "V", "one_process_per_gpu", {"nvls": 33e-6}, None, "blend", {"nvls": (16 * MIB, 1.5)})
    pts = [(S, collective_cost("allreduce", S, 8, 1, H100, "analytical", "nvls", calibration=cal0).time_s)
           for S in (MIB, 2 * MIB)]
    cal = fit_calibration(pts, H100, "allreduce", 8, "nvls", "one_process_per_gpu", "s", blend={"nvls": (16 * MIB, 1.5)})
    assert cal.latency_s["nvls"] == pytest.approx(33e-6, rel=1e-9)


def test_provenance_reaches_every_priced_row():
    cal = CollectiveCalibration("my node all_reduce.txt", "V", "one_process_per_gpu", {"ring": 10e-6}, 20e-6)
    op = Op("ar", "allreduce", {"ranks": 8}, (TensorSpec("x", (512,), "bf16"),), (TensorSpec("y", (512,), "bf16"),))
    default = estimate_collective(op, H100, "analytical")
    assert default.details["calibration"] == "fitted model" and default.provenance.endswith(" collectives (fitted model)")
    sysc = replace(H100, calibration=calibration_of_block({
        "source": "my node all_reduce.txt", "status": "V", "launch": "one_process_per_gpu",
        "floor": "20 us", "latency": {"ring": "10 us"}}, "test"))
    got = estimate_collective(op, sysc, "analytical")
    assert got.details["calibration"] == cal.provenance == "calibrated from my node all_reduce.txt [V]"
    assert got.provenance.endswith(f"({cal.provenance})") and got.latency_s == pytest.approx(20e-6)  # the floor
    assert any("floor 20.00 us calibrated from my node" in n for n in got.notes)


def test_a_raw_calibration_block_in_collectives_is_refused_not_ignored():
    """A calibration is read from SystemSpec.calibration only: a block put into SystemSpec.collectives (the
    pre-session-8 way) would price the row uncalibrated without a word, so it is refused, naming the field."""
    block = {"source": "my node all_reduce.txt", "status": "V", "launch": "one_process_per_gpu",
             "floor": "20 us", "latency": {"ring": "10 us"}}
    stale = replace(H100, collectives={**H100.collectives, "calibration": block})
    with pytest.raises(HardwareError, match=r"dgx_h100.*SystemSpec.collectives\['calibration'\]: got a raw block.*"
                                            r"SystemSpec.calibration: load the file through hwmodels.system.load_system"):
        collective_cost("allreduce", 1024, 8, 1, stale, "analytical")
    # the same block set where it is read prices the row: the 20 us floor
    ok = replace(H100, calibration=calibration_of_block(block, "test"))
    assert collective_cost("allreduce", 1024, 8, 1, ok, "analytical").time_s == pytest.approx(20e-6)


def test_calibration_in_another_launch_mode_is_not_applied_and_says_so():
    cal = CollectiveCalibration("x", "V", "single_process", {"ring": 1e-6}, 1e-6)
    c = collective_cost("allreduce", 1024, 8, 1, H100, "analytical", calibration=cal)
    d = collective_cost("allreduce", 1024, 8, 1, H100, "analytical")
    assert c.time_s == d.time_s and c.calibration == "fitted model"
    assert any("measured in launch single_process" in n for n in c.notes)


def test_an_uncalibrated_row_says_what_priced_it():
    """dgx_h100 single_process floor: a + 8 b = 17.50 + 8 x 2.08 = 34.14 us at 8 GPUs (collectives.launch, re-chosen
    in session 9; docs/multi-device.md 5.1.8)."""
    from hwmodels.launch import launch_term
    assert H100.calibration is None
    floor_us = launch_term(H100, "single_process").overhead(8) * 1e6
    assert floor_us == pytest.approx(17.50 + 8 * 2.08, abs=1e-9) and round(floor_us, 2) == 34.14
    assert collective_cost("allreduce", 1024, 8, 1, H100, "analytical", launch="single_process").time_s * 1e6 == \
        pytest.approx(floor_us)  # the floor binds at 1 KB, so the price is the floor
    lab = lambda S, launch="one_process_per_gpu", level="analytical": collective_cost(  # noqa: E731
        "allreduce", S, 8, 1, H100, level, launch=launch).calibration
    assert lab(1024) == "fitted model"  # one process per GPU: no launch term, no floor
    assert lab(1024, "single_process") == "launch floor single_process"  # the floor binds at 1 KB
    assert lab(1 << 30, "single_process") == "fitted model"  # 1 GB takes ms: the floor does not bind
    assert lab(1024, "graph") == "fitted model + launch graph"  # additive
    assert lab(1024, "single_process", "roofline") == "roofline alpha-beta"  # no floor at the roofline
    assert collective_cost("allreduce", 1024, 1, 1, H100, "analytical").calibration == "none (one rank)"


def _yaml_with(tmp_path, block):
    return write_system(tmp_path, lambda c: c.__setitem__("calibration", block))


def test_a_row_says_calibrated_only_where_the_calibration_priced_it():
    """A calibration of NVLS alone (no floor) leaves a ring-priced small message as the model
    has it: that row keeps the default label; an NVLS-priced one carries the calibration."""
    cal = CollectiveCalibration("nvls only", "V", "one_process_per_gpu", {"nvls": 30e-6}, None)
    small = collective_cost("allreduce", 1024, 8, 1, H100, "analytical", calibration=cal)
    plain = collective_cost("allreduce", 1024, 8, 1, H100, "analytical")
    assert not small.algorithm.startswith("nvls") and small.time_s == plain.time_s
    assert small.calibration == "fitted model"
    forced = collective_cost("allreduce", 1024, 8, 1, H100, "analytical", "nvls", calibration=cal)
    assert forced.calibration == "calibrated from nvls only [V]"


def test_system_file_carries_a_calibration(tmp_path):
    p = _yaml_with(tmp_path, {"source": "node7 nccl-tests", "status": "V", "launch": "single_process",
                              "floor": "26.5 us", "latency": {"nvls": "36.2 us"},
                              "law": {"form": "blend", "half": {"nvls": "16 MiB"}, "p": {"nvls": 1.5}}})
    s = load_system(p)
    # parsed once, at load: the SystemSpec carries it, the collectives mapping does not (one calibration per system)
    assert s.calibration.floor_s == pytest.approx(26.5e-6) and "calibration" not in s.collectives
    assert uncalibrated(s).calibration is None
    c = collective_cost("allreduce", 1024, 8, 1, s, "analytical", "nvls", launch="single_process")
    assert c.calibration == "calibrated from node7 nccl-tests [V]"
    assert c.time_s * 1e6 == pytest.approx(36.21, abs=0.05)  # 36.2 us + 1 KB at 266 GB/s, above the 26.5 us floor


def test_bad_calibration_block_is_one_clear_error(tmp_path):
    p = _yaml_with(tmp_path, {"source": "n", "status": "X", "launch": "single_process", "floor": "26 us"})
    with pytest.raises(HardwareError, match=r"collectives\.calibration\.status: got 'X'; expected one of"):
        load_system(p)
    p = _yaml_with(tmp_path, {"source": "n", "status": "V", "launch": "single_process", "floor": "26 GB"})
    with pytest.raises(HardwareError, match=r"collectives\.calibration\.floor"):
        load_system(p)


_TABLE = """# nThread 1 nGpus 8 minBytes 1024 maxBytes 4194304 step: 2(factor) warmup iters: 5 iters: 20
# Collective test starting: all_reduce_perf
#       size         count      type   redop    root     time   algbw   busbw #wrong     time   algbw   busbw #wrong
{rows}
# Avg bus bandwidth    : 1.0
"""


def _row(S, t_us):
    bw = S / t_us / 1e3
    return f"{S:12d} {S // 4:12d}     float     sum      -1 {t_us:8.2f} {bw:7.2f} {bw * 1.75:7.2f}      0 {t_us:8.2f} {bw:7.2f} {bw * 1.75:7.2f}      0"


def test_cli_fits_from_an_nccl_tests_file(tmp_path, capsys):
    sizes = [2048, 4096, 8192, MIB, 2 * MIB]
    times = [25.0, 26.0, 27.0] + [round(_law(20.0, S) * 1e6, 2) for S in sizes[3:]]
    f = tmp_path / "all_reduce.txt"
    f.write_text(_TABLE.format(rows="\n".join(_row(S, t) for S, t in zip(sizes, times))))
    assert main([str(f), "--system", "dgx_h100", "--algorithm", "nvls", "--law", "replace"]) == 0
    out = yaml.safe_load(capsys.readouterr().out)["calibration"]
    assert out["launch"] == "single_process" and out["floor"] == "26.00 us" and out["status"] == "V"
    assert out["latency"]["nvls"] == "20.00 us"  # the 2-decimal times keep alpha to 0.01 us
    from hwmodels.collective_calibration import calibration_of_block
    back = calibration_of_block(out, "printed")  # the printed block is a valid system-file block
    assert back.floor_s == pytest.approx(26e-6) and back.latency_s["nvls"] == pytest.approx(20e-6)


def test_cli_malformed_file_is_one_error_line(tmp_path, capsys):
    f = tmp_path / "bad.txt"
    f.write_text(_TABLE.format(rows=_row(2048, 25.0) + "\n" + _row(4096, 26.0).replace("26.00", "2x.00", 1)))
    assert main([str(f), "--system", "dgx_h100"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and f"{f}:5: field oop_time: got '2x.00'" in err[0]


def test_heldout_score_pinned():
    # validation/collective_calibration_rules.md; benchmarks/results/collective_calibration_s6.md
    from cosim.calibrate.calibration_law_fit import chosen_blend
    from cosim.calibrate.collective_holdout_s6 import score_calibrated
    assert chosen_blend() == {"nvls": (16.0 * MIB, 1.5)}
    rows, cals = score_calibrated()
    assert cals["azure_nd_h100_v5"].floor_s * 1e6 == pytest.approx(26.55)  # median of 25.6, 26.55, 27.05
    assert len(rows) == 32 and sum(abs(r.err_pct) <= 15 for r in rows) == 30
    kept = [r for r in rows if not r.excluded]
    assert len(kept) == 30 and [(r.row.source, r.row.size_bytes) for r in kept if abs(r.err_pct) > 15] == \
        [("azure_nd_h100_v5", 16384)]
    assert all(r.calibration.startswith("calibrated from azure_nd_h") for r in rows)
