"""Trace-rewriting helpers shared by the recipe methods.

Two ideas run through every method:

- **Bytes come from tensors.** A method changes tensor formats, shapes and densities,
  or splits one tensor into the pieces it is really stored as (codes, scales, an fp16
  window, sparse outliers), and the op's bytes follow. Formats the registry lacks (3-bit
  codes, 0.8-bit dictionary codes) are stored in a *byte container*: an ``int8`` tensor
  whose last axis counts bytes, so the byte count stays exact.
- **Capacity is not traffic.** ``meta["kv_state"]`` keeps, per sequence and layer, the
  tokens resident in the cache (`capacity`) apart from the tokens one decode step reads
  (`read`), plus the resident bytes per token over all layers and any side structures.
  ``meta["footprint"]["kv_cache"]`` is recomputed from it, so recipes compose in order
  (quantize then evict, or evict then quantize).

Fused work (a dequantize inside the attention GEMV, RoPE re-applied to cached keys
inside the attention kernel) is an op with FLOPs and *no tensors*: its bytes are
already charged to the op it is fused into, and ``dims["fused"] = True`` says so.
"""

from __future__ import annotations

import copy
import math
from typing import Iterable

from workloads.formats import get_format
from workloads.ops import Op, TensorSpec

__all__ = [
    "VECTOR_FMT",
    "snapshot", "record_effects", "rewrite", "codes_tensor", "weight_codes", "byte_tensor",
    "replace_op", "insert_after", "insert_before", "find_all", "has_op", "kv_state",
    "weight_inputs", "resident_bytes", "fused_op", "kv_format", "attention_ops", "is_decode_step",
    "expert_op", "prompt_and_generated", "gemm_weight_ops", "gemm_k_axis", "kv_write_parts", "set_kv_write_width",
    "refuse_on_mla", "MLA_TOKEN_NOTE", "is_kv_scale", "latent_scales", "stored_scale_bytes",
]

NATIVE_CODE_BITS = (2, 4, 8)
# Format tag of the recipe's own vector work (quantize, top-k, score updates). Hardware
# models run elementwise kinds on their vector pipes (fp32 where listed); tagging them
# bf16 — like the builder's elementwise ops — keeps them valid on bf16-only machines.
VECTOR_FMT = "bf16"


# ---- effects bookkeeping ----------------------------------------------------
def snapshot(trace) -> dict:
    roles: dict[str, float] = {}
    for op in trace.ops:
        for role, b in op.bytes_by_role().items():
            roles[role] = roles.get(role, 0.0) + b * op.repeat
    return {"flops": trace.total_flops, "bytes": trace.total_bytes, "bytes_by_role": roles,
            "footprint": dict(trace.meta.get("footprint") or {}), "ops": len(trace.ops)}


def record_effects(trace, recipe, before: dict):
    meta = dict(trace.meta)
    pending = meta.pop("_pending_effects", {})
    after = snapshot(trace)
    effects = dict(meta.get("recipe_effects") or {})
    key = recipe.name
    while key in effects:  # the same recipe applied twice stays visible twice
        key += "'"
    effects[key] = {
        "method": recipe.method, "citation": recipe.citation, "parameters": dict(recipe.params),
        "flops_before": before["flops"], "flops_after": after["flops"],
        "bytes_before": before["bytes"], "bytes_after": after["bytes"],
        "bytes_by_role_before": before["bytes_by_role"], "bytes_by_role_after": after["bytes_by_role"],
        "footprint_before": before["footprint"], "footprint_after": after["footprint"],
        "ops_added": after["ops"] - before["ops"], **pending,
    }
    meta["recipe_effects"] = effects
    applied = list(meta.get("recipes_applied") or [])
    applied.append(recipe.name)
    meta["recipes_applied"] = applied
    return trace.replace_ops(trace.ops, meta=meta)


