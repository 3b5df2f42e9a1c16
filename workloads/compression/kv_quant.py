"""KV-cache quantization: KIVI, KVQuant, MX/FP8 caches, salient-token mixed precision.

Each method describes how `n` cached tokens of one tensor (K or V, shape
(batch, n, kv_heads, head_dim)) are really stored — a list of tensors: codes, scales
and zero points, an fp16 window, sinks, codebooks, outliers — and the per-step work it
adds. The shared driver then:

- decode: replaces the attention op's `k_cache`/`v_cache` by those tensors at the
  tokens the step reads (kv_len), adds a dequantize fused into the attention kernel and
  the method's per-step ops (quantize the new token, RoPE on cached keys, SpMV …);
- prefill: the attention runs on the fresh full-precision K/V; the `kv_write` now
  writes the compressed representation, with a fused quantize;
- footprint: resident bytes per token recomputed at the cache's capacity.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

from workloads.compression.common import (MLA_TOKEN_NOTE, VECTOR_FMT, attention_ops, byte_tensor, codes_tensor,
                                          find_all, fused_op, insert_after, is_decode_step, kv_state, kv_write_parts,
                                          refuse_on_mla, replace_op, rewrite)
from workloads.compression.registry import METHODS, Param, bits, fraction, register_method, registered_format
from workloads.formats import get_format
from workloads.kv_scales import kv_scale_granularity, kv_scale_tensors  # one rule with the builder
from workloads.ops import PER_PROMPT, Op, TensorSpec

Repr = Callable[[str, int, int, int, int, str], list]  # (name, batch, n, heads, dim, fmt) -> tensors


def _is_key(name: str) -> bool:
    return name.startswith("k")


def _kv_inputs(op: Op) -> list[TensorSpec]:
    return [t for t in op.inputs if t.role == "kv"]


def _flag_format_note(trace, recipe) -> dict:
    """Never silent: a narrow KV format the trace was built in (--kv) beside a method storing the cache its own
    way is not how it is priced: said (the real-checkpoint accuracy path refuses the pair)."""
    fmts = {t.fmt for op in trace.ops if op.name == "kv_write" for t in op.outputs if t.role == "kv"}
    narrow = sorted(f for f in fmts if get_format(f).element_bits < 16)
    if not narrow:
        return {}
    return {"note_kv_format": f"kv {'/'.join(narrow)} given beside {recipe.name}, which stores the cache in its own "
                              f"representation: priced as {recipe.name} lays it out (the run's kv column names the "
                              f"format given; the real-checkpoint accuracy path refuses the pair)"}


def apply_kv_repr(trace, model, recipe, repr_fn: Repr, step_ops: Callable, notes: dict,
                  quantized_elems: Callable[[str, int], int], write_repr: Repr | None = None,
                  prompt_quantize: bool = False):
    """Shared driver. `step_ops(attn_op, n_read) -> list[Op]` are the method's extra
    decode ops; `quantized_elems(name, n)` counts elements per (batch, head) the fused
    dequantize touches; `write_repr`, when given, is how a decode step's new token is
    written (methods without an fp16 window write it compressed). `prompt_quantize`: the
    prompt's quantize needs the whole prompt first (a saliency split, a global outlier
    selection) and runs once after its last token (ops.PER_PROMPT), not token by token."""
    ops = list(trace.ops)
    st = kv_state(trace)
    cap = max(int(st["capacity"]), 1)
    notes = {**notes, **_flag_format_note(trace, recipe)}
    transient = _repriced_transient(trace, model, st, repr_fn)
    resident_bpt = 0.0
    decode = False
    # resident bytes per token and sequence: what each layer's kv_write stores, at capacity
    for w in [op for op in trace.ops if op.name == "kv_write"]:
        fmt = next((t.fmt for t in w.outputs if t.role == "kv"), "bf16")
        for name, _, _, h, dd in kv_write_parts(trace, model):
            resident_bpt += sum(x.nbytes for x in repr_fn(name, 1, cap, h, dd, fmt)) / cap * w.repeat
    for attn in attention_ops(trace):
        B = int(attn.dims["batch"])
        h = int(attn.dims["kv_heads"])
        if not is_decode_step(attn):
            continue
        decode = True
        n_read = int(attn.dims["kv_len"])
        # a top-k gather (RocketKV) reads k of the `kv_capacity` stored tokens: lay the
        # cache out at its capacity, then take the read share of every piece
        gathered = bool(attn.dims.get("gather")) and int(attn.dims.get("kv_capacity", 0)) > n_read
        n = int(attn.dims["kv_capacity"]) if gathered else n_read
        new_inputs = []
        deq_elems = 0
        for t in attn.inputs:
            if t.role != "kv":
                new_inputs.append(t)
                continue
            if t.name.endswith(".scale"):  # the plain `kv:` format's scales (builder): the method lays out its own
                continue
            dd = t.shape[-1]
            new_inputs.extend(repr_fn(t.name, B, n, h, dd, t.fmt))
            deq_elems += B * h * dd * quantized_elems(t.name, n) * n_read / n
        new_attn = attn.with_(inputs=tuple(new_inputs))
        if gathered:
            from workloads.compression.eviction import resize_kv_read
            new_attn = resize_kv_read(new_attn.with_(dims={**attn.dims, "kv_len": n}), n_read, proportional=True)
        deq = fused_op(f"{recipe.name}.dequant", "dequantize", 1, deq_elems, repeat=attn.repeat,
                       phase=attn.phase, group=attn.group, into=attn.name)
        ops = replace_op(ops, attn, [*step_ops(attn, n), new_attn, deq])
    if decode:
        if write_repr is not None:
            ops = _rewrite_writes(trace, model, ops, write_repr, recipe, fused_quantize=False)
    else:
        ops = _rewrite_writes(trace, model, ops, repr_fn, recipe, fused_quantize=True, per_prompt=prompt_quantize)
    return rewrite(trace, ops, notes, kv={"bytes_per_token": resident_bpt, **transient},
                   activations_delta=transient.get("prefill_transient", 0.0) - float(st.get("prefill_transient", 0.0)))


def _repriced_transient(trace, model, st: dict, repr_fn: Repr) -> dict:
    """An eviction before this format (h2o+fp8_kv) left a one-layer prefill transient
    (eviction.prefill_transient_kv) priced in the old format: re-price it in this one, batch x
    (one layer's pieces at the prompt's tokens − at the kept capacity); {} with none."""
    if trace.phase != "prefill" or not st.get("prefill_transient"):
        return {}
    w = next((op for op in trace.ops if op.name == "kv_write"), None)
    if w is None:
        return {}
    fmt = next((t.fmt for t in w.outputs if t.role == "kv"), "bf16")
    P, cap = int(st["prefill_tokens"]), max(int(st["capacity"]), 1)

    def layer(n):
        return sum(x.nbytes for name, _, _, h, dd in kv_write_parts(trace, model) for x in repr_fn(name, 1, n, h, dd, fmt))
    return {"prefill_transient": trace.batch * max(layer(P) - layer(cap), 0.0)}


def _rewrite_writes(trace, model, ops, repr_fn, recipe, fused_quantize: bool, per_prompt: bool = False):
    """kv_write stores the compressed representation (prefill: all Sp tokens; decode:
    the new token, for methods without an fp16 window)."""
    parts = kv_write_parts(trace, model)
    for w in [op for op in ops if op.name == "kv_write"]:
        kv_out = [t for t in w.outputs if t.role == "kv"]
        fmt = kv_out[0].fmt if kv_out else "bf16"
        outs = [t for t in w.outputs if t.role != "kv"]
        elems = 0
        for name, B, n, h, dd in parts:
            pieces = repr_fn(name, B, n, h, dd, fmt)
            if w.phase == "decode":  # per-head / per-tensor scales are fixed by the prompt: a decode step writes none
                pieces = [t for t in pieces if not t.name.endswith(".scale")]
            outs.extend(pieces)
            elems += B * n * h * dd
        repl = [w.with_(outputs=tuple(outs))]
        if fused_quantize:
            q = fused_op(f"{recipe.name}.quantize", "quantize", 1, elems, repeat=w.repeat,
                         phase=w.phase, group=w.group, into=w.name)
            repl.append(q.with_(dims={**q.dims, PER_PROMPT: True}) if per_prompt else q)
        ops = replace_op(ops, w, repl)
    return ops


def _step_op(name, kind, B, h, cols, ins, outs, attn, fmt=None):
    return Op(name, kind, {"rows": B * h, "cols": cols}, tuple(ins), tuple(outs), compute_fmt=fmt or VECTOR_FMT,
              repeat=attn.repeat, phase=attn.phase, group=attn.group)


# ---- KIVI ---------------------------------------------------------------------
def kivi_key_bytes(n: int, d: int, b: int, G: int, R: int, res_bytes: float = 2.0) -> float:
    """Doc §1.1: K bytes per KV head with n cached tokens: quantized per channel in
    chunks of R, the last n mod R keys still fp16."""
    rk = n % R
    return (n - rk) * d * b / 8 + (n - rk) / G * d * 4 + rk * d * res_bytes


def kivi_value_bytes(n: int, d: int, b: int, G: int, R: int, res_bytes: float = 2.0) -> float:
    """Doc §1.1: V bytes per KV head: the most recent R tokens fp16, older per token."""
    rv = min(n, R)
    return (n - rv) * d * b / 8 + (n - rv) * (d / G) * 4 + rv * d * res_bytes


def _kivi_validate(recipe):
    p = recipe.params
    recipe.require(p["residual_length"] % p["group_size"] == 0, "parameters.residual_length",
                   p["residual_length"], f"a multiple of group_size ({p['group_size']}), as KIVI asserts")


@register_method("kivi", {
    "k_bits": Param(2, int, bits, "1..16 bits"),
    "v_bits": Param(2, int, bits, "1..16 bits"),
    "group_size": Param(32, int, lambda x: x > 0, "a positive group size"),
    "residual_length": Param(128, int, lambda x: x >= 0, "a non-negative token count"),
}, "KIVI: keys per channel, values per token, fp16 recent window", validate=_kivi_validate, stores_kv=True)
def apply_kivi(trace, model, recipe):
    refuse_on_mla(recipe, model, "KIVI quantizes keys per channel and values per token with an fp16 value window")
    p = recipe.params
    G, R = p["group_size"], p["residual_length"]

    def repr_fn(name, B, n, h, d, fmt):
        if _is_key(name):
            rk = n % R if R else 0
            nq = n - rk
            return [codes_tensor(name, B, nq, h, d, p["k_bits"]),
                    TensorSpec(f"{name}.scale_zero", (B, nq // G, h, 2 * d), "fp16", "kv"),
                    TensorSpec(f"{name}.residual", (B, rk, h, d), fmt, "kv")]
        recipe.require(d % G == 0, "parameters.group_size", G,
                       f"a divisor of the head dimension {d} (values are grouped along channels)")
        rv = min(n, R)
        nq = n - rv
        return [codes_tensor(name, B, nq, h, d, p["v_bits"]),
                TensorSpec(f"{name}.scale_zero", (B, nq, h, 2 * d // G), "fp16", "kv"),
                TensorSpec(f"{name}.residual", (B, rv, h, d), fmt, "kv")]

    def quantized(name, n):
        return n - (n % R if R else 0) if _is_key(name) else n - min(n, R)

    def step_ops(attn, n):
        B, h, d = int(attn.dims["batch"]), int(attn.dims["kv_heads"]), int(attn.dims["head_dim"])
        fmt = next(t.fmt for t in _kv_inputs(attn))
        ops = [
            # the oldest fp16 value leaves the window: quantize it per token
            _step_op(f"{recipe.name}.v_quantize", "quantize", B, h, d,
                     [TensorSpec("v_oldest", (B, 1, h, d), fmt, "kv")],
                     [codes_tensor("v_code", B, 1, h, d, p["v_bits"]),
                      TensorSpec("v_scale_zero", (B, 1, h, 2 * d // G), "fp16", "kv")], attn)]
        if R:
            # every R steps R keys are quantized per channel; per step that is d
            # elements per head on average (amortised: density 1/G for the statistics)
            ops.append(Op(f"{recipe.name}.k_chunk_quantize", "quantize",
                          {"rows": B * h, "cols": d, "every": R},
                          (TensorSpec("k_chunk", (B, 1, h, d), fmt, "kv"),),
                          (codes_tensor("k_chunk_code", B, 1, h, d, p["k_bits"]),
                           TensorSpec("k_chunk_scale_zero", (B, 1, h, 2 * d), "fp16", "kv", 1.0 / G)),
                          compute_fmt=VECTOR_FMT, repeat=attn.repeat, phase=attn.phase, group=attn.group))
        return ops

    d = model.head_dim
    n = int(trace.seq)
    notes = {"k_bytes_per_head": kivi_key_bytes(n, d, p["k_bits"], G, R),
             "v_bytes_per_head": kivi_value_bytes(n, d, p["v_bits"], G, R), "at_tokens": n}
    return apply_kv_repr(trace, model, recipe, repr_fn, step_ops, notes, quantized)


# ---- GEAR ----------------------------------------------------------------------
def _gear_validate(recipe):
    p = recipe.params
    recipe.require(p["streaming_gap"] % p["group_size"] == 0, "parameters.streaming_gap", p["streaming_gap"],
                   f"a multiple of group_size ({p['group_size']}): keys are quantized per channel in whole groups")


@dataclass(frozen=True)
class GearLowRank:
    """GEAR's low-rank residual for one KV head and tensor (`gear_lowrank`)."""
    prompt_tokens: int  # compressed at prefill with one rank-prefill_rank pair
    decode_chunks: int  # whole `gap` chunks of generated tokens, each with its own rank-`rank` pair
    elements: int  # fp16 factor elements: (prompt_tokens + d)·prefill_rank + decode_chunks·(gap + d)·rank


