"""Whole-model forward passes on real checkpoints, every GEMM operand, the KV cache and
attention going through the functional core's quantizers as a recipe says.

    ck = load_checkpoint("smollm2_135m")
    num = Numerics.from_options(weights="mxfp4", acts="mxfp8_e4m3", kv="bf16", recipe="kivi2")
    out = DecoderLM(ck, num).forward(ids, prefill=512)      # logits for positions >= prefill

Decoders: Llama / Mistral / Qwen2 / SmolLM / Mixtral-style MoE (GQA, RoPE, RMSNorm,
SwiGLU, tied embeddings). Encoders: BERT (post-norm, GELU, learned positions).
"""

from .decoder import DecoderLM, ForwardResult, PassState
from .encoder import EncoderLM
from .numerics import Numerics

__all__ = ["DecoderLM", "EncoderLM", "ForwardResult", "Numerics", "PassState"]
