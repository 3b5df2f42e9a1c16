"""Trace builders: one transformer forward pass (prefill or one decode step) as ops.

Per-layer ops carry ``repeat = layers`` so a 80-layer model is still ~20 ops.

Conventions an architect should know:
- ``phase="prefill"``: ``batch`` prompts of ``seq`` tokens; causal attention.
- ``phase="decode"``: ``batch`` sequences each producing one token with ``seq`` tokens
  of context in the KV cache (the new token's K/V included).
- The LM head produces logits for the last position of each sequence only (what a
  serving engine computes), in both phases.
- The embedding table is *gathered* (one row per token), never streamed.
- MoE: routed-expert GEMMs are one op per projection; the weight tensor covers all
  experts with ``density`` = expected fraction touched by this step's tokens under
  uniform top-k routing, E_touched = E * (1 - (1 - k/E)^T).
- MLA (DeepSeek): prefill expands the latent into per-head K/V; decode uses the
  absorbed form, attending over the cached latent (one shared "KV head").
"""

from __future__ import annotations

from workloads.context import context_note
from workloads.formats import get_format
from workloads.io import InputError
from workloads.kv_scales import PLAIN_KV_SCALE, kv_scale_tensors
from workloads.models import ModelSpec, load_model
from workloads.moe import experts_touched  # noqa: F401  (re-exported: tests and users import it from here)
from workloads.ops import OVER_CONTEXT, Op, TensorSpec
from workloads.profiles import unfused_attention_ops
from workloads.template import template_for
from workloads.trace import Trace

__all__ = ["build_trace", "experts_touched", "wider_format", "ProfileConflict", "check_prompt_len"]


class ProfileConflict(InputError):
    """A trace whose attention is already the unfused algorithm's kernels (attention="unfused", H2O's prefill) given
    a profile naming another backend: its own class, so a sweep's up-front check (cosim.dse.combos) tells this rule
    from the other refusals a point can meet."""

PHASES = ("prefill", "decode")


def wider_format(a: str, b: str) -> str:
    """The format arithmetic on a×b runs in: the wider element of the two
    (bf16 activations × mxfp4 weights compute in bf16 after dequantisation)."""
    fa, fb = get_format(a), get_format(b)
    return a if fa.element_bits >= fb.element_bits else b


# Beyond these a run is a typo, not a workload (a 1e12-token context would need
# petabytes of KV cache); refusing early beats building a trace of absurd numbers.
MAX_BATCH = 1_000_000
MAX_SEQ = 100_000_000


def _check_positive(name: str, value, limit: int, source: str = "build_trace") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InputError(f"{source}: {name}: got {value!r}; expected a positive integer")
    if value > limit:
        raise InputError(f"{source}: {name}: got {value:,}; expected at most {limit:,}")
    return value


