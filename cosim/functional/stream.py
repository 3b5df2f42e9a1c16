"""Bounded memory for packed tensors: `encode` and `decode` in row blocks, and QTensor
sizes checked against the data actually present.

Why blocks: packing works in float64/int64 temporaries (several per element), so doing
a whole tensor at once took 11-36x its size (a 1 GiB tensor was OOM-killed). Packing
CHUNK elements at a time bounds the temporaries to a constant (~40 bytes x CHUNK); the
peak is then the input, the quantized rows (float32, 1x) and the packed result. Chunks
hold a multiple of 8 rows (elementwise: 8 elements), so every packed stream — element
codes, 1-bit microexponents, b-bit zero points — ends on a byte border and the pieces
are simply laid end to end: the result is byte-identical to packing in one go.

Why checks: a QTensor file is untrusted input. Its header's shape, block size and axis
decide how much `decode` allocates, so they are checked against the lengths of the
arrays really stored (a 1 KB file claiming a 4 GB shape is refused before any
allocation), and each .npy member's own header is checked against its bytes in the zip.
"""

from __future__ import annotations

import math
import zipfile

import numpy as np

from workloads.formats import FormatError, get_format

__all__ = ["CHUNK_ELEMENTS", "pack_in_chunks", "decode_in_chunks", "check_layout", "load_npz", "expected_sizes"]

CHUNK_ELEMENTS = 1 << 18  # elements per block of work: temporaries ~30 MB whatever the tensor size
MAX_ELEMENTS = 1 << 40  # a shape beyond this is not a tensor anyone stores


