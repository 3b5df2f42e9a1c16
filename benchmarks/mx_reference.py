"""The peer side of benchmarks/real_forward_speed.py: SmolLM2 in Hugging Face transformers
(torch CPU, float32, the same Q4_1 GGUF dequantized) with every decoder GEMM emulated by
Microsoft's MX library (microxcaling, pure-PyTorch path, custom_cuda=False).

What it quantizes, matching cosim's DecoderLM with Numerics(weights=W, acts=A):
- each q/k/v/o/gate/up/down projection: `mx.Linear` quantizes the input along in_features
  (a_elem_format) and the weight along in_features (w_elem_format), 32-element blocks,
  8-bit shared exponent, then a float32 GEMM;
- attention: Q·Kᵀ through `mx.matmul` (Q along head_dim, Kᵀ along head_dim) and P·V
  (P along keys, V along tokens), both operands in a_elem_format, softmax in float32;
- embeddings, RMSNorm, RoPE, SiLU, softmax and the (tied) LM head stay float32, as
  cosim keeps them unless quantize_head is asked.

microxcaling is not vendored: pass its checkout's path (a folder holding `mx/`).
"""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["MX_ELEM", "import_mx", "load_hf_model", "MXSwap"]

# cosim format name -> microxcaling elem_format (MX v1.0 element types it implements);
# the shared-microexponent formats (mx4/mx6/mx9) and NVFP4 have no microxcaling twin.
MX_ELEM = {"mxfp4": "fp4_e2m1", "mxfp8_e4m3": "fp8_e4m3", "mxfp8_e5m2": "fp8_e5m2",
           "mxfp6_e3m2": "fp6_e3m2", "mxfp6_e2m3": "fp6_e2m3", "mxint8": "int8", "mxint4": "int4"}


def import_mx(path: str | None):
    """-> (mx module, None) or (None, why not)."""
    if not path:
        return None, "no microxcaling path given (--microxcaling DIR or MICROXCALING_PATH)"
    p = Path(path)
    if not (p / "mx" / "__init__.py").is_file():
        return None, f"{p}: no mx/__init__.py there (expected a microxcaling checkout)"
    sys.path.insert(0, str(p))
    try:
        import mx  # noqa: PLC0415 - imported from the given checkout at run time
    except Exception as e:  # torch missing, API drift: say so, keep our side running
        return None, f"import mx from {p} failed: {type(e).__name__}: {e}"
    return mx, None


def load_hf_model(gguf_path: Path):
    """transformers' own GGUF loader (dequantizes Q4_1, un-permutes Q/K), float32, eval."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32)
    return tok, model.eval()


def _specs(mx, w_elem: str | None, a_elem: str):
    return mx.finalize_mx_specs({"w_elem_format": w_elem, "a_elem_format": a_elem, "block_size": 32,
                                 "scale_bits": 8, "custom_cuda": False, "quantize_backprop": False})


def _mx_attention(mx, specs):
    """transformers attention interface: eager attention with both BMMs through mx.matmul.
    A single unpadded sequence, so the causal mask is built here (the one passed in is
    ignored: its shape depends on the attention implementation's name)."""
    import torch

    def attn(module, query, key, value, attention_mask, scaling, dropout=0.0, **kwargs):
        g = module.num_key_value_groups
        k = key.repeat_interleave(g, dim=1)
        v = value.repeat_interleave(g, dim=1)
        s = mx.matmul(query, k.transpose(2, 3), mx_specs=specs) * scaling
        n = s.shape[-1]
        s = s + torch.full((n, n), float("-inf")).triu(1)
        p = torch.softmax(s, dim=-1, dtype=torch.float32)
        o = mx.matmul(p, v, mx_specs=specs)
        return o.transpose(1, 2).contiguous(), None
    return attn


class MXSwap:
    """Swap the decoder layers' nn.Linear modules for mx.Linear and route attention
    through mx.matmul; `restore()` puts the float32 model back.
    prequantize=True quantizes each weight once here and lets mx.Linear skip its
    per-call weight quantization (w_elem_format=None): the same work as cosim, which
    stores quantized weights at construction. prequantize=False is the library's stock
    path (weights re-quantized inside every forward)."""

    NAME = "cosim_mx_eager"

    def __init__(self, mx, model, weights: str, acts: str, prequantize: bool = True):
        import torch
        from transformers import AttentionInterface
        self.model, self.saved = model, {}
        w_elem, a_elem = MX_ELEM[weights], MX_ELEM[acts]
        specs = _specs(mx, None if prequantize else w_elem, a_elem)
        wspecs = _specs(mx, w_elem, a_elem)
        for name, mod in list(model.model.layers.named_modules()):
            if type(mod) is not torch.nn.Linear:
                continue
            new = mx.Linear(mod.in_features, mod.out_features, bias=mod.bias is not None, mx_specs=specs, name=name)
            with torch.no_grad():
                w = mod.weight.data
                if prequantize:
                    from mx.mx_ops import quantize_mx_op
                    w = quantize_mx_op(w, wspecs, elem_format=w_elem, axes=[-1], round=wspecs["round_mx_output"])
                new.weight.data = w
                if mod.bias is not None:
                    new.bias.data = mod.bias.data
            self.saved[name] = mod
            self._set(name, new)
        AttentionInterface.register(self.NAME, _mx_attention(mx, specs))
        self.attn_before = model.config._attn_implementation
        model.config._attn_implementation = self.NAME

    def _set(self, name: str, mod) -> None:
        parent, _, leaf = name.rpartition(".")
        setattr(self.model.model.layers.get_submodule(parent) if parent else self.model.model.layers, leaf, mod)

    def restore(self) -> None:
        for name, mod in self.saved.items():
            self._set(name, mod)
        self.model.config._attn_implementation = self.attn_before
