"""Closed forms of the systolic core, checked by hand and by properties."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from hwmodels.systolic import (SystolicError, conv_cycles, conv_output_size, dram_traffic,
                               gemm_cycles, gemm_cycles_array)


@pytest.mark.parametrize("df, scalesim", [("os", 93), ("ws", 125), ("is", 125)])
def test_32cube_on_32x32(df, scalesim):
    # os: one fold of K + R + C - 2 = 32 + 62 = 94 cycles; SCALE-Sim reports the last index 93.
    # ws/is: 2R + C + T - 2 = 64 + 32 + 32 - 2 = 126 -> 125.
    assert gemm_cycles(32, 32, 32, 32, 32, df, compat="scalesim").compute_cycles == scalesim
    assert gemm_cycles(32, 32, 32, 32, 32, df).compute_cycles == scalesim + 1


def test_33cube_four_folds():
    assert gemm_cycles(33, 33, 33, 32, 32, "os", compat="scalesim").compute_cycles == 4 * 95 - 1
    o = gemm_cycles(33, 33, 33, 32, 32, "ws", compat="scalesim")
    assert o.compute_cycles == 4 * 127 - 1
    # used PEs over the 4 folds: 32*32 + 32*1 + 1*32 + 1 = 33^2 -> 33^2 / (4 * 1024)
    assert o.mapping_efficiency == pytest.approx(100 * 33 * 33 / (4 * 1024))


def test_decode_gemv_on_128():
    o = gemm_cycles(1, 4096, 4096, 128, 128, "os", compat="scalesim")
    assert o.folds == 32 and o.cycles_per_fold == 4350
    assert o.compute_cycles == 139_199
    assert o.mapping_efficiency == pytest.approx(100 / 128)


def test_os_ofmap_write_quirk_only_in_compat():
    # 4 folds of 8x8 each on an 8x8 array: scalesim adds folds*(R+C) = 4*16 words.
    assert gemm_cycles(16, 16, 5, 8, 8, "os", compat="scalesim").ofmap_sram_writes == 256 + 64
    assert gemm_cycles(16, 16, 5, 8, 8, "os").ofmap_sram_writes == 256


def test_ws_partial_sums_read_back_in_default():
    # K = 20 on 8 rows: 3 K-folds, each writes M*N partial sums; 2 of them are read back.
    o = gemm_cycles(4, 8, 20, 8, 8, "ws")
    assert o.ofmap_sram_writes == 3 * 32 and o.ofmap_sram_reads == 2 * 32
    assert gemm_cycles(4, 8, 20, 8, 8, "ws", compat="scalesim").ofmap_sram_reads == 0


def test_compute_util_fold_length():
    # ws on 8x8, M = 10: timeline 2*8 + 8 + 10 - 2 = 32 cycles; scalesim divides by 32 + 7.
    d = gemm_cycles(10, 8, 8, 8, 8, "ws")
    s = gemm_cycles(10, 8, 8, 8, 8, "ws", compat="scalesim")
    assert d.compute_utilization == pytest.approx(100 * 10 / 32)
    assert s.compute_utilization == pytest.approx(100 * 10 / 39)


def test_conv_output_rule():
    # 32x32 input, 7x7 filter, stride 2: SCALE-Sim says 14 (ceil), frameworks 13.
    assert conv_output_size(32, 7, 2, compat="scalesim") == 14
    assert conv_output_size(32, 7, 2) == 13
    o = conv_cycles(32, 32, 7, 7, 3, 16, 2, rows=8, cols=8, dataflow="os", compat="scalesim")
    assert (o.m, o.n, o.k) == (196, 16, 147)


def test_errors_name_the_field():
    with pytest.raises(SystolicError, match="dataflow.*'rs'"):
        gemm_cycles(4, 4, 4, 8, 8, "rs")
    with pytest.raises(SystolicError, match="rows"):
        gemm_cycles(4, 4, 4, 0, 8, "os")
    with pytest.raises(SystolicError, match="compat"):
        gemm_cycles(4, 4, 4, 8, 8, "os", compat="timeloop")
    with pytest.raises(SystolicError, match="filter 5 larger"):
        conv_cycles(4, 4, 5, 5, 1, 1, rows=8, cols=8)


dims = st.integers(1, 3000)
arr = st.sampled_from([1, 3, 8, 16, 32, 128])


@settings(max_examples=200, deadline=None)
@given(dims, dims, dims, arr, arr, st.sampled_from(["os", "ws", "is"]))
def test_properties(m, n, k, r, c, df):
    d = gemm_cycles(m, n, k, r, c, df)
    s = gemm_cycles(m, n, k, r, c, df, compat="scalesim")
    assert d.compute_cycles == s.compute_cycles + 1
    # the stall-free schedule never beats the ideal MACs / PEs
    assert d.compute_cycles * r * c >= m * n * k
    assert 0 < d.mapping_efficiency <= 100 + 1e-9
    # in hardware counts, compute utilisation is exactly overall utilisation without stalls
    assert d.compute_utilization == pytest.approx(d.overall_utilization, rel=1e-12)
    assert s.compute_utilization <= d.compute_utilization * (1 + 1e-9)
    assert abs(s.mapping_efficiency - d.mapping_efficiency) < 1e-7
    v = gemm_cycles_array(np.array([m]), np.array([n]), np.array([k]), r, c, df)
    assert int(v.compute_cycles[0]) == d.compute_cycles
    assert v.filter_sram_reads[0] == d.filter_sram_reads


@settings(max_examples=100, deadline=None)
@given(dims, dims, dims, arr, arr, st.sampled_from(["os", "ws", "is"]),
       st.floats(1e2, 1e8))
def test_dram_traffic_at_least_footprint(m, n, k, r, c, df, cap):
    t = dram_traffic(m, n, k, r, c, df, cap, cap, cap)
    assert t.ifmap_dram_reads >= m * k and t.filter_dram_reads >= k * n
    assert t.ofmap_dram_writes >= m * n
    big = dram_traffic(m, n, k, r, c, df, 1e12, 1e12, 1e12)
    assert big.total == m * k + k * n + m * n
    assert big.to_dict()["total"] == big.total


def test_overlap_hand_numbers():
    # decode GEMV 1x4096x4096, ws on 128x128: 32 x 32 = 1024 folds of T = 1.
    # no overlap: 1024 x (2*128 + 128 + 1 - 2) = 392,192; overlap: preload 128, then a
    # fold every max(1, 128) = 128 cycles, last fold 1 + 128 + 128 - 2.
    assert gemm_cycles(1, 4096, 4096, 128, 128, "ws").compute_cycles == 1024 * 383
    o = gemm_cycles(1, 4096, 4096, 128, 128, "ws", overlap=True)
    assert o.compute_cycles == 128 + 1023 * 128 + 1 + 254
    assert o.compute_utilization == pytest.approx(o.overall_utilization)
    with pytest.raises(SystolicError, match="overlap"):
        gemm_cycles(1, 8, 8, 8, 8, "ws", compat="scalesim", overlap=True)


@settings(max_examples=150, deadline=None)
@given(dims, dims, dims, arr, arr, st.sampled_from(["os", "ws", "is"]))
def test_overlap_never_slower_and_equal_for_one_fold(m, n, k, r, c, df):
    plain = gemm_cycles(m, n, k, r, c, df)
    ov = gemm_cycles(m, n, k, r, c, df, overlap=True)
    assert ov.compute_cycles <= plain.compute_cycles
    assert ov.compute_cycles * r * c >= m * n * k
    if plain.folds == 1:
        assert ov.compute_cycles == plain.compute_cycles
    v = gemm_cycles_array([m], [n], [k], r, c, df, overlap=True)
    assert int(v.compute_cycles[0]) == ov.compute_cycles


def test_gemm_cycles_is_a_dataclass_with_to_dict():
    """One 32x32x32 GEMM on a 32x32 os array: 1 fold of 32 + 32 + 32 - 2 = 94 cycles."""
    o = gemm_cycles(32, 32, 32, 32, 32, "os", stall_cycles=6)
    assert (o.folds, o.cycles_per_fold, o.compute_cycles, o.total_cycles, o.macs) == (1, 94, 94, 100, 32 ** 3)
    d = o.to_dict()
    assert d["total_cycles"] == 100 and "ofmap_h" not in d and d["dataflow"] == "os"
    c = conv_cycles(32, 32, 7, 7, 3, 16, 2, rows=8, cols=8)
    assert (c.ofmap_h, c.ofmap_w) == (13, 13) and c.to_dict()["ofmap_h"] == 13

