"""Exact MX GEMM, fp32 accumulation, vectorized across output columns.

`matmul(mode="exact")` for operands whose block dot products are exact in float32
(code bits of A + B + log2(block) <= 24: mxfp4, mxfp6, mxint8/4, bfp, mx4/6). The
previous kernel (`matmul._exact_gemm_f32`) reduced each 32-element block dot product
along K inside vector registers: four horizontal reductions and a float64 scaling per
block of 4 x 32 MACs, about one MAC per cycle. Here B's codes are laid out (K, N) and
the loops run along N: for a tile of R rows of A and T columns of B, every k adds
a[i, k] * b[k, j0:j0+T] into R rows of block sums (broadcast times vector, no
reduction), and each block sum is scaled and accumulated lane by lane.

The arithmetic is the same, in the same order: per (i, j) the block sums
S = sum_k a[i, k] b[k, j] are integers below 2^24, exact in float32 in any order; the
block value fl32(S * 2^(sa + sb + u)) is formed in float64 (exact) and rounded once;
blocks are added in increasing k in float32. So the results equal `_exact_gemm_f32`
bit for bit (tests/test_functional_digests.py, tests/test_functional_gemm_cols.py).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .bits import f64_from_bits

__all__ = ["exact_gemm_cols"]

R = 4  # rows of A per task: each B row segment loaded serves R rows
T = 128  # columns per tile: R x T block sums and accumulators stay in L1


@njit(parallel=True, cache=True)
def exact_gemm_cols(ca, sa, cbt, sbt, nan_a, nan_b, block, ue, out):
    """out[i, j] = fp32 accumulation over K-blocks of fl32(S_b * 2^(sa[i, b] + sbt[b, j] + ue)).
    ca (M, K) and cbt (K, N) float32 integer codes; sa (M, nb), sbt (nb, N) block exponents
    (0 where the block is NaN); nan_a (M,), nan_b (N,) mark rows / columns holding a NaN
    block, whose outputs are NaN."""
    M, Kd = ca.shape
    N = cbt.shape[1]
    nb = sa.shape[1]
    ntj = (N + T - 1) // T
    nti = (M + R - 1) // R
    for t in prange(nti * ntj):
        i0 = (t // ntj) * R
        j0 = (t % ntj) * T
        ni = min(R, M - i0)
        nj = min(T, N - j0)
        uj0 = np.uint64(j0)
        unj = np.uint64(nj)
        acc = np.zeros((R, T), dtype=np.float32)
        s = np.empty((R, T), dtype=np.float32)
        for b in range(nb):
            lo = b * block
            hi = min(lo + block, Kd)
            s[:, :] = 0.0
            for k in range(lo, hi):
                brow = cbt[k]
                for ii in range(ni):
                    a = ca[i0 + ii, k]
                    si = s[ii]
                    for j in range(unj):
                        si[j] += a * brow[uj0 + j]
            for ii in range(ni):
                ea = np.int64(sa[i0 + ii, b]) + ue + 1023
                si = s[ii]
                ai = acc[ii]
                sbb = sbt[b]
                for j in range(unj):
                    e = ea + np.int64(sbb[uj0 + j])
                    bv = np.float32(np.float64(si[j]) * f64_from_bits(e << 52))
                    ai[j] = np.float32(ai[j] + bv)
        for ii in range(ni):
            i = i0 + ii
            for j in range(nj):
                out[i, j0 + j] = np.nan if (nan_a[i] or nan_b[j0 + j]) else acc[ii, j]