def gear_lowrank(n: int, d: int, gap: int, prefill_rank: int, rank: int, generated: int) -> GearLowRank:
    """GEAR's low-rank residual factors per KV head and tensor (K or V) with n cached
    tokens, the last `generated` of them produced by decoding. GEAR (arXiv 2403.05527,
    streaming buffer) compresses the prompt at prefill with one rank-`prefill_rank` factor
    pair (A: tokens×r, B: d×r) and, while decoding, every `gap` new tokens as one chunk
    with its own rank-`rank` pair; the last n mod gap tokens wait in the fp16 buffer. So
    (n_p + d)·r_p + chunks·(gap + d)·r fp16 elements, where the decode chunks are the whole
    gaps among the generated tokens and n_p the other compressed tokens. n 8192, d 128,
    gap 64, r_p 4, r 2, 256 generated: 4 chunks, n_p 7936: 8064·4 + 4·192·2 = 33,792. The
    pricing lays the factors out from it and its notes are its fields."""
    nq = n - n % gap
    chunks = min(max(generated, 0), nq) // gap
    n_p = nq - chunks * gap
    return GearLowRank(n_p, chunks, ((n_p + d) * prefill_rank if n_p else 0) + chunks * (gap + d) * rank)


@register_method("gear", {
    "bits": Param(2, int, bits, "1..16 bits"),
    "group_size": Param(64, int, lambda x: x > 0, "a positive group size"),
    "rank": Param(2, int, lambda x: x >= 0, "a non-negative rank (decode chunks)"),
    "prefill_rank": Param(4, int, lambda x: x >= 0, "a non-negative rank (the prompt)"),
    "power_iterations": Param(3, int, lambda x: x >= 1, "a positive iteration count"),
    "outlier_fraction": Param(0.02, float, fraction, "a fraction in [0, 1]"),
    "streaming_gap": Param(64, int, lambda x: x > 0, "a positive token count"),
    # how many of a decode step's cached tokens were generated (compressed in decode chunks
    # at `rank`); the rest is the prompt (at prefill_rank). Prefill traces generate none.
    "new_tokens": Param(256, int, lambda x: x >= 0, "a non-negative number of generated tokens"),
}, "GEAR: low-bit backbone + low-rank residual + sparse outliers, compressed every gap tokens",
    validate=_gear_validate, stores_kv=True)
