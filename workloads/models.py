"""Transformer model specs: dense MHA, GQA, MoE (routed + shared experts) and MLA.

A `ModelSpec` is read from our YAML (cosim/configs/models/) or straight from a Hugging Face
``config.json`` (offline, plain JSON: no remote code is ever executed). Parameter and
KV-cache sizes are derived from the shape, never stored.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from workloads.formats import get_format
from workloads.hf_layers import (EXPERT_KEY, hf_experts, ignored_moe_keys, llama4_plan, llama4_vision_params,
                                 qwen_moe_layer_ids)
from workloads.io import (InputError, bundled_names, check_name, doc_kind, field_error, load_yaml_file,
                          looks_like_path, require, resolve_bundled, short_repr, warn_shadowed)

__all__ = ["ModelSpec", "MoESpec", "MLASpec", "load_model", "list_models", "model_from_hf_config"]


@dataclass(frozen=True)
class MoESpec:
    num_experts: int
    top_k: int
    expert_intermediate: int
    shared_experts: int = 0
    shared_intermediate: int = 0  # total width of the shared expert(s)
    first_dense_layers: int = 0  # DeepSeek: the first k layers keep a dense MLP
    # Qwen2-MoE: a hidden -> 1 Linear whose sigmoid scales the shared expert's output per token
    shared_expert_gate: bool = False
    # the indices of the MoE layers when they are not simply "every layer from first_dense_layers on":
    # Llama-4 Maverick's interleave_moe_layer_step 2 (layers 1, 3, 5 ...), Qwen-MoE's decoder_sparse_step /
    # mlp_only_layers; the other layers run the dense MLP (ModelSpec.intermediate wide). None: the rule above
    layer_ids: tuple | None = None


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
    # ---- fields that change FLOPs, bytes or memory beyond the plain decoder above
    sliding_window_layers: int | None = None  # layers using the window (None: all); Gemma-2: every other
    activation: str = "silu"  # gated MLP activation: silu (SwiGLU) | gelu_tanh / gelu (GeGLU)
    norms_per_layer: int = 2  # Gemma-2: pre+post norm around attention and MLP = 4
    qk_norm: bool = False  # Qwen3 / Gemma-3 / OLMo-2: RMSNorm of q and k before RoPE
    # Qwen3 / Gemma-3 normalise each head (one head_dim weight vector shared by the heads); OLMo-2
    # normalises the whole q and k projections (weights of width q_dim and kv_dim)
    qk_norm_per_head: bool = True
    o_bias: bool = False  # bias on the output projection (Llama attention_bias)
    mlp_bias: bool = False  # biases on the MLP projections
    attn_softcap: float | None = None  # Gemma-2: tanh soft-capping of attention scores (in-kernel)
    logit_softcap: float | None = None  # Gemma-2: tanh soft-capping of the final logits (extra op)
    rope_scaling: str | None = None  # llama3 / yarn / longrope...: changes frequencies, not FLOPs
    mtp_layers: int = 0  # DeepSeek-V3 multi-token-prediction modules (not in `params`, see mtp_params)
    router_bias: bool = False  # one bias per expert per MoE layer: DeepSeek-V3 e_score_correction_bias, gpt-oss router
    # gpt-oss: one learned sink logit per head per layer joins each softmax denominator (its
    # parameters are counted; under the fused-attention FLOP convention, 2(d + dv) per attended
    # pair with the softmax uncounted, a sink is a score without a dot product or a value row)
    attn_sinks: bool = False
    # Granite: the embedding output times embedding_multiplier, each attention / MLP branch times
    # residual_multiplier before its residual add (MoE layers too), the logits divided by logits_scaling; each a
    # `mul` op over its tensor (transformers' GraniteModel runs them whatever their value; None:
    # the model has no such step). attention_multiplier replaces 1/sqrt(head_dim): no extra op
    embed_multiplier: float | None = None
    residual_multiplier: float | None = None
    logit_scale: float | None = None
    # the format the checkpoint stores its weights in (HF quantization_config; workloads.hf_quant):
    # build_trace's default when the caller names none. None: not declared (bf16 is assumed)
    weights_format: str | None = None
    weights_origin: str = ""  # where weights_format was read ("config.json quantization_config: fp8")
    # with weights_format: the embedding table's and lm_head's own format when the checkpoint keeps
    # them unquantized (its torch_dtype); None: stored like the other weights
    embed_format: str | None = None
    lm_head_format: str | None = None
    # bits a checkpoint stores per input channel of every quantized Linear beside its weights:
    # GPTQ's g_idx, one int32 each whatever desc_act says (32); 0: no such index
    g_idx_bits: int = 0
    # with weights_format: the format of the attention projections and the MoE router when the
    # checkpoint keeps them unquantized (gpt-oss MXFP4: modules_to_not_convert names self_attn and
    # mlp.router, stored in torch_dtype); None: stored like the other weights
    attn_format: str | None = None
    # Llama-4 chunked local attention: `attention_chunk` tokens per chunk (a query attends to the keys of
    # its own chunk only, causally) on `chunked_layers` of the layers (None: all); the others attend to
    # the whole context. Exclusive with sliding_window
    attention_chunk: int | None = None
    chunked_layers: int | None = None
    # layers applying RoPE (None: all). Llama-4's global layers are NoPE: no rope op there
    rope_layers: int | None = None
    # HF partial_rotary_factor (Phi-4-mini 0.75): RoPE turns the first int(head_dim x fraction) dims of each
    # q and k head, the rest pass through, so the rope op covers that share only
    rotary_fraction: float = 1.0
    # Llama-4 use_qk_norm: a weightless RMS ("L2") norm of every q and k head, on the RoPE layers only
    qk_l2norm: bool = False
    # Llama-4 attn_temperature_tuning: the queries of the NoPE layers times a per-position scale (a mul op)
    attn_temperature: bool = False
    # what the importer left out of the model and says so in every trace built from it
    # (a multimodal checkpoint's vision tower: text-only pricing)
    import_notes: tuple = ()

    def __post_init__(self):
        if not self.head_dim:
            object.__setattr__(self, "head_dim", self.hidden // self.heads)
        if isinstance(self.import_notes, list):
            object.__setattr__(self, "import_notes", tuple(self.import_notes))

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
    def rotary_dim(self) -> int:
        """Dims of each q / k head that RoPE turns (transformers: int(head_dim * partial_rotary_factor))."""
        return int(self.head_dim * self.rotary_fraction)

    @property
    def rope_width(self) -> int:
        """Elements per token the rope op turns (non-MLA): every q and k head, rotary_dim of each."""
        if self.rotary_fraction == 1:
            return self.q_dim + self.kv_dim
        return (self.heads + self.kv_heads) * self.rotary_dim

    @property
    def window_layers(self) -> int:
        """Layers whose attention is limited to the sliding window."""
        if not self.sliding_window:
            return 0
        return self.layers if self.sliding_window_layers is None else self.sliding_window_layers

    @property
    def chunk_layers(self) -> int:
        """Layers whose attention is limited to its chunk (Llama-4 chunked local attention)."""
        if not self.attention_chunk:
            return 0
        return self.layers if self.chunked_layers is None else self.chunked_layers

    @property
    def nope_layers(self) -> int:
        """Layers without RoPE (Llama-4's global layers)."""
        return 0 if self.rope_layers is None else self.layers - self.rope_layers

    @property
    def moe_layers(self) -> int:
        if not self.moe:
            return 0
        if self.moe.layer_ids is not None:
            return len(self.moe.layer_ids)
        return self.layers - self.moe.first_dense_layers

    def is_moe_layer(self, i: int) -> bool:
        """Whether layer i (0-based) runs the experts (else the dense MLP)."""
        if not self.moe:
            return False
        if self.moe.layer_ids is not None:
            return i in self.moe.layer_ids
        return i >= self.moe.first_dense_layers

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
            # + kv_a_layernorm, and q_a_layernorm when q is low-rank (DeepSeek-V2/V3)
            return q + kv_a + kv_b + o + m.kv_lora_rank + (m.q_lora_rank or 0)
        bias = (self.q_dim + 2 * self.kv_dim) if self.qkv_bias else 0
        bias += h if self.o_bias else 0
        qk_norm = (2 * self.head_dim if self.qk_norm_per_head else self.q_dim + self.kv_dim) if self.qk_norm else 0
        sinks = self.heads if self.attn_sinks else 0
        return h * self.q_dim + 2 * h * self.kv_dim + self.q_dim * h + bias + qk_norm + sinks

    def mlp_params(self, width: int) -> int:
        if not width:
            return 0
        bias = ((2 * width if self.gated_mlp else width) + self.hidden) if self.mlp_bias else 0
        return (3 if self.gated_mlp else 2) * self.hidden * width + bias

    def layer_params(self) -> int:
        """All layers' parameters (attention, MLP or experts, router, norms)."""
        norms = self.norms_per_layer * self.hidden
        per_attn = self.attention_params() + norms
        total = self.layers * per_attn + self.dense_layers * self.mlp_params(self.intermediate)
        if self.moe:
            total += self.moe_layers * self.moe_layer_params()
        return total

    def moe_layer_params(self) -> int:
        """One MoE layer's MLP side: routed and shared experts, router (+ its bias), shared-expert gate."""
        m = self.moe
        return (m.num_experts * self.mlp_params(m.expert_intermediate) + self.mlp_params(m.shared_intermediate)
                + m.num_experts * self.hidden + (m.num_experts if self.router_bias else 0)
                + (self.hidden if m.shared_expert_gate else 0))

    def linear_inputs(self) -> int:
        """Input channels summed over every Linear of the decoder layers (the embedding, lm_head,
        routers and norms left out): the length of a per-input-channel index such as GPTQ's g_idx.
        Llama-3.1-8B: q, k, v, gate, up take 4096 each, o 4096, down 14336 -> 38,912 a layer."""
        h = self.hidden
        if self.mla:
            m = self.mla
            attn = (h if m.q_lora_rank is None else h + m.q_lora_rank) + h + m.kv_lora_rank + self.heads * m.v_head_dim
        else:
            attn = 3 * h + self.q_dim
        mlp = (lambda w: ((2 if self.gated_mlp else 1) * h + w) if w else 0)
        total = self.layers * attn + self.dense_layers * mlp(self.intermediate)
        if self.moe:
            total += self.moe_layers * (self.moe.num_experts * mlp(self.moe.expert_intermediate)
                                        + mlp(self.moe.shared_intermediate))
        return total

    def embedding_params(self) -> int:
        return self.vocab * self.hidden

    def lm_head_params(self) -> int:
        return 0 if self.tie_embeddings else self.vocab * self.hidden

    @property
    def params(self) -> int:
        return self.layer_params() + self.embedding_params() + self.lm_head_params() + self.hidden

    @property
    def mtp_params(self) -> int:
        """DeepSeek-V3's multi-token-prediction module(s): one more MoE layer each plus
        two norms and the 2h -> h projection (embedding and head shared). They serve
        speculative decoding only; `params` (and the memory footprint) leave them out, as an
        engine without MTP speculation does not load them."""
        if not self.mtp_layers:
            return 0
        m = self.moe
        per_layer = self.attention_params() + self.norms_per_layer * self.hidden
        if m:
            per_layer += self.moe_layer_params()
        else:
            per_layer += self.mlp_params(self.intermediate)
        return self.mtp_layers * (per_layer + 2 * self.hidden * self.hidden + 3 * self.hidden)

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
    hit = _BY_NAME.get(name_or_path) if isinstance(name_or_path, str) else None
    if hit is not None and _stat_key(hit[0]) == hit[1]:
        if hit[3]:  # a bare bundled name: as resolve_bundled does, the user is told of a shadowed one (once)
            warn_shadowed(name_or_path, hit[0], "model", folders=True)
        return hit[2]  # same text, same unchanged file: the spec parsed last time
    text = str(name_or_path)
    check_name(text, "model")
    path = Path(text)
    # one rule (resolve_bundled): a bare bundled name is the bundled file even when a same-named
    # folder sits in the working directory; other existing paths (an HF folder) are the user's
    bare_bundled = not looks_like_path(text) and text in bundled_names("models")
    if not bare_bundled and (path.suffix.lower() in (".yaml", ".yml", ".json") or path.exists()):
        path = path if path.exists() else resolve_bundled("models", path, "model")
        if path.is_dir():
            path = path / "config.json"
        if not path.is_file():
            raise InputError(f"{path}: no such model file")
        if path.suffix.lower() == ".json":
            return model_from_hf_config(path)
        return _remember(text, path, _from_yaml(path))
    p = resolve_bundled("models", text, "model")
    return _remember(text, p, _from_yaml(p), bare_bundled=True)


def _remember(text: str, path, spec: ModelSpec, bare_bundled: bool = False) -> ModelSpec:
    key = _stat_key(path)
    if key is not None and len(_BY_NAME) < 256:
        _BY_NAME[text] = (str(path), key, spec, bare_bundled)
    return spec


def _from_yaml(path: Path) -> ModelSpec:
    # a ModelSpec is immutable: the same unchanged file gives the same spec (parsing and
    # validating the YAML cost ~1 ms a call, more than a whole roofline evaluation)
    key = _stat_key(path)
    if key in _MODEL_CACHE:
        spec = _MODEL_CACHE[key]
    else:
        spec = _from_yaml_uncached(path)
        if key is not None and len(_MODEL_CACHE) < 256:
            _MODEL_CACHE[key] = spec
    return spec


_MODEL_CACHE: dict = {}
_BY_NAME: dict = {}  # the text a caller passed -> (file, stat key, spec, read as a bare bundled name)


def _stat_key(path):
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


def _from_yaml_uncached(path: Path) -> ModelSpec:
    data = load_yaml_file(path, what="model")
    src = str(path)
    require(isinstance(data, dict), src, "", doc_kind(data), "a mapping of model fields")
    return _build(data, src)


def _build(data: dict, src: str) -> ModelSpec:
    # field tables and cross-field rules live in workloads.schema (one checker for every file)
    from dataclasses import fields as dc_fields

    from workloads.schema import MODEL_FIELDS, Field, check, check_model_fields
    # fields beyond the table (activation, soft-caps, norms per layer ...) are known keys
    # too; their values are checked by _check_extras below
    extra = {f.name: Field("any", nullable=True) for f in dc_fields(ModelSpec) if f.name not in MODEL_FIELDS}
    problems = check(data, {**MODEL_FIELDS, **extra}, src)
    if not problems:
        problems = check_model_fields(data, src)
    if len(problems) == 1:
        raise InputError(problems[0])
    if problems:
        raise InputError(f"{src}: {len(problems)} problems:\n  " + "\n  ".join(problems))
    data = dict(data)
    _check_extras(data, src)
    data.setdefault("kv_heads", data["heads"])
    if data.get("moe") is not None:
        moe = dict(data["moe"])
        if moe.get("layer_ids") is not None:
            moe["layer_ids"] = tuple(moe["layer_ids"])
        data["moe"] = MoESpec(**moe)
    if data.get("mla") is not None:
        data["mla"] = MLASpec(**data["mla"])
    data.setdefault("name", Path(src).stem)
    data.setdefault("source", src)
    return ModelSpec(**data)


def _check_extras(data: dict, src: str) -> None:
    if data.get("sliding_window_layers") is not None:
        v = data["sliding_window_layers"]
        require(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= data["layers"], src,
                "sliding_window_layers", v, f"an integer in 0..layers ({data['layers']})")
    if "activation" in data:
        require(data["activation"] in ("silu", "gelu", "gelu_tanh"), src, "activation", data["activation"],
                "silu (SwiGLU), gelu or gelu_tanh (GeGLU)")
    if "norms_per_layer" in data:
        require(data["norms_per_layer"] in (2, 4), src, "norms_per_layer", data["norms_per_layer"], "2 or 4")
    for key in ("attn_softcap", "logit_softcap", "embed_multiplier", "residual_multiplier", "logit_scale"):
        v = data.get(key)
        require(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0), src, key, v,
                "a positive number or null")
    for key in ("qk_norm", "qk_norm_per_head", "o_bias", "mlp_bias", "router_bias", "tie_embeddings", "gated_mlp",
                "qkv_bias", "attn_sinks"):
        if key in data:
            require(isinstance(data[key], bool), src, key, data[key], "true or false")
    for key in ("weights_format", "embed_format", "lm_head_format", "attn_format"):
        wf = data.get(key)
        if wf is not None:
            try:
                get_format(wf)
            except ValueError as e:
                raise InputError(f"{src}: {key}: got {wf!r}; expected a registered number format ({e})") from None
    v = data.get("g_idx_bits", 0)
    require(v in (0, 32) and not isinstance(v, bool), src, "g_idx_bits", v,
            "0 (no per-input-channel index) or 32 (GPTQ's int32 g_idx)")
    v = data.get("mtp_layers", 0)
    require(isinstance(v, int) and not isinstance(v, bool) and v >= 0, src, "mtp_layers", v, "a non-negative integer")
    for key in ("chunked_layers", "rope_layers"):
        v = data.get(key)
        require(v is None or (isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= data["layers"]), src, key, v,
                f"null (all layers) or an integer in 0..layers ({data['layers']})")
    v = data.get("attention_chunk")
    require(v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 1), src, "attention_chunk", v,
            "null (no chunked attention) or a positive number of tokens")
    if v is not None:
        require(not data.get("sliding_window"), src, "attention_chunk", v,
                "null when sliding_window is set (chunked and sliding-window attention together are not modelled)")
    for key in ("qk_l2norm", "attn_temperature"):
        if key in data:
            require(isinstance(data[key], bool), src, key, data[key], "true or false")
    _check_rotary(data, src)
    notes = data.get("import_notes", ())
    require(isinstance(notes, (list, tuple)) and all(isinstance(n, str) for n in notes), src, "import_notes", notes,
            "a list of notes (text)")


