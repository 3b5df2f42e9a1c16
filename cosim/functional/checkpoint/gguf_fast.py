"""A direct reader of little-endian GGUF v2/v3 files: metadata in one pass over the
header bytes, tensors dequantized whole-tensor in numpy.

Why not only the `gguf` package: its reader builds numpy views for every metadata value
(SmolLM2's 49k tokens and 49k merges: ~250k slices, 0.7 s) and its dequantizer walks
row groups in Python (0.8 s for SmolLM2-135M); this reader takes 0.1 s and 0.3 s. It
returns exactly what `gguf` gives (`read_gguf` falls back to it for anything else: big-
endian files, other versions, value or tensor types outside the table below), and the
dequantized values are bit-identical: the same float32 operations in the same order as
`gguf.quants` (tests/test_gguf_fast.py compares both on random blocks and on the
bundled checkpoint).

Layout (GGUF spec, ggml docs/gguf.md): magic "GGUF", version u32, tensor count u64,
metadata count u64; each metadata entry = key (u64 length + UTF-8), value type u32,
value; then per tensor: name, n_dims u32, dims u64 (fastest first), type u32, offset u64;
tensor data starts at the next multiple of `general.alignment` (default 32).
"""

from __future__ import annotations

import struct
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

__all__ = ["parse_gguf", "dequantize_fast", "GGUF_TYPES"]

# ggml type code -> (name, values per block, bytes per block): ggml.h / gguf.constants
GGUF_TYPES = {0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20), 8: ("Q8_0", 32, 34),
              30: ("BF16", 1, 2)}
# metadata value type -> struct code (8: string, 9: array are read apart)
_SCALAR = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}


class _Decline(Exception):
    """Not a file this reader handles: the caller uses the `gguf` package instead."""


def _scalar(buf, off: int, t: int):
    code = _SCALAR.get(t)
    if code is None:
        raise _Decline(f"value type {t}")
    size = struct.calcsize(code)
    v = struct.unpack_from("<" + code, buf, off)[0]
    if t == 7:  # the package reads a bool byte as numpy bool: any nonzero byte is True
        v = bool(buf[off])
    return v, off + size


def _string(buf, off: int) -> tuple[bytes, int]:
    n = int.from_bytes(buf[off:off + 8], "little")
    end = off + 8 + n
    if end > len(buf):
        raise _Decline("string beyond the end of the file")
    return bytes(buf[off + 8:end]), end


def _value(buf, off: int, t: int):
    """(value as `gguf`'s ReaderField.contents() gives it, next offset). Text that is not
    UTF-8 makes the value None, as read_gguf's field reader does."""
    if t == 8:
        raw, off = _string(buf, off)
        return _utf8(raw), off
    if t != 9:
        return _scalar(buf, off, t)
    sub = struct.unpack_from("<I", buf, off)[0]
    n = struct.unpack_from("<Q", buf, off + 4)[0]
    off += 12
    if sub == 8:
        out = []
        for _ in range(n):
            raw, off = _string(buf, off)
            out.append(raw)
        try:
            return [s.decode("utf-8") for s in out], off
        except UnicodeDecodeError:
            return None, off
    code = _SCALAR.get(sub)
    if code is None:
        raise _Decline(f"array of value type {sub}")
    size = struct.calcsize(code)
    if off + n * size > len(buf):
        raise _Decline("array beyond the end of the file")
    arr = np.frombuffer(buf, dtype="<" + code, count=n, offset=off)
    return (arr.astype(bool) if sub == 7 else arr).tolist(), off + n * size


def _utf8(raw: bytes):
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def parse_gguf(path: Path):
    """(fields, [(name, type code, dims fastest-first, data as a uint8 view)]) or None
    when the file is not one this reader handles (then use the `gguf` package)."""
    data = np.memmap(str(path), mode="r")
    buf = memoryview(np.asarray(data))  # a plain view: slicing it copies nothing
    try:
        return _parse(buf, np.asarray(data))
    except (_Decline, struct.error, IndexError, ValueError, OverflowError):
        return None