def _rows_per_chunk(L: int) -> int:
    r = max(1, CHUNK_ELEMENTS // max(L, 1))
    return max(8, r - r % 8)


def _bits(f) -> int:
    if f.family == "float":
        return 32 if f.name in ("fp32", "tf32") else 16 if f.name in ("bf16", "fp16") else f.element_bits
    return f.element_bits


def expected_sizes(f, shape: tuple, axis) -> dict:
    """Byte length of every buffer a QTensor of this format and shape holds."""
    n = int(np.prod(shape, dtype=np.int64)) if len(shape) else 1
    out = {"codes": -(-n * _bits(f) // 8)}
    if f.family in ("float", "int"):
        return out
    L = shape[axis]
    rows = n // L if L else 0
    nb = -(-L // f.block_size)
    if f.family in ("mx", "bfp", "microexp", "nvfp4"):
        out["scales"] = rows * nb
    if f.family == "microexp":
        out["micro"] = -(-rows * nb * (f.block_size // f.subblock_size) // 8)
    if f.family == "int_group":
        out["scales"] = 2 * rows * nb
        if f.zero_point_bits:  # _zp, and _symz's stored constant zeros
            out["zero_points"] = -(-rows * nb * f.element_bits // 8)
    return out


def check_layout(q) -> None:
    """Refuse a QTensor whose header does not match its buffers (ValueError naming the field)."""
    if not isinstance(q.fmt, str):
        raise ValueError(f"QTensor fmt: got {type(q.fmt).__name__}; expected a format name")
    try:
        f = get_format(q.fmt)
        if q.block_size is not None:
            if isinstance(q.block_size, bool) or not isinstance(q.block_size, (int, np.integer)):
                raise ValueError(f"QTensor block_size: got {q.block_size!r}; expected an integer")
            f = f.with_block_size(int(q.block_size)) if f.is_block else f
    except FormatError as e:
        raise ValueError(f"QTensor fmt/block_size: {e}") from None
    shape = q.shape
    if not isinstance(shape, tuple) or not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool)
                                               and d >= 0 for d in shape):
        raise ValueError(f"QTensor shape: got {str(shape)[:80]}; expected non-negative integers")
    if math.prod(int(d) for d in shape) > MAX_ELEMENTS:
        raise ValueError(f"QTensor shape: {str(shape)[:80]} has more than {MAX_ELEMENTS:,} elements")
    if f.is_block and f.family not in ("float", "int"):
        if not isinstance(q.axis, (int, np.integer)) or isinstance(q.axis, bool) or not 0 <= q.axis < len(shape):
            raise ValueError(f"QTensor axis: got {q.axis!r}; expected an axis of shape {shape}")
    ts = q.tensor_scale
    if ts is not None and (isinstance(ts, bool) or not isinstance(ts, (int, float)) or not math.isfinite(ts)):
        raise ValueError(f"QTensor tensor_scale: got {str(ts)[:40]!r}; expected a finite float or null")
    if f.family in ("nvfp4", "int") and ts is None:
        raise ValueError(f"QTensor tensor_scale: missing; format {q.fmt} needs its tensor scale")
    if f.family in ("float", "int") and (q.block_size is not None or q.axis is not None):
        raise ValueError(f"QTensor block_size/axis: got {q.block_size!r}/{q.axis!r}; expected null for the "
                         f"elementwise format {q.fmt}")
    for name, size in expected_sizes(f, tuple(int(d) for d in shape), q.axis).items():
        a = getattr(q, name)
        if a is None or not isinstance(a, np.ndarray) or a.dtype != np.uint8 or a.ndim != 1:
            raise ValueError(f"QTensor {name}: expected a 1-D uint8 array of {size} bytes, got "
                             f"{None if a is None else (a.dtype, a.shape)}")
        if a.size != size:
            raise ValueError(f"QTensor {name}: holds {a.size} bytes; the header ({q.fmt}, shape {shape}) "
                             f"needs exactly {size} (truncated or padded data)")


def load_npz(path) -> dict:
    """Arrays of a QTensor .npz, each checked against its bytes in the zip before it is
    allocated (an .npy header may claim any shape)."""
    out = {}
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            if info.file_size > (1 << 40):
                raise ValueError(f"{path}: member {name!r} claims {info.file_size} bytes")
            with z.open(info) as fh:
                version = np.lib.format.read_magic(fh)
                read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                        else np.lib.format.read_array_header_2_0)
                shape, fortran, dtype = read(fh)
                if dtype.hasobject:
                    raise ValueError(f"{path}: member {name!r} holds Python objects; refused")
                need = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
                if need > info.file_size:
                    raise ValueError(f"{path}: member {name!r} claims shape {shape} ({need} bytes) but holds "
                                     f"{info.file_size} bytes")
                body = fh.read(need + 1)
            if len(body) != need:
                raise ValueError(f"{path}: member {name!r}: {len(body)} data bytes; its header says {need}")
            arr = np.frombuffer(body, dtype=dtype)
            out[name] = arr.reshape(shape, order="F" if fortran else "C") if shape else arr.reshape(())
    return out


def pack_in_chunks(parts, meta: dict, pack):
    """`pack(parts) -> QTensor` applied to row blocks of `parts`, buffers laid end to end."""
    from .quantize import QParts

    if parts.y2d.ndim == 1:
        n = parts.y2d.size
        step, total = max(8, CHUNK_ELEMENTS - CHUNK_ELEMENTS % 8), n
    else:
        step, total = _rows_per_chunk(parts.y2d.shape[1]), parts.y2d.shape[0]
    if total <= step:
        return pack(parts, meta)
    full = None  # built from the first piece's class (no import of .qtensor: no cycle)
    head = dict(fmt=parts.fmt.name, shape=tuple(parts.shape), axis=parts.axis, block_size=parts.fmt.block_size,
                codes=None, tensor_scale=parts.tensor_scale, meta=meta)
    sizes = expected_sizes(parts.fmt, tuple(parts.shape), parts.axis)
    bufs = {k: np.empty(v, dtype=np.uint8) for k, v in sizes.items()}  # the result, filled in place
    at = dict.fromkeys(bufs, 0)
    for r0 in range(0, total, step):
        sl = slice(r0, min(total, r0 + step))
        sub = QParts(parts.fmt, parts.shape, parts.axis, parts.y2d[sl],
                     scales=None if parts.scales is None else parts.scales[sl],
                     micro=None if parts.micro is None else parts.micro[sl],
                     zero_points=None if parts.zero_points is None else parts.zero_points[sl],
                     tensor_scale=parts.tensor_scale, elem=parts.elem, saturate=parts.saturate)
        piece = pack(sub, meta)
        if full is None:
            full = type(piece)(**head)
        full.tensor_scale = piece.tensor_scale
        for k in bufs:
            a = getattr(piece, k)
            bufs[k][at[k]: at[k] + a.size] = a
            at[k] += a.size
    assert at == sizes, (at, sizes)  # every byte written exactly once
    for k, v in bufs.items():
        setattr(full, k, v)
    return full


def decode_in_chunks(q, decode_one) -> np.ndarray:
    """`decode_one(QTensor) -> float32` on row blocks, written straight into the result."""
    QTensor = type(q)  # noqa: N806 (the caller's class; importing .qtensor would be a cycle)

    f = q.format
    n = q.size
    shape = tuple(q.shape)
    if f.family in ("float", "int"):
        step = max(8, CHUNK_ELEMENTS - CHUNK_ELEMENTS % 8)
        if n <= step:
            return decode_one(q)
        bits = _bits(f)
        out = np.empty(n, dtype=np.float32)
        for e0 in range(0, n, step):
            e1 = min(n, e0 + step)
            sub = QTensor(fmt=q.fmt, shape=(e1 - e0,), axis=None, block_size=q.block_size,
                          codes=q.codes[e0 * bits // 8: -(-e1 * bits // 8)], tensor_scale=q.tensor_scale,
                          meta=q.meta)
            out[e0:e1] = decode_one(sub).reshape(-1)
        return out.reshape(shape)
    axis = q.axis
    L = shape[axis]
    rows = n // L if L else 0
    step = _rows_per_chunk(L)
    if rows <= step:
        return decode_one(q)
    out = np.empty(shape, dtype=np.float32)
    moved = np.moveaxis(out, axis, -1)
    lead = moved.shape[:-1]
    sizes = expected_sizes(f, (step, L), 1)
    for r0 in range(0, rows, step):
        r1 = min(rows, r0 + step)
        k = r1 - r0
        part = {}
        for name, per in sizes.items():
            if name == "codes":
                continue
            a = getattr(q, name)
            part[name] = a[r0 * per // step: r0 * per // step + -(-k * per // step)]
        bits = _bits(f)
        sub = QTensor(fmt=q.fmt, shape=(k, L), axis=1, block_size=q.block_size,
                      codes=q.codes[r0 * L * bits // 8: -(-r1 * L * bits // 8)], tensor_scale=q.tensor_scale,
                      meta=q.meta, **part)
        y = decode_one(sub)
        if axis == len(shape) - 1:
            out.reshape(rows, L)[r0:r1] = y
        else:
            moved[np.unravel_index(np.arange(r0, r1), lead)] = y
    return out
