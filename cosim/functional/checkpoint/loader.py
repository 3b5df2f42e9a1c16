"""`load_checkpoint`: any supported file -> `Checkpoint` (canonical float32 tensors,
validated against the config's shapes, with its tokenizer)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .assets import BUNDLED_CHECKPOINTS, bundled_checkpoint_path
from .config import LMConfig, config_from_gguf, config_from_hf
from .errors import CheckpointError
from .names import expected_shapes, gguf_to_canonical, hf_to_canonical

__all__ = ["Checkpoint", "load_checkpoint"]


@dataclass
class Checkpoint:
    name: str
    path: Path
    config: LMConfig
    tensors: dict[str, np.ndarray] = field(repr=False)
    tokenizer: object = field(repr=False, default=None)
    file_format: str = ""  # "gguf (Q4_1 x210, F32 x61, Q8_0 x1)", "safetensors (fp32)"
    baseline_note: str = ""  # what the unquantized reference is

    def tensor(self, name: str) -> np.ndarray:
        try:
            return self.tensors[name]
        except KeyError:
            raise CheckpointError(f"{self.path}: checkpoint has no tensor {name!r}") from None

    @property
    def n_params(self) -> int:
        return int(sum(t.size for t in self.tensors.values()))

    def encode(self, text: str) -> np.ndarray:
        if self.tokenizer is None:
            raise CheckpointError(f"{self.path}: no tokenizer found (expected tokenizer.json beside the weights "
                                  f"or tokenizer metadata in the GGUF file)")
        return np.asarray(self.tokenizer.encode(text, add_special_tokens=False).ids, dtype=np.int64)


def load_checkpoint(spec: str | Path) -> Checkpoint:
    """A bundled name (`smollm2_135m`, `minilm_l6`), a .gguf file, a .safetensors file, a
    directory of shards with config.json, or a zip of such a directory."""
    note, name = "", str(spec)
    if str(spec) in BUNDLED_CHECKPOINTS:
        path, b = bundled_checkpoint_path(str(spec))
        note = b.baseline_note
    else:
        path = Path(spec)
        if not path.exists():
            raise CheckpointError(f"{path}: no such checkpoint; expected a .gguf / .safetensors file, a directory of "
                                  f"them, or a bundled name ({', '.join(BUNDLED_CHECKPOINTS)})")
    if path.suffix == ".gguf":
        if str(spec) in BUNDLED_CHECKPOINTS:  # never changes: parsed once, then read from the disk cache
            from .cache import cached_checkpoint
            ck = cached_checkpoint(path, lambda: _load_gguf(path, name), Checkpoint)
        else:
            ck = _load_gguf(path, name)
    else:
        ck = _load_safetensors(path, name)
    ck.baseline_note = note or ck.baseline_note
    _validate(ck)
    return ck


def _load_gguf(path: Path, name: str) -> Checkpoint:
    from .gguf_file import read_gguf, unpermute_rope_rows
    from .tokenizer import tokenizer_from_gguf

    fields, raw, types = read_gguf(path)
    cfg = config_from_gguf(fields, str(path))
    tensors = {}
    for gname, a in raw.items():
        canon = gguf_to_canonical(gname)
        if canon is None:
            raise CheckpointError(f"{path}: unexpected tensor {gname!r} for a llama-architecture GGUF")
        if canon.endswith((".q", ".k")):
            a = unpermute_rope_rows(a, cfg.heads if canon.endswith(".q") else cfg.kv_heads)
        tensors[canon] = a
    cfg = dataclasses.replace(cfg, tied_embeddings="lm_head" not in tensors)
    counts = {}
    for t in types.values():
        counts[t] = counts.get(t, 0) + 1
    fmt = "gguf (" + ", ".join(f"{k} x{v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])) + ")"
    stored = sorted(k for k in counts if k not in ("F32",))
    note = (f"baseline = the {'/'.join(stored)} GGUF weights dequantized to float32" if stored else
            "baseline = the float32 GGUF weights")
    return Checkpoint(name, path, cfg, tensors, tokenizer_from_gguf(fields, str(path)), fmt, note)


def _load_safetensors(path: Path, name: str) -> Checkpoint:
    from .safetensors_file import read_safetensors_dir
    from .tokenizer import tokenizer_from_json

    cfg_json, raw, tok_text, desc = read_safetensors_dir(path)
    if cfg_json is None:
        raise CheckpointError(f"{path}: no config.json beside the safetensors weights; the functional forward "
                              f"pass needs the architecture")
    cfg = config_from_hf(cfg_json, str(path))
    tensors, experts = {}, {}
    for hname, a in raw.items():
        mapped = hf_to_canonical(hname)
        if mapped is None:
            if hname.endswith(("position_ids", "rotary_emb.inv_freq")) or hname.startswith("pooler."):
                continue  # buffers and heads the forward pass does not use
            raise CheckpointError(f"{path}: tensor {hname!r} is not part of a {cfg.arch} checkpoint as we know it; "
                                  f"expected Hugging Face names (e.g. model.layers.0.self_attn.q_proj.weight)")
        canon, e = mapped
        if e is None:
            tensors[canon] = a
        else:
            experts.setdefault(canon, {})[e] = a
    for canon, per in experts.items():
        missing = sorted(set(range(cfg.experts)) - set(per))
        if missing:
            raise CheckpointError(f"{path}: {canon}: experts {missing} are missing")
        tensors[canon] = np.stack([per[i] for i in range(cfg.experts)])
    if cfg.is_decoder and "lm_head" not in tensors and not cfg.tied_embeddings:
        raise CheckpointError(f"{path}: tensor 'lm_head.weight' is missing and tie_word_embeddings is false")
    tok = tokenizer_from_json(tok_text, str(path)) if tok_text else None
    return Checkpoint(name, path, cfg, tensors, tok, f"safetensors: {desc}", "baseline = the checkpoint's weights "
                      "as stored, in float32")


def _validate(ck: Checkpoint) -> None:
    want = expected_shapes(ck.config, set(ck.tensors))
    missing = [n for n in want if n not in ck.tensors]
    if missing:
        more = f" (+{len(missing) - 5} more)" if len(missing) > 5 else ""
        raise CheckpointError(f"{ck.path}: missing tensor(s) {', '.join(missing[:5])}{more} for a "
                              f"{ck.config.layers}-layer {ck.config.arch} checkpoint")
    for n, shape in want.items():
        got = ck.tensors[n].shape
        if tuple(got) != tuple(shape):
            raise CheckpointError(f"{ck.path}: tensor {n!r} has shape {tuple(got)}; the config implies {shape}")
    for n, a in ck.tensors.items():
        # min and max are NaN or +-inf exactly when some entry is: two reads, no boolean copy
        # of the tensor (135M entries for SmolLM2-135M: 0.1 s less on a fresh process)
        if a.size and not (np.isfinite(a.min()) and np.isfinite(a.max())):
            bad = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
            raise CheckpointError(f"{ck.path}: tensor {n!r} holds {bad} non-finite value(s) (NaN/inf)")
    extra = sorted(set(ck.tensors) - set(want))
    if extra:
        raise CheckpointError(f"{ck.path}: tensor(s) {', '.join(extra[:5])} do not belong to the configured "
                              f"architecture (check the config)")
