"""Low-rank and shared KV: Palu, MLA (MHA2MLA-style conversion), CLA, MiniCache.

- ``palu`` (arXiv 2407.21118): W_k ≈ A_k B_k, W_v ≈ A_v B_v per group of KV heads; the
  cache holds the latents h = x·A; each decode step reconstructs the keys of all S
  cached tokens (2·S·r_g·g·d FLOPs per group, then RoPE) inside the attention kernel;
  values stay latent through P·h_v and are up-projected once per head.
- ``mla`` (DeepSeek-V2 arXiv 2405.04434; MHA2MLA arXiv 2502.14837): a per-token latent
  of kv_lora_rank plus a shared RoPE key; decode runs absorbed (q_absorb, attention over
  the latent with kv_heads = 1, o_absorb). Prefill materialises K/V (kv_b_proj).
- ``cla`` (arXiv 2405.12981) / KVSharer: every s-th layer computes K/V, the others
  reuse them — capacity and K/V projections ÷ s, decode reads unchanged (the trace
  records the source layer so a hardware model can serve the re-read from SRAM).
- ``minicache`` (arXiv 2405.14366): from `start_fraction`·L, layer pairs share direction
  vectors, keep their own magnitudes and a γ fraction of unmergeable tokens.
"""

from __future__ import annotations

import math

from workloads.compression.common import (VECTOR_FMT, attention_ops, find_all, fused_op, is_decode_step, is_kv_scale,
                                          kv_state, latent_scales, refuse_on_mla, stored_scale_bytes, replace_op,
                                          rewrite, set_kv_write_width, weight_inputs, resident_bytes)
from workloads.compression.registry import Param, fraction, open_fraction, register_method
from workloads.ops import OVER_CONTEXT, Op, TensorSpec


def _kv_fmt(attn):
    return next((t.fmt for t in attn.inputs if t.role == "kv"), "bf16")


def _set_gemm_n(op: Op, n: int) -> Op:
    """The projection producing n outputs instead of dims['n'] (weights are (k, n))."""
    ins = []
    for t in op.inputs:
        if t.role == "weight":
            ins.append(TensorSpec(t.name, t.shape[:-1] + (n,), t.fmt, t.role, t.density))
        else:
            ins.append(t)
    outs = tuple(TensorSpec(t.name, t.shape[:-1] + (n,), t.fmt, t.role, t.density) for t in op.outputs)
    return op.with_(dims={**op.dims, "n": n}, inputs=tuple(ins), outputs=outs)


def _weight_delta(old: Op, new: Op, model) -> float:
    return resident_bytes(weight_inputs(new), new) - resident_bytes(weight_inputs(old), old)


# ---- Palu ------------------------------------------------------------------------
def palu_group_size(kv_heads: int, wanted: int) -> tuple[int, str]:
    """KV heads per Palu group on a model with `kv_heads`: the largest divisor of
    kv_heads that is at most `wanted` (Palu's G-LRD needs whole groups), and a note when
    that is not `wanted` (SmolLM2's 3 KV heads with head_group_size 4: groups of 3).
    The pricing and the accuracy run both use this rule."""
    g = max(1, min(int(wanted), int(kv_heads)))
    while kv_heads % g:
        g -= 1
    note = "" if g == wanted else (f"head_group_size {wanted} does not divide the {kv_heads} KV heads; "
                                   f"groups of {g} used")
    return g, note


