"""KV eviction and sparse attention: StreamingLLM, H2O, SnapKV, RocketKV.

Tokens *kept* (capacity: footprint) are separate from tokens *read* per decode step
(traffic): ``meta["kv_state"]`` carries both. Eviction shrinks both; RocketKV keeps
`capacity` tokens but reads only `k` of them (plus chunk summaries) each step.

The decode trace is one step at context S (the trace's `seq`): the attention op's
`kv_len` and cache tensors become the tokens read. The prefill trace gains the
selection work (H2O's unfused attention for its column sums, SnapKV's window votes,
pooling and top-k, and the gather that compacts the kept tokens).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from workloads.compression.common import (MLA_TOKEN_NOTE, VECTOR_FMT, attention_ops, find_all, fused_op,
                                          is_decode_step, is_kv_scale, kv_state, prompt_and_generated, refuse_on_mla,
                                          replace_op, rewrite, stored_scale_bytes)
from workloads.compression.registry import Param, RecipeError, fraction, reads_prompt_budget, register_method
from workloads.ops import PER_PROMPT, Op, TensorSpec

_FIXED_SUFFIXES = (".residual", ".sink")


def _token_axis(t: TensorSpec) -> int | None:
    """Which axis of a cache piece counts tokens (None: per head or per layer, not per
    token): (batch, tokens, heads, dim) pieces, flat outlier arrays (their count follows
    the tokens), per-token scales and CSR row pointers (batch, tokens). A bare FP8/FP6/FP4
    cache's fp32 `.scale` (kv_quant.kv_scale_tensors: one per KV head or one per tensor,
    calibrated, static) is per head: fp8_kv+h2o keeps its 8 scales of Llama-3-8B whatever
    H2O keeps (until session 17 it was cut like a token count, to round(8 x 1638/8192) = 2)."""
    if len(t.shape) == 4:
        return 1
    if len(t.shape) == 1 and not t.name.endswith((".codebook", ".scale")):
        return 0
    if len(t.shape) == 2 and t.name.endswith((".token_scale", ".outlier_row_ptr")):
        return 1
    if len(t.shape) == 2 and t.name == "kv_write.out":  # the builder's (batch·tokens, width) write
        return 0
    return None  # codebooks, channel ranges and normalisers, low-rank factors


def resize_kv_tensors(tensors, n_old: int, n_new: int, proportional: bool = False) -> list[TensorSpec]:
    """Cache pieces holding `n_new` tokens instead of `n_old`: per-token pieces scale
    with the evictable part; fp16 windows and sinks keep their size (eviction keeps
    them), unless `proportional` (a top-k gather draws from windows and body alike);
    per-head pieces (codebooks, ranges) are unchanged. Non-KV tensors pass through."""
    tensors = list(tensors)
    if n_new >= n_old:
        return tensors
    fixed: dict[str, int] = {}
    for t in tensors:
        if not proportional and t.role == "kv" and len(t.shape) == 4 and t.name.endswith(_FIXED_SUFFIXES):
            fam = t.name.split(".")[0]
            fixed[fam] = fixed.get(fam, 0) + t.shape[1]
    out = []
    for t in tensors:
        if t.role != "kv":
            out.append(t)
            continue
        if t.name.endswith(_FIXED_SUFFIXES) and not proportional:  # kept whole, up to n_new tokens
            out.append(t if len(t.shape) != 4 or t.shape[1] <= n_new else
                       TensorSpec(t.name, (t.shape[0], n_new) + t.shape[2:], t.fmt, t.role, t.density))
            continue
        fam = t.name.split(".")[0]
        fx = min(fixed.get(fam, 0), n_new)
        ratio = (n_new - fx) / max(n_old - fixed.get(fam, 0), 1)
        ax = _token_axis(t)
        shape = t.shape
        if ax is not None:
            shape = tuple(int(round(x * ratio)) if i == ax else x for i, x in enumerate(t.shape))
        out.append(TensorSpec(t.name, shape, t.fmt, t.role, t.density))
    # a top-k gather (proportional) reads tokens in place, with their groups' scales: no new layout
    return out if proportional else _whole_token_groups(tensors, out)


def _whole_token_groups(old: list, new: list) -> list:
    """A piece quantized in groups of G tokens (KIVI's keys: codes (B, n, h, d) with scale_zero
    (B, n / G, h, 2d) and an fp16 residual) holds whole groups after a resize, the rest of its tokens
    in the residual: 517 kept key tokens are 512 in 16 groups + 5 fp16, not 517 codes under 16 groups'
    scales. (KIVI itself quantizes keys R tokens at a time, R a multiple of G, so its residual may hold
    up to R - 1 tokens; whole groups of G are the finest layout its scales allow.)"""
    by = {t.name: t for t in old if t.role == "kv" and len(t.shape) == 4}
    out = list(new)
    at = {t.name: i for i, t in enumerate(out)}  # resize_kv_tensors: every piece of `old`, by name
    for fam, codes in by.items():
        sz = by.get(f"{fam}.scale_zero")
        if sz is None or f"{fam}.residual" not in by:
            continue
        n_q, g = codes.shape[1], sz.shape[1]
        if not g or n_q % g or n_q // g <= 1:  # no code yet, scales per token (values), or G not whole
            continue
        G = n_q // g
        c2, r2, s2 = out[at[fam]], out[at[f"{fam}.residual"]], out[at[f"{fam}.scale_zero"]]
        total = c2.shape[1] + r2.shape[1]
        q = total // G * G
        out[at[fam]] = TensorSpec(c2.name, (c2.shape[0], q) + tuple(c2.shape[2:]), c2.fmt, c2.role, c2.density)
        out[at[f"{fam}.scale_zero"]] = TensorSpec(s2.name, (s2.shape[0], q // G) + tuple(s2.shape[2:]), s2.fmt,
                                                  s2.role, s2.density)
        out[at[f"{fam}.residual"]] = TensorSpec(r2.name, (r2.shape[0], total - q) + tuple(r2.shape[2:]), r2.fmt,
                                                r2.role, r2.density)
    return out


def resize_kv_read(attn: Op, n_new: int, proportional: bool = False, **dims) -> Op:
    """The attention op reading `n_new` cached tokens instead of kv_len (the pieces
    resized by `resize_kv_tensors`)."""
    n_old = int(attn.dims["kv_len"])
    if n_new >= n_old:
        return attn.with_(dims={**attn.dims, **dims})
    ins = resize_kv_tensors(attn.inputs, n_old, n_new, proportional)
    return attn.with_(dims={**attn.dims, "kv_len": n_new, **dims}, inputs=tuple(ins))


def rescaled_bytes_per_token(trace, st: dict, capacity: float, stored_bytes) -> float:
    """kv_state's bytes per token once the cache holds `capacity` tokens a layer and each layer's
    stored pieces take `stored_bytes(op, tensors, n)` bytes instead of their own: the pieces are the
    decode step's cache tensors (n: the op's kv_len), else what prefill's kv_write stores (n:
    kv_state's capacity); their new bytes over their present bytes, scaled onto kv_state's bytes
    (so fp16 windows, sinks and per-head tables stay what the recipe keeps of them). Shared by
    eviction (`stored_bytes_per_token`) and RazorAttention's per-head layout."""
    cap = int(st["capacity"])
    bpt = float(st["bytes_per_token"])
    decode = _decode_attn(trace)
    if decode:
        layout = [(a, a.inputs, int(a.dims["kv_len"])) for a in decode]
    else:
        layout = [(w, w.outputs, cap) for w in find_all(trace, "kv_write")]
    # a narrow cache's fp32 `.scale` tensors (workloads.kv_scales: per KV head, one set per sequence, whatever the
    # batch) are fixed bytes: kept whole, added after the token pieces are scaled (scaled with them, the batch's
    # pieces over one sequence's scales, h2o fp8 b2 kept 2,457.5 of its 4,096 B)
    fixed = sum(t.nbytes * op.repeat for op, ts, _ in layout for t in ts if t.role == "kv" and is_kv_scale(t))
    full = sum(t.nbytes * op.repeat for op, ts, _ in layout for t in ts if t.role == "kv") - fixed
    if not full or not capacity:
        return bpt
    resized = sum(stored_bytes(op, tuple(t for t in ts if not is_kv_scale(t)), n) * op.repeat for op, ts, n in layout)
    return ((bpt * cap - fixed) * resized / full + fixed) / capacity