def _check_rotary(data: dict, src: str) -> None:
    """rotary_fraction: a number in (0, 1] giving an even, non-zero rotary width (RoPE turns dim pairs);
    MLA states its rope width itself (qk_rope_head_dim), so a fraction there is refused, not applied twice."""
    f = data.get("rotary_fraction", 1.0)
    require(isinstance(f, (int, float)) and not isinstance(f, bool) and 0 < f <= 1, src, "rotary_fraction", f,
            "a number in (0, 1] (the share of each head's dims RoPE turns; 1: all)")
    if f == 1:
        return
    require(data.get("mla") is None, src, "rotary_fraction", f,
            "1 for an MLA model (its rope width is mla.qk_rope_head_dim)")
    hd = data.get("head_dim") or data["hidden"] // data["heads"]
    rot = int(hd * f)
    require(rot >= 2 and rot % 2 == 0, src, "rotary_fraction", f,
            f"a fraction giving an even rotary width of at least 2 (head_dim {hd} x {f} = {hd * f:g} dims)")


# tie_word_embeddings when config.json leaves it out: the default of each model's HF config class
# (PretrainedConfig's own default is True, so an unknown type without the key is refused)
_TIE_DEFAULT = {"llama": False, "mistral": False, "mixtral": False, "qwen2": False, "qwen2_moe": False,
                "qwen3": False, "qwen3_moe": False, "phi3": False, "deepseek_v2": False, "deepseek_v3": False,
                "gemma": True, "gemma2": True, "gemma3_text": True, "olmo2": False, "gpt_oss": False,
                "granite": False, "llama4_text": False}
