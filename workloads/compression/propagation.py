"""FastKV (arXiv 2502.01068): token-selective propagation (TSP) in prefill plus a
per-layer KV retention.

Prefill: layers before `tsp_layer` process every prompt token; at that layer the last
`window` queries vote (SnapKV-style scores, pooled) and only the top `tsp_rate` of the
tokens propagate through the remaining layers, so their linear FLOPs scale by ρ and
their attention by ρ² (doc §1.2: 2·Sp·P_layer·[l_tsp + (L − l_tsp)·ρ]). Every layer keeps
`retain_rate` of the prompt's KV for decoding (SnapKV-like, per layer).

In the trace each per-layer op is split in two: the first `tsp_layer` layers unchanged
and the rest with ρ of the tokens (dims["tsp_after"] = True). Decode reads retain_rate·S.
"""

from __future__ import annotations

import math

from workloads.compression.common import (attention_ops, is_decode_step, kv_state, prompt_and_generated, replace_op,
                                          rewrite)
from workloads.compression.moe import expected_distinct
from workloads.compression.eviction import (_generated_note, _mla_note, _snap_prefill, cache_layout,
                                            prefill_transient_kv, resize_kv_read, stored_bytes_per_token,
                                            transient_record)
from workloads.compression.registry import Param, open_fraction, register_method
from workloads.ops import PER_PROMPT, SCALE_SUFFIX, Op, TensorSpec


def propagated_tokens(trace) -> int | None:
    """The prompt tokens (per sequence) a token-selective propagation recipe (FastKV) runs past its selection layer,
    as its recipe effects record them; None without one. Two different counts (two such recipes) are one InputError:
    the layers after the selection layer have no one token count to be priced at."""
    from workloads.io import InputError
    found = {int(e["tsp_tokens"]) for e in (trace.meta.get("recipe_effects") or {}).values()
             if isinstance(e, dict) and "tsp_tokens" in e}
    if len(found) > 1:
        raise InputError(f"recipe: got {trace.recipe!r}, whose effects record {len(found)} token-selective propagation "
                         f"counts ({', '.join(map(str, sorted(found)))}); expected at most one FastKV-style recipe")
    return found.pop() if found else None