@register_method("palu", {
    "key_rank_ratio": Param(0.25, float, open_fraction, "a fraction in (0, 1] of the K width kv_heads·head_dim"),
    "value_rank_ratio": Param(0.75, float, open_fraction, "a fraction in (0, 1] of the V width"),
    "head_group_size": Param(4, int, lambda x: x > 0, "a positive number of KV heads per group"),
}, "low-rank latent K/V cache with on-the-fly key reconstruction")
def apply_palu(trace, model, recipe):
    p = recipe.params
    recipe.require(not getattr(model, "mla", None), "method", "palu", "a model without MLA (its KV is already latent)")
    Hkv, d, H = model.kv_heads, model.head_dim, model.heads
    gs, group_note = palu_group_size(Hkv, p["head_group_size"])
    ng = Hkv // gs
    r_k = int(round(p["key_rank_ratio"] * Hkv * d / ng)) * ng
    r_v = int(round(p["value_rank_ratio"] * Hkv * d / ng)) * ng
    recipe.require(r_k > 0 and r_v > 0, "parameters.key_rank_ratio", p["key_rank_ratio"],
                   f"large enough for a rank >= 1 per group ({ng} groups)")
    rkg, rvg = r_k // ng, r_v // ng
    ops = list(trace.ops)
    delta = 0.0
    for name, r in (("k_proj", r_k), ("v_proj", r_v)):
        for op in find_all(trace, name):
            new = _set_gemm_n(op, r)
            delta += _weight_delta(op, new, model)
            ops = replace_op(ops, op, new)
    ops = set_kv_write_width(ops, r_k + r_v)
    for attn in attention_ops(trace):
        B, S, q_len = int(attn.dims["batch"]), int(attn.dims["kv_len"]), int(attn.dims["q_len"])
        fmt = _kv_fmt(attn)
        common = dict(repeat=attn.repeat, phase=attn.phase, group=attn.group)
        Bk = TensorSpec("palu.B_k", (ng, rkg, gs * d), "bf16", "weight")
        Bv = TensorSpec("palu.B_v", (ng, rvg, gs * d), "bf16", "weight")
        delta += (Bk.nbytes + Bv.nbytes) * attn.repeat
        if is_decode_step(attn):
            # the latents' fp32 scales (a narrow cache's, workloads.kv_scales) keep their per-KV-head shape: the
            # simulation quantizes the K and V it rebuilds from the latents with one scale per KV head
            # (cosim.functional: Palu folds into W_k, W_v; kv_cache_view calibrates per head)
            ins = tuple(
                TensorSpec(t.name, (B, S, ng, rkg if t.name.startswith("k") else rvg), t.fmt, "kv")
                if t.role == "kv" and not is_kv_scale(t) else t for t in attn.inputs)
            new_attn = attn.with_(dims={**attn.dims, "v_head_dim": rvg}, inputs=ins)
            recon = Op("palu.k_reconstruct", "gemm", {"b": B * ng, "m": S, "n": gs * d, "k": rkg, "fused": True},
                       (Bk,), (), **common)
            rope = fused_op("palu.rope_cached_keys", "rope", B * Hkv * S, d, into=attn.name, **common)
            v_up = Op("palu.v_up", "gemm", {"b": H, "m": B * q_len, "n": d, "k": rvg},
                      (TensorSpec("attn_latent_out", (H, B * q_len, rvg), "bf16"), Bv),
                      (TensorSpec("attn_out_heads", (H, B * q_len, d), "bf16"),), **common)
            ops = replace_op(ops, attn, [recon, rope, new_attn, v_up])
        else:
            # prefill: latents cached; K and V of every cached token reconstructed for the FlashAttention kernel
            # each time the sequence runs (OVER_CONTEXT)
            recon = [Op(f"palu.{kv}_reconstruct", "gemm", {"b": B * ng, "m": S, "n": gs * d, "k": rg, OVER_CONTEXT: True},
                        (TensorSpec(f"{kv}_latent", (B * ng, S, rg), fmt), W),
                        (TensorSpec(f"{kv}_full", (B * ng, S, gs * d), "bf16"),), **common)
                     for kv, rg, W in (("k", rkg, Bk), ("v", rvg, Bv))]
            ops = replace_op(ops, attn, [*recon, attn])
    layers_attn = sum(a.repeat for a in attention_ops(trace))
    from workloads.formats import get_format
    kvb = get_format(_kv_fmt(attention_ops(trace)[0])).bits_per_element / 8 if attention_ops(trace) else 2.0
    # the latents' bytes per token, and each sequence's stored per-head scales (fixed bytes) spread over the capacity
    bpt = layers_attn * (r_k + r_v) * kvb + stored_scale_bytes(trace) / max(int(kv_state(trace)["capacity"]), 1)
    notes = {"rank_k": r_k, "rank_v": r_v, "groups": ng, "head_group_size": gs}
    if group_note:
        notes["note"] = group_note
    return rewrite(trace, ops, notes, weights_delta=delta, kv={"bytes_per_token": bpt})