# the model types the importer models (an allow-list: any other type is refused by name, since
# an unknown architecture with Llama-like keys would be counted as a Llama -- e.g. ERNIE-4.5-MoE's
# moe_num_experts ignored (3.35 B for 21.8 B), Phi-2 / GPT-NeoX's plain MLP + LayerNorm biases as
# a GeGLU (+28-30 %), MiniMax's linear-attention layers given a KV cache)
MODELLED_TYPES = tuple(sorted(_TIE_DEFAULT))
# a multimodal config's non-text towers: their parameters and FLOPs are not modelled
_OTHER_TOWERS = ("vision_config", "audio_config", "speech_config", "vision_tower_config")
_ACTIVATIONS = {"silu": "silu", "swish": "silu", "gelu_pytorch_tanh": "gelu_tanh", "gelu_new": "gelu_tanh",
                "gelu": "gelu"}
_FOUR_NORMS = ("gemma2", "gemma3_text")  # pre- and post-norm around attention and MLP
_QK_NORM = ("qwen3", "qwen3_moe", "olmo2", "gemma3_text")


def _hf_refuse(cfg: dict, src: str, pre: str = "") -> None:
    """Fields that change FLOPs, bytes or memory in ways this spec does not model: one clear
    error naming the field (`pre`: "text_config." for a multimodal file's text model), never
    a silently different model."""
    mt = cfg.get("model_type")
    require(mt in MODELLED_TYPES, src, pre + "model_type", mt,
            f"one of the architectures the importer models: {', '.join(MODELLED_TYPES)} "
            f"(others are refused rather than counted as a Llama)")
    qwen_moe = mt in ("qwen2_moe", "qwen3_moe")  # their sparse steps / dense-layer lists are modelled
    checks = [("attention_chunk_size", lambda v: v in (None, 0) or mt == "llama4_text",
               "null (chunked attention is modelled for model_type llama4_text only)"),
              ("cross_attention_layers", lambda v: not v, "empty (cross-attention is not modelled)"),
              ("decoder_sparse_step", lambda v: v in (None, 1) or qwen_moe,
               "1 (sparser MoE steps are modelled for qwen2_moe / qwen3_moe only)"),
              ("mlp_only_layers", lambda v: not v or qwen_moe,
               "empty (dense-layer lists are modelled for qwen2_moe / qwen3_moe only)"),
              ("moe_layers", lambda v: v is None or mt == "llama4_text",
               "absent (an MoE layer list is modelled for model_type llama4_text only)"),
              ("no_rope_layers", lambda v: not v or mt == "llama4_text",
               "absent (NoPE layers are modelled for model_type llama4_text only)"),
              ("moe_layer_freq", lambda v: v in (None, 1), "1 (every layer after first_k_dense_replace is MoE)"),
              ("hidden_act", lambda v: v is None or v in _ACTIVATIONS, f"one of {sorted(_ACTIVATIONS)}"),
              ("hidden_activation", lambda v: v is None or v in _ACTIVATIONS, f"one of {sorted(_ACTIVATIONS)}")]
    for key, ok, expected in checks:
        if key in cfg:
            require(ok(cfg[key]), src, pre + key, cfg[key], expected)
    _refuse_missing_defaults(cfg, src, pre)
    lt = cfg.get("layer_types")
    if lt is not None and mt != "llama4_text":  # llama4's chunked/full list: workloads.hf_layers.llama4_plan
        kinds = ("sliding_attention", "full_attention")  # `in`, not set(): an entry may be unhashable
        require(all(t in kinds for t in lt), src, pre + "layer_types", lt,
                "a list of 'sliding_attention' / 'full_attention' (other layer kinds are not modelled)")
        n = cfg["num_hidden_layers"]  # one entry per layer (transformers' layer_type_validation)
        if len(lt) != n:
            raise field_error(src, pre + "layer_types", f"got a list of {len(lt)} entries; expected {n}, one per "
                                                        f"layer (num_hidden_layers is {n})")
    _check_rope(cfg, src, pre)