def build_trace(model: ModelSpec | str, phase: str = "decode", batch: int = 1, seq: int = 2048,
                weights: str | None = None, acts: str = "bf16", kv: str = "bf16", recipe: str | None = None,
                attention: str = "fused", parallel=None, profile=None,
                allow_beyond_max_context: bool = False, prompt_len: int | None = None) -> Trace:
    """Build the trace of one forward pass. ``attention="unfused"`` emits the
    score GEMM, softmax and PV GEMM instead of one flash-attention op. ``parallel``
    ({"tp": 8, "pp": 2, "ep": 8, "dp": 1, "sp": False, "microbatches": 1}) returns one
    device's sharded trace with its collectives (workloads.parallel). ``profile`` (a name
    such as "engine" or "eager+fa2", see workloads/profiles.py) rewrites the ops into the
    kernels that software stack launches. A ``seq`` beyond the model's maximum context is
    refused unless ``allow_beyond_max_context`` (then the trace carries a note). ``weights=None``
    is the format the model's checkpoint declares (`ModelSpec.weights_format`), else bf16.
    ``prompt_len`` (decode only): how many of the ``seq`` context tokens were the prompt, the rest
    generated; None reads the whole context as one prompt. Read by a recipe that compresses the prompt
    alone (SnapKV, FastKV, RocketKV: workloads.compression.registry.Method.prompt_only) and by one setting its budget
    from the prompt (H2O: Method.budget_from_prompt)."""
    model = load_model(model)
    batch = _check_positive("batch", batch, MAX_BATCH)
    seq = _check_positive("seq", seq, MAX_SEQ)
    prompt_len = check_prompt_len(prompt_len, phase, seq)
    weights, wnote = declared_weights_note(model, weights)
    note = context_note(model, seq, allow_beyond_max_context)
    notes = [n for n in (wnote, note, *model.import_notes) if n]
    if parallel is not None:
        if profile is not None:  # an empty name is a bad profile (get_profile says so), never "no profile"
            raise InputError("build_trace: profile and parallel together are not supported yet; "
                             "give one of them")
        from functools import partial

        from workloads.parallel import build_parallel_trace

        trace = build_parallel_trace(partial(build_trace, allow_beyond_max_context=True), model, batch, parallel,
                                     phase=phase, seq=seq, weights=weights, acts=acts, kv=kv, recipe=recipe,
                                     attention=attention, prompt_len=prompt_len)
        shard_note = declared_weights_note(model, weights)[1]  # each shard's build was given the resolved format
        kept = [n for n in trace.meta.get("notes", []) if n != shard_note or n in notes]
        trace.meta["notes"] = list(dict.fromkeys([*kept, *notes]))
        return trace
    if phase not in PHASES:
        raise InputError(f"build_trace: phase: got {phase!r}; expected one of {PHASES}")
    if attention not in ("fused", "unfused"):
        raise InputError(f"build_trace: attention: got {attention!r}; expected 'fused' or 'unfused'")
    for role, f in (("weights", weights), ("acts", acts), ("kv", kv)):
        try:
            get_format(f)
        except ValueError as e:
            raise InputError(f"build_trace: {role}: {e}") from None
    # the numbers come from the traced template of this structure (workloads.template);
    # the ops themselves are built only when someone reads trace.ops

    tmpl = template_for(model, phase, batch, seq, weights, acts, kv, attention, builder=_Builder)
    nums = tmpl.numbers(batch, seq)
    args = (model, phase, batch, seq, weights, acts, kv, attention)
    trace = Trace.deferred(lambda: _Builder(*args).ops(), numbers=(tmpl, nums), model=model.name, phase=phase,
                           batch=batch, seq=seq,
                           meta={"formats": {"weights": weights, "acts": acts, "kv": kv},
                                 "attention": attention, "footprint": tmpl.footprint(nums),
                                 "params": tmpl.params})
    if notes:  # priced on request (workloads.context) or by the checkpoint's format, never silently
        trace.meta["notes"] = notes
    if prompt_len is not None:  # only where given: a trace without one leaves meta as it was
        trace.meta["prompt_len"] = prompt_len
    if recipe:
        from workloads.compression import apply_recipe

        if profile is not None and attention == "fused":
            trace = _eager_before_recipe(trace, profile)
        trace = apply_recipe(trace, recipe, model)
        _note_recipe_formats(trace, recipe)
    # what the GEMMs compute in, a recipe's formats included (mxfp4_native runs them in mxfp4)
    anote = acts_format_note(acts, {op.compute_fmt for op in trace.ops if op.kind == "gemm"} if recipe
                             else {wider_format(acts, weights)})
    if anote:
        trace.meta["notes"] = [*trace.meta.get("notes", ()), anote]
    if profile is not None:
        from workloads.profiles import apply_profile

        trace = apply_profile(trace, _profile_with(profile, _unfused_form(trace, attention, recipe)))
    return trace


def check_prompt_len(prompt_len, phase: str, seq: int, source: str = "build_trace") -> int | None:
    """None, or the prompt's share of a decode step's `seq` context tokens: 1 .. seq (seq: all of it a prompt);
    `source` names the caller in the error (a sweep's up-front check, cosim.dse.combos, asks too)."""
    if prompt_len is None:
        return None
    if phase != "decode":
        raise InputError(f"{source}: prompt_len: got {prompt_len!r} with phase {phase!r}; expected None: a "
                         f"prefill's tokens are all its prompt (prompt_len splits a decode step's context)")
    _check_positive("prompt_len", prompt_len, MAX_SEQ, source)
    if prompt_len > seq:
        raise InputError(f"{source}: prompt_len: got {prompt_len:,}; expected at most seq ({seq:,}): the prompt "
                         f"is part of the decode step's context")
    return prompt_len


def _eager_before_recipe(trace, profile):
    """Hugging Face eager attention (a profile's "unfused" backend) writes its probabilities: a recipe that needs
    them (H2O's column sums, MiKV's saliency) reads eager's instead of materialising the unfused algorithm's, so the
    attention ops carry the backend before the recipe runs (apply_profile marks them again after it)."""
    from workloads.profiles import get_profile, with_attention_backend
    if get_profile(profile).attention != "unfused":
        return trace
    return trace.replace_ops(tuple(with_attention_backend(trace.ops, "unfused")))


def _unfused_form(trace, attention: str, recipe) -> str | None:
    """What made the trace compute attention as the unfused algorithm's own kernels (score GEMM, softmax, PV GEMM),
    named for an error: attention="unfused", or a recipe that needs the probabilities (H2O's prefill); None when
    its attention ops are fused ones a profile's backend prices."""
    if attention == "unfused":
        return "attention 'unfused'"
    if recipe and any(op.kind == "gemm" and op.name.startswith("attn_scores") for op in trace.ops):
        return f"recipe {recipe!r} (its attention materialises the probabilities)"
    return None


