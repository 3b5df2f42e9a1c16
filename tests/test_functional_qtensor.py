"""Packed storage: real bit-packing, byte accounting, round trips, save/load."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from cosim.functional import QTensor, decode, encode, quantize
from cosim.functional.packing import pack_bits, unpack_bits
from workloads.formats import get_format

F32 = np.float32


def test_fp4_nibbles_and_e8m0_bytes():
    # block [1, -3, 6, 0, ...]: scale 2^0 -> E8M0 byte 127; FP4 codes 0010, 1101, 0111, 0000
    x = np.zeros(32, F32)
    x[:4] = [1.0, -3.0, 6.0, 0.0]
    q = encode(x, "mxfp4")
    assert q.scales.tolist() == [127]
    assert q.codes[:2].tolist() == [0b1101_0010, 0b0000_0111]  # first code in the low nibble
    assert q.nbytes == 16 + 1 == 32 * 4.25 / 8


def test_mxint8_twos_complement_and_nan_scale():
    x = np.array([[1.0, -1.0, 0.5, -127 / 64] + [0] * 28, [np.nan] + [1.0] * 31], F32)
    q = encode(x, "mxint8")
    assert q.codes[:4].tolist() == [64, 256 - 64, 32, 256 - 127]
    assert q.scales.tolist() == [127, 255]  # 0xFF: the E8M0 NaN
    y = decode(q)
    assert np.isnan(y[1]).all() and y[0, :4].tolist() == [1.0, -1.0, 0.5, -127 / 64]


def test_bit_packing_odd_widths():
    rng = np.random.default_rng(0)
    for bits in (1, 2, 3, 5, 6, 7, 9, 12):
        codes = rng.integers(0, 2 ** bits, size=101)
        buf = pack_bits(codes, bits)
        assert buf.nbytes == -(-101 * bits // 8)
        np.testing.assert_array_equal(unpack_bits(buf, bits, 101), codes)
    assert pack_bits(np.array([1, 0, 1, 1, 0, 0, 0, 1, 1]), 1).tolist() == [0b1000_1101, 1]


@pytest.mark.parametrize("fmt", ["mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e3m2", "mxfp6_e2m3", "mxfp4", "mxint8",
                                 "mxint4", "mxint2", "nvfp4", "msfp12", "msfp16", "bfp_m5_b32", "mx4", "mx6",
                                 "mx9", "int4_g128", "int4_g128_zp", "int4_g128_symz", "int3_g64_symz", "int8_g32", "int3_g64_zp", "bf16", "fp16",
                                 "fp8_e4m3", "fp8_e5m2", "fp6_e2m3", "fp4_e2m1", "int8", "fp32"])
def test_nbytes_equals_bits_per_element(fmt, tmp_path):
    f = get_format(fmt)
    x = np.random.default_rng(1).standard_normal((8, 256)).astype(F32)
    q = encode(x, fmt)
    tensor = 4 if (f.tensor_scale_bits or f.family == "int") else 0  # one fp32 per tensor
    assert q.nbytes == x.size * f.bits_per_element / 8 + tensor
    np.testing.assert_array_equal(decode(q), quantize(x, fmt, saturate=True if not f.has_inf and
                                                      f.family == "float" else None))
    q.save(tmp_path / "q.npz")
    q2 = QTensor.load(tmp_path / "q.npz")
    assert q2.nbytes == q.nbytes and q2.shape == q.shape
    np.testing.assert_array_equal(decode(q2), decode(q))


def test_symz_stores_its_constant_zeros():
    # int4_g128_symz on 8 x 256: 16 groups; codes 8*256*4/8 = 1024 B, fp16 scales 16*2 = 32 B,
    # the stored zeros 16 * 4 bits = 8 B, each 2^(4-1) = 8 (two per byte: 0x88) -> 1064 B
    x = np.random.default_rng(2).standard_normal((8, 256)).astype(F32)
    q = encode(x, "int4_g128_symz")
    assert q.zero_points.tolist() == [0x88] * 8
    assert q.nbytes == 1024 + 32 + 8 == x.size * (4 + (16 + 4) / 128) / 8
    # GPTQ's layout: unsigned codes n + 8 (all in 1..15 for symmetric n in -7..7), read back against the zeros
    assert set(np.unique(unpack_bits(q.codes, 4, x.size)).tolist()) <= set(range(1, 16))
    np.testing.assert_array_equal(decode(q), quantize(x, "int4_g128"))


RT = ["mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e3m2", "mxfp6_e2m3", "mxfp4", "mxint8", "mxint4", "mxint2", "nvfp4",
      "msfp12", "mx6", "mx9", "int4_g32", "int4_g32_zp", "int4_g32_symz", "bf16", "fp16", "fp8_e5m2", "fp8_e4m3", "fp4_e2m1"]


@settings(max_examples=120, deadline=None)
@given(x=hnp.arrays(np.float32, st.tuples(st.integers(1, 3), st.integers(1, 70)),
                    elements=st.floats(width=32, allow_nan=False, allow_infinity=False)),
       fmt=st.sampled_from(RT), mode=st.sampled_from(["even", "nearest", "floor"]), axis=st.sampled_from([0, 1]))
def test_packed_round_trip(x, fmt, mode, axis):
    f = get_format(fmt)
    sat = True if (f.family == "float" and not f.has_inf) else None
    want = quantize(x, fmt, rounding=mode, axis=axis, saturate=sat)
    got = decode(encode(x, fmt, rounding=mode, axis=axis))
    assert got.shape == x.shape
    assert ((got == want) | (np.isnan(got) & np.isnan(want))).all()


@settings(max_examples=60, deadline=None)
@given(x=hnp.arrays(np.float32, (2, 32), elements=st.floats(width=32)),
       fmt=st.sampled_from(["mxfp8_e4m3", "mxfp4", "mxint8", "mx6", "msfp16", "nvfp4", "int4_g32", "bf16",
                            "fp8_e5m2"]))
def test_round_trip_with_specials(x, fmt):
    want = quantize(x, fmt)
    got = decode(encode(x, fmt))
    assert ((got == want) | (np.isnan(got) & np.isnan(want))).all()


def test_unencodable_specials_raise():
    with pytest.raises(ValueError, match="no Inf/NaN encoding"):
        encode(np.array([1e9], F32), "fp4_e2m1", saturate=False)
    with pytest.raises(ValueError, match="NaN/Inf"):
        encode(np.array([np.nan, 1.0], F32), "int8")


@pytest.mark.parametrize("shape", [(0, 32), (4, 0), (0,), (3,), (2, 0, 3)])
def test_empty_and_tiny_shapes(shape):
    x = np.ones(shape, F32)
    for fmt in ("mxfp4", "mx6", "nvfp4", "int4_g32_zp", "bf16", "int8", "msfp12"):
        q = encode(x, fmt)
        assert quantize(x, fmt).shape == decode(q).shape == x.shape
