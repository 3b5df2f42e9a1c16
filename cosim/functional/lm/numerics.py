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

from cosim.functional.kvstore import HALF_PRECISION, KV_FORMAT_COMPOSABLE, narrow_kv_formats
from cosim.functional.operand import HIGH_PRECISION, quantize_operand, row_amax
from workloads.formats import get_format

__all__ = ["Numerics", "HIGH_PRECISION", "CallScaled"]

# HIGH_PRECISION, row_amax, quantize_operand live in cosim.functional.operand and KV_FORMAT_COMPOSABLE (which KV
# methods a KV number format composes with: the one rule, numerics, notes and the synthetic KV twins alike) in
# cosim.functional.kvstore, below both this module and the compression twins, so the twins share the real path's
# KV quantizer (kvstore.kv_quantizer) without an import cycle; imported here under their old names.
# beside a method with its own storage, a 16-bit KV format is the format of that method's full-precision parts
# (KIVI's residual window, GEAR's buffer, outliers), as pricing stores them: accepted with a note, never refused
WEIGHT_TRANSFORMS = ("spqr", "ocs")
INDEPENDENT_BLOCKS = ("mx", "bfp", "microexp", "int_group")  # no scale shared beyond one block


@dataclass(frozen=True)
class Numerics:
    weights: str = "fp32"
    acts: str = "fp32"
    kv: str = "fp32"  # a plain KV-cache number format: the keys' (and the values' unless kv_value is set)
    kv_recipe: object = None  # a workloads Recipe whose twin is a KV cache policy
    weight_recipe: object = None  # spqr / ocs parts applied to every weight matrix
    exact: bool = False  # exact MX dot products (integer block products) instead of dequantize+BLAS
    quantize_head: bool = False  # the LM head / embeddings stay in baseline precision unless asked
    # the embedding table too, whatever the checkpoint ties (--quantize-head, a trace's `weights:`, which
    # stores both tables in that format); a recipe's include_lm_head quantizes the head only (a tied
    # checkpoint's one stored tensor then serves the lookup too)
    quantize_embed: bool = False
    attention_acts: bool = True  # Q·Kᵀ and P·V operands follow `acts` too
    notes: tuple = field(default_factory=tuple)
    kv_policy: object = None  # a zero-argument factory of a cache policy (ablations the recipes lack)
    structure: tuple = ()  # recipe parts that rebuild weights: low-rank K/V (palu, mla), MoE (structural.py)
    kv_value: str | None = None  # the values' KV format when it differs from the keys' (kv_format value_format)
    kv_scale: str = "head"  # fp32 scales of a bare FP8/FP6/FP4 cache: "head", "tensor" or "none" (kv_format scale)
    kv_channel_sort: bool = False  # K channels sorted by magnitude before block quantization (kv_format channel_sort)

    @property
    def kv_values(self) -> str:
        return self.kv_value or self.kv

    @property
    def kv_label(self) -> str:
        """`fp8_e4m3`, or `K bfp12_b32 / V bf16` when keys and values differ."""
        return self.kv if self.kv_values == self.kv else f"K {self.kv} / V {self.kv_values}"

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
        kv_value, kv_scale, kv_sort = None, "head", False
        notes, unsupported, structure = [], [], []
        acts_given = acts
        quantize_embed = quantize_head  # asked by the caller: both tables, as a trace with `weights:` stores them
        if recipe:
            r = load_recipe(recipe)
            for part in (r.parts or (r,)):
                m = part.method
                if m == "weight_format":
                    weights = part.params.get("format") or weights
                    scope = "every linear layer"
                    if part.params.get("include_lm_head"):
                        quantize_head = True
                        scope += " and the LM head (include_lm_head)"
                    notes.append(f"weights from recipe {part.name}: {weights} ({scope})")
                    if part.params.get("compute") == "native":
                        # both GEMM operands in the format, as the cost model prices compute_fmt
                        if acts_given not in HIGH_PRECISION and acts_given != weights:
                            from workloads.io import InputError
                            raise InputError(f"recipe {recipe!r}: part {part.name} computes natively in {weights} "
                                             f"(compute: native), so its GEMM inputs are {weights}; --acts "
                                             f"{acts_given} contradicts it (leave --acts at fp32 or pass {weights})")
                        acts, attention_acts = weights, False
                        notes.append(f"{part.name}: compute native: the activations entering every quantized "
                                     f"linear GEMM are {weights} too; attention's Q.K and P.V stay fp32 (the "
                                     f"recipe prices only the weight GEMMs in {weights})")
                elif m == "kv_format":
                    from workloads.compression.kv_quant import kv_format_store
                    store = kv_format_store(part.params)
                    kv, kv_value, kv_scale, kv_sort = (store[k] for k in ("key", "value", "scale", "channel_sort"))
                    from cosim.functional.scaled import needs_scale
                    bare = [f for f in dict.fromkeys((kv, kv_value)) if f not in HIGH_PRECISION and needs_scale(f)]
                    notes.append(f"kv from recipe {part.name}: K {kv}, V {kv_value}"
                                 + ((f"; {'/'.join(bare)} with fp32 scales per {kv_scale}, calibrated on the prompt"
                                     if kv_scale != "none" else f"; {'/'.join(bare)} unscaled (saturating)")
                                    if bare else "")
                                 + ("; K channels sorted per KV head by their prompt RMS before block "
                                    "quantization (q permuted alike, scores unchanged before quantization)"
                                    if kv_sort else ""))
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
        if kv_recipe is not None:
            notes += _kv_recipe_notes(kv_recipe, kv, kv_value, recipe)
        if exact:
            _check_exact(weights, acts)
        return Numerics(weights=weights, acts=acts, kv=kv, kv_recipe=kv_recipe, weight_recipe=weight_recipe,
                        exact=exact, quantize_head=quantize_head, quantize_embed=quantize_embed,
                        attention_acts=attention_acts, notes=tuple(notes),
                        structure=tuple(structure), kv_value=kv_value if kv_value != kv else None,
                        kv_scale=kv_scale, kv_channel_sort=kv_sort)

    @property
    def is_baseline(self) -> bool:
        return (self.weights in HIGH_PRECISION and self.acts in HIGH_PRECISION and self.kv in HIGH_PRECISION
                and self.kv_values in HIGH_PRECISION
                and self.kv_recipe is None and self.weight_recipe is None and self.kv_policy is None
                and not self.structure)

    def describe(self) -> str:
        parts = [f"weights={self.weights}", f"acts={self.acts}", f"kv={self.kv_label}"]
        if self.kv_channel_sort:
            parts.append("K channels sorted")
        if self.quantize_head:
            parts.append("LM head quantized")
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

    def act(self, x: np.ndarray, axis: int = -1, prompt=None) -> np.ndarray:
        """x as the GEMM reads it. `prompt` (the number of leading prompt rows, or a boolean
        mask of them; None: one call over all of x): an acts format with a dynamic per-tensor
        scale (bare FP8/FP6/FP4, plain intN, NVFP4's tensor scale) then takes one scale over the prompt rows (one prefill
        call) and one per later row (each a decode step), so no row's scale sees a later
        token. Block and group formats scale within a row already: unchanged."""
        if prompt is None or self.acts in HIGH_PRECISION or not _dynamic_tensor_scale(self.acts):
            return quantize_operand(x, self.acts, axis)
        x = np.asarray(x, np.float32)
        mask = np.arange(x.shape[0]) < prompt if np.ndim(prompt) == 0 else np.asarray(prompt, bool)
        y = np.empty_like(x)
        if mask.any():
            y[mask] = quantize_operand(x[mask], self.acts, axis)
        if not mask.all():  # each decode row its own call (its own scale), all rows in one pass
            y[~mask] = CallScaled(self.acts).rows(x[~mask], axis)
        return y

    def attn_operand(self, x: np.ndarray, axis: int = -1) -> np.ndarray:
        return quantize_operand(x, self.acts, axis) if self.attention_acts else x

    @property
    def token_block(self) -> int | None:
        """B when attention's V operand is quantized (`acts`) in blocks of B tokens that are
        independent of each other (MX, BFP, shared microexponents, integer groups): a query
        row then reads the block holding its own token as quantized from the tokens that
        exist at its step (causal_attention's v_tail). None when V is not quantized, or its
        format carries a per-tensor scale (NVFP4, scaled FP8/INT: one dynamic scale per call)."""
        if not self.attention_acts or self.acts in HIGH_PRECISION:
            return None
        f = get_format(self.acts)
        return f.block_size if f.family in INDEPENDENT_BLOCKS else None


