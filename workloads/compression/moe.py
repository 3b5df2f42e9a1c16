"""MoE compression: expert pruning/merging (+ dynamic skipping), ResMoE, QMoE.

The builder's routed-expert GEMMs are one op per projection with ``m = T·top_k``
token-expert pairs and a weight of shape (E, k, n) whose `density` is the fraction of
experts this step touches, E_touched/E with E_touched = E·(1 − (1 − k/E)^T) (traffic);
residency counts all E experts.
"""

from __future__ import annotations

import math

from workloads.compression.common import (byte_tensor, find_all, fused_op, replace_op, resident_bytes,
                                          rewrite, weight_inputs)
from workloads.compression.registry import Param, fraction, open_fraction, register_method
from workloads.ops import Op, TensorSpec

EXPERT_GEMMS = ("expert_gate_proj", "expert_up_proj", "expert_down_proj")


def expected_distinct(experts: int, k: float, tokens: int) -> float:
    """E·(1 − (1 − k/E)^T): distinct experts T tokens touch, each routed to k of E."""
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


def _resize_rows(t: TensorSpec, old: int, new: int) -> TensorSpec:
    if t.role != "weight" and t.shape and t.shape[0] == old:
        return TensorSpec(t.name, (new,) + t.shape[1:], t.fmt, t.role, t.density)
    return t


@register_method("moe_prune", {
    "keep_fraction": Param(0.75, float, open_fraction, "a fraction in (0, 1] of experts kept"),
    "skip_rate": Param(0.0, float, fraction, "a fraction in [0, 1] of second-choice experts skipped"),
    "merge": Param(False, bool),
}, "expert pruning or merging E -> E' and dynamic expert skipping")
def apply_moe_prune(trace, model, recipe):
    _require_moe(model, recipe)
    p = recipe.params
    E, k = model.moe.num_experts, model.moe.top_k
    E2 = int(round(E * p["keep_fraction"]))
    recipe.require(E2 >= k, "parameters.keep_fraction", p["keep_fraction"],
                   f"keeping at least top_k ({k}) of {E} experts")
    k_eff = k - (1.0 if k > 1 else 0.0) * p["skip_rate"]  # a skipped expert is the 2nd choice
    T = _router_tokens(trace)
    touched2 = expected_distinct(E2, k_eff, T)
    m2 = max(1, int(round(T * k_eff)))
    ops = list(trace.ops)
    delta = 0.0
    for r in find_all(trace, "router"):
        ins = tuple(TensorSpec(t.name, t.shape[:-1] + (E2,), t.fmt, t.role) if t.role == "weight" else t
                    for t in r.inputs)
        outs = tuple(TensorSpec(t.name, t.shape[:-1] + (E2,), t.fmt, t.role) for t in r.outputs)
        new = r.with_(dims={**r.dims, "experts": E2}, inputs=ins, outputs=outs)
        delta += resident_bytes(weight_inputs(new), new) - resident_bytes(weight_inputs(r), r)
        ops = replace_op(ops, r, new)
    for op in [o for o in trace.ops if o.name.startswith("expert_")]:
        if op.kind == "gemm":
            m_old = int(op.dims["m"])
            ins = []
            for t in op.inputs:
                if t.role == "weight":
                    ins.append(TensorSpec(t.name, (E2,) + t.shape[1:], t.fmt, t.role, touched2 / E2))
                else:
                    ins.append(_resize_rows(t, m_old, m2))
            new = op.with_(dims={**op.dims, "m": m2, "experts": E2, "experts_touched": touched2, "top_k": k_eff},
                           inputs=tuple(ins), outputs=tuple(_resize_rows(t, m_old, m2) for t in op.outputs))
            delta += resident_bytes(weight_inputs(new), new) - resident_bytes(weight_inputs(op), op)
        else:
            rows = int(op.dims["rows"])
            new = op.with_(dims={**op.dims, "rows": m2}, inputs=tuple(_resize_rows(t, rows, m2) for t in op.inputs),
                           outputs=tuple(_resize_rows(t, rows, m2) for t in op.outputs))
        ops = replace_op(ops, op, new)
    return rewrite(trace, ops, {"experts_kept": E2, "experts_before": E, "effective_top_k": k_eff,
                                "experts_touched": touched2, "merged": p["merge"]}, weights_delta=delta)


