"""Packed storage: `encode(x, fmt) -> QTensor`, `decode(q)`, `.save` / `QTensor.load`.

A QTensor holds exactly the bits a device would store:
- element codes, bit-packed (two fp4 codes per byte, 6-bit codes across byte borders);
- per-block scales: E8M0 / 8-bit shared exponents as biased bytes (0xFF = NaN block),
  NVFP4's E4M3 scale codes, or fp16 group scales as 16-bit patterns;
- shared-microexponent bits (1 per pair, packed) and integer zero points (packed;
  ``_symz`` stores its constant zero 2^(b-1) per group with unsigned codes, GPTQ's layout);
- one float32 tensor scale (NVFP4, per-tensor int).
`nbytes` is the sum of those buffers, so it equals the registry's bits_per_element
accounting (plus the 4-byte tensor scale) whenever the blocked length is a multiple
of the block size.

Element codes follow the blocked layout: the blocked axis moved last, row-major.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from workloads.formats import get_format

from . import kernels as K
from .packing import fp_code_table, fp_encode, pack_bits, unpack_bits
from .params import element_params
from .quantize import _SCALE_FORMAT, QParts, _from_rows, quantize_parts
from .stream import check_layout, decode_in_chunks, load_npz, pack_in_chunks

__all__ = ["QTensor", "encode", "decode"]


@dataclass
class QTensor:
    fmt: str
    shape: tuple
    axis: int | None
    block_size: int | None
    codes: np.ndarray  # uint8, packed element codes
    scales: np.ndarray | None = None  # uint8 (exponent / E4M3 codes) or uint16 (fp16 bits)
    micro: np.ndarray | None = None  # uint8, packed microexponent bits
    zero_points: np.ndarray | None = None  # uint8, packed zero points
    tensor_scale: float | None = None
    meta: dict = field(default_factory=dict)  # how it was produced (rounding, compat, ...)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        n = self.codes.nbytes
        for a in (self.scales, self.micro, self.zero_points):
            if a is not None:
                n += a.nbytes
        if self.tensor_scale is not None:
            n += 4
        return int(n)

    @property
    def format(self):
        f = get_format(self.fmt)
        return f.with_block_size(self.block_size) if self.block_size and f.is_block else f

    def decode(self) -> np.ndarray:
        return decode(self)

    def save(self, path) -> None:
        arrays = {"codes": self.codes}
        for k in ("scales", "micro", "zero_points"):
            if getattr(self, k) is not None:
                arrays[k] = getattr(self, k)
        header = dict(fmt=self.fmt, shape=list(self.shape), axis=self.axis, block_size=self.block_size,
                      tensor_scale=self.tensor_scale, meta=self.meta, version=1)
        np.savez(path, header=np.array(json.dumps(header)), **arrays)

    @classmethod
    def load(cls, path) -> "QTensor":
        """Read a .npz written by `save`; every size is checked against the bytes present."""
        try:
            arrays = load_npz(Path(path))
            header = json.loads(str(arrays.pop("header")))
            if not isinstance(header, dict) or not isinstance(header.get("shape"), list):
                raise ValueError("header: expected a JSON object with a shape list")
            q = cls(fmt=header["fmt"], shape=tuple(header["shape"]), axis=header.get("axis"),
                    block_size=header.get("block_size"), codes=arrays["codes"], scales=arrays.get("scales"),
                    micro=arrays.get("micro"), zero_points=arrays.get("zero_points"),
                    tensor_scale=header.get("tensor_scale"), meta=header.get("meta", {}))
        except (KeyError, TypeError, ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
            raise ValueError(f"{path}: not a valid QTensor file ({type(e).__name__}: {str(e)[:200]})") from None
        check_layout(q)
        return q


def _per_element(a: np.ndarray, block: int, L: int) -> np.ndarray:
    """Broadcast a per-block array (rows, nb) to (rows, L)."""
    return np.repeat(a, block, axis=1)[:, :L]


def _twos(n: np.ndarray, bits: int) -> np.ndarray:
    return n.astype(np.int64) & ((1 << bits) - 1)


def _from_twos(c: np.ndarray, bits: int) -> np.ndarray:
    c = c.astype(np.int64)
    return np.where(c >= 1 << (bits - 1), c - (1 << bits), c)


def _sign_mag(n: np.ndarray, neg: np.ndarray, bits: int) -> np.ndarray:
    return (neg.astype(np.int64) << (bits - 1)) | np.abs(n).astype(np.int64)


def _exp_bytes(sexp: np.ndarray) -> np.ndarray:
    return np.where(sexp == K.NAN_EXP, 255, sexp.astype(np.int64) + 127).astype(np.uint8)


def encode(x, fmt, *, axis=-1, block_size=None, rounding="even", saturate=None, flush_subnormals=False,
           compat="ocp") -> QTensor:
    """Quantize and pack. Arguments as for `quantize`. Elementwise formats without an
    Inf encoding (fp8_e4m3, fp6, fp4) saturate by default, since Inf cannot be stored."""
    f0 = get_format(fmt)
    if f0.family == "float" and not f0.has_inf and saturate is None:
        saturate = True
    parts = quantize_parts(x, fmt, axis=axis, block_size=block_size, rounding=rounding, saturate=saturate,
                           flush_subnormals=flush_subnormals, compat=compat)
    meta = dict(rounding=rounding, compat=compat, saturate=saturate, flush_subnormals=flush_subnormals)
    return pack_in_chunks(parts, meta, _pack_parts)  # bounded memory: packs row blocks


def _pack_parts(p: QParts, meta: dict) -> QTensor:
    f = p.fmt
    name = f.name
    base = dict(fmt=name, shape=tuple(p.shape), axis=p.axis, block_size=f.block_size, meta=meta)
    y = p.y2d.astype(np.float64)
    if f.family == "float":
        y32 = p.y2d
        if f.name in ("fp32", "tf32"):
            return QTensor(codes=y32.view(np.uint8).copy(), **base)
        if f.name == "bf16":
            return QTensor(codes=pack_bits(y32.view(np.uint32) >> 16, 16), **base)
        if f.name == "fp16":
            return QTensor(codes=pack_bits(y32.astype(np.float16).view(np.uint16), 16), **base)
        return QTensor(codes=pack_bits(fp_encode(y, p.elem, name), f.element_bits), **base)
    if f.family == "int":
        if not np.isfinite(y).all():
            raise ValueError(f"{name}: a per-tensor integer format cannot store NaN/Inf")
        n = np.rint(np.where(np.isfinite(y), y, 0.0) / p.tensor_scale)
        return QTensor(codes=pack_bits(_twos(n, f.element_bits), f.element_bits),
                       tensor_scale=p.tensor_scale, **base)
    rows, L = p.y2d.shape
    bs = f.block_size
    if f.family in ("mx", "bfp", "microexp"):
        ep = p.elem
        s_el = _per_element(p.scales, bs, L).astype(np.int64)
        nan_el = s_el == K.NAN_EXP
        s_el = np.where(nan_el, 0, s_el)
        micro = None
        if f.family == "microexp":
            mu = np.repeat(p.micro.astype(np.int64), f.subblock_size, axis=1)[:, :L]
            s_el = s_el - mu
            micro = pack_bits(p.micro.astype(np.uint8), 1)
        v = np.where(nan_el, 0.0, np.ldexp(y, -s_el))  # element value before the shared scale
        if ep.is_int:
            n = np.ldexp(v, ep.mbits)
            if f.family == "mx":  # OCP MXINT8: two's complement
                codes = _twos(n, ep.bits)
            else:  # BFP / microexponent: sign + magnitude
                codes = _sign_mag(n, np.signbit(v), ep.bits)
        else:
            codes = fp_encode(v, ep, name)
        return QTensor(codes=pack_bits(codes, f.element_bits), scales=_exp_bytes(p.scales).reshape(-1), micro=micro,
                       **base)
    if f.family == "nvfp4":
        ep = p.elem
        bscale = p.scales.astype(np.float64)
        d = _per_element(bscale, bs, L) * p.tensor_scale
        with np.errstate(invalid="ignore", divide="ignore"):
            v = np.where((d > 0) & np.isfinite(d), y / np.where(d > 0, d, 1.0), 0.0)
        v = np.where(np.isfinite(v), v, 0.0)
        # y = fl32(q * d): snap back onto the FP4 grid (the grid is far coarser than fp32)
        q = np.empty(v.size, dtype=np.float32)
        flat = np.ascontiguousarray(v.astype(np.float32).reshape(-1))
        K.elem_flat(flat.view(np.uint32), flat, q, q.view(np.uint32), ep.mbits, ep.emin, ep.max_norm,
                    int(np.array([ep.max_norm], np.float32).view(np.uint32)[0]), 0.0, 0, False, True, False,
                    K.POW2)
        q = q.reshape(v.shape).astype(np.float64)
        codes = fp_encode(np.where(np.signbit(y), -np.abs(q), np.abs(q)), ep, name)
        e4m3 = element_params(get_format(_SCALE_FORMAT[f.scale_format]))
        sc = np.where(np.isnan(bscale), np.nan, bscale)
        return QTensor(codes=pack_bits(codes, 4), scales=fp_encode(sc, e4m3, name).astype(np.uint8).reshape(-1),
                       tensor_scale=float(p.tensor_scale), **base)
    if f.family == "int_group":
        return _pack_int_group(p, y, base, L)
    raise ValueError(f"format {name!r}: no packer for family {f.family!r}")  # pragma: no cover


def _pack_int_group(p: QParts, y: np.ndarray, base: dict, L: int) -> QTensor:
    """fp16 group scales; two's-complement codes (symmetric), or unsigned codes against packed zero
    points (_zp; _symz's constant 2^(b-1), GPTQ's layout). `y`: the quantized rows in float64."""
    f = p.fmt
    bs = f.block_size
    sc = p.scales.astype(np.float64)
    sc_el = _per_element(sc, bs, L)
    ok = np.isfinite(sc_el) & (sc_el > 0)
    n = np.where(ok, y / np.where(ok, sc_el, 1.0), 0.0)
    b = f.element_bits
    if f.symmetric and f.zero_point_bits:
        # _symz (GPTQ sym: true): the checkpoint's layout, unsigned codes q = n + 2^(b-1)
        # and a stored zero per group, always 2^(b-1); decode reads it like _zp's zeros
        z = np.full(sc.shape, 1 << (b - 1), dtype=np.int64)
        codes = (np.rint(n) + (1 << (b - 1))).astype(np.int64)
        zp = pack_bits(z, b)
    elif f.symmetric:
        codes = _twos(np.rint(n), b)
        zp = None
    else:
        z_el = _per_element(p.zero_points, bs, L)
        codes = (np.rint(n) + z_el).astype(np.int64)
        zp = pack_bits(p.zero_points.astype(np.int64), b)
    return QTensor(codes=pack_bits(codes, b), scales=pack_bits(p.scales.astype(np.float16).view(np.uint16), 16),
                   zero_points=zp, **base)


def decode(q: QTensor) -> np.ndarray:
    """Unpack and dequantize; equals `quantize(x, ...)` of the same call bit for bit.
    The header is checked against the buffers first (a truncated `codes` array decoded
    to zeros); work runs in row blocks so memory stays near the output's size."""
    check_layout(q)
    return decode_in_chunks(q, _decode_whole)