def _parse(buf, arr):
    if bytes(buf[:4]) != b"GGUF":
        raise _Decline("magic")
    version = struct.unpack_from("<I", buf, 4)[0]
    if version not in (2, 3):
        raise _Decline(f"version {version}")  # also a big-endian file (its version reads byte-swapped)
    n_tensors, n_kv = struct.unpack_from("<QQ", buf, 8)
    fields = {"GGUF.version": version, "GGUF.tensor_count": n_tensors, "GGUF.kv_count": n_kv}
    off = 24
    for _ in range(n_kv):
        key, off = _string(buf, off)
        t = struct.unpack_from("<I", buf, off)[0]
        v, off = _value(buf, off + 4, t)
        name = _utf8(key)
        if name is None or name in fields:
            raise _Decline("key")  # the package refuses duplicates: let it say so
        fields[name] = v
    infos = []
    for _ in range(n_tensors):
        name, off = _string(buf, off)
        nd = struct.unpack_from("<I", buf, off)[0]
        dims = struct.unpack_from(f"<{nd}Q", buf, off + 4)
        t, rel = struct.unpack_from("<IQ", buf, off + 4 + 8 * nd)
        off += 4 + 8 * nd + 12
        if t not in GGUF_TYPES or _utf8(name) is None:
            raise _Decline(f"tensor type {t}")
        infos.append((_utf8(name), t, tuple(int(d) for d in dims), rel))
    align = fields.get("general.alignment", 32)
    if isinstance(align, bool) or not isinstance(align, int) or align <= 0:
        raise _Decline("alignment")
    start = off + (-off) % align
    tensors, names = [], set()
    for name, t, dims, rel in infos:
        _, per_block, block_bytes = GGUF_TYPES[t]
        count = int(np.prod(dims, dtype=np.int64)) if dims else 1
        if name in names or count % per_block:
            raise _Decline("tensor layout")
        names.add(name)
        begin, nbytes = start + rel, count // per_block * block_bytes
        if begin + nbytes > len(arr):
            raise _Decline("tensor beyond the end of the file")
        tensors.append((name, t, dims, arr[begin:begin + nbytes]))
    return fields, tensors


def dequantize_fast(raw: np.ndarray, t: int) -> np.ndarray:
    """One tensor's bytes -> float32 values (flat), the same operations as gguf.quants."""
    kind = GGUF_TYPES[t][0]
    if kind == "F32":
        return raw.view("<f4")
    if kind == "F16":
        return raw.view("<f2").astype(np.float32)
    if kind == "BF16":
        return (raw.view("<i2").astype(np.int32) << 16).view(np.float32)
    _, per_block, block_bytes = GGUF_TYPES[t]
    blocks = raw.reshape(-1, block_bytes)
    d = np.ascontiguousarray(blocks[:, :2]).view("<f2").astype(np.float32).reshape(-1)  # (n,)
    out = np.empty((len(blocks), per_block), dtype=np.float32)
    from . import gguf_kernels as K  # numba: imported with the first quantized tensor
    if kind == "Q8_0":
        K.q8_0_rows(blocks[:, 2:].view(np.int8), d, out)
    elif kind == "Q4_0":
        K.q4_0_rows(blocks[:, 2:], d, out)
    else:
        m = np.ascontiguousarray(blocks[:, 2:4]).view("<f2").astype(np.float32).reshape(-1)
        K.q4_1_rows(blocks[:, 4:], d, m, out)
    return out.reshape(-1)


def dequantize_all(tensors: list) -> list:
    """Every tensor dequantized, two at a time (the kernels release the GIL)."""
    with ThreadPoolExecutor(max_workers=2) as ex:
        return list(ex.map(lambda x: dequantize_fast(x[3], x[1]), tensors))
