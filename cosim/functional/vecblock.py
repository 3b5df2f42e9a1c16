"""Explicit 16-lane vector code for whole MX / BFP and shared-microexponent blocks, as
LLVM intrinsics: `round_group` plans and rounds sixteen MX/BFP blocks (of 16, 32, 64 ...
elements) in one pass over their elements, `micro_group` sixteen MX4/6/9 blocks.

Why not numba loops: LLVM vectorizes a runtime-length loop 16 lanes x an interleave of
2-4, so a 16- or 32-element block ran in its scalar remainder; with a literal trip count
it unrolls fully and then fails to vectorize (docs/speed.md). The two-pass row kernels
worked around this by rounding runs of alike blocks in one loop, which blocks of 16
rarely form, and every block still paid its scalar plan (amax reduction, exponent,
range tests, constants: about 35 cycles a block, measured as the same per-block time
for blocks of 16 and 32). Here sixteen blocks are planned together: their maxima come
out of a shuffle transpose as the lanes of one vector (`_transpose_max`), the plan of
each block is a lane (`_group_plan`), and every element is rounded in whole vectors.
4096 x 4096 into a reused output, one thread, against np.copyto: bfp16 0.39 -> 0.74,
mxfp4 0.45 -> 0.90, mx9 0.44 -> 0.95 (CPU time, interleaved A/B, issue 14).

Same operations as the scalar code, lane by lane: `a & 0x7FFFFFFF`, unsigned max; the
plan's range tests; r = (|x| + c) - c in float32, the truncation / ties-away
corrections by one step c * 2^-23, the clamp above maxv, the sign restored as
`q if x >= 0 else -q`; maxv = float32(max_norm * 2^s) from a float64 product. So the
same bits: tests/test_functional_vecblock.py checks against the reference kernels with
hypothesis, tests/test_functional_digests.py pins 1,059 outputs. Blocks whose plan
the vector code refuses (NaN/Inf, zero or subnormal maxima, constants outside the
normal range, float elements with a subnormal grid) come back in a bit mask and the
caller redoes them with the scalar code.

numba's cache does not see edits to this module (it watches the kernel's own file):
after changing it, remove the cached blockq / microq entries (or touch those files).
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["LANES", "round_group", "micro_group"]

LANES = 16
_I32, _F32 = ir.IntType(32), ir.FloatType()
_VI, _VF = ir.VectorType(_I32, LANES), ir.VectorType(_F32, LANES)


def _splat(builder, scalar, vt):
    """<LANES x T> with every lane = scalar."""
    undef = ir.Constant(vt, ir.Undefined)
    v = builder.insert_element(undef, scalar, ir.Constant(_I32, 0))
    return builder.shuffle_vector(v, undef, ir.Constant(ir.VectorType(_I32, LANES), [0] * LANES))


def _vec_ptr(context, builder, arrty, arr, lo, vt):
    a = context.make_array(arrty)(context, builder, arr)
    return builder.bitcast(builder.gep(a.data, [lo]), vt.as_pointer())


def _round_body(builder, v, c, maxv_lim, maxv, mode):
    """One vector of `round_one`: v the float32 patterns (<16 x i32>), c the rounding
    constants (<16 x float>), elements above maxv become maxv_lim (maxv or +Inf)."""
    xv = builder.bitcast(v, _VF)
    ax = builder.bitcast(builder.and_(v, ir.Constant(_VI, [0x7FFFFFFF] * LANES)), _VF)
    r = builder.fsub(builder.fadd(ax, c), c)  # round_grid, nearest even
    if mode != 0:
        step = builder.fmul(c, ir.Constant(_VF, [2.0 ** -23] * LANES))
        if mode == 2:  # truncate: one step down where rounding went up
            r = builder.select(builder.fcmp_ordered(">", r, ax), builder.fsub(r, step), r)
        else:  # ties away: a tie went to even below, one step up
            half = builder.fmul(step, ir.Constant(_VF, [0.5] * LANES))
            r = builder.select(builder.fcmp_ordered("==", builder.fsub(ax, r), half), builder.fadd(r, step), r)
    q = builder.select(builder.fcmp_ordered(">", r, maxv), maxv_lim, r)
    neg = builder.fsub(ir.Constant(_VF, [-0.0] * LANES), q)
    return builder.select(builder.fcmp_ordered(">=", xv, ir.Constant(_VF, [0.0] * LANES)), q, neg)


def _transpose_max(builder, vecs, umax):
    """16 vectors of 16 uint32 -> one vector whose lane j is the max over vecs[j]: four
    levels of pairwise shuffles (lanes of neighbours interleaved) and unsigned max."""
    g = LANES // 2
    while len(vecs) > 1:
        k = LANES // (2 * g)  # sources per input vector at this level
        lo = [j * 2 * g + i for j in range(k) for i in range(g)]
        lo = lo + [LANES + m for m in lo]
        hi = [m + g for m in lo]
        nxt = []
        for a, b in zip(vecs[0::2], vecs[1::2]):
            pa = builder.shuffle_vector(a, b, ir.Constant(ir.VectorType(_I32, LANES), lo))
            pb = builder.shuffle_vector(a, b, ir.Constant(ir.VectorType(_I32, LANES), hi))
            nxt.append(builder.call(umax, [pa, pb]))
        vecs, g = nxt, g // 2
    return vecs[0]


def _c_rows(*arrays) -> bool:
    """The intrinsics address rows through their data pointer: 1-D C-contiguous arrays only
    (anything else fails to type, it is never read with the wrong strides)."""
    return all(isinstance(a, types.Array) and a.ndim == 1 and a.layout == "C" for a in arrays)


def _vconst(vt, v):
    return ir.Constant(vt, [v] * LANES)


def _group_plan(builder, am, emax, is_int, mbits, emin, max_norm, scale_lo, scale_hi, smax, smin):
    """Lane j: block j's plan from its amax `am` (the MX_INT / MX_FP cases of `blockq.mx_plan`
    without microxcaling): the shared
    exponent s, the rounding constant (int elements) or grid-minimum field (float
    elements), maxv = float32(max_norm * 2^s), and whether the block must take the
    general path instead (bad)."""
    i32 = lambda v: builder.trunc(v, _I32)  # noqa: E731  (int64 scalars -> lanes)
    sp = lambda v: _splat(builder, i32(v), _VI)  # noqa: E731
    ult = lambda a, b: builder.icmp_unsigned("<", a, b)  # noqa: E731
    slt = lambda a, b: builder.icmp_signed("<", a, b)  # noqa: E731
    bad = builder.or_(builder.icmp_unsigned(">=", am, _vconst(_VI, 0x7F800000)), ult(am, _vconst(_VI, 0x800000)))
    ef = builder.lshr(am, _vconst(_VI, 23))
    s = builder.sub(builder.sub(ef, _vconst(_VI, 127)), sp(emax))
    bad = builder.or_(bad, slt(sp(scale_hi), s))
    s = builder.call(smax, [s, sp(scale_lo)])
    s = builder.call(smin, [s, _vconst(_VI, 1000)])  # bad lanes only: keeps 2^s a finite float64 below
    ce = builder.add(builder.sub(s, sp(mbits)), _vconst(_VI, 150))
    bad_int = builder.or_(slt(ce, _vconst(_VI, 1)), slt(_vconst(_VI, 254), ce))
    F = builder.add(builder.add(s, sp(emin)), _vconst(_VI, 127))
    top = builder.sub(_vconst(_VI, 23), sp(mbits))
    bad_fp = builder.or_(slt(F, _vconst(_VI, 1)), builder.or_(
        slt(_vconst(_VI, 254), builder.add(ef, top)), slt(_vconst(_VI, 254), builder.add(F, top))))
    bad = builder.or_(bad, builder.select(is_int, bad_int, bad_fp))
    i64v = ir.VectorType(ir.IntType(64), LANES)
    p2 = builder.bitcast(builder.shl(builder.add(builder.sext(s, i64v), _vconst(i64v, 1023)), _vconst(i64v, 52)),
                         ir.VectorType(ir.DoubleType(), LANES))
    maxv = builder.fptrunc(builder.fmul(p2, _splat(builder, max_norm, ir.VectorType(ir.DoubleType(), LANES))), _VF)
    cst = builder.select(is_int, builder.shl(ce, _vconst(_VI, 23)), F)  # int: c's bits; float: Fu
    return s, cst, maxv, bad


@intrinsic
def round_group(typingctx, bits, out, srow, b0, nblk, nvec, emax, is_int, mbits, emin, max_norm, scale_lo, scale_hi,
                mode, saturate):
    """Sixteen whole blocks b0 .. b0 + 15 of nvec vectors each (bits/out: one row's float32
    patterns and result; srow: its shared exponents): block maxima for all sixteen at
    once (`_transpose_max`), their plans as lanes of one vector (`_group_plan`), then
    every element rounded as `blockq.mx_apply_block` does. Returns the mask of blocks (bit j) the plan
    refused: their values and exponents are garbage and the caller redoes them."""
    ints = (emax, mbits, emin, scale_lo, scale_hi, mode)
    if not (_c_rows(bits, out, srow) and all(t == types.int64 for t in ints + (b0, nblk, nvec))
            and is_int == types.boolean
            and saturate == types.boolean and max_norm == types.float64):
        return None

    def codegen(context, builder, sig, args):
        (_, _, _, b0_, nblk_, nvec_, emax_, is_int_, mbits_, emin_, maxn_, slo_, shi_, mode_, sat_) = args
        mod = builder.module
        umax = cgutils.get_or_insert_function(mod, ir.FunctionType(_VI, [_VI, _VI]), "llvm.umax.v16i32")
        smax = cgutils.get_or_insert_function(mod, ir.FunctionType(_VI, [_VI, _VI]), "llvm.smax.v16i32")
        smin = cgutils.get_or_insert_function(mod, ir.FunctionType(_VI, [_VI, _VI]), "llvm.smin.v16i32")
        i64 = ir.IntType(64)
        lo = builder.mul(builder.mul(b0_, nvec_), ir.Constant(i64, LANES))  # first element of the group
        pin = _vec_ptr(context, builder, sig.args[0], args[0], lo, _VI)
        pout = _vec_ptr(context, builder, sig.args[1], args[1], lo, _VF)
        am = _block_maxima(builder, pin, nvec_, nblk_, umax)
        s, cst, maxv, bad = _group_plan(builder, am, emax_, is_int_, mbits_, emin_, maxn_, slo_, shi_, smax, smin)
        ps = _vec_ptr(context, builder, sig.args[2], args[2], b0_, _VI)
        builder.store(s, ps, align=4)
        lim = builder.select(sat_, maxv, _vconst(_VF, float("inf")))
        stash = [cgutils.alloca_once(builder, t) for t in (_VI, _VF, _VF)]
        for p, v in zip(stash, (cst, maxv, lim)):
            builder.store(v, p)
        lanes = [builder.bitcast(p, t.element.as_pointer()) for p, t in zip(stash, (_VI, _VF, _VF))]

        def blocks(mode, int_elems):
            with cgutils.for_range(builder, nblk_) as jt:
                j = jt.index
                cj = _splat(builder, builder.load(builder.gep(lanes[0], [j])), _VI)
                mj = _splat(builder, builder.load(builder.gep(lanes[1], [j])), _VF)
                lj = _splat(builder, builder.load(builder.gep(lanes[2], [j])), _VF)
                base = builder.mul(j, nvec_)
                sh = _splat(builder, builder.trunc(builder.sub(ir.Constant(i64, 23), mbits_), _I32), _VI)
                with cgutils.for_range(builder, nvec_) as it:
                    k = builder.add(base, it.index)
                    v = builder.load(builder.gep(pin, [k]), align=4)
                    if int_elems:
                        c = builder.bitcast(cj, _VF)
                    else:
                        e = builder.and_(builder.lshr(v, _vconst(_VI, 23)), _vconst(_VI, 0xFF))
                        e = builder.select(builder.icmp_unsigned(">", e, cj), e, cj)
                        c = builder.bitcast(builder.shl(builder.add(e, sh), _vconst(_VI, 23)), _VF)
                    builder.store(_round_body(builder, v, c, lj, mj, mode), builder.gep(pout, [k]), align=4)

        def by_mode(int_elems):
            with builder.if_else(builder.icmp_signed("==", mode_, ir.Constant(i64, 0))) as (m0, other):
                with m0:
                    blocks(0, int_elems)
                with other:
                    with builder.if_else(builder.icmp_signed("==", mode_, ir.Constant(i64, 2))) as (m2, m1):
                        with m2:
                            blocks(2, int_elems)
                        with m1:
                            blocks(1, int_elems)

        with builder.if_else(is_int_) as (ii, ff):
            with ii:
                by_mode(True)
            with ff:
                by_mode(False)
        bits16 = builder.bitcast(bad, ir.IntType(LANES))
        return builder.zext(bits16, ir.IntType(32))

    return types.uint32(bits, out, srow, b0, nblk, nvec, *ints[:1], types.boolean, mbits, emin, max_norm, scale_lo,
                        scale_hi, mode, types.boolean), codegen


def _block_maxima(builder, pin, nvec, nblk, umax):
    """Lane j: the largest magnitude bits of block j (nvec vectors each) of a group of
    nblk <= 16 blocks (lanes past nblk: 0). One loop nest over a stack array of sixteen
    vectors, then the transpose: sixteen separate loops made LLVM unroll each of them
    (and compile for a minute)."""
    i64 = ir.IntType(64)
    zero = _vconst(_VI, 0)
    slots = builder.bitcast(cgutils.alloca_once(builder, ir.ArrayType(_VI, LANES)), _VI.as_pointer())
    for j in range(LANES):
        builder.store(zero, builder.gep(slots, [ir.Constant(i64, j)]))
    acc = cgutils.alloca_once(builder, _VI)
    mask = _vconst(_VI, 0x7FFFFFFF)
    with cgutils.for_range(builder, nblk) as jt:
        builder.store(zero, acc)
        base = builder.mul(jt.index, nvec)
        with cgutils.for_range(builder, nvec) as it:
            v = builder.and_(builder.load(builder.gep(pin, [builder.add(base, it.index)]), align=4), mask)
            builder.store(builder.call(umax, [builder.load(acc), v]), acc)
        builder.store(builder.load(acc), builder.gep(slots, [jt.index]))
    vecs = [builder.load(builder.gep(slots, [ir.Constant(i64, j)])) for j in range(LANES)]
    return _transpose_max(builder, vecs, umax)


@intrinsic
def micro_group(typingctx, bits, out, srow, mrow, b0, nblk, mbits, scale_lo, scale_hi, mscale, mode):
    """Sixteen shared-microexponent blocks b0 .. b0 + 15 of 16 elements in pairs (one
    vector each), as `microq._pair_run`: E = the block's amax exponent (lanes of one
    vector, with `_plan_amax`'s range tests), per pair mu = max(pair) < 2^E, c =
    2^(E - mu - mbits + 23) per element, rounding clamped at c * mscale (`micro_round_run`).
    Writes values, exponents (srow) and microexponents (mrow, one int8 per pair); returns
    the mask of blocks the pair path refuses (bit j): the caller redoes them."""
    ints = (b0, nblk, mbits, scale_lo, scale_hi, mode)
    if not (_c_rows(bits, out, srow, mrow) and all(t == types.int64 for t in ints) and mscale == types.float32):
        return None

    def codegen(context, builder, sig, args):
        _, _, _, _, b0_, nblk_, mbits_, slo_, shi_, mscale_, mode_ = args
        mod = builder.module
        umax = cgutils.get_or_insert_function(mod, ir.FunctionType(_VI, [_VI, _VI]), "llvm.umax.v16i32")
        i64 = ir.IntType(64)
        one = ir.Constant(i64, 1)
        lo = builder.mul(b0_, ir.Constant(i64, LANES))
        pin = _vec_ptr(context, builder, sig.args[0], args[0], lo, _VI)
        pout = _vec_ptr(context, builder, sig.args[1], args[1], lo, _VF)
        am = _block_maxima(builder, pin, one, nblk_, umax)
        sp = lambda v: _splat(builder, builder.trunc(v, _I32), _VI)  # noqa: E731
        slt = lambda a, b: builder.icmp_signed("<", a, b)  # noqa: E731
        e = builder.sub(builder.lshr(am, _vconst(_VI, 23)), _vconst(_VI, 127))
        bad = builder.or_(builder.icmp_unsigned(">=", am, _vconst(_VI, 0x7F800000)),
                          builder.icmp_unsigned("<", am, _vconst(_VI, 0x800000)))
        bad = builder.or_(bad, builder.or_(slt(e, sp(slo_)), slt(sp(shi_), e)))
        ce = builder.add(builder.sub(e, sp(mbits_)), _vconst(_VI, 150))
        bad = builder.or_(bad, builder.or_(slt(ce, _vconst(_VI, 2)), slt(_vconst(_VI, 254), ce)))
        builder.store(e, _vec_ptr(context, builder, sig.args[2], args[2], b0_, _VI), align=4)
        stash = cgutils.alloca_once(builder, _VI)
        builder.store(am, stash)
        lanes = builder.bitcast(stash, _I32.as_pointer())
        pmu = _vec_ptr(context, builder, sig.args[3], args[3], builder.mul(b0_, ir.Constant(i64, 8)),
                       ir.VectorType(ir.IntType(8), 8))
        swap = ir.Constant(ir.VectorType(_I32, LANES), [k ^ 1 for k in range(LANES)])
        evens = ir.Constant(ir.VectorType(_I32, 8), list(range(0, LANES, 2)))
        sh = builder.trunc(builder.sub(ir.Constant(i64, 23), mbits_), _I32)
        vms = _splat(builder, mscale_, _VF)

        def blocks(mode):
            with cgutils.for_range(builder, nblk_) as jt:
                j = jt.index
                amj = builder.load(builder.gep(lanes, [j]))
                top = _splat(builder, builder.and_(amj, ir.Constant(_I32, 0x7F800000)), _VI)
                base = _splat(builder, builder.add(builder.lshr(amj, ir.Constant(_I32, 23)), sh), _VI)
                v = builder.load(builder.gep(pin, [j]), align=4)
                a = builder.and_(v, _vconst(_VI, 0x7FFFFFFF))
                pm = builder.call(umax, [a, builder.shuffle_vector(a, a, swap)])
                mu = builder.zext(builder.icmp_unsigned("<", pm, top), _VI)
                c = builder.bitcast(builder.shl(builder.sub(base, mu), _vconst(_VI, 23)), _VF)
                mv = builder.fmul(c, vms)
                builder.store(_round_body(builder, v, c, mv, mv, mode), builder.gep(pout, [j]), align=4)
                mu8 = builder.trunc(builder.shuffle_vector(mu, mu, evens), ir.VectorType(ir.IntType(8), 8))
                builder.store(mu8, builder.gep(pmu, [j]), align=1)

        with builder.if_else(builder.icmp_signed("==", mode_, ir.Constant(i64, 0))) as (m0, other):
            with m0:
                blocks(0)
            with other:
                with builder.if_else(builder.icmp_signed("==", mode_, ir.Constant(i64, 2))) as (m2, m1):
                    with m2:
                        blocks(2)
                    with m1:
                        blocks(1)
        return builder.zext(builder.bitcast(bad, ir.IntType(LANES)), ir.IntType(32))

    return types.uint32(bits, out, srow, mrow, b0, nblk, mbits, scale_lo, scale_hi, mscale, mode), codegen
