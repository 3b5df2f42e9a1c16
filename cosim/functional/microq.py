"""Shared-microexponent MX4/6/9 block quantization (Rouhani et al., ISCA 2023;
mx-formats.md §11), two passes like `blockq.mx_rows`.

Level 1: E = floor(log2 amax) of the block. Level 2: a pair gets microexponent 1 (its
elements use E-1) when every element of the pair is below 2^E. Elements are sign +
magnitude with one integer bit: value = n * 2^(E - mu - (m-1)), n saturated at
2^m - 1 (rounding one step past the top is clamped, never bumps the exponent).

Per task of 16 rows, a plan pass finds every block's exponent and whether it takes
the pair fast path (full blocks of pairs in rows of even length, a finite normal amax,
constants in float32 range); then the apply pass reads each pair as one uint64 (both
magnitudes side by side: a plain vectorizable loop; the interleaved float32 loads it
replaced were not vectorized, 30.8 -> 18.7 ms for a 4096 x 4096 mx6 apply pass on one
thread, measured).
Other blocks (NaN/Inf, subnormal or zero maxima, odd sizes) take `_general_block`, the
single-pass kernel's general code unchanged. The registry's blocks (16 elements in
pairs) in rows of even length go through `micro_rows16` instead: sixteen blocks at a
time in explicit vectors (`vecblock.micro_group`), the row's last few whole blocks by
the same pair path as one loop along them, not per block (1.7x faster than per block
over whole rows, measured). Same operations as that kernel (kept in
tests/functional_reference.py): same bits.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .kernels import NAN_EXP, block_amax, block_span, ilog2_bits, micro_round_run, q_elem
from .threads import serial_twin
from .vecblock import LANES, micro_group

PAIR, GENERAL = 0, 1
ROWS = 16  # rows per task: plan all their blocks, then round them (as blockq.mx_rows)


@njit(inline="always", cache=True)
def _plan_block(br, lo, n, block, sub, mbits, scale_lo, scale_hi):
    """(how, E) of one block: PAIR for the pair fast path (E its exponent), else GENERAL
    (always when sub is 0: odd row lengths)."""
    amax = block_amax(br, np.uint64(lo), np.uint64(n))
    if sub == 2 and n == block:
        return _plan_amax(amax, mbits, scale_lo, scale_hi)
    return GENERAL, np.int64(0)


@njit(inline="always", cache=True)
def _plan_amax(amax, mbits, scale_lo, scale_hi):
    """(how, E) of a full block of pairs with magnitude-bit maximum amax: PAIR when amax
    is a finite normal and E and the rounding constants 2^(E - mu - mbits + 23) are in
    range."""
    if amax < 0x7F800000 and amax >= 0x800000:
        e = np.int64(amax >> np.uint32(23)) - 127
        if e >= scale_lo and e <= scale_hi and e - 1 - mbits + 150 >= 1 and e - mbits + 150 <= 254:
            return PAIR, e
    return GENERAL, np.int64(0)


@njit(inline="always", cache=True)
def _pair_block(pr, xr, orow, mrow, c64, cf, b, e, block, nsub, mbits, mscale, mode):
    """A PAIR block: microexponent mu = both elements below 2^E, rounding constant
    c = 2^(E - mu - mbits + 23) built from its bits, for both halves of the pair's
    uint64 at once."""
    m31_64 = np.uint64(0x7FFFFFFF)
    one = np.uint64(1)
    top64 = np.uint64((e + 127) << 23)
    base = np.uint64(e - mbits + 150)
    ulo = np.uint64(b * block)
    m0 = np.uint64(b * nsub)
    p0 = ulo >> one
    for j in range(np.uint64(nsub)):
        pv = pr[p0 + j]
        a0 = pv & m31_64
        a1 = (pv >> np.uint64(32)) & m31_64
        mu = np.uint64((a0 < top64) & (a1 < top64))
        mrow[m0 + j] = mu
        cb = (base - mu) << np.uint64(23)
        c64[j] = cb | (cb << np.uint64(32))
    micro_round_run(xr, orow, ulo, cf, np.uint64(block), mscale, mode)


@njit(parallel=True, cache=True)
def micro_rows(xb, xp, pairs, x, out, sexp, micro, block, sub, mbits, max_norm, scale_lo, scale_hi, mode, pow2):
    """Per task of ROWS rows: the plan of every block, then the rounding. xp is xb viewed
    as uint64 pairs when `pairs` (rows of even length), else a dummy and no block takes
    the pair path."""
    rows, L = x.shape
    nb = sexp.shape[1]
    nsub = block // sub
    psub = sub if pairs else 0
    mscale = np.float32(max_norm * 2.0 ** (mbits - 23))
    for t in prange((rows + ROWS - 1) // ROWS):
        r0 = t * ROWS
        r1 = min(r0 + ROWS, rows)
        how = np.empty((ROWS, nb), dtype=np.uint8)
        cbits = np.empty(block, dtype=np.uint32)
        c64 = np.empty(max(block // 2, 1), dtype=np.uint64)
        cf = c64.view(np.float32)
        for r in range(r0, r1):
            br = xb[r]
            for b in range(nb):
                lo = b * block
                h, e = _plan_block(br, lo, min(block, L - lo), block, psub, mbits, scale_lo, scale_hi)
                how[r - r0, b] = h
                sexp[r, b] = e
        for r in range(r0, r1):
            for b in range(nb):
                if how[r - r0, b] == PAIR:
                    _pair_block(xp[r], x[r], out[r], micro[r], c64, cf, b, np.int64(sexp[r, b]), block, nsub, mbits,
                                mscale, mode)
                else:
                    _general_block(xb, x, out, sexp, micro, cbits, r, b, block, sub, mbits, max_norm, scale_lo,
                                   scale_hi, mode, mscale, pow2)


@njit(inline="always", cache=True)
def _general_block(xb, x, out, sexp, micro, cbits, r, b, block, sub, mbits, max_norm, scale_lo, scale_hi, mode,
                   mscale, pow2):
    """Any block: NaN/Inf, clamped exponents, short blocks, sub-blocks other than pairs."""
    L = x.shape[1]
    nsub = block // sub
    sub_shift = 0
    while (1 << sub_shift) < sub:  # sub-blocks are powers of two (registry: 2)
        sub_shift += 1
    cf = cbits.view(np.float32)
    lo, hi, n, ulo, un = block_span(b, block, L)
    amax = block_amax(xb[r], ulo, un)
    if amax >= 0x7F800000:
        sexp[r, b] = NAN_EXP
        for j in range(nsub):
            micro[r, b * nsub + j] = 0
        for i in range(lo, hi):
            out[r, i] = np.nan
        return
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
        micro_round_run(x[r], out[r], ulo, cf, un, mscale, mode)
        return
    for i in range(lo, hi):
        s = e - micro[r, b * nsub + (i - lo) // sub]
        out[r, i] = q_elem(x[r, i], xb[r, i] & 0x7FFFFFFF, s, True, mbits, 0, max_norm, mode, False, True, pow2)


@njit(cache=True)
def _general_block_call(xb, x, out, sexp, micro, cbits, r, b, block, sub, mbits, max_norm, scale_lo, scale_hi, mode,
                        mscale, pow2):
    """`_general_block` as a call, for `micro_rows16`'s rare blocks (refused by the pair or
    vector path, the short last one): three inlined copies cost compile time, not speed."""
    _general_block(xb, x, out, sexp, micro, cbits, r, b, block, sub, mbits, max_norm, scale_lo, scale_hi, mode,
                   mscale, pow2)


PAIR_BLOCK = 16  # the registry's shared-microexponent block: 16 elements, 8 pairs (mx-formats.md §11)


@njit(parallel=True, cache=True)
def micro_rows16(xb, xp, x, out, sexp, micro, mbits, max_norm, scale_lo, scale_hi, mode, pow2):
    """`micro_rows` for blocks of 16 in pairs and rows of even length: sixteen blocks at a
    time by `vecblock.micro_group`, the at most fifteen whole blocks left in one loop along
    them (`_pair_run`, scratch for LANES blocks); the blocks the pair path does not take
    (and a short last block) are redone by `_general_block`. 4096 x 4096 mx9 into a
    reused output: 25.2 -> 14.3 ms on one thread, 13.7 -> 7.5 ms on two with `_pair_run`
    over whole rows (interleaved A/B with the per-block kernel, measured, issue 14)."""
    rows, L = x.shape
    nb = sexp.shape[1]
    nfull = L // PAIR_BLOCK
    grouped = nfull // LANES * LANES  # blocks served by vecblock.micro_group; the rest by _pair_run
    mscale = np.float32(max_norm * 2.0 ** (mbits - 23))
    for t in prange((rows + ROWS - 1) // ROWS):
        how = np.empty(LANES, dtype=np.uint8)  # nfull - grouped < LANES tail blocks
        pm = np.empty(LANES * 8, dtype=np.uint32)
        bt = np.empty(LANES * 8, dtype=np.uint32)
        c64 = np.empty(LANES * 8, dtype=np.uint64)
        cbits = np.empty(PAIR_BLOCK, dtype=np.uint32)
        for r in range(t * ROWS, min(t * ROWS + ROWS, rows)):
            for b0 in range(0, grouped, LANES):  # sixteen blocks per call, explicit vectors
                nblk = np.int64(min(LANES, grouped - b0))  # always LANES; runtime keeps LLVM's loops rolled
                bad = micro_group(xb[r], out[r], sexp[r], micro[r], np.int64(b0), nblk, np.int64(mbits),
                                  np.int64(scale_lo), np.int64(scale_hi), mscale, np.int64(mode))
                if bad != 0:
                    for j in range(LANES):
                        if (bad >> np.uint32(j)) & np.uint32(1):
                            _general_block_call(xb, x, out, sexp, micro, cbits, r, b0 + j, PAIR_BLOCK, 2, mbits,
                                                max_norm, scale_lo, scale_hi, mode, mscale, pow2)
            ntail = nfull - grouped
            if ntail > 0 and _pair_run(xp[r], x[r], out[r], micro[r], sexp[r], how, pm, bt, c64, grouped, ntail,
                                       mbits, scale_lo, scale_hi, mscale, mode) != 0:
                for b in range(ntail):  # scanned only when a block was refused
                    if how[b] != PAIR:
                        _general_block_call(xb, x, out, sexp, micro, cbits, r, grouped + b, PAIR_BLOCK, 2, mbits,
                                            max_norm, scale_lo, scale_hi, mode, mscale, pow2)
            if nb > nfull:  # the short last block
                _general_block_call(xb, x, out, sexp, micro, cbits, r, nfull, PAIR_BLOCK, 2, mbits, max_norm,
                                    scale_lo, scale_hi, mode, mscale, pow2)


@njit(inline="always", cache=True)
def _pair_run(xpr, xr, orow, mrow, srow, how, pm, bt, c64, b0, nblk, mbits, scale_lo, scale_hi, mscale, mode):
    """The pair path of `_pair_block` for blocks b0 .. b0 + nblk - 1 of one row, as four
    loops along the run instead of short loops per block: loops of a runtime 8 or 16
    trips are too short for LLVM's vectorized loop body (our reading of the 23 ms) and
    literal trip counts made them slower still (45 ms, measured). Loops: pair maxima,
    block plan, per-pair microexponent and rounding constant, rounding. Same operations
    per element as `_pair_block`: mu = (both magnitudes < 2^E) is max(pair) < 2^E.
    Blocks that are not PAIR get garbage here; the caller redoes them (return: how
    many). Scratch (how, pm, bt, c64) is indexed from b0, sized for nblk blocks."""
    m31 = np.uint64(0x7FFFFFFF)
    p0 = np.uint64(b0 * 8)  # first pair of the run
    npairs = np.uint64(nblk * 8)
    ngen = 0
    for j in range(npairs):
        pv = xpr[p0 + j]
        a0 = np.uint32(pv & m31)
        a1 = np.uint32((pv >> np.uint64(32)) & m31)
        pm[j] = a0 if a0 > a1 else a1
    for b in range(nblk):
        amax = np.uint32(0)
        for k in range(8):
            a = pm[8 * b + k]
            amax = a if a > amax else amax
        h, e = _plan_amax(amax, mbits, scale_lo, scale_hi)
        how[b] = h
        srow[b0 + b] = e
        ngen += h
        for k in range(8):
            bt[8 * b + k] = amax
    exp_mask = np.uint32(0x7F800000)
    sh = np.uint32(23 - mbits)
    for j in range(npairs):
        bm = bt[j]
        mu = np.uint32(pm[j] < (bm & exp_mask))
        mrow[p0 + j] = mu
        cb = np.uint64((((bm >> np.uint32(23)) + sh) - mu) << np.uint32(23))
        c64[j] = cb | (cb << np.uint64(32))
    micro_round_run(xr, orow, p0 + p0, c64.view(np.float32), npairs + npairs, mscale, mode)
    return ngen


def _rows_over(rows16, rows):
    """`microexp_rows` calling these two kernels: the parallel ones, or (its
    `serial_twin`, cosim.functional.threads) their serial twins, which small calls take."""

    def microexp_rows(xb, x, out, sexp, micro, block, sub, mbits, max_norm, scale_lo, scale_hi, mode, pow2):
        """Shared-microexponent quantization along the last axis of a 2-D array."""
        pairs = x.shape[1] % 2 == 0 and x.shape[1] > 0  # the pair path reads a row as uint64 pairs
        xp = xb.view(np.uint64) if pairs else np.zeros((1, 1), dtype=np.uint64)
        if pairs and block == PAIR_BLOCK and sub == 2:
            rows16(xb, xp, x, out, sexp, micro, mbits, max_norm, scale_lo, scale_hi, mode, pow2)
            return
        rows(xb, xp, pairs, x, out, sexp, micro, block, sub, mbits, max_norm, scale_lo, scale_hi, mode, pow2)

    microexp_rows.kernels = (rows16, rows)
    microexp_rows.serial_twin = lambda: _rows_over(serial_twin(rows16), serial_twin(rows))
    return microexp_rows


microexp_rows = _rows_over(micro_rows16, micro_rows)