def rewrite(trace, ops: Iterable[Op], notes: dict | None = None, *, weights_delta: float = 0.0,
            kv: dict | None = None, activations_delta: float = 0.0):
    """A new trace with `ops`; meta copied, footprint updated, notes queued for the
    recipe's effects entry. `kv` replaces fields of meta["kv_state"]."""
    meta = copy.deepcopy(dict(trace.meta))
    fp = dict(meta.get("footprint") or {})
    fp.setdefault("weights", 0.0)
    fp.setdefault("kv_cache", 0.0)
    fp.setdefault("activations", 0.0)
    fp["weights"] = fp["weights"] + weights_delta
    fp["activations"] = fp["activations"] + activations_delta
    notes = dict(notes or {})
    if kv is not None:
        state = dict(kv_state(trace))
        old_tr, old_bpt = float(state.get("prefill_transient", 0.0)), float(state.get("bytes_per_token", 0.0))
        state.update(kv)
        new_bpt = float(state.get("bytes_per_token", 0.0))
        if old_tr and "prefill_transient" not in kv and old_bpt and new_bpt != old_bpt:
            # an eviction's one-layer prefill transient (eviction.prefill_transient_kv) in a cache this recipe
            # re-lays without re-pricing it: scaled with the bytes per token, and said
            state["prefill_transient"] = old_tr * new_bpt / old_bpt
            fp["activations"] += state["prefill_transient"] - old_tr
            notes.setdefault("note_prefill_transient", "the evicting layer's prefill transient (the prompt's "
                             "K/V beyond the kept tokens) scaled with the cache's bytes per token "
                             f"({old_bpt:g} -> {new_bpt:g}), not re-laid out")
        meta["kv_state"] = state
        fp["kv_cache"] = trace.batch * (state["capacity"] * state["bytes_per_token"]
                                        + state.get("extra_bytes", 0.0))
    meta["footprint"] = fp
    pending = dict(meta.get("_pending_effects") or {})
    pending.update(notes)
    meta["_pending_effects"] = pending
    return trace.replace_ops(ops, meta=meta)


_ONE_CACHE = ("a KV-cache recipe sizes one cache for every layer (kv_state: the shortest decode read times the "
              "bytes per token of all layers); per-attention-group KV state is not modelled")


def mixed_kv_layers(model) -> str | None:
    """Why a KV-cache recipe cannot size this model's cache, or None: layers whose decode holds a
    different number of keys (Llama-4 chunked layers hold (S-1) % C + 1 keys beside global layers
    holding S; Gemma-2/3 and gpt-oss window layers hold min(S, W) beside full layers holding S)."""
    layers = int(getattr(model, "layers", 0) or 0)
    chunked = int(getattr(model, "chunk_layers", 0) or 0)
    windowed = int(getattr(model, "window_layers", 0) or 0)
    if chunked:
        return (f"attention_chunk (HF attention_chunk_size): got {model.attention_chunk} tokens on {chunked} of "
                f"{layers} layers; expected no chunked-attention layers: {_ONE_CACHE}")
    if 0 < windowed < layers:
        return (f"sliding_window / layer pattern: got a {model.sliding_window}-token window on {windowed} of "
                f"{layers} layers and full attention on the rest; expected every layer windowed or none: "
                f"{_ONE_CACHE}")
    return None


def kv_state(trace) -> dict:
    """Per-sequence KV state: context tokens, resident tokens per layer (capacity),
    tokens read per decode step (read), resident bytes per token over all layers,
    side-structure bytes (extra_bytes). Initialised from the builder's footprint."""
    st = trace.meta.get("kv_state")
    if st:
        return dict(st)
    seq = max(int(trace.seq), 1)
    # a sliding-window model's decode cache holds kv_len < seq tokens
    decode_lens = [int(op.dims["kv_len"]) for op in attention_ops(trace) if is_decode_step(op)]
    cached = min(decode_lens) if decode_lens else seq
    fp = trace.meta.get("footprint") or {}
    if fp.get("kv_cache"):
        bpt = float(fp["kv_cache"]) / (trace.batch * max(cached, 1))
    else:  # no footprint from the builder: derive from the attention op's cache tensors
        bpt = 0.0
        for op in attention_ops(trace):
            kvb = sum(t.nbytes for t in op.inputs if t.role == "kv")
            kv_len = max(int(op.dims.get("kv_len", seq)), 1)
            bpt += kvb / (trace.batch * kv_len) * op.repeat
    return {"context": seq, "capacity": cached, "read": cached, "bytes_per_token": bpt, "extra_bytes": 0.0}


