"""Implementation profiles: which kernels a software stack launches for the same model.

The trace builder emits the ops of a plain Hugging Face model (separate q/k/v and gate/up
projections, unfused RoPE and norms). A profile rewrites that trace into the ops another
stack launches — like a compression recipe rewrites formats — so the cost models price
what that stack runs:

- ``attention``: the attention backend (``default``: what PyTorch's SDPA picks on the device,
  named by its calibration; ``fa2``; ``cudnn`` — FA3-class on Hopper; ``unfused`` — Hugging
  Face eager attention, priced as its separate kernels);
- ``fused_qkv`` / ``fused_gate_up``: one GEMM over the concatenated weights;
- ``fused_rope``: RoPE on q and k in one kernel (``rope_fused``);
- ``fused_add_norm``: the residual add folded into the following RMSNorm (``add_rmsnorm``);
- ``cuda_graphs``: the step replays as a CUDA graph (no host launch cost); recorded in the
  trace's meta for the reports and the end-to-end model.

Profiles: ``eager`` (a plain HF model, SDPA default attention, no graphs), ``hf_eager``
(the same with attn_implementation="eager": unfused attention), ``engine`` (vLLM /
TensorRT-LLM / SGLang: everything fused, CUDA graphs), ``engine_gemm`` (what
cosim/calibrate/microbench.py measures as "engine": fused QKV and gate-up GEMMs, CUDA graphs,
RoPE and norms as in the plain model).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from workloads.io import InputError
from workloads.ops import Op, TensorSpec
from workloads.trace import Trace

__all__ = ["ImplProfile", "PROFILES", "get_profile", "apply_profile", "unfused_attention_ops",
           "eager_attention_kernels", "eager_attention_peak_bytes", "expand_unfused", "is_unfused_attention",
           "backend_chosen_by", "with_attention_backend"]


@dataclass(frozen=True)
class ImplProfile:
    name: str
    attention: str = "default"
    fused_qkv: bool = False
    fused_gate_up: bool = False
    fused_rope: bool = False
    fused_add_norm: bool = False
    cuda_graphs: bool = False
    # set by the trace builder when the trace itself holds attention's kernels (attention="unfused", H2O's prefill):
    # what the header names in place of a backend
    attention_in_trace: str = ""

    def describe(self, hw_kind: str = "gpu") -> str:
        """One line, as a report's header names the profile; off a GPU (`hw_kind`) its CUDA graphs setting does
        not apply, and the line says so rather than "on"."""
        fused = [k[6:] for k in ("fused_qkv", "fused_gate_up", "fused_rope", "fused_add_norm") if getattr(self, k)]
        graphs = ("on" if self.cuda_graphs else "off") if hw_kind == "gpu" else f"n/a ({hw_kind})"
        return (f"{self.name}: attention {self.attention_in_trace or self.attention}, "
                f"fused {'+'.join(fused) or 'nothing'}, CUDA graphs {graphs}")


PROFILES = {
    "eager": ImplProfile("eager"),
    "hf_eager": ImplProfile("hf_eager", attention="unfused"),
    "engine": ImplProfile("engine", fused_qkv=True, fused_gate_up=True, fused_rope=True, fused_add_norm=True,
                          cuda_graphs=True),
    "engine_gemm": ImplProfile("engine_gemm", fused_qkv=True, fused_gate_up=True, cuda_graphs=True),
}
ATTENTION = ("default", "fa2", "cudnn", "unfused")


def get_profile(profile: str | ImplProfile, attention: str | None = None) -> ImplProfile:
    """A profile by name (optionally "name+backend", e.g. "engine+fa2"), or as given."""
    if isinstance(profile, ImplProfile):
        p = profile
    else:
        name, plus, att = str(profile).partition("+")
        if name not in PROFILES or (plus and not att):  # "engine+" names no backend: never read as "engine"
            from workloads.yamlsafe import hint
            raise InputError(f"profile: got {profile!r}; expected one of {', '.join(PROFILES)} "
                             f"(optionally +<attention backend>, e.g. engine+fa2){hint(name.lower(), PROFILES)}")
        p = PROFILES[name]
        attention = attention or att or None
    if attention:
        if attention not in ATTENTION:
            from workloads.yamlsafe import hint
            raise InputError(f"profile: attention backend: got {attention!r}; expected one of {', '.join(ATTENTION)}"
                             f"{hint(str(attention).lower(), ATTENTION)}")
        p = dataclasses.replace(p, attention=attention, name=p.name if attention == p.attention
                                else f"{p.name}+{attention}")
    return p


def backend_chosen_by(profile: str | ImplProfile | None) -> str:
    """Who chose the attention backend a calibrated level priced: a profile that names one ("hf_eager",
    "engine+cudnn"), else the device calibration's default (no profile, or one that leaves it, e.g. engine)."""
    p = get_profile(profile) if profile else None
    return f"profile {p.name}" if p is not None and p.attention != "default" else "the calibration's default"


