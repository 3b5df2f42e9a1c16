"""Numba quantize/dequantize kernels (numpy arrays in, numpy arrays out).

All kernels return *dequantized* float32 values plus the scale information a packer
needs. Every path is exact (no step rounds twice, mx-formats.md §13):
- fast path (`round_grid`): one float32 add/subtract of a power-of-two constant
  c = 2^(step + 23), built from exponent bits, rounds |x| onto the element grid at
  exactly the grid step; vectorizable, used for ordinary blocks;
- bit path (`q_bits`): the same rounding on the float32 bit pattern (elementwise
  chunks that hold specials);
- model path (`q_elem`): float64 with frexp-style exponents and an explicit
  floor/remainder test, for everything else (and the microxcaling artefacts).
`microx=True` reproduces the two float32 artefacts of the reference's pure-PyTorch
path (§8): exponents taken from a float32 `log2`, and `floor(t + 0.5)` turning
t = 0.5 - 2^-25 into 1.

Rounding modes (reference names, §6): 0 = even (ties to even), 1 = nearest (ties away
from zero), 2 = floor (magnitude truncated, i.e. toward zero).

The shared-exponent block kernels live in blockq.py (MX / BFP) and microq.py (MX4/6/9);
this module holds the element-level helpers they share and the other families' kernels.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

NAN_EXP = 32767  # scale-exponent sentinel of a block that turned NaN
_OFF = 1000
# 2^k for k in [-1000, 1000] as float64: exact powers of two without a libm call per element.
POW2 = np.ldexp(1.0, np.arange(-_OFF, _OFF + 1)).astype(np.float64)
_HALF_M_ULP = 0.5 - 2.0 ** -25  # largest float32 below 0.5 (reference's floor(t+0.5) artefact)


@njit(inline="always", cache=True)
def ilog2_bits(ab):
    """floor(log2 v) of a nonzero finite float32 given its magnitude bits (exact)."""
    e = ab >> 23
    if e > 0:
        return np.int64(e) - 127
    m = ab
    r = np.int64(-150)
    while m > 0:
        m >>= 1
        r += 1
    return r


@njit(inline="always", cache=True)
def flog2_f32(v):
    """floor of log2(v) rounded to float32, as torch.log2 on a float32 tensor gives it."""
    return np.int64(math.floor(np.float32(math.log2(v))))


@njit(inline="always", cache=True)
def round_int(t, mode, microx):
    """Round t >= 0 to an integer in the given mode; exact for t < 2^52."""
    f = np.floor(t)  # float result: math.floor would return an int64 and overflow
    if mode == 2:
        return f
    d = t - f  # exact: f and t share the binade or f == 0
    if microx and t == _HALF_M_ULP:
        return 1.0  # float32 t + 0.5 rounds up to 1.0 in the reference
    if d > 0.5:
        return f + 1.0
    if d < 0.5:
        return f
    if mode == 1:
        return f + 1.0
    if f % 2.0 == 1.0:  # tie, even mode: go to the even neighbour
        return f + 1.0
    return f


@njit(inline="always", cache=True)
def q_elem(xv, ab, s, is_int, mbits, emin, max_norm, mode, microx, saturate, pow2):
    """Quantize one float32 value (magnitude bits ab) with shared scale 2^s onto the
    element grid; returns the dequantized value as float64."""
    if ab == 0:
        return 0.0
    ax = abs(np.float64(xv))
    if is_int:
        p = np.int64(0)
    else:
        p = ilog2_bits(ab) - s
        # float32 log2 can round up only just below a power of two (or for subnormals)
        if microx and ((ab & 0x7FFFFF) >= 0x7FFF00 or ab < 0x800000):
            p = flog2_f32(ax * pow2[_OFF - s])
        if p < emin:
            p = emin
    t = ax * pow2[_OFF + mbits - p - s]
    r = round_int(t, mode, microx)
    v = r * pow2[_OFF + p - mbits]
    if v > max_norm:
        v = max_norm if saturate else np.inf
    y = v * pow2[_OFF + s]
    return -y if xv < 0 else y


@njit(inline="always", cache=True)
def q_bits(xbits, s, is_int, mbits, emin, maxb, mode, microx, saturate):
    """Fast path of `q_elem` on the float32 bit pattern: rounding the pattern at bit sh
    is rounding |x| onto the element grid (step 2^(max(ex, emin+s) - mbits)), carries
    move into the exponent field, and the result is already dequantized. Returns -1
    when the slow path must decide (float32 subnormal input, target-subnormal steps
    below the float32 mantissa, or a microxcaling log2 candidate)."""
    ab = xbits & 0x7FFFFFFF
    E = ab >> 23
    if E == 0:
        return -1
    if is_int:
        sh = s - mbits + 150 - E
    else:
        d = emin + s + 127 - E
        sh = 23 - mbits + (d if d > 0 else 0)
    if sh < 1:
        return -1
    if microx and (ab & 0x7FFFFF) >= 0x7FFF00:
        return -1
    if sh > 31:
        sh = 31  # |x| < step / 2^7: rounds to zero in every mode
    sig = (ab & 0x7FFFFF) | 0x800000
    trunc = sig >> sh
    rem = sig & ((np.int64(1) << sh) - 1)
    half = np.int64(1) << (sh - 1)
    if mode == 0:
        q = trunc + ((rem > half) | ((rem == half) & ((trunc & 1) == 1)))
    elif mode == 1:
        q = trunc + (rem >= half)
    else:
        q = trunc
    # q << sh is the rounded significand at x's exponent, in [2^23, 2^24] unless q == 0
    # (sh <= 24 keeps it there; larger sh only ever gives q == 0), so adding it to the
    # exponent field E-1 yields the float32 pattern, carry included.
    rb = ((E - 1) << 23) + (q << sh)
    if q == 0:
        rb = 0
    if rb > maxb:
        rb = maxb if saturate else 0x7F800000
    return rb | (xbits & 0x80000000)


@njit(inline="always", cache=True)
def round_grid(ax, c, mode):
    """Round ax = |x| (float32) onto multiples of step = c * 2^-23, where c = 2^(k+23) is
    a normal float32 above ax: float32 addition rounds to nearest even at exactly that
    step, and the subtraction is exact. Ties-away and truncation are corrections of
    the nearest-even result by one step (all differences here are exact)."""
    r = (ax + c) - c
    if mode == 0:
        return r
    step = c * np.float32(2.0 ** -23)
    if mode == 2:
        return r - step if r > ax else r
    return r + step if (ax - r) == step * np.float32(0.5) else r


@njit(inline="always", cache=True)
def block_span(b, block, L):
    """(lo, hi, n, lo and n as uint64) of block b of a row of length L (the last one short)."""
    lo = b * block
    hi = min(lo + block, L)
    return lo, hi, hi - lo, np.uint64(lo), np.uint64(hi - lo)


@njit(inline="always", cache=True)
def block_amax(bb, lo, n):
    """max of the magnitude bits of bb[lo:lo + n] (uint32 float32 patterns). lo and n are
    uint64: a signed index (lo + k) keeps numba's negative-index wraparound in the loop,
    and LLVM then does not vectorize it (measured 25x slower); slices cost a reference
    count per block."""
    amax = np.uint32(0)
    for k in range(n):
        # kept in uint32 (numba widens `&` to 64 bits): 16 lanes per vector instead of 8
        a = np.uint32(bb[lo + k] & np.uint32(0x7FFFFFFF))
        amax = a if a > amax else amax
    return amax


@njit(inline="always", cache=True)
def grid_consts(bb, lo, cbits, n, Fu, sh):
    """Per element the rounding constant of `round_grid` as float32 bits: c = 2^(e + 23)
    with e = max(exponent field, Fu) + sh - 127, the element grid's step at x's binade."""
    for k in range(n):
        E = (bb[lo + k] >> np.uint32(23)) & np.uint32(0xFF)
        cbits[k] = ((E if E > Fu else Fu) + sh) << np.uint32(23)


@njit(inline="always", cache=True)
def round_one(xv, c, maxv, mode, saturate):
    """x rounded with `round_grid` at constant c, beyond maxv saturated (or Inf), sign
    restored: the loop body of every fast path."""
    q = round_grid(abs(xv), c, mode)
    if q > maxv:
        q = maxv if saturate else np.float32(np.inf)
    return q if xv >= 0 else -q


@njit(parallel=True, cache=True)
def elem_flat(xb, x, out, ob, mbits, emin, max_norm, maxn_bits, min_norm, mode, microx, saturate, flush,
              pow2):
    """Elementwise cast of a flat float32 array; Inf/NaN pass through unchanged (§7).
    Chunks free of specials, float32 subnormals, flush candidates and (microxcaling)
    log2 candidates take the vectorizable bit path."""
    n = x.size
    chunk = 1024
    nchunks = (n + chunk - 1) // chunk
    minb = np.int64(0)
    if flush:  # inputs below the target's min normal are flushed
        minb = np.int64((emin + 127) << 23) if emin > -127 else np.int64(0x800000)
    # round_grid constant c = 2^(max(E, emin+127) + 23 - mbits - 127) must stay finite:
    # larger inputs (and Inf/NaN) take the slow path
    ebig = min((254 - 23 + mbits + 1) << 23, 0x7F800000)
    Fu = np.uint32(max(emin + 127, 1))
    sh = np.uint32(23 - mbits)
    maxv = np.float32(max_norm)
    for c in prange(nchunks):
        lo = c * chunk
        hi = min(lo + chunk, n)
        cnt = hi - lo
        cbits = np.empty(chunk, dtype=np.uint32)
        cf = cbits.view(np.float32)
        nslow = 0
        ulo, ucnt = np.uint64(lo), np.uint64(cnt)
        for k in range(ucnt):  # unsigned indices: the form LLVM vectorizes (see block_amax)
            ab = xb[ulo + k] & 0x7FFFFFFF
            # float32 subnormals are fine here (c is normal since Fu >= 1); specials, huge
            # values and flush candidates are not
            nslow += (ab >= ebig) | ((ab != 0) & (ab < minb))
            if microx:
                nslow += (ab & 0x7FFFFF) >= 0x7FFF00
        if nslow == 0:
            grid_consts(xb, ulo, cbits, ucnt, Fu, sh)
            for k in range(ucnt):
                out[ulo + k] = round_one(x[ulo + k], cf[k], maxv, mode, saturate)
            continue
        for i in range(lo, hi):
            ab = xb[i] & 0x7FFFFFFF
            if ab >= 0x7F800000:
                out[i] = x[i]
            elif flush and abs(np.float64(x[i])) < min_norm:
                out[i] = 0.0
            else:
                rb = q_bits(np.int64(xb[i]), 0, False, mbits, emin, maxn_bits, mode, microx, saturate)
                if rb >= 0:
                    ob[i] = rb
                else:
                    out[i] = q_elem(x[i], ab, 0, False, mbits, emin, max_norm, mode, microx, saturate,
                                    pow2)


@njit(inline="always", cache=True)
def micro_round_run(xx, oo, lo, cf, n, mscale, mode):
    """`round_run` for shared-microexponent elements: the top code saturates at
    c * mscale = max_norm * 2^s (exact), one step past it never bumps the exponent."""
    for k in range(n):
        c = cf[k]
        xv = xx[lo + k]
        q = round_grid(abs(xv), c, mode)
        mv = c * mscale
        q = mv if q > mv else q
        oo[lo + k] = q if xv >= 0 else -q


@njit(inline="always", cache=True)
def round_fp64(v, mbits, emin, max_norm, mode, saturate):
    """Round a float64 onto a float grid (mbits stored mantissa bits, subnormals below
    2^emin), exactly, in the given mode; overflow saturates or goes to Inf."""
    if v == 0.0 or v != v:
        return v
    av = abs(v)
    if av == np.inf:
        return v
    m, e = math.frexp(av)
    p = e - 1
    if p < emin:
        p = emin
    t = math.ldexp(av, mbits - p)
    r = round_int(t, mode, False)
    q = math.ldexp(r, p - mbits)
    if q > max_norm:
        q = max_norm if saturate else np.inf
    return -q if v < 0 else q


@njit(parallel=True, cache=True)
def finite_amax(x):
    """max |x| over the finite entries of a flat float32 array (0 if none)."""
    m = np.float32(0.0)
    for i in prange(x.size):
        a = abs(x[i])
        if a < np.inf:
            m = max(m, a)
    return m


@njit(inline="always", cache=True)
def round_table(av, grid, mids, tie_up, mode):
    """Round av >= 0 onto a small sorted grid (the non-negative values of a narrow
    float, saturating at its top): count the midpoints below av, a tie counting when
    the mode sends it up (tie_up: to the even code, or always for ties-away); mode 2
    truncates. Exact: only comparisons."""
    idx = 0
    if mode == 2:
        for i in range(mids.size):
            idx += av >= grid[i + 1]
    else:
        for i in range(mids.size):
            idx += (av > mids[i]) | ((av == mids[i]) & tie_up[i])
    return grid[idx]


@njit(inline="always", cache=True)
def block_range(xr, orow, lo, n):
    """(count of NaN/Inf, min(x, 0), max(x, 0)) over xr[lo:lo + n] in float64, branch-free
    (vectorizable; unsigned lo and n, see block_amax). A block holding NaN/Inf becomes
    NaN in orow."""
    vmin = 0.0
    vmax = 0.0
    nbad = 0
    for k in range(n):
        v = np.float64(xr[lo + k])
        nbad += not (v - v == 0.0)  # NaN or +-Inf
        vmax = v if v > vmax else vmax
        vmin = v if v < vmin else vmin
    if nbad > 0:
        for k in range(n):
            orow[lo + k] = np.nan
    return nbad, vmin, vmax


@njit(parallel=True, cache=True)
def nvfp4_rows(x, out, bscale, block, tensor_scale, mode, s_mbits, s_emin, s_max, e_max, grid, mids, tie_up):
    """NVFP4: E4M3 scale per block of 16 (amax / e_max relative to the fp32 tensor
    scale, rounded to nearest even and saturated at s_max), FP4 E2M1 elements rounded
    onto `grid` (saturating). Dequantized value = q * s_block * s_tensor, rounded once
    to float32. x / d is formed in float64 and rounded once. `tensor_scale`: float64,
    one per row (the same value in every row for one tensor)."""
    rows, L = x.shape
    nb = bscale.shape[1]
    for r in prange(rows):
        xr = x[r]
        orow = out[r]
        ts = tensor_scale[r]
        for b in range(nb):
            lo = b * block
            n = min(lo + block, L) - lo
            nbad, vmin, vmax = block_range(xr, orow, np.uint64(lo), np.uint64(n))
            amax = max(vmax, -vmin)
            if nbad > 0:
                bscale[r, b] = np.nan
                continue
            bs = round_fp64(amax / e_max / ts, s_mbits, s_emin, s_max, 0, True)
            bscale[r, b] = bs
            d = bs * ts  # 4-bit by 24-bit significand product: exact in float64
            if d == 0.0:  # every element rounds to zero
                orow[lo:lo + n] = 0.0
                continue
            for k in range(n):
                v = np.float64(xr[lo + k]) / d
                q = round_table(abs(v), grid, mids, tie_up, mode)
                orow[lo + k] = (-q if v < 0 else q) * d


@njit(parallel=True, cache=True)
def int_group_rows(x, out, scales, zps, group, bits, zero_point, mode, s_mbits, s_emin, s_max):
    """Integer groups along the last axis with an fp16 scale per group.

    The scale is rounded (nearest even, saturating) onto the grid (s_mbits, s_emin,
    s_max) of its format, fp16 in the registry.
    Symmetric: scale = fp16(amax / (2^(b-1)-1)), q in [-(2^(b-1)-1), 2^(b-1)-1].
    Asymmetric: the range [min(x,0), max(x,0)] (zero always representable) maps onto
    [0, 2^b-1]; scale = fp16(range / (2^b-1)), zero point z = round(-lo/scale) in
    [0, 2^b-1]; value = (q - z) * scale. Divisions are in float64, then rounded once.
    """
    rows, L = x.shape
    ng = scales.shape[1]
    is_even = mode == 0
    is_away = mode == 1
    is_trunc = mode == 2
    for r in prange(rows):
        xr = x[r]
        orow = out[r]
        for g in range(ng):
            lo = g * group
            n = min(group, L - lo)
            nbad, vmin, vmax = block_range(xr, orow, np.uint64(lo), np.uint64(n))
            if nbad > 0:  # the group is NaN
                scales[r, g] = np.nan
                zps[r, g] = 0
                continue
            if zero_point:
                qmax = 2.0 ** bits - 1.0
                sc = round_fp64((vmax - vmin) / qmax, s_mbits, s_emin, s_max, 0, True)
                z = 0.0
                if sc > 0.0:
                    z = min(max(round_int(-vmin / sc, mode, False), 0.0), qmax)
                zps[r, g] = np.int64(z)
                lo_q = -z  # q - z is clamped to [-z, qmax - z]
                hi_q = qmax - z
            else:
                qmax = 2.0 ** (bits - 1) - 1.0
                sc = round_fp64(max(vmax, -vmin) / qmax, s_mbits, s_emin, s_max, 0, True)
                zps[r, g] = 0
                lo_q = -qmax
                hi_q = qmax
            scales[r, g] = sc
            if sc == 0.0:
                orow[lo:lo + n] = 0.0
                continue
            for k in range(n):
                v = np.float64(xr[lo + k]) / sc
                av = abs(v)
                f = np.floor(av)
                d = av - f  # exact
                h = f * 0.5
                odd = h != np.floor(h)
                up = (d > 0.5) | ((d == 0.5) & (is_away | (is_even & odd)))
                q = f + (1.0 if (up and not is_trunc) else 0.0)
                q = -q if v < 0 else q
                q = min(max(q, lo_q), hi_q)  # (q + z) in [0, qmax]
                orow[lo + k] = q * sc
