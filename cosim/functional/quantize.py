"""`quantize(x, fmt, ...)`: quantize then dequantize, for every registered format.

Block formats are quantized along `axis`; the array is viewed as (rows, L) with the
blocked axis last (a copy only when `axis` is not already last). The result keeps the
input's shape and is float32. `quantize_parts` also returns the scale information that
`encode` packs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import blockq as BQ
from . import kernels as K
from . import microq as MQ
from workloads.formats import get_format

from . import threads as T
from .threads import threads_for
from .params import (ElemParams, check_compat, check_input, element_params, normalize_axis, resolve,
                     rounding_code)

__all__ = ["quantize", "quantize_parts", "QParts", "tensor_scale", "scale_of_amax"]


@dataclass
class QParts:
    """Quantized values in the blocked layout plus what a packer needs."""

    fmt: object  # NumberFormat (block size already applied)
    shape: tuple
    axis: int | None  # normalised blocked axis (None: elementwise / per-tensor)
    y2d: np.ndarray  # dequantized float32, (rows, L) with the blocked axis last (flat for elementwise)
    scales: np.ndarray | None = None  # int32 exponents (mx/bfp/microexp), float32 (nvfp4, int_group, int)
    micro: np.ndarray | None = None  # int8 microexponent bits (microexp)
    zero_points: np.ndarray | None = None  # int32 (int_group with zero point)
    tensor_scale: float | None = None  # nvfp4 / per-tensor int (quantize(tensor_scale=array): one per row, an array)
    elem: ElemParams | None = None
    saturate: bool = True

    def dequantized(self) -> np.ndarray:
        if self.axis is None:
            return self.y2d.reshape(self.shape)
        return _from_rows(self.y2d, self.shape, self.axis)


# registry scale_format -> the element format its values are stored in
_SCALE_FORMAT = {"e4m3": "fp8_e4m3", "fp16": "fp16"}


def _grid_tables(ep: ElemParams, mode: int):
    """Non-negative grid of a narrow float (from its code table), the midpoints between
    neighbours, and whether a tie at each midpoint goes up in this rounding mode
    (even: to the neighbour with the even code; away: always)."""
    from .packing import fp_code_table

    grid = fp_code_table(ep)[: 2 ** (ep.bits - 1)]
    if not (np.all(np.isfinite(grid)) and np.all(np.diff(grid) > 0)):
        raise ValueError("grid rounding needs a format whose non-negative codes are finite and increasing")
    mids = (grid[:-1] + grid[1:]) / 2
    tie_up = np.ones(mids.size, dtype=np.bool_) if mode == 1 else (np.arange(1, grid.size) % 2 == 0)
    return grid.astype(np.float64), mids.astype(np.float64), tie_up


def _f32_bits(v: float) -> int:
    """Bit pattern of a float32 magnitude (max normals are exact in float32)."""
    return int(np.array([v], dtype=np.float32).view(np.uint32)[0])


def _to_rows(x: np.ndarray, axis: int) -> np.ndarray:
    moved = np.moveaxis(x, axis, -1)
    n_rows = int(np.prod(moved.shape[:-1], dtype=np.int64))  # explicit: -1 is ambiguous for empty axes
    return np.ascontiguousarray(moved).reshape(n_rows, x.shape[axis])


def _from_rows(y2d: np.ndarray, shape: tuple, axis: int) -> np.ndarray:
    moved_shape = tuple(s for i, s in enumerate(shape) if i != axis) + (shape[axis],)
    y = y2d.reshape(moved_shape)
    return np.moveaxis(y, -1, axis)


def quantize(x, fmt, *, axis=-1, block_size=None, rounding="even", saturate=None,
             flush_subnormals=False, compat="ocp", out=None, tensor_scale=None) -> np.ndarray:
    """Quantize `x` to `fmt` and return the dequantized float32 array (same shape).

    tensor_scale (NVFP4 and plain intN only): the fp32 per-tensor scale(s) to use instead
    of the one x's own max |x| gives (`tensor_scale(amax, fmt)` makes them from a max):
    a scalar, or an array broadcastable to x with size 1 along the blocked axis, so that
    x[i] quantizes as a separate call with scale tensor_scale[i] would (one call for many
    tensors, e.g. one per decode step). Values beyond a given scale's range saturate.

    out: a writeable C-contiguous float32 array of x's shape to hold the result (returned),
    as numpy's `out=`: a loop that quantizes many tensors of one shape reuses one buffer
    instead of having the kernel map and zero fresh pages on every call. The MX / BFP /
    shared-microexponent / NVFP4 / integer-group kernels write into it directly when the
    blocked axis is the last one (other paths compute a fresh result and copy it in);
    the values are the same bits either way.

    rounding: "even" (ties to even), "nearest"/"away" (ties away from zero),
    "floor"/"zero" (truncate toward zero) -- the reference's names and meanings.
    saturate: what happens to a value beyond the format's max normal (OCP OFP8 §5 and
    MX §6.3 conversions). None = the format's convention: formats WITHOUT an Inf
    encoding (fp8_e4m3, fp6, fp4, every MX/BFP element) saturate to +-max normal;
    formats with Inf (fp8_e5m2, fp16, bf16) overflow to +-Inf as IEEE casts do.
    True: saturate always (an Inf input of a no-Inf format becomes +-max normal too).
    False: non-saturating: +-Inf where the format has it, NaN where it only has NaN
    (E4M3's single NaN code, OFP8's non-saturating mode); formats with neither
    (fp6, fp4, MX integer elements) raise, since they can only saturate.
    compat="microxcaling" keeps the reference's own convention instead (§7): its
    elementwise casts default to non-saturating and overflow to Inf even for E4M3.
    flush_subnormals: elementwise casts flush inputs below the target's min normal
    to zero; MX formats zero every block whose max is a float32 subnormal (the
    reference's mx_flush_fp32_subnorms).
    compat: "ocp" (exact exponent extraction and rounding) or "microxcaling"
    (reproduce the reference's float32 log2 and floor(t+0.5) artefacts bit for bit).
    It affects the formats the reference implements (MX, BFP via MX-int elements,
    elementwise casts); shared-microexponent, NVFP4 and integer-group formats have no
    reference there and are always computed exactly.

    Inputs are converted to float32 first (the reference works in float32). NaN or
    +-Inf anywhere in a block turns the whole block into NaN; elementwise casts pass
    NaN/Inf through. Block formats keep a short last block as if zero-padded.
    """
    if out is None:
        return _sized_parts(x, fmt, axis, block_size, rounding, saturate, flush_subnormals, compat,
                            tensor_scale=tensor_scale).dequantized()
    _check_out(out, np.shape(x))
    direct = None if np.may_share_memory(out, x) else out  # the kernels read x while they write
    y = _sized_parts(x, fmt, axis, block_size, rounding, saturate, flush_subnormals, compat, out=direct,
                     tensor_scale=tensor_scale).dequantized()
    if not (y.ctypes.data == out.ctypes.data and y.strides == out.strides):  # a path that allocated its own
        np.copyto(out, y)
    return out


def _check_out(out, shape) -> None:
    """`quantize(out=...)`: one clear error for an unusable output array."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy array, got {type(out).__name__}")
    problems = [p for p, bad in (
        (f"dtype {out.dtype} (expected float32)", out.dtype != np.float32),
        (f"shape {out.shape} (expected x's shape {tuple(shape)})", out.shape != tuple(shape)),
        ("not C-contiguous", not out.flags.c_contiguous),
        ("read-only", not out.flags.writeable)) if bad]
    if problems:
        raise ValueError("out: " + "; ".join(problems))


class _Kernels:
    """The row kernels quantize_parts calls: the parallel ones, or their serial twins
    (cosim.functional.threads.serial_twin, same numbers) for arrays below the
    threading threshold. Twins are made on first use."""

    _NAMES = {"mx_rows": BQ, "mx_rows_vec": BQ, "mx_cols": BQ, "microexp_rows": MQ, "elem_flat": K, "finite_amax": K,
              "nvfp4_rows": K, "int_group_rows": K}

    def __init__(self, serial: bool):
        self._serial = serial

    def __getattr__(self, name):
        if name not in self._NAMES:  # hasattr(kern, name) must read False, not raise
            raise AttributeError(name)
        kernel = getattr(self._NAMES[name], name)
        if self._serial:
            kernel = T.serial_twin(kernel)
        setattr(self, name, kernel)
        return kernel


_PARALLEL, _SERIAL = _Kernels(False), _Kernels(True)


def quantize_parts(x, fmt, *, axis=-1, block_size=None, rounding="even", saturate=None,
                   flush_subnormals=False, compat="ocp") -> QParts:
    """`quantize` with the scale information kept (see `QParts`); small arrays run on one
    numba thread, through the kernels' serial twins (cosim.functional.threads)."""
    return _sized_parts(x, fmt, axis, block_size, rounding, saturate, flush_subnormals, compat)


def _sized_parts(x, fmt, axis, block_size, rounding, saturate, flush_subnormals, compat, out=None,
                 tensor_scale=None) -> QParts:
    """`_quantize_parts` with the kernels and thread count x's size calls for: below the
    threading threshold one numba thread and the serial twins, else all threads and the
    parallel kernels (cosim.functional.threads)."""
    n = int(np.size(x))
    with threads_for(n):
        return _quantize_parts(x, fmt, axis, block_size, rounding, saturate, flush_subnormals, compat,
                               _SERIAL if T.is_small(n) else _PARALLEL, out=out, tensor_scale=tensor_scale)


def _quantize_parts(x, fmt, axis, block_size, rounding, saturate, flush_subnormals, compat, kern,
                    out=None, tensor_scale=None) -> QParts:
    """`kern`: any namespace with the row kernels (the parallel/serial sets here; another
    revision's modules in benchmarks/quantize_ab.py, the reference kernels in the tests);
    `out`: a preallocated row-layout result for the MX/BFP/microexponent paths (the A/B's
    kernel-only timing, `quantize(out=...)`; x's shape or the row layout, C order), else a
    fresh array as `quantize` returns."""
    if saturate is not None and not isinstance(saturate, (bool, np.bool_)):  # "no" must not mean True
        raise ValueError(f"saturate must be None, True or False, got {saturate!r}")
    if not isinstance(flush_subnormals, (bool, np.bool_)):
        raise ValueError(f"flush_subnormals must be True or False, got {flush_subnormals!r}")
    f = resolve(fmt, block_size)
    mode = rounding_code(rounding)
    microx = check_compat(compat)
    xf = check_input(x)
    if tensor_scale is not None and f.family not in ("nvfp4", "int"):
        raise ValueError(f"tensor_scale: format {f.name!r} ({f.family}) has no per-tensor scale; it applies to "
                         f"NVFP4 and plain intN only")
    if f.family == "float":
        return _elementwise(xf, f, mode, microx, saturate, flush_subnormals, kern, out)
    if f.family == "int":
        return _per_tensor_int(xf, f, mode, kern, _given_scale(tensor_scale, xf.shape, None))
    ax = normalize_axis(axis, xf.ndim)
    if f.family in ("mx", "bfp") and ax == 0 and xf.ndim >= 2 and xf.shape[0] > 0 and xf.size >= 16 * xf.shape[0]:
        return _mx_first_axis(xf, f, mode, microx, saturate, flush_subnormals, kern)
    rows = _to_rows(xf, ax)
    # a caller's output (full shape, C order) is the row layout itself when the blocked axis is last
    given = out is not None and ax == xf.ndim - 1
    out = out.reshape(rows.shape) if given else np.empty_like(rows)
    nb = -(-rows.shape[1] // f.block_size)
    scale_hi = 2 ** (f.scale_bits - 1) - 1  # E8M0 / 8-bit exponent range [-127, 127] (§2)
    if f.family in ("mx", "bfp"):
        ep = element_params(f)
        sexp = np.empty((rows.shape[0], nb), dtype=np.int32)
        sat = _saturation(f.name, ep, saturate, microx, default=True, default_microx=True)
        # one pass with explicit vectors where it applies; a kernel namespace without it (the
        # reference, another revision's) has the two-pass kernel only
        vec = hasattr(kern, "mx_rows_vec") and BQ.vec_serves(f.block_size, microx)
        (kern.mx_rows_vec if vec else kern.mx_rows)(
            rows.view(np.uint32), rows, out, sexp, f.block_size, ep.emax, ep.is_int, ep.mbits, ep.emin, ep.max_norm,
            -scale_hi, scale_hi, mode, microx, bool(flush_subnormals), sat, K.POW2)
        if not microx and not sat:  # only a non-saturating overflow can leave Inf here
            _no_inf_encoding(out, ep, sat)
        return QParts(f, xf.shape, ax, out, scales=sexp, elem=ep, saturate=sat)
    if f.family == "microexp":
        ep = element_params(f)
        sexp = np.empty((rows.shape[0], nb), dtype=np.int32)
        micro = np.empty((rows.shape[0], nb * (f.block_size // f.subblock_size)), dtype=np.int8)
        kern.microexp_rows(rows.view(np.uint32), rows, out, sexp, micro, f.block_size, f.subblock_size, ep.mbits,
                        ep.max_norm, -scale_hi, scale_hi, mode, K.POW2)
        return QParts(f, xf.shape, ax, out, scales=sexp, micro=micro, elem=ep)
    if f.family == "nvfp4":
        ep = element_params(f)
        sp = element_params(get_format(_SCALE_FORMAT[f.scale_format]))
        if tensor_scale is None:
            amax = float(kern.finite_amax(xf.reshape(-1))) if xf.size else 0.0
            ts = float(scale_of_amax(amax, sp.max_norm * ep.max_norm))
            row_ts = np.full(rows.shape[0], ts)
        else:  # one given scale per row of the blocked layout
            ts = _given_scale(tensor_scale, xf.shape, ax)
            row_ts = np.ascontiguousarray(_to_rows(ts, ax).reshape(-1)) if ts.ndim else np.full(rows.shape[0], ts)
            ts = float(ts) if ts.ndim == 0 else row_ts
        bscale = np.empty((rows.shape[0], nb), dtype=np.float32)
        grid, mids, tie_up = _grid_tables(ep, mode)
        kern.nvfp4_rows(rows, out, bscale, f.block_size, row_ts, mode, sp.mbits, sp.emin, sp.max_norm, ep.max_norm,
                        grid, mids, tie_up)
        return QParts(f, xf.shape, ax, out, scales=bscale, tensor_scale=ts, elem=ep)
    if f.family == "int_group":
        scales = np.empty((rows.shape[0], nb), dtype=np.float32)
        zps = np.empty((rows.shape[0], nb), dtype=np.int32)
        sp = element_params(get_format(_SCALE_FORMAT[f.scale_format]))
        kern.int_group_rows(rows, out, scales, zps, f.block_size, f.element_bits, not f.symmetric, mode, sp.mbits,
                         sp.emin, sp.max_norm)
        return QParts(f, xf.shape, ax, out, scales=scales,
                      zero_points=None if f.symmetric else zps)
    raise ValueError(f"format {f.name!r}: family {f.family!r} has no quantizer")  # pragma: no cover


def _mx_first_axis(xf, f, mode, microx, saturate, flush, kern) -> QParts:
    """MX / BFP blocks along axis 0 without transposing: x as (K, Q), blocks down the
    columns (`blockq.mx_cols`, bit-identical to the row kernel on the transposed array).
    The blocked layout `y2d` is then the transposed view of the (K, Q) result."""
    K_ = xf.shape[0]
    x2 = xf.reshape(K_, -1)
    out = np.empty_like(x2)
    nb = -(-K_ // f.block_size)
    scale_hi = 2 ** (f.scale_bits - 1) - 1
    ep = element_params(f)
    sexp = np.empty((nb, x2.shape[1]), dtype=np.int32)
    sat = _saturation(f.name, ep, saturate, microx, default=True, default_microx=True)
    kern.mx_cols(x2.view(np.uint32), x2, out, sexp, f.block_size, ep.emax, ep.is_int, ep.mbits, ep.emin, ep.max_norm,
               -scale_hi, scale_hi, mode, microx, bool(flush), sat, K.POW2)
    if not microx and not sat:
        _no_inf_encoding(out, ep, sat)
    return QParts(f, xf.shape, 0, out.T, scales=np.ascontiguousarray(sexp.T), elem=ep, saturate=sat)


def _elementwise(xf, f, mode, microx, saturate, flush, kern, out=None) -> QParts:
    """Elementwise casts; `out`: a caller's C-contiguous result of x's size, written directly."""
    flat = xf.reshape(-1)
    if f.name == "fp32":  # the input already is fp32: identity
        return QParts(f, xf.shape, None, flat.copy(), elem=element_params(f))
    ep = element_params(f)
    # OCP: no-Inf formats saturate by default; the reference's casts never do (§7)
    sat = _saturation(f.name, ep, saturate, microx, default=not ep.has_inf, default_microx=False)
    out = np.empty_like(flat) if out is None else out.reshape(-1)
    kern.elem_flat(flat.view(np.uint32), flat, out, out.view(np.uint32), ep.mbits, ep.emin, ep.max_norm,
                _f32_bits(ep.max_norm), float(f.min_normal), mode, microx, sat, bool(flush), K.POW2)
    if not microx and not ep.has_inf:
        _no_inf_encoding(out, ep, sat)
    return QParts(f, xf.shape, None, out, elem=ep, saturate=sat)


def _saturation(name: str, ep: ElemParams, saturate, microx: bool, default: bool, default_microx: bool) -> bool:
    """Resolve the overflow mode (see `quantize`); a non-saturating cast into a format
    with neither Inf nor NaN has no defined result, so it is refused (OCP compat)."""
    if saturate is None:
        return default_microx if microx else default
    sat = bool(saturate)
    if not sat and not microx and not (ep.has_inf or ep.has_nan):
        raise ValueError(f"format {name!r} has no Inf/NaN encoding: values beyond its max normal "
                         f"{ep.max_norm:g} can only saturate; use saturate=True (or None, the default)")
    return sat


def _no_inf_encoding(out: np.ndarray, ep: ElemParams, sat: bool) -> None:
    """Formats without Inf (E4M3, fp6, fp4, MX elements): an Inf left by the kernel (an
    overflow in non-saturating mode, or an Inf input passed through) becomes what the
    format can hold: +-max normal when saturating, NaN otherwise (OFP8 §5)."""
    inf = np.isinf(out)
    if inf.any():
        out[inf] = np.copysign(np.float32(ep.max_norm), out[inf]) if sat else np.float32(np.nan)


_F32_MAX = float(np.finfo(np.float32).max)


def _per_tensor_int(xf, f, mode, kern, given=None) -> QParts:
    """Plain int8/int4/int2 with one symmetric float32 scale per tensor: s = amax/qmax
    (`given`: the scale(s) to use instead, a float64 scalar or an array of x's shape's
    broadcast). Float64 work runs in blocks of 2^18 elements so memory stays near the
    output's size."""
    flat = xf.reshape(-1)
    qmax = float(f.max_normal)
    if given is None:
        amax = float(kern.finite_amax(flat)) if flat.size else 0.0  # max |x| over finite entries
        scale = float(scale_of_amax(amax, qmax))
        per = None
    elif given.ndim == 0:
        scale, per = float(given), None
    else:
        scale, per = given, np.broadcast_to(given, xf.shape).reshape(-1)
    y = np.empty(flat.size, dtype=np.float32)
    step = 1 << 18
    for i in range(0, flat.size, step):
        blk = flat[i:i + step].astype(np.float64)
        s = scale if per is None else per[i:i + step]
        v = np.abs(blk) / s
        if mode == 0:
            q = np.rint(v)
        elif mode == 1:
            fl = np.floor(v)
            q = fl + (v - fl >= 0.5)
        else:
            q = np.floor(v)
        q = np.minimum(q, qmax) * np.sign(blk)
        # scale is amax/qmax rounded to float32, so qmax*scale can land a few ulps above
        # amax; for amax near float32's max that product would overflow to Inf, so clip to
        # the largest finite float32 (a no-op for every other input)
        out = np.clip(q * s, -_F32_MAX, _F32_MAX).astype(np.float32)
        out[~np.isfinite(blk)] = np.nan
        y[i:i + step] = out
    return QParts(f, xf.shape, None, y, tensor_scale=scale)


def scale_of_amax(amax, denom: float) -> np.ndarray:
    """The fp32 scale a tensor's (or a head's, a call's) max |x| gives: amax / denom rounded to
    float32 (1 where amax is 0; 2^-149, the smallest float32, where the quotient underflows
    float32: 0 would give x/0 = NaN), as float64; elementwise. The one rule for every per-tensor
    scale: NVFP4's and plain intN's (`tensor_scale`, denom 2688 / qmax) and the scaled casts'
    (cosim.functional.scaled.amax_scale, denom the format's max normal)."""
    a = np.asarray(amax, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = (a / denom).astype(np.float32).astype(np.float64)
    s = np.where(a > 0, s, 1.0)
    return np.where(s == 0.0, float(np.float32(2.0 ** -149)), s)


def tensor_scale(amax, fmt) -> np.ndarray:
    """The fp32 per-tensor scale(s) NVFP4 and plain intN take from a tensor's max |x| over
    its finite entries, elementwise over an array of such maxima (float64 values that are
    float32 numbers): NVFP4 amax / (max E4M3 block scale x max E2M1 element) = amax/2688,
    intN amax / qmax (127, 7, 1); 1 where amax is 0. `quantize(x, fmt)` uses the one its
    input's max gives; `quantize(x, fmt, tensor_scale=...)` takes these."""
    f = resolve(fmt)
    if f.family == "int":
        return scale_of_amax(amax, float(f.max_normal))
    if f.family == "nvfp4":
        ep, sp = element_params(f), element_params(get_format(_SCALE_FORMAT[f.scale_format]))
        return scale_of_amax(amax, sp.max_norm * ep.max_norm)
    raise ValueError(f"tensor_scale: format {f.name!r} ({f.family}) has no per-tensor scale; NVFP4 and plain intN "
                     f"have one")


def _given_scale(scale, shape: tuple, axis: int | None) -> np.ndarray | None:
    """A caller's tensor_scale as float64, checked: positive and finite, broadcastable to
    x's `shape`, with size 1 along the blocked `axis` (None: elementwise, any broadcast).
    Returned 0-d for one scale, else broadcast to x's shape (axis kept at size 1)."""
    if scale is None:
        return None
    s = np.asarray(scale, np.float64)
    if s.size == 0 or not np.all(np.isfinite(s)) or not np.all(s > 0):
        raise ValueError(f"tensor_scale: got {np.ravel(s)[:4]}{'...' if s.size > 4 else ''}; expected positive "
                         f"finite fp32 scale(s)")
    if s.size == 1:
        return s.reshape(())
    target = list(shape)
    if axis is not None:
        target[axis] = 1
    if s.ndim <= len(shape):
        try:
            return np.broadcast_to(s, tuple(target))
        except ValueError:
            pass
    where = f" with size 1 along the blocked axis {axis}" if axis is not None else ""
    raise ValueError(f"tensor_scale: shape {s.shape} does not broadcast to x's shape {tuple(shape)}{where} (one "
                     f"scale per tensor quantized alone, never one per element of a block)")
