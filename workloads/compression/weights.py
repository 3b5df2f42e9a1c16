"""Weight compression: any registered format, SpQR dense+sparse, outlier channel splitting.

- ``weight_format``: every linear weight stored in a registered format (MX, BFP,
  microexponent, NVFP4, int-group with fp16 scales and zero points); the format's
  `bits_per_element` carries the scale bytes exactly. By default the GEMM still runs
  in bf16 after a dequantize fused into the kernel (weight-only quantization on a GPU);
  ``compute: native`` runs it in the format itself (an MX tensor core).
- ``spqr`` (Dettmers et al., ICLR 2024): w-bit codes in groups of 16 whose scale and
  zero are themselves 3-bit, quantized again in groups of 16 with fp16 statistics, plus
  ~1 % fp16 outliers in CSR (int16 column index, int32 row pointer), applied by an SpMV.
- ``ocs`` (Zhao et al., ICML 2019): duplicate the outlier input channels, so the
  reduction dimension K grows by the expand ratio; the activation duplication is a
  runtime gather.
"""

from __future__ import annotations

import math
from dataclasses import replace

from workloads.compression.common import (byte_tensor, fused_op, gemm_k_axis, gemm_weight_ops, replace_op,
                                          resident_bytes, rewrite, weight_codes, weight_inputs)
from workloads.compression.registry import Param, bits, fraction, register_method, registered_format
from workloads.formats import get_format
from workloads.ops import Op, TensorSpec


_check_format = registered_format  # one definition, in the method registry


_SCOPE = {"include_lm_head": Param(False, bool), "experts_only": Param(False, bool)}


def _targets(trace, recipe):
    ops = gemm_weight_ops(trace, include_lm_head=recipe.params["include_lm_head"])
    if recipe.params["experts_only"]:
        ops = [op for op in ops if op.name.startswith(("expert_", "shared_"))]
    return ops


@register_method("weight_format", {
    "format": Param("mxfp4", str, _check_format, "a registered number format (see `cosim list formats`)"),
    "compute": Param("dequant", str, choices=("dequant", "native")),
    **_SCOPE,
}, "linear weights stored in a registered format")
def apply_weight_format(trace, model, recipe):
    fmt = recipe.params["format"]
    native = recipe.params["compute"] == "native"
    ops = list(trace.ops)
    delta = 0.0
    changed = []
    for op in _targets(trace, recipe):
        ws = weight_inputs(op)
        # one rule with `--weights <fmt>` (the builder): a block that does not divide K leaves a short last
        # group, stored whole with its own scale (TensorSpec.bits_per_element, NumberFormat.row_bits), as
        # GPTQ-style checkpoints store ceil(K / group) rows of scales and zeros; the weight keeps its block axis
        new_inputs = tuple(replace(t, fmt=fmt) if t.role == "weight" else t for t in op.inputs)
        new_op = op.with_(inputs=new_inputs, compute_fmt=fmt if native else op.compute_fmt)
        delta += resident_bytes(weight_inputs(new_op), op) - resident_bytes(ws, op)
        repl = [new_op]
        if not native:
            # dequantize fused into the GEMM's weight load: ~2 FLOPs per weight touched
            n_w = sum(t.numel * t.density for t in ws)
            repl.append(fused_op(f"{op.name}.weight_dequant", "dequantize", 1, n_w, repeat=op.repeat,
                                 phase=op.phase, group=op.group, into=op.name))
        ops = replace_op(ops, op, repl)
        changed.append(op.name)
    bpe = get_format(fmt).bits_per_element
    return rewrite(trace, ops, {"changed_ops": changed, "weight_bits_per_element": bpe},
                   weights_delta=delta)


# SpQR's second-level statistics (paper §4.1 / Eq. 4, arXiv 2306.03078): the first-level
# scales AND the first-level zeros are each quantized with their own fp16 scale and fp16
# zero per stat group: 4 fp16 = 64 bits per beta1*beta2 weights.
SPQR_SECOND_LEVEL_FP16 = 4


def spqr_bits_per_weight(p: dict, k: int) -> float:
    """Average stored bits per weight, SpQR Eq. 4: w + (s + z)/beta1 + 64/(beta1*beta2)
    + outliers (fp16 value + int16 column index each), plus what the paper's count
    leaves out and the CSR really stores: one int32 row pointer per output row of K
    weights (32/K bits). 3-bit, 16/16 groups, 1 % outliers: 3 + 6/16 + 64/256 + 0.32
    = 3.945 (the paper's example) + 32/K."""
    g, g2 = p["group_size"], p["stat_group_size"]
    first = (p["scale_bits"] + p["zero_bits"]) / g
    second = SPQR_SECOND_LEVEL_FP16 * 16 / (g * g2)
    outl = p["outlier_fraction"] * (16 + p["index_bits"])
    return p["bits"] + first + second + outl + 32.0 / k


