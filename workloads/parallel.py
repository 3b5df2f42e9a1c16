"""Parallel layouts as a trace transformation: shard one device's work and emit collectives.

``shard_trace(trace, model, layout)`` rewrites a whole-model trace (from the builder, after
any compression recipe) into what ONE device executes under a layout, exactly as a recipe
rewrites a trace. It knows nothing of links or bandwidths: collectives are ops whose message
sizes follow from their tensors (see hwmodels.collectives for the nccl-tests conventions).

Layout (Megatron / vLLM placement: tensor parallel innermost, then data, then pipeline):
- ``tp``: column-parallel q/k/v, gate/up and lm_head, row-parallel o_proj and down_proj;
  attention heads split over TP ranks; KV heads split too, or *replicated* (one per rank)
  when kv_heads < tp. Two all-reduces of T x hidden per layer (after o_proj and down_proj),
  or with ``sp`` (sequence parallel) a reduce-scatter + all-gather pair in their place and
  norms / residuals on T/tp rows. Vocab-parallel embedding (+ all-reduce) and lm_head
  (+ all-gather of the logits).
- ``ep``: E/ep whole experts per rank in contiguous blocks; the EP group spans whole
  TP groups (ep a multiple of tp, dividing tp x dp). ``routing`` (workloads.routing) sets how
  unevenly tokens reach the experts; the trace is the busiest device's (gamma x the mean rows). Tokens are dispatched and combined by
  two all-to-alls (each rank owns T/tp tokens, sending T/tp x top_k x hidden); with tp > 1
  an all-gather restores replicated activations. ep = 1 shards every expert's width by tp.
- ``pp``: layers split into pp contiguous stages (earlier stages take the remainder); the
  trace still lists the whole path of one micro-batch (all stages in sequence, plus pp-1
  point-to-point sends of T x hidden); memory is per device of the fullest stage. With
  ``microbatches`` m the trace is one micro-batch; the bubble fraction is (p-1)/(m+p-1).
- ``dp``: replicas; the trace is one replica's share, batch / dp sequences.
Ops a compression recipe inserted are sharded with the op or block they serve
(workloads.parallel_recipe; each op's share in ``meta["parallel"]["recipe_op_shares"]``). Ops the
transformation does not know stay whole and are listed in ``meta["parallel"]["unsharded_ops"]`` —
replicated work, never silently dropped.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Mapping

from workloads.moe import experts_touched
from workloads.parallel_recipe import apply_share, head_summed, recipe_share
from workloads.routing import describe, ep_imbalance, parse_routing
from workloads.formats import get_format
from workloads.io import InputError
from workloads.models import ModelSpec
from workloads.ops import OVER_CONTEXT, PER_PROMPT, Op, TensorSpec
from workloads.trace import Trace

__all__ = ["Layout", "parse_layout", "check_layout", "shard_trace", "stage_layers",
           "bubble_fraction", "device_params", "collective", "build_parallel_trace"]


@dataclass(frozen=True)
class Layout:
    tp: int = 1
    pp: int = 1
    ep: int = 1
    dp: int = 1
    sp: bool = False
    microbatches: int = 1
    routing: object = "uniform"  # expert routing under EP (workloads.routing): uniform, sampled, zipf:<s>, loads

    @property
    def devices(self) -> int:
        return self.tp * self.pp * self.dp

    def to_dict(self) -> dict:
        return asdict(self)

    def label(self) -> str:
        s = f"tp{self.tp}-pp{self.pp}-ep{self.ep}-dp{self.dp}"
        s += ("-sp" if self.sp else "") + (f"-mb{self.microbatches}" if self.microbatches > 1 else "")
        if self.routing != "uniform":
            s += "-" + (self.routing.replace(":", "") if isinstance(self.routing, str) else "measured")
        return s


def parse_layout(parallel, source: str = "parallel") -> Layout:
    """A Layout from a dict such as {"tp": 8, "pp": 2}; unknown keys or non-positive ranks are errors."""
    if isinstance(parallel, Layout):
        return parallel
    if not isinstance(parallel, Mapping):
        raise InputError(f"{source}: got {parallel!r}; expected a mapping such as {{'tp': 8, 'pp': 2}}")
    fields = Layout.__dataclass_fields__
    for k in parallel:
        if k not in fields:
            raise InputError(f"{source}: {k}: got {k!r}; expected one of {', '.join(fields)}")
    vals = {}
    for k, v in parallel.items():
        if k == "sp":
            if not isinstance(v, bool):
                raise InputError(f"{source}: sp: got {v!r}; expected true or false")
        elif k == "routing":
            v = parse_routing(v, source=f"{source}: routing")
        elif isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise InputError(f"{source}: {k}: got {v!r}; expected a positive integer")
        vals[k] = v
    return Layout(**vals)


def check_layout(layout: Layout, model: ModelSpec, batch: int, source: str = "parallel") -> None:
    """Refuse layouts that cannot shard this model exactly, naming the rule broken."""
    t = layout.tp
    if model.heads % t:
        raise InputError(f"{source}: tp: got {t}; expected a divisor of the {model.heads} attention heads "
                         f"of {model.name} (heads are split whole across tensor-parallel ranks)")
    if not model.mla and model.kv_heads % t and t % model.kv_heads:
        raise InputError(f"{source}: tp: got {t}; expected a divisor or a multiple of the {model.kv_heads} KV "
                         f"heads of {model.name} (KV heads are split, or replicated when fewer than tp)")
    widths = [("intermediate", model.intermediate)] if model.dense_layers and model.intermediate else []
    if model.moe and layout.ep == 1:
        widths.append(("moe.expert_intermediate", model.moe.expert_intermediate))
    for name, w in widths:
        if w % t:
            raise InputError(f"{source}: tp: got {t}; expected a divisor of {name} ({w}) of {model.name}")
    if layout.ep > 1:
        if not model.moe:
            raise InputError(f"{source}: ep: got {layout.ep}; expected 1 for {model.name}, which has no experts")
        E = model.moe.num_experts
        if E % layout.ep:
            raise InputError(f"{source}: ep: got {layout.ep}; expected a divisor of the {E} experts of {model.name}")
        if isinstance(layout.routing, tuple) and len(layout.routing) != E:
            raise InputError(f"{source}: routing: got {len(layout.routing)} loads; expected one per expert ({E}) "
                             f"of {model.name}")
        if layout.ep % t or (t * layout.dp) % layout.ep:
            raise InputError(f"{source}: ep: got {layout.ep}; expected a multiple of tp ({t}) that divides "
                             f"tp x dp ({t * layout.dp}): the expert-parallel group spans whole TP groups")
    if layout.pp > model.layers:
        raise InputError(f"{source}: pp: got {layout.pp}; expected at most the {model.layers} layers of {model.name}")
    if batch % (layout.dp * layout.microbatches):
        raise InputError(f"{source}: dp x microbatches: got {layout.dp} x {layout.microbatches}; expected a "
                         f"divisor of the batch ({batch}): each replica and micro-batch gets whole sequences")


def stage_layers(layers: int, pp: int) -> list[int]:
    """Layers per pipeline stage; earlier stages take the remainder (80 over 3 -> 27, 27, 26)."""
    return [layers // pp + (1 if s < layers % pp else 0) for s in range(pp)]


def bubble_fraction(pp: int, microbatches: int) -> float:
    """Idle share of a synchronous pipeline step (GPipe): (p-1)/(m+p-1)."""
    return (pp - 1) / (microbatches + pp - 1)


def _kv_local(model: ModelSpec, tp: int) -> int:
    if model.mla:
        return model.kv_heads  # MLA's latent cache is shared by all heads: replicated under TP
    return max(1, model.kv_heads // tp)


# ---------------------------------------------------------------------------- per-device parameters

def _layer_params(model: ModelSpec, L: Layout, moe: bool) -> float:
    """Parameters one device holds for one layer (dense or MoE)."""
    t, h = L.tp, model.hidden
    if model.mla:
        a = model.mla
        q = h * model.q_dim / t if a.q_lora_rank is None else h * a.q_lora_rank + a.q_lora_rank * model.q_dim / t
        attn = (q + h * (a.kv_lora_rank + a.qk_rope_head_dim)
                + a.kv_lora_rank * model.heads * (a.qk_nope_head_dim + a.v_head_dim) / t
                + model.heads * a.v_head_dim * h / t + a.kv_lora_rank)
    else:
        kvd = _kv_local(model, t) * model.head_dim
        bias = (model.q_dim / t + 2 * kvd) if model.qkv_bias else 0
        attn = h * model.q_dim / t + 2 * h * kvd + model.q_dim / t * h + bias
        attn += model.heads / t if model.attn_sinks else 0  # gpt-oss: one sink per head, split with the heads
    total = attn + 2 * h
    if not moe:
        return total + model.mlp_params(model.intermediate) / t
    m = model.moe
    experts = m.num_experts * model.mlp_params(m.expert_intermediate)
    experts = experts / L.ep if L.ep > 1 else experts / t
    shared = model.mlp_params(m.shared_intermediate) / (1 if L.ep > 1 else t)
    return total + experts + shared + m.num_experts * h


def device_params(model: ModelSpec, L: Layout) -> list[float]:
    """Parameters held by one device of each pipeline stage."""
    stages = stage_layers(model.layers, L.pp)
    out, start = [], 0
    for s, n in enumerate(stages):
        dense = sum(not model.is_moe_layer(i) for i in range(start, start + n))  # interleaved MoE: by index
        p = (dense * _layer_params(model, L, False) if dense else 0.0) + \
            ((n - dense) * _layer_params(model, L, True) if n > dense else 0.0)
        if s == 0:
            p += model.embedding_params() / L.tp
        if s == len(stages) - 1:
            p += model.vocab * model.hidden / L.tp + model.hidden  # lm_head (tied: a copy) + final norm
        out.append(p)
        start += n
    return out


# ---------------------------------------------------------------------------- tensor and op rewriting

def _resize(t: TensorSpec, axis: int, size: int) -> TensorSpec:
    shape = list(t.shape)
    shape[axis] = max(1, int(size))
    return replace(t, shape=tuple(shape))


def _scale(t: TensorSpec, axis: int, num: int, den: int) -> TensorSpec:
    return _resize(t, axis, math.ceil(t.shape[axis] * num / den))


def _gemm(op: Op, n=None, k=None, m=None, lead=None, density=None, extra=None) -> Op:
    """Re-dimension a builder GEMM (x: (m,k) or (b,m,k); w: (k,n) or (lead,k,n); y: (m,n))."""
    d = dict(op.dims)
    n = d["n"] if n is None else n
    k = d["k"] if k is None else k
    m = d["m"] if m is None else m
    x, w = op.inputs[0], op.inputs[1]
    y = op.outputs[0]
    b = d.get("b", 1)
    x = replace(x, shape=(b * m, k) if len(x.shape) == 2 else (b, m, k))
    y = replace(y, shape=(b * m, n) if len(y.shape) == 2 else (b, m, n))
    if len(w.shape) == 2:
        w = replace(w, shape=(k, n))
    else:
        w = replace(w, shape=(w.shape[0] if lead is None else lead, k, n))
    if density is not None:
        w = replace(w, density=density)
    d.update(m=m, n=n, k=k, **(extra or {}))
    return op.with_(dims=d, inputs=(x, w) + op.inputs[2:], outputs=(y,) + op.outputs[1:])


def _rows(op: Op, rows: int) -> Op:
    """An elementwise op on fewer rows (sequence-parallel norms and residuals)."""
    ins = tuple(t if t.role == "weight" else _resize(t, 0, rows) for t in op.inputs)
    outs = tuple(_resize(t, 0, rows) for t in op.outputs)
    return op.with_(dims={**op.dims, "rows": rows}, inputs=ins, outputs=outs)


def _cols(op: Op, cols: int) -> Op:
    ins = tuple(t if t.role == "weight" else _resize(t, -1, cols) for t in op.inputs)
    outs = tuple(_resize(t, -1, cols) for t in op.outputs)
    return op.with_(dims={**op.dims, "cols": cols}, inputs=ins, outputs=outs)


def collective(name: str, kind: str, rows: int, cols: int, fmt: str, ranks: int, stride: int,
               repeat: int, phase: str, group: str) -> Op:
    """A collective over a rows x cols buffer (the full buffer; see hwmodels.collectives)."""
    full = (rows, cols)
    part = (math.ceil(rows / ranks), cols)
    ins, outs = {"allgather": (part, full), "reducescatter": (full, part)}.get(kind, (full, full))
    dims = {"ranks": ranks, "stride": stride, "rows": rows, "cols": cols}
    return Op(name, kind, dims, (TensorSpec(f"{name}.in", ins, fmt, "activation"),),
              (TensorSpec(f"{name}.out", outs, fmt, "activation"),), fmt, repeat, phase, group)


# ---------------------------------------------------------------------------- the transformation

class _Sharder:
    """Rewrites one trace for one layout; one method per block of the builder's pass."""

    def __init__(self, trace: Trace, model: ModelSpec, L: Layout):
        self.tr, self.m, self.L = trace, model, L
        self.t = L.tp
        self.T, self.B = trace.tokens, trace.batch
        # token-selective propagation (FastKV): the layers after the selection layer (ops marked tsp_after) run
        # the batch's propagated tokens, not trace.tokens (None: no such recipe)
        from workloads.compression.propagation import propagated_tokens
        tsp = propagated_tokens(trace)
        self.T_tsp = None if tsp is None else self.B * tsp
        self.af = (trace.meta.get("formats") or {}).get("acts", "bf16")
        self.hl = model.heads // self.t
        self.kvl = _kv_local(model, self.t)
        self.unsharded: list[str] = []
        self.recipe_shares: dict[str, str] = {}
        self.builder_names = frozenset(op.name for op in trace.ops if "." not in op.name)
        self.E_local = model.moe.num_experts // L.ep if model.moe else 0
        # busiest EP device / mean device (1 under uniform expected routing): it sets the MoE block's time. Sampled
        # routing's skew grows as the tokens shrink: the layers after FastKV's selection layer route the propagated
        # tokens, with their own gamma (before session 19 they took the whole prompt's)
        self.gamma = self.gamma_at(self.T)
        self.gamma_tsp = None if self.T_tsp is None else self.gamma_at(self.T_tsp)

    def gamma_at(self, T: int) -> float:
        """The EP imbalance of a MoE layer routing the replica's T tokens (workloads.routing.ep_imbalance over the
        EP group's T x ep / tp tokens); 1 without experts or expert parallelism."""
        m, L = self.m, self.L
        return (ep_imbalance(L.routing, m.moe.num_experts, m.moe.top_k, L.ep, T * L.ep // self.t)
                if m.moe and L.ep > 1 else 1.0)

    def coll(self, name, kind, rows, repeat, group, ranks=None, stride=1, cols=None):
        return collective(name, kind, rows, cols or self.m.hidden, self.af, ranks or self.t, stride,
                          repeat, self.tr.phase, group)

    def tp_reduce(self, name, repeat, group):
        """The collective that completes a row-parallel GEMM: all-reduce, or reduce-scatter (SP)."""
        if self.t == 1:
            return []
        return [self.coll(name + ("_reducescatter" if self.L.sp else "_allreduce"),
                          "reducescatter" if self.L.sp else "allreduce", self.T, repeat, group)]

    def tp_gather(self, name, repeat, group):
        return [self.coll(name + "_allgather", "allgather", self.T, repeat, group)] if (self.t > 1 and self.L.sp) else []

    def run(self) -> list[Op]:
        out = []
        for op in self.tr.ops:
            if op.dims.get("tsp_after") and self.T_tsp is not None:
                # an op after FastKV's selection layer, and the collectives it needs, on the propagated tokens
                # (before session 17 its all-reduces and expert-parallel rows used the whole prompt's)
                (T, gamma), (self.T, self.gamma) = (self.T, self.gamma), (self.T_tsp, self.gamma_tsp)
                try:
                    out += [o if o.dims.get("tsp_after") else o.with_(dims={**o.dims, "tsp_after": True})
                            for o in self.rewrite(op)]
                finally:
                    self.T, self.gamma = T, gamma
            else:
                out += self.rewrite(op)
        if self.L.pp > 1:
            rows = math.ceil(self.T / self.t) if self.L.sp else self.T
            out.append(self.coll("pp_sendrecv", "sendrecv", rows, self.L.pp - 1, "pp", ranks=2,
                                 stride=self.t * self.L.dp))
        return out

    def rewrite(self, op: Op) -> list[Op]:
        t, m, sp = self.t, self.m, self.L.sp
        rows_sp = math.ceil(self.T / t) if sp else self.T
        name, g = op.name, op.group
        if t == 1 and self.L.ep == 1:
            return [op]
        if "." in name:
            return self.recipe_op(op)
        if name == "embed":
            w = _scale(op.inputs[0], 0, 1, t)  # vocab-parallel: each rank gathers its vocabulary's rows
            kind = "reducescatter" if sp else "allreduce"
            return [op.with_(inputs=(w,))] + ([self.coll(f"embed_{kind}", kind, self.T, 1, "embed")] if t > 1 else [])
        if name in ("attn_norm", "attn_residual", "attn_residual_scale") or (
                name in ("mlp_norm", "mlp_residual", "mlp_residual_scale") and g == "mlp"):
            pre = _rows(op, rows_sp) if sp else op
            post = self.tp_gather(name.split("_")[0], op.repeat, g) if name.endswith("norm") else []
            return [pre] + post
        if g == "attn" or name in ("q_absorb", "o_absorb"):
            return self.attention(op)
        if g == "mlp":
            return self.dense_mlp(op)
        if g == "moe":
            return self.moe(op, rows_sp)
        if name == "final_norm":
            pre = [self.coll("final_allgather", "allgather", self.B, 1, "head")] if (sp and t > 1) else []
            return pre + [op]
        if name == "lm_head":
            d = op.dims
            gathered = [self.coll("lm_head_allgather", "allgather", self.B, 1, "head", cols=m.vocab)] if t > 1 else []
            return [_gemm(op, n=math.ceil(d["n"] / t))] + gathered
        self.unsharded.append(name)
        return [op]

    def recipe_op(self, op: Op) -> list[Op]:
        """An op a compression recipe inserted: this device's share (workloads.parallel_recipe)."""
        m = self.m
        f = recipe_share(op, tp=self.t, ep=self.L.ep, batch=self.B, heads=m.heads, heads_local=self.hl,
                         kv_heads=1 if m.mla else m.kv_heads, kv_local=1 if m.mla else self.kvl,
                         builder_names=self.builder_names, sp=self.L.sp)
        if f is None:
            self.unsharded.append(op.name)
            return [op]
        self.recipe_shares[op.name] = f"{f.numerator}/{f.denominator}"
        out = [apply_share(op, f)]
        if head_summed(op) and self.t > 1:
            # per-head partial scores (batch x prompt, fp32) summed over the TP group's heads
            rows, cols = int(op.dims["b"]) // m.heads, int(op.dims["n"])
            ar = collective(f"{op.name}_allreduce", "allreduce", rows, cols, "fp32", self.t, 1,
                            op.repeat, self.tr.phase, op.group)
            # it runs when the op runs: once a prompt / over the context, as the op it sums (ops.PER_PROMPT)
            flags = {k: True for k in (PER_PROMPT, OVER_CONTEXT) if op.dims.get(k)}
            out.append(ar.with_(dims={**ar.dims, **flags}) if flags else ar)
        return out

    def attention(self, op: Op) -> list[Op]:
        m, t, d, name = self.m, self.t, op.dims, op.name
        hd, hl, kvl = m.head_dim, self.hl, self.kvl
        if name in ("q_proj", "q_b_proj", "kv_b_proj"):
            return [_gemm(op, n=d["n"] // t)]
        if name in ("k_proj", "v_proj"):
            return [_gemm(op, n=kvl * hd)]
        if name in ("q_norm", "k_norm") and (m.qk_norm_per_head or m.qk_l2norm):  # one row per head: split like the heads
            rows = op.dims["rows"] // (m.heads if name == "q_norm" else m.kv_heads) * (hl if name == "q_norm" else kvl)
            return [_rows(op, rows)]
        if name in ("q_norm", "k_norm"):
            # OLMo-2: one norm over the whole q (k) projection needs all of it: each rank all-gathers its
            # column shard, normalises the full projection and keeps its own shard (vLLM's Olmo2Attention)
            cols = m.q_dim if name == "q_norm" else m.kv_dim
            return [self.coll(name[0] + "_allgather", "allgather", self.T, op.repeat, op.group, cols=cols), op]
        if name in ("q_a_proj", "q_a_norm", "kv_a_proj", "kv_a_norm"):
            return [op]  # MLA's low-rank down-projections are replicated (small), as in vLLM
        if name in ("q_absorb", "o_absorb"):
            b = d["b"] // t
            w = _resize(op.inputs[1], 0, b)
            x, y = _resize(op.inputs[0], 0, b), _resize(op.outputs[0], 0, b)
            return [op.with_(dims={**d, "b": b}, inputs=(x, w), outputs=(y,))]
        if name == "rope":
            cols = (hl * m.mla.qk_rope_head_dim + m.mla.qk_rope_head_dim) if m.mla else (hl + kvl) * m.rotary_dim
            return [_cols(op, cols)]
        if name == "kv_write":
            return [op if m.mla else self.kv_write(op, 2 * kvl * hd)]
        if name == "q_temperature":  # Llama-4's per-position query scale: split with the query heads
            return [_cols(op, hl * hd)]
        if op.kind == "attention":  # "attention", and the windowed / chunked ops ("attention_local", "_chunked")
            q = _resize(op.inputs[0], 2, hl)
            kv = tuple(self.kv_input(x) for x in op.inputs[1:])
            dims = {**d, "heads": hl, "kv_heads": self.kv_heads_here(d["kv_heads"])}
            return [op.with_(dims=dims, inputs=(q,) + kv, outputs=(_resize(op.outputs[0], 2, hl),))]
        if name.startswith(("attn_scores", "attn_pv", "attn_softmax")):
            return [self.unfused(op)]
        if name == "o_proj":
            return [_gemm(op, k=d["k"] // t)] + self.tp_reduce("attn", op.repeat, "attn")
        self.unsharded.append(name)
        return [op]

    def kv_write(self, op: Op, cols: int) -> Op:
        """The cache write of this rank's KV heads: the builder's (tokens, width) write on its width (`cols`), the
        cache pieces a recipe or a narrow format writes (per-head (B, n, kv_heads, dim) pieces, per-head fp32
        scales) as the attention reads them (`kv_input`). Resizing every piece's last axis to the width made a
        (B, 1, 8, 128) fp8_kv write (B, 1, 8, 1024) and its (8,) scales (1024,) at tp 2."""
        def part(t):
            if t.role == "weight":
                return t
            if t.role == "kv" and t.name != "kv_write.out":
                return self.kv_input(t)
            return _resize(t, -1, cols)
        return op.with_(dims={**op.dims, "cols": cols}, inputs=tuple(part(t) for t in op.inputs),
                        outputs=tuple(part(t) for t in op.outputs))

    def kv_input(self, x: TensorSpec) -> TensorSpec:
        """A K/V input of fused attention: (B, len, kv_heads, dim) split on heads; a recipe's
        per-head side tensor (a (kv_heads,) scale of fp8_kv, kvquant's per-head tables) likewise."""
        if len(x.shape) >= 3:
            return _resize(x, 2, self.kv_heads_here(x.shape[2]))
        h = self.m.kv_heads
        if not self.m.mla and x.shape and x.shape[0] == h:
            return _resize(x, 0, self.kvl)
        return x

    def kv_heads_here(self, n: int) -> int:
        """KV heads one rank holds of a tensor carrying n: a shared latent (n = 1) stays whole,
        MLA's expanded per-head K/V split like the query heads, GQA heads split or replicate."""
        if n == 1:
            return 1
        return self.hl if self.m.mla else self.kvl

    def unfused(self, op: Op) -> Op:
        """Unfused attention: b = batch x heads shrinks to batch x heads/tp."""
        t, d = self.t, dict(op.dims)
        if op.kind == "softmax":  # (batch x heads, q, kv) probabilities: axis 0 holds the heads
            return op.with_(dims={**d, "rows": d["rows"] // t}, inputs=tuple(_scale(x, 0, 1, t) for x in op.inputs),
                            outputs=tuple(_scale(x, 0, 1, t) for x in op.outputs))

        def shard(x):
            if len(x.shape) == 4:  # (B, len, heads, dim): queries split, KV per kv_heads_here
                return _resize(x, 2, self.hl if x.role != "kv" and x.name == "q" else self.kv_heads_here(x.shape[2]))
            return _scale(x, 0, 1, t)  # (batch x heads, q, kv) scores and probabilities
        return op.with_(dims={**d, "b": d["b"] // t}, inputs=tuple(shard(x) for x in op.inputs),
                        outputs=tuple(shard(x) for x in op.outputs))

    def dense_mlp(self, op: Op) -> list[Op]:
        t, d, name = self.t, op.dims, op.name
        if name in ("gate_proj", "up_proj"):
            return [_gemm(op, n=d["n"] // t)]
        if name == "act":
            return [_cols(op, d["cols"] // t)]
        if name == "down_proj":
            return [_gemm(op, k=d["k"] // t)] + self.tp_reduce("mlp", op.repeat, "mlp")
        self.unsharded.append(name)
        return [op]

    def moe(self, op: Op, rows_sp: int) -> list[Op]:
        m, L, t, d, name = self.m, self.L, self.t, op.dims, op.name
        e = m.moe
        if name == "mlp_norm":
            return [_rows(op, rows_sp) if L.sp else op] + (self.tp_gather("moe", op.repeat, "moe") if L.ep == 1 else [])
        if name in ("mlp_residual_scale", "mlp_residual"):  # Granite's branch scale (if any), then the add
            pre = []
            first = name == "mlp_residual_scale" or m.residual_multiplier is None
            if first and L.ep > 1 and t > 1 and not L.sp:  # tokens were split for dispatch: restore replicas
                pre = [self.coll("moe_allgather", "allgather", self.T, op.repeat, "moe")]
            return pre + [_rows(op, rows_sp) if L.sp else op]
        if L.ep == 1:
            return self.moe_tp(op)
        own = math.ceil(self.T / t)  # tokens this rank dispatches (its slice of the replica's T)
        if name == "router":
            x = _resize(op.inputs[0], 0, own)
            y = _resize(op.outputs[0], 0, own)
            router = op.with_(dims={**d, "tokens": own}, inputs=(x,) + op.inputs[1:], outputs=(y,))
            return [router, self.coll("moe_dispatch_alltoall", "alltoall", self.busiest(own * e.top_k), op.repeat,
                                      "moe", ranks=L.ep)]
        if name.startswith("expert_"):
            return self.moe_ep(op, own)
        if name.startswith(("shared_", "moe_shared_gate")):
            # shared experts (and Qwen2-MoE's gate on them) are replicated under EP and run on the rank's own tokens
            if op.kind == "gemm":
                return [_gemm(op, m=own)]
            return [_rows(op, own)]
        self.unsharded.append(name)
        return [op]

    def moe_tp(self, op: Op) -> list[Op]:
        """ep = 1: every expert (and the shared expert) split by width over the TP ranks."""
        t, d, name = self.t, op.dims, op.name
        if op.kind == "gemm" and name.endswith(("gate_proj", "up_proj")):
            return [_gemm(op, n=d["n"] // t)]
        if name.endswith("act"):
            return [_cols(op, d["cols"] // t)]
        if op.kind == "gemm" and name.endswith("down_proj"):
            last = name == ("shared_down_proj" if self.m.moe.shared_intermediate else "expert_down_proj")
            return [_gemm(op, k=d["k"] // t)] + (self.tp_reduce("moe", op.repeat, "moe") if last else [])
        if name in ("router", "moe_shared_gate", "moe_shared_gate_mul"):  # hidden -> experts / 1: replicated
            return [op]
        self.unsharded.append(name)
        return [op]

    def busiest(self, rows: int) -> int:
        """Token-expert rows of the busiest EP device: the mean device's rows x gamma (workloads.routing)."""
        return rows if self.gamma == 1.0 else math.ceil(rows * self.gamma)

    def moe_ep(self, op: Op, own: int) -> list[Op]:
        """ep > 1: E/ep whole experts here; the EP group's tokens T x ep/tp, each to top_k experts:
        T x top_k / tp token-expert rows on the mean rank, x gamma on the busiest (the trace is the
        busiest device's: it sets the step)."""
        e, El = self.m.moe, self.E_local
        rows = self.busiest(math.ceil(self.T * e.top_k / self.t))
        touched = experts_touched(El, 1, rows) if El > 1 else 1.0
        extra = {"experts": El, "experts_touched": touched}
        out = []
        if op.kind == "gemm":
            out.append(_gemm(op, m=rows, lead=El, density=touched / El, extra=extra))
        else:
            out.append(_rows(op, rows))
        if op.name == "expert_down_proj":
            out.append(self.coll("moe_combine_alltoall", "alltoall", self.busiest(own * e.top_k), op.repeat, "moe",
                                 ranks=self.L.ep))
        return out


# ---------------------------------------------------------------------------- memory and entry point

def _footprint(trace: Trace, model: ModelSpec, L: Layout) -> tuple[dict, list]:
    """Per-device bytes of the fullest stage, and every stage's (weights, kv_cache, activations)."""
    fp = trace.meta.get("footprint") or {}
    w_total = fp.get("weights", 0.0)
    per_dev = device_params(model, L)
    stages = stage_layers(model.layers, L.pp)
    kv_share = 1.0 if model.mla else _kv_local(model, L.tp) / model.kv_heads
    kv_all = fp.get("kv_cache", 0.0) * L.microbatches * kv_share  # every micro-batch's cache stays resident
    a_bytes = get_format((trace.meta.get("formats") or {}).get("acts", "bf16")).bits_per_element / 8
    widest = max(model.intermediate, (model.moe.expert_intermediate * model.moe.top_k
                                      + model.moe.shared_intermediate) if model.moe else 0)
    per_token = 2 * model.hidden + 2 * widest / L.tp + model.q_dim / L.tp + 2 * _kv_local(model, L.tp) * model.head_dim
    acts = trace.tokens * per_token * a_bytes + trace.batch * model.vocab / L.tp * 4
    rows = [{"stage": s, "layers": n, "weights": w_total * p / model.params,
             "kv_cache": kv_all * n / model.layers, "activations": acts}
            for s, (n, p) in enumerate(zip(stages, per_dev))]
    worst = max(rows, key=lambda r: r["weights"] + r["kv_cache"] + r["activations"])
    return {k: worst[k] for k in ("weights", "kv_cache", "activations")}, rows


def _routing_note(L: Layout, model: ModelSpec, gamma: float, gamma_tsp: float | None = None) -> str:
    if not model.moe:
        return ""
    if L.ep == 1:
        return ("experts split by width over TP: every device computes its slice of every expert, so routing "
                "skew does not unbalance devices" + ("" if L.routing == "uniform" else f" ({describe(L.routing)} ignored)"))
    if L.routing == "uniform":
        return "uniform routing in expectation: every EP device gets the mean token-expert rows (gamma = 1)"
    after = ("" if gamma_tsp is None or gamma_tsp == gamma else
             f" ({gamma_tsp:.3f} x in the layers after the token-selection layer, which route only the propagated "
             f"tokens)")
    return (f"{describe(L.routing)} routing: the busiest EP device gets {gamma:.3f} x the mean token-expert "
            f"rows{after}; this trace is that device's (it sets the MoE step), all-to-all sized by its share")


def shard_trace(trace: Trace, model: ModelSpec, layout: Layout | Mapping, global_batch: int | None = None) -> Trace:
    """One device's trace under `layout` (see the module docstring)."""
    L = parse_layout(layout)
    check_layout(L, model, trace.batch * L.dp * L.microbatches)
    sh = _Sharder(trace, model, L)
    ops = sh.run()
    footprint, stages = _footprint(trace, model, L)
    meta = dict(trace.meta)
    meta["footprint_whole_model"] = dict(trace.meta.get("footprint") or {})
    meta["footprint"] = footprint
    meta["parallel"] = {
        **L.to_dict(), "devices": L.devices, "label": L.label(),
        "global_batch": global_batch or trace.batch * L.dp * L.microbatches,
        "stage_layers": stage_layers(model.layers, L.pp), "per_stage_footprint": stages,
        "bubble_fraction": bubble_fraction(L.pp, L.microbatches),
        "heads_per_device": model.heads // L.tp, "kv_heads_per_device": _kv_local(model, L.tp),
        "kv_heads_replicated": (not model.mla) and model.kv_heads < L.tp,
        "experts_per_device": (model.moe.num_experts // L.ep if L.ep > 1 else model.moe.num_experts) if model.moe else 0,
        "routing": describe(L.routing), "ep_imbalance": sh.gamma,
        **({"ep_imbalance_after_selection": sh.gamma_tsp} if sh.gamma_tsp is not None and model.moe else {}),
        "routing_note": _routing_note(L, model, sh.gamma, sh.gamma_tsp),
        "unsharded_ops": sorted(set(sh.unsharded)),
        "recipe_op_shares": dict(sorted(sh.recipe_shares.items())),
        "trace_covers": "one device's tensor/expert shard of one micro-batch, through all pipeline stages in sequence",
    }
    return trace.replace_ops(ops, meta=meta)


def build_parallel_trace(build, model: ModelSpec, batch: int, parallel, **kwargs) -> Trace:
    """Build one replica's micro-batch with `build` (workloads.builder.build_trace), then shard it."""
    L = parse_layout(parallel)
    check_layout(L, model, batch)
    trace = build(model, batch=batch // (L.dp * L.microbatches), **kwargs)
    return shard_trace(trace, model, L, global_batch=batch)