def stored_bytes_per_token(trace, st: dict, kept: int) -> float:
    """Resident bytes per token (per sequence, all layers) once the cache holds `kept`
    of its `st["capacity"]` tokens. Not the pre-eviction average: a quantized cache's
    fp16 windows and sinks and its per-head tables survive eviction whole, so the bytes
    are those of the stored pieces resized to `kept` (`resize_kv_tensors`), scaled onto
    kv_state's bytes (`rescaled_bytes_per_token`)."""
    if kept >= int(st["capacity"]) or kept <= 0:
        return float(st["bytes_per_token"])
    return rescaled_bytes_per_token(trace, st, kept, lambda op, ts, n: sum(
        t.nbytes for t in resize_kv_tensors(ts, n, kept) if t.role == "kv"))


def _mla_note(model) -> dict:
    return {"note": MLA_TOKEN_NOTE} if getattr(model, "mla", None) else {}


def _decode_attn(trace):
    return [a for a in attention_ops(trace) if is_decode_step(a)]


def unfused_prefill_attention(attn: Op, prefix: str) -> list[Op]:
    """Prefill attention materialising the probabilities (H2O needs their column sums):
    QKᵀ over the full Sp×Sp matrix, softmax, then P·V — the unfused algorithm's three kernels.
    An attention op a profile gave Hugging Face eager's backend ("unfused", marked before the
    recipe ran: workloads.builder) writes its probabilities already: it stays, and every level
    prices it as eager's kernels (workloads.profiles.eager_attention_kernels)."""
    if attn.dims.get("backend") == "unfused":
        return [attn]
    d = attn.dims
    B, H, S, hd = int(d["batch"]), int(d["heads"]), int(d["kv_len"]), int(d["head_dim"])
    q_len = int(d["q_len"])
    dv = int(d.get("v_head_dim", hd))
    q = next((t for t in attn.inputs if t.name == "q"), attn.inputs[0])
    kvs = [t for t in attn.inputs if t.role == "kv"]
    k_in = [t for t in kvs if t.name.startswith("k")] or kvs[:1]
    v_in = [t for t in kvs if t.name.startswith("v")] or kvs[-1:]
    act = q.fmt
    scores = TensorSpec("attn_scores.out", (B * H, q_len, S), act)
    probs = TensorSpec("attn_probs", (B * H, q_len, S), act)
    common = dict(repeat=attn.repeat, phase=attn.phase, group=attn.group)
    return [
        Op("attn_scores", "gemm", {"b": B * H, "m": q_len, "n": S, "k": hd}, (q, *k_in), (scores,),
           compute_fmt=attn.compute_fmt, **common),
        Op("attn_softmax", "softmax", {"rows": B * H * q_len, "cols": S}, (scores,), (probs,), **common),
        Op("attn_pv", "gemm", {"b": B * H, "m": q_len, "n": dv, "k": S}, (probs, *v_in), attn.outputs,
           compute_fmt=attn.compute_fmt, **common),
    ]


def _gather_kept(attn: Op, kept: int, prefix: str, layout: tuple = (0, None)) -> Op:
    """Compact the kept tokens of the prompt's cache: `layout` = (elements per token and layer,
    format) as kv_write stores them (K and V of every KV head, or MLA's one latent: cache_layout);
    2·h·d in the attention's KV format when not given."""
    B, h, hd = int(attn.dims["batch"]), int(attn.dims["kv_heads"]), int(attn.dims["head_dim"])
    width, stored = layout
    # the attention's KV format; MLA's prefill attention reads K/V as activations: then kv_write's stored one
    fmt = next((t.fmt for t in attn.inputs if t.role == "kv"), None) or stored or "bf16"
    if width:
        kv = [TensorSpec("kv_kept", (B, kept, width), fmt, "kv")]
    else:
        width = 2 * h * hd
        kv = [TensorSpec(f"{n}_kept", (B, kept, h, hd), fmt, "kv") for n in ("k", "v")]
    # once a prompt, after its last token: which tokens are kept is known only then (PER_PROMPT)
    return Op(f"{prefix}.gather", "copy", {"rows": B * kept, "cols": width, PER_PROMPT: True}, tuple(kv), tuple(kv),
              repeat=attn.repeat, phase=attn.phase, group=attn.group)


def cache_layout(trace) -> tuple[int, str | None]:
    """(elements per token and layer, format) the cache stores, as kv_write writes it; (0, None) if unknown."""
    w = find_all(trace, "kv_write")
    if not w:
        return 0, None
    return int(w[0].dims.get("cols", 0)), (w[0].outputs[0].fmt if w[0].outputs else None)


