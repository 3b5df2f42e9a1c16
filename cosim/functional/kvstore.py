"""How a KV cache stores each token, one rule for the real-checkpoint forward pass
(cosim.functional.lm.decoder.kv_cache_view) and the synthetic KV twins
(cosim.functional.compression.kv.FormatKVPolicy, which `cosim run`'s attention figure
uses): `kv_quantizer` and which KV methods a KV number format composes with."""

from __future__ import annotations

import numpy as np

from workloads.formats import get_format

from .operand import HIGH_PRECISION, quantize_operand, row_amax

HALF_PRECISION = ("bf16", "fp16")  # 16-bit KV: stored as the model computes it


def narrow_kv_formats(key: str, value: str | None = None) -> list:
    """The KV formats (key, value) narrower than 16 bits: what a method with its own storage cannot take beside it."""
    return [f for f in dict.fromkeys((key, value or key)) if f not in HIGH_PRECISION + HALF_PRECISION]

__all__ = ["KV_FORMAT_COMPOSABLE", "kv_quantizer"]

# KV-cache methods that choose WHICH tokens a cache keeps and store each kept token as written: a KV number
# format (--kv, a kv_format part) then stores the kept tokens, as the priced trace stores them (fp8_kv+h2o).
# Every other KV method (KIVI, KVQuant, mixed precision, GEAR, low-rank projections) defines its own storage:
# a KV number format beside it is refused (KV_FORMAT_COMPOSABLE is the one rule, numerics and notes alike).
KV_FORMAT_COMPOSABLE = ("streaming_llm", "h2o", "snapkv", "rocketkv")


def kv_quantizer(fmt: str, prompt: np.ndarray, scale: str):
    """x -> x as stored in `fmt` (None: unquantized), scales calibrated on `prompt`."""
    if fmt in HIGH_PRECISION:
        return None
    from cosim.functional.scaled import amax_scale, needs_scale, scaled_quantize
    f = get_format(fmt)
    if f.family == "int":  # plain intN: quantize() would scale each call by its own amax, later tokens included;
        # a cache keeps the scale calibrated on the prompt (as a static fp8 KV scale is), values beyond it saturate.
        # The functional core's int quantizer with that scale: x/s in float64, rounded once (half to even)
        from cosim.functional import quantize
        from cosim.functional.quantize import tensor_scale
        if scale == "none":
            s = 1.0
        elif scale == "tensor":
            s = tensor_scale(row_amax(np.asarray(prompt).reshape(1, -1))[0], fmt)
        else:  # one per KV head (axis 1)
            s = tensor_scale(row_amax(np.moveaxis(np.asarray(prompt), 1, 0)), fmt).reshape(1, -1, 1)
        return lambda x: quantize(np.asarray(x, np.float32), fmt, tensor_scale=s)
    if not needs_scale(fmt):
        return lambda x: quantize_operand(x, fmt)
    if scale == "none":
        return lambda x: scaled_quantize(x, fmt, "none")[0]
    if scale == "tensor":
        s = amax_scale(prompt, fmt, "tensor")
        return lambda x: scaled_quantize(x, fmt, "tensor", scales=s)[0]
    s = amax_scale(prompt, fmt, "head", 1)
    return lambda x: scaled_quantize(x, fmt, "head", head_axis=1, scales=s)[0]
