"""Session-16 candidate terms (issue 11 round 9; validation/model_selection/s16_candidates.py): the register block
softmax (gpu_library.softmax_reg, ew.softmax_reg.mult) and cuBLASLt's fp8 split-K rule (gemm.fp8_splitk_rule). Each is
off unless a calibration carries it, so the committed calibrations price exactly as before."""
import dataclasses

import numpy as np
import pytest
from hypothesis import given, strategies as st

from cosim.calibrate import fit
from hwmodels import gpu, gpu_library
from hwmodels.gpu import params_for
from hwmodels.spec import load_hw


def test_register_softmax_widths():
    # ATen SoftMax.cu: a 1024-thread block holds < 10 elements per thread in registers; <= 2048 is the warp kernel
    got = gpu_library.softmax_reg([2048, 2049, 3072, 9216, 9217, 10240])
    assert got.tolist() == [False, True, True, True, False, False]


@given(st.integers(1, 300000))
def test_register_softmax_is_the_band_2049_9216(cols):
    assert bool(gpu_library.softmax_reg(cols)) == (2048 < cols <= 9216)


def test_fp8_split_rule():
    assert gpu_library.fp8_no_split([16, 128, 129, 16, 16], [4096, 2049, 4096, 2048, 2049]).tolist() == \
        [False, False, True, True, False]


def _with(P, **kv):
    return dataclasses.replace(P, values={**P.values, **kv})


def test_off_by_default_and_committed_calibrations_lack_them():
    for hw in ("h200", "h100_sxm"):
        P = params_for(load_hw(hw))
        assert "ew.softmax_reg.mult" not in P.values and "gemm.fp8_splitk_rule" not in P.values
    for name, terms in fit.TERM_SETS.items():
        assert terms["softmax_reg"] is False and terms["gemm_fp8_splitk_rule"] is False, name


def test_register_softmax_prices_one_pass_with_its_own_multiplier():
    P = params_for(load_hw("h200"))
    cols, rows = 4725.0, 11410.0  # unaligned: multi-pass in the current form
    nbytes = 2 * 2 * cols * rows
    _, floor, stream, fixed, waves, p = gpu.ew_terms(P, "softmax", nbytes, 1, cols, rows)
    Q = _with(P, **{"ew.softmax_reg.mult": 3.0})
    _, floor2, stream2, fixed2, waves2, _ = gpu.ew_terms(Q, "softmax", nbytes, 1, cols, rows)
    assert stream2 == pytest.approx(3.0 * nbytes / P["ew.bw"])  # one pass at its own multiplier
    assert waves2 == pytest.approx(waves / P["ew.softmax.multipass"])  # the multi-pass factor is gone
    assert (floor2, fixed2) == (floor, fixed)
    # outside the band nothing changes: a 10,241-element unaligned row stays multi-pass at softmax's multiplier
    a = gpu.ew_terms(P, "softmax", nbytes, 1, 10241.0, rows)
    b = gpu.ew_terms(Q, "softmax", nbytes, 1, 10241.0, rows)
    assert np.allclose(a[1:], b[1:])


def test_fp8_split_rule_takes_split_k_off_wide_m():
    P = params_for(load_hw("h200"))
    hw = load_hw("h200")
    P0 = _with(P, **{"gemm.stream_k": 0.0})
    m, n, k = np.array([256.0]), np.array([1024.0]), np.array([16384.0])
    _, d0 = gpu.gemm_time(P0, m, n, k, np.ones(1), hw.peak("fp8_e4m3"), 1.0, 2.0, "fp8_e4m3", details=True)
    assert d0["tile"][0, 3] > 1  # the current form splits this one (few tiles, deep K)
    P1 = _with(P0, **{"gemm.fp8_splitk_rule": 1.0})
    _, d1 = gpu.gemm_time(P1, m, n, k, np.ones(1), hw.peak("fp8_e4m3"), 1.0, 2.0, "fp8_e4m3", details=True)
    assert d1["tile"][0, 3] == 1 and d1["t_reduce"][0] == 0
    # bf16 is priced as before
    t_a = gpu.gemm_time(P0, m, n, k, np.ones(1), hw.peak("bf16"), 2.0, 2.0, "bf16")
    t_b = gpu.gemm_time(P1, m, n, k, np.ones(1), hw.peak("bf16"), 2.0, 2.0, "bf16")
    assert t_b[0] == t_a[0]