def _evict(trace, recipe, keep_fn, step_fn, prefill_fn, notes_fn, prompt_only: bool = False,
           budget_from_prompt: bool = False):
    """Shared driver: keep_fn(S) -> kept tokens; step_fn(attn, kept) -> (new attn,
    extra decode ops); prefill_fn(attn, kept) -> ops replacing the prefill attention.
    `prompt_only`: the recipe evicts once, from the prompt (SnapKV), so a decode trace's generated
    tokens (prompt_and_generated) are kept whole on top of the prompt's kept ones.
    `budget_from_prompt`: the budget is set once from the prompt (H2O's ratios at prefill) and every step evicts to
    it, generated tokens included."""
    st = kv_state(trace)
    S = int(st["capacity"])
    prompt, generated = prompt_and_generated(trace) if prompt_only else (int(st["context"]), 0)
    budget = keep_fn(prompt_and_generated(trace)[0] if budget_from_prompt else prompt)
    kept = min(S, min(prompt, budget) + generated)
    recipe.require(kept >= 1, "parameters", dict(recipe.params),
                   f"parameters keeping at least one of the {S} cached tokens")
    ops = list(trace.ops)
    decode_attn = _decode_attn(trace)
    for attn in attention_ops(trace):
        if attn in decode_attn:
            new_attn, before, after = step_fn(attn, kept)
            ops = replace_op(ops, attn, [*before, new_attn, *after])
        else:
            ops = replace_op(ops, attn, prefill_fn(attn, kept))
    read = kept if decode_attn else st["read"]
    transient = prefill_transient_kv(trace, st, kept)
    notes = {"kept_tokens": kept, "context_tokens": int(st["context"]), **notes_fn(kept)}
    if generated and prompt > budget:
        notes["note_generated"] = _generated_note(prompt, generated, min(prompt, budget), S,
                                                  "it evicts once, at the end of prefill")
    if kept >= S and (not generated or prompt <= budget):  # never silent: at this length it keeps every token
        said = (f"all {S:,} cached tokens fit its budget of {budget:,}" if not generated else
                f"the {prompt:,}-token prompt fits its budget of {budget:,} and its {generated:,} generated tokens are "
                f"kept whole")
        notes["note"] = "; ".join(n for n in (said + ": nothing evicted, cache unchanged", notes.get("note")) if n)
    return rewrite(trace, ops, notes,
                   kv={"capacity": kept, "read": read, "bytes_per_token": stored_bytes_per_token(trace, st, kept),
                       **transient_record(trace, st, transient)},
                   activations_delta=transient)


def _generated_note(prompt: int, generated: int, prompt_kept: int, cached: int, how: str) -> str:
    """What a recipe compressing the prompt alone keeps at a decode step: its share of the prompt and every generated
    token, or what the cache holds where that is less (`cached`: a sliding window, an earlier part's eviction)."""
    said = (f"keeps {prompt_kept:,} of the {prompt:,}-token prompt and its {generated:,} generated tokens whole "
            f"({how})")
    if prompt_kept + generated > cached:
        said += f"; the cache holds only {cached:,} of them (a sliding window or an earlier part's eviction)"
    return said


def prefill_transient_kv(trace, st: dict, kept: int) -> float:
    """Eviction at the end of prefill runs layer by layer: the layer being compressed
    still holds its whole prompt's K/V while the others hold `kept` tokens. The footprint
    keeps the steady state in kv_cache and this one-layer transient in activations, so
    the prefill peak is their sum (the practical caveat of doc §1.6).

    The transient is one layer's stored cache at the prompt's `capacity` tokens minus the
    same layer at `kept` (`stored_bytes_per_token`), batch x (bpt·cap − bpt_kept·kept) / L:
    in the KV format's bytes, so an 8-bit cache's transient is half a bf16 one's; per-head
    scales are in both terms and cancel; a quantized cache's fp16 windows and sinks survive
    eviction, so they are no part of it (before session 20 it was (cap − kept) x the average
    bytes per token, which counted KIVI's fp16 residual as evicted: kivi2+h2o at 1000 tokens
    on Llama-3-8B 923,238.4 -> 774,144 B). What does not depend on the KV format (H2O's fp32
    column sums, one layer's unfused probabilities) is charged by the method."""
    if trace.phase != "prefill":
        return 0.0
    layers = sum(w.repeat for w in trace.ops if w.name == "kv_write") or 1
    cap = int(st["capacity"])
    if kept >= cap:
        return 0.0
    full = float(st["bytes_per_token"]) * cap
    left = stored_bytes_per_token(trace, st, kept) * kept
    return trace.batch * max(full - left, 0.0) / layers


def transient_record(trace, st: dict, transient: float) -> dict:
    """kv_state's record of the prefill transient (`prefill_transient_kv`, whole batch) and the
    prompt tokens the evicting layer holds, so a KV format applied after the eviction
    (h2o+fp8_kv) re-prices it in its own bytes (kv_quant.apply_kv_repr; common.rewrite
    scales it with the bytes per token for any other recipe, with a note)."""
    if trace.phase != "prefill" or not transient:
        return {}
    # a second eviction (snapkv+h2o) evicts from the first one's kept tokens: its transient telescopes onto the
    # first's (prompt -> kept1 -> kept2), so the record is their sum, the whole prompt's K/V beyond the last kept
    return {"prefill_transient": float(st.get("prefill_transient", 0.0)) + float(transient),
            "prefill_tokens": int(st.get("prefill_tokens", st["capacity"]))}


# ---- StreamingLLM ------------------------------------------------------------------
def _streaming_validate(recipe):
    p = recipe.params
    recipe.require(p["sink_tokens"] + p["recent_tokens"] > 0, "parameters.recent_tokens", p["recent_tokens"],
                   "sink_tokens + recent_tokens > 0 (the cache would keep no token)")


@register_method("streaming_llm", {
    "sink_tokens": Param(4, int, lambda x: x >= 0, "a non-negative token count"),
    "recent_tokens": Param(2000, int, lambda x: x >= 0, "a non-negative token count"),
    "pos_shift": Param(True, bool),
}, "attention sinks + a recent window", validate=_streaming_validate)
def apply_streaming_llm(trace, model, recipe):
    p = recipe.params
    budget = p["sink_tokens"] + p["recent_tokens"]

    def step(attn, kept):
        new = resize_kv_read(attn, kept)
        extra = []
        if p["pos_shift"]:  # positions are re-assigned inside the cache: keys re-rotated each step
            B, h, hd = int(attn.dims["batch"]), int(attn.dims["kv_heads"]), int(attn.dims["head_dim"])
            mla = getattr(model, "mla", None)
            hd = mla.qk_rope_head_dim if mla else hd  # MLA: only the latent's RoPE part is rotated
            extra.append(fused_op(f"{recipe.name}.rope_cached_keys", "rope", B * h * kept, hd,
                                  repeat=attn.repeat, phase=attn.phase, group=attn.group, into=attn.name))
        return new, [], extra

    def prefill(attn, kept):
        # each prompt token attends to the sinks and its recent window only (the
        # streaming setting); the sinks' few extra pairs are left out of the count
        S = int(attn.dims["kv_len"])
        if budget >= S:
            return [attn]
        return [attn.with_(dims={**attn.dims, "window": budget})]

    return _evict(trace, recipe, lambda S: budget, step, prefill, lambda k: _mla_note(model))


# ---- H2O -------------------------------------------------------------------------
class NoTokenKept(RecipeError):
    """H2O's ratios keep no token of a prompt this short: its own class, so a caller pricing a part of a longer
    prompt (a serving chunk) tells it from the recipe's other refusals (keeping_every_token)."""