# ---- MLA -------------------------------------------------------------------------
@register_method("mla", {
    "kv_lora_rank": Param(512, int, lambda x: x > 0, "a positive latent rank"),
    "rope_dim": Param(64, int, lambda x: x >= 0, "a non-negative number of decoupled RoPE dims"),
}, "multi-head latent attention (absorbed at decode)")
def apply_mla(trace, model, recipe):
    p = recipe.params
    if getattr(model, "mla", None):
        # already latent: the builder emitted MLA ops; nothing to convert
        return rewrite(trace, list(trace.ops), {"note": f"{model.name} is natively MLA; trace unchanged"})
    r, rope = p["kv_lora_rank"], p["rope_dim"]
    H, d = model.heads, model.head_dim
    recipe.require(rope <= d, "parameters.rope_dim", rope, f"at most head_dim ({d})")
    dl = r + rope
    ops = list(trace.ops)
    delta = 0.0
    ks, vs = find_all(trace, "k_proj"), find_all(trace, "v_proj")
    for k_op, v_op in zip(ks, vs):
        kv_a = _set_gemm_n(k_op, dl).with_(name="kv_a_proj")
        kv_a = kv_a.with_(inputs=tuple(TensorSpec("kv_a_proj.weight", t.shape, t.fmt, t.role) if t.role == "weight" else t
                                       for t in kv_a.inputs))
        delta += _weight_delta(k_op, kv_a, model) - sum(t.nbytes for t in weight_inputs(v_op)) * v_op.repeat
        ops = replace_op(ops, k_op, kv_a)
        ops = [o for o in ops if o is not v_op]
    ops = set_kv_write_width(ops, dl, latent=True)
    for attn in attention_ops(trace):
        B, S, q_len = int(attn.dims["batch"]), int(attn.dims["kv_len"]), int(attn.dims["q_len"])
        fmt = _kv_fmt(attn)
        common = dict(repeat=attn.repeat, phase=attn.phase, group=attn.group)
        W_uk = TensorSpec("q_absorb.weight", (H, d - rope, r), "bf16", "weight")
        W_uv = TensorSpec("o_absorb.weight", (H, r, d), "bf16", "weight")
        delta += (W_uk.nbytes + W_uv.nbytes) * attn.repeat
        m = B * q_len
        if is_decode_step(attn):
            q_abs = Op("q_absorb", "gemm", {"b": H, "m": m, "n": r, "k": d - rope},
                       (TensorSpec("q_nope", (H, m, d - rope), "bf16"), W_uk),
                       (TensorSpec("q_latent", (H, m, r), "bf16"),), **common)
            new_attn = attn.with_(
                dims={**attn.dims, "kv_heads": 1, "head_dim": dl, "v_head_dim": r},
                inputs=(TensorSpec("q", (B, q_len, H, dl), "bf16"), TensorSpec("k_cache", (B, S, 1, dl), fmt, "kv"),
                        *latent_scales(attn.inputs)),
                outputs=(TensorSpec("attn_latent_out", (B, q_len, H, r), "bf16"),))
            o_abs = Op("o_absorb", "gemm", {"b": H, "m": m, "n": d, "k": r},
                       (TensorSpec("attn_latent_out", (H, m, r), "bf16"), W_uv),
                       (TensorSpec("attn_out", (H, m, d), "bf16"),), **common)
            ops = replace_op(ops, attn, [q_abs, new_attn, o_abs])
        else:
            # every cached latent is expanded again each time the sequence runs (OVER_CONTEXT)
            kv_b = Op("kv_b_proj", "gemm", {"m": m, "n": H * (2 * d - rope), "k": r, OVER_CONTEXT: True},
                      (TensorSpec("kv_latent", (m, r), fmt), TensorSpec("kv_b_proj.weight", (r, H * (2 * d - rope)), "bf16", "weight")),
                      (TensorSpec("kv_full", (m, H * (2 * d - rope)), "bf16"),), **common)
            ops = replace_op(ops, attn, [kv_b, attn])
    from workloads.formats import get_format
    attn_ops = attention_ops(trace)
    kvb = get_format(_kv_fmt(attn_ops[0])).bits_per_element / 8 if attn_ops else 2.0
    # one latent a layer: one fp32 scale a layer where the cache kept per-head scales (fixed bytes per sequence)
    n_scale = sum(a.repeat for a in attn_ops if latent_scales(a.inputs)) or sum(
        w.repeat for w in find_all(trace, "kv_write") if latent_scales(w.outputs))
    bpt = sum(a.repeat for a in attn_ops) * dl * kvb + n_scale * 4 / max(int(kv_state(trace)["capacity"]), 1)
    return rewrite(trace, ops, {"latent_dim": dl, "kv_elements_per_token_layer": dl},
                   weights_delta=delta, kv={"bytes_per_token": bpt})


