"""Transformer model specs: dense MHA, GQA, MoE (routed + shared experts) and MLA.

A `ModelSpec` is read from our YAML (configs/models/) or straight from a Hugging Face
``config.json`` (offline, plain JSON: no remote code is ever executed). Parameter and
KV-cache sizes are derived from the shape, never stored.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from workloads.formats import get_format
from workloads.io import InputError, bundled_names, check_name, load_yaml_file, require, resolve_bundled

__all__ = ["ModelSpec", "MoESpec", "MLASpec", "load_model", "list_models", "model_from_hf_config"]


@dataclass(frozen=True)
class MoESpec:
    num_experts: int
    top_k: int
    expert_intermediate: int
    shared_experts: int = 0
    shared_intermediate: int = 0  # total width of the shared expert(s)
    first_dense_layers: int = 0  # DeepSeek: the first k layers keep a dense MLP


@dataclass(frozen=True)
class MLASpec:
    kv_lora_rank: int
    qk_nope_head_dim: int
    qk_rope_head_dim: int
    v_head_dim: int
    q_lora_rank: int | None = None


@dataclass(frozen=True)
class ModelSpec:
    name: str
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int  # dense MLP width (MoE models: of their dense layers, if any)
    vocab: int
    head_dim: int = 0  # 0 -> hidden // heads
    tie_embeddings: bool = False
    gated_mlp: bool = True  # SwiGLU (gate, up, down) vs plain (up, down)
    norm: str = "rmsnorm"
    qkv_bias: bool = False
    sliding_window: int | None = None
    max_context: int | None = None  # longest context (HF max_position_embeddings); None: not stated
    moe: MoESpec | None = None
    mla: MLASpec | None = None
    source: str = ""

    def __post_init__(self):
        if not self.head_dim:
            object.__setattr__(self, "head_dim", self.hidden // self.heads)

    # ---- shape-derived quantities ---------------------------------------
    @property
    def q_dim(self) -> int:
        if self.mla:
            return self.heads * (self.mla.qk_nope_head_dim + self.mla.qk_rope_head_dim)
        return self.heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * self.head_dim

    @property
    def moe_layers(self) -> int:
        return self.layers - self.moe.first_dense_layers if self.moe else 0

    @property
    def dense_layers(self) -> int:
        return self.layers - self.moe_layers

    def attention_params(self) -> int:
        h = self.hidden
        if self.mla:
            m = self.mla
            q = h * self.q_dim if m.q_lora_rank is None else h * m.q_lora_rank + m.q_lora_rank * self.q_dim
            kv_a = h * (m.kv_lora_rank + m.qk_rope_head_dim)
            kv_b = m.kv_lora_rank * self.heads * (m.qk_nope_head_dim + m.v_head_dim)
            o = self.heads * m.v_head_dim * h
            return q + kv_a + kv_b + o + m.kv_lora_rank  # + kv_a layernorm
        bias = (self.q_dim + 2 * self.kv_dim) if self.qkv_bias else 0
        return h * self.q_dim + 2 * h * self.kv_dim + self.q_dim * h + bias

    def mlp_params(self, width: int) -> int:
        return (3 if self.gated_mlp else 2) * self.hidden * width

    def layer_params(self) -> int:
        """All layers' parameters (attention, MLP or experts, router, norms)."""
        norms = 2 * self.hidden
        per_attn = self.attention_params() + norms
        total = self.layers * per_attn + self.dense_layers * self.mlp_params(self.intermediate)
        if self.moe:
            m = self.moe
            per_moe = (m.num_experts * self.mlp_params(m.expert_intermediate)
                       + self.mlp_params(m.shared_intermediate) + m.num_experts * self.hidden)
            total += self.moe_layers * per_moe
        return total

    def embedding_params(self) -> int:
        return self.vocab * self.hidden

    def lm_head_params(self) -> int:
        return 0 if self.tie_embeddings else self.vocab * self.hidden

    @property
    def params(self) -> int:
        return self.layer_params() + self.embedding_params() + self.lm_head_params() + self.hidden

    def active_params_per_token(self) -> int:
        """Parameters one token multiplies by (routed experts: top_k of them)."""
        if not self.moe:
            return self.params
        m = self.moe
        inactive = self.moe_layers * (m.num_experts - m.top_k) * self.mlp_params(m.expert_intermediate)
        return self.params - inactive

    def kv_elements_per_token(self) -> int:
        """Cached elements per token over all layers (K and V, or MLA's latent + rope key)."""
        if self.mla:
            return self.layers * (self.mla.kv_lora_rank + self.mla.qk_rope_head_dim)
        return 2 * self.layers * self.kv_dim

    def kv_bytes_per_token(self, fmt: str = "bf16") -> float:
        return self.kv_elements_per_token() * get_format(fmt).bits_per_element / 8.0

    def to_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------------
# loading



def list_models() -> list[str]:
    return bundled_names("models")