@register_method("spqr", {
    "bits": Param(3, int, bits, "1..16 bits per weight code"),
    "group_size": Param(16, int, lambda x: x > 0, "a positive group size dividing K"),
    "scale_bits": Param(3, int, bits, "1..16"),
    "zero_bits": Param(3, int, bits, "1..16"),
    "stat_group_size": Param(16, int, lambda x: x > 0, "a positive group size"),
    "outlier_fraction": Param(0.01, float, fraction, "a fraction in [0, 1]"),
    "index_bits": Param(16, int, lambda x: x in (16, 32), "16 or 32"),
    **_SCOPE,
}, "SpQR: small-group low-bit codes, quantized statistics, fp16 CSR outliers")
def apply_spqr(trace, model, recipe):
    p = recipe.params
    ops = list(trace.ops)
    delta = 0.0
    changed = []
    for op in _targets(trace, recipe):
        (w,) = weight_inputs(op)[:1]
        ax = gemm_k_axis(op, w)
        k = w.shape[ax]
        n = int(op.dims["n"])
        recipe.require(k % p["group_size"] == 0, "parameters.group_size", p["group_size"],
                       f"a divisor of the reduction dimension K={k} of {op.name}")
        groups = w.numel // p["group_size"]
        nnz = int(round(p["outlier_fraction"] * w.numel))
        dens = w.density  # routed experts: the fraction of experts a step touches
        lead = w.numel // (n * k)  # experts (or 1)
        codes = weight_codes(f"{w.name}.codes", lead * n, k, p["bits"])
        stats1 = byte_tensor(f"{w.name}.stats_q", groups * (p["scale_bits"] + p["zero_bits"]) / 8, "weight")
        stats2 = TensorSpec(f"{w.name}.stats_fp16", (math.ceil(groups / p["stat_group_size"]),
                                                      SPQR_SECOND_LEVEL_FP16), "fp16", "weight")
        stored = [TensorSpec(t.name, t.shape, t.fmt, t.role, dens) for t in (codes, stats1, stats2)]
        others = tuple(t for t in op.inputs if t is not w)
        dense = op.with_(inputs=others + tuple(stored))
        outl = [TensorSpec(f"{w.name}.outlier_values", (nnz,), "fp16", "weight", dens),
                byte_tensor(f"{w.name}.outlier_cols", nnz * p["index_bits"] / 8, "weight"),
                TensorSpec(f"{w.name}.row_ptr", (lead * n + 1,), "fp32", "weight", dens)]  # int32: 4 B each
        outl[1] = TensorSpec(outl[1].name, outl[1].shape, outl[1].fmt, "weight", dens)
        m = int(op.dims["m"]) * int(op.dims.get("b", 1))
        spmv = Op(f"{op.name}.outliers", "custom", {"flops": 2 * m * nnz / lead},
                  tuple(outl), (), compute_fmt="fp16", repeat=op.repeat, phase=op.phase, group=op.group)
        deq = fused_op(f"{op.name}.weight_dequant", "dequantize", 1, (w.numel + groups) * dens, repeat=op.repeat,
                       phase=op.phase, group=op.group, into=op.name)
        delta += resident_bytes(stored + outl, op) - resident_bytes([w], op)
        ops = replace_op(ops, op, [dense, deq, spmv])
        changed.append(op.name)
    k_ref = int(model.hidden)
    return rewrite(trace, ops, {"changed_ops": changed,
                                "bits_per_weight_at_k_hidden": spqr_bits_per_weight(p, k_ref)},
                   weights_delta=delta)


@register_method("ocs", {
    "expand_ratio": Param(0.05, float, lambda x: 0 <= x <= 1, "a ratio in [0, 1] (channels duplicated / K)"),
    "format": Param("int4_g128", str, _check_format, "a registered number format for the split weights"),
    **_SCOPE,
}, "outlier channel splitting: K grows by the expand ratio")
def apply_ocs(trace, model, recipe):
    r = recipe.params["expand_ratio"]
    fmt = recipe.params["format"]
    ops = list(trace.ops)
    delta = 0.0
    changed = []
    for op in _targets(trace, recipe):
        k = int(op.dims["k"])
        extra = int(math.ceil(k * r))
        k2 = k + extra
        new_inputs = []
        for t in op.inputs:
            if t.role == "weight":
                ax = gemm_k_axis(op, t)
                shape = list(t.shape)
                shape[ax] = k2
                new_inputs.append(TensorSpec(t.name, tuple(shape), fmt, t.role, t.density))
            elif t.shape and t.shape[-1] == k:
                new_inputs.append(TensorSpec(t.name, t.shape[:-1] + (k2,), t.fmt, t.role, t.density))
            else:
                new_inputs.append(t)
        new_op = op.with_(dims={**op.dims, "k": k2}, inputs=tuple(new_inputs))
        delta += resident_bytes(weight_inputs(new_op), op) - resident_bytes(weight_inputs(op), op)
        m = int(op.dims["m"]) * int(op.dims.get("b", 1))
        x_fmt = op.inputs[0].fmt if op.inputs else "bf16"
        # runtime duplication of the split activation channels (a gather of m x extra)
        dup = Op(f"{op.name}.ocs_split", "copy", {"rows": m, "cols": extra},
                 (TensorSpec(f"{op.name}.x_outlier_cols", (m, extra), x_fmt),),
                 (TensorSpec(f"{op.name}.x_split", (m, extra), x_fmt),),
                 repeat=op.repeat, phase=op.phase, group=op.group)
        deq = fused_op(f"{op.name}.weight_dequant", "dequantize", 1, k2 * int(op.dims["n"]),
                       repeat=op.repeat, phase=op.phase, group=op.group, into=op.name)
        ops = replace_op(ops, op, [dup, new_op, deq])
        changed.append(op.name)
    return rewrite(trace, ops, {"changed_ops": changed, "k_growth": 1 + r}, weights_delta=delta)
