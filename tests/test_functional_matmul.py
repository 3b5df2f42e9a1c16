"""MX GEMM: exact mode equals a slow pure-Python reference bit for bit; fast and exact
agree within the accumulator's error bound; errors are clear."""

from __future__ import annotations

import zlib
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from cosim.functional import matmul, quantize
from workloads.formats import get_format

F32 = np.float32


def _round_fraction(v: Fraction, mbits: int, emin: int) -> float:
    """Exact round-to-nearest-even of a rational onto a binary float grid."""
    if v == 0:
        return 0.0
    a = abs(v)
    e = a.numerator.bit_length() - a.denominator.bit_length()
    if Fraction(2) ** e > a:
        e -= 1
    e = max(e, emin)
    step = Fraction(2) ** (e - mbits)
    q = round(a / step)  # Python rounds Fractions half to even
    out = float(q * step)
    return -out if v < 0 else out


def reference_exact(a, b, fmt, block, accum):
    """Slow pure-Python model of the documented exact mode: per K-block an exact
    rational dot product of the quantized operands, rounded once to the accumulator,
    accumulated over blocks in increasing k."""
    qa = quantize(a, fmt, axis=-1).astype(np.float64)
    qb = quantize(b, fmt, axis=0).astype(np.float64)
    M, K = qa.shape
    N = qb.shape[1]
    out = np.empty((M, N), F32)
    for i in range(M):
        for j in range(N):
            acc = F32(0.0)
            acc64 = 0.0
            accfx = 0
            for lo in range(0, K, block):
                s = sum((Fraction(qa[i, k]) * Fraction(qb[k, j]) for k in range(lo, min(lo + block, K))),
                        Fraction(0))
                if accum in ("fp32", "bf16"):
                    bv = F32(_round_fraction(s, 23, -126))
                    acc = F32(acc + bv)  # numpy float32 add: IEEE round to nearest even
                    if accum == "bf16":
                        acc = F32(_round_fraction(Fraction(float(acc)), 7, -126))
                elif accum == "fp64":
                    acc64 += float(s)  # float(Fraction) is correctly rounded
                else:
                    nums = [int(v) for v in accum.split(":")[1:]]
                    width, frac = (63, nums[0]) if len(nums) == 1 else nums
                    top = 2 ** (width - 1) - 1
                    c = min(max(round(s * 2 ** frac), -top), top)  # block value into the register
                    accfx = min(max(accfx + c, -top), top)  # saturating add
            if accum == "fp64":
                out[i, j] = F32(acc64)
            elif accum.startswith("fixed"):
                out[i, j] = F32(_round_fraction(Fraction(accfx, 2 ** frac), 23, -126))
            else:
                out[i, j] = acc
    return out


@pytest.mark.parametrize("fmt", ["mxfp4", "mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e3m2", "mxint8", "mxint2", "msfp12",
                                 "mx6", "mx9"])
@pytest.mark.parametrize("accum", ["fp32", "bf16", "fp64", "fixed:24", "fixed:20:8"])
def test_exact_equals_python_reference(fmt, accum):
    rng = np.random.default_rng(zlib.crc32(f"{fmt}/{accum}".encode()))
    a = (rng.standard_normal((5, 70)) * np.exp(rng.standard_normal((5, 70)) * 2)).astype(F32)
    b = (rng.standard_normal((70, 3)) * np.exp(rng.standard_normal((70, 3)) * 2)).astype(F32)
    blk = get_format(fmt).block_size
    if accum.startswith("fixed") and fmt == "mxfp8_e5m2":
        with pytest.raises(ValueError, match="more than 64 bits"):
            matmul(a, b, fmt, mode="exact", accum=accum)
        return
    got = matmul(a, b, fmt, mode="exact", accum=accum)
    want = reference_exact(a, b, fmt, blk, accum)
    np.testing.assert_array_equal(got, want)


def test_fixed_point_register_saturates():
    a = np.full((1, 64), 6.0, F32)
    b = np.full((64, 1), 6.0, F32)  # two blocks of 32 * 36 = 1152 each
    assert matmul(a, b, "mxfp4", mode="exact", accum="fixed:63:4")[0, 0] == 2304.0
    # 12 bits with 2 fraction bits hold at most (2^11 - 1) / 4 = 511.75
    assert matmul(a, b, "mxfp4", mode="exact", accum="fixed:12:2")[0, 0] == 511.75
    with pytest.raises(ValueError, match="W total bits"):
        matmul(a, b, "mxfp4", mode="exact", accum="fixed:64:2")