def apply_gear(trace, model, recipe):
    """X ≈ Q(X) + A·Bᵀ + S (doc §1.1): a KIVI-style backbone (keys per channel, values
    per token, groups of G), a low-rank residual (`gear_lowrank`: the prompt at
    prefill_rank, each decode chunk of `gap` generated tokens at rank), the outlier
    fraction as fp16 values + int32 indices, and an fp16 streaming buffer of up to `gap`
    tokens compressed every `gap` steps. Decode applies the correction without
    reconstructing: q·Kᵀ = q·deq(Q)ᵀ + (q·B)·Aᵀ + q·Sᵀ."""
    refuse_on_mla(recipe, model, "GEAR's backbone quantizes keys per channel and values per token")
    p = recipe.params
    G, gap, b, f = p["group_size"], p["streaming_gap"], p["bits"], p["outlier_fraction"]
    generated = p["new_tokens"] if trace.phase != "prefill" else 0

    def lowrank(n, d):
        return gear_lowrank(n, d, gap, p["prefill_rank"], p["rank"], generated).elements

    def repr_fn(name, B, n, h, d, fmt):
        recipe.require(d % G == 0 or _is_key(name), "parameters.group_size", G,
                       f"a divisor of the head dimension {d} (values are grouped along channels)")
        rb = n % gap
        nq = n - rb
        nnz = int(round(f * B * nq * h * d))
        stats = (TensorSpec(f"{name}.scale_zero", (B, nq // G, h, 2 * d), "fp16", "kv") if _is_key(name)
                 else TensorSpec(f"{name}.scale_zero", (B, nq, h, 2 * d // G), "fp16", "kv"))
        return [codes_tensor(name, B, nq, h, d, b), stats,
                TensorSpec(f"{name}.lowrank", (B, h, lowrank(n, d)), "fp16", "kv"),
                TensorSpec(f"{name}.outlier_values", (nnz,), "fp16", "kv"),
                byte_tensor(f"{name}.outlier_index", nnz * 4, "kv"),
                TensorSpec(f"{name}.residual", (B, rb, h, d), fmt, "kv")]

    def quantized(name, n):
        return n - n % gap

    def step_ops(attn, n):
        B, h, d = int(attn.dims["batch"]), int(attn.dims["kv_heads"]), int(attn.dims["head_dim"])
        g = int(attn.dims["heads"]) // h
        nq = n - n % gap
        nnz = f * nq * d
        common = dict(compute_fmt=VECTOR_FMT, repeat=attn.repeat, phase=attn.phase, group=attn.group)
        return [
            # (q·B)·Aᵀ for K and (p·A)·Bᵀ for V, per query head: 2 FLOPs per factor element
            Op(f"{recipe.name}.lowrank_correction", "custom", {"flops": 2 * B * h * g * 2 * lowrank(n, d)}, (), (),
               **common),
            Op(f"{recipe.name}.outlier_spmv", "custom", {"flops": 2 * B * h * g * 2 * nnz}, (), (), **common),
            # every `gap` steps: power-iteration SVD (loop·4·gap·d·r), top-f selection and
            # quantization of the buffered chunk, for K and V; amortised per step
            Op(f"{recipe.name}.chunk_compress", "custom",
               {"flops": 2 * B * h * (p["power_iterations"] * 4 * d * p["rank"] + 2 * d + 4 * d), "every": gap},
               (), (), **common),
        ]

    n_ctx, d0 = int(trace.seq), model.head_dim
    lr = gear_lowrank(n_ctx, d0, gap, p["prefill_rank"], p["rank"], generated)  # what lowrank() lays out
    # the prompt is compressed in one pass after its last token (outliers: the top fraction of the whole
    # prompt's K / V; the backbone quantized; the residual's SVD): PER_PROMPT
    out = apply_kv_repr(trace, model, recipe, repr_fn, step_ops,
                        {"decode_chunks": lr.decode_chunks, "prompt_tokens_at_prefill_rank": lr.prompt_tokens,
                         "lowrank_elements_per_head": lr.elements}, quantized, prompt_quantize=True)
    # bits per cached K/V element of the priced layout (codes, stats, low-rank factors, outliers, fp16 buffer)
    # (K/V elements one layer caches per token) x (layers that write the cache)
    elems = (sum(h * dd for _, _, _, h, dd in kv_write_parts(trace, model))
             * sum(w.repeat for w in find_all(trace, "kv_write")))
    if elems:
        out = rewrite(out, out.ops, {"bits_per_element": kv_state(out)["bytes_per_token"] * 8 / elems})
    if trace.phase == "prefill":  # SVD of the prompt's residual and its outlier selection
        ops = list(out.ops)
        for w in [o for o in ops if o.name == "kv_write"]:
            elems = sum(t.numel for t in w.inputs)
            svd = Op(f"{recipe.name}.prompt_svd", "custom",
                     {"flops": p["power_iterations"] * 4 * elems * p["prefill_rank"], PER_PROMPT: True}, (), (),
                     compute_fmt="bf16", repeat=w.repeat, phase=w.phase, group=w.group)
            sel = fused_op(f"{recipe.name}.outlier_select", "topk", 1, elems, repeat=w.repeat, phase=w.phase,
                           group=w.group, into=w.name)
            sel = sel.with_(dims={**sel.dims, PER_PROMPT: True})
            ops = insert_after(ops, w, [svd, sel])
        out = out.replace_ops(ops)
    return out


# ---- MX / FP8 / any registered format ----------------------------------------
_check_format = registered_format  # one definition, in the method registry


def _format_or_empty(name) -> bool:
    return name == "" or _check_format(name)


def kv_format_store(params) -> dict:
    """How a kv_format recipe part's ``params`` store the KV cache, the one reading of them (pricing here, the
    real-checkpoint numerics, the KV twins and the attention figure all call it): {"key": K's format, "value": V's
    format, "scale": "head"/"tensor"/"none", "channel_sort": bool} (cosim.functional.compression.twin.kv_store_twin's
    ``store``). key_format / value_format '' mean ``format``; a parameter not given takes the registered default
    (load_recipe fills them all, so only a hand-built mapping lacks one)."""
    schema = METHODS["kv_format"].params
    p = {k: params.get(k, spec.default) for k, spec in schema.items()}
    return {"key": p["key_format"] or p["format"], "value": p["value_format"] or p["format"],
            "scale": p["scale"], "channel_sort": bool(p["channel_sort"])}


@register_method("kv_format", {
    "format": Param("fp8_e4m3", str, _check_format, "a registered number format"),
    "key_format": Param("", str, _format_or_empty, "'' (use format) or a registered number format"),
    "value_format": Param("", str, _format_or_empty, "'' (use format) or a registered number format"),
    # a bare FP8/FP6/FP4 cache keeps fp32 scales (amax / max normal), as vLLM's and
    # TensorRT-LLM's FP8 KV caches do; block formats carry their own and ignore this
    "scale": Param("head", str, choices=("head", "tensor", "none")),
    # K-sort (Trukhanov & Soloveychik, arXiv 2403.20137): K channels reordered so each
    # block holds similar magnitudes; the permutation is folded offline into W_q / W_k
    # (and RoPE's pair table), so it adds no bytes and no runtime op here; the accuracy
    # twins quantize the keys in sorted channel order
    "channel_sort": Param(False, bool),
}, "KV cache stored in a registered format (FP8, MXFP8/6/4, NVFP4, BFP); K and V may differ", stores_kv=True)
def apply_kv_format(trace, model, recipe):
    p = recipe.params
    store = kv_format_store(p)
    fmts = {"k": store["key"], "v": store["value"]}
    mla = bool(getattr(model, "mla", None))
    if fmts["k"] != fmts["v"]:
        refuse_on_mla(recipe, model, f"key_format {fmts['k']} differs from value_format {fmts['v']} "
                                     "(give one format for the latent)")

    def repr_fn(name, B, n, h, d, old):
        key = "key_format" if _is_key(name) else "value_format"
        fmt = fmts["k" if _is_key(name) else "v"]
        f = get_format(fmt)
        if f.block_size:
            fld = f"parameters.{key}" if p[key] else "parameters.format"
            recipe.require(d % f.block_size == 0, fld, fmt,
                           f"a format whose block size ({f.block_size}) divides the head dimension {d}")
        return [TensorSpec(name, (B, n, h, d), fmt, "kv"), *kv_scale_tensors(name, h, f, store["scale"])]

    def step_ops(attn, n):
        B, h, d = int(attn.dims["batch"]), int(attn.dims["kv_heads"]), int(attn.dims["head_dim"])
        # the new token's K and V (MLA: its one latent) are cast on the way into the cache
        return [fused_op(f"{recipe.name}.quantize_new", "quantize", (1 if mla else 2) * B * h, d, repeat=attn.repeat,
                         phase=attn.phase, group=attn.group, into="kv_write")]

    bits = {k: get_format(v).bits_per_element for k, v in fmts.items()}
    scales = {k: kv_scale_granularity(get_format(v), store["scale"]) for k, v in fmts.items()}
    notes = {"key_bits_per_element": bits["k"], "value_bits_per_element": bits["v"],
             "key_scale": scales["k"], "value_scale": scales["v"]}
    if mla:
        notes["note"] = MLA_TOKEN_NOTE
    return apply_kv_repr(trace, model, recipe, repr_fn, step_ops, notes, lambda name, n: n, write_repr=repr_fn)


# ---- KVQuant ------------------------------------------------------------------
def kvquant_bits_per_element(bits: int, outlier_fraction: float, index_bits: int, width: int, key: bool) -> float:
    """Stored bits per cached K (key=True) or V element, KVQuant §3.4/App. storage
    (arXiv 2401.18079): b-bit codes; per-vector dense-and-sparse outliers held as CSR
    with rows = tokens over the layer's `width` = kv_heads * head_dim features: an fp16
    value + an `index_bits` column index per outlier and one int32 row pointer per
    token; values are scaled per token with one full-width fp16 scale. Keys are
    per-channel with calibrated (offline, static) ranges, so no per-token scale.
    nuq3-1 %, width 4096 (LLaMA-7B): K 3 + 0.32 + 32/4096 = 3.328, V 3.332 + 16/4096
    = 3.3320, mean 3.330 -- inside the paper's 3.32-3.35. Per-layer extras (K's per-channel
    codebooks and ranges, the fp16 sink token) are amortised over the cached tokens by the
    trace: +0.011 bit at 8K tokens, so the trace gives 3.341 for LLaMA-2-7B at 8K."""
    per_token = 32 + (0 if key else 16)
    return bits + outlier_fraction * (16 + index_bits) + per_token / width


@register_method("kvquant", {
    "bits": Param(3, int, bits, "1..16 bits"),
    "outlier_fraction": Param(0.01, float, fraction, "a fraction in [0, 1]"),
    # 16-bit column indices: a token row spans kv_heads*head_dim < 65536 features
    "index_bits": Param(16, int, lambda x: x in (16, 32), "16 or 32"),
    "first_few_fp16": Param(1, int, lambda x: x >= 0, "a non-negative token count"),
    "pre_rope_keys": Param(True, bool),
}, "KVQuant: pre-RoPE per-channel keys, non-uniform codebooks, dense-and-sparse outliers", stores_kv=True)
def apply_kvquant(trace, model, recipe):
    refuse_on_mla(recipe, model, "KVQuant quantizes keys per channel before RoPE (MLA's RoPE part is a separate "
                                 f"{getattr(getattr(model, 'mla', None), 'qk_rope_head_dim', 0)}-dim key) and values "
                                 "per token")
    p = recipe.params
    b, f = p["bits"], p["outlier_fraction"]

    def repr_fn(name, B, n, h, d, fmt):
        sink = min(n, p["first_few_fp16"])
        nq = n - sink
        nnz = int(round(f * B * nq * h * d))
        out = [codes_tensor(name, B, nq, h, d, b),
               TensorSpec(f"{name}.sink", (B, sink, h, d), fmt, "kv")]
        if _is_key(name):  # per-channel non-uniform codebook (2^b fp16 entries) + calibrated range
            out += [TensorSpec(f"{name}.codebook", (h, d, 2 ** b), "fp16", "kv"),
                    TensorSpec(f"{name}.channel_range", (h, d, 2), "fp16", "kv")]
        else:  # one full-width fp16 scale per token (over all heads) + a per-layer codebook
            out += [TensorSpec(f"{name}.token_scale", (B, nq), "fp16", "kv"),
                    TensorSpec(f"{name}.codebook", (2 ** b,), "fp16", "kv")]
        # CSR outliers: rows = tokens (over the h*d features), int32 row pointers
        out += [TensorSpec(f"{name}.outlier_values", (nnz,), "fp16", "kv"),
                byte_tensor(f"{name}.outlier_index", nnz * p["index_bits"] / 8, "kv"),
                TensorSpec(f"{name}.outlier_row_ptr", (B, nq), "fp32", "kv")]  # int32: 4 B each
        return out

    def quantized(name, n):
        return n - min(n, p["first_few_fp16"])

    def step_ops(attn, n):
        B, h, d = int(attn.dims["batch"]), int(attn.dims["kv_heads"]), int(attn.dims["head_dim"])
        g = int(attn.dims["heads"]) // h
        nnz = int(round(f * B * n * h * d))
        ops = []
        if p["pre_rope_keys"]:  # keys are cached before RoPE: rotate all n every step
            ops.append(fused_op(f"{recipe.name}.rope_cached_keys", "rope", B * h * n, d, repeat=attn.repeat,
                                phase=attn.phase, group=attn.group, into=attn.name))
        # outliers of K and V enter q·K and p·V for each of the g query heads
        ops.append(Op(f"{recipe.name}.outlier_spmv", "custom", {"flops": 2 * 2 * g * nnz}, (), (),
                      compute_fmt=VECTOR_FMT, repeat=attn.repeat, phase=attn.phase, group=attn.group))
        ops.append(_step_op(f"{recipe.name}.quantize_new", "quantize", B, 2 * h, d,
                            [TensorSpec("kv_new", (B, 1, 2 * h, d), "bf16", "kv")],
                            [codes_tensor("kv_new_code", B, 1, 2 * h, d, b)], attn))
        ops.append(_step_op(f"{recipe.name}.outlier_detect", "topk", B, 2 * h, d, [], [], attn))
        return ops

    def write_repr(name, B, n, h, d, fmt):
        return [codes_tensor(name, B, n, h, d, b)]

    return apply_kv_repr(trace, model, recipe, repr_fn, step_ops,
                         {"key_bits_per_element_at_kv_width": kvquant_bits_per_element(
                              b, f, p["index_bits"], model.kv_heads * model.head_dim, True),
                          "value_bits_per_element_at_kv_width": kvquant_bits_per_element(
                              b, f, p["index_bits"], model.kv_heads * model.head_dim, False)}, quantized,
                         write_repr=write_repr)


# ---- salient-token mixed precision (ZipCache, MiKV) ---------------------------
def zipcache_lo_count(salient_ratio: float, n: int) -> int:
    """Tokens of n that ZipCache stores at lo_bits: int((1 − salient_ratio)·n), truncated as the
    authors' code counts them (ThisisBillhe/ZipCache@b6932b9 zipcache/models/modeling_llama.py:
    `topk(int(k_unimportant_ratio * q_len))` on the prompt, `int(k_unimportant_ratio *
    streaming_gap)` on a decode chunk). 1 − ratio is rounded to 12 decimals first, so a ratio
    of 0.9 gives 10 of 100 (not int(9.999…) = 9). 0.6 of 7936: int(0.4·7936) = 3174."""
    return int(round(1.0 - float(salient_ratio), 12) * int(n))


def zipcache_chunks(n: int, generated: int, requant_interval: int) -> int:
    """ZipCache's streaming chunks compressed by the read of n cached tokens, the last
    g = min(generated, n) of them (this step's included) generated: c = ⌊(g − 1)/I⌋ with
    I = `requant_interval` (the chunk the step completes is compressed after its read); 0 with
    no streaming (I = 0) or no generated token. I 100, g 256: 2. The one count
    `zipcache_token_split` and `key_stat_sets` share."""
    g = min(max(int(generated), 0), int(n))
    return (g - 1) // int(requant_interval) if g and requant_interval else 0


def zipcache_token_split(n: int, generated: int, salient_ratio: float, requant_interval: int = 0
                         ) -> tuple[int, int, int]:
    """(hi, lo, buffer) tokens of ZipCache's cache while a decode step reads its n cached tokens,
    the last g = min(generated, n) of them (this step's included) produced by decoding, the
    prompt P = n − g. One rule for pricing and the twin (MixedPrecisionPolicy, saliency
    "probe"), the authors' (ThisisBillhe/ZipCache@b6932b9, modeling_llama.py and
    CompressUtils/compress_class.py, `stream: True`): the prompt's zipcache_lo_count(P)
    least salient tokens are stored at lo_bits and the rest at hi_bits; with a streaming gap
    I = `requant_interval` > 0, decode tokens wait in a 16-bit buffer until a chunk of I is
    complete; after the read of the step that completes it, the step's query scores the chunk
    and its zipcache_lo_count(I) least attended tokens go to lo_bits, the rest to hi_bits.
    At the read of step g, c = ⌊(g − 1)/I⌋ chunks are compressed (`zipcache_chunks`) and g − c·I
    tokens (the new one included) are in the buffer. I = 0 (no streaming): a decode token enters at hi_bits
    and is never re-scored.

    llama3_8b at n 8192 with 256 generated, the bundled zipcache (ratio 0.6, I 100): prompt
    lo int(0.4·7936) = 3174, hi 4762; c = 2 chunks of 40 lo + 60 hi; buffer 56:
    (4882, 3254, 56)."""
    n, g = int(n), min(max(int(generated), 0), int(n))
    P = n - g
    lo = zipcache_lo_count(salient_ratio, P)
    hi = P - lo
    if not requant_interval:
        return hi + g, lo, 0
    I = int(requant_interval)
    c = zipcache_chunks(n, g, I)
    lo_c = zipcache_lo_count(salient_ratio, I)
    return hi + c * (I - lo_c), lo + c * lo_c, g - c * I


def mixed_precision_hi_tokens(n: int, generated: int, salient_ratio: float, saliency: str,
                              requant_interval: int = 0) -> int:
    """Tokens stored at hi_bits while a decode step reads its n cached tokens, the last
    `generated` of them (this step's included) produced by decoding (g = min(generated, n)).

    - ZipCache (`saliency="probe"`): `zipcache_token_split`'s hi count (the prompt's
      P − int((1 − ratio)·P) and, per completed streaming chunk, I − int((1 − ratio)·I);
      buffered decode tokens are 16-bit, not hi).
    - MiKV (`saliency="accumulated"`): the prompt's round(ratio·P) most salient tokens are
      hi after prefill and every decode token enters at hi_bits; after each step the
      lowest-scored important token is demoted while the set exceeds round(ratio·n), so the
      read at step g ≥ 1 sees round(ratio·(n − 1)) + 1 (independent of P); g = 0 (a
      prefill trace): round(ratio·n). MiKV 0.2 at n 8192, g 256: round(0.2·8191) + 1 = 1639."""
    n, g = int(n), min(max(int(generated), 0), int(n))
    if saliency == "probe":
        return zipcache_token_split(n, g, salient_ratio, requant_interval)[0]
    if g == 0:
        return int(round(salient_ratio * n))
    return min(n, int(round(salient_ratio * (n - 1))) + 1)


def mixed_precision_split(n: int, generated: int, salient_ratio: float, saliency: str,
                          requant_interval: int = 0) -> tuple[int, int, int]:
    """(hi, lo, 16-bit buffer) tokens at a read of n cached tokens: `zipcache_token_split` for
    ZipCache (saliency "probe"), MiKV's `mixed_precision_hi_tokens` and the rest lo."""
    if saliency == "probe":
        return zipcache_token_split(n, generated, salient_ratio, requant_interval)
    n_hi = mixed_precision_hi_tokens(n, generated, salient_ratio, saliency, requant_interval)
    return n_hi, int(n) - n_hi, 0


def zipcache_probe_counts(prompt_len: int, probe_ratio: float) -> tuple[int, int]:
    """(recent, random) probe queries ZipCache scores a P-token prompt with. The authors'
    code (ThisisBillhe/ZipCache@b6932b9, zipcache/models/modeling_llama.py, prefill branch)
    takes the last P − int(P − 0.05·P) queries plus int(0.05·P) drawn uniformly, with
    replacement (torch.randint), from the queries before them: "rand + recent", half of the
    probe ratio 0.1 each. Here half of `probe_ratio` each, and at least one recent probe
    (a short prompt would otherwise score with none). P 4096, ratio 0.1: 205 + 204 = 409.
    Each probe's causal softmax row is summed over the GQA group and the probes, then token
    j's sum is divided by P − j, the number of prompt queries that see it (the paper's
    normalized attention score; the code divides by it even though only the probes were
    summed). The twin (MixedPrecisionPolicy, saliency "probe") and pricing's probe
    attention both take the counts from here."""
    P = int(prompt_len)
    half = probe_ratio / 2
    start = min(int(P - half * P), P - 1) if P else 0
    return P - start, int(half * P) if start else 0


def mikv_demoted_tokens(n_from: int, n_to: int, salient_ratio: float) -> int:
    """Tokens MiKV demotes (re-quantizes from hi_bits to lo_bits) over the decode steps that
    read n_from + 1 .. n_to cached tokens (each step's new token included). At the read of
    a step with n tokens the important set holds round(r·(n − 1)) + 1 (the new token enters
    hi, `mixed_precision_hi_tokens`); after it the set is trimmed to round(r·n), so that
    step demotes round(r·(n − 1)) + 1 − round(r·n) tokens: 0 or 1, on average 1 − r. Summed
    over the steps it telescopes to (n_to − n_from) − (round(r·n_to) − round(r·n_from)).

    The one rule of both sides: the functional twin (MixedPrecisionPolicy, saliency
    "accumulated") demotes mikv_demoted_tokens(n − 1, n, r) tokens after each step, and
    pricing charges the average over the generated steps. llama3_8b, the bundled mikv
    (r 0.2) at n 8192 with 256 generated: 256 − (1638 − 1587) = 205 demotions, 205/256 =
    0.80 token per step (it was priced as one)."""
    n_from, n_to = int(n_from), int(n_to)
    if not 0 <= n_from <= n_to:
        raise ValueError(f"mikv_demoted_tokens: got n_from {n_from}, n_to {n_to}; expected 0 <= n_from <= n_to")
    return (n_to - n_from) - (int(round(salient_ratio * n_to)) - int(round(salient_ratio * n_from)))


def _demote_requant(recipe, attn, stored, per_step: float, every: int = 0) -> list:
    """`per_step` tokens per decode step (an average: density) re-quantized from hi_bits to
    lo_bits, K and V of every KV head: what is stored at hi_bits is read, its lo_bits codes
    and scales written. `stored(name, B, n, h, d, fmt, bits)` lays a token out at `bits`;
    `every` (ZipCache's requant_interval) says how often the work really comes."""
    p = recipe.params
    hb, lb = p["hi_bits"], p["lo_bits"]
    if not (per_step > 0 and lb < hb):
        return []
    B, h, d = int(attn.dims["batch"]), int(attn.dims["kv_heads"]), int(attn.dims["head_dim"])
    fmt = next((t.fmt for t in _kv_inputs(attn)), "bf16")
    src = [replace(t, density=per_step) for t in stored("demote_in", B, 1, 2 * h, d, fmt, hb)]
    dst = [replace(t, density=per_step) for t in stored("demote_out", B, 1, 2 * h, d, fmt, lb)]
    dims = {"rows": B * 2 * h, "cols": d * per_step, **({"every": every} if every else {})}
    return [Op(f"{recipe.name}.demote_requant", "quantize", dims, tuple(src), tuple(dst), compute_fmt=VECTOR_FMT,
               repeat=attn.repeat, phase=attn.phase, group=attn.group)]


def _zipcache_chunk_compress(recipe, attn, n: int, stored) -> list:
    """Every `requant_interval` (I) steps, after the read: the step's own query (one per query
    head: the authors' code scores the chunk with q_len 1 at decode, no probes) attends
    explicitly to the n cached keys (QKᵀ), and the I buffered 16-bit tokens of the completed
    chunk are quantized, zipcache_lo_count(I) at lo_bits and the rest at hi_bits (K and V);
    both amortised per step (the chunk as density 1/I)."""
    p = recipe.params
    I = p["requant_interval"]
    if not I:
        return []
    B, H, h, d = (int(attn.dims[k]) for k in ("batch", "heads", "kv_heads", "head_dim"))
    fmt = next((t.fmt for t in _kv_inputs(attn)), "bf16")
    rescore = Op(f"{recipe.name}.probe_attention", "custom", {"flops": 2 * n * d * B * H / I, "every": I},
                 (), (), compute_fmt="bf16", repeat=attn.repeat, phase=attn.phase, group=attn.group)
    n_lo = zipcache_lo_count(p["salient_ratio"], I)
    src = [replace(t, density=1 / I) for t in stored("chunk_in", B, I, 2 * h, d, fmt, 16)]
    out = []
    for side in ("k", "v"):  # channel-wise keys: codes, and one (min, step) per channel and quantized subset
        kc = p["key_quant"] == "channel" and side == "k"
        out += (stored(f"chunk_hi.{side}", B, I - n_lo, h, d, fmt, p["hi_bits"], kc)
                + stored(f"chunk_lo.{side}", B, n_lo, h, d, fmt, p["lo_bits"], kc))
        subsets = (p["hi_bits"] < 16) + (p["lo_bits"] < 16)
        if kc and subsets:
            out.append(TensorSpec("chunk.k_channel_min_step", (B, subsets, h, 2 * d), "fp16", "kv"))
    dst = [replace(t, density=1 / I) for t in out]
    comp = Op(f"{recipe.name}.chunk_quantize", "quantize", {"rows": B * 2 * h, "cols": d, "every": I},
              tuple(src), tuple(dst), compute_fmt=VECTOR_FMT, repeat=attn.repeat, phase=attn.phase, group=attn.group)
    return [rescore, comp]


def _mixed_stored(recipe):
    """`stored(name, B, n, h, d, fmt, bits, channel_keys=False)`: n tokens laid out at `bits` (16: as
    they are; below: codes + an fp16 scale and zero per group of `group_size` channels of each token,
    or codes alone for channel-wise keys, whose per-channel stats are laid out per group apart)."""
    p = recipe.params

    def group(d):
        G = p["group_size"] or d
        recipe.require(d % G == 0, "parameters.group_size", p["group_size"],
                       f"0 or a divisor of the head dimension {d}")
        return G

    def stored(name, B, n, h, d, fmt, bb, channel_keys=False):
        if bb >= 16:
            return [TensorSpec(name, (B, n, h, d), fmt, "kv")]
        if channel_keys:
            return [codes_tensor(name, B, n, h, d, bb)]
        return [codes_tensor(name, B, n, h, d, bb),
                TensorSpec(f"{name}.scale_zero", (B, n, h, 2 * d // group(d)), "fp16", "kv")]
    return stored


def _mixed_validate(recipe):
    p = recipe.params
    recipe.require(p["hi_bits"] >= p["lo_bits"], "parameters.hi_bits", p["hi_bits"],
                   f"at least lo_bits ({p['lo_bits']})")
    if p["key_quant"] == "channel":  # a channel-wise key group needs the tokens it is quantized over
        recipe.require(p["saliency"] == "probe", "parameters.key_quant", p["key_quant"],
                       "'token' with saliency 'accumulated' (MiKV demotes single tokens)")
        recipe.require(p["requant_interval"] > 0, "parameters.key_quant", p["key_quant"],
                       "'token' with requant_interval 0 (channel-wise keys are quantized over the prompt and "
                       "over each streaming chunk; without a streaming gap a decode token is quantized alone)")


def key_stat_sets(n: int, generated: int, requant_interval: int, subsets: int) -> int:
    """Channel-wise key (min, step) sets per KV head at a read of n cached tokens: one per quantized
    subset (hi, lo) of the prompt and of each streaming chunk compressed so far (`zipcache_chunks`).
    Bundled zipcache at n 8192, 256 generated, I 100: (1 + 2)·2 = 6."""
    return (1 + zipcache_chunks(n, generated, requant_interval)) * subsets


@register_method("mixed_precision_kv", {
    "hi_bits": Param(4, int, bits, "1..16 bits (16 = unquantized)"),
    "lo_bits": Param(2, int, bits, "1..16 bits"),
    # defaults: ZipCache's (the authors' demo, ThisisBillhe/ZipCache@b6932b9: unimportant ratio 0.4,
    # streaming gap 100)
    "salient_ratio": Param(0.6, float, fraction, "a fraction in [0, 1]"),
    "group_size": Param(0, int, lambda x: x >= 0, "0 (one group per token and head) or a group size dividing head_dim"),
    "saliency": Param("probe", str, choices=("probe", "accumulated")),
    "probe_ratio": Param(0.1, float, fraction, "a fraction in [0, 1]"),
    # ZipCache's streaming gap: decode tokens wait 16-bit until a chunk of this many is quantized
    # (zipcache_token_split); 0: they enter at hi_bits and are never re-scored
    "requant_interval": Param(100, int, lambda x: x >= 0, "0 (no streaming) or the streaming gap in decode steps"),
    "channel_normalizers": Param(True, bool),
    # ZipCache's keys: "channel" = per channel over each quantization group's hi / lo tokens (the authors'
    # mixed_channelwiseQ), values per token after sqrt(max|v|) channel normalizers; "token": keys per token
    # (after max|k| channel normalizers), as MiKV
    "key_quant": Param("channel", str, choices=("channel", "token")),
    # how many of a decode step's cached tokens were generated; the rest is the prompt.
    # Prefill traces generate none.
    "new_tokens": Param(256, int, lambda x: x >= 0, "a non-negative number of generated tokens"),
}, "salient tokens at high precision, the rest at low precision", validate=_mixed_validate, stores_kv=True)
def apply_mixed_precision(trace, model, recipe):
    """Stores and reads the split the twin keeps at the step: ZipCache's `zipcache_token_split` (hi, lo, 16-bit
    streaming buffer), MiKV's `mixed_precision_hi_tokens`. A new decode token is written at hi_bits (ZipCache with a
    streaming gap: 16-bit, into the buffer); ZipCache's chunk quantization every `requant_interval` steps and MiKV's
    demotions are priced as (amortised) quantizations."""
    p = recipe.params
    hb, lb, ratio = p["hi_bits"], p["lo_bits"], p["salient_ratio"]
    interval = p["requant_interval"]
    generated = p["new_tokens"] if trace.phase != "prefill" else 0

    def split_of(n):  # (hi, lo, 16-bit buffer) tokens at a read of n cached tokens
        return mixed_precision_split(n, generated, ratio, p["saliency"], interval)

    def mikv_per_step(n):  # the generated steps' average (a decode trace with new_tokens 0: this step's)
        return mikv_demoted_tokens(n - max(1, min(generated, n)), n, ratio) / max(1, min(generated, n))
    stored = _mixed_stored(recipe)

    subsets = (hb < 16) + (lb < 16)

    def repr_fn(name, B, n, h, d, fmt):
        n_hi, n_lo, n_buf = split_of(n)
        kc = p["key_quant"] == "channel" and _is_key(name)  # ZipCache: channel-wise keys, no normalizer
        out = stored(f"{name}.hi", B, n_hi, h, d, fmt, hb, kc) + stored(f"{name}.lo", B, n_lo, h, d, fmt, lb, kc)
        sets = key_stat_sets(n, generated, interval, subsets) if kc else 0
        if sets:  # one fp16 (min, step) per channel for each quantized subset of the prompt and of each chunk
            out.append(TensorSpec(f"{name}.channel_min_step", (B, sets, h, 2 * d), "fp16", "kv"))
        if n_buf:
            out.append(TensorSpec(f"{name}.buffer", (B, n_buf, h, d), fmt, "kv"))
        if p["channel_normalizers"] and not kc:
            out.append(TensorSpec(f"{name}.channel_norm", (h, d), "fp16", "kv"))
        return out

    def quantized(name, n):
        n_hi, n_lo, _ = split_of(n)
        return n_lo + (n_hi if hb < 16 else 0)

    buffered = p["saliency"] == "probe" and interval > 0  # ZipCache streaming: decode tokens wait 16-bit

    def step_ops(attn, n):
        B, h, d = int(attn.dims["batch"]), int(attn.dims["kv_heads"]), int(attn.dims["head_dim"])
        H = int(attn.dims["heads"])
        # the new token is quantized at hi_bits (kept as it is at 16: MiKV's bf16 important set)
        ops = [_step_op(f"{recipe.name}.quantize_new", "quantize", B, 2 * h, d, [], [], attn)] \
            if hb < 16 and not buffered else []
        if p["saliency"] == "accumulated":  # MiKV: H2O-style scores from the step's probabilities
            ops += [_step_op(f"{recipe.name}.score_accumulate", "add", B, H, n,
                             [TensorSpec("attn_probs", (B, H, n), "fp32"), TensorSpec("acc", (B, H, n), "fp32", "state")],
                             [TensorSpec("acc", (B, H, n), "fp32", "state")], attn),
                    # the tokens demoted from the important set (mikv_demoted_tokens: 1 − r a step on
                    # average) are re-quantized at low bits
                    *_demote_requant(recipe, attn, stored, mikv_per_step(n)),
                    # outlier channel balancer: q scaled by b_c per channel
                    _step_op(f"{recipe.name}.q_balance", "mul", B, H, d, [], [], attn)]
        elif interval:
            ops += _zipcache_chunk_compress(recipe, attn, n, stored)
        return ops

    def write_repr(name, B, n, h, d, fmt):  # a new token enters at hi_bits (ZipCache streaming: the 16-bit buffer)
        return stored(name, B, n, h, d, fmt, 16 if buffered else hb)

    n_ctx = int(trace.seq)
    n_hi_ctx, n_lo_ctx, n_buf_ctx = split_of(n_ctx)
    notes = {"avg_code_bits": (n_hi_ctx * hb + n_lo_ctx * lb + n_buf_ctx * 16) / max(n_ctx, 1),
             "hi_tokens": n_hi_ctx, "lo_tokens": n_lo_ctx, "buffer_tokens": n_buf_ctx, "at_tokens": n_ctx,
             "generated_tokens": min(generated, n_ctx)}
    if p["saliency"] == "accumulated" and trace.phase != "prefill":
        notes["demoted_tokens_per_step"] = mikv_per_step(n_ctx)  # what demote_requant prices
    if getattr(model, "mla", None):
        notes["note"] = MLA_TOKEN_NOTE
    # the prompt's hi / lo split needs its saliency, known once the whole prompt is in: its quantize runs
    # once, after the last token (PER_PROMPT)
    out = apply_kv_repr(trace, model, recipe, repr_fn, step_ops, notes, quantized, write_repr=write_repr,
                        prompt_quantize=True)
    if trace.phase == "prefill" and p["saliency"] == "probe":
        out = _add_probe_prefill(out, recipe)
    elif trace.phase == "prefill":
        from workloads.compression.eviction import charge_unfused_scores
        out = charge_unfused_scores(trace, _add_accumulated_prefill(out, recipe))
    return out


def _add_probe_prefill(trace, recipe):
    """ZipCache: saliency from explicit attention of the probe queries
    (`zipcache_probe_counts`: recent + random, 2·n_probe·S·d per head) so the main prefill
    attention can stay fused. Once a prompt, after its last token (the probes are drawn from
    the whole prompt and score all of its keys): PER_PROMPT."""
    ops = list(trace.ops)
    for attn in attention_ops(trace):
        B, H, S, d = (int(attn.dims[k]) for k in ("batch", "heads", "kv_len", "head_dim"))
        n_probe = sum(zipcache_probe_counts(S, recipe.params["probe_ratio"]))
        probe = Op(f"{recipe.name}.probe_scores", "gemm", {"b": B * H, "m": n_probe, "n": S, "k": d, PER_PROMPT: True},
                   (TensorSpec("q_probe", (B * H, n_probe, d), "bf16"),),
                   (TensorSpec("probe_scores", (B * H, n_probe, S), "fp32"),),
                   repeat=attn.repeat, phase=attn.phase, group=attn.group)
        soft = Op(f"{recipe.name}.probe_softmax", "softmax", {"rows": B * H * n_probe, "cols": S, PER_PROMPT: True},
                  (TensorSpec("probe_scores", (B * H, n_probe, S), "fp32"),),
                  (TensorSpec("probe_saliency", (B * H, S), "fp32"),),
                  repeat=attn.repeat, phase=attn.phase, group=attn.group)
        ops = insert_after(ops, attn, [probe, soft])
    return trace.replace_ops(ops)


def _add_accumulated_prefill(trace, recipe):
    from workloads.compression.eviction import unfused_prefill_attention
    ops = list(trace.ops)
    for attn in attention_ops(trace):
        ops = replace_op(ops, attn, unfused_prefill_attention(attn, recipe.name))
    return trace.replace_ops(ops)