def _profile_with(profile, unfused_form: str | None):
    """The profile, its attention named by the trace's form. A trace that already holds the unfused algorithm's
    kernels takes a profile that leaves the backend to its default, and says so; a profile naming a backend prices
    other kernels (a flash kernel, or Hugging Face eager's further passes), so the pair is refused."""
    import dataclasses

    from workloads.profiles import get_profile

    p = get_profile(profile)
    if unfused_form is None:
        return p
    if p.attention != "default":
        what = ("Hugging Face eager's kernels (repeat_kv copies, scale, mask, fp32 softmax, cast: backend unfused)"
                if p.attention == "unfused" else f"one {p.attention} kernel")
        raise ProfileConflict(f"build_trace: {unfused_form} computes attention as the unfused algorithm's score GEMM, "
                              f"softmax and PV GEMM, and profile {p.name!r} prices it as {what}; they contradict each "
                              f"other: give one of them (a profile that leaves attention to its default, e.g. eager "
                              f"or engine, takes the unfused algorithm; a recipe reading the probabilities, e.g. "
                              f"H2O, also takes hf_eager's)")
    return dataclasses.replace(p, attention_in_trace="unfused algorithm (the trace's score GEMM, softmax, PV GEMM)")


def acts_format_note(acts: str, gemm_fmts) -> str | None:
    """Never silent: activations narrower than the weights do not make the GEMMs narrow (they compute in the wider
    format of the pair, wider_format); the activations' bytes are the narrow format's. `gemm_fmts`: the formats the
    trace's GEMMs compute in. None where none is wider than the activations."""
    bits = get_format(acts).element_bits
    wider = sorted(f for f in gemm_fmts if get_format(f).element_bits > bits)
    if not wider:
        return None
    return (f"acts {acts}: activations are stored and moved in {acts}, but GEMMs compute in {'/'.join(wider)} (the "
            f"wider of their weights' and the activations' formats); quantizing activations to {acts} is not priced "
            f"(give --weights {acts} too for {acts} GEMMs)")


def declared_weights_note(model: ModelSpec, weights: str | None) -> tuple[str, str | None]:
    """The weights format to build with, and a note when the model's checkpoint declares one:
    used by default (weights=None), or overridden by the caller (said so)."""
    declared = model.weights_format
    if declared is None:
        return weights or "bf16", None
    kept = [(what, f) for what, f in (("embedding", model.embed_format),
                                      ("lm_head", None if model.tie_embeddings else model.lm_head_format)) if f]
    tables = "".join(f"; {what} {f} (unquantized)" for what, f in kept)
    # a model file's own weights_format has no importer origin: name the field (was "(; the checkpoint's format)")
    origin = model.weights_origin or f"model {model.name!r} weights_format"
    if weights is None:
        return declared, (f"weights {declared} ({origin}; the checkpoint's format, used as no weights "
                          f"format was given{tables})")
    if isinstance(weights, str) and weights.strip().lower() == declared:
        return weights, f"weights {declared} ({origin}; the checkpoint's format{tables})"
    # the origin's later clauses (ignore entries priced as the declared format, g_idx counted, tables'
    # dtype) describe pricing in the declared format: an override prices every weight in its own
    method = origin.split("; ")[0]
    return weights, f"weights {weights} (given; overrides the checkpoint's {declared} from {method})"


def _note_recipe_formats(trace: Trace, recipe) -> None:
    """A recipe may store weights or KV in other formats than the flags named. `meta.formats` keeps the formats
    requested (format names a reader can parse: the CSV/JSON input columns); `meta.format_detail` says which
    stored tensors the trace holds in which format ("int2 K/V codes + fp16 scales/zeros + bf16 residual window
    (recipe kivi2; flag bf16)"), for the report headers: never the flag alone, never a bare list of formats."""
    fm = trace.meta["formats"]
    detail = {}
    w = _weight_parts(trace.ops, fm["acts"])
    if {f for f, groups in w.items() for g in groups if not g.startswith("norm gains")} != {fm["weights"]}:
        detail["weights"] = _joined(w, recipe, fm["weights"])
    kv = _kv_parts(trace.ops, fm["kv"])
    if kv and set(kv) != {fm["kv"]}:
        detail["kv"] = _joined(kv, recipe, fm["kv"])
    if detail:
        trace.meta["format_detail"] = detail


def _joined(parts: dict, recipe, flag: str) -> str:
    from workloads.formats import get_format
    order = sorted(parts, key=lambda f: get_format(f).bits_per_element)  # the narrowest (the recipe's codes) first
    return " + ".join(f"{f} {', '.join(parts[f])}" for f in order) + f" (recipe {recipe}; flag {flag})"


def _weight_parts(ops, acts: str) -> dict:
    """format -> weight groups stored in it (linear layers, embedding table, lm_head; norm gains, which are
    kept in the activation format)."""
    parts: dict = {}
    for op in ops:
        for t in op.inputs:
            if t.role != "weight":
                continue
            if op.kind == "embedding":
                g = "embedding table"
            elif op.kind == "gemm":
                g = "lm_head" if op.name == "lm_head" else "linear layers"
            else:
                g = "norm gains (activation format)" if "norm" in op.kind and t.fmt == acts else f"{op.kind} weights"
            parts.setdefault(t.fmt, {})[g] = None
    return {f: list(g) for f, g in parts.items()}


