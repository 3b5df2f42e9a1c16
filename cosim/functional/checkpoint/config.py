"""`LMConfig`: what the forward pass needs to know about a checkpoint's architecture,
read from a Hugging Face config.json or from GGUF metadata. Fields that would change
the computation and that the forward pass does not implement are refused by name."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import CheckpointError

__all__ = ["LMConfig", "config_from_hf", "config_from_gguf"]

DECODER_ARCHS = {"LlamaForCausalLM": "llama", "MistralForCausalLM": "llama", "Qwen2ForCausalLM": "llama",
                 "MixtralForCausalLM": "llama"}
ENCODER_ARCHS = {"BertModel": "bert", "BertForMaskedLM": "bert"}
SUPPORTED_ACTS = {"silu", "gelu", "gelu_new", "gelu_pytorch_tanh"}


@dataclass(frozen=True)
class LMConfig:
    arch: str  # "llama" (decoder: Llama/Mistral/Qwen2/SmolLM/Mixtral) | "bert" (encoder)
    vocab: int
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    max_positions: int
    norm_eps: float
    act: str = "silu"
    rope_theta: float = 10000.0
    tied_embeddings: bool = False
    qkv_bias: bool = False
    experts: int = 0  # MoE (Mixtral-style): routed experts per layer, 0 = dense
    experts_per_token: int = 0
    type_vocab: int = 0  # BERT token types
    name: str = ""

    @property
    def is_decoder(self) -> bool:
        return self.arch == "llama"

    @property
    def group(self) -> int:
        return self.heads // self.kv_heads


def _need(cfg: dict, key: str, source: str, kind=int):
    if key not in cfg:
        raise CheckpointError(f"{source}: config field {key!r} is missing")
    v = cfg[key]
    if kind is int and (isinstance(v, bool) or not isinstance(v, int) or v <= 0):
        raise CheckpointError(f"{source}: config field {key!r}: got {v!r}; expected a positive integer")
    if kind is float and (isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0):
        raise CheckpointError(f"{source}: config field {key!r}: got {v!r}; expected a positive number")
    return v


def _check_heads(c: LMConfig, source: str) -> LMConfig:
    if c.heads % c.kv_heads:
        raise CheckpointError(f"{source}: num_key_value_heads={c.kv_heads} does not divide "
                              f"num_attention_heads={c.heads}")
    if c.is_decoder and c.head_dim % 2:
        raise CheckpointError(f"{source}: head_dim={c.head_dim} is odd; rotary embeddings need an even head_dim")
    return c


def config_from_hf(cfg: dict, source: str) -> LMConfig:
    archs = cfg.get("architectures") or []
    arch = next((DECODER_ARCHS.get(a) or ENCODER_ARCHS.get(a) for a in archs
                 if a in DECODER_ARCHS or a in ENCODER_ARCHS), None)
    if arch is None and cfg.get("model_type") in ("llama", "mistral", "qwen2", "mixtral"):
        arch = "llama"
    if arch is None and cfg.get("model_type") == "bert":
        arch = "bert"
    if arch is None:
        raise CheckpointError(f"{source}: architecture {archs or cfg.get('model_type')!r} is not supported by the "
                              f"functional forward pass; expected one of {sorted(DECODER_ARCHS | ENCODER_ARCHS)}")
    hidden = _need(cfg, "hidden_size", source)
    heads = _need(cfg, "num_attention_heads", source)
    if hidden % heads:
        raise CheckpointError(f"{source}: hidden_size={hidden} is not divisible by num_attention_heads={heads}")
    act = cfg.get("hidden_act", "silu" if arch == "llama" else "gelu")
    if act not in SUPPORTED_ACTS:
        raise CheckpointError(f"{source}: hidden_act={act!r} is not supported; expected one of {sorted(SUPPORTED_ACTS)}")
    if arch == "llama":
        for key in ("rope_scaling", "sliding_window"):
            val = cfg.get(key)
            if val and not (key == "sliding_window" and not cfg.get("use_sliding_window", True)):
                if key == "sliding_window" and val >= cfg.get("max_position_embeddings", 0):
                    continue  # a window as long as the context changes nothing
                raise CheckpointError(f"{source}: {key}={val!r} is not implemented by the functional forward pass")
        c = LMConfig(arch="llama", vocab=_need(cfg, "vocab_size", source), hidden=hidden,
                     layers=_need(cfg, "num_hidden_layers", source), heads=heads,
                     kv_heads=cfg.get("num_key_value_heads") or heads,
                     head_dim=cfg.get("head_dim") or hidden // heads,
                     intermediate=_need(cfg, "intermediate_size", source),
                     max_positions=cfg.get("max_position_embeddings", 2048),
                     norm_eps=float(_need(cfg, "rms_norm_eps", source, float)), act=act,
                     rope_theta=float(cfg.get("rope_theta", 10000.0)),
                     tied_embeddings=bool(cfg.get("tie_word_embeddings", False)),
                     qkv_bias=cfg.get("model_type") == "qwen2" or bool(cfg.get("attention_bias", False)),
                     experts=int(cfg.get("num_local_experts", 0) or 0),
                     experts_per_token=int(cfg.get("num_experts_per_tok", 0) or 0),
                     name=cfg.get("_name_or_path", ""))
        return _check_heads(c, source)
    c = LMConfig(arch="bert", vocab=_need(cfg, "vocab_size", source), hidden=hidden,
                 layers=_need(cfg, "num_hidden_layers", source), heads=heads, kv_heads=heads,
                 head_dim=hidden // heads, intermediate=_need(cfg, "intermediate_size", source),
                 max_positions=_need(cfg, "max_position_embeddings", source),
                 norm_eps=float(cfg.get("layer_norm_eps", 1e-12)), act=act, type_vocab=int(cfg.get("type_vocab_size", 0)),
                 name=cfg.get("_name_or_path", ""))
    return _check_heads(c, source)


def config_from_gguf(fields: dict, source: str) -> LMConfig:
    arch = fields.get("general.architecture")
    if arch != "llama":
        raise CheckpointError(f"{source}: GGUF general.architecture={arch!r} is not supported by the functional "
                              f"forward pass; expected 'llama' (Llama/Mistral/SmolLM layout)")

    def f(key, kind=int, default=None):
        v = fields.get(f"llama.{key}", default)
        if v is None:
            raise CheckpointError(f"{source}: GGUF metadata llama.{key} is missing")
        return kind(v)

    hidden, heads = f("embedding_length"), f("attention.head_count")
    vocab = f("vocab_size", int, len(fields.get("tokenizer.ggml.tokens", [])) or None)
    if f("rope.dimension_count", int, hidden // heads) != hidden // heads:
        raise CheckpointError(f"{source}: partial rotary embeddings (llama.rope.dimension_count) are not implemented")
    if fields.get("llama.rope.scaling.type") not in (None, "none"):
        raise CheckpointError(f"{source}: llama.rope.scaling.type={fields['llama.rope.scaling.type']!r} is not implemented")
    c = LMConfig(arch="llama", vocab=vocab, hidden=hidden, layers=f("block_count"), heads=heads,
                 kv_heads=f("attention.head_count_kv", int, heads), head_dim=hidden // heads,
                 intermediate=f("feed_forward_length"), max_positions=f("context_length", int, 2048),
                 norm_eps=f("attention.layer_norm_rms_epsilon", float), act="silu",
                 rope_theta=f("rope.freq_base", float, 10000.0), tied_embeddings=False,
                 experts=f("expert_count", int, 0), experts_per_token=f("expert_used_count", int, 0),
                 name=str(fields.get("general.name", "")))
    return _check_heads(c, source)