def keeping_every_token(recipe, prompt_len: int):
    """`recipe` (a Recipe) with each H2O part's budget set to `prompt_len`: a chunk of a longer prompt is no prompt
    (H2O evicts once, after the whole prompt; its selection and gather are priced from that prompt's trace), so a
    chunk's trace keeps every token of its partial length rather than applying the whole-prompt refusal."""
    import dataclasses
    if recipe.parts:
        return dataclasses.replace(recipe, parts=tuple(keeping_every_token(r, prompt_len) for r in recipe.parts))
    if recipe.method != "h2o" or recipe.params.get("budget"):
        return recipe
    return dataclasses.replace(recipe, params={**recipe.params, "budget": int(prompt_len)})


def h2o_kept_tokens(heavy_ratio: float, recent_ratio: float, budget: int, prompt_len: int,
                    source: str = "h2o") -> int:
    """Tokens H2O keeps of a `prompt_len`-token prompt: `budget` when set, else
    int(heavy_ratio·P) + int(recent_ratio·P) (FMInference/H2O h2o_hf). Refuses a split
    that keeps no token (attention over an empty cache), naming the parameters; the
    pricing and the accuracy twin both call this."""
    if budget:
        return int(budget)
    kept = int(heavy_ratio * prompt_len) + int(recent_ratio * prompt_len)
    if kept < 1:
        raise NoTokenKept(f"{source}: parameters.heavy_ratio / parameters.recent_ratio: got {heavy_ratio!r} / "
                          f"{recent_ratio!r}, which keep int({heavy_ratio!r}·{prompt_len}) + int({recent_ratio!r}·"
                          f"{prompt_len}) = 0 of the {prompt_len} prompt tokens; expected ratios keeping at least "
                          f"one token (heavy_ratio or recent_ratio >= 1/{prompt_len}) or a positive budget")
    return kept


def _h2o_budget(recipe, S: int) -> int:
    p = recipe.params
    return h2o_kept_tokens(p["heavy_ratio"], p["recent_ratio"], p["budget"], S, recipe.source or recipe.name)


def _h2o_validate(recipe):
    p = recipe.params
    if not p["budget"]:
        recipe.require(p["heavy_ratio"] + p["recent_ratio"] > 0, "parameters.heavy_ratio / parameters.recent_ratio",
                       f"{p['heavy_ratio']} / {p['recent_ratio']}",
                       "ratios summing to more than 0 when budget is 0 (H2O would keep no token), "
                       "or a positive budget")


@register_method("h2o", {
    "heavy_ratio": Param(0.1, float, fraction, "a fraction of the prompt in [0, 1]"),
    "recent_ratio": Param(0.1, float, fraction, "a fraction of the prompt in [0, 1]"),
    "budget": Param(0, int, lambda x: x >= 0, "a non-negative token budget (0: use the ratios)"),
    "forgetting_factor": Param(0.0, float, lambda x: 0 <= x < 1,
                               "0 (plain H2O) or A2SF's decay in [0, 1): A = Σ α^(n−q)·S_q"),
}, "heavy hitters + recent window, one eviction per step (A2SF: decayed scores)", validate=_h2o_validate,
    budget_from_prompt=True)
def apply_h2o(trace, model, recipe):
    decay = recipe.params["forgetting_factor"]
    eager = any(op.dims.get("backend") == "unfused" for op in attention_ops(trace))  # workloads.builder marks it
    layout = cache_layout(trace)

    def step(attn, kept):
        B, H, h = int(attn.dims["batch"]), int(attn.dims["heads"]), int(attn.dims["kv_heads"])
        probs = TensorSpec("attn_probs", (B, H, kept), "fp32")
        new = resize_kv_read(attn, kept).with_(outputs=attn.outputs + (probs,))
        common = dict(repeat=attn.repeat, phase=attn.phase, group=attn.group)
        acc = TensorSpec("h2o_scores", (B, H, kept), "fp32", "state")
        after = [
            Op(f"{recipe.name}.score_accumulate", "add", {"rows": B * H, "cols": kept}, (probs, acc), (acc,),
               compute_fmt=VECTOR_FMT, **common),
            # argmin over the kept tokens (scores summed over each GQA group) picks the victim
            Op(f"{recipe.name}.evict_argmin", "topk", {"rows": B * h, "cols": kept},
               (TensorSpec("h2o_scores_kv", (B, h, kept), "fp32", "state"),), (), compute_fmt=VECTOR_FMT, **common),
        ]
        if decay:  # A2SF: the accumulated scores decay by α every step (C multiplies per head)
            after.insert(0, Op(f"{recipe.name}.score_decay", "mul", {"rows": B * H, "cols": kept}, (acc,), (acc,),
                               compute_fmt=VECTOR_FMT, **common))
        return new, [], after

    def prefill(attn, kept):
        B, H, h, S = (int(attn.dims[k]) for k in ("batch", "heads", "kv_heads", "kv_len"))
        q_len = int(attn.dims["q_len"])
        unf = unfused_prefill_attention(attn, recipe.name)
        # the softmax's output, or eager's (its cast probabilities, in the activation format)
        probs = unf[1].outputs[0] if len(unf) > 1 else TensorSpec("attn_probs", (B * H, q_len, S), attn.inputs[0].fmt)
        common = dict(repeat=attn.repeat, phase=attn.phase, group=attn.group)
        colsum = Op(f"{recipe.name}.column_sums", "add", {"rows": B * H * q_len, "cols": S}, (probs,),
                    (TensorSpec("h2o_scores", (B, H, S), "fp32", "state"),), compute_fmt=VECTOR_FMT, **common)
        sel = Op(f"{recipe.name}.select", "topk", {"rows": B * h, "cols": S, PER_PROMPT: True},
                 (TensorSpec("h2o_scores_kv", (B, h, S), "fp32", "state"),), (), compute_fmt=VECTOR_FMT, **common)
        return [*unf, colsum, sel, _gather_kept(attn, kept, recipe.name, layout)]

    def notes(kept):
        # the decode-time score state is real memory the KV footprint does not hold: said, with its size, not
        # charged (charging it would move every pinned H2O KV figure; a later change may)
        state = model.layers * model.heads * kept * 4
        return {"unfused_prefill_attention": not eager,  # under eager's backend the prefill reads eager's own
                **({"prefill_probabilities": "Hugging Face eager attention's (profile backend unfused)"} if eager
                   else {}),
                **_mla_note(model), "h2o_score_state_bytes_per_sequence": state,
                "note_h2o_score_state": f"H2O's accumulated fp32 scores ({model.layers} layers x {model.heads} heads "
                                        f"x {kept} kept tokens x 4 B = {state:,} B per sequence) are decode state "
                                        "outside kv_cache: not counted in the memory footprint"}

    # the reference sets its budgets from the prompt at prefill and keeps them (FMInference/H2O h2o_hf): a decode
    # trace given its prompt length reads them there, else from its context as one prompt. Beside a part compressing
    # the prompt alone (snapkv+h2o, h2o+rocketkv) its budget stays a share of the context (a composite's rule: the
    # serving probes' 1-token prompts are that part's, and would leave H2O no token)
    out = _evict(trace, recipe, lambda S: _h2o_budget(recipe, S), step, prefill, notes,
                 budget_from_prompt=reads_prompt_budget(recipe.method, recipe.beside))
    return charge_h2o_column_sums(charge_unfused_scores(trace, out))