@dataclass(frozen=True)
class CallScaled:
    """An acts format whose scale comes from the data of each call (_dynamic_tensor_scale:
    bare FP8/FP6/FP4's fp32 amax scale, plain intN's amax/qmax, NVFP4's tensor scale).
    `self(x, axis)` is one call (quantize_operand). A value of such a call depends on the
    other values only through the call's max |x| over finite entries (amax), so
    `given(x, amax)` quantizes x as a call whose data has that amax would, and `rows(x)`
    quantizes each x[i] as a call of its own -- many calls' numbers from one pass."""

    fmt: str

    def __post_init__(self):
        if self.fmt in HIGH_PRECISION or not _dynamic_tensor_scale(self.fmt):
            raise ValueError(f"CallScaled: {self.fmt!r} takes no scale from its data (expected NVFP4, plain intN or "
                             f"a bare FP8/FP6/FP4 format)")

    def __call__(self, x: np.ndarray, axis: int = -1) -> np.ndarray:
        return quantize_operand(x, self.fmt, axis)

    def given(self, x: np.ndarray, amax, axis: int = -1) -> np.ndarray:
        """x quantized as by a call whose data's amax is `amax`: a scalar, or one per x[i]
        (shape (x.shape[0],); `axis` then must not be 0). Block scales (NVFP4's E4M3 per 16
        along `axis`) still come from x's own blocks."""
        from cosim.functional import quantize
        from cosim.functional.quantize import scale_of_amax, tensor_scale
        from cosim.functional.scaled import needs_scale, scaled_quantize
        x = np.asarray(x, np.float32)
        a = np.asarray(amax, np.float64)
        if a.ndim:  # one per leading index, broadcast over the rest
            if a.shape != (x.shape[0],):
                raise ValueError(f"CallScaled.given: amax of shape {a.shape}; expected a scalar or one per x[i], "
                                 f"shape ({x.shape[0]},)")
            if x.ndim > 1 and axis % x.ndim == 0:
                raise ValueError("CallScaled.given: one amax per x[i] needs blocks along another axis than 0")
        if needs_scale(self.fmt):
            s = scale_of_amax(a, get_format(self.fmt).max_normal)  # scaled_quantize takes it as float32
            if a.ndim:
                return scaled_quantize(x, self.fmt, "head", head_axis=0, scales=s, axis=axis)[0]
            return scaled_quantize(x, self.fmt, "tensor", scales=s, axis=axis)[0]
        ts = tensor_scale(a, self.fmt)
        return quantize(x, self.fmt, axis=axis, tensor_scale=ts.reshape(ts.shape + (1,) * (x.ndim - 1)) if a.ndim
                        else ts)

    def rows(self, x: np.ndarray, axis: int = -1) -> np.ndarray:
        """Each x[i] quantized as a call of its own (its own amax)."""
        return self.given(x, row_amax(x), axis)


