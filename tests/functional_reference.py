"""The single-pass block kernel the issue-14 rewrite replaced (`cosim/functional/blockq.py`),
kept verbatim as a reference: tests/test_functional_blockq.py checks that the new
two-pass row kernel and the column kernel give the same bits on random inputs."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from cosim.functional.kernels import (NAN_EXP, _OFF, block_amax, block_span, flog2_f32, grid_consts, ilog2_bits,
                                      q_elem, round_one)


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