def _scale_tokens(op: Op, T: int, T2: int, S: int, S2: int) -> Op:
    """The op on T2 of its T tokens (and an attention on S2 of S positions). A routed-expert op of a MoE layer
    (group "moe", its rows the R = T x top_k token-expert pairs rather than T) runs ceil(T2 x R / T) pairs
    (T2 x top_k for an integer top_k), records its top_k when it had none (the expert activation) and, for an
    expert GEMM, the experts the T2 tokens touch (E(1 - (1 - k/E)^T2), its weights' density). Before session 17
    only rows equal to T were scaled: the expert activation (and the expert GEMMs' activation tensors) kept T x
    top_k rows in the layers after the selection layer."""
    d = dict(op.dims)
    key = ("q_len" if op.kind == "attention" else "m" if op.kind == "gemm" else "tokens" if op.kind == "moe_router"
           else "rows" if "rows" in d else None)
    R = int(d[key]) if key else None
    routed = op.kind != "attention" and op.group == "moe" and R is not None and R != T and R > 0
    R2 = -(-R * T2 // T) if routed else None  # ceil(T2 x R / T), exact in integers

    def fix(t: TensorSpec) -> TensorSpec:
        shape = list(t.shape)
        if t.role == "weight" or not shape or t.name.endswith(SCALE_SUFFIX):  # a cache's per-head scales: no tokens
            return t
        if op.kind == "attention" and len(shape) == 4:
            shape[1] = S2 if shape[1] == S else shape[1]
        elif routed and shape[0] == R:
            shape[0] = R2
        elif shape[0] == T:
            shape[0] = T2
        elif len(shape) >= 2 and shape[-2] == T:  # batched GEMM operands (b, m, k)
            shape[-2] = T2
        return TensorSpec(t.name, tuple(shape), t.fmt, t.role, t.density)

    def fix_weight(t: TensorSpec, density: float) -> TensorSpec:
        return TensorSpec(t.name, t.shape, t.fmt, t.role, density) if t.role == "weight" else t

    inputs = tuple(fix(t) for t in op.inputs)
    if op.kind == "attention":
        d["q_len"], d["kv_len"] = S2, S2
    elif routed:
        d[key] = R2
        d.setdefault("top_k", R // T if R % T == 0 else R / T)
        if "experts_touched" in d:  # the experts T2 tokens reach: the share of the expert weights read
            E = int(d["experts"])
            d["experts_touched"] = expected_distinct(E, float(d["top_k"]), T2)
            inputs = tuple(fix_weight(t, d["experts_touched"] / E) for t in inputs)
    elif key and R == T:
        d[key] = T2
    d["tsp_after"] = True
    return op.with_(dims=d, inputs=inputs, outputs=tuple(fix(t) for t in op.outputs))


def _mlp_layers_after(model, tsp_layer: int) -> dict:
    """{group: (its layers, those at or after `tsp_layer`)} of a MoE model's dense-MLP ("mlp") and expert ("moe")
    layers (ModelSpec.is_moe_layer); {} for a dense model, whose MLP runs on every layer. DeepSeek-V2-Lite (27 layers,
    layer 0 dense) at tsp_layer 1: mlp 0, moe 26 (the layer share gave round(1 x 26/27) = 1 and round(26 x 26/27)
    = 25: its dense layer ran the propagated tokens and one MoE layer all of them)."""
    if not getattr(model, "moe", None):
        return {}
    after = range(tsp_layer, model.layers)
    moe = sum(1 for i in after if model.is_moe_layer(i))
    return {"moe": (model.moe_layers, moe), "mlp": (model.dense_layers, len(after) - moe)}


@register_method("fastkv", {
    "tsp_layer": Param(15, int, lambda x: x >= 0, "a non-negative layer index"),
    "tsp_rate": Param(0.2, float, open_fraction, "a fraction in (0, 1] of tokens propagated"),
    "retain_rate": Param(0.1, float, open_fraction, "a fraction in (0, 1] of the prompt's KV kept per layer"),
    "window": Param(8, int, lambda x: x > 0, "a positive observation window"),
    "kernel": Param(7, int, lambda x: x > 0 and x % 2 == 1, "a positive odd pooling kernel"),
}, "token-selective propagation in prefill + per-layer KV retention", prompt_only=True)
def apply_fastkv(trace, model, recipe):
    p = recipe.params
    L = model.layers
    recipe.require(p["tsp_layer"] < L, "parameters.tsp_layer", p["tsp_layer"], f"below the layer count ({L})")
    st = kv_state(trace)
    S = int(st["context"])
    kept = max(1, min(int(st["capacity"]), int(p["retain_rate"] * S)))
    ops = list(trace.ops)
    after_frac = (L - p["tsp_layer"]) / L
    if trace.phase == "prefill":
        T = trace.batch * trace.seq
        S2 = max(1, int(math.ceil(p["tsp_rate"] * trace.seq)))
        T2 = trace.batch * S2
        after_mlp = _mlp_layers_after(model, p["tsp_layer"])
        for op in trace.ops:
            if op.name in ("embed", "lm_head", "final_norm"):
                continue
            # a MoE model's dense-MLP and expert ops sit on their own layers (DeepSeek's first dense layers):
            # those at or after tsp_layer; any other per-layer op's layers spread over the stack
            total, r_after = after_mlp.get(op.group, (None, None))
            if total != op.repeat:  # not one op per such layer (a recipe's): the layer share, as for the rest
                if op.repeat <= 1:
                    continue
                r_after = int(round(op.repeat * after_frac))
            r_before = op.repeat - r_after
            parts = ([op.with_(repeat=r_before)] if r_before else []) + \
                ([_scale_tokens(op, T, T2, trace.seq, S2).with_(repeat=r_after)] if r_after else [])
            if op.kind == "attention":
                parts = [x for part in parts for x in _snap_prefill(
                    part, recipe.name, p["window"], p["kernel"], min(kept, int(part.dims["kv_len"])),
                    cache_layout(trace))]
            ops = replace_op(ops, op, parts)
        # TSP itself: window votes over the whole prompt once, then gather ρ of the hidden states
        first = next((o for o in trace.ops if o.kind == "attention"), None)
        if first is not None:
            B, H, hd = (int(first.dims[k]) for k in ("batch", "heads", "head_dim"))
            W = min(p["window"], trace.seq)
            common = dict(repeat=1, phase=trace.phase, group="recipe")
            ops.append(Op(f"{recipe.name}.tsp_scores", "gemm", {"b": B * H, "m": W, "n": trace.seq, "k": hd,
                                                                 PER_PROMPT: True},
                          (TensorSpec("q_window", (B * H, W, hd), "bf16"),),
                          (TensorSpec("tsp_scores", (B * H, W, trace.seq), "fp32"),), **common))
            ops.append(Op(f"{recipe.name}.tsp_gather", "copy", {"rows": T2, "cols": model.hidden, PER_PROMPT: True},
                          (TensorSpec("hidden_kept", (T2, model.hidden), "bf16"),),
                          (TensorSpec("hidden_propagated", (T2, model.hidden), "bf16"),), **common))
        notes = {"tsp_tokens": S2, "linear_flop_ratio": (p["tsp_layer"] + (L - p["tsp_layer"]) * p["tsp_rate"]) / L}
        W = min((int(o.dims.get("window", 0) or 0) for o in trace.ops if o.kind == "attention"), default=0)
        if W and W < trace.seq:
            # a sliding window counts original positions; the propagated tokens are a subset spread over them, so
            # after the selection layer each sees fewer of them than the window caps it at: an upper bound, said
            notes["note_window_after_selection"] = (
                f"layers from {p['tsp_layer']} on attend over the {S2} propagated tokens with the {W}-token sliding "
                f"window applied to their own indices; spread over the {trace.seq}-token prompt, about "
                f"{W * S2 / trace.seq:.0f} of them fall in a window: the attention work there is an upper bound")
        transient = prefill_transient_kv(trace, st, kept)
        return rewrite(trace, ops, {**notes, "kept_tokens": kept, **_mla_note(model)},
                       kv={"capacity": kept, "bytes_per_token": stored_bytes_per_token(trace, st, kept),
                           **transient_record(trace, st, transient)},
                       activations_delta=transient)
    # a decode step keeps the prompt's retained tokens and its generated ones whole (FastKV selects once, in
    # prefill): retain_rate of the prompt, not of the whole context (prompt_and_generated)
    prompt, generated = prompt_and_generated(trace)
    prompt_kept = max(1, min(prompt, int(p["retain_rate"] * prompt)))
    kept = min(int(st["capacity"]), prompt_kept + generated)
    for attn in attention_ops(trace):
        if is_decode_step(attn):
            ops = replace_op(ops, attn, resize_kv_read(attn, kept))
    said = ({"note_generated": _generated_note(prompt, generated, prompt_kept, int(st["capacity"]),
                                               "it selects once, in prefill")} if generated else {})
    # the cache holds the stored pieces at `kept` tokens (a quantized cache's windows whole)
    return rewrite(trace, ops, {"kept_tokens": kept, **said, **_mla_note(model)},
                   kv={"capacity": kept, "read": kept, "bytes_per_token": stored_bytes_per_token(trace, st, kept)})
