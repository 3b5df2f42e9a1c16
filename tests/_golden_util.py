"""Shared loader for the microxcaling golden vectors (../shared/golden/mx)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

GOLDEN_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "golden" / "mx"

_ELEM_NAMES = {"bfloat16": "bf16", "fp16": "fp16"}


def golden_files() -> list[Path]:
    return sorted(GOLDEN_DIR.glob("*.npz")) if GOLDEN_DIR.is_dir() else []


@lru_cache(maxsize=None)
def load(path: Path) -> dict:
    with np.load(path) as d:
        out = {k: d[k] for k in d.files}
    out["meta"] = json.loads(str(out["meta"]))
    return out


def call_args(meta: dict) -> tuple[str, dict]:
    """Map a golden file's metadata onto cosim.functional.quantize arguments."""
    fmt = meta["format"]
    if meta["kind"] == "elementwise_quantize_dequantize":
        return _ELEM_NAMES.get(fmt, fmt), dict(rounding=meta["rounding"],
                                               saturate=bool(meta["saturate_normals"]),
                                               flush_subnormals=bool(meta["flush_to_zero"]))
    return "mx" + fmt, dict(rounding=meta["rounding"], block_size=int(meta["block_size"]),
                            axis=int(meta["axis"]) if meta.get("axis") is not None else -1)


def same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise bit equality with NaN == NaN and +0 == -0."""
    return (a == b) | (np.isnan(a) & np.isnan(b))