def charge_h2o_column_sums(trace):
    """H2O's prefill peak, at the layer being evicted (one layer at a time):
      activations += B·H·Sp·Sp·act_bytes   one layer's probabilities (charge_unfused_scores; the
                                           activation format, not the KV format)
                   + B·H·Sp·4              that layer's column sums (h2o_scores, fp32 whatever the KV
                                           format: what this adds)
                   + B·(bytes(Sp) − bytes(kept))/L   the layer still holding its whole prompt's K/V
                                           (prefill_transient_kv: the only KV-format-dependent term)
    kv_cache = the steady state of every layer at `kept` tokens. Only the last term and kv_cache move
    with the KV format (fp8: half of bf16's); before session 20 the column sums were not charged."""
    if trace.phase != "prefill":
        return trace
    extra = max((sum(t.nbytes for t in op.outputs) for op in trace.ops if op.name.endswith(".column_sums")),
                default=0.0)
    return _add_activations(trace, extra)


def charge_unfused_scores(before, after):
    """A prefill that now materialises the Sp×Sp probabilities holds one layer's score
    matrix in memory (what build_trace(attention="unfused") counts)."""
    if before.phase != "prefill" or before.meta.get("attention") == "unfused":
        return after
    extra = 0.0
    for op in after.ops:
        if op.name == "attn_softmax":
            extra = max(extra, sum(t.nbytes for t in op.outputs))
    return _add_activations(after, extra)


def _add_activations(trace, extra: float):
    """The trace with `extra` bytes more activation memory in its footprint (itself when there are none)."""
    if not extra:
        return trace
    meta = dict(trace.meta)
    fp = dict(meta.get("footprint") or {})
    fp["activations"] = fp.get("activations", 0.0) + extra
    meta["footprint"] = fp
    return trace.replace_ops(trace.ops, meta=meta)


# ---- RazorAttention ----------------------------------------------------------------
def _cut_heads(tensors, h0: int, kv_heads: int, n_old: int, n_new: int) -> list[TensorSpec]:
    """Cache pieces of `kv_heads` of the h0 KV heads holding n_new of n_old tokens: resized
    (`resize_kv_tensors`: windows and sinks kept), then cut to these heads -- per-head pieces
    on their head axis, the builder's (batch·tokens, width) write on its width, flat outlier
    arrays and per-token scales (over all heads) in proportion to the heads. Other tensors
    pass."""
    frac = kv_heads / h0
    out = []
    for t in resize_kv_tensors(tensors, n_old, n_new):
        shape = list(t.shape)
        if t.role == "kv":
            if len(shape) == 4:
                shape[2] = kv_heads
            elif t.name.endswith(".lowrank") and len(shape) == 3:  # (batch, heads, factor elements)
                shape[1] = kv_heads
            elif t.name == "kv_write.out" and len(shape) == 2 and shape[1] % h0 == 0:  # width = K and V of h0 heads
                shape[1] = shape[1] // h0 * kv_heads
            elif _token_axis(t) is not None:
                ax = _token_axis(t)
                shape[ax] = int(round(shape[ax] * frac))
            elif len(shape) >= 2 and shape[0] == h0:  # codebooks, channel ranges and normalisers
                shape[0] = kv_heads
            elif t.name.endswith(".scale") and shape == [h0] and h0 > 1:  # a per-KV-head fp32 scale
                shape[0] = kv_heads
        out.append(TensorSpec(t.name, tuple(shape), t.fmt, t.role, t.density))
    return out


def _split_heads(attn: Op, kv_heads: int, kv_len: int, name: str) -> Op:
    """The attention of `kv_heads` of the KV heads (and their query groups) over kv_len
    tokens: its cache pieces are `_cut_heads`'."""
    h0, H0 = int(attn.dims["kv_heads"]), int(attn.dims["heads"])
    g = H0 // h0
    ins = []
    for t in _cut_heads(attn.inputs, h0, kv_heads, int(attn.dims["kv_len"]), kv_len):
        if t.name == "q" and len(t.shape) == 4:
            t = TensorSpec(t.name, t.shape[:2] + (kv_heads * g,) + t.shape[3:], t.fmt, t.role, t.density)
        ins.append(t)
    outs = tuple(TensorSpec(t.name, t.shape[:2] + (kv_heads * g,) + t.shape[3:], t.fmt, t.role, t.density)
                 if len(t.shape) == 4 else t for t in attn.outputs)
    return attn.with_(name=name, dims={**attn.dims, "heads": kv_heads * g, "kv_heads": kv_heads, "kv_len": kv_len},
                      inputs=tuple(ins), outputs=outs)


def razor_stored_bytes(tensors, h: int, n_ret: int, S: int, local_len: int) -> float:
    """Bytes of one layer's cache pieces (laid out for all h KV heads at S tokens) once
    RazorAttention has run: the n_ret retrieval heads keep all S tokens, the other heads
    sinks + window + 1 compensation token (`local_len`), each head's pieces as `_cut_heads`
    lays them out -- what the decode step's two attention ops read, and what prefill leaves
    stored."""
    kv = [t for t in tensors if t.role == "kv"]
    full = _cut_heads(kv, h, n_ret, S, S)
    local = _cut_heads(kv, h, h - n_ret, S, min(S, local_len))
    return sum(t.nbytes for t in full + local)