_KV_PART = {"": "{side} codes", "scale_zero": "scales/zeros", "scale": "scales", "residual": "residual window"}


def _kv_parts(ops, flag: str) -> dict:
    """format -> the KV-cache parts the attention reads in it: k_cache/v_cache themselves ("K/V codes", or
    "K/V cache" in the flag's format) and their side tensors (k_cache.scale_zero -> "scales/zeros")."""
    found: dict = {}
    for op in ops:
        if op.kind != "attention":
            continue
        for t in op.inputs:
            if t.role != "kv" or not t.name.startswith(("k_cache", "v_cache")):
                continue
            part = t.name[len("k_cache"):].lstrip(".")
            found.setdefault(t.fmt, {}).setdefault(part, set()).add(t.name[0].upper())
    out = {}
    for f, parts in found.items():
        names = []
        for part, sides in parts.items():
            side = "/".join(sorted(sides))
            if part in _KV_PART:
                name = "{side} cache" if part == "" and f == flag else _KV_PART[part]
                names.append(name.format(side=side) if part == "" else
                             (name if len(sides) == 2 else f"{side} {name}"))
            else:  # e.g. zipcache's hi / lo.scale_zero: "K/V hi", "K/V lo scales/zeros"
                names.append(f"{side} " + part.replace("scale_zero", "scales/zeros").replace(".", " ").replace("_", " "))
        out[f] = names
    return out


