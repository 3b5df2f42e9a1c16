"""GGUF checkpoints through the `gguf` package: metadata, tensors dequantized to float32."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import CheckpointError

__all__ = ["read_gguf", "SUPPORTED_GGUF_TYPES"]

# the types this loader is tested on (round-trip tests in tests/test_checkpoint_loaders.py)
SUPPORTED_GGUF_TYPES = ("F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1")


def _field_value(field):
    try:
        return field.contents()
    except Exception:  # a field the library cannot decode is not one we need
        return None


def _reader_class():
    import gguf

    class PlainViewReader(gguf.GGUFReader):
        """GGUFReader over a plain ndarray view of its memory map. The reader slices
        `self.data` once per metadata value (SmolLM2's vocabulary and merges: ~250k
        slices); on a np.memmap each slice runs Python-level __getitem__ and
        __array_finalize__ (about 60 % of the load time measured); a base-class view
        of the same mapping slices in C. Nothing is copied or read ahead."""

        @property
        def data(self):
            return self._plain

        @data.setter
        def data(self, mapped):
            self._plain = np.asarray(mapped)
    return PlainViewReader


def read_gguf(path: Path) -> tuple[dict, dict[str, np.ndarray], dict[str, str]]:
    """-> (metadata fields, {gguf tensor name: float32 array}, {name: stored type}).
    Little-endian v2/v3 files of the supported types are read directly (gguf_fast: the
    same values, several times faster); anything else through the `gguf` package."""
    from .gguf_fast import GGUF_TYPES, dequantize_all, parse_gguf

    parsed = parse_gguf(path)
    if parsed is not None:
        fields, infos = parsed
        tensors, types = {}, {}
        for (name, t, dims, _), a in zip(infos, dequantize_all(infos)):
            tensors[name] = a.reshape(tuple(reversed(dims)))  # GGUF lists the fastest dimension first
            types[name] = GGUF_TYPES[t][0]
        return fields, tensors, types
    return _read_gguf_package(path)


def _read_gguf_package(path: Path) -> tuple[dict, dict[str, np.ndarray], dict[str, str]]:
    from gguf.quants import dequantize

    try:
        reader = _reader_class()(str(path))
    except Exception as e:  # truncated or not GGUF: the library raises many kinds
        raise CheckpointError(f"{path}: not a readable GGUF file ({type(e).__name__}: {str(e)[:160]})") from None
    fields = {name: _field_value(f) for name, f in reader.fields.items()}
    tensors, types = {}, {}
    for t in reader.tensors:
        kind = t.tensor_type.name
        if kind not in SUPPORTED_GGUF_TYPES:
            raise CheckpointError(f"{path}: tensor {t.name!r} is stored as {kind}; supported types are "
                                  f"{', '.join(SUPPORTED_GGUF_TYPES)}")
        try:
            a = np.asarray(dequantize(t.data, t.tensor_type), dtype=np.float32)
        except Exception as e:
            raise CheckpointError(f"{path}: tensor {t.name!r} ({kind}) cannot be decoded: {str(e)[:160]}") from None
        shape = tuple(int(s) for s in reversed(t.shape))  # GGUF lists the fastest dimension first
        if a.size != int(np.prod(shape)):
            raise CheckpointError(f"{path}: tensor {t.name!r} holds {a.size} values; its header says {shape}")
        tensors[t.name] = a.reshape(shape)
        types[t.name] = kind
    return fields, tensors, types


def unpermute_rope_rows(w: np.ndarray, n_heads: int) -> np.ndarray:
    """llama.cpp's converter reorders Q/K rows per head so its adjacent-pair RoPE matches
    Hugging Face's rotate-half RoPE; undo it so one RoPE layout serves every format."""
    rows = w.shape[0]
    half = rows // n_heads // 2
    return w.reshape(n_heads, half, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)