@register_method("razor_attention", {
    "retrieval_head_fraction": Param(0.16, float, fraction, "a fraction in [0, 1] of KV heads kept full"),
    "sink_tokens": Param(4, int, lambda x: x >= 0, "a non-negative token count"),
    "window": Param(512, int, lambda x: x > 0, "a positive token count"),
}, "full cache for retrieval heads; sinks + window + one compensation token for the rest")
def apply_razor(trace, model, recipe):
    """Per-head ragged cache: the decode attention splits in two ops, `attention` over
    all S tokens for the retrieval heads and `attention.local` over sinks + window + 1
    compensation token (mean of the dropped K/V) for the others; each dropped token
    updates the compensation running mean (2·d ops per local head and step)."""
    refuse_on_mla(recipe, model, "RazorAttention keeps the full cache for some KV heads and a window for the "
                                 "others (MLA's latent has no per-head part to drop)")
    p = recipe.params
    st = kv_state(trace)
    local_len = p["sink_tokens"] + p["window"] + 1

    def retrieval(h: int) -> int:
        return min(h, max(1, int(round(p["retrieval_head_fraction"] * h))))

    ops = list(trace.ops)
    frac_kept = None
    split = None  # the KV heads of a layer whose heads are split
    for attn in attention_ops(trace):
        h = int(attn.dims["kv_heads"])
        n_ret = retrieval(h)
        decode = is_decode_step(attn)
        # tokens each head of the layer caches: a decode step's read, or what prefill leaves cached
        # (kv_state's capacity: fewer than the prompt when an eviction recipe ran first)
        S = int(attn.dims["kv_len"]) if decode else min(int(attn.dims["kv_len"]), int(st["capacity"]))
        frac_kept = (n_ret * S + (h - n_ret) * min(S, local_len)) / (h * S) if S else 1.0
        if n_ret == h or S <= local_len:
            continue
        split = h
        if not decode:
            continue
        B = int(attn.dims["batch"])
        full = _split_heads(attn, n_ret, S, "attention")
        local = _split_heads(attn, h - n_ret, local_len, "attention.local")
        comp = Op(f"{recipe.name}.compensation_update", "add", {"rows": B * (h - n_ret), "cols": 2 * int(attn.dims["head_dim"])},
                  (), (), compute_fmt=VECTOR_FMT, repeat=attn.repeat, phase=attn.phase, group=attn.group)
        ops = replace_op(ops, attn, [full, local, comp])

    def kept_bytes(op, tensors, n):
        """One layer's pieces as each head keeps them (what the decode step's two attention ops read, or
        prefill's kv_write laid out the same); a layer whose heads are not split keeps its own."""
        h = int(op.dims.get("kv_heads", split))  # kv_write: the split layers' KV heads
        if retrieval(h) == h or n <= local_len:
            return sum(t.nbytes for t in tensors if t.role == "kv")
        return razor_stored_bytes(tensors, h, retrieval(h), n, local_len)

    cap = st["capacity"] * (frac_kept if frac_kept is not None else 1.0)
    # the cache holds each head's kept pieces (a quantized cache's windows and tables included)
    bpt = rescaled_bytes_per_token(trace, st, cap, kept_bytes) if split else st["bytes_per_token"]
    notes = {"local_tokens": local_len, "kv_fraction_kept": frac_kept}
    if frac_kept is not None and frac_kept >= 1.0:
        notes["note"] = ("every KV head is a retrieval head or the context fits sinks + window: "
                         "nothing evicted, trace unchanged")
    return rewrite(trace, ops, notes, kv={"capacity": cap, "read": cap, "bytes_per_token": bpt})


# ---- SnapKV ------------------------------------------------------------------------
def _snap_prefill(attn: Op, prefix: str, window: int, kernel: int, kept: int,
                  layout: tuple = (0, None)) -> list[Op]:
    """Observation-window votes: W queries score all Sp keys, softmax, sum over the
    window, 1-D pool, top-k per KV head, then gather the kept tokens: once a prompt, after
    its last token (the window is the prompt's last W queries), so every op but the
    attention is PER_PROMPT."""
    B, H, h, S, hd = (int(attn.dims[k]) for k in ("batch", "heads", "kv_heads", "kv_len", "head_dim"))
    W = min(window, S)
    fmt = next((t.fmt for t in attn.inputs if t.role == "kv"), "bf16")
    common = dict(repeat=attn.repeat, phase=attn.phase, group=attn.group)
    k_all = TensorSpec("k_cache", (B, S, h, hd), fmt, "kv")
    scores = TensorSpec(f"{prefix}.window_scores", (B * H, W, S), "fp32")
    votes = TensorSpec(f"{prefix}.votes", (B * H, S), "fp32")
    pooled = TensorSpec(f"{prefix}.pooled", (B * h, S), "fp32")
    once = {PER_PROMPT: True}
    return [
        attn,
        Op(f"{prefix}.window_scores", "gemm", {"b": B * H, "m": W, "n": S, "k": hd, **once},
           (TensorSpec("q_window", (B * H, W, hd), "bf16"), k_all), (scores,), **common),
        Op(f"{prefix}.window_softmax", "softmax", {"rows": B * H * W, "cols": S, **once}, (scores,), (scores,),
           **common),
        Op(f"{prefix}.vote_sum", "add", {"rows": B * H * W, "cols": S, **once}, (scores,), (votes,),
           compute_fmt=VECTOR_FMT, **common),
        Op(f"{prefix}.pool", "custom", {"flops": kernel * B * H * S, **once}, (votes,), (pooled,),
           compute_fmt=VECTOR_FMT, **common),
        Op(f"{prefix}.select", "topk", {"rows": B * h, "cols": max(S - W, 0), **once}, (pooled,), (),
           compute_fmt=VECTOR_FMT, **common),
        _gather_kept(attn, kept, prefix, layout),
    ]


@register_method("snapkv", {
    "capacity": Param(1024, int, lambda x: x > 0, "a positive token budget"),
    "window": Param(32, int, lambda x: x > 0, "a positive observation-window length"),
    "kernel": Param(7, int, lambda x: x > 0 and x % 2 == 1, "a positive odd pooling kernel"),
    "pooling": Param("max", str, choices=("max", "avg")),
}, "observation-window voting at the end of prefill; no decode overhead", prompt_only=True)
def apply_snapkv(trace, model, recipe):
    p = recipe.params
    recipe.require(p["window"] <= p["capacity"], "parameters.window", p["window"],
                   f"at most capacity ({p['capacity']}): the window is kept")

    def step(attn, kept):
        return resize_kv_read(attn, kept), [], []

    def prefill(attn, kept):
        if kept >= int(attn.dims["kv_len"]):  # a prompt within the budget is not voted on (SnapKV's update_kv
            return [attn]                     # returns it whole: q_len < max_capacity_prompt)
        return _snap_prefill(attn, recipe.name, p["window"], p["kernel"], kept, cache_layout(trace))

    return _evict(trace, recipe, lambda S: p["capacity"], step, prefill, lambda k: _mla_note(model),
                  prompt_only=True)


