"""safetensors checkpoints through the `safetensors` package (numpy API): a file, a
directory of shards, or a zip archive holding them (how pip packages ship models)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from .errors import CheckpointError

__all__ = ["read_safetensors_dir"]


def _to_f32(name: str, a: np.ndarray, path) -> np.ndarray:
    if a.dtype.kind != "f" and a.dtype.name != "bfloat16":
        raise CheckpointError(f"{path}: tensor {name!r} has dtype {a.dtype}; expected a floating-point dtype "
                              f"(F32/F16/BF16)")
    return np.asarray(a, dtype=np.float32)


def _read_one(data_or_path, path_label) -> dict[str, np.ndarray]:
    import ml_dtypes  # noqa: F401  registers bfloat16 with numpy so safetensors can return BF16 tensors
    import safetensors.numpy
    from safetensors import SafetensorError

    try:
        if isinstance(data_or_path, bytes):
            raw = safetensors.numpy.load(data_or_path)
        else:
            raw = safetensors.numpy.load_file(str(data_or_path))
    except (SafetensorError, OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{path_label}: not a readable safetensors file ({type(e).__name__}: {str(e)[:160]})") \
            from None
    # integer buffers (BERT's position_ids) are bookkeeping, not weights
    return {k: _to_f32(k, v, path_label) for k, v in raw.items() if not k.endswith("position_ids")}


def read_safetensors_dir(path: Path) -> tuple[dict | None, dict[str, np.ndarray], object | None, str]:
    """-> (config.json dict or None, tensors, tokenizer.json text or None, description)."""
    if path.suffix == ".zip":
        try:
            z = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as e:
            raise CheckpointError(f"{path}: not a readable zip archive ({e})") from None
        with z:
            names = z.namelist()
            shards = sorted(n for n in names if n.endswith(".safetensors"))
            if not shards:
                raise CheckpointError(f"{path}: the archive holds no .safetensors file")
            tensors = {}
            for n in shards:
                tensors.update(_read_one(z.read(n), f"{path}!{n}"))
            cfg = json.loads(z.read("config.json")) if "config.json" in names else None
            tok = z.read("tokenizer.json").decode() if "tokenizer.json" in names else None
        return cfg, tensors, tok, f"{path.name} ({len(shards)} safetensors shard(s) in a zip)"
    folder = path if path.is_dir() else path.parent
    shards = sorted(folder.glob("*.safetensors")) if path.is_dir() else [path]
    if not shards:
        raise CheckpointError(f"{path}: no .safetensors files in this directory")
    tensors = {}
    for s in shards:
        tensors.update(_read_one(s, s))
    cfg_path, tok_path = folder / "config.json", folder / "tokenizer.json"
    try:
        cfg = json.loads(cfg_path.read_text()) if cfg_path.is_file() else None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{cfg_path}: not valid JSON ({e})") from None
    tok = tok_path.read_text() if tok_path.is_file() else None
    return cfg, tensors, tok, f"{len(shards)} safetensors shard(s)"
