"""The column-vectorized exact GEMM (cosim/functional/gemm_cols.py) gives the bits of the
kernel it replaces for fp32 accumulation (`matmul._exact_gemm_f32`, kept for bf16
accumulation): ragged tiles (M not a multiple of 4, N not of 128, K not of the block),
NaN blocks, several formats and scales."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cosim.functional import kernels as K
from cosim.functional.gemm_cols import exact_gemm_cols
from cosim.functional.matmul import _bf16, _exact_gemm_f32, exact_operand, matmul


@settings(max_examples=40, deadline=None)
@given(m=st.integers(1, 11), k=st.integers(1, 140), n=st.integers(1, 300),
       fmt=st.sampled_from(["mxfp4", "mxfp6_e2m3", "mxint8", "mxint4", "bfp16", "mx6"]),
       sa=st.integers(-60, 60), sb=st.integers(-60, 60), nan=st.booleans(), seed=st.integers(0, 999))
def test_column_kernel_equals_the_row_kernel(m, k, n, fmt, sa, sb, nan, seed):
    rng = np.random.default_rng(seed)
    a = (rng.standard_normal((m, k)) * 2.0 ** sa).astype(np.float32)
    b = (rng.standard_normal((k, n)) * 2.0 ** sb).astype(np.float32)
    if nan:
        a[rng.integers(m), rng.integers(k)] = np.nan
        b[rng.integers(k), rng.integers(n)] = np.inf
    ca, ea, ua, _, fa = exact_operand(a, fmt, -1)
    cb, eb, ub, _, _ = exact_operand(b, fmt, 0)
    nan_a = (ea == K.NAN_EXP).any(axis=1)
    nan_b = (eb == K.NAN_EXP).any(axis=1)
    ea0, eb0 = np.where(ea == K.NAN_EXP, 0, ea), np.where(eb == K.NAN_EXP, 0, eb)
    want = np.empty((m, n), np.float32)
    _exact_gemm_f32(ca.astype(np.float32), ea0, cb.astype(np.float32), eb0, nan_a, nan_b, fa.block_size, ua + ub,
                    False, _bf16(), want, K.POW2)
    got = np.empty((m, n), np.float32)
    exact_gemm_cols(ca.astype(np.float32), ea0, np.ascontiguousarray(cb.T, dtype=np.float32),
                    np.ascontiguousarray(eb0.T), nan_a, nan_b, fa.block_size, ua + ub, got)
    assert got.tobytes() == want.tobytes()
    assert matmul(a, b, fmt, mode="exact").tobytes() == want.tobytes()


def test_hand_checked_product():
    """mxfp4: [1, 2] . [3, 0.5] = 4 exactly, one block; a NaN block poisons its row."""
    a = np.array([[1.0, 2.0], [np.nan, 1.0]], np.float32)
    b = np.array([[3.0], [0.5]], np.float32)
    c = matmul(a, b, "mxfp4", mode="exact")
    assert c[0, 0] == 4.0 and np.isnan(c[1, 0])