def with_attention_backend(ops, backend: str) -> list:
    """Every attention op marked with `backend` (dims["backend"], which the cost models read)."""
    return [dataclasses.replace(op, dims={**op.dims, "backend": backend}) if op.kind == "attention" else op
            for op in ops]


def apply_profile(trace: Trace, profile: str | ImplProfile) -> Trace:
    p = get_profile(profile)
    ops = list(trace.ops)
    if p.attention != "default":
        ops = with_attention_backend(ops, p.attention)
    if p.fused_qkv:
        ops = _merge(ops, ("q_proj", "k_proj", "v_proj"), "qkv_proj")
    if p.fused_gate_up:
        for prefix in ("", "expert_", "shared_"):
            ops = _merge(ops, (f"{prefix}gate_proj", f"{prefix}up_proj"), f"{prefix}gate_up_proj")
    if p.fused_rope:
        ops = [dataclasses.replace(op, kind="rope_fused", dims={**op.dims, "tensors": 1}) if op.kind == "rope" else op
               for op in ops]
    if p.fused_add_norm:
        ops = _fuse_add_norm(ops)
    # the profile itself too (its fields, JSON-able): a report re-describes it for the hardware it runs on
    meta = {**trace.meta, "implementation": p.describe(), "cuda_graphs": p.cuda_graphs, "profile": p.name,
            "profile_fields": dataclasses.asdict(p)}
    if p.attention == "unfused" and "footprint" in meta:
        meta["footprint"] = _with_score_matrix(meta["footprint"], ops)
    return dataclasses.replace(trace, ops=tuple(ops), meta=meta)


def _with_score_matrix(footprint: dict, ops: list) -> dict:
    """Eager attention materialises its score matrices while a layer runs: the live activations grow by the
    largest attention op's `eager_attention_peak_bytes`."""
    sizes = [eager_attention_peak_bytes(op) for op in ops if op.kind == "attention"]
    if not sizes:
        return footprint
    return {**footprint, "activations": footprint.get("activations", 0.0) + max(sizes)}


def unfused_attention_ops(op: Op) -> list:
    """The unfused attention algorithm for one fused attention op: the score GEMM, the softmax and the PV GEMM,
    as build_trace(attention="unfused") emits them (the score matrix in memory, as LLM-Viewer counts it). The
    whole score matrix is computed, written and read: the causal or window mask is applied after the GEMM, so
    neither saves work. Hugging Face eager attention launches more kernels than these three (repeat_kv's copies,
    the scale, the mask add, an fp32 softmax and its cast): `eager_attention_kernels`, which a profile's
    "unfused" backend prices."""
    d = op.dims
    suffix = op.name[len("attention"):] if op.name.startswith("attention") else f"_{op.name}"
    q, *rest = op.inputs
    v_side = [t for t in rest if t.name.startswith("v_cache")]
    k_side = [t for t in rest if not t.name.startswith("v_cache")]
    kc, ks = k_side[0], tuple(k_side[1:])
    # MLA's PV GEMM reads the latent again as V, with its scale
    v_in, vs = (v_side[0], tuple(v_side[1:])) if v_side else (kc, ks)
    bh, ql, kvl, hd = d["batch"] * d["heads"], d["q_len"], d["kv_len"], d["head_dim"]
    scores = TensorSpec("attn_scores.out", (bh, ql, kvl), q.fmt, "activation")
    probs = TensorSpec("attn_softmax.out", (bh, ql, kvl), q.fmt, "activation")
    at = {"repeat": op.repeat, "phase": op.phase, "group": op.group}
    return [Op("attn_scores" + suffix, "gemm", {"b": bh, "m": ql, "n": kvl, "k": hd}, (q, kc, *ks), (scores,),
               op.compute_fmt, **at),
            Op("attn_softmax" + suffix, "softmax", {"rows": bh * ql, "cols": kvl}, (scores,), (probs,), q.fmt, **at),
            Op("attn_pv" + suffix, "gemm", {"b": bh, "m": ql, "n": d.get("v_head_dim", hd), "k": kvl},
               (probs, v_in, *vs), op.outputs, op.compute_fmt, **at)]


