"""MoE compression: expert pruning/merging (+ dynamic skipping), ResMoE, QMoE.

The builder's routed-expert GEMMs have ``repeat = moe_layers × experts touched`` and
``m`` = average tokens per touched expert. Pruning changes how many distinct experts a
step touches; the expected count for T tokens each choosing k of E experts uniformly is
E·(1 − (1 − k/E)^T), and the builder's own count is scaled by the ratio of the two
expectations, so with nothing pruned the trace is unchanged.
"""

from __future__ import annotations

import math

from workloads.compression.common import (byte_tensor, expert_op, find_all, fused_op, replace_op, rewrite,
                                          weight_inputs)
from workloads.compression.recipe import Param, fraction, open_fraction, register_method
from workloads.ops import Op, TensorSpec

EXPERT_GEMMS = ("expert_gate_proj", "expert_up_proj", "expert_down_proj")


def expected_distinct(experts: int, k: float, tokens: int) -> float:
    if experts <= 0:
        return 0.0
    k = min(k, experts)
    return experts * (1.0 - (1.0 - k / experts) ** tokens)


def _require_moe(model, recipe):
    recipe.require(getattr(model, "moe", None) is not None, "method", recipe.method,
                   f"a MoE model ({model.name} has no routed experts)")


def _router_tokens(trace) -> int:
    r = find_all(trace, "router")
    return int(r[0].dims["tokens"]) if r else trace.tokens


def _expert_ops(trace):
    return [op for op in trace.ops if op.name in EXPERT_GEMMS or op.name == "expert_act"]


