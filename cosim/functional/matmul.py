"""MX GEMM: `matmul(a, b, fmt_a, fmt_b=None, mode="fast"|"exact", accum=...)`.

Both operands are quantized along K (A along its last axis, B along its first), the
way microxcaling's `mx.matmul` and an MX dot-product unit see them.

mode="fast": dequantize, then BLAS (float32 for accum="fp32"/"bf16", float64 for
"fp64"/"fixed:F"); "bf16" rounds the float32 product to bf16 at the end.

mode="exact" emulates an MX dot-product unit. For output (i, j) and K-block kb:
  1. every element is an integer code times the element's finest step 2^u
     (FP elements: u = emin - mbits; MXINT/BFP: u = -(bits-2); shared-microexponent
     elements: u = -(bits-1), the pair's microexponent folded into the code);
  2. the block dot product S = sum_k ca[i,k] * cb[k,j] is formed exactly in integers
     (int64, or two int64 limbs for FP8 E5M2 whose products need 64 bits);
  3. the block value S * 2^(sa + sb + ua + ub) is rounded once (nearest-even) to the
     accumulator's format -- fp32 for "fp32"/"bf16", fp64 for "fp64", the 2^-F grid for
     "fixed:F" -- NaN if either block scale is NaN;
  4. blocks are accumulated in increasing k order: fp32 adds (IEEE nearest-even);
     "bf16": fp32 add, result rounded to bf16 (nearest-even) after every block;
     "fp64": float64 adds; "fixed:W:F": a W-bit two's-complement register on the
     2^-F grid (W <= 63, default 63): the block value, rounded to the grid, is
     saturated to +-(2^(W-1) - 1) and then added with saturation.
  5. the accumulator is returned as float32 (rounded once).
NVFP4 (E4M3 block scales are not powers of two): S * sa * sb per block is still exact
in float64, is rounded once to fp32 and accumulated in fp32; the two fp32 tensor
scales are applied at the end, fl32(acc * fl32(ts_a * ts_b)).
This follows the BDR/MX dot-product pipeline (multiply, reduce each block in fixed
point, scale by the shared exponents, convert and accumulate in FP32).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from . import kernels as K
from workloads.formats import get_format

from .gemm_cols import exact_gemm_cols
from .params import element_params, resolve
from .quantize import quantize, quantize_parts

__all__ = ["matmul", "exact_operand"]

_ACC = {"fp32": 0, "bf16": 1, "fp64": 2, "fixed": 3}


@njit(inline="always", cache=True)
def _block_value(sh, sl, split, e2, keep, pow2):
    """float64 v such that casting v to the target (float32 when keep=40, float64
    when keep=62) rounds the exact value (sh [* 2^16 + sl]) * 2^e2 exactly once."""
    if split:
        c = sl >> 16
        sh += c
        sl -= c << 16  # now 0 <= sl < 2^16
        neg = sh < 0
        if neg:
            if sl > 0:
                mh = -sh - 1
                ml = 65536 - sl
            else:
                mh = -sh
                ml = np.int64(0)
        else:
            mh = sh
            ml = sl
        if mh < (np.int64(1) << 46):
            mag = (mh << 16) + ml
            sticky = np.int64(0)
            e = e2
        else:
            mag = mh
            sticky = np.int64(ml != 0)
            e = e2 + 16
    else:
        neg = sh < 0
        mag = -sh if neg else sh
        sticky = np.int64(0)
        e = e2
    limit = np.int64(1) << keep
    while mag >= limit:  # keep a sticky bit far below the target's rounding position
        sticky |= mag & 1
        mag >>= 1
        e += 1
    v = np.float64(mag * 2 + sticky) * pow2[1000 + e - 1]
    return -v if neg else v


@njit(parallel=True, cache=True)
def _exact_gemm(ca, sa, cb, sb, block, ue, split, acc_kind, frac_bits, width, bf, out, pow2):
    M, Kd = ca.shape
    N = cb.shape[0]
    nb = sa.shape[1]
    fix_max = (np.int64(1) << (width - 1)) - 1  # width <= 63: a saturating add cannot overflow int64
    for i in prange(M):
        for j in range(N):
            acc32 = np.float32(0.0)
            acc64 = 0.0
            accfx = np.int64(0)
            isnan = False
            for kb in range(nb):
                ea = sa[i, kb]
                eb = sb[j, kb]
                if ea == K.NAN_EXP or eb == K.NAN_EXP:
                    isnan = True
                    break
                lo = kb * block
                hi = min(lo + block, Kd)
                e2 = np.int64(ea) + np.int64(eb) + ue
                sh = np.int64(0)
                sl = np.int64(0)
                if split:
                    for k in range(lo, hi):
                        a = np.int64(ca[i, k])
                        bb = np.int64(cb[j, k])
                        sh += (a >> 16) * bb
                        sl += (a & 0xFFFF) * bb
                else:
                    for k in range(lo, hi):
                        sh += np.int64(ca[i, k]) * np.int64(cb[j, k])
                if acc_kind == 0 or acc_kind == 1:
                    bv = np.float32(_block_value(sh, sl, split, e2, 40, pow2))
                    t = np.float32(acc32 + bv)
                    if acc_kind == 1:
                        t = np.float32(K.round_fp64(np.float64(t), bf[0], bf[1], bf[2], 0, False))
                    acc32 = t
                elif acc_kind == 2:
                    acc64 += _block_value(sh, sl, split, e2, 62, pow2)
                else:
                    # exact S * 2^(e2 + F) rounded to an integer (nearest-even), saturating add
                    sft = e2 + frac_bits
                    if sh == 0:
                        c = np.int64(0)
                    elif sft >= 0:
                        if sft > 62 or abs(sh) > (fix_max >> sft):
                            c = fix_max if sh > 0 else -fix_max
                        else:
                            c = sh << sft
                    else:
                        neg = sh < 0
                        mag = -sh if neg else sh
                        if -sft > 62:
                            c = np.int64(0)
                        else:
                            q = mag >> (-sft)
                            rem = mag - (q << (-sft))
                            half = np.int64(1) << (-sft - 1)
                            if rem > half or (rem == half and (q & 1) == 1):
                                q += 1
                            c = -q if neg else q
                        c = min(max(c, -fix_max), fix_max)  # the block value saturates into the register
                    accfx = min(max(accfx + c, -fix_max), fix_max)
            if isnan:
                out[i, j] = np.nan
            elif acc_kind == 2:
                out[i, j] = np.float32(acc64)
            elif acc_kind == 3:
                out[i, j] = np.float32(_block_value(accfx, np.int64(0), False, -frac_bits, 40, pow2))
            else:
                out[i, j] = acc32


@njit(inline="always", cache=True)
def _acc_block(acc, sm, e, use_bf16, bf, pow2):
    bv = np.float32(np.float64(sm) * pow2[1000 + e])
    acc = np.float32(acc + bv)
    if use_bf16:  # bf = (mbits, emin, max_norm) of bf16 from the registry
        acc = np.float32(K.round_fp64(np.float64(acc), bf[0], bf[1], bf[2], 0, False))
    return acc


@njit(inline="always", cache=True, fastmath={"reassoc", "contract"})
def _block_dots4(ca, cb, i0, j, lo, hi):
    """Four exact block sums S = sum_k ca[i, k] * cb[j, k] (rows i0..i0+3 of A against row
    j of B) over a non-empty block. Integer codes are summed in int64 (numba widens their
    products); float32 codes, used when every partial sum is an integer below 2^24 (the
    caller checks), in float32: any order gives the same integer, so reassociation is
    harmless. Inlined: a call per block costs 2x (measured)."""
    bk = cb[j, lo]
    s0 = ca[i0, lo] * bk
    s1 = ca[i0 + 1, lo] * bk
    s2 = ca[i0 + 2, lo] * bk
    s3 = ca[i0 + 3, lo] * bk
    for k in range(lo + 1, hi):
        bk = cb[j, k]
        s0 += ca[i0, k] * bk
        s1 += ca[i0 + 1, k] * bk
        s2 += ca[i0 + 2, k] * bk
        s3 += ca[i0 + 3, k] * bk
    return s0, s1, s2, s3


@njit(inline="always", cache=True, fastmath={"reassoc", "contract"})
def _block_dot1(ca, cb, i, j, lo, hi):
    """One block sum, as `_block_dots4`."""
    sm = ca[i, lo] * cb[j, lo]
    for k in range(lo + 1, hi):
        sm += ca[i, k] * cb[j, k]
    return sm


@njit(parallel=True, cache=True)
def _exact_gemm_f32(ca, sa, cb, sb, nan_a, nan_b, block, ue, use_bf16, bf, out, pow2):
    """Fast path of `_exact_gemm` for fp32/bf16 accumulation when every block sum fits
    below 2^53 (all MX formats but E5M2): float64(S) is then exact and one cast to
    float32 is the single rounding. The codes are integers, or float32 when a block's
    dot product stays below 2^24 (mxfp4, mxfp6, mxint8, bfp12...: float32 SIMD, the same
    integers, hence bit-identical results). Rows are processed four at a time so each B
    block is loaded once for four dot products (register blocking); prange over row
    tiles."""
    M, Kd = ca.shape
    N = cb.shape[0]
    nb = sa.shape[1]
    R = 4
    ntiles = (M + R - 1) // R
    for t in prange(ntiles):
        i0 = t * R
        full = i0 + R <= M
        for j in range(N):
            if full:
                a0 = np.float32(0.0)
                a1 = np.float32(0.0)
                a2 = np.float32(0.0)
                a3 = np.float32(0.0)
                for kb in range(nb):
                    lo = kb * block
                    hi = min(lo + block, Kd)
                    eb = np.int64(sb[j, kb])
                    s0, s1, s2, s3 = _block_dots4(ca, cb, i0, j, lo, hi)
                    a0 = _acc_block(a0, np.float64(s0), sa[i0, kb] + eb + ue, use_bf16, bf, pow2)
                    a1 = _acc_block(a1, np.float64(s1), sa[i0 + 1, kb] + eb + ue, use_bf16, bf, pow2)
                    a2 = _acc_block(a2, np.float64(s2), sa[i0 + 2, kb] + eb + ue, use_bf16, bf, pow2)
                    a3 = _acc_block(a3, np.float64(s3), sa[i0 + 3, kb] + eb + ue, use_bf16, bf, pow2)
                out[i0, j] = a0
                out[i0 + 1, j] = a1
                out[i0 + 2, j] = a2
                out[i0 + 3, j] = a3
            else:
                for i in range(i0, M):
                    acc = np.float32(0.0)
                    for kb in range(nb):
                        lo = kb * block
                        hi = min(lo + block, Kd)
                        sm = _block_dot1(ca, cb, i, j, lo, hi)
                        acc = _acc_block(acc, np.float64(sm), sa[i, kb] + sb[j, kb] + ue, use_bf16, bf, pow2)
                    out[i, j] = acc
            # NaN blocks (scale code 0xFF) poison their whole dot product
            for i in range(i0, min(i0 + R, M)):
                if nan_a[i] or nan_b[j]:
                    out[i, j] = np.nan


@njit(parallel=True, cache=True)
def _exact_gemm_nvfp4(ca, sa, cb, sb, block, unit, alpha, out):
    """NVFP4 dot-product unit: per 16-block an exact integer sum S of FP4 code products,
    times the two E4M3 block scales (S * 2^unit * sa * sb is exact in float64: a
    12-bit integer times two 4-bit significands), rounded once to fp32 and accumulated
    in fp32 in increasing k; the per-tensor scales are applied at the end as
    fl32(acc * alpha) with alpha = fl32(ts_a * ts_b). A NaN block scale gives NaN."""
    M, Kd = ca.shape
    N = cb.shape[0]
    nb = sa.shape[1]
    for i in prange(M):
        for j in range(N):
            acc = np.float32(0.0)
            for kb in range(nb):
                lo = kb * block
                n = min(lo + block, Kd) - lo
                sm = np.int64(0)
                for k in range(n):
                    sm += np.int64(ca[i, lo + k]) * np.int64(cb[j, lo + k])
                bv = np.float32(np.float64(sm) * unit * sa[i, kb] * sb[j, kb])
                acc = np.float32(acc + bv)
            out[i, j] = np.float32(acc * alpha)


def _nvfp4_operand(x, fmt, axis, block_size, rounding):
    p = quantize_parts(x, fmt, axis=axis, block_size=block_size, rounding=rounding)
    f = p.fmt
    ep = p.elem
    rows, L = p.y2d.shape
    d = np.repeat(p.scales.astype(np.float64), f.block_size, axis=1)[:, :L] * p.tensor_scale
    ok = np.isfinite(d) & (d > 0)
    # y = fl32(q * d): snap back onto the FP4 grid (far coarser than fp32), in units 2^u
    q = np.where(ok, p.y2d / np.where(ok, d, 1.0), 0.0)
    codes = np.rint(np.ldexp(q, -ep.unit_exp)).astype(np.int16)
    return codes, p.scales.astype(np.float64), p.tensor_scale, ep.unit_exp, f


def _bf16() -> tuple:
    ep = element_params(get_format("bf16"))
    return (ep.mbits, ep.emin, ep.max_norm)


def _parse_accum(accum: str) -> tuple[int, int, int]:
    """-> (kind, fraction bits, total width) for 'fp32' | 'bf16' | 'fp64' | 'fixed:F' |
    'fixed:W:F' (a W-bit two's-complement accumulator with F fraction bits, W <= 63,
    saturating at +-(2^(W-1) - 1); 'fixed:F' means W = 63)."""
    if isinstance(accum, str) and accum.startswith("fixed:"):
        parts = accum.split(":")[1:]
        try:
            nums = [int(p) for p in parts]
        except ValueError:
            nums = []
        width, frac = (63, nums[0]) if len(nums) == 1 else (tuple(nums) if len(nums) == 2 else (0, -1))
        if not (0 <= frac <= 120 and 2 <= width <= 63):
            raise ValueError(f"accum {accum!r}: expected 'fixed:F' or 'fixed:W:F' with W total bits in 2..63 "
                             f"and F fractional bits in 0..120")
        return 3, frac, width
    if accum not in ("fp32", "bf16", "fp64"):
        raise ValueError(f"accum must be 'fp32', 'bf16', 'fp64', 'fixed:F' or 'fixed:W:F', got {accum!r}")
    return _ACC[accum], 0, 63


def exact_operand(x, fmt, axis, *, block_size=None, rounding="even", compat="ocp"):
    """Integer codes (rows, K) with the blocked axis last, block exponents (rows, nb)
    and the unit exponent u: x_q[r, k] = codes[r, k] * 2^(scale[r, k // block] + u)."""
    p = quantize_parts(x, fmt, axis=axis, block_size=block_size, rounding=rounding, compat=compat)
    f = p.fmt
    if f.family not in ("mx", "bfp", "microexp"):
        raise ValueError(f"exact matmul needs a shared-exponent block format (mx, bfp, microexp); "
                         f"{f.name!r} is {f.family}")
    ep = p.elem
    ue = ep.unit_exp - (1 if f.family == "microexp" else 0)
    max_code = ep.max_norm * 2.0 ** (-ue)
    dt = np.int16 if max_code < 2 ** 15 else (np.int32 if max_code < 2 ** 31 else np.int64)
    codes = np.empty(p.y2d.shape, dtype=dt)
    _codes(p.y2d, p.scales, f.block_size, ue, codes, K.POW2)
    return codes, p.scales, ue, int(math.ceil(math.log2(max_code + 1))), f


@njit(parallel=True, cache=True)
def _codes(y, scales, block, ue, codes, pow2):
    """codes[r, k] = y[r, k] * 2^-(scale[r, k // block] + ue): an exact power-of-two
    scaling of a value on the element grid, an integer; 0 in a NaN block. (It was numpy
    repeat / where / ldexp over float64 copies: 25 ms per 1024^2 operand, measured.)"""
    rows, L = y.shape
    nb = scales.shape[1]
    for r in prange(rows):
        for b in range(nb):
            s = np.int64(scales[r, b])
            hi = min(b * block + block, L)
            if s == K.NAN_EXP:
                for k in range(b * block, hi):
                    codes[r, k] = 0
                continue
            f = pow2[1000 - s - ue]
            for k in range(b * block, hi):
                codes[r, k] = np.float64(y[r, k]) * f


def matmul(a, b, fmt_a, fmt_b=None, *, mode="fast", accum="fp32", rounding="even", block_size=None,
           compat="ocp") -> np.ndarray:
    """C = Q(A) @ Q(B) with A (M, K) and B (K, N) quantized along K; float32 result."""
    A = np.asarray(a)
    B = np.asarray(b)
    if A.ndim != 2 or B.ndim != 2:
        raise ValueError(f"matmul expects 2-D operands, got shapes {A.shape} and {B.shape}")
    if A.shape[1] != B.shape[0]:
        raise ValueError(f"matmul: inner dimensions differ: A is {A.shape}, B is {B.shape}")
    fmt_b = fmt_a if fmt_b is None else fmt_b
    acc_kind, frac, width = _parse_accum(accum)
    if mode == "fast":
        qa = quantize(A, fmt_a, axis=-1, block_size=block_size, rounding=rounding, compat=compat)
        qb = quantize(B, fmt_b, axis=0, block_size=block_size, rounding=rounding, compat=compat)
        if acc_kind >= 2:
            return (qa.astype(np.float64) @ qb.astype(np.float64)).astype(np.float32)
        c = qa @ qb
        return quantize(c, "bf16") if acc_kind == 1 else c
    if mode != "exact":
        raise ValueError(f"mode must be 'fast' or 'exact', got {mode!r}")
    fam_a, fam_b = resolve(fmt_a).family, resolve(fmt_b).family
    if "nvfp4" in (fam_a, fam_b):
        if fam_a != fam_b or acc_kind != 0:
            raise ValueError("exact NVFP4 matmul needs NVFP4 for both operands and accum='fp32'")
        ca, sa, ta, ua, fa = _nvfp4_operand(A, fmt_a, -1, block_size, rounding)
        cb, sb, tb, ub, fb = _nvfp4_operand(B, fmt_b, 0, block_size, rounding)
        out = np.empty((A.shape[0], B.shape[1]), dtype=np.float32)
        _exact_gemm_nvfp4(ca, sa, cb, sb, fa.block_size, 2.0 ** (ua + ub), float(np.float32(ta) * np.float32(tb)),
                          out)
        return out
    ca, sa, ua, ba, fa = exact_operand(A, fmt_a, -1, block_size=block_size, rounding=rounding, compat=compat)
    cb, sb, ub, bb, fb = exact_operand(B, fmt_b, 0, block_size=block_size, rounding=rounding, compat=compat)
    if fa.block_size != fb.block_size:
        raise ValueError(f"exact matmul needs equal K-block sizes, got {fa.block_size} ({fa.name}) and "
                         f"{fb.block_size} ({fb.name})")
    split = ba + bb + math.ceil(math.log2(fa.block_size)) + 1 > 62
    if split and acc_kind == 3:
        raise ValueError(f"accum='fixed:F' is not supported for {fa.name} x {fb.name}: block products "
                         f"need more than 64 bits")
    if split:
        ca = ca.astype(np.int64)
        cb = cb.astype(np.int64)
    elif ca.dtype != cb.dtype:
        dt = np.promote_types(ca.dtype, cb.dtype)
        ca, cb = ca.astype(dt), cb.astype(dt)
    out = np.empty((A.shape[0], B.shape[1]), dtype=np.float32)
    if not split and acc_kind in (0, 1) and ba + bb + math.ceil(math.log2(fa.block_size)) + 1 <= 53:
        nan_a = (sa == K.NAN_EXP).any(axis=1)
        nan_b = (sb == K.NAN_EXP).any(axis=1)
        if ba + bb + math.ceil(math.log2(fa.block_size)) <= 24:  # block sums exact in float32
            ca = ca.astype(np.float32)
            if acc_kind == 0:  # the same sums and roundings, vectorized across columns (gemm_cols)
                exact_gemm_cols(ca, np.where(sa == K.NAN_EXP, 0, sa), np.ascontiguousarray(cb.T, dtype=np.float32),
                                np.ascontiguousarray(np.where(sb == K.NAN_EXP, 0, sb).T), nan_a, nan_b,
                                fa.block_size, ua + ub, out)
                return out
            cb = cb.astype(np.float32)
        _exact_gemm_f32(ca, np.where(sa == K.NAN_EXP, 0, sa), cb, np.where(sb == K.NAN_EXP, 0, sb),
               nan_a, nan_b, fa.block_size, ua + ub, acc_kind == 1, _bf16(), out, K.POW2)
        return out
    _exact_gemm(ca, sa, cb, sb, fa.block_size, ua + ub, split, acc_kind, frac, width, _bf16(), out, K.POW2)
    return out