class _Builder:
    def __init__(self, m: ModelSpec, phase, batch, seq, wf, af, kf, attention):
        self.m, self.phase, self.B, self.S = m, phase, batch, seq
        self.wf, self.af, self.kf, self.attention = wf, af, kf, attention
        self.T = batch * seq if phase == "prefill" else batch  # tokens this pass
        self.q_len = seq if phase == "prefill" else 1
        self.gemm_fmt = wider_format(af, wf)
        # a quantized checkpoint keeps its embedding (and mostly its lm_head) in torch_dtype
        # (workloads.hf_quant.unquantized_formats); an overriding weights format covers all
        ckpt = m.weights_format is not None and str(wf).strip().lower() == m.weights_format
        self.embed_fmt = (m.embed_format if ckpt else None) or wf
        self.head_fmt = self.embed_fmt if m.tie_embeddings else (m.lm_head_format if ckpt else None) or wf
        # gpt-oss MXFP4 keeps the attention projections and the router in torch_dtype (ModelSpec.attn_format)
        self.attn_fmt = (m.attn_format if ckpt else None) or wf
        # GPTQ's g_idx (m.g_idx_bits per input channel of each quantized Linear, a quantized lm_head too):
        # stored beside the checkpoint's own format only; another weights format prices no index
        head_in = m.hidden if (not m.tie_embeddings and self.head_fmt == wf) else 0
        self.g_idx_bytes = (m.linear_inputs() + head_in) * m.g_idx_bits // 8 if ckpt else 0

    # ---- helpers --------------------------------------------------------
    def act(self, name, *shape):
        return TensorSpec(name, shape, self.af, "activation")

    def gemm(self, name, n, k, repeat, group, m=None, weight_shape=None, density=1.0, b=1, dims_extra=None,
             wfmt=None):
        m = self.T if m is None else m
        w = TensorSpec(f"{name}.weight", weight_shape or (k, n), wfmt or self.wf, "weight", density)
        x = self.act(f"{name}.in", b * m, k) if b == 1 else self.act(f"{name}.in", b, m, k)
        y = self.act(f"{name}.out", b * m, n) if b == 1 else self.act(f"{name}.out", b, m, n)
        dims = {"m": m, "n": n, "k": k}
        if b != 1:
            dims["b"] = b
        if dims_extra:
            dims.update(dims_extra)
        gemm_fmt = self.gemm_fmt if wfmt is None else wider_format(self.af, wfmt)
        return Op(name, "gemm", dims, (x, w), (y,), gemm_fmt, repeat, self.phase, group)

    def ew(self, name, kind, rows, cols, repeat, group, n_in=1, weight_cols=0, out_role="activation",
           out_fmt=None):
        ins = tuple(self.act(f"{name}.in{i}", rows, cols) for i in range(n_in))
        if weight_cols:
            ins += (TensorSpec(f"{name}.weight", (weight_cols,), self.af, "weight"),)
        out = TensorSpec(f"{name}.out", (rows, cols), out_fmt or self.af, out_role)
        return Op(name, kind, {"rows": rows, "cols": cols}, ins, (out,), self.af, repeat, self.phase, group)

    def residual(self, name, repeat, group):
        """A branch's residual add, after Granite's branch x residual_multiplier when the model has one:
        built together, so every add (attention, dense MLP, MoE) gets its scale."""
        T, h = self.T, self.m.hidden
        scale = ([self.ew(f"{name}_scale", "mul", T, h, repeat, group)]
                 if self.m.residual_multiplier is not None else [])
        return scale + [self.ew(name, "add", T, h, repeat, group, n_in=2)]

    def kv_scales(self, name, heads) -> tuple:
        """The fp32 scales a cache in the plain `kv:` format keeps for one layer (workloads.kv_scales: one per
        KV head for a bare FP8/FP6/FP4 or intN cache; none for 16-bit and block formats)."""
        return tuple(kv_scale_tensors(name, heads, get_format(self.kf), PLAIN_KV_SCALE))

    def kv_write(self, op, names, heads):
        """The cache write; a prompt's also writes the scales calibrated on it. A decode step's new token is
        quantized with the scales already stored (the simulation fixes them after prefill): no scale write."""
        if self.phase != "prefill":
            return op
        return op.with_(outputs=op.outputs + tuple(t for n in names for t in self.kv_scales(n, heads)))

    def kv_scale_bytes(self) -> int:
        """One sequence's stored scales over every layer (K and V, or MLA's one latent)."""
        m = self.m
        names, heads = (("k_cache",), 1) if m.mla else (("k_cache", "v_cache"), m.kv_heads)
        return m.layers * sum(t.nbytes for n in names for t in self.kv_scales(n, heads))

    # ---- the pass -------------------------------------------------------
    def ops(self):
        m, T, L, h = self.m, self.T, self.m.layers, self.m.hidden
        ops = [Op("embed", "embedding", {"rows": T, "cols": h},
                  (TensorSpec("embed.weight", (T, h), self.embed_fmt, "weight", block_axis=-1),),
                  (self.act("embed.out", T, h),), self.af, 1, self.phase, "embed")]
        ops.append(self.ew("attn_norm", m.norm, T, h, L, "attn", weight_cols=h))
        ops += self.mla_attention() if m.mla else self.attention_block()
        ops += self.residual("attn_residual", L, "attn")
        if m.dense_layers:
            ops.append(self.ew("mlp_norm", m.norm, T, h, m.dense_layers, "mlp", weight_cols=h))
            ops += self.mlp("", m.intermediate, m.dense_layers, "mlp")
            ops += self.residual("mlp_residual", m.dense_layers, "mlp")
        if m.moe:
            ops += self.moe_block()
        ops.append(self.ew("final_norm", m.norm, self.B, h, 1, "head", weight_cols=h))
        ops.append(self.gemm("lm_head", m.vocab, h, 1, "head", m=self.B,
                             wfmt=None if self.head_fmt == self.wf else self.head_fmt))
        if m.logit_softcap:  # Gemma-2: cap * tanh(logits / cap) over the vocabulary
            ops.append(self.ew("logit_softcap", "softcap", self.B, m.vocab, 1, "head"))
        if m.embed_multiplier is not None:  # Granite: embeddings x embedding_multiplier
            ops.insert(1, self.ew("embed_scale", "mul", T, h, 1, "embed"))
        if m.logit_scale is not None:  # Granite: logits / logits_scaling
            ops.append(self.ew("logit_scale", "mul", self.B, m.vocab, 1, "head"))
        if m.norms_per_layer == 4:  # Gemma-2: a post-norm after attention and after the MLP
            at = next(i for i, op in enumerate(ops) if op.name == "attn_residual")
            ops.insert(at, self.ew("attn_post_norm", m.norm, T, h, L, "attn", weight_cols=h))
            if m.dense_layers:
                at = next(i for i, op in enumerate(ops) if op.name == "mlp_residual")
                ops.insert(at, self.ew("mlp_post_norm", m.norm, T, h, m.dense_layers, "mlp", weight_cols=h))
        return ops

    def attention_block(self):
        m, T, L, h = self.m, self.T, self.m.layers, self.m.hidden
        af = None if self.attn_fmt == self.wf else self.attn_fmt
        ops = [self.gemm("q_proj", m.q_dim, h, L, "attn", wfmt=af),
               self.gemm("k_proj", m.kv_dim, h, L, "attn", wfmt=af),
               self.gemm("v_proj", m.kv_dim, h, L, "attn", wfmt=af)]
        if m.qk_norm and m.qk_norm_per_head:  # Qwen3 / Gemma-3: RMSNorm over every q and k head before RoPE
            ops += [self.ew("q_norm", "rmsnorm", T * m.heads, m.head_dim, L, "attn", weight_cols=m.head_dim),
                    self.ew("k_norm", "rmsnorm", T * m.kv_heads, m.head_dim, L, "attn", weight_cols=m.head_dim)]
        elif m.qk_norm:  # OLMo-2: one RMSNorm over the whole q projection, one over the whole k projection
            ops += [self.ew("q_norm", "rmsnorm", T, m.q_dim, L, "attn", weight_cols=m.q_dim),
                    self.ew("k_norm", "rmsnorm", T, m.kv_dim, L, "attn", weight_cols=m.kv_dim)]
        rope = L if m.rope_layers is None else m.rope_layers  # Llama-4: its NoPE layers apply none
        if rope:
            ops.append(self.ew("rope", "rope", T, m.rope_width, rope, "attn"))  # partial RoPE: its share
        if m.qk_l2norm and rope:  # Llama-4 use_qk_norm: a weightless RMS norm of each q and k head, RoPE layers
            ops += [self.ew("q_norm", "rmsnorm", T * m.heads, m.head_dim, rope, "attn"),
                    self.ew("k_norm", "rmsnorm", T * m.kv_heads, m.head_dim, rope, "attn")]
        if m.attn_temperature and m.nope_layers:  # Llama-4: NoPE layers' queries x a per-position scale
            ops.append(self.ew("q_temperature", "mul", T, m.q_dim, m.nope_layers, "attn"))
        ops.append(self.kv_write(self.ew("kv_write", "copy", T, 2 * m.kv_dim, L, "attn", out_role="kv",
                                         out_fmt=self.kf), ("k_cache", "v_cache"), m.kv_heads))
        ops += self.attend(m.heads, m.kv_heads, m.head_dim, m.head_dim, L, kv_role="kv", shared_latent=False)
        ops.append(self.gemm("o_proj", h, m.heads * m.head_dim, L, "attn", wfmt=af))
        return ops

    def mla_attention(self):
        m, T, L, h, a = self.m, self.T, self.m.layers, self.m.hidden, self.m.mla
        latent = a.kv_lora_rank + a.qk_rope_head_dim
        ops = []
        if a.q_lora_rank:
            ops += [self.gemm("q_a_proj", a.q_lora_rank, h, L, "attn"),
                    self.ew("q_a_norm", "rmsnorm", T, a.q_lora_rank, L, "attn", weight_cols=a.q_lora_rank),
                    self.gemm("q_b_proj", m.q_dim, a.q_lora_rank, L, "attn")]
        else:
            ops.append(self.gemm("q_proj", m.q_dim, h, L, "attn"))
        ops += [self.gemm("kv_a_proj", latent, h, L, "attn"),
                self.ew("kv_a_norm", "rmsnorm", T, a.kv_lora_rank, L, "attn", weight_cols=a.kv_lora_rank),
                self.ew("rope", "rope", T, m.heads * a.qk_rope_head_dim + a.qk_rope_head_dim, L, "attn"),
                self.kv_write(self.ew("kv_write", "copy", T, latent, L, "attn", out_role="kv", out_fmt=self.kf),
                              ("k_cache",), 1)]
        if self.phase == "prefill":
            # expand the latent into per-head keys (nope part) and values, then attend
            # over every cached latent each time the sequence runs (OVER_CONTEXT: vLLM's chunked-context MLA
            # prefill expands the cached latents again for each chunk)
            ops.append(self.gemm("kv_b_proj", m.heads * (a.qk_nope_head_dim + a.v_head_dim), a.kv_lora_rank, L, "attn",
                                 dims_extra={OVER_CONTEXT: True}))
            ops += self.attend(m.heads, m.heads, a.qk_nope_head_dim + a.qk_rope_head_dim, a.v_head_dim, L,
                               kv_role="activation", shared_latent=False)
        else:
            # absorbed: q_nope·W_UK per head, attention over the cached latent, then W_UV per head
            ops.append(self.gemm("q_absorb", a.kv_lora_rank, a.qk_nope_head_dim, L, "attn", m=self.T,
                                 b=m.heads, weight_shape=(m.heads, a.qk_nope_head_dim, a.kv_lora_rank)))
            ops += self.attend(m.heads, 1, latent, a.kv_lora_rank, L, kv_role="kv", shared_latent=True)
            ops.append(self.gemm("o_absorb", a.v_head_dim, a.kv_lora_rank, L, "attn", m=self.T,
                                 b=m.heads, weight_shape=(m.heads, a.kv_lora_rank, a.v_head_dim)))
        ops.append(self.gemm("o_proj", h, m.heads * a.v_head_dim, L, "attn"))
        return ops

    def attend(self, heads, kv_heads, d, dv, repeat, kv_role, shared_latent):
        """Attention of `repeat` layers; a model whose window covers only some layers
        (Gemma-2: every other one) gets a windowed op for those and a full one for the rest."""
        cl = self.m.chunk_layers
        if cl:  # Llama-4: chunked local attention on cl layers, the rest attend to the whole context
            full = repeat - cl
            return (self._attend_chunked(heads, kv_heads, d, dv, cl, kv_role, shared_latent)
                    + (self._attend(heads, kv_heads, d, dv, full, kv_role, shared_latent, False, "") if full else []))
        wl = self.m.window_layers
        if not wl or wl >= repeat:
            return self._attend(heads, kv_heads, d, dv, repeat, kv_role, shared_latent, bool(wl), "")
        return (self._attend(heads, kv_heads, d, dv, wl, kv_role, shared_latent, True, "_local")
                + self._attend(heads, kv_heads, d, dv, repeat - wl, kv_role, shared_latent, False, ""))

    def _attend_chunked(self, heads, kv_heads, d, dv, repeat, kv_role, shared_latent):
        """Chunked local attention (Llama-4): a query attends causally to the keys of its own chunk of
        C = attention_chunk tokens only. Decode: the new token at position S - 1 reads the
        (S - 1) mod C + 1 keys of its chunk. Prefill: the S // C whole chunks of every prompt are
        B x (S // C) independent causal attentions of C tokens, the last S mod C tokens one more
        of that length (what a varlen kernel runs: vLLM's local-attention virtual batches), so every
        cost model prices exactly the attended pairs, without a chunk-aware kernel model."""
        C, S = self.m.attention_chunk, self.S
        if self.phase == "decode":
            return self._attend(heads, kv_heads, d, dv, repeat, kv_role, shared_latent, False, "_chunked",
                                kvl=(S - 1) % C + 1)
        whole, rest = S // C, S % C
        ops = []
        if whole > 0:
            ops += self._attend(heads, kv_heads, d, dv, repeat, kv_role, shared_latent, False, "_chunked",
                                kvl=C, B=self.B * whole, q=C)
        if rest > 0:
            ops += self._attend(heads, kv_heads, d, dv, repeat, kv_role, shared_latent, False, "_chunked_tail",
                                kvl=rest, q=rest)
        return ops

    def _attend(self, heads, kv_heads, d, dv, repeat, kv_role, shared_latent, windowed, suffix, kvl=None, B=None,
                q=None):
        B = self.B if B is None else B
        q = self.q_len if q is None else q
        # a sliding-window cache holds at most `window` tokens
        if kvl is None:
            kvl = min(self.S, self.m.sliding_window) if (windowed and self.phase == "decode") else self.S
        kfmt = self.kf if kv_role == "kv" else self.af
        qt = self.act("q", B, q, heads, d)
        kc = TensorSpec("k_cache", (B, kvl, kv_heads, d), kfmt, kv_role)
        # MLA's absorbed values are the first kv_lora_rank columns of the same latent: read once
        vc = () if shared_latent else (TensorSpec("v_cache", (B, kvl, kv_heads, dv), kfmt, kv_role),)
        # a narrow cache is read with its fp32 scales (kv_scales: one per KV head, as the simulation keeps them);
        # MLA's one latent 'head' has one scale, read with the latent (hwmodels.gpu does not count a `.scale`
        # input as a V cache) and no V scale
        ks = self.kv_scales("k_cache", kv_heads) if kv_role == "kv" else ()
        vs = self.kv_scales("v_cache", kv_heads) if kv_role == "kv" and not shared_latent else ()
        out = self.act("attention.out", B, q, heads, dv)
        window = self.m.sliding_window if (windowed and self.phase == "prefill") else 0
        dims = {"batch": B, "heads": heads, "kv_heads": kv_heads, "q_len": q, "kv_len": kvl,
                "head_dim": d, "causal": True}
        if dv != d:
            dims["v_head_dim"] = dv
        if window and window < kvl:
            dims["window"] = window
        if self.m.attn_softcap:  # tanh capping of the scores inside the kernel: ~3 FLOPs per score
            dims["softcap"] = self.m.attn_softcap
        cfmt = wider_format(self.af, kfmt)
        fused = Op("attention" + suffix, "attention", dims, (qt, kc, *ks, *vc, *vs), (out,), cfmt, repeat,
                   self.phase, "attn")
        # unfused: the score GEMM, softmax and PV GEMM (a profile's "unfused" backend prices Hugging Face eager's
        # further passes too: workloads.profiles.eager_attention_kernels)
        return [fused] if self.attention == "fused" else unfused_attention_ops(fused)

    def mlp(self, prefix, width, repeat, group, m=None, density=1.0, weight_lead=None, extra=None):
        T = self.T if m is None else m
        h = self.m.hidden
        ws = (lambda k, n: (weight_lead, k, n)) if weight_lead else (lambda k, n: None)
        ops = []
        if self.m.gated_mlp:
            ops.append(self.gemm(f"{prefix}gate_proj", width, h, repeat, group, m=T,
                                 weight_shape=ws(h, width), density=density, dims_extra=extra))
        ops.append(self.gemm(f"{prefix}up_proj", width, h, repeat, group, m=T,
                             weight_shape=ws(h, width), density=density, dims_extra=extra))
        gated = "silu_mul" if self.m.activation == "silu" else "gelu_mul"  # SwiGLU / GeGLU
        ops.append(self.ew(f"{prefix}act", gated if self.m.gated_mlp else "gelu", T, width, repeat,
                           group, n_in=2 if self.m.gated_mlp else 1))
        ops.append(self.gemm(f"{prefix}down_proj", h, width, repeat, group, m=T,
                             weight_shape=ws(width, h), density=density, dims_extra=extra))
        return ops

    def moe_block(self):
        m, T, h, e = self.m, self.T, self.m.hidden, self.m.moe
        L = m.moe_layers
        router_w = TensorSpec("router.weight", (h, e.num_experts), self.attn_fmt, "weight")
        ops = [self.ew("mlp_norm", m.norm, T, h, L, "moe", weight_cols=h),
               Op("router", "moe_router", {"tokens": T, "experts": e.num_experts, "hidden": h},
                  (self.act("router.in", T, h), router_w), (self.act("router.out", T, e.num_experts),),
                  wider_format(self.af, self.attn_fmt), L, self.phase, "moe")]
        touched = experts_touched(e.num_experts, e.top_k, T)
        extra = {"experts": e.num_experts, "experts_touched": touched, "top_k": e.top_k}
        ops += self.mlp("expert_", e.expert_intermediate, L, "moe", m=T * e.top_k,
                        density=touched / e.num_experts, weight_lead=e.num_experts, extra=extra)
        if e.shared_intermediate:
            ops += self.mlp("shared_", e.shared_intermediate, L, "moe")
        if e.shared_expert_gate:  # Qwen2-MoE: sigmoid(x . w) scales the shared expert's output per token
            ops += [self.gemm("moe_shared_gate", 1, h, L, "moe"),
                    self.ew("moe_shared_gate_mul", "mul", T, h, L, "moe")]
        ops += self.residual("mlp_residual", L, "moe")
        return ops

    # ---- memory footprint (bytes, whole batch) ------------------------------
    def weight_bytes(self, ops) -> float:
        """Stored bytes of the model's weights: every matrix the ops multiply by (GEMMs, routers) with
        its repeat, as stored (TensorSpec.stored_bytes), plus the whole embedding table (the embedding op
        reads only its rows; blocked along its rows of `hidden`, as that op's table is); a tied lm_head
        is that table, counted once. The remaining parameters (norm gains, biases: vectors no op here
        stores as a weight matrix) are priced at the weights format's amortised bits, as before."""
        m = self.m
        counted, stored = 0, 0.0
        for op in ops:
            if op.kind not in ("gemm", "moe_router") or (op.name == "lm_head" and m.tie_embeddings):
                continue
            for t in op.inputs:
                if t.role == "weight":
                    counted += t.numel * op.repeat
                    stored += t.stored_bytes * op.repeat
        # the table as stored: blocked along its rows, or in 2-D tiles (fp8_block) like any matrix
        tiles = get_format(self.embed_fmt).block_shape is not None
        table = TensorSpec("embed.weight", (m.vocab, m.hidden), self.embed_fmt, "weight",
                           block_axis=None if tiles else -1)
        rest = m.params - counted - table.numel
        if rest < 0:  # the ops hold more weights than the model's parameter count: a builder/ModelSpec drift
            raise ValueError(f"model {m.name}: the trace's weight matrices hold {counted + table.numel:,} "
                             f"elements, more than its {m.params:,} parameters")
        return stored + table.stored_bytes + rest * get_format(self.wf).bits_per_element / 8

    def footprint(self, ops=None) -> dict:
        """Memory of the whole batch (bytes). `ops`: this builder's `ops()` (built when not given). The weights are the bytes
        its matrices are stored in, counted as the ops count them (TensorSpec.stored_bytes: a short last
        group whole, a per-tensor scale per matrix; every expert, whatever a step touches)."""
        m = self.m
        a_bytes = get_format(self.af).bits_per_element / 8
        weights = self.weight_bytes(self.ops() if ops is None else ops)
        weights += self.g_idx_bytes  # a constant per layer (0 but for a GPTQ checkpoint in its own format)
        # windowed layers cache at most `window` tokens, the others the whole sequence
        # (Llama-4's chunked layers: at most one chunk, min(S, attention_chunk) tokens)
        wl, cl = m.window_layers, m.chunk_layers
        win = min(self.S, m.sliding_window) if wl else self.S
        chunk = min(self.S, m.attention_chunk) if cl else self.S
        cached = self.B * (wl * win + cl * chunk + (m.layers - wl - cl) * self.S) / m.layers
        # + each sequence's fp32 scales of a narrow cache (static: they do not grow with the tokens)
        kv_cache = cached * m.kv_bytes_per_token(self.kf) + self.B * self.kv_scale_bytes()
        widest = max(m.intermediate, (m.moe.expert_intermediate * m.moe.top_k + m.moe.shared_intermediate) if m.moe else 0)
        # live activations of one layer: residual + normed input, the widest MLP pair,
        # q/k/v; plus fp32 logits of the last positions
        per_token = 2 * m.hidden + 2 * widest + m.q_dim + 2 * m.kv_dim
        acts = self.T * per_token * a_bytes + self.B * m.vocab * 4
        if self.attention == "unfused":
            acts += self.B * m.heads * self.q_len * self.S * a_bytes
        return {"weights": weights, "kv_cache": kv_cache, "activations": acts}