def eager_attention_kernels(op: Op, softcap: bool = True) -> list:
    """Every kernel Hugging Face eager attention launches for one fused attention op (eager_attention_forward;
    the kernels profiled in validation/logs/h200_attn_kernels.txt): repeat_kv's copies of K and V (GQA; MQA's
    are made inside torch.matmul, only when batch > 1), the score GEMM, the scale, Gemma-2's soft-cap (divide,
    tanh, multiply), the additive mask (causal prefill), the softmax in fp32, the cast back, the PV GEMM. The
    unfused algorithm's three kernels (`unfused_attention_ops`) plus the passes that stream the score matrix
    again. The calibrated GPU model prices the same list with fitted factors (hwmodels.gpu.unfused_parts), less the
    soft-cap's passes (measured without soft-capping: its rows say so); this one is for levels that price each
    kernel from its operands (the roofline, the cycle models). `softcap=False`: the list that model prices."""
    scores_op, softmax_op, pv_op = unfused_attention_ops(op)
    d, suffix = op.dims, scores_op.name[len("attn_scores"):]
    q, k_in = scores_op.inputs[0], scores_op.inputs[1:]
    v_in = pv_op.inputs[1:]
    bh, ql, kvl, act = d["batch"] * d["heads"], d["q_len"], d["kv_len"], q.fmt
    at = {"repeat": op.repeat, "phase": op.phase, "group": op.group}
    ops = []

    def copy(name, src, cols):  # a gathered (bh, kv_len, cols) operand the GEMM then reads
        out = TensorSpec(f"{name}{suffix}.out", (bh, kvl, cols), act, "activation")
        ops.append(Op(name + suffix, "copy", {"rows": bh * kvl, "cols": cols}, src, (out,), act, **at))
        return (out,)
    heads, kv_heads = d["heads"], d["kv_heads"]
    # GQA: repeat_kv copies; one KV head (MQA, MLA's latent): a view that torch.matmul copies when batch > 1
    if heads != kv_heads and (kv_heads > 1 or d["batch"] > 1):
        k_in = copy("repeat_k", k_in, d["head_dim"])
        v_in = copy("repeat_v", v_in, d.get("v_head_dim", d["head_dim"]))
    scores = scores_op.outputs[0]

    def pass_(name, kind, extra=(), out_fmt=act):
        nonlocal scores
        out = TensorSpec(f"{name}{suffix}.out", scores.shape, out_fmt, "activation")
        ops.append(Op(name + suffix, kind, {"rows": bh * ql, "cols": kvl}, (scores, *extra), (out,), act, **at))
        scores = out
    ops.append(dataclasses.replace(scores_op, inputs=(q, *k_in)))
    pass_("attn_scale", "mul")
    if softcap and d.get("softcap"):
        pass_("attn_softcap_div", "mul")
        pass_("attn_softcap_tanh", "softcap")  # one tanh per score, priced as the soft-cap's elementwise kind
        pass_("attn_softcap_mul", "mul")
    if d.get("causal", True) and ql > 1:
        pass_("attn_mask", "add", (TensorSpec(f"attn_mask{suffix}", (ql, kvl), act, "activation"),))
    pass_("attn_softmax", "softmax", out_fmt="fp32")
    pass_("attn_cast", "copy")
    ops.append(dataclasses.replace(pv_op, inputs=(scores, *v_in)))
    return ops