def test_fixed_point_grid_truncates_small_products():
    # with 0 fraction bits every block value is rounded to an integer
    a = np.full((1, 32), 0.25, F32)
    b = np.full((32, 1), 0.25, F32)  # block value 32/16 = 2 exactly; 1 block
    assert matmul(a, b, "mxfp4", mode="exact", accum="fixed:0")[0, 0] == 2.0
    a[0, 1:] = 0
    assert matmul(a, b, "mxfp4", mode="exact", accum="fixed:0")[0, 0] == 0.0  # 1/16 -> 0
    assert matmul(a, b, "mxfp4", mode="exact", accum="fixed:4")[0, 0] == 0.0625


@settings(max_examples=25, deadline=None)
@given(m=st.integers(1, 9), k=st.integers(1, 200), n=st.integers(1, 9), seed=st.integers(0, 2 ** 31),
       fmt=st.sampled_from(["mxfp4", "mxfp8_e4m3", "mxfp8_e5m2", "mxint8", "mx9"]),
       accum=st.sampled_from(["fp32", "bf16"]))
def test_exact_vs_fast_within_accumulator_bound(m, k, n, seed, fmt, accum):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((m, k)).astype(F32)
    b = rng.standard_normal((k, n)).astype(F32)
    exact = matmul(a, b, fmt, mode="exact", accum=accum).astype(np.float64)
    ref = matmul(a, b, fmt, mode="fast", accum="fp64").astype(np.float64)
    absprod = np.abs(quantize(a, fmt, axis=-1)).astype(np.float64) @ np.abs(quantize(b, fmt, axis=0))
    nb = -(-k // get_format(fmt).block_size)
    u = 2.0 ** -24 if accum == "fp32" else 2.0 ** -8
    # one rounding per block value plus one per add, each relative to a partial sum
    assert (np.abs(exact - ref) <= (2 * nb + 2) * u * absprod + 1e-30).all()


def test_nan_block_poisons_dot_product():
    a = np.ones((2, 64), F32)
    a[0, 40] = np.nan
    b = np.ones((64, 2), F32)
    for mode in ("fast", "exact"):
        c = matmul(a, b, "mxfp8_e4m3", mode=mode)
        assert np.isnan(c[0]).all() and (c[1] == 64).all()


def test_mixed_formats_and_errors():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((4, 64)).astype(F32)
    b = rng.standard_normal((64, 5)).astype(F32)
    c = matmul(a, b, "mxfp4", "mxint8", mode="exact", accum="fp64")
    ref = quantize(a, "mxfp4").astype(np.float64) @ quantize(b, "mxint8", axis=0).astype(np.float64)
    np.testing.assert_array_equal(c, ref.astype(F32))
    with pytest.raises(ValueError, match="inner dimensions"):
        matmul(a, b[:10], "mxfp4")
    with pytest.raises(ValueError, match="equal K-block sizes"):
        matmul(a, b, "mxfp4", "mx6", mode="exact")
    with pytest.raises(ValueError, match="shared-exponent block format"):
        matmul(a, b, "bf16", mode="exact")
    with pytest.raises(ValueError, match="mode must be"):
        matmul(a, b, "mxfp4", mode="slow")
    with pytest.raises(ValueError, match="accum"):
        matmul(a, b, "mxfp4", accum="fp8")


def test_nvfp4_exact_equals_python_reference():
    rng = np.random.default_rng(7)
    a = (rng.standard_normal((4, 50)) * np.exp(rng.standard_normal((4, 50)))).astype(F32)
    b = (rng.standard_normal((50, 3)) * np.exp(rng.standard_normal((50, 3)))).astype(F32)
    qa = quantize(a, "nvfp4", axis=-1).astype(np.float64)
    qb = quantize(b, "nvfp4", axis=0).astype(np.float64)
    ts_a = float(F32(np.abs(a).max() / (448 * 6)))
    ts_b = float(F32(np.abs(b).max() / (448 * 6)))
    want = np.empty((4, 3), F32)
    for i in range(4):
        for j in range(3):
            acc = F32(0)
            for lo in range(0, 50, 16):
                # qa / ts_a is an fp4 value times an E4M3 block scale (at most 6 significant
                # bits) up to the fp32 rounding of qa: snap it onto 8 significant bits
                s = sum((Fraction(_round_fraction(Fraction(qa[i, k] / ts_a), 7, -300))
                         * Fraction(_round_fraction(Fraction(qb[k, j] / ts_b), 7, -300))
                         for k in range(lo, min(lo + 16, 50))), Fraction(0))
                acc = F32(acc + F32(_round_fraction(s, 23, -126)))
            want[i, j] = F32(acc * F32(F32(ts_a) * F32(ts_b)))
    got = matmul(a, b, "nvfp4", mode="exact")
    np.testing.assert_array_equal(got, want)
    fast = matmul(a, b, "nvfp4", accum="fp64")
    np.testing.assert_allclose(got, fast, rtol=1e-5)
