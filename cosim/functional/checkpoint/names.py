"""One canonical tensor layout for every checkpoint format, and the shapes a config
implies, so a missing, misnamed or misshapen tensor is caught at load time by name.

Decoder (Llama family): embed, lm_head (absent when tied), final_norm and per layer
attn_norm, q, k, v, o (+ q_bias/k_bias/v_bias), mlp_norm, mlp_gate, mlp_up, mlp_down, or
for MoE router + experts_gate/experts_up/experts_down stacked over experts.
Encoder (BERT): embed, pos_embed, type_embed, embed_norm(_b) and per layer q, k, v, o
with biases, attn_norm(_b), mlp_up(_b), mlp_down(_b), mlp_norm(_b).
Weights are stored as [out, in], the reduction (input) dimension last.
"""

from __future__ import annotations

import re

from .config import LMConfig

__all__ = ["expected_shapes", "hf_to_canonical", "gguf_to_canonical"]

_HF_DECODER = {
    "input_layernorm.weight": "attn_norm", "self_attn.q_proj.weight": "q", "self_attn.k_proj.weight": "k",
    "self_attn.v_proj.weight": "v", "self_attn.o_proj.weight": "o", "self_attn.q_proj.bias": "q_bias",
    "self_attn.k_proj.bias": "k_bias", "self_attn.v_proj.bias": "v_bias",
    "post_attention_layernorm.weight": "mlp_norm", "mlp.gate_proj.weight": "mlp_gate",
    "mlp.up_proj.weight": "mlp_up", "mlp.down_proj.weight": "mlp_down", "block_sparse_moe.gate.weight": "router",
}
_HF_EXPERT = {"w1": "experts_gate", "w3": "experts_up", "w2": "experts_down"}
_HF_BERT = {
    "attention.self.query.weight": "q", "attention.self.query.bias": "q_bias",
    "attention.self.key.weight": "k", "attention.self.key.bias": "k_bias",
    "attention.self.value.weight": "v", "attention.self.value.bias": "v_bias",
    "attention.output.dense.weight": "o", "attention.output.dense.bias": "o_bias",
    "attention.output.LayerNorm.weight": "attn_norm", "attention.output.LayerNorm.bias": "attn_norm_b",
    "intermediate.dense.weight": "mlp_up", "intermediate.dense.bias": "mlp_up_b",
    "output.dense.weight": "mlp_down", "output.dense.bias": "mlp_down_b",
    "output.LayerNorm.weight": "mlp_norm", "output.LayerNorm.bias": "mlp_norm_b",
}
_HF_TOP = {"model.embed_tokens.weight": "embed", "lm_head.weight": "lm_head", "model.norm.weight": "final_norm",
           "embeddings.word_embeddings.weight": "embed", "embeddings.position_embeddings.weight": "pos_embed",
           "embeddings.token_type_embeddings.weight": "type_embed", "embeddings.LayerNorm.weight": "embed_norm",
           "embeddings.LayerNorm.bias": "embed_norm_b"}
_GGUF_LAYER = {"attn_norm": "attn_norm", "attn_q": "q", "attn_k": "k", "attn_v": "v", "attn_output": "o",
               "attn_q.bias": "q_bias", "attn_k.bias": "k_bias", "attn_v.bias": "v_bias", "ffn_norm": "mlp_norm",
               "ffn_gate": "mlp_gate", "ffn_up": "mlp_up", "ffn_down": "mlp_down", "ffn_gate_inp": "router",
               "ffn_gate_exps": "experts_gate", "ffn_up_exps": "experts_up", "ffn_down_exps": "experts_down"}
_GGUF_TOP = {"token_embd": "embed", "output": "lm_head", "output_norm": "final_norm"}


def hf_to_canonical(name: str) -> tuple[str, int | None] | None:
    """HF name -> (canonical name, expert index or None); None when not a known tensor."""
    for prefix in ("bert.", "0.auto_model.", "model.bert."):
        if name.startswith(prefix):
            name = name[len(prefix):]
    if name in _HF_TOP:
        return _HF_TOP[name], None
    m = re.fullmatch(r"(?:model\.layers|encoder\.layer)\.(\d+)\.(.+)", name)
    if not m:
        return None
    i, rest = int(m.group(1)), m.group(2)
    e = re.fullmatch(r"block_sparse_moe\.experts\.(\d+)\.(w[123])\.weight", rest)
    if e:
        return f"layers.{i}.{_HF_EXPERT[e.group(2)]}", int(e.group(1))
    canon = _HF_DECODER.get(rest) if name.startswith("model.") else _HF_BERT.get(rest)
    return (f"layers.{i}.{canon}", None) if canon else None


def gguf_to_canonical(name: str) -> str | None:
    base = name[:-len(".weight")] if name.endswith(".weight") else name
    if base in _GGUF_TOP:
        return _GGUF_TOP[base]
    m = re.fullmatch(r"blk\.(\d+)\.(.+)", base)
    if m and m.group(2) in _GGUF_LAYER:
        return f"layers.{m.group(1)}.{_GGUF_LAYER[m.group(2)]}"
    return None


def expected_shapes(c: LMConfig, present: set[str]) -> dict[str, tuple]:
    """Canonical name -> shape every checkpoint of this config must hold."""
    h, q_out, kv_out, f = c.hidden, c.heads * c.head_dim, c.kv_heads * c.head_dim, c.intermediate
    if c.arch == "bert":
        out = {"embed": (c.vocab, h), "pos_embed": (c.max_positions, h), "embed_norm": (h,), "embed_norm_b": (h,)}
        if c.type_vocab:
            out["type_embed"] = (c.type_vocab, h)
        for i in range(c.layers):
            p = f"layers.{i}."
            out.update({p + "q": (h, h), p + "q_bias": (h,), p + "k": (h, h), p + "k_bias": (h,), p + "v": (h, h),
                        p + "v_bias": (h,), p + "o": (h, h), p + "o_bias": (h,), p + "attn_norm": (h,),
                        p + "attn_norm_b": (h,), p + "mlp_up": (f, h), p + "mlp_up_b": (f,), p + "mlp_down": (h, f),
                        p + "mlp_down_b": (h,), p + "mlp_norm": (h,), p + "mlp_norm_b": (h,)})
        return out
    out = {"embed": (c.vocab, h), "final_norm": (h,)}
    if not c.tied_embeddings:
        out["lm_head"] = (c.vocab, h)
    for i in range(c.layers):
        p = f"layers.{i}."
        out.update({p + "attn_norm": (h,), p + "q": (q_out, h), p + "k": (kv_out, h), p + "v": (kv_out, h),
                    p + "o": (h, q_out), p + "mlp_norm": (h,)})
        if c.qkv_bias:
            out.update({p + "q_bias": (q_out,), p + "k_bias": (kv_out,), p + "v_bias": (kv_out,)})
        if c.experts:
            out.update({p + "router": (c.experts, h), p + "experts_gate": (c.experts, f, h),
                        p + "experts_up": (c.experts, f, h), p + "experts_down": (c.experts, h, f)})
        else:
            out.update({p + "mlp_gate": (f, h), p + "mlp_up": (f, h), p + "mlp_down": (h, f)})
    return out
