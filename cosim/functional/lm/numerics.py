"""`Numerics`: how every operand of the forward pass is stored, from CLI-style options
and a compression recipe (weights=mxfp4, acts=mxfp8_e4m3, kv=kivi2 ...).

Weights and activations of a GEMM are quantized along the reduction dimension (the
last axis of x and of W stored [out, in]), as OCP MX dot-product units and BFP/INT
group kernels block them. Narrow floats without block scales (fp8/fp6/fp4) carry one
fp32 scale per tensor (weights: amax/max_normal; activations: dynamic, per call), as
FP8 serving kernels do.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from workloads.formats import get_format

__all__ = ["Numerics", "HIGH_PRECISION"]

HIGH_PRECISION = ("fp32", "baseline")  # no quantization at all
WEIGHT_TRANSFORMS = ("spqr", "ocs")


@dataclass(frozen=True)
class Numerics:
    weights: str = "fp32"
    acts: str = "fp32"
    kv: str = "fp32"  # a plain KV-cache number format
    kv_recipe: object = None  # a workloads Recipe whose twin is a KV cache policy
    weight_recipe: object = None  # spqr / ocs parts applied to every weight matrix
    exact: bool = False  # exact MX dot products (integer block products) instead of dequantize+BLAS
    quantize_head: bool = False  # the LM head / embeddings stay in baseline precision unless asked
    attention_acts: bool = True  # Q·Kᵀ and P·V operands follow `acts` too
    notes: tuple = field(default_factory=tuple)
    kv_policy: object = None  # a zero-argument factory of a cache policy (ablations the recipes lack)
    structure: tuple = ()  # recipe parts that rebuild weights: low-rank K/V (palu, mla), MoE (structural.py)

    @staticmethod
    def from_options(weights="fp32", acts="fp32", kv="fp32", recipe=None, exact=False, quantize_head=False,
                     attention_acts=True) -> "Numerics":
        from workloads.compression import load_recipe
        from cosim.functional.compression.twin import KV_METHODS
        from .structural import LOW_RANK_METHODS, MOE_METHODS

        for what, f in (("weights", weights), ("acts", acts), ("kv", kv)):
            if f not in HIGH_PRECISION:
                get_format(f)  # unknown names fail here with the registry's message
        kv_recipe = weight_recipe = None
        notes, unsupported, structure = [], [], []
        if recipe:
            r = load_recipe(recipe)
            for part in (r.parts or (r,)):
                m = part.method
                if m == "weight_format":
                    weights = part.params.get("format") or weights
                    notes.append(f"weights from recipe {part.name}: {weights}")
                elif m == "kv_format":
                    kv = part.params.get("key_format") or part.params.get("format") or kv
                    notes.append(f"kv from recipe {part.name}: {kv}")
                elif m in WEIGHT_TRANSFORMS:
                    weight_recipe = part
                elif m in LOW_RANK_METHODS or m in MOE_METHODS:
                    structure.append(part)
                elif m in KV_METHODS:
                    if kv_recipe is not None:
                        raise ValueError(f"recipe {recipe!r}: two KV-cache methods ({kv_recipe.name}, {part.name}); "
                                         f"the real-checkpoint forward pass runs one at a time")
                    kv_recipe = part
                else:  # cross-layer and head-selection methods are synthetic-only
                    unsupported.append(part.name)
        if unsupported:
            from workloads.io import InputError
            raise InputError(f"recipe {recipe!r}: part(s) {', '.join(unsupported)} have no real-checkpoint twin "
                             f"(cross-layer and head-selection methods are synthetic-only)")
        return Numerics(weights, acts, kv, kv_recipe, weight_recipe, exact, quantize_head, attention_acts,
                        tuple(notes), structure=tuple(structure))

    @property
    def is_baseline(self) -> bool:
        return (self.weights in HIGH_PRECISION and self.acts in HIGH_PRECISION and self.kv in HIGH_PRECISION
                and self.kv_recipe is None and self.weight_recipe is None and self.kv_policy is None
                and not self.structure)

    def describe(self) -> str:
        parts = [f"weights={self.weights}", f"acts={self.acts}", f"kv={self.kv}"]
        if self.kv_recipe is not None:
            parts.append(f"kv_recipe={self.kv_recipe.name}")
        if self.kv_policy is not None:
            parts.append(f"kv_policy={getattr(self.kv_policy, '__name__', 'custom')}")
        if self.weight_recipe is not None:
            parts.append(f"weight_recipe={self.weight_recipe.name}")
        parts += [f"structure={r.name}" for r in self.structure]
        if self.exact:
            parts.append("exact MX dot products")
        return ", ".join(parts)

    # -- operand quantizers -------------------------------------------------------------
    def weight(self, w: np.ndarray) -> np.ndarray:
        """W [out, in] as stored by this recipe, dequantized to float32."""
        if self.weight_recipe is not None:
            from cosim.functional.compression import weights as W
            p = dict(self.weight_recipe.params)
            if self.weight_recipe.method == "spqr":
                return np.ascontiguousarray(W.spqr_quantize(w.T, **p).T)
            eff, _ = W.ocs_quantize(w.T, **p)
            return np.ascontiguousarray(eff.T)
        return quantize_operand(w, self.weights)

    def act(self, x: np.ndarray, axis: int = -1) -> np.ndarray:
        return quantize_operand(x, self.acts, axis)

    def attn_operand(self, x: np.ndarray, axis: int = -1) -> np.ndarray:
        return quantize_operand(x, self.acts, axis) if self.attention_acts else x


def quantize_operand(x: np.ndarray, fmt: str, axis: int = -1) -> np.ndarray:
    if fmt in HIGH_PRECISION:
        return x
    from cosim.functional.compression.quant import register_format_quant
    f = get_format(fmt)
    n = x.shape[axis]
    if f.family == "int_group" and n % f.block_size:
        # a reduction length that is not a whole number of groups (SmolLM2: 576 = 4.5 x 128)
        # ends in a short group, as group-quant kernels do by padding with zeros
        pad = [(0, 0)] * x.ndim
        pad[axis] = (0, (-n) % f.block_size)
        y = register_format_quant(np.pad(np.asarray(x, np.float32), pad), fmt, axis=axis)
        return np.take(y, np.arange(n), axis=axis)
    return register_format_quant(np.ascontiguousarray(x, dtype=np.float32), fmt, axis=axis)