# ---- RocketKV ----------------------------------------------------------------------
@dataclass(frozen=True)
class RocketKVBudget:
    """How RocketKV splits its token budget for one prompt (per KV head). `applies` is
    False when the prompt fits the budget: nothing is evicted or gathered."""
    prompt_len: int
    token_budget: int
    applies: bool
    capacity: int  # tokens the cache holds: the kept prompt + the generation reserve
    new_tokens: int  # the generation reserve (new_tokens, clamped to capacity // 2)
    prompt_budget: int  # prompt tokens SnapKV++ keeps at the end of prefill (> 0)
    k: int  # tokens gathered per decode step
    chunk: int  # tokens per min/max key summary
    r: int  # key channels the approximate scores use
    alpha: float
    compression_ratio: float
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return asdict(self)

    def read_elements(self, head_dim: int, kv_tensors: int = 2, held: int | None = None) -> int:
        """Cache elements one decode step reads per KV head: r·ceil(capacity/chunk) chunk
        summaries (r channels of each key when chunk is 1; one of each chunk's min and max per
        selected channel, the max where the GQA group's summed q is positive: NVlabs/RocketKV@63637c8
        gpt-fast/rocket.py `i1_sign`, as the twin reads) + the k gathered tokens of each of
        the `kv_tensors` cached tensors (2: K and V; 1: MLA's latent, which is both) --
        ≈ 2·token_budget·d for K and V by construction. The whole cache, kv_tensors·P·d, when
        the prompt fits the budget (full attention). `held`: the tokens the cache holds at the step (the kept
        prompt and the generated tokens so far; None: the capacity, the reserve full)."""
        if not self.applies:
            return kv_tensors * self.prompt_len * head_dim
        held = self.capacity if held is None else int(held)
        return self.r * math.ceil(held / self.chunk) + kv_tensors * min(self.k, held) * head_dim


def rocketkv_budget(prompt_len: int, token_budget: int, head_dim: int, new_tokens: int) -> RocketKVBudget:
    """RocketKV's budget split, derived as NVlabs/RocketKV gpt-fast/rocket.py does
    (doc §1.2): compression ratio cr = P/B, α = min(0.2 + 0.06·log2 cr, 0.8), capacity
    P/cr^α, prompt budget capacity − new_tokens, k = B/2, chunk = min(⌊cr2⌋, ⌈√cr2⌉) and
    r = d·chunk/cr2 with cr2 = capacity/B. Two cases the formulas leave open are decided
    here, each with a note: a prompt that fits the budget (P ≤ B) is left whole (full
    attention, nothing evicted), and a generation reserve above half the capacity is
    clamped to capacity // 2, so the prompt budget is never below half the capacity
    (it went negative: P 256, B 128 gave capacity 213 and prompt budget −43). The
    pricing and the accuracy twin both call this."""
    P, B, d = int(prompt_len), int(token_budget), int(head_dim)
    if B <= 0 or d <= 0 or P < 0 or new_tokens < 0:
        raise ValueError(f"rocketkv_budget: got prompt_len {P}, token_budget {B}, head_dim {d}, new_tokens "
                         f"{new_tokens}; expected token_budget, head_dim > 0 and prompt_len, new_tokens >= 0")
    if P <= B:
        return RocketKVBudget(P, B, False, P, int(new_tokens), P, P, 1, d, 0.0, 1.0,
                              (f"prompt of {P} tokens fits the token budget {B}: full attention, "
                               "cache unchanged",))
    cr = P / B
    alpha = min(0.2 + 0.06 * math.log2(cr), 0.8)
    capacity = int(P / cr ** alpha)
    notes = []
    reserve = int(new_tokens)
    if reserve > capacity // 2:
        notes.append(f"new_tokens {new_tokens} exceeds half the capacity {capacity}: "
                     f"reserved {capacity // 2} for generated tokens")
        reserve = capacity // 2
    prompt_budget = capacity - reserve
    k = min(max(1, round(B / 2)), capacity)
    cr2 = max(1.0, capacity / B)
    chunk = min(math.floor(cr2), math.ceil(math.sqrt(cr2)))
    r = min(d, max(1, round(d * chunk / cr2)))
    if chunk == 1:
        notes.append("chunk 1: each key is its own min/max summary; no summary stored")
    return RocketKVBudget(P, B, True, capacity, reserve, prompt_budget, k, chunk, r, alpha, cr, tuple(notes))


def _rocketkv_generated_notes(q: RocketKVBudget, generated: int | None, held: int) -> list[str]:
    """What a decode step given its prompt length holds (_generated_note), and where generation outgrows the reserve
    its cache is sized for."""
    if not generated:
        return []
    if not q.applies:
        return [f"its {generated:,} generated tokens are kept whole"]
    said = _generated_note(q.prompt_len, generated, q.prompt_budget, held,
                           f"it evicts once, at the end of prefill; its generation reserve is {q.new_tokens:,}")
    if generated > q.new_tokens and held >= q.prompt_budget + generated:
        said += (f"; the generated tokens outgrow the reserve its cache of {q.capacity:,} tokens is sized for: priced "
                 f"holding them all (give new_tokens >= {generated:,} to size the cache for them)")
    return [said]


def cached_keys(trace, attn: Op) -> tuple[int, int, bool]:
    """(heads, width, latent) of the keys the cache holds, which RocketKV's summaries cover:
    K per KV head, or an MLA latent (kv_lora_rank + RoPE dims: one 'head', and it is the
    key; `latent` True). A decode attention reads the cache as stored; a prefill attention
    runs on materialised per-head K/V, so there the stored layout is kv_write's: a width
    other than K and V of the attention's heads is a latent."""
    h, d = int(attn.dims["kv_heads"]), int(attn.dims["head_dim"])
    if is_decode_step(attn):
        return h, d, not any(t.role == "kv" and t.name.startswith("v") for t in attn.inputs)
    cols, _ = cache_layout(trace)
    if not cols or cols == h * (d + int(attn.dims.get("v_head_dim", d))):
        return h, d, False
    return 1, cols, True


def _chunk_summary_bytes(trace, n_chunks: int, heads: int, head_dim: int) -> float:
    """Resident chunk summaries of one sequence: per chunk, the min and max of every key channel, in each cache's
    format, on every layer that writes the cache."""
    total = 0.0
    for w in find_all(trace, "kv_write"):
        fmt = next((t.fmt for t in w.outputs if t.role == "kv"), "bf16")
        total += TensorSpec("k_chunk_minmax", (1, n_chunks, heads, 2 * head_dim), fmt, "kv").nbytes * w.repeat
    return total