# ---- tensors ----------------------------------------------------------------
def byte_tensor(name: str, nbytes: float, role: str, lead: tuple[int, ...] = ()) -> TensorSpec:
    """A byte container: int8 elements, the last axis counts bytes."""
    return TensorSpec(name, tuple(lead) + (int(math.ceil(nbytes)),), "int8", role)


def codes_tensor(name: str, batch: int, tokens: int, heads: int, dim: int, bits: int,
                 role: str = "kv") -> TensorSpec:
    """Quantized KV codes, (batch, tokens, heads, dim): a registered intN format when
    N is 2/4/8, else a byte container whose last axis is ceil(dim*bits/8) bytes."""
    if bits in NATIVE_CODE_BITS:
        return TensorSpec(name, (batch, tokens, heads, dim), f"int{bits}", role)
    return TensorSpec(name, (batch, tokens, heads, math.ceil(dim * bits / 8)), "int8", role)


def weight_codes(name: str, rows: int, cols: int, bits: float) -> TensorSpec:
    if bits in NATIVE_CODE_BITS:
        return TensorSpec(name, (rows, cols), f"int{int(bits)}", "weight")
    return TensorSpec(name, (rows, math.ceil(cols * bits / 8)), "int8", "weight")


def fused_op(name: str, kind: str, rows: float, cols: float, *, repeat: int, phase: str,
             group: str, into: str, compute_fmt: str = VECTOR_FMT) -> Op:
    """Work fused into op `into`: FLOPs only, its bytes are charged to `into`."""
    return Op(name=name, kind=kind, dims={"rows": int(rows), "cols": int(cols), "fused": True},
              inputs=(), outputs=(), compute_fmt=compute_fmt, repeat=repeat, phase=phase,
              group=group)


def kv_format(trace) -> str:
    """The format the builder stored the KV cache in."""
    for op in attention_ops(trace):
        for t in op.inputs:
            if t.role == "kv":
                return t.fmt
    for op in trace.ops:
        if op.name == "kv_write":
            for t in op.outputs:
                if t.role == "kv":
                    return t.fmt
    return "bf16"


# ---- ops ----------------------------------------------------------------------
def attention_ops(trace) -> list[Op]:
    return [op for op in trace.ops if op.kind == "attention"]


def is_decode_step(op: Op) -> bool:
    """A decode step's attention (new tokens reading the cache), told by the op's phase: q_len 1 alone would take a
    one-token prefill (a serving chunk of one token, priced from a 1-token prefill trace) for a decode step and
    price it with a recipe's per-step ops (H2O's score accumulation and argmin) instead of the prompt's. An op
    built without a phase (hand-made ones) is read by its single query."""
    return op.phase == "decode" if op.phase else int(op.dims.get("q_len", 1)) == 1


def prompt_and_generated(trace) -> tuple[int, int]:
    """(prompt tokens, generated tokens) of a trace's context: a decode trace built with a prompt_len (workloads.
    builder) splits its `seq` tokens so; any other reads them all as one prompt. What a recipe compressing the
    prompt alone (SnapKV, FastKV) needs: its reference code appends generated tokens to the kept ones whole."""
    seq = int(trace.seq)
    p = int(trace.meta.get("prompt_len") or seq) if trace.phase == "decode" else seq
    return p, seq - p


def find_all(trace, name: str) -> list[Op]:
    return [op for op in trace.ops if op.name == name]


def has_op(trace, name: str) -> bool:
    return any(op.name == name for op in trace.ops)


def replace_op(ops: list[Op], old: Op, new: Op | list[Op]) -> list[Op]:
    new = [new] if isinstance(new, Op) else list(new)
    out = []
    for op in ops:
        out.extend(new if op is old else [op])
    return out


def insert_after(ops: list[Op], anchor: Op, extra: list[Op]) -> list[Op]:
    out = []
    for op in ops:
        out.append(op)
        if op is anchor:
            out.extend(extra)
    return out


def insert_before(ops: list[Op], anchor: Op, extra: list[Op]) -> list[Op]:
    out = []
    for op in ops:
        if op is anchor:
            out.extend(extra)
        out.append(op)
    return out


def weight_inputs(op: Op) -> list[TensorSpec]:
    return [t for t in op.inputs if t.role == "weight"]


def expert_op(op: Op) -> bool:
    return op.name.startswith("expert_")


