"""Reading (lazily) and writing safetensors checkpoints with numpy alone.

Format (huggingface/safetensors): 8-byte little-endian header length N, N bytes of JSON
``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}``,
then the raw little-endian tensor bytes (offsets relative to the end of the header).

`SafetensorsFile` parses the header only; `tensor(name)` maps just that tensor's byte
range (np.memmap), so a twin that needs one layer's q_proj never reads the rest of a
multi-gigabyte checkpoint. bf16 is widened to float32 on access.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from workloads.io import InputError

__all__ = ["SafetensorsFile", "write_safetensors", "hf_weight"]

_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.uint16, "I64": np.int64,
           "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}
_NAMES = {np.dtype(np.float64): "F64", np.dtype(np.float32): "F32", np.dtype(np.float16): "F16",
          np.dtype(np.int64): "I64", np.dtype(np.int32): "I32", np.dtype(np.int16): "I16",
          np.dtype(np.int8): "I8", np.dtype(np.uint8): "U8", np.dtype(np.bool_): "BOOL"}
MAX_HEADER_BYTES = 100 * 1024 * 1024


def write_safetensors(path: str | Path, tensors: dict[str, np.ndarray], bf16: tuple[str, ...] = (),
                      metadata: dict | None = None) -> Path:
    """Write `tensors`; names listed in `bf16` are stored as bfloat16 (round to nearest even)."""
    path = Path(path)
    header, blobs, offset = {}, [], 0
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr)
        if name in bf16:
            u = arr.astype(np.float32).view(np.uint32)
            u = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)  # RNE to the upper half
            data, dtype = u.astype("<u2").tobytes(), "BF16"
        else:
            dtype = _NAMES[arr.dtype]
            data = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((-len(text)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    return path


class SafetensorsFile:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"{self.path}: no such checkpoint file")
        with open(self.path, "rb") as f:
            raw = f.read(8)
            if len(raw) != 8:
                raise InputError(f"{self.path}: not a safetensors file (shorter than its 8-byte header length)")
            (n,) = struct.unpack("<Q", raw)
            size = self.path.stat().st_size
            if n > MAX_HEADER_BYTES or 8 + n > size:
                raise InputError(f"{self.path}: header length {n} is not plausible for a {size}-byte file")
            try:
                header = json.loads(f.read(n))
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise InputError(f"{self.path}: safetensors header is not valid JSON ({e})") from None
        self.metadata = header.pop("__metadata__", {})
        self.entries = header
        self.data_start = 8 + n
        self.loaded: list[str] = []  # names materialised, in order (lets tests check laziness)

    def names(self) -> list[str]:
        return list(self.entries)

    def tensor(self, name: str) -> np.ndarray:
        if name not in self.entries:
            raise InputError(f"{self.path}: no tensor {name!r} (it has {len(self.entries)}, e.g. "
                             f"{', '.join(list(self.entries)[:4])})")
        e = self.entries[name]
        dt = e["dtype"]
        if dt not in _DTYPES:
            raise InputError(f"{self.path}: tensor {name!r}: dtype {dt!r} not supported; expected one of {sorted(_DTYPES)}")
        begin, end = e["data_offsets"]
        shape = tuple(e["shape"])
        dtype = np.dtype(_DTYPES[dt]).newbyteorder("<")
        if (end - begin) != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
            raise InputError(f"{self.path}: tensor {name!r}: {end - begin} bytes for shape {shape} {dt}")
        arr = np.memmap(self.path, dtype=dtype, mode="r", offset=self.data_start + begin, shape=shape)
        self.loaded.append(name)
        if dt == "BF16":
            return (arr.astype(np.uint32) << 16).view(np.float32)
        return arr


def hf_weight(ckpt: SafetensorsFile, name: str) -> np.ndarray:
    """An HF linear weight (out, in) as our (k, n) = (in, out) float32 array."""
    return np.asarray(ckpt.tensor(name), np.float32).T