def _decode_whole(q: QTensor) -> np.ndarray:
    f = q.format
    n = q.size
    if f.family == "float":
        if f.name in ("fp32", "tf32"):
            return q.codes.view(np.float32).reshape(q.shape).copy()
        c = unpack_bits(q.codes, 16 if f.name in ("bf16", "fp16") else f.element_bits, n)
        if f.name == "bf16":
            return (c.astype(np.uint32) << 16).view(np.float32).reshape(q.shape)
        if f.name == "fp16":
            return c.astype(np.uint16).view(np.float16).astype(np.float32).reshape(q.shape)
        return fp_code_table(element_params(f))[c].astype(np.float32).reshape(q.shape)
    if f.family == "int":
        c = _from_twos(unpack_bits(q.codes, f.element_bits, n), f.element_bits)
        return (c * q.tensor_scale).astype(np.float32).reshape(q.shape)
    axis = q.axis
    L = q.shape[axis]
    rows = int(np.prod([d for i, d in enumerate(q.shape) if i != axis], dtype=np.int64))
    bs = f.block_size
    nb = -(-L // bs)
    codes = unpack_bits(q.codes, f.element_bits, n).reshape(rows, L)
    if f.family in ("mx", "bfp", "microexp"):
        ep = element_params(f)
        sb = q.scales.reshape(rows, nb).astype(np.int64)
        s_el = _per_element(sb, bs, L)
        nan_el = s_el == 255
        s_el = s_el - 127
        if f.family == "microexp":
            nsub = sb.shape[1] * (bs // f.subblock_size)
            mu = unpack_bits(q.micro, 1, rows * nsub).reshape(rows, nsub)
            s_el = s_el - np.repeat(mu, f.subblock_size, axis=1)[:, :L]
        if ep.is_int:
            if f.family == "mx":
                v = _from_twos(codes, ep.bits).astype(np.float64)
            else:
                mag = codes & ((1 << (ep.bits - 1)) - 1)
                v = np.where(codes >> (ep.bits - 1), -mag.astype(np.float64), mag.astype(np.float64))
            v = np.ldexp(v, -ep.mbits)
        else:
            v = fp_code_table(ep)[codes]
        y = np.where(nan_el, np.nan, np.ldexp(v, np.where(nan_el, 0, s_el)))
    elif f.family == "nvfp4":
        ep = element_params(f)
        e4m3 = fp_code_table(element_params(get_format(_SCALE_FORMAT[f.scale_format])))
        bscale = e4m3[q.scales.reshape(rows, nb).astype(np.int64)]
        d = _per_element(bscale, bs, L) * q.tensor_scale
        y = fp_code_table(ep)[codes] * d
    elif f.family == "int_group":
        b = f.element_bits
        sc = unpack_bits(q.scales, 16, rows * nb).astype(np.uint16).view(np.float16)
        sc_el = _per_element(sc.astype(np.float64).reshape(rows, nb), bs, L)
        if f.symmetric and not f.zero_point_bits:
            v = _from_twos(codes, b).astype(np.float64)
        else:  # _zp, and _symz's stored constant zeros
            z = unpack_bits(q.zero_points, b, sc.size).reshape(rows, nb)
            v = (codes - _per_element(z, bs, L)).astype(np.float64)
        y = v * sc_el
    else:  # pragma: no cover
        raise ValueError(f"format {f.name!r}: no decoder for family {f.family!r}")
    return np.ascontiguousarray(_from_rows(y.astype(np.float32), tuple(q.shape), axis))