def _dynamic_tensor_scale(fmt: str) -> bool:
    """An acts format quantized with one scale taken from the whole call's data: a bare FP8/FP6/FP4 cast
    (cosim.functional.scaled's fp32 amax scale), a plain intN tensor (quantize's own amax/qmax scale)
    and NVFP4's second-level tensor scale."""
    from cosim.functional.scaled import needs_scale
    return needs_scale(fmt) or get_format(fmt).family in ("nvfp4", "int")


def token_coupled(fmt: str) -> bool:
    """Whether quantizing a whole sequence at once in `fmt` lets a token's value depend on other tokens: blocks
    along the token axis (V for P.V) or one dynamic scale over the call. The one rule for the decoder's
    attention path and the accuracy notes (elementwise bf16/fp16 and fp32 couple nothing)."""
    return fmt not in HIGH_PRECISION and (get_format(fmt).is_block or _dynamic_tensor_scale(fmt))


def _kv_recipe_notes(part, kv: str, kv_value, recipe) -> list:
    """What a KV recipe part does with the KV number format beside it (refused where it has no meaning), and
    what a head projection's bases are: notes, never silent."""
    _check_kv_format_with_method(part, kv, kv_value, recipe)
    notes = []
    half = [f for f in dict.fromkeys((kv, kv_value or kv)) if f in HALF_PRECISION]
    if part.method not in KV_FORMAT_COMPOSABLE and half:
        notes.append(f"kv {'/'.join(half)} with {part.name}: the method stores its own codes; its full-precision "
                     f"parts (residual window, outliers, buffers) are {'/'.join(half)}, as priced (the K/V entering "
                     f"the method are rounded to {'/'.join(half)})")
    elif any(f not in HIGH_PRECISION for f in (kv, kv_value or kv)):
        notes.append(f"kv {kv if (kv_value or kv) == kv else f'K {kv} / V {kv_value}'} stores the tokens "
                     f"{part.name} keeps (scales calibrated on the prompt's K/V); its selection reads the stored keys")
    if part.method == "head_projection":
        notes.append(f"{part.name}: per-KV-head rank-r projections are PCA (SVD) bases fitted on this run's prompt "
                     f"K/V; " + ("keys projected before RoPE and re-rotated each step (rope_reconstruct)"
                                 if part.params.get("rope_reconstruct") else
                                 "keys projected as cached, after RoPE (rope_reconstruct false)")
                     + "; a method whose projections are trained (MatryoshkaKV) is scored at this untrained PCA "
                       "initialisation, not with its trained projections")
    return notes


