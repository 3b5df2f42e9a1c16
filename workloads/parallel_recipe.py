"""Shard the ops a compression recipe inserts, consistently with the ops they serve.

A recipe adds ops of two shapes (workloads/compression):
- attached to one builder GEMM, named ``<gemm>.<what>`` (``down_proj.weight_dequant``,
  ``q_proj.outliers``, ``expert_up_proj.barycenter``): they touch that GEMM's weight, so one
  device does that GEMM's per-device share of them: 1/tp for column/row-parallel GEMMs,
  kv_local/kv_heads for k/v projections (a replicated KV head stays whole), E_local/E = 1/ep for
  routed experts under EP, 1 for shared experts under EP (replicated);
- belonging to a block, named ``<recipe>.<what>`` in the attention, dense-MLP or MoE group
  (KV quantisation, eviction scoring, top-k, reconstruction, table loads): attention ops work per
  head, so one device does its heads' share: heads_local/heads, or kv_local/kv_heads when the op
  touches the KV cache (a ``kv`` tensor, or rows counting batch x kv_heads); dense-MLP ops 1/tp;
  MoE-block ops not attached to an expert (qmoe's decode table) are replicated: every device
  reads them whole (share 1).
Two block ops outside those groups are placed by what they do (fastkv's token-selective
propagation, group ``recipe``): ``*.tsp_scores`` (window queries x prompt, per query head) does its
device's heads, heads_local/heads, and the per-head scores are then summed across the TP group
(``head_summed``: every rank must keep the same tokens of the replicated hidden state);
``*.tsp_gather`` gathers rows of the residual stream, which every TP rank holds whole (share 1),
or its 1/tp token shard under sequence parallelism.
The share scales the op's work dimension (the first of ``b``, ``rows``, ``flops``, ``m``, ``cols``
that it divides exactly: a fused ``rows = 1`` dequantisation shrinks its ``cols``)
and every tensor's size (on its head axis for (batch, len, heads, dim) tensors, else on the
first axis the share divides exactly). Ops in any other group stay whole and are listed as
unsharded, as before.
"""

from __future__ import annotations

import math
from dataclasses import replace
from fractions import Fraction

from workloads.ops import Op, TensorSpec

__all__ = ["recipe_share", "apply_share", "head_summed"]

_COLUMN_OR_ROW = ("q_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "q_b_proj", "kv_b_proj", "lm_head")
_KV_PROJ = ("k_proj", "v_proj")
_WORK_DIMS = ("b", "rows", "flops", "m", "cols", "tokens")
_HEAD_SCORE_OPS = ("tsp_scores",)   # per-query-head attention scores whose head sum picks tokens
_RESIDUAL_OPS = ("tsp_gather",)     # reads the residual stream (replicated under TP, token-split under SP)


def head_summed(op: Op) -> bool:
    """True for a per-head score op whose scores are summed over all heads before use: under TP its
    partial sums need an all-reduce over the TP group."""
    return op.name.partition(".")[2] in _HEAD_SCORE_OPS


def recipe_share(op: Op, *, tp: int, ep: int, batch: int, heads: int, heads_local: int, kv_heads: int,
                 kv_local: int, builder_names: frozenset, sp: bool = False) -> Fraction | None:
    """The fraction of a recipe op one device executes, or None when the op is not a recipe op
    this module knows (it then stays whole and is reported)."""
    base, dot, what = op.name.partition(".")
    if not dot:
        return None
    if what in _HEAD_SCORE_OPS:
        return Fraction(heads_local, heads)
    if what in _RESIDUAL_OPS:
        return Fraction(1, tp) if sp else Fraction(1)
    if base in builder_names or base.startswith(("expert_", "shared_")):
        g = _gemm_share(base, tp, ep, kv_heads, kv_local)
        if g is not None:
            return g
    if op.group == "attn":
        return _head_share(op, batch, heads, heads_local, kv_heads, kv_local)
    if op.group == "mlp":
        return Fraction(1, tp)
    if op.group == "moe":
        return Fraction(1)  # a block-level table (qmoe's decode table) serves every local expert
    return None


def _head_share(op: Op, batch: int, heads: int, heads_local: int, kv_heads: int, kv_local: int) -> Fraction:
    """Query-head share, or KV-head share for ops on the cache: an op touching a ``kv`` tensor, or
    whose rows / batch dimension counts batch x kv_heads (not batch x heads), e.g. a per-KV-head
    top-k of an eviction policy."""
    q, kv = Fraction(heads_local, heads), Fraction(kv_local, kv_heads)
    if any(t.role == "kv" for t in op.inputs + op.outputs):
        return kv
    n = op.dims.get("rows", op.dims.get("b"))
    if isinstance(n, int) and n % (batch * heads) and not n % (batch * kv_heads):
        return kv
    return q


def _gemm_share(base: str, tp: int, ep: int, kv_heads: int, kv_local: int) -> Fraction | None:
    if base.startswith("expert_"):
        return Fraction(1, ep) if ep > 1 else Fraction(1, tp)
    if base.startswith("shared_"):
        return Fraction(1) if ep > 1 else Fraction(1, tp)
    if base in _KV_PROJ:
        return Fraction(kv_local, kv_heads)
    if base in _COLUMN_OR_ROW:
        return Fraction(1, tp)
    return None  # an attached op on a replicated GEMM (e.g. MLA's down-projections) stays whole


def _shrink(n: int, f: Fraction) -> int:
    return max(1, math.ceil(n * f))


def _tensor(t: TensorSpec, f: Fraction) -> TensorSpec:
    if not t.shape or f == 1:
        return t
    axes = ([2] if len(t.shape) == 4 else []) + list(range(len(t.shape)))
    exact = [a for a in axes if (t.shape[a] * f).denominator == 1]
    axis = exact[0] if exact else max(range(len(t.shape)), key=lambda a: t.shape[a])
    shape = list(t.shape)
    shape[axis] = _shrink(shape[axis], f)
    return replace(t, shape=tuple(shape))


def apply_share(op: Op, f: Fraction) -> Op:
    """`op` doing the fraction `f` of its work and touching `f` of its tensors."""
    if f == 1:
        return op
    dims = dict(op.dims)
    present = [k for k in _WORK_DIMS if isinstance(dims.get(k), (int, float)) and not isinstance(dims.get(k), bool)]
    exact = [k for k in present if k == "flops" or (dims[k] * f).denominator == 1]
    if exact or present:
        k = exact[0] if exact else max(present, key=lambda k: dims[k])
        dims[k] = dims[k] * f.numerator / f.denominator if k == "flops" else _shrink(dims[k], f)
    return op.with_(dims=dims, inputs=tuple(_tensor(t, f) for t in op.inputs),
                    outputs=tuple(_tensor(t, f) for t in op.outputs))
