"""The single-pass block kernels the issue-14 rewrite replaced (by `cosim/functional/blockq.py`
and `microq.py`), kept verbatim as references: tests/test_functional_blockq.py checks
that the new kernels give the same bits on random inputs."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from cosim.functional.kernels import (NAN_EXP, _OFF, block_amax, block_span, flog2_f32, grid_consts, ilog2_bits,
                                      micro_round_run, q_elem, round_one)


@njit(parallel=True, cache=True)
def mx_rows(xb, x, out, sexp, block, emax_elem, is_int, mbits, emin, max_norm, scale_lo, scale_hi,
            mode, microx, flush_sub, saturate, pow2):
    """OCP-MX / BFP block quantization along the last axis of a 2-D array.

    Shared exponent s = floor(log2 amax) - emax_elem clamped below at scale_lo; a block
    with NaN/Inf (or s above scale_hi) becomes NaN. A short last block is treated as
    zero-padded (padding cannot change amax). Blocks take a vectorizable float32 path
    (`round_grid` with a per-element magic constant built from the exponent bits);
    blocks it cannot serve exactly (microxcaling log2 candidates, float32 subnormals
    below a subnormal element grid, constants out of float32 range) go element by
    element through the float64 model `q_elem`.
    """
    rows, L = x.shape
    nb = sexp.shape[1]
    m31 = np.uint32(0x7FFFFFFF)
    for r in prange(rows):
        xr = x[r]
        br = xb[r]
        orow = out[r]
        cbits = np.empty(block, dtype=np.uint32)
        cf = cbits.view(np.float32)
        for b in range(nb):
            lo, hi, n, ulo, un = block_span(b, block, L)
            amax = block_amax(br, ulo, un)
            if amax >= 0x7F800000:
                sexp[r, b] = NAN_EXP
                for i in range(lo, hi):
                    orow[i] = np.nan
                continue
            if amax == 0:
                e = np.int64(-126)  # reference: log2 of the float32 min normal
            else:
                e = ilog2_bits(np.int64(amax))
                if microx and ((amax & 0x7FFFFF) >= 0x7FFF00 or amax < 0x800000):
                    af = 0.0
                    for i in range(lo, hi):
                        v = abs(np.float64(xr[i]))
                        if v > af:
                            af = v
                    e = flog2_f32(af)
            s = e - emax_elem
            if s > scale_hi:
                sexp[r, b] = NAN_EXP
                for i in range(lo, hi):
                    orow[i] = np.nan
                continue
            if s < scale_lo:
                s = scale_lo
            sexp[r, b] = s
            if flush_sub and e <= -127:  # block max is a float32 subnormal
                for i in range(lo, hi):
                    orow[i] = 0.0
                continue
            maxv = np.float32(max_norm * pow2[_OFF + s])
            fast = True
            if microx:
                for i in range(lo, hi):
                    a = br[i] & m31
                    if (a & 0x7FFFFF) >= 0x7FFF00 or (a != 0 and a < 0x800000):
                        fast = False
            if is_int:
                ce = s - mbits + 150  # exponent field of c = 2^(step + 23)
                fast = fast and 1 <= ce <= 254
                if fast:
                    c = np.float32(pow2[_OFF + ce - 127])  # one constant for the block
                    for k in range(un):
                        orow[ulo + k] = round_one(xr[ulo + k], c, maxv, mode, saturate)
                    continue
            else:
                F = emin + s + 127  # exponent field of the element grid's min normal
                fast = fast and (np.int64(amax >> 23) + 23 - mbits <= 254) and F + 23 - mbits <= 254
                if fast and F < 1:
                    for i in range(lo, hi):
                        a = br[i] & m31
                        if a != 0 and a < 0x800000:
                            fast = False
                if fast:
                    grid_consts(br, ulo, cbits, un, np.uint32(max(F, 0)), np.uint32(23 - mbits))
                    for k in range(un):
                        orow[ulo + k] = round_one(xr[ulo + k], cf[k], maxv, mode, saturate)
                    continue
            for i in range(lo, hi):
                orow[i] = q_elem(xr[i], np.int64(br[i] & m31), s, is_int, mbits, emin, max_norm, mode, microx,
                                 saturate, pow2)


@njit(parallel=True, cache=True)
def microexp_rows(xb, x, out, sexp, micro, block, sub, mbits, max_norm, scale_lo, scale_hi, mode, pow2):
    """Shared-microexponent MX4/6/9 (Rouhani et al., ISCA 2023; mx-formats.md §11).

    Level 1: E = floor(log2 amax) of the block. Level 2: a pair gets microexponent 1
    (its elements use E-1) when every element of the pair is below 2^E. Elements are
    sign + magnitude with one integer bit: value = n * 2^(E - mu - (m-1)), n saturated
    at 2^m - 1 (rounding one step past the top is clamped, never bumps the exponent).
    """
    rows, L = x.shape
    nb = sexp.shape[1]
    nsub = block // sub
    sub_shift = 0
    while (1 << sub_shift) < sub:  # sub-blocks are powers of two (registry: 2)
        sub_shift += 1
    mscale = np.float32(max_norm * 2.0 ** (mbits - 23))
    m31 = np.uint32(0x7FFFFFFF)
    for r in prange(rows):
        cbits = np.empty(block, dtype=np.uint32)
        cf = cbits.view(np.float32)
        br = xb[r]
        xr = x[r]
        orow = out[r]
        mrow = micro[r]
        for b in range(nb):
            # (float32-subnormal elements need no special care here: the rounding constant
            # c of round_grid is a normal float32 and the hardware add handles them)
            lo, hi, n, ulo, un = block_span(b, block, L)
            amax = block_amax(br, ulo, un)
            if sub == 2 and n == block and amax < 0x7F800000 and amax >= 0x800000:
                # the common case, in straight-line pair loops: E from the exponent field,
                # pair maxima against the pattern of 2^E, one magic constant per pair
                e = np.int64(amax >> np.uint32(23)) - 127
                if e >= scale_lo and e <= scale_hi and e - 1 - mbits + 150 >= 1 and e - mbits + 150 <= 254:
                    sexp[r, b] = e
                    top = np.uint32((e + 127) << 23)
                    base = np.uint32(e - mbits + 150)
                    m0 = np.uint64(b * nsub)
                    one = np.uint64(1)
                    for j in range(np.uint64(nsub)):
                        j2 = j + j  # unsigned indices throughout (see block_amax)
                        a0 = br[ulo + j2] & m31
                        a1 = br[ulo + j2 + one] & m31
                        mu = np.uint32((a0 < top) & (a1 < top))
                        mrow[m0 + j] = mu
                        cb = (base - mu) << np.uint32(23)
                        cbits[j2] = cb
                        cbits[j2 + one] = cb
                    micro_round_run(xr, orow, ulo, cf, un, mscale, mode)
                    continue
            if amax >= 0x7F800000:
                sexp[r, b] = NAN_EXP
                for j in range(nsub):
                    micro[r, b * nsub + j] = 0
                for i in range(lo, hi):
                    out[r, i] = np.nan
                continue
            e = np.int64(-126) if amax == 0 else ilog2_bits(amax)
            if e > scale_hi:
                e = scale_hi  # only reachable with a narrowed exponent; saturates below
            if e < scale_lo:
                e = scale_lo
            sexp[r, b] = e
            # |x| < 2^e compares as magnitude bits below the pattern of 2^e
            top = (e + 127) << 23 if e >= -126 else np.int64(1) << (e + 149)
            for j in range(nsub):
                slo = lo + j * sub
                shi = min(slo + sub, hi)
                pmax = 0
                for i in range(slo, shi):
                    pmax = max(pmax, xb[r, i] & 0x7FFFFFFF)
                micro[r, b * nsub + j] = (pmax < top) & (slo < hi)
            # c = 2^(s - mbits + 23) per pair (s = e - mu) must be a normal float32
            if e - 1 - mbits + 150 >= 1 and e - mbits + 150 <= 254:
                m0 = b * nsub
                base = np.uint32(e - mbits + 150)
                for k in range(n):
                    cbits[k] = (base - np.uint32(micro[r, m0 + (k >> sub_shift)])) << np.uint32(23)
                micro_round_run(xr, orow, ulo, cf, un, mscale, mode)
                continue
            for i in range(lo, hi):
                s = e - micro[r, b * nsub + (i - lo) // sub]
                out[r, i] = q_elem(x[r, i], xb[r, i] & 0x7FFFFFFF, s, True, mbits, 0,
                                   max_norm, mode, False, True, pow2)