def gemm_weight_ops(trace, include_lm_head: bool = False) -> list[Op]:
    out = []
    for op in trace.ops:
        if op.kind != "gemm" or not weight_inputs(op):
            continue
        if op.name == "lm_head" and not include_lm_head:
            continue
        out.append(op)
    return out


def resident_bytes(tensors, op: Op) -> float:
    """Bytes these weight tensors occupy in memory over all of `op`'s repeats. A
    routed-expert weight covers every expert and its `density` is the fraction a step
    touches (traffic), so residency ignores density (TensorSpec.stored_bytes: a short last group and a
    per-tensor scale counted as the ops count them)."""
    return sum(t.stored_bytes for t in tensors) * op.repeat


def gemm_k_axis(op: Op, w: TensorSpec) -> int:
    """Which axis of weight `w` is the reduction (k) axis."""
    k = int(op.dims["k"])
    if len(w.shape) >= 2:
        if w.shape[-2] == k:
            return len(w.shape) - 2
        if w.shape[-1] == k:
            return len(w.shape) - 1
    raise ValueError(f"op {op.name}: weight {w.name} shape {w.shape} has no axis of size k={k}")


def kv_write_parts(trace, model) -> list[tuple[str, int, int, int, int]]:
    """What one kv_write stores, as (name, batch, tokens, heads, dim) cache pieces: K and
    V per KV head, or MLA's single latent (kv_lora_rank + rope dims, one 'head')."""
    B = trace.batch
    n = trace.seq if trace.phase == "prefill" else 1
    mla = getattr(model, "mla", None)
    if mla:
        return [("k_cache", B, n, 1, mla.kv_lora_rank + mla.qk_rope_head_dim)]
    return [("k_cache", B, n, model.kv_heads, model.head_dim), ("v_cache", B, n, model.kv_heads, model.head_dim)]


MLA_TOKEN_NOTE = ("MLA: one latent per token (kv_lora_rank + RoPE dims) serves as K and V; "
                  "compressed as one tensor, alike for K and V")


def refuse_on_mla(recipe, model, why: str) -> None:
    """MLA caches one latent per token that is both the keys and (absorbed) the values,
    with no KV heads. A method whose rule differs between K and V, or that works per KV
    head, has no faithful form on it: refused, saying why. Token-level methods
    (eviction, one format for the whole cache) apply to the latent with MLA_TOKEN_NOTE."""
    if getattr(model, "mla", None):
        recipe.fail("method", recipe.method,
                    f"a model with separate K and V heads: {model.name} is MLA (one latent of "
                    f"{model.mla.kv_lora_rank} + {model.mla.qk_rope_head_dim} RoPE dims per token serves as both "
                    f"K and V, shared by all heads), and {why}")


def is_kv_scale(t: TensorSpec) -> bool:
    """A cache's fp32 scale tensor (workloads.kv_scales: one per KV head or one per tensor, no token axis)."""
    return t.name.endswith(".scale")


def latent_scales(tensors) -> tuple:
    """The scales of one latent cache (MLA: one latent serves as K and V): one fp32 scale, named for the
    latent (k_cache.scale, as the builder names MLA's), where the cache had scales; none where it had none."""
    sc = [t for t in tensors if is_kv_scale(t)]
    return (TensorSpec("k_cache.scale", (1,), sc[0].fmt, sc[0].role),) if sc else ()


def stored_scale_bytes(trace) -> float:
    """One sequence's stored cache scales over every layer (the `.scale` tensors of the decode attention, else of
    prefill's kv_write): fixed bytes that neither a narrower latent nor a token count changes."""
    decode = [a for a in attention_ops(trace) if is_decode_step(a)]
    src = [(a, a.inputs) for a in decode] or [(w, w.outputs) for w in trace.ops if w.name == "kv_write"]
    return float(sum(t.nbytes * op.repeat for op, ts in src for t in ts if is_kv_scale(t)))