# types whose transformers config class defaults a field that changes FLOPs, bytes or memory to
# something the importer cannot derive from the other keys: a config leaving it out is refused,
# never priced with a guess (head_dim: hidden / heads would be wrong, e.g. Gemma-3-4B 2560 / 8 = 320
# for 256; a missing window would price every layer as full attention)
_DECOUPLED_HEAD_DIM = ("gemma", "gemma2", "gemma3_text", "qwen3", "qwen3_moe", "gpt_oss", "llama4_text")
_NEEDS_WINDOW = ("gemma2", "gemma3_text", "gpt_oss")  # every checkpoint slides some layers
# num_key_value_heads: these classes default it to a number (Mistral 8, Gemma-2 16 with 8 heads, gpt-oss 8,
# Qwen2/3 32...), not to num_attention_heads as Llama, Phi-3 and OLMo-2 do
_KV_HEADS_DEFAULTED = ("gemma", "gemma2", "gemma3_text", "gpt_oss", "mistral", "mixtral", "qwen2", "qwen2_moe",
                       "qwen3", "qwen3_moe", "llama4_text")
# moe_intermediate_size: these classes default it (Qwen2-MoE 1408, Qwen3-MoE 768, DeepSeek 1407); Mixtral and
# gpt-oss have no such key, their experts are intermediate_size wide
_MOE_WIDTH_DEFAULTED = ("qwen2_moe", "qwen3_moe", "deepseek_v2", "deepseek_v3")
_PATTERN_KEYS = ("layer_types", "sliding_window_pattern", "_sliding_window_pattern")
# n_shared_experts: the class defaults disagree (DeepseekV3Config 1, transformers' DeepseekV2Config 2, DeepSeek's
# remote-code DeepseekV2Config None = no shared expert), and each shared expert is a whole MLP on every MoE layer
_SHARED_DEFAULTS = {"deepseek_v2": "transformers' DeepseekV2Config defaults it to 2, DeepSeek's remote-code "
                                   "DeepseekV2Config to none",
                    "deepseek_v3": "DeepseekV3Config defaults it to 1"}


def _refuse_missing_defaults(cfg: dict, src: str, pre: str) -> None:
    mt = cfg.get("model_type")
    if mt in _DECOUPLED_HEAD_DIM:
        require(cfg.get("head_dim") is not None, src, pre + "head_dim", None,
                f"present for model_type {mt} (its head_dim is not hidden_size / num_attention_heads in general, "
                f"and transformers' default for it is not guessed)")
    if mt in _NEEDS_WINDOW:
        require(cfg.get("sliding_window") is not None, src, pre + "sliding_window", None,
                f"present for model_type {mt} (its local layers attend to a window; without it every layer "
                f"would be priced as full attention)")
    if mt in _KV_HEADS_DEFAULTED:
        require(cfg.get("num_key_value_heads") is not None, src, pre + "num_key_value_heads", None,
                f"present for model_type {mt} (transformers' default for it is not num_attention_heads, and it "
                f"sets the KV cache and the k/v projections)")
    if mt in EXPERT_KEY:
        _refuse_moe_defaults(cfg, src, pre, mt)
    if mt == "gemma3_text" and cfg.get("use_bidirectional_attention"):
        require(False, src, pre + "use_bidirectional_attention", True,
                "false or absent (EmbeddingGemma's bidirectional encoder attention is not modelled)")
    if mt in ("gemma3_text", "gpt_oss"):
        require(any(cfg.get(k) is not None for k in _PATTERN_KEYS), src, pre + "layer_types", None,
                f"present for model_type {mt}, or sliding_window_pattern (which layers slide and which attend "
                f"to the whole context is not guessed)")


def _refuse_moe_defaults(cfg: dict, src: str, pre: str, mt: str) -> None:
    """The expert fields of an MoE model_type that its class defaults: refused when missing (0 routed
    experts too), never priced with a guess."""
    if mt != "llama4_text":  # llama4_text: refused in workloads.hf_layers.llama4_plan
        _require_experts(cfg, src, pre, mt)
    if not hf_experts(cfg):
        return
    require(cfg.get("num_experts_per_tok") is not None, src, pre + "num_experts_per_tok", None,
            "present in a mixture-of-experts config (the experts each token runs are not guessed)")
    if mt in _MOE_WIDTH_DEFAULTED:
        require(cfg.get("moe_intermediate_size") is not None, src, pre + "moe_intermediate_size", None,
                f"present for model_type {mt} (its experts are not intermediate_size wide)")
    else:  # Mixtral, gpt-oss, Llama-4: each expert is intermediate_size wide
        _require_width(cfg, src, pre, f"a positive integer, present for model_type {mt} (each expert's MLP "
                                      f"width; the class default is not guessed)")
    if mt in _SHARED_DEFAULTS:  # null stays "none", as DeepSeek's remote code reads it
        require("n_shared_experts" in cfg, src, pre + "n_shared_experts", None,
                f"present for model_type {mt} (the shared experts every MoE layer runs; "
                f"{_SHARED_DEFAULTS[mt]}: not guessed; 0 for none)")


def _require_experts(cfg: dict, src: str, pre: str, mt: str, key: str | None = None) -> None:
    """An MoE type's routed-expert count: present and at least num_experts_per_tok. 0 is refused like a
    missing key: hf_experts reads it as "no experts", so the model would be priced as dense with no word.
    `key`: the key it was read from when not its class's own (EXPERT_KEY)."""
    key = key or EXPERT_KEY[mt]
    n, k = cfg.get(key), cfg.get("num_experts_per_tok")
    require(n is not None, src, pre + key, None, f"present for model_type {mt} (the routed-expert count; its class "
                                                 f"default is not guessed, and without it the model would be "
                                                 f"priced as dense)")
    least = f"at least num_experts_per_tok ({k})" if k else "a positive count"  # k: an int >= 1 or null
    require(n >= (k or 1), src, pre + key, n,
            f"{least} for model_type {mt} (the routed experts each token picks from; 0 would price the model "
            f"as dense)")