def _check_kv_format_with_method(part, kv: str, kv_value, recipe) -> None:
    """A KV number format beside a KV method that defines its own storage (KIVI's 2-bit groups, KVQuant's
    codebooks, mixed precision, GEAR, low-rank latents) has no single meaning: refused, never dropped."""
    if part.method in KV_FORMAT_COMPOSABLE:
        return
    given = narrow_kv_formats(kv, kv_value)
    if given:
        from workloads.io import InputError
        raise InputError(f"recipe {recipe!r}: part {part.name} ({part.method}) stores the KV cache in its own "
                         f"representation, so a KV number format ({'/'.join(given)}, from --kv or a kv_format part) "
                         f"beside it would be dropped; expected --kv fp32 (or bf16/fp16, the format of its full-precision "
                         f"parts) and no kv_format part with it (a KV format composes with the token-selection methods "
                         f"{', '.join(KV_FORMAT_COMPOSABLE)})")


def _check_exact(weights: str, acts: str) -> None:
    """--exact multiplies integer block codes: both GEMM operands need a shared-exponent
    block format of one block size. One error naming the flag and what to pass."""
    from workloads.io import InputError
    ok = ("mx", "bfp", "microexp")
    for flag, fmt in (("--weights", weights), ("--acts", acts)):
        fam = "unquantized" if fmt in HIGH_PRECISION else get_format(fmt).family
        if fam not in ok:
            raise InputError(f"--exact: {flag} {fmt!r} is {fam}; exact MX dot products multiply integer block codes, "
                             f"so {flag} needs a shared-exponent block format (mx, bfp, microexp), e.g. "
                             f"{flag} {'mxfp8_e4m3' if flag == '--acts' else 'mxfp4'} (a block of the same size "
                             f"as the other operand's)")
    bw, ba = get_format(weights).block_size, get_format(acts).block_size
    if bw != ba:
        raise InputError(f"--exact: --weights {weights} has blocks of {bw} and --acts {acts} blocks of {ba}; exact "
                         f"dot products need equal K-blocks (pass formats of one block size)")