def load_model(name_or_path: str | Path | ModelSpec) -> ModelSpec:
    """A bundled name (``llama3_8b``), a path to our YAML, or a path to an HF config.json."""
    if isinstance(name_or_path, ModelSpec):
        return name_or_path
    text = str(name_or_path)
    check_name(text, "model")
    path = Path(text)
    if path.suffix.lower() in (".yaml", ".yml", ".json") or path.exists():
        path = path if path.exists() else resolve_bundled("models", path, "model")
        if path.is_dir():
            path = path / "config.json"
        if not path.is_file():
            raise InputError(f"{path}: no such model file")
        if path.suffix.lower() == ".json":
            return model_from_hf_config(path)
        return _from_yaml(path)
    return _from_yaml(resolve_bundled("models", text, "model"))


def _from_yaml(path: Path) -> ModelSpec:
    data = load_yaml_file(path, what="model")
    src = str(path)
    require(isinstance(data, dict), src, "", data, "a mapping of model fields")
    return _build(data, src)


def _build(data: dict, src: str) -> ModelSpec:
    # field tables and cross-field rules live in workloads.schema (one checker for every file)
    from workloads.schema import MODEL_FIELDS, check, check_model_fields
    problems = check(data, MODEL_FIELDS, src)
    if not problems:
        problems = check_model_fields(data, src)
    if len(problems) == 1:
        raise InputError(problems[0])
    if problems:
        raise InputError(f"{src}: {len(problems)} problems:\n  " + "\n  ".join(problems))
    data = dict(data)
    data.setdefault("kv_heads", data["heads"])
    if data.get("moe") is not None:
        data["moe"] = MoESpec(**data["moe"])
    if data.get("mla") is not None:
        data["mla"] = MLASpec(**data["mla"])
    data.setdefault("name", Path(src).stem)
    data.setdefault("source", src)
    return ModelSpec(**data)


def model_from_hf_config(path: str | Path) -> ModelSpec:
    """Read a Hugging Face config.json (as JSON data only)."""
    from workloads.schema import check_hf_fields
    from workloads.yamlsafe import load_json_path
    path = Path(path)
    cfg = load_json_path(path, "Hugging Face config.json")
    src = str(path)
    require(isinstance(cfg, dict), src, "", cfg, "a JSON object")
    if "text_config" in cfg and "hidden_size" not in cfg:
        require(isinstance(cfg["text_config"], dict), src, "text_config", cfg["text_config"],
                "a JSON object holding the text model's fields")
        cfg = cfg["text_config"]
    problems = check_hf_fields(cfg, src)
    if problems:
        raise InputError(problems[0] if len(problems) == 1 else
                         f"{src}: {len(problems)} problems:\n  " + "\n  ".join(problems))
    for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size"):
        require(key in cfg, src, key, None, "present in a decoder-only transformer config")
    heads = cfg["num_attention_heads"]
    d: dict[str, Any] = {
        "name": cfg.get("_name_or_path") or path.parent.name or path.stem,
        "hidden": cfg["hidden_size"], "layers": cfg["num_hidden_layers"], "heads": heads,
        "kv_heads": cfg.get("num_key_value_heads") or heads,
        "intermediate": cfg.get("intermediate_size") or 0, "vocab": cfg["vocab_size"],
        "tie_embeddings": bool(cfg.get("tie_word_embeddings", False)),
        "qkv_bias": bool(cfg.get("attention_bias", False) or cfg.get("model_type") in ("qwen2", "qwen2_moe")),
        "source": src,
    }
    if cfg.get("head_dim"):
        d["head_dim"] = cfg["head_dim"]
    if cfg.get("sliding_window") and cfg.get("use_sliding_window") is not False:
        d["sliding_window"] = cfg["sliding_window"]
    if cfg.get("max_position_embeddings"):
        d["max_context"] = cfg["max_position_embeddings"]
    experts = cfg.get("num_local_experts") or cfg.get("num_experts") or cfg.get("n_routed_experts")
    if experts:
        shared = cfg.get("n_shared_experts") or 0
        moe_inter = cfg.get("moe_intermediate_size") or cfg.get("intermediate_size")
        shared_inter = cfg.get("shared_expert_intermediate_size") or shared * (moe_inter or 0)
        d["moe"] = {"num_experts": experts, "top_k": cfg.get("num_experts_per_tok", 2),
                    "expert_intermediate": moe_inter, "shared_experts": shared or (1 if shared_inter else 0),
                    "shared_intermediate": shared_inter,
                    "first_dense_layers": cfg.get("first_k_dense_replace", 0) or 0}
        if not cfg.get("first_k_dense_replace"):
            d["intermediate"] = 0
    if cfg.get("kv_lora_rank"):
        d["mla"] = {k: cfg.get(k) for k in ("kv_lora_rank", "q_lora_rank", "qk_nope_head_dim",
                                            "qk_rope_head_dim", "v_head_dim")}
        d["kv_heads"] = heads
        d["head_dim"] = cfg.get("v_head_dim") or 0  # missing v_head_dim: refused by the mla table
    return _build(d, src)