def _require_width(cfg: dict, src: str, pre: str, expected: str) -> None:
    """intermediate_size set and positive, else one error naming it as the file does (missing,
    null or 0), never the spec's derived `intermediate`."""
    v = cfg.get("intermediate_size")
    if not v:
        shown = "missing" if "intermediate_size" not in cfg else "null" if v is None else short_repr(v)
        raise field_error(src, pre + "intermediate_size", f"got {shown}; expected {expected}")


def _check_dense_width(cfg: dict, d: dict, src: str, pre: str) -> None:
    """The layers that run a dense MLP need intermediate_size (Llama-4's intermediate_size_mlp
    is required by workloads.hf_layers.llama4_plan)."""
    moe = d.get("moe")
    if cfg.get("model_type") == "llama4_text":
        return
    if not moe:
        _require_width(cfg, src, pre, "a positive integer, the MLP width of this dense model (the class default "
                                      "is not guessed; 0 would drop the MLP)")
    elif moe.get("first_dense_layers"):
        _require_width(cfg, src, pre, f"a positive integer: the first {moe['first_dense_layers']} layer(s) "
                                      f"(first_k_dense_replace) run a dense MLP of that width")
    elif moe.get("layer_ids") is not None and len(moe["layer_ids"]) < d["layers"]:
        _require_width(cfg, src, pre, f"a positive integer: {d['layers'] - len(moe['layer_ids'])} layer(s) run "
                                      f"a dense MLP of that width")


def _window_layers(cfg: dict, layers: int):
    """How many layers use the sliding window (None: all of them)."""
    mt = cfg.get("model_type")
    if cfg.get("layer_types") is not None:
        return sum(t == "sliding_attention" for t in cfg["layer_types"])
    if mt == "gemma2":  # layer i slides when i is even (Gemma2DecoderLayer.is_sliding)
        return (layers + 1) // 2
    pattern = cfg.get("sliding_window_pattern") or cfg.get("_sliding_window_pattern")
    if pattern:  # Gemma-3: every n-th layer is global (Gemma3DecoderLayer: (i + 1) % pattern == 0)
        return layers - layers // int(pattern)
    if mt in ("qwen2", "qwen2_moe", "qwen3", "qwen3_moe") and cfg.get("max_window_layers") is not None:
        return max(0, layers - cfg["max_window_layers"])  # layers >= max_window_layers slide (an int >= 0)
    return None


# transformers' ROPE_INIT_FUNCTIONS: the rope types a config may name ("default": no scaling)
_ROPE_TYPES = ("default", "linear", "dynamic", "yarn", "longrope", "llama3")
_ROPE_FACTOR_AT_LEAST_1 = ("linear", "dynamic", "yarn", "llama3")  # factor required; HF warns below 1
# Phi3Config._rope_scaling_adjustment (transformers 4.43+): early Phi-3-128k configs' "su" (and "yarn") are
# LongRoPE, renamed "longrope"; any other type would fail in transformers, so it is refused here
_PHI3_LEGACY_ROPE = ("su", "yarn")


# transformers 5 saves the RoPE settings as rope_parameters (4.x: rope_scaling), rope_theta and
# partial_rotary_factor inside; per layer type ({"full_attention": {...}, "sliding_attention": {...}}: Gemma-3)
# when the kinds of layer differ. The full-attention layers' entry is the one that sets the context
_ROPE_LAYER_KINDS = ("full_attention", "sliding_attention", "chunked_attention")
# what the importer reads of a RoPE mapping (the rest set frequencies only): rope_scaling and
# rope_parameters both stating it must agree
_ROPE_READ = ("factor", "original_max_position_embeddings")


def _per_layer(rp: dict) -> bool:
    return bool(rp) and all(k in _ROPE_LAYER_KINDS for k in rp)


def _rope_entries(cfg: dict) -> list:
    """(field, mapping) of every RoPE mapping a config states, rope_scaling first."""
    out = [("rope_scaling", cfg["rope_scaling"])] if isinstance(cfg.get("rope_scaling"), dict) else []
    rp = cfg.get("rope_parameters")
    if isinstance(rp, dict):
        out += [(f"rope_parameters.{k}", v) for k, v in rp.items()] if _per_layer(rp) else [("rope_parameters", rp)]
    return out


def _rope_map(cfg: dict):
    """(field, mapping) of the RoPE mapping that sets the context, or (None, None): rope_scaling, else
    rope_parameters (per layer type: the full-attention layers', else its one entry)."""
    if isinstance(cfg.get("rope_scaling"), dict):
        return "rope_scaling", cfg["rope_scaling"]
    rp = cfg.get("rope_parameters")
    if not isinstance(rp, dict):
        return None, None
    if not _per_layer(rp):
        return "rope_parameters", rp
    key = "full_attention" if "full_attention" in rp else next(iter(rp))
    return f"rope_parameters.{key}", rp[key]


def _kind_of(cfg: dict, rs: dict):
    kind = rs.get("rope_type") or rs.get("type")
    return "longrope" if cfg.get("model_type") == "phi3" and kind in _PHI3_LEGACY_ROPE else kind


def _rope_kind(cfg: dict):
    """The rope type the (checked) context-setting RoPE mapping names, Phi-3's legacy names mapped to longrope."""
    rs = _rope_map(cfg)[1]
    return _kind_of(cfg, rs) if isinstance(rs, dict) else None


def _check_rope(cfg: dict, src: str, pre: str) -> None:
    """rope_scaling / rope_parameters (mappings: the table check refused any other rope_scaling): a known type
    and, where its type reads one, a numeric factor; a typo or a string factor is refused by name, never read as
    "no scaling" (it sets the context limit: _rope_extended). Both keys stating different scalings is refused."""
    rp = cfg.get("rope_parameters")
    require(rp is None or isinstance(rp, dict), src, pre + "rope_parameters", rp,
            "a mapping with rope_type and its factor (transformers 5's rope_scaling), or null")
    if isinstance(rp, dict) and _per_layer(rp):
        require(all(isinstance(v, dict) for v in rp.values()) and ("full_attention" in rp or len(rp) == 1), src,
                pre + "rope_parameters", rp, "one mapping per layer type, full_attention among them when there "
                                             "are several (its entry sets the context)")
    for fld, rs in _rope_entries(cfg):
        _check_rope_map(cfg, rs, src, pre + fld + ".")
    if isinstance(cfg.get("rope_scaling"), dict) and isinstance(rp, dict):
        a, b = cfg["rope_scaling"], _rope_map({**cfg, "rope_scaling": None})[1]
        same = _kind_of(cfg, a) == _kind_of(cfg, b) and all(a.get(k) == b.get(k) for k in _ROPE_READ)
        require(same, src, pre + "rope_parameters", rp,
                f"the same rope type, factor and original_max_position_embeddings as {pre}rope_scaling "
                f"({short_repr(a)}): which one sets the context is not guessed")