# ---- CLA / KVSharer ----------------------------------------------------------------
@register_method("cla", {
    "share_factor": Param(2, int, lambda x: x >= 1, "an integer >= 1 (layers per shared KV cache)"),
}, "cross-layer KV sharing: every s-th layer computes K/V")
def apply_cla(trace, model, recipe):
    s = recipe.params["share_factor"]
    ops = list(trace.ops)
    delta = 0.0
    for name in ("k_proj", "v_proj", "kv_a_proj", "kv_write"):
        for op in find_all(trace, name):
            producers = math.ceil(op.repeat / s)
            new = op.with_(repeat=producers)
            if op.kind == "gemm":
                delta -= sum(t.nbytes for t in weight_inputs(op)) * (op.repeat - producers)
            ops = replace_op(ops, op, new)
    st = kv_state(trace)
    layers = sum(a.repeat for a in attention_ops(trace)) or model.layers
    producers = math.ceil(layers / s)
    return rewrite(trace, ops, {"kv_source_layer": f"layer l reads the cache of layer s*floor(l/s), s={s}",
                                "decode_reads": "unchanged: each layer re-reads its source cache"},
                   weights_delta=delta, kv={"bytes_per_token": st["bytes_per_token"] * producers / layers})


# ---- MiniCache ---------------------------------------------------------------------
# Why MiniCache is refused on an MLA model (pricing and twin give these words): the method as published
MINICACHE_ON_MLA = ("MiniCache (arXiv 2405.14366) merges the K and V states of adjacent layers, head by head, "
                    "relying on their measured cross-layer similarity on MHA/GQA models (LLaMA-2/3, Phi-3, Mistral, "
                    "Mixtral); an MLA cache holds a latent that each layer's own up-projections expand into K and V, "
                    "and no similarity of adjacent layers' latents is published to merge on")
