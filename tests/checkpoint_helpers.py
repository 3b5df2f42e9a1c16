"""Tiny checkpoints written on the fly (GGUF through gguf.GGUFWriter, safetensors through
safetensors.numpy), for loader tests that need no installed asset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

TINY = dict(vocab=64, hidden=64, layers=2, heads=4, kv_heads=2, ff=96)


def tiny_weights(seed=0, **over) -> dict[str, np.ndarray]:
    """Canonical-name float32 weights of a tiny Llama (untied head)."""
    c = {**TINY, **over}
    rng = np.random.default_rng(seed)
    h, hd = c["hidden"], c["hidden"] // c["heads"]
    w = {"embed": rng.standard_normal((c["vocab"], h)), "lm_head": rng.standard_normal((c["vocab"], h)) / 8,
         "final_norm": 1 + 0.1 * rng.standard_normal(h)}
    for i in range(c["layers"]):
        p = f"layers.{i}."
        w.update({p + "attn_norm": 1 + 0.1 * rng.standard_normal(h), p + "mlp_norm": 1 + 0.1 * rng.standard_normal(h),
                  p + "q": rng.standard_normal((c["heads"] * hd, h)) / 8,
                  p + "k": rng.standard_normal((c["kv_heads"] * hd, h)) / 8,
                  p + "v": rng.standard_normal((c["kv_heads"] * hd, h)) / 8,
                  p + "o": rng.standard_normal((h, c["heads"] * hd)) / 8,
                  p + "mlp_gate": rng.standard_normal((c["ff"], h)) / 8,
                  p + "mlp_up": rng.standard_normal((c["ff"], h)) / 8,
                  p + "mlp_down": rng.standard_normal((h, c["ff"])) / 8})
    return {k: v.astype(np.float32) for k, v in w.items()}


_GGUF_NAMES = {"embed": "token_embd.weight", "lm_head": "output.weight", "final_norm": "output_norm.weight",
               "attn_norm": "attn_norm.weight", "q": "attn_q.weight", "k": "attn_k.weight", "v": "attn_v.weight",
               "o": "attn_output.weight", "mlp_norm": "ffn_norm.weight", "mlp_gate": "ffn_gate.weight",
               "mlp_up": "ffn_up.weight", "mlp_down": "ffn_down.weight"}
_HF_NAMES = {"embed": "model.embed_tokens.weight", "lm_head": "lm_head.weight", "final_norm": "model.norm.weight",
             "attn_norm": "input_layernorm.weight", "q": "self_attn.q_proj.weight", "k": "self_attn.k_proj.weight",
             "v": "self_attn.v_proj.weight", "o": "self_attn.o_proj.weight",
             "mlp_norm": "post_attention_layernorm.weight", "mlp_gate": "mlp.gate_proj.weight",
             "mlp_up": "mlp.up_proj.weight", "mlp_down": "mlp.down_proj.weight"}


def permute_rope_rows(w: np.ndarray, n_heads: int) -> np.ndarray:
    """What llama.cpp's converter does to Q/K rows (the inverse of the loader's un-permute)."""
    return w.reshape(n_heads, 2, w.shape[0] // n_heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_tiny_gguf(path: Path, weights: dict, qtype: str = "F32", arch: str = "llama", drop: str | None = None,
                    **over) -> Path:
    import gguf
    c = {**TINY, **over}
    wr = gguf.GGUFWriter(str(path), arch)
    wr.add_block_count(c["layers"])
    wr.add_context_length(256)
    wr.add_embedding_length(c["hidden"])
    wr.add_feed_forward_length(c["ff"])
    wr.add_head_count(c["heads"])
    wr.add_head_count_kv(c["kv_heads"])
    wr.add_rope_freq_base(10000.0)
    wr.add_layer_norm_rms_eps(1e-5)
    wr.add_vocab_size(c["vocab"])
    wr.add_tokenizer_model("gpt2")
    wr.add_token_list(["t", "1", "t1"] + [f"w{i}" for i in range(c["vocab"] - 3)])
    wr.add_token_merges(["t 1"])
    kind = getattr(gguf.GGMLQuantizationType, qtype)
    for name, a in weights.items():
        if name == drop:
            continue
        base = name.split(".")[-1]
        gname = _GGUF_NAMES[base] if name.count(".") == 0 else f"blk.{name.split('.')[1]}.{_GGUF_NAMES[base]}"
        if base in ("q", "k"):
            a = permute_rope_rows(a, c["heads"] if base == "q" else c["kv_heads"])
        if a.ndim == 2 and qtype not in ("F32",):
            if qtype == "F16":
                wr.add_tensor(gname, a.astype(np.float16))
            else:
                wr.add_tensor(gname, gguf.quants.quantize(a, kind), raw_dtype=kind)
        else:
            wr.add_tensor(gname, a.astype(np.float32))
    wr.write_header_to_file()
    wr.write_kv_data_to_file()
    wr.write_tensors_to_file()
    wr.close()
    return path


def hf_config(**over) -> dict:
    c = {**TINY, **over}
    return {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": c["vocab"],
            "hidden_size": c["hidden"], "num_hidden_layers": c["layers"], "num_attention_heads": c["heads"],
            "num_key_value_heads": c["kv_heads"], "intermediate_size": c["ff"], "rms_norm_eps": 1e-5,
            "max_position_embeddings": 256, "rope_theta": 10000.0, "tie_word_embeddings": False,
            "hidden_act": "silu"}


def write_tiny_safetensors(folder: Path, weights: dict, config: dict | None = None, dtype=np.float32) -> Path:
    import safetensors.numpy
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, a in weights.items():
        base = name.split(".")[-1]
        hname = _HF_NAMES[base] if name.count(".") == 0 else f"model.layers.{name.split('.')[1]}.{_HF_NAMES[base]}"
        out[hname] = a.astype(dtype)
    safetensors.numpy.save_file(out, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(config or hf_config()))
    return folder


def write_tiny_mixtral(folder: Path, experts: int = 4, top_k: int = 2, seed: int = 1) -> tuple[Path, dict]:
    """A tiny Mixtral-layout safetensors checkpoint (HF names, block_sparse_moe experts)
    -> (folder, the HF-named tensors written)."""
    import safetensors.numpy
    rng = np.random.default_rng(seed)
    w = tiny_weights(seed)
    h, ff = TINY["hidden"], TINY["ff"]
    out = {}
    for n, a in w.items():
        base = n.split(".")[-1]
        if base.startswith("mlp_") and base != "mlp_norm":
            continue
        out[_HF_NAMES[base] if n.count(".") == 0 else f"model.layers.{n.split('.')[1]}.{_HF_NAMES[base]}"] = a
    for i in range(TINY["layers"]):
        out[f"model.layers.{i}.block_sparse_moe.gate.weight"] = rng.standard_normal((experts, h)).astype(np.float32)
        for e in range(experts):
            for wn, shape in (("w1", (ff, h)), ("w3", (ff, h)), ("w2", (h, ff))):
                out[f"model.layers.{i}.block_sparse_moe.experts.{e}.{wn}.weight"] = \
                    (rng.standard_normal(shape) / 8).astype(np.float32)
    folder.mkdir(parents=True, exist_ok=True)
    safetensors.numpy.save_file(out, str(folder / "model.safetensors"))
    cfg = hf_config()
    cfg.update(architectures=["MixtralForCausalLM"], model_type="mixtral", num_local_experts=experts,
               num_experts_per_tok=top_k)
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder, out