def _check_rope_map(cfg: dict, rs: dict, src: str, fld: str) -> None:
    from workloads.schema import hint
    raw = rs.get("rope_type") if "rope_type" in rs else rs.get("type")
    names = "rope_type" if "rope_type" in rs or "type" not in rs else "type"
    allowed = _ROPE_TYPES + (_PHI3_LEGACY_ROPE if cfg.get("model_type") == "phi3" else ())
    require(isinstance(raw, str) and raw in allowed, src, fld + names, raw,
            f"one of {', '.join(allowed)} (transformers' rope types){hint(raw, allowed)}")
    kind = _kind_of(cfg, rs)
    factor = rs.get("factor")
    if kind in _ROPE_FACTOR_AT_LEAST_1 or factor is not None:
        least = 1 if kind in _ROPE_FACTOR_AT_LEAST_1 else 0
        ok = isinstance(factor, (int, float)) and not isinstance(factor, bool) and math.isfinite(factor) \
            and (factor >= 1 if least else factor > 0)
        require(ok, src, fld + "factor", factor,
                f"a number >= 1 (the {kind} scaling factor, required for rope type {kind})" if least else
                f"a positive number (the {kind} scaling factor), or absent")
    orig = rs.get("original_max_position_embeddings")
    require(orig is None or (isinstance(orig, int) and not isinstance(orig, bool) and orig >= 1), src,
            fld + "original_max_position_embeddings", orig, "a positive integer (positions), or absent")


def _rope_extended(cfg: dict, max_pos: int, src: str, pre: str = "") -> int:
    """The longest context of an HF config: max_position_embeddings, or longer where its
    rope scaling extends it. Llama-3.1 ("llama3") and longrope configs already state the
    extended length there; a YaRN / dynamic entry (e.g. Qwen2.5's documented
    {type: yarn, factor: 4, original_max_position_embeddings: 32768}) multiplies the
    original length by its factor. A linear entry does so only when it names
    original_max_position_embeddings: without it max_position_embeddings is already the
    interpolated length (Gemma-3: linear x8 with 131,072 positions, not 1,048,576)."""
    (fld, rs), kind = _rope_map(cfg), _rope_kind(cfg)
    if kind not in ("yarn", "linear", "dynamic") or \
            (kind == "linear" and not rs.get("original_max_position_embeddings")):
        return max_pos
    factor, orig = rs.get("factor"), rs.get("original_max_position_embeddings") or max_pos
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not factor > 1 \
            or isinstance(orig, bool) or not isinstance(orig, int) or orig < 1:
        return max_pos
    from workloads.schema import MAX_CONTEXT
    if orig * factor > MAX_CONTEXT:
        raise InputError(f"{src}: {pre}{fld}.factor: got {factor!r}; expected a factor keeping the context "
                         f"({orig:,} x factor) at most {MAX_CONTEXT:,} positions")
    return max(max_pos, int(orig * factor))


def _hf_extras(cfg: dict, d: dict) -> None:
    """The fields beyond the plain decoder shape (see ModelSpec's second block)."""
    mt = cfg.get("model_type")
    # absent both keys: the class's default (Gemma-2 / Gemma-3: gelu_pytorch_tanh; the others silu)
    act = cfg.get("hidden_activation") or cfg.get("hidden_act") or (
        "gelu_pytorch_tanh" if mt in ("gemma2", "gemma3_text") else "silu")
    if mt == "gemma" and not cfg.get("hidden_activation"):
        # Gemma 1.0 configs shipped "hidden_act": "gelu" (exact erf), but the model was trained with
        # the tanh approximation; HF's GemmaMLP used gelu_pytorch_tanh whenever hidden_activation was
        # unset (transformers PR #29402) until a 2024-12 refactor dropped that guard
        act = "gelu_pytorch_tanh"
    d["activation"] = _ACTIVATIONS[act]
    d["tie_embeddings"] = bool(cfg.get("tie_word_embeddings", _TIE_DEFAULT.get(mt, False)))
    if mt in _FOUR_NORMS:
        d["norms_per_layer"] = 4
    if mt in _QK_NORM:
        d["qk_norm"] = True
        if mt == "olmo2":  # Olmo2Attention: q_norm over heads x head_dim, k_norm over kv_heads x head_dim
            d["qk_norm_per_head"] = False
    if cfg.get("attention_bias") and mt not in ("qwen2", "qwen2_moe"):
        d["o_bias"] = True  # Llama-style attention_bias: q, k, v and o
    if cfg.get("mlp_bias"):
        d["mlp_bias"] = True
    for key, field in (("attn_logit_softcapping", "attn_softcap"), ("final_logit_softcapping", "logit_softcap")):
        if cfg.get(key) is not None:  # a positive number (workloads.schema.HF_FIELDS)
            d[field] = float(cfg[key])
    rope = _rope_kind(cfg)
    if rope and rope != "default":  # "default": plain RoPE, no scaling (transformers 5 states it)
        d["rope_scaling"] = rope
    if cfg.get("num_nextn_predict_layers"):  # an integer (workloads.schema.HF_FIELDS)
        d["mtp_layers"] = cfg["num_nextn_predict_layers"]
    if cfg.get("topk_method") == "noaux_tc":
        d["router_bias"] = True
    if mt == "granite":  # GraniteModel / GraniteDecoderLayer / GraniteForCausalLM (class defaults 1.0)
        for key, field in (("embedding_multiplier", "embed_multiplier"), ("residual_multiplier", "residual_multiplier"),
                           ("logits_scaling", "logit_scale")):
            d[field] = cfg.get(key, 1.0)
    if mt == "gpt_oss":  # GptOssTopKRouter has a bias; GptOssExperts gate_up_proj_bias and down_proj_bias;
        d["router_bias"] = d["mlp_bias"] = d["attn_sinks"] = True  # GptOssAttention.sinks (one per head)
    if d.get("sliding_window"):
        wl = _window_layers(cfg, d["layers"])
        if wl is not None:
            d["sliding_window_layers"] = wl


def _hf_name(cfg: dict, outer: dict, path: Path) -> str:
    """The config's own name (`_name_or_path`), else its checkpoint folder's for a config.json,
    else the file's stem (a loose `qwen2_7b.json` is not named after the folder it sits in)."""
    own = cfg.get("_name_or_path") or outer.get("_name_or_path")
    if isinstance(own, str) and own.strip():
        own = own.strip()
        # a Hub id is "org/name"; a local path the checkpoint was saved from (/home/u/models/Foo,
        # ./ckpt/Foo, ~/Foo, C:\models\Foo) is named by its last component, not verbatim
        parts = [p for p in own.replace("\\", "/").split("/") if p not in ("", ".", "..", "~")]
        if not (own[0] in "/.~" or "\\" in own or ":" in own or len(parts) > 2):
            return own
        if parts:
            return parts[-1]  # "." or "/" alone names nothing: the file's own rule below
    if path.name == "config.json":
        return path.resolve().parent.name or path.stem
    return path.stem


