"""A disk cache of loaded bundled checkpoints, for a warm start (issue 14).

Parsing a GGUF file's metadata (the tokenizer's 49k tokens and merges, field by field
in Python) and dequantizing its tensors took most of `cosim run quickstart`'s
checkpoint step. A bundled checkpoint never changes, so the first load writes what
`load_checkpoint` built — float32 tensors (one .npy each, mapped copy-on-write when
read back: pages load on first touch and writes stay private), the config, the
tokenizer as JSON and the provenance strings — under the cache directory, keyed by the
file's path, size and modification time; later processes read that back. Only bundled
files are cached (a user's file may change between runs; a test's temporary file would
fill the cache). The cache is opt-in: commands write only where the user asked, and an
entry is ~4x the GGUF (515 MB for SmolLM2-135M), so nothing is written unless
COSIM_CACHE_DIR names a directory. A cache that cannot be written or read is skipped
(the checkpoint is then parsed as before), never an error.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["cache_root", "cached_checkpoint"]

_VERSION = 2  # bump when what load_checkpoint builds changes


def cache_root() -> Path | None:
    """The directory COSIM_CACHE_DIR names, or None (no cache) when it is unset or empty."""
    env = os.environ.get("COSIM_CACHE_DIR")
    return Path(env).expanduser() if env else None


def _key(path: Path) -> str:
    st = path.stat()
    text = json.dumps([str(path.resolve()), st.st_size, st.st_mtime_ns, _VERSION])
    return hashlib.sha1(text.encode()).hexdigest()[:20]


def cached_checkpoint(path: Path, build, checkpoint_cls):
    """`build()` (-> a `checkpoint_cls`, loader.Checkpoint) through the cache for the
    file at `path` (the class is passed in: the loader imports this module)."""
    root = cache_root()
    if root is None:
        return build()
    d = root / "checkpoints" / _key(path)
    try:
        if (d / "meta.pkl").exists():
            return _read(d, checkpoint_cls)
    except Exception:  # a damaged or foreign cache entry: rebuild it below
        shutil.rmtree(d, ignore_errors=True)
    ck = build()
    try:
        _write(d, ck)
    except OSError:
        pass  # read-only or full disk: the next run parses the file again
    return ck


def _read(d: Path, Checkpoint):
    from tokenizers import Tokenizer

    meta = pickle.loads((d / "meta.pkl").read_bytes())
    # np.asarray: plain ndarray views of the maps (numba and isinstance checks see arrays)
    tensors = {name: np.asarray(np.load(d / f"{i}.npy", mmap_mode="c")) for i, name in enumerate(meta["order"])}
    tok = Tokenizer.from_str(meta["tokenizer"]) if meta["tokenizer"] is not None else None
    return Checkpoint(meta["name"], Path(meta["path"]), meta["config"], tensors, tok, meta["file_format"],
                      meta["baseline_note"])


def _write(d: Path, ck) -> None:
    d.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=d.parent))
    try:
        for i, a in enumerate(ck.tensors.values()):
            np.save(tmp / f"{i}.npy", np.ascontiguousarray(a))
        meta = {"name": ck.name, "path": str(ck.path), "config": ck.config, "order": list(ck.tensors),
                "tokenizer": ck.tokenizer.to_str() if ck.tokenizer is not None else None,
                "file_format": ck.file_format, "baseline_note": ck.baseline_note}
        (tmp / "meta.pkl").write_bytes(pickle.dumps(meta))  # written last: its presence marks a whole entry
        os.replace(tmp, d)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