def _rocketkv_step(attn: Op, name: str, q: RocketKVBudget, held: int, hd: int, summaries: bool, fmt: str) -> list:
    """A decode step's ops: the approximate scores over the chunk summaries of the `held` tokens, the top-k, the
    attention gathering k of them, the summary update."""
    B, H, h = int(attn.dims["batch"]), int(attn.dims["heads"]), int(attn.dims["kv_heads"])
    g, r, n_chunks = H // h, q.r, math.ceil(held / q.chunk)
    common = dict(repeat=attn.repeat, phase=attn.phase, group=attn.group)
    q_in = next((t for t in attn.inputs if t.name == "q"), attn.inputs[0])
    kt = TensorSpec("k_chunk_minmax.selected" if summaries else "k_cache.selected_channels", (B, n_chunks, h, r), fmt,
                    "kv")
    before = [
        Op(f"{name}.q_channel_sum", "add", {"rows": B * h, "cols": g * hd}, (q_in,),
           (TensorSpec("q_abs_sum", (B, h, hd), "fp32"),), compute_fmt=VECTOR_FMT, **common),
        Op(f"{name}.channel_topk", "topk", {"rows": B * h, "cols": hd},
           (TensorSpec("q_abs_sum", (B, h, hd), "fp32"),), (), compute_fmt=VECTOR_FMT, **common),
        Op(f"{name}.approx_scores", "gemm", {"b": B * h, "m": g, "n": n_chunks, "k": r},
           (TensorSpec("q_selected", (B * h, g, r), "bf16"), kt),
           (TensorSpec("approx_scores", (B * h, g, n_chunks), "fp32"),), **common),
        Op(f"{name}.approx_softmax", "softmax", {"rows": B * h * g, "cols": n_chunks},
           (TensorSpec("approx_scores", (B * h, g, n_chunks), "fp32"),),
           (TensorSpec("approx_probs", (B * h, n_chunks), "fp32"),), compute_fmt=VECTOR_FMT, **common),
        Op(f"{name}.token_topk", "topk", {"rows": B * h, "cols": held},
           (TensorSpec("approx_probs", (B * h, n_chunks), "fp32"),), (), compute_fmt=VECTOR_FMT, **common),
    ]
    # stage 1 evicts to the capacity (fp16 windows survive eviction), stage 2
    # gathers k of the kept tokens (drawing from windows and body alike)
    new_attn = resize_kv_read(resize_kv_read(attn, held), min(q.k, held), proportional=True, gather=True,
                              kv_capacity=held)
    after = [Op(f"{name}.summary_update", "custom", {"flops": 2 * B * h * hd},
                (TensorSpec("k_chunk_minmax.row", (B, 1, h, 2 * hd), fmt, "kv"),),
                (TensorSpec("k_chunk_minmax.row", (B, 1, h, 2 * hd), fmt, "kv"),), **common)] if summaries else []
    return [*before, new_attn, *after]


@register_method("rocketkv", {
    "token_budget": Param(1024, int, lambda x: x > 0, "a positive token budget"),
    "window": Param(32, int, lambda x: x > 0, "a positive observation-window length"),
    "kernel": Param(63, int, lambda x: x > 0 and x % 2 == 1, "a positive odd pooling kernel"),
    "new_tokens": Param(256, int, lambda x: x >= 0, "a non-negative number of tokens to generate"),
}, "SnapKV++ eviction to a capacity, then hybrid top-k sparse attention each step", prompt_only=True)
def apply_rocketkv(trace, model, recipe):
    p = recipe.params
    st = kv_state(trace)
    S = int(st["context"])
    attn0 = (attention_ops(trace) or [None])[0]
    # the budget, summaries and reads are of what the cache holds (MLA: the latent, prefill and decode alike)
    hc, hd, latent = cached_keys(trace, attn0) if attn0 is not None else (model.kv_heads, model.head_dim, False)
    n_kv = 1 if latent else 2
    # a decode trace given its prompt length splits its budget from the prompt, which RocketKV compresses once at the
    # end of prefill; the generated tokens fill the reserve. Without one the context is the prompt, the reserve full
    prompt, generated = prompt_and_generated(trace) if trace.meta.get("prompt_len") else (S, None)
    q = rocketkv_budget(prompt, p["token_budget"], hd, p["new_tokens"])
    cap, chunk, k = q.capacity, q.chunk, q.k
    # tokens a decode step's cache holds: the kept prompt and the generated ones (or the capacity, the reserve full)
    held = min(cap if generated is None else q.prompt_budget + generated, int(st["capacity"]))
    notes = {k: v for k, v in q.as_dict().items() if k != "notes"}  # its notes go under `note`, once
    said = list(q.notes) + _rocketkv_generated_notes(q, generated, held)
    if latent and q.applies:
        said.append(MLA_TOKEN_NOTE + "; the per-chunk min/max summaries are of the whole latent (it is the key)")
    if said:
        notes["note"] = "; ".join(said)
    if not q.applies:  # the context fits the budget: RocketKV changes nothing
        return rewrite(trace, list(trace.ops), notes)
    alloc = max(cap, held)  # the reference sizes its cache at the capacity before the first step
    summaries = chunk > 1  # with chunk 1 the min/max of a chunk is the key itself: nothing extra stored
    ops = list(trace.ops)
    extra_bytes = 0.0
    decode = _decode_attn(trace)
    for attn in attention_ops(trace):
        B = int(attn.dims["batch"])
        fmt = next((t.fmt for t in attn.inputs if t.role == "kv"), "bf16")
        common = dict(repeat=attn.repeat, phase=attn.phase, group=attn.group)
        if attn in decode:
            ops = replace_op(ops, attn, _rocketkv_step(attn, recipe.name, q, held, hd, summaries, fmt))
        else:
            pb = min(q.prompt_budget, int(attn.dims["kv_len"]))
            snap = _snap_prefill(attn, recipe.name, p["window"], p["kernel"], pb, cache_layout(trace))
            # the min and max per chunk of the kept keys as cached (MLA: of the latent, one 'head')
            k_kept = TensorSpec("k_kept", (B, pb, hc, hd), fmt, "kv")
            build = [Op(f"{recipe.name}.summary_build", "custom", {"flops": 2 * B * pb * hc * hd, PER_PROMPT: True},
                        (k_kept,),
                        (TensorSpec("k_chunk_minmax", (B, math.ceil(pb / chunk), hc, 2 * hd), fmt, "kv"),),
                        **common)] if summaries else []
            ops = replace_op(ops, attn, [*snap, *build])
    extra_bytes += _chunk_summary_bytes(trace, math.ceil(min(alloc, int(st["capacity"])) / chunk), hc, hd) \
        if summaries else 0.0
    read = min(k, held) if decode else st["read"]
    notes["read_elements_per_kv_head"] = q.read_elements(hd, n_kv, held)  # what the decode ops' tensors read
    notes["traffic_reduction"] = n_kv * S * hd / notes["read_elements_per_kv_head"]
    if decode:
        notes["kept_tokens"] = held
    # a sequence's chunk summaries per token it holds (bytes): what a generated token adds beside its K and V
    notes["summary_bytes_per_token"] = _chunk_summary_bytes(trace, 1, hc, hd) / chunk if summaries else 0.0
    # decode holds its allocated capacity (more where generation outgrew the reserve); prefill ends holding the kept
    # prompt (the generation reserve fills as tokens are generated)
    kept_cap = min(alloc if decode else q.prompt_budget, int(st["capacity"]))
    transient = prefill_transient_kv(trace, st, kept_cap)
    return rewrite(trace, ops, notes, kv={"capacity": kept_cap, "read": read,
                                          "bytes_per_token": stored_bytes_per_token(trace, st, kept_cap),
                                          "extra_bytes": st.get("extra_bytes", 0.0) + extra_bytes,
                                          **transient_record(trace, st, transient)},
                   activations_delta=transient)