def _hf_quant(quant: dict, cfg: dict, outer: dict, src: str, d: dict) -> None:
    """The checkpoint's stored formats from its quantization_config (workloads.hf_quant)."""
    from workloads.hf_quant import declared_weights, ignore_note, table_dtype, unquantized_formats
    d["weights_format"], d["weights_origin"] = declared_weights(quant, src)
    dtype, how = table_dtype(cfg, src, outer)
    d["embed_format"], d["lm_head_format"] = unquantized_formats(quant, dtype, src, d["layers"])
    if quant.get("quant_method") == "mxfp4":  # only the MoE experts are MXFP4 (workloads.hf_quant.mxfp4_unconverted)
        from workloads.hf_quant import mxfp4_unconverted
        if "attention" in mxfp4_unconverted(quant, src, d["layers"]):
            d["attn_format"] = dtype
            d["weights_origin"] += (f"; MoE experts only (transformers' MXFP4 quantizer converts the experts alone): "
                                    f"attention and router {dtype}")
    d["weights_origin"] += ignore_note(quant, src, d["weights_format"], cfg)
    if quant.get("quant_method") == "gptq":  # g_idx stored whatever desc_act (workloads.hf_quant.G_IDX_BITS)
        from workloads.hf_quant import G_IDX_BITS
        d["g_idx_bits"] = G_IDX_BITS
        d["weights_origin"] += "; g_idx (int32 per input channel of each Linear) counted"
    if how != "torch_dtype":  # a default that sets bytes: said in the note
        d["weights_origin"] += f"; {how}"


def _wrapper_tie(cfg: dict, outer: dict, src: str, d: dict) -> None:
    """A multimodal wrapper's tie_word_embeddings: the text config's unless only the wrapper states it;
    both stating different values is refused (which one ties the lm_head is not guessed)."""
    if "tie_word_embeddings" in outer and "tie_word_embeddings" in cfg:
        require(bool(outer["tie_word_embeddings"]) == bool(cfg["tie_word_embeddings"]), src, "tie_word_embeddings",
                outer["tie_word_embeddings"], f"the same as text_config.tie_word_embeddings "
                f"({cfg['tie_word_embeddings']}): which one ties the text model's lm_head is not guessed")
    elif "tie_word_embeddings" in outer:  # the wrapper's flag, the text config silent
        d["tie_embeddings"] = bool(outer["tie_word_embeddings"])


def _hf_moe_and_plan(cfg: dict, d: dict, src: str, pre: str) -> list:
    """The experts (d["moe"]) and the per-layer plan: Llama-4's and Qwen-MoE's (workloads.hf_layers); returns the
    plan's import notes (class defaults it applied)."""
    mt = cfg.get("model_type")
    plan = llama4_plan(cfg, d["layers"], src, pre) if mt == "llama4_text" else {}
    experts = hf_experts(cfg)
    if experts:
        shared = cfg.get("n_shared_experts") or 0
        moe_inter = cfg.get("moe_intermediate_size") or cfg.get("intermediate_size")
        shared_inter = cfg.get("shared_expert_intermediate_size") or shared * (moe_inter or 0)
        d["moe"] = {"num_experts": experts, "top_k": cfg["num_experts_per_tok"],
                    "expert_intermediate": moe_inter, "shared_experts": shared or (1 if shared_inter else 0),
                    "shared_intermediate": shared_inter,
                    "first_dense_layers": cfg.get("first_k_dense_replace", 0) or 0}
        if cfg.get("model_type") == "qwen2_moe" and shared_inter:
            d["moe"]["shared_expert_gate"] = True  # Qwen2MoeSparseMoeBlock.shared_expert_gate
        ids = None
        if mt == "llama4_text":  # Llama4TextMoe: one shared expert (Llama4TextMLP) as wide as each routed one
            d["moe"].update(shared_experts=1, shared_intermediate=cfg["intermediate_size"])
            ids, d["intermediate"] = plan["moe_layer_ids"], plan["intermediate"]
        elif mt in ("qwen2_moe", "qwen3_moe"):
            ids = qwen_moe_layer_ids(cfg, d["layers"], src, pre)
        if ids is not None and len(ids) < d["layers"]:
            d["moe"]["layer_ids"] = ids
            if mt != "llama4_text":  # Qwen*MoeMLP(config, intermediate_size=config.intermediate_size)
                require(cfg.get("intermediate_size") is not None, src, pre + "intermediate_size", None,
                        f"present: {d['layers'] - len(ids)} layer(s) run a dense MLP of that width (the class "
                        f"default is not guessed)")
        elif not cfg.get("first_k_dense_replace"):
            d["intermediate"] = 0
    for key in ("attention_chunk", "chunked_layers", "rope_layers", "qk_l2norm", "attn_temperature"):
        if key in plan:
            d[key] = plan[key]
    return plan.get("notes", [])


def _refuse_towers(cfg: dict, src: str, expected: str, keep: str | None = None) -> None:
    """Refuse a multimodal config's non-text towers (_OTHER_TOWERS) by name, all but `keep`."""
    for key in _OTHER_TOWERS:
        if key != keep:
            require(not cfg.get(key), src, key, cfg.get(key), expected)


def _llama4_wrapper(cfg: dict, src: str) -> list:
    """Llama4Config (Llama4ForConditionalGeneration): its text model is priced, its vision tower
    is not -- said in a note with the tower's parameter count (workloads.hf_layers); a wrapper
    without a text_config is refused (transformers would build a default text model)."""
    tc = cfg.get("text_config")
    require(isinstance(tc, dict) and "hidden_size" in tc, src, "text_config", tc,
            "the text model's fields (a Llama-4 multimodal config without text_config is refused: "
            "transformers would build a default Llama4TextConfig, not this checkpoint's)")
    vc = cfg.get("vision_config")
    _refuse_towers(cfg, src, "absent (Llama-4 has a vision tower only)", keep="vision_config")
    if not vc:
        return []
    require(isinstance(vc, dict), src, "vision_config", vc, "a JSON object (the vision tower's fields)")
    n = llama4_vision_params(vc, tc["hidden_size"], src)
    return [f"text-only pricing: {src}'s vision tower and projector (vision_config: {n:,} parameters) are not "
            f"priced -- no image tokens, no vision FLOPs, and its weights are left out of the memory footprint"]


def _qkv_bias(cfg: dict, src: str, pre: str) -> bool:
    """Biases on q, k and v: Qwen2Attention always has them; Qwen2MoeAttention when qkv_bias (default true;
    its class reads no attention_bias); the others with Llama-style attention_bias."""
    mt = cfg.get("model_type")
    if mt == "qwen2_moe":
        v = cfg.get("qkv_bias", True)
        require(isinstance(v, bool), src, pre + "qkv_bias", v, "true or false (Qwen2MoeConfig's default: true)")
        return v
    return bool(cfg.get("attention_bias", False) or mt == "qwen2")


# Qwen2/Qwen3(-MoE) configs default use_sliding_window to false and then ignore sliding_window
_WINDOW_OPT_IN = ("qwen2", "qwen2_moe", "qwen3", "qwen3_moe")


def _window(cfg: dict, src: str, pre: str) -> tuple:
    """(the sliding window or None, an import note or None)."""
    w, use = cfg.get("sliding_window"), cfg.get("use_sliding_window")
    if not w or use is False:
        return None, None
    if use is None and cfg.get("model_type") in _WINDOW_OPT_IN:  # the class default (false) applies
        return None, (f"{src}: {pre}sliding_window {w:,} ignored: use_sliding_window is absent and "
                      f"{cfg['model_type']}'s transformers class defaults it to false (every layer attends to "
                      f"the whole context)")
    return w, None


