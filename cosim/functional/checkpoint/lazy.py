"""One tensor (or a few rows of one) at a time from a safetensors checkpoint, through the
`safetensors` package's lazy `safe_open` (numpy framework).

The per-layer twins and the trace-level accuracy sample need one layer's q_proj, or 256
rows of it, from checkpoints of many gigabytes: `safe_open` reads the header and maps
only the bytes asked for. Whole-model loading (`load_checkpoint`) reads everything.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import CheckpointError

__all__ = ["LazySafetensors", "hf_linear"]


def _open(path: Path):
    import ml_dtypes  # noqa: F401  registers bfloat16 with numpy, so BF16 tensors come back as arrays
    from safetensors import SafetensorError, safe_open

    try:
        return safe_open(str(path), framework="np")
    except (SafetensorError, OSError, ValueError, TypeError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors file ({type(e).__name__}: {str(e)[:160]})") \
            from None


class LazySafetensors:
    """A safetensors file, or a directory of `*.safetensors` shards, read lazily.

    `loaded` lists the tensors materialised so far, in order: tests use it to prove
    that a one-layer twin reads one layer."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if self.path.is_dir():
            self.paths = sorted(self.path.glob("*.safetensors"))
            if not self.paths:
                raise CheckpointError(f"{self.path}: directory holds no *.safetensors files")
        elif self.path.is_file():
            self.paths = [self.path]
        else:
            raise CheckpointError(f"{self.path}: no such checkpoint file or directory")
        self._where: dict[str, Path] = {}
        self.metadata: dict = {}
        # one open handle per shard: safe_open parses the JSON header once and maps the file
        self._handles = {p: _open(p) for p in self.paths}
        for p, f in self._handles.items():
            self.metadata.update(f.metadata() or {})
            for name in f.keys():
                self._where[name] = p
        self.loaded: list[str] = []

    def names(self) -> list[str]:
        return list(self._where)

    def __contains__(self, name: str) -> bool:
        return name in self._where

    def _file(self, name: str):
        """The open shard holding `name`."""
        if name not in self._where:
            have = self.names()
            raise CheckpointError(f"{self.path}: no tensor {name!r} (it has {len(have)}, e.g. "
                                  f"{', '.join(have[:4]) or 'nothing'})")
        return self._handles[self._where[name]]

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self._file(name).get_slice(name).get_shape())

    def _float32(self, name: str, a: np.ndarray) -> np.ndarray:
        if a.dtype.kind != "f" and a.dtype.name != "bfloat16":
            raise CheckpointError(f"{self._where[name]}: tensor {name!r} has dtype {a.dtype}; expected a "
                                  f"floating-point dtype (F32/F16/BF16/F64)")
        return np.asarray(a, dtype=np.float32)

    def tensor(self, name: str) -> np.ndarray:
        """The whole tensor as float32 (BF16/F16 widen exactly)."""
        a = self._file(name).get_tensor(name)
        self.loaded.append(name)
        return self._float32(name, a)

    def rows(self, name: str, idx) -> np.ndarray:
        """Rows `idx` (sorted ascending) of a tensor as float32, reading only those rows."""
        idx = np.sort(np.asarray(idx, dtype=np.int64))
        sl = self._file(name).get_slice(name)
        n = sl.get_shape()[0]
        if idx.size and (idx[0] < 0 or idx[-1] >= n):
            raise CheckpointError(f"{self._where[name]}: tensor {name!r} has {n} rows; rows "
                                  f"{int(idx[0])}..{int(idx[-1])} were asked for")
        parts = [sl[int(i):int(i) + 1] for i in idx]
        empty = np.zeros((0, *sl.get_shape()[1:]), np.float32)
        self.loaded.append(name)
        return self._float32(name, np.concatenate(parts) if parts else empty)


def hf_linear(ck: LazySafetensors, name: str) -> np.ndarray:
    """A Hugging Face linear weight, stored (out, in), as our (k, n) = (in, out) array."""
    return ck.tensor(name).T
