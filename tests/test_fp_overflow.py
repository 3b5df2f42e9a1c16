"""Overflow of the narrow float formats (issue 10): OCP OFP8 E4M3, FP6 and FP4 have no
Inf, so a value beyond the max normal saturates (the default, as OCP's saturating
conversion and serving engines do) or, when the caller asks for non-saturating mode,
becomes NaN where the format has a NaN code (E4M3) and is refused where it has none.
E5M2 keeps IEEE overflow to Inf, with saturation on request."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from cosim.functional import quantize
from workloads.formats import get_format

F32 = np.float32
NO_INF = ["fp8_e4m3", "fp6_e2m3", "fp6_e3m2", "fp4_e2m1"]
MX_NO_INF = ["mxfp8_e4m3", "mxfp6_e2m3", "mxfp6_e3m2", "mxfp4", "mxint8", "nvfp4", "mx6", "mx4"]


def test_issue_example_saturates_to_448():
    # the issue's reproducer: was [inf, inf]
    assert quantize(np.array([500, 1000], F32), "fp8_e4m3").tolist() == [448.0, 448.0]
    y = quantize(np.array([500, 1000, -448, 1.0], F32), "fp8_e4m3", saturate=False)
    assert np.isnan(y[:2]).all() and y[2:].tolist() == [-448.0, 1.0]


def test_e5m2_has_inf_and_saturates_on_request():
    x = np.array([61440.0, 1e6, -1e6], F32)  # 61440 is the rounding midpoint above 57344
    assert quantize(x, "fp8_e5m2").tolist() == [math.inf, math.inf, -math.inf]
    assert quantize(x, "fp8_e5m2", saturate=True).tolist() == [57344.0, 57344.0, -57344.0]


@pytest.mark.parametrize("fmt", ["fp6_e2m3", "fp6_e3m2", "fp4_e2m1", "mxfp4", "mxfp6_e2m3", "mxint8"])
def test_formats_without_inf_or_nan_refuse_non_saturating_mode(fmt):
    with pytest.raises(ValueError, match=rf"{fmt}.*no Inf/NaN encoding.*saturate=True"):
        quantize(np.ones((1, 32), F32), fmt, saturate=False)


def test_mx_e4m3_element_non_saturating_overflow_is_nan():
    # block max 255.9: shared exponent 7 - 8 = -1, the element 511.8 rounds past 448
    x = np.array([[255.9] + [0.1] * 31], F32)
    assert quantize(x, "mxfp8_e4m3")[0, 0] == 224.0  # 448 * 2^-1 (saturated)
    y = quantize(x, "mxfp8_e4m3", saturate=False, rounding="away")
    assert math.isnan(y[0, 0]) and not np.isinf(y).any()


finite = st.floats(width=32, allow_nan=False, allow_infinity=False)


@settings(max_examples=150, deadline=None)
@given(x=hnp.arrays(F32, st.integers(1, 200), elements=finite), fmt=st.sampled_from(NO_INF),
       mode=st.sampled_from(["even", "nearest", "floor"]))
def test_elementwise_never_inf_bounded_and_monotone(x, fmt, mode):
    f = get_format(fmt)
    y = quantize(x, fmt, rounding=mode)
    assert not np.isinf(y).any() and not np.isnan(y).any()
    assert (np.abs(y) <= F32(f.max_normal)).all()
    # monotone: sorting the input sorts the output
    order = np.argsort(x, kind="stable")
    assert (np.diff(y[order].astype(np.float64)) >= 0).all()
    # non-saturating E4M3: overflow is NaN, never Inf
    if f.has_nan:
        yn = quantize(x, fmt, rounding=mode, saturate=False)
        assert not np.isinf(yn).any()
        ok = ~np.isnan(yn)
        np.testing.assert_array_equal(yn[ok], y[ok])
        assert (np.abs(x[~ok]) > f.max_normal).all()


@settings(max_examples=100, deadline=None)
@given(x=hnp.arrays(F32, (3, 64), elements=finite), fmt=st.sampled_from(MX_NO_INF))
def test_block_formats_never_inf(x, fmt):
    y = quantize(x, fmt, axis=-1)
    assert not np.isinf(y).any()


@settings(max_examples=100, deadline=None)
@given(a=finite, b=finite, fmt=st.sampled_from(NO_INF + ["fp8_e5m2"]))
def test_pairwise_monotone_including_e5m2(a, b, fmt):
    lo, hi = sorted((a, b))
    y = quantize(np.array([lo, hi], F32), fmt, saturate=True)
    assert y[0] <= y[1]