@register_method("resmoe", {
    "residual": Param("prune", str, choices=("prune", "svd")),
    "residual_density": Param(0.25, float, fraction, "a fraction in [0, 1] of residual weights kept (prune)"),
    "index_bits": Param(16, int, lambda x: x in (8, 16, 32), "8, 16 or 32"),
    "rank_ratio": Param(0.25, float, fraction, "a fraction in [0, 1]: residual rank r = ratio·k·n/(k+n) (svd)"),
}, "shared barycenter expert + compressed per-expert residuals")
def apply_resmoe(trace, model, recipe):
    """Each expert W_i = P_i(W̄ + R_i): one barycenter GEMM (x·W̄, shared by all routed
    tokens of gate/up), a permutation gather, and the residual — unstructured-sparse
    (values + indices, 2·nnz FLOPs per token) or low rank (U_i V_i, 2·r·(k+n) per token).
    `rank_ratio` sets r so that the factors hold that fraction of a dense expert's
    parameters."""
    _require_moe(model, recipe)
    p = recipe.params
    dens = p["residual_density"]
    T = _router_tokens(trace)
    ops = list(trace.ops)
    delta = 0.0
    notes = {"residual": p["residual"]}
    for op in [o for o in trace.ops if o.name in EXPERT_GEMMS]:
        w = weight_inputs(op)[0]
        E = w.shape[0]
        m, n, kk = int(op.dims["m"]), int(op.dims["n"]), int(op.dims["k"])
        common = dict(repeat=op.repeat, phase=op.phase, group=op.group)
        # x·W̄ (permutations commute with it): gate/up share one product per token; the
        # down projection's input differs per expert, so it runs on every routed pair
        m_bar = T if op.name != "expert_down_proj" else m
        bary_w = TensorSpec(f"{op.name}.barycenter", (kk, n), w.fmt, "weight")
        bary = Op(f"{op.name}.barycenter", "gemm", {"m": m_bar, "n": n, "k": kk},
                  (TensorSpec(f"{op.name}.in", (m_bar, kk), "bf16"), bary_w),
                  (TensorSpec(f"{op.name}.bar_out", (m_bar, n), "bf16"),), compute_fmt=op.compute_fmt, **common)
        if p["residual"] == "prune":
            nnz_e = int(round(dens * kk * n))
            stored = [TensorSpec(f"{op.name}.residual_values", (E, nnz_e), w.fmt, "weight", w.density, block_axis=-1),
                      TensorSpec(f"{op.name}.residual_index", (E, math.ceil(nnz_e * p["index_bits"] / 8)), "int8",
                                 "weight", w.density)]
            resid = [Op(f"{op.name}.residual", "custom", {"flops": 2 * m * nnz_e},
                        (op.inputs[0], *stored), op.outputs, **common)]
        else:
            r = max(1, int(round(p["rank_ratio"] * kk * n / (kk + n))))
            notes["rank"] = r
            U = TensorSpec(f"{op.name}.residual_u", (E, kk, r), w.fmt, "weight", w.density)
            V = TensorSpec(f"{op.name}.residual_v", (E, r, n), w.fmt, "weight", w.density)
            stored = [U, V]
            mid = TensorSpec(f"{op.name}.residual_mid", (m, r), "bf16")
            # the routed-expert dims of the op they replace: a per-expert residual is read only for the
            # experts the batch touches (the cycle level groups them as it does the expert GEMM)
            routed = {k: op.dims[k] for k in ("experts", "experts_touched", "top_k") if k in op.dims}
            resid = [Op(f"{op.name}.residual_u", "gemm", {"m": m, "n": r, "k": kk, **routed}, (op.inputs[0], U), (mid,),
                        compute_fmt=op.compute_fmt, **common),
                     Op(f"{op.name}.residual_v", "gemm", {"m": m, "n": n, "k": r, **routed}, (mid, V), op.outputs,
                        compute_fmt=op.compute_fmt, **common)]
        perm = Op(f"{op.name}.permute", "copy", {"rows": m, "cols": n},
                  (TensorSpec(f"{op.name}.bar_rows", (m, n), "bf16"),),
                  (TensorSpec(f"{op.name}.bar_perm", (m, n), "bf16"),), **common)
        delta += resident_bytes([bary_w, *stored], op) - resident_bytes([w], op)
        ops = replace_op(ops, op, [bary, perm, *resid])
    return rewrite(trace, ops, {**notes, "residual_density": dens}, weights_delta=delta)


@register_method("qmoe", {
    "bits_per_param": Param(0.8, float, lambda x: 0 < x <= 16, "bits per expert weight in (0, 16]"),
    "table_entries": Param(65536, int, lambda x: x > 0, "a positive dictionary size"),
    "table_entry_bytes": Param(8, int, lambda x: x > 0, "bytes per dictionary entry (2 x int32)"),
}, "sub-1-bit ternary experts with dictionary decoding")
def apply_qmoe(trace, model, recipe):
    _require_moe(model, recipe)
    p = recipe.params
    table = byte_tensor("qmoe.decode_table", p["table_entries"] * p["table_entry_bytes"], "weight")
    ops = list(trace.ops)
    delta = 0.0
    first = True
    for op in [o for o in trace.ops if o.name in EXPERT_GEMMS]:
        w = weight_inputs(op)[0]
        E, n = w.shape[0], int(op.dims["n"])
        per_expert = w.numel // E
        codes = TensorSpec(f"{w.name}.codes", (E, math.ceil(per_expert * p["bits_per_param"] / 8)), "int8",
                           "weight", w.density)
        # per output row: the ternary (min, max) bf16 pair and an int32 offset into the code stream
        row_meta = TensorSpec(f"{w.name}.row_minmax", (E, n, 2), "bf16", "weight", w.density)
        row_off = TensorSpec(f"{w.name}.row_offsets", (E, n), "fp32", "weight", w.density)
        others = tuple(t for t in op.inputs if t is not w)
        new = op.with_(inputs=others + (codes, row_meta, row_off))
        decode = fused_op(f"{op.name}.dict_decode", "dequantize", 1, w.numel * w.density, repeat=op.repeat,
                          phase=op.phase, group=op.group, into=op.name)
        repl = [new, decode]
        if first:  # the decode table is read once per MoE layer and step (it should live on chip)
            repl.insert(0, Op("qmoe.table_load", "copy", {"rows": 1, "cols": table.shape[-1]}, (table,), (),
                              repeat=op.repeat, phase=op.phase, group=op.group))
            first = False
        delta += resident_bytes([codes, row_meta, row_off], op) - resident_bytes([w], op)
        ops = replace_op(ops, op, repl)
    delta += table.nbytes * model.moe_layers
    return rewrite(trace, ops, {"bits_per_param": p["bits_per_param"]}, weights_delta=delta)
