"""OCP-MX / BFP block quantization kernels returning dequantized values (mx-formats.md
§4, §13): `mx_rows` for blocks along the last axis of a 2-D float32 array, `mx_cols`
for blocks along the first.

`mx_rows` runs in two passes over each task of 16 rows: a *plan* pass decides every
block's shared exponent and how its elements are rounded; an *apply* pass runs the
element loops. Why (measured on this 2-core machine, 4096 x 4096 float32, issue 14):
with the scalar chain of a block (amax reduction, exponent, constants) in front of its
16- or 32-element loop, a row of 32-element blocks cost twice the per-element time of
1024-element blocks. Two passes over the whole array were fastest into a reused output
(8.5 against 11.3 ms CPU, one thread, mxint8) but per 16 rows is faster into the fresh
array quantize returns (a few % of memcpy speed better, interleaved, both thread counts).
The rounding constant of a float element is built from its exponent bits with a bit
cast (`bits.f32_from_bits`), not through a scratch array. The apply pass rounds a run
of neighbouring blocks with the same plan (how, s) in one element loop: an element's
result depends only on its value and its block's (how, s), so the bits are the same,
and N(0,1) rows of 32-element blocks average about three blocks per run (interleaved
A/B in one process, 4096 x 4096, one thread: mxint8 9.8 -> 9.1 ms, mxint2 10.9 -> 9.7,
float elements within noise). Blocks of 16 average two per run and lost (bfp16 13.8 ->
15.1 ms), so only blocks of 32 and more are merged.

The arithmetic is that of the single-pass kernel it replaced, operation for
operation: tests/test_functional_digests.py checks 1,059 cases against the digests of
their outputs, and tests/test_functional_blockq.py compares against those kernels
(kept in tests/functional_reference.py) on random inputs.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .bits import f32_from_bits
from .kernels import NAN_EXP, _OFF, block_amax, flog2_f32, ilog2_bits, q_elem, round_one
from .vecblock import LANES, round_group

# How a block is served (decided by the plan pass)
MX_NAN, MX_ZERO, MX_INT, MX_FP, MX_ELEM = 0, 1, 2, 3, 4
ROWS = 16  # rows per task: plan all their blocks, then round them


@njit(inline="always", cache=True)
def mx_plan(br, xr, lo, n, emax_elem, is_int, mbits, emin, scale_lo, scale_hi, microx, flush_sub):
    """(how, shared exponent s) of block xr[lo:lo + n]. how: MX_NAN (NaN/Inf in the block,
    or s above scale_hi), MX_ZERO (flushed: the block max is a float32 subnormal), MX_INT /
    MX_FP (the vectorizable `round_grid` paths for integer / float elements) or MX_ELEM
    (element by element through the float64 model: microxcaling log2 candidates, float32
    subnormals below a subnormal element grid, rounding constants beyond float32)."""
    hi = lo + n
    m31 = np.uint32(0x7FFFFFFF)
    amax = block_amax(br, np.uint64(lo), np.uint64(n))
    if amax >= 0x7F800000:
        return MX_NAN, NAN_EXP
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
        return MX_NAN, NAN_EXP
    if s < scale_lo:
        s = scale_lo
    if flush_sub and e <= -127:  # block max is a float32 subnormal
        return MX_ZERO, s
    fast = True
    if microx:
        for i in range(lo, hi):
            a = br[i] & m31
            if (a & 0x7FFFFF) >= 0x7FFF00 or (a != 0 and a < 0x800000):
                fast = False
    if is_int:
        ce = s - mbits + 150  # exponent field of c = 2^(step + 23)
        return (MX_INT if fast and 1 <= ce <= 254 else MX_ELEM), s
    F = emin + s + 127  # exponent field of the element grid's min normal
    fast = fast and (np.int64(amax >> 23) + 23 - mbits <= 254) and F + 23 - mbits <= 254
    if fast and F < 1:
        for i in range(lo, hi):
            a = br[i] & m31
            if a != 0 and a < 0x800000:
                fast = False
    return (MX_FP if fast else MX_ELEM), s


@njit(inline="always", cache=True)
def mx_apply_block(h, s, xr, br, orow, lo, n, is_int, mbits, emin, max_norm, mode, microx, saturate, pow2):
    """Round block xr[lo:lo + n] into orow as its plan (how h, exponent s) says. Integer
    elements: one `round_grid` constant c = 2^(s - mbits + 23) per block; float elements:
    per element c = 2^(max(E, F) + 23 - mbits - 127) from x's exponent field E and the
    grid's min-normal field F (the step of the element grid at x's binade)."""
    hi = lo + n
    ulo = np.uint64(lo)
    un = np.uint64(n)
    if h == MX_INT:
        c = np.float32(pow2[_OFF + s - mbits + 23])
        maxv = np.float32(max_norm * pow2[_OFF + s])
        for k in range(un):
            orow[ulo + k] = round_one(xr[ulo + k], c, maxv, mode, saturate)
    elif h == MX_FP:
        maxv = np.float32(max_norm * pow2[_OFF + s])
        Fu = np.uint32(max(emin + s + 127, 0))
        sh = np.uint32(23 - mbits)
        for k in range(un):
            E = (br[ulo + k] >> np.uint32(23)) & np.uint32(0xFF)
            c = f32_from_bits(((E if E > Fu else Fu) + sh) << np.uint32(23))
            orow[ulo + k] = round_one(xr[ulo + k], c, maxv, mode, saturate)
    elif h == MX_NAN:
        for i in range(lo, hi):
            orow[i] = np.nan
    elif h == MX_ZERO:
        for i in range(lo, hi):
            orow[i] = 0.0
    else:
        for i in range(lo, hi):
            orow[i] = q_elem(xr[i], np.int64(br[i] & np.uint32(0x7FFFFFFF)), s, is_int, mbits, emin, max_norm, mode,
                             microx, saturate, pow2)


@njit(cache=True)
def _mx_block(br, xr, orow, lo, n, emax_elem, is_int, mbits, emin, max_norm, scale_lo, scale_hi, mode, microx,
              flush_sub, saturate, pow2):
    """One block through `mx_plan` and `mx_apply_block` (a call, not inlined: the one-pass
    path needs it only for blocks its vector plan refuses and the row's last few blocks,
    and two more inlined copies of the element code tripled the compile time)."""
    h, s = mx_plan(br, xr, lo, n, emax_elem, is_int, mbits, emin, scale_lo, scale_hi, microx, flush_sub)
    mx_apply_block(h, np.int64(s), xr, br, orow, lo, n, is_int, mbits, emin, max_norm, mode, microx, saturate, pow2)
    return s


@njit(inline="always", cache=True)
def mx_fused_rows(xb, x, out, sexp, r0, r1, block, emax_elem, is_int, mbits, emin, max_norm, scale_lo, scale_hi, mode,
                  microx, flush_sub, saturate, pow2):
    """Rows r0..r1-1 in one pass: sixteen blocks at a time by `vecblock.round_group`, the
    blocks it refuses and the row's last few (fewer than sixteen, a short one) by
    `_mx_block`."""
    L = x.shape[1]
    nvec = block // LANES
    grouped = (L // block) // LANES * LANES  # blocks served sixteen at a time by round_group
    for r in range(r0, r1):
        xr = x[r]
        br = xb[r]
        orow = out[r]
        for b0 in range(0, grouped, LANES):
            # nblk is always LANES here; as a runtime value LLVM keeps the block loops rolled
            nblk = np.int64(min(LANES, grouped - b0))
            bad = round_group(br, orow, sexp[r], np.int64(b0), nblk, np.int64(nvec), np.int64(emax_elem), bool(is_int),
                              np.int64(mbits), np.int64(emin), np.float64(max_norm), np.int64(scale_lo),
                              np.int64(scale_hi), np.int64(mode), bool(saturate))
            if bad != 0:
                for j in range(LANES):
                    if (bad >> np.uint32(j)) & np.uint32(1):
                        sexp[r, b0 + j] = _mx_block(br, xr, orow, (b0 + j) * block, block, emax_elem, is_int, mbits,
                                                    emin, max_norm, scale_lo, scale_hi, mode, microx, flush_sub,
                                                    saturate, pow2)
        for b in range(grouped, sexp.shape[1]):  # fewer than sixteen blocks left, a short one last
            lo = b * block
            sexp[r, b] = _mx_block(br, xr, orow, lo, min(block, L - lo), emax_elem, is_int, mbits, emin, max_norm,
                                   scale_lo, scale_hi, mode, microx, flush_sub, saturate, pow2)


@njit(parallel=True, cache=True)
def mx_rows(xb, x, out, sexp, block, emax_elem, is_int, mbits, emin, max_norm, scale_lo, scale_hi, mode, microx,
            flush_sub, saturate, pow2):
    """OCP-MX / BFP block quantization along the last axis of a 2-D array. Shared exponent
    s = floor(log2 amax) - emax_elem clamped below at scale_lo; a block with NaN/Inf (or s
    above scale_hi) becomes NaN; a short last block is treated as zero-padded (padding
    cannot change amax). Per task of ROWS rows: the plan of every block, then the
    element loops (`mx_apply_block`)."""
    rows, L = x.shape
    nb = sexp.shape[1]
    merge = block >= 32  # runs of 16-element blocks are too short to repay the scan (module doc)
    for t in prange((rows + ROWS - 1) // ROWS):
        r0 = t * ROWS
        r1 = min(r0 + ROWS, rows)
        how = np.empty((ROWS, nb), dtype=np.uint8)
        for r in range(r0, r1):
            xr = x[r]
            br = xb[r]
            for b in range(nb):
                lo = b * block
                h, s = mx_plan(br, xr, lo, min(block, L - lo), emax_elem, is_int, mbits, emin, scale_lo, scale_hi,
                               microx, flush_sub)
                how[r - r0, b] = h
                sexp[r, b] = s
        for r in range(r0, r1):
            xr = x[r]
            br = xb[r]
            orow = out[r]
            b = 0
            while b < nb:
                h = how[r - r0, b]
                s = sexp[r, b]
                b1 = b + 1
                while merge and b1 < nb and how[r - r0, b1] == h and sexp[r, b1] == s:
                    b1 += 1  # neighbours rounded alike: one longer element loop
                lo = b * block
                mx_apply_block(h, np.int64(s), xr, br, orow, lo, min(b1 * block, L) - lo, is_int, mbits, emin,
                               max_norm, mode, microx, saturate, pow2)
                b = b1


def vec_serves(block, microx) -> bool:
    """Whether `mx_rows_vec` takes these blocks: a multiple of 16 elements (its vector
    groups round 16 lanes at a time), no microxcaling (its float32-log2 candidates go
    element by element). quantize asks this before choosing the kernel, on every call:
    plain Python (a compiled predicate cost a dispatch per call, and a cold process a
    compile, for one comparison); the kernel checks through its compiled twin."""
    return bool(not microx and block % LANES == 0)


# the same predicate, compiled from the same function, for mx_rows_vec's own refusal
_vec_serves_kernel = njit(inline="always", cache=True)(vec_serves)


@njit(parallel=True, cache=True)
def mx_rows_vec(xb, x, out, sexp, block, emax_elem, is_int, mbits, emin, max_norm, scale_lo, scale_hi, mode, microx,
                flush_sub, saturate, pow2):
    """`mx_rows` in one pass (`mx_fused_rows`, explicit vectors) for blocks of a multiple of
    16 elements without microxcaling: quantize's choice there, and only there (other
    calls raise; `mx_rows` serves them). A kernel of its own, so a process compiles only
    the variant it uses (both in one kernel took 1.7x the compile time). Same signature as
    `mx_rows`, so quantize calls either alike."""
    if not _vec_serves_kernel(block, microx):
        raise ValueError("mx_rows_vec: blocks of a multiple of 16 elements without microxcaling only (mx_rows)")
    rows = x.shape[0]
    for t in prange((rows + ROWS - 1) // ROWS):
        r0 = t * ROWS
        mx_fused_rows(xb, x, out, sexp, r0, min(r0 + ROWS, rows), block, emax_elem, is_int, mbits, emin, max_norm,
                      scale_lo, scale_hi, mode, microx, flush_sub, saturate, pow2)


@njit(inline="always", cache=True)
def mx_col_consts(amax, emax_elem, is_int, mbits, emin, max_norm, scale_lo, scale_hi, microx, pow2):
    """For a column block of `mx_cols` with magnitude-bit maximum amax: (common, s, c, Fu,
    maxv). common: the block takes the MX_INT / MX_FP path of `mx_plan` for sure (amax a
    finite normal, no microxcaling candidates, constants in range, a normal element-grid
    minimum); every other block is redone by the row code on a gathered copy."""
    e = np.int64(amax >> np.uint32(23)) - 127
    s = max(e - emax_elem, scale_lo)
    common = (amax >= 0x800000) & (amax < 0x7F800000) & (e - emax_elem <= scale_hi) & (not microx)
    if is_int:
        ce = s - mbits + 150
        common = common & (ce >= 1) & (ce <= 254)
    else:
        F = emin + s + 127
        common = common & (np.int64(amax >> np.uint32(23)) + 23 - mbits <= 254) & (F + 23 - mbits <= 254) & (F >= 1)
    ce = min(max(s - mbits + 150, 1), 254)
    c = f32_from_bits(np.uint32(ce) << np.uint32(23))
    Fu = np.uint32(min(max(emin + s + 127, 0), 255))
    maxv = np.float32(max_norm * pow2[_OFF + min(max(s, -200), 200)])
    return common, s, c, Fu, maxv


@njit(parallel=True, cache=True)
def mx_cols(xb, x, out, sexp, block, emax_elem, is_int, mbits, emin, max_norm, scale_lo, scale_hi, mode, microx,
            flush_sub, saturate, pow2):
    """`mx_rows` for blocks along the FIRST axis of a C-contiguous (K, Q) array: block b of
    column q is x[b*block:(b+1)*block, q], its exponent goes to sexp[b, q]. The rows of a
    block are contiguous, so every loop runs along q (long, vectorized, no per-block
    loop): the column amax, the per-column constants, the rounding. Blocks outside the
    common case (see `mx_col_consts`) are gathered into a scratch row and redone by
    `mx_plan` / `mx_apply_block`, the row code, so the results equal `mx_rows` on the
    transposed array bit for bit. Saves the transposing copy of quantize(axis=0)."""
    Kd, Q = x.shape
    nb = sexp.shape[0]
    QT = 512  # columns per task: the per-column scratch stays in L1
    ntq = (Q + QT - 1) // QT
    m31 = np.uint32(0x7FFFFFFF)
    for t in prange(nb * ntq):
        b = t // ntq
        q0 = (t % ntq) * QT
        nq = min(QT, Q - q0)
        lo = b * block
        n = min(block, Kd - lo)
        uq0 = np.uint64(q0)
        unq = np.uint64(nq)
        am = np.zeros(nq, dtype=np.uint32)
        for r in range(lo, lo + n):
            xbr = xb[r]
            for j in range(unq):
                a = np.uint32(xbr[uq0 + j] & m31)
                am[j] = a if a > am[j] else am[j]
        cc = np.empty(nq, dtype=np.float32)
        fu = np.empty(nq, dtype=np.uint32)
        mv = np.empty(nq, dtype=np.float32)
        odd = np.empty(nq, dtype=np.bool_)
        for j in range(nq):
            common, s, c, Fu, maxv = mx_col_consts(am[j], emax_elem, is_int, mbits, emin, max_norm, scale_lo,
                                                   scale_hi, microx, pow2)
            odd[j] = not common
            sexp[b, q0 + j] = s
            cc[j] = c
            fu[j] = Fu
            mv[j] = maxv
        sh = np.uint32(23 - mbits)
        for r in range(lo, lo + n):
            xr = x[r]
            xbr = xb[r]
            orow = out[r]
            if is_int:
                for j in range(unq):
                    orow[uq0 + j] = round_one(xr[uq0 + j], cc[j], mv[j], mode, saturate)
            else:
                for j in range(unq):
                    E = (xbr[uq0 + j] >> np.uint32(23)) & np.uint32(0xFF)
                    Fj = fu[j]
                    c = f32_from_bits(((E if E > Fj else Fj) + sh) << np.uint32(23))
                    orow[uq0 + j] = round_one(xr[uq0 + j], c, mv[j], mode, saturate)
        for j in range(nq):
            if odd[j]:
                _mx_col_fallback(xb, x, out, sexp, b, lo, n, q0 + j, emax_elem, is_int, mbits, emin, max_norm,
                                 scale_lo, scale_hi, mode, microx, flush_sub, saturate, pow2)


@njit(cache=True)
def _mx_col_fallback(xb, x, out, sexp, b, lo, n, q, emax_elem, is_int, mbits, emin, max_norm, scale_lo, scale_hi,
                     mode, microx, flush_sub, saturate, pow2):
    """One column block of `mx_cols` through the row code, on a gathered copy."""
    sb = np.empty(n, dtype=np.uint32)
    sx = sb.view(np.float32)
    so = np.empty(n, dtype=np.float32)
    for i in range(n):
        sb[i] = xb[lo + i, q]
    h, s = mx_plan(sb, sx, 0, n, emax_elem, is_int, mbits, emin, scale_lo, scale_hi, microx, flush_sub)
    sexp[b, q] = s
    mx_apply_block(h, np.int64(s), sx, sb, so, 0, n, is_int, mbits, emin, max_norm, mode, microx, saturate, pow2)
    for i in range(n):
        out[lo + i, q] = so[i]