def _qwen3_moe_experts(cfg: dict, src: str, pre: str) -> dict:
    """transformers 5 saves Qwen3-MoE's expert count as num_local_experts (Qwen3MoeConfig.attribute_map:
    num_experts -> num_local_experts): read there when num_experts is absent; both stated must agree.
    Qwen2MoeConfig has no such map (it reads num_experts alone), so only qwen3_moe."""
    if cfg.get("model_type") != "qwen3_moe" or cfg.get("num_local_experts") is None:
        return cfg
    n = cfg["num_local_experts"]
    if cfg.get("num_experts") is not None:
        require(cfg["num_experts"] == n, src, pre + "num_local_experts", n,
                f"the same as {pre}num_experts ({cfg['num_experts']}): transformers reads both as one count")
        return cfg
    _require_experts(cfg, src, pre, "qwen3_moe", key="num_local_experts")
    return {**cfg, "num_experts": n}


def _rotary_fraction(cfg: dict, src: str, pre: str) -> float:
    """partial_rotary_factor: at the top level (transformers 4) or inside rope_parameters (5; per layer type
    too). Each stated value is checked (a number in (0, 1]); differing values are refused naming both."""
    found = [("partial_rotary_factor", cfg["partial_rotary_factor"])] if "partial_rotary_factor" in cfg else []
    found += [(f + ".partial_rotary_factor", m["partial_rotary_factor"]) for f, m in _rope_entries(cfg)
              if isinstance(m, dict) and "partial_rotary_factor" in m]
    for fld, v in found:
        require(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 1, src, pre + fld, v,
                "a number in (0, 1] (the share of each head's dims RoPE turns), or absent")
    for fld, v in found[1:]:
        require(v == found[0][1], src, pre + fld, v, f"the same as {pre}{found[0][0]} ({found[0][1]!r}): "
                                                    f"one rotary width is modelled")
    if not found or found[0][1] == 1:
        return 1.0
    fld, f = pre + found[0][0], found[0][1]
    require(not cfg.get("kv_lora_rank"), src, fld, f, "absent for MLA (its rope width is qk_rope_head_dim)")
    hd = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    require(int(hd * f) >= 2 and int(hd * f) % 2 == 0, src, fld, f,
            f"a factor giving an even rotary width of at least 2 (head_dim {hd} x {f} = {hd * f:g} dims)")
    return float(f)


def _hf_context(cfg: dict, d: dict, src: str, pre: str) -> list:
    """Set the sliding window and the maximum context in `d`; returns the import notes they make."""
    notes = []
    window, note = _window(cfg, src, pre)
    if window:
        d["sliding_window"] = window
    if note:
        notes.append(note)
    max_pos = cfg.get("max_position_embeddings")
    if max_pos is None and "max_position_embeddings" not in cfg and cfg.get("model_type") == "gemma3_text":
        max_pos = 131072  # Gemma3TextConfig's default (its text_config in a Gemma3Config often leaves it out)
        notes.append(f"{src}: {pre}max_position_embeddings absent: Gemma3TextConfig's default 131,072 positions")
    if max_pos:
        d["max_context"] = _rope_extended(cfg, max_pos, src, pre)
    if d.get("sliding_window") and d.get("max_context") and d["sliding_window"] >= d["max_context"]:
        # a window at least as wide as the longest context limits nothing (Phi-3.5-mini / Phi-4-mini:
        # sliding_window 262,144 with 131,072 positions): every layer attends to the whole context
        del d["sliding_window"]
    return notes


def model_from_hf_config(path: str | Path) -> ModelSpec:
    """Read a Hugging Face config.json (as JSON data only)."""
    from workloads.schema import check_hf_fields
    from workloads.yamlsafe import load_json_path
    path = Path(path)
    cfg = load_json_path(path, "Hugging Face config.json")
    src = str(path)
    require(isinstance(cfg, dict), src, "", cfg, "a JSON object")
    quant = cfg.get("quantization_config")  # top level, also for a multimodal text_config
    outer, pre = cfg, ""
    notes = []
    if cfg.get("model_type") == "llama4":  # Llama4Config: a vision tower beside the text model
        notes += _llama4_wrapper(cfg, src)
    else:  # a multimodal checkpoint: its other towers would be dropped silently
        _refuse_towers(cfg, src, "absent: only the text decoder is modelled (the other tower's parameters, FLOPs "
                       "and bytes are not); to price the text model alone, save its text_config as a config.json "
                       "of its own")
    if "text_config" in cfg and "hidden_size" not in cfg:
        require(isinstance(cfg["text_config"], dict), src, "text_config", cfg["text_config"],
                "a JSON object holding the text model's fields")
        cfg, pre = cfg["text_config"], "text_config."
    problems = check_hf_fields(cfg, src, pre)
    if problems:
        raise InputError(problems[0] if len(problems) == 1 else
                         f"{src}: {len(problems)} problems:\n  " + "\n  ".join(problems))
    for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size"):
        require(key in cfg, src, pre + key, None, "present in a decoder-only transformer config")
    heads = cfg["num_attention_heads"]
    d: dict[str, Any] = {
        "name": _hf_name(cfg, outer, path),
        "hidden": cfg["hidden_size"], "layers": cfg["num_hidden_layers"], "heads": heads,
        "kv_heads": cfg.get("num_key_value_heads") or heads,
        "intermediate": cfg.get("intermediate_size") or 0, "vocab": cfg["vocab_size"],
        "qkv_bias": _qkv_bias(cfg, src, pre),
        "source": src,
    }
    cfg = _qwen3_moe_experts(cfg, src, pre)
    _hf_refuse(cfg, src, pre)
    if cfg.get("head_dim"):
        d["head_dim"] = cfg["head_dim"]
    if not cfg.get("kv_lora_rank"):  # MLA: one KV latent serves every head (kv_heads = heads below)
        kv = d["kv_heads"]
        require(heads % kv == 0, src, pre + "num_key_value_heads", kv,
                f"a divisor of heads (num_attention_heads {heads}): each KV head serves a whole group of query heads")
    d["rotary_fraction"] = _rotary_fraction(cfg, src, pre)
    notes += _hf_context(cfg, d, src, pre)
    _hf_extras(cfg, d)
    if pre:
        _wrapper_tie(cfg, outer, src, d)
    if quant is not None:
        _hf_quant(quant, cfg, outer, src, d)
    notes += _hf_moe_and_plan(cfg, d, src, pre)
    _check_dense_width(cfg, d, src, pre)
    stray = ignored_moe_keys(cfg)
    if stray:  # transformers' dense class ignores them: so does the count, said here rather than silently
        shown = ", ".join(f"{pre}{k} {cfg[k]!r}" for k in stray)
        notes.append(f"{src}: {shown} ignored: model_type {cfg.get('model_type')} is a dense architecture whose "
                     f"transformers class reads no expert keys; priced as the dense model")
    if quant is not None and quant.get("quant_method") == "mxfp4":
        from workloads.hf_quant import mxfp4_experts_only
        mxfp4_experts_only(d.get("moe"), d["layers"], src)
    if notes:
        d["import_notes"] = notes
    if cfg.get("kv_lora_rank"):
        d["mla"] = {k: cfg.get(k) for k in ("kv_lora_rank", "q_lora_rank", "qk_nope_head_dim",
                                            "qk_rope_head_dim", "v_head_dim")}
        d["kv_heads"] = heads
        d["head_dim"] = cfg.get("v_head_dim") or 0  # missing v_head_dim: refused by the mla table
    return _build(d, src)