def set_kv_write_width(ops: list[Op], width: int, latent: bool = False) -> list[Op]:
    """kv_write stores `width` elements per token (a latent instead of K and V). Its `.scale` outputs (a
    prompt's calibrated per-head scales) keep their shape; `latent`: one latent (MLA) has one scale."""
    for w in [op for op in ops if op.name == "kv_write"]:
        ins = tuple(TensorSpec(t.name, t.shape[:-1] + (width,), t.fmt, t.role, t.density) for t in w.inputs)
        outs = tuple(TensorSpec(t.name, t.shape[:-1] + (width,), t.fmt, t.role, t.density) for t in w.outputs
                     if not is_kv_scale(t))
        outs += latent_scales(w.outputs) if latent else tuple(t for t in w.outputs if is_kv_scale(t))
        dims = {**w.dims, "cols": width} if "cols" in w.dims else w.dims
        ops = replace_op(ops, w, w.with_(dims=dims, inputs=ins, outputs=outs))
    return ops


# ---- unfused attention (build_trace(attention="unfused")) -------------------------
def fuse_unfused_attention(trace):
    """View the builder's unfused attention (attn_scores GEMM, attn_softmax, attn_pv
    GEMM) as one attention op (dims["unfused"] = True), so every KV method rewrites a
    single op; `unfuse_attention` splits it back afterwards. Returns (trace, changed)."""
    names = [op.name for op in trace.ops]
    if "attn_scores" not in names or "attn_pv" not in names:
        return trace, False
    ops = list(trace.ops)
    for sc in [op for op in trace.ops if op.name == "attn_scores"]:
        i = ops.index(sc)
        sm, pv = ops[i + 1], ops[i + 2]
        if sm.name != "attn_softmax" or pv.name != "attn_pv":
            continue
        q, kc = sc.inputs[0], sc.inputs[1]
        v_in = pv.inputs[1]
        # a narrow cache's fp32 scales (workloads.kv_scales) ride with their cache: K's on the score GEMM, V's on
        # the PV GEMM; `unfuse_attention` hands them back by name
        ks = tuple(t for t in sc.inputs[2:] if is_kv_scale(t))
        vs = tuple(t for t in pv.inputs[2:] if is_kv_scale(t))
        B, q_len, H, d = q.shape
        dims = {"batch": B, "heads": H, "kv_heads": kc.shape[2], "q_len": q_len, "kv_len": int(sc.dims["n"]),
                "head_dim": d, "causal": True, "unfused": True}
        if int(pv.dims["n"]) != d:
            dims["v_head_dim"] = int(pv.dims["n"])
        ins = (q, kc, *ks) if v_in is kc or v_in == kc else (q, kc, *ks, v_in, *vs)
        fused = Op("attention", "attention", dims, ins, pv.outputs, sc.compute_fmt, sc.repeat, sc.phase, sc.group)
        ops[i:i + 3] = [fused]
    return trace.replace_ops(ops), True


def unfuse_attention(trace):
    ops = []
    for op in trace.ops:
        if op.kind != "attention" or not op.dims.get("unfused"):
            ops.append(op)
            continue
        d = op.dims
        B, H, q_len, n, hd = (int(d[k]) for k in ("batch", "heads", "q_len", "kv_len", "head_dim"))
        dv = int(d.get("v_head_dim", hd))
        q = next((t for t in op.inputs if t.name == "q"), op.inputs[0])
        kv = [t for t in op.inputs if t is not q and t.role != "activation" or t.name.startswith(("k_cache", "v_cache"))]
        kv = [t for t in kv if t is not q]
        k_in = [t for t in kv if t.name.startswith("k")] or kv
        v_in = [t for t in kv if t.name.startswith("v")] or k_in
        extra = {k: v for k, v in d.items() if k in ("gather", "kv_capacity")}
        scores = TensorSpec("attn_scores.out", (B * H, q_len, n), q.fmt)
        probs = TensorSpec("attn_softmax.out", (B * H, q_len, n), q.fmt)
        outs = tuple(t for t in op.outputs if t.name != "attn_probs")
        common = dict(repeat=op.repeat, phase=op.phase, group=op.group)
        ops += [Op("attn_scores", "gemm", {"b": B * H, "m": q_len, "n": n, "k": hd, **extra}, (q, *k_in), (scores,),
                   op.compute_fmt, **common),
                Op("attn_softmax", "softmax", {"rows": B * H * q_len, "cols": n}, (scores,), (probs,), q.fmt, **common),
                Op("attn_pv", "gemm", {"b": B * H, "m": q_len, "n": dv, "k": n, **extra}, (probs, *v_in), outs,
                   op.compute_fmt, **common)]
    return trace.replace_ops(ops)