@register_method("minicache", {
    "start_fraction": Param(0.5, float, fraction, "a fraction of the depth in [0, 1]"),
    "retention_ratio": Param(0.05, float, fraction, "a fraction in [0, 1] of tokens kept unmerged"),
}, "cross-layer merging of K/V directions from the middle layer on")
def apply_minicache(trace, model, recipe):
    refuse_on_mla(recipe, model, MINICACHE_ON_MLA)
    p = recipe.params
    gamma = p["retention_ratio"]
    st = kv_state(trace)
    attn_ops = attention_ops(trace)
    layers = sum(a.repeat for a in attn_ops) or model.layers
    start = int(math.floor(p["start_fraction"] * layers))
    pairs = (layers - start) // 2
    merged_layers = 2 * pairs
    d = model.head_dim
    # per token, head and tensor: a merged pair stores one direction (d) + two
    # magnitudes + 2γ·d retained elements instead of 2·d
    pair_ratio = ((1 + 2 * gamma) * d + 2) / (2 * d)
    per_layer = st["bytes_per_token"] / layers
    bpt = per_layer * (layers - merged_layers) + per_layer * merged_layers * pair_ratio
    ops = list(trace.ops)
    for attn in attn_ops:
        if not merged_layers:
            break
        B, h, S = int(attn.dims["batch"]), int(attn.dims["kv_heads"]), int(attn.dims["kv_len"])
        common = dict(phase=attn.phase, group=attn.group)
        reps = max(1, round(merged_layers * attn.repeat / layers))
        if is_decode_step(attn):
            extra = [fused_op("minicache.restore", "mul", 2 * B * h * S, d, repeat=reps, into=attn.name, **common),
                     Op("minicache.retained_scatter", "copy", {"rows": max(1, int(gamma * B * h * S * 2)), "cols": d},
                        (), (), repeat=reps, **common)]
        else:  # SLERP of the two layers' normalised K and V: ~10 FLOPs per element
            extra = [Op("minicache.merge", "custom", {"flops": 10 * 2 * B * h * S * d}, (), (),
                        compute_fmt=VECTOR_FMT, repeat=max(1, reps // 2), **common)]
        ops = replace_op(ops, attn, [*extra, attn])
    return rewrite(trace, ops, {"merged_layers": merged_layers, "pair_storage_ratio": pair_ratio,
                                "decode_reads": "unchanged unless the shared direction stays on chip"},
                   kv={"bytes_per_token": bpt})


# ---- per-head projections: Eigen Attention, MatryoshkaKV ---------------------------
def _set_gemm_k(op: Op, k: int) -> Op:
    """The projection reducing over k inputs instead of dims['k'] (weights are (k, n))."""
    ins = tuple(TensorSpec(t.name, (k,) + t.shape[1:], t.fmt, t.role, t.density) if t.role == "weight"
                else TensorSpec(t.name, t.shape[:-1] + (k,), t.fmt, t.role, t.density) for t in op.inputs)
    return op.with_(dims={**op.dims, "k": k}, inputs=ins)


@register_method("head_projection", {
    "key_rank_ratio": Param(0.6, float, open_fraction, "a fraction in (0, 1] of head_dim kept for keys"),
    "value_rank_ratio": Param(0.6, float, open_fraction, "a fraction in (0, 1] of head_dim kept for values"),
    "rope_reconstruct": Param(True, bool),
}, "per-head orthogonal projections of K/V to rank r (folded into the weights)")
def apply_head_projection(trace, model, recipe):
    """Eigen Attention (arXiv 2408.05646) / MatryoshkaKV (arXiv 2410.14731): each head's
    keys and values live in an r-dim basis folded into W_k, W_v (n = Hkv·r) and, for
    values, into W_o (k = H·r_v). Without RoPE the scores run in r_k dims after a per-step
    q·U_k (2·d·r_k per head). With `rope_reconstruct` (Eigen on RoPE models) the cached
    low-dim keys are up-projected and rotated every step (2·S·r_k·d + RoPE per KV head)."""
    p = recipe.params
    recipe.require(not getattr(model, "mla", None), "method", recipe.method, "a model without MLA")
    d, H, Hkv = model.head_dim, model.heads, model.kv_heads
    rk = max(1, int(round(p["key_rank_ratio"] * d)))
    rv = max(1, int(round(p["value_rank_ratio"] * d)))
    ops = list(trace.ops)
    delta = 0.0
    for name, n in (("k_proj", Hkv * rk), ("v_proj", Hkv * rv)):
        for op in find_all(trace, name):
            new = _set_gemm_n(op, n)
            delta += _weight_delta(op, new, model)
            ops = replace_op(ops, op, new)
    for op in find_all(trace, "o_proj"):
        new = _set_gemm_k(op, H * rv)
        delta += _weight_delta(op, new, model)
        ops = replace_op(ops, op, new)
    ops = set_kv_write_width(ops, Hkv * (rk + rv))
    for attn in attention_ops(trace):
        B, S, q_len = int(attn.dims["batch"]), int(attn.dims["kv_len"]), int(attn.dims["q_len"])
        common = dict(repeat=attn.repeat, phase=attn.phase, group=attn.group)
        ins = tuple(TensorSpec(t.name, t.shape[:3] + (rk if t.name.startswith("k") else rv,), t.fmt, t.role)
                    if t.role == "kv" and len(t.shape) == 4 else t for t in attn.inputs)
        extra = []
        if is_decode_step(attn) and p["rope_reconstruct"]:
            U = TensorSpec("head_projection.U_k", (Hkv, rk, d), "bf16", "weight")
            extra = [Op("head_projection.k_reconstruct", "gemm", {"b": B * Hkv, "m": S, "n": d, "k": rk, "fused": True},
                        (U,), (), **common),
                     fused_op("head_projection.rope_cached_keys", "rope", B * Hkv * S, d, into=attn.name, **common)]
            dims = {**attn.dims, "v_head_dim": rv}
        else:
            dims = {**attn.dims, "head_dim": rk, "v_head_dim": rv}
            if is_decode_step(attn):
                U = TensorSpec("head_projection.U_q", (H, d, rk), "bf16", "weight")
                extra = [Op("head_projection.q_project", "gemm", {"b": H, "m": B * q_len, "n": rk, "k": d},
                            (TensorSpec("q", (H, B * q_len, d), "bf16"), U),
                            (TensorSpec("q_low", (H, B * q_len, rk), "bf16"),), **common)]
        outs = tuple(TensorSpec(t.name, t.shape[:-1] + (rv,), t.fmt, t.role) if len(t.shape) == 4 else t
                     for t in attn.outputs)
        ops = replace_op(ops, attn, [*extra, attn.with_(dims=dims, inputs=ins, outputs=outs)])
    attn_ops = attention_ops(trace)
    from workloads.formats import get_format
    kvb = get_format(_kv_fmt(attn_ops[0])).bits_per_element / 8 if attn_ops else 2.0
    # each head's latents, and each sequence's stored per-head scales (fixed bytes) spread over the capacity
    bpt = (sum(a.repeat for a in attn_ops) * Hkv * (rk + rv) * kvb
           + stored_scale_bytes(trace) / max(int(kv_state(trace)["capacity"]), 1))
    return rewrite(trace, ops, {"rank_k": rk, "rank_v": rv}, weights_delta=delta, kv={"bytes_per_token": bpt})