def _touched(op: Op, model) -> int:
    return max(1, op.repeat // max(model.moe_layers, 1))


@register_method("moe_prune", {
    "keep_fraction": Param(0.75, float, open_fraction, "a fraction in (0, 1] of experts kept"),
    "skip_rate": Param(0.0, float, fraction, "a fraction in [0, 1] of second-choice experts skipped"),
    "merge": Param(False, bool),
}, "expert pruning or merging E -> E' and dynamic expert skipping")
def apply_moe_prune(trace, model, recipe):
    _require_moe(model, recipe)
    p = recipe.params
    E, k = model.moe.num_experts, model.moe.top_k
    E2 = max(k, int(round(E * p["keep_fraction"])))
    recipe.require(E2 >= k, "parameters.keep_fraction", p["keep_fraction"],
                   f"keeping at least top_k ({k}) of {E} experts")
    k_eff = k - (1 if k > 1 else 0) * p["skip_rate"]  # the skipped one is the 2nd choice
    T = _router_tokens(trace)
    scale = expected_distinct(E2, k_eff, T) / expected_distinct(E, k, T)
    ops = list(trace.ops)
    for r in find_all(trace, "router"):
        ins = tuple(TensorSpec(t.name, tuple(E2 if s == E else s for s in t.shape), t.fmt, t.role)
                    if t.role == "weight" else t for t in r.inputs)
        outs = tuple(TensorSpec(t.name, t.shape[:-1] + (E2,), t.fmt, t.role) for t in r.outputs)
        ops = replace_op(ops, r, r.with_(dims={**r.dims, "experts": E2}, inputs=ins, outputs=outs))
    per_expert_w = 0.0
    for op in _expert_ops(trace):
        touched = _touched(op, model)
        new_touched = max(1, int(round(touched * scale)))
        m_new = max(1, int(round(int(op.dims.get("m", op.dims.get("rows", 1))) * touched * (k_eff / k) / new_touched)))
        per_expert_w += sum(t.nbytes for t in weight_inputs(op))
        ops = replace_op(ops, op, _with_m(op, m_new).with_(repeat=model.moe_layers * new_touched))
    delta = -per_expert_w * model.moe_layers * (E - E2)
    return rewrite(trace, ops, {"experts_kept": E2, "experts_before": E, "effective_top_k": k_eff,
                                "touched_scale": scale, "merged": p["merge"]}, weights_delta=delta)


def _with_m(op: Op, m: int) -> Op:
    """The same expert op on m tokens."""
    if op.kind == "gemm":
        m_old = int(op.dims["m"])
        fix = lambda t: TensorSpec(t.name, (m,) + t.shape[1:], t.fmt, t.role, t.density) \
            if t.role != "weight" and t.shape and t.shape[0] == m_old else t
        return op.with_(dims={**op.dims, "m": m}, inputs=tuple(fix(t) for t in op.inputs),
                        outputs=tuple(fix(t) for t in op.outputs))
    rows_old = int(op.dims.get("rows", 1))
    fix = lambda t: TensorSpec(t.name, (m,) + t.shape[1:], t.fmt, t.role, t.density) \
        if t.shape and t.shape[0] == rows_old else t
    return op.with_(dims={**op.dims, "rows": m}, inputs=tuple(fix(t) for t in op.inputs),
                    outputs=tuple(fix(t) for t in op.outputs))


@register_method("resmoe", {
    "residual_density": Param(0.25, float, fraction, "a fraction in [0, 1] of residual weights kept"),
    "index_bits": Param(16, int, lambda x: x in (8, 16, 32), "8, 16 or 32"),
}, "shared barycenter expert + pruned per-expert residuals")
def apply_resmoe(trace, model, recipe):
    _require_moe(model, recipe)
    p = recipe.params
    dens = p["residual_density"]
    T = _router_tokens(trace)
    k = model.moe.top_k
    E = model.moe.num_experts
    ops = list(trace.ops)
    delta = 0.0
    for op in [o for o in trace.ops if o.name in EXPERT_GEMMS]:
        (w,) = weight_inputs(op)[:1]
        touched = _touched(op, model)
        m_e, n, kk = int(op.dims["m"]), int(op.dims["n"]), int(op.dims["k"])
        common = dict(phase=op.phase, group=op.group)
        # x·W̄: gate/up share one product per token; down's input differs per expert
        m_bar = T if op.name != "expert_down_proj" else m_e * touched
        bary_w = TensorSpec(f"{op.name}.barycenter", w.shape, w.fmt, "weight")
        bary = Op(f"{op.name}.barycenter", "gemm", {"m": m_bar, "n": n, "k": kk},
                  (TensorSpec(f"{op.name}.x", (m_bar, kk), "bf16"), bary_w),
                  (TensorSpec(f"{op.name}.y_bar", (m_bar, n), "bf16"),), repeat=model.moe_layers, **common)
        nnz = int(round(dens * w.numel))
        vals = TensorSpec(f"{op.name}.residual_values", (nnz,), w.fmt, "weight")
        idx = byte_tensor(f"{op.name}.residual_index", nnz * p["index_bits"] / 8, "weight")
        resid = Op(f"{op.name}.residual", "custom", {"flops": 2 * m_e * nnz},
                   (TensorSpec(f"{op.name}.x", (m_e, kk), "bf16"), vals, idx),
                   (TensorSpec(f"{op.name}.y", (m_e, n), "bf16"),), repeat=op.repeat, **common)
        perm = Op(f"{op.name}.permute", "copy", {"rows": m_e, "cols": n},
                  (TensorSpec(f"{op.name}.y_bar_rows", (m_e, n), "bf16"),),
                  (TensorSpec(f"{op.name}.y_perm", (m_e, n), "bf16"),), repeat=op.repeat, **common)
        delta += model.moe_layers * (bary_w.nbytes + E * (vals.nbytes + idx.nbytes) - E * w.nbytes)
        ops = replace_op(ops, op, [bary, resid, perm])
    return rewrite(trace, ops, {"residual_density": dens}, weights_delta=delta)


@register_method("qmoe", {
    "bits_per_param": Param(0.8, float, lambda x: 0 < x <= 16, "bits per expert weight in (0, 16]"),
    "table_entries": Param(65536, int, lambda x: x > 0, "a positive dictionary size"),
    "table_entry_bytes": Param(8, int, lambda x: x > 0, "bytes per dictionary entry (2 x int32)"),
}, "sub-1-bit ternary experts with dictionary decoding")
def apply_qmoe(trace, model, recipe):
    _require_moe(model, recipe)
    p = recipe.params
    E = model.moe.num_experts
    table = byte_tensor("qmoe.decode_table", p["table_entries"] * p["table_entry_bytes"], "weight")
    ops = list(trace.ops)
    delta = 0.0
    first = True
    for op in [o for o in trace.ops if o.name in EXPERT_GEMMS]:
        (w,) = weight_inputs(op)[:1]
        rows = w.shape[-1] if len(w.shape) == 2 else 1
        codes = byte_tensor(f"{w.name}.codes", w.numel * p["bits_per_param"] / 8, "weight")
        # per-row ternary (min, max) bf16 pair and an int32 offset into the code stream
        row_meta = TensorSpec(f"{w.name}.row_minmax", (rows, 2), "bf16", "weight")
        row_off = TensorSpec(f"{w.name}.row_offsets", (rows,), "fp32", "weight")
        others = tuple(t for t in op.inputs if t is not w)
        new = op.with_(inputs=others + (codes, row_meta, row_off))
        decode = fused_op(f"{op.name}.dict_decode", "dequantize", 1, w.numel, repeat=op.repeat,
                          phase=op.phase, group=op.group, into=op.name)
        repl = [new, decode]
        if first:  # the decode table is read once per MoE layer and step (it should live on chip)
            repl.insert(0, Op("qmoe.table_load", "copy", {"rows": 1, "cols": table.shape[-1]}, (table,), (),
                              repeat=model.moe_layers, phase=op.phase, group=op.group))
            first = False
        delta += (codes.nbytes + row_meta.nbytes + row_off.nbytes - w.nbytes) * model.moe_layers * E
        ops = replace_op(ops, op, repl)
    delta += table.nbytes
    return rewrite(trace, ops, {"bits_per_param": p["bits_per_param"]}, weights_delta=delta)