def eager_attention_peak_bytes(op: Op) -> float:
    """Bytes Hugging Face eager attention holds at its peak besides the layer's other activations: while
    `softmax(scores, dtype=float32).to(dtype)` runs, the masked scores, the fp32 probabilities and their cast are
    all live (the assignment frees the scores only after the cast), and repeat_kv's copies of K and V (GQA) live
    until the PV GEMM (one KV head's copies live only in their GEMM). Llama-3-8B prefill at 4,096 tokens:
    (2 + 4 + 2) bytes x 537 M scores + 2 x 34 MB copies."""
    ks = eager_attention_kernels(op)
    i = next(i for i, k in enumerate(ks) if k.kind == "softmax")
    k_copy, v_copy = (sum(k.outputs[0].nbytes for k in ks if k.name.startswith(p)) for p in ("repeat_k", "repeat_v"))
    softmax = ks[i].inputs[0].nbytes + ks[i].outputs[0].nbytes + ks[i + 1].outputs[0].nbytes
    if op.dims["kv_heads"] > 1:
        return k_copy + v_copy + softmax
    # one KV head: torch.matmul's copies are temporaries of their own GEMM (K's while the scores are written, V's
    # while the PV GEMM reads the cast probabilities)
    return max(k_copy + ks[i].inputs[0].nbytes, softmax, v_copy + ks[i + 1].outputs[0].nbytes)


def expand_unfused(ops) -> tuple[list, list]:
    """(ops with each attention op a profile marked "unfused" replaced by its eager kernels, the index range of
    each given op in them): for a cost model that has no kernel-library model of attention, so it prices the
    kernels eager attention launches, not one flash kernel."""
    out, spans = [], []
    for op in ops:
        parts = eager_attention_kernels(op) if is_unfused_attention(op) else [op]
        spans.append(range(len(out), len(out) + len(parts)))
        out.extend(parts)
    return out, spans


def is_unfused_attention(op: Op) -> bool:
    return op.kind == "attention" and op.dims.get("backend") == "unfused"


def _merge(ops: list, names: tuple, merged: str) -> list:
    """GEMMs on the same input (same m, k, repeat) -> one GEMM over the concatenated weights."""
    idx = [i for i, op in enumerate(ops) if op.name in names]
    if len(idx) != len(names):
        return ops
    parts = [ops[i] for i in idx]
    first = parts[0]
    if any(op.dims["m"] != first.dims["m"] or op.dims["k"] != first.dims["k"] or op.repeat != first.repeat
           for op in parts):
        return ops
    n = sum(op.dims["n"] for op in parts)
    w0 = first.inputs[1]
    wshape = w0.shape[:-1] + (sum(op.inputs[1].shape[-1] for op in parts),)
    x = first.inputs[0]
    y0 = first.outputs[0]
    w = TensorSpec(f"{merged}.weight", wshape, w0.fmt, w0.role, w0.density)
    y = TensorSpec(f"{merged}.out", y0.shape[:-1] + (n,), y0.fmt, y0.role)
    op = dataclasses.replace(first, name=merged, dims={**first.dims, "n": n}, inputs=(x, w), outputs=(y,))
    out = [o for i, o in enumerate(ops) if i not in idx[1:]]
    out[idx[0]] = op
    return out


def _fuse_add_norm(ops: list) -> list:
    """Engines fold each residual add into the RMSNorm that follows it (one kernel reads x and
    the residual, writes both): the *_residual adds disappear and the norms read and write
    one more tensor. (The first layer's norm has no residual to add: a one-layer overcount.)"""
    out = []
    for op in ops:
        if op.kind == "add" and op.name.endswith("_residual"):
            continue
        if op.kind == "rmsnorm" and op.name in ("attn_norm", "mlp_norm", "final_norm"):
            x = op.inputs[0]
            r = TensorSpec(f"{op.name}.residual", x.shape, x.fmt, x.role)
            op = dataclasses.replace(op, kind="add_rmsnorm", inputs=op.inputs + (r,), outputs=op.outputs + (r,))
        out.append(op)
    return out
