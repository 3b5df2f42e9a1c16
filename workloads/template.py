"""Trace templates: the builder traced once per structure, its numbers compiled.

A template belongs to one (model, phase, formats, attention) and one set of branch
outcomes (guards, see workloads.symbolic). It holds what does not change with batch and
sequence length — op names, kinds, compute formats, repeats, groups — and a compiled
function giving every op's FLOPs, compulsory bytes, GEMM size (b·m·n·k) and mean
operand bytes per element, plus the memory footprint, for given (B, S): scalars for
one workload, numpy arrays for many (`numbers_many`).

`op_numbers` is the one definition of those four per-op numbers; the roofline's op
table and the template both use it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workloads.ops import stored_operands
from workloads.symbolic import Tape

__all__ = ["TraceTemplate", "template_for", "op_numbers", "numbers_many", "FOOTPRINT_KEYS"]

FOOTPRINT_KEYS = ("weights", "kv_cache", "activations")
# int64 products of batch·seq·dims stay exact below 2**63; beyond, evaluate per point
_MAX_EXACT_TOKENS = 2**31


def op_numbers(op) -> tuple:
    """(FLOPs, compulsory bytes, b·m·n·k of a GEMM or 0, mean bytes per element of a
    GEMM's operands or 1.0) of one instance of `op`."""
    if op.kind != "gemm":
        return op.flops, op.bytes, 0, 1.0
    d = op.dims
    mnk = d.get("b", 1) * d["m"] * d["n"] * d["k"]
    n_el = sum(t.numel * t.density for t in op.inputs)
    eb = sum(t.nbytes for t in op.inputs) / n_el if n_el else 1.0
    return op.flops, op.bytes, mnk, eb


@dataclass(frozen=True, eq=False)
class TraceTemplate:
    names: tuple
    kinds: tuple
    compute_fmts: tuple
    repeat: tuple
    phases: tuple
    groups: tuple
    numbers: object  # (B, S) -> flops*N + bytes*N + mnk*N + eb*N + footprint*3, one flat tuple
    guards: object  # (B, S) -> tuple of branch outcomes
    expected: tuple  # the outcomes this template was traced under
    params: float = 0.0  # the model's parameter count (constant per model; for trace meta)
    # per op: (role, format) of its stored operands (weights, KV cache), for the levels' operand-format
    # rule (hwmodels.roofline.stored_operand_notes) without building the ops
    stored: tuple = ()

    @property
    def n_ops(self) -> int:
        return len(self.names)

    def split(self, flat) -> dict:
        """The flat tuple of `numbers` as named parts (lists of N, footprint dict)."""
        n = self.n_ops
        return {"flops": flat[:n], "bytes": flat[n:2 * n], "mnk": flat[2 * n:3 * n], "elem_bytes": flat[3 * n:4 * n],
                "footprint": self.footprint(flat)}

    def footprint(self, flat) -> dict:
        n4 = 4 * len(self.names)
        return {"weights": flat[n4], "kv_cache": flat[n4 + 1], "activations": flat[n4 + 2]}


_TEMPLATES: dict = {}


def template_for(model, phase: str, batch, seq, wf: str, af: str, kf: str, attention: str, *,
                 builder) -> TraceTemplate:
    """The template valid for this workload, traced now if none is (per structure, a
    new one only when the inputs take other branches: a sliding window reached...).
    `builder` is the trace builder class (workloads.builder._Builder), passed in so this
    module does not import the builder that imports it."""
    key = (id(model), phase, wf, af, kf, attention)
    entry = _TEMPLATES.get(key)
    if entry is None or entry[0] is not model:  # keyed on id: keep the model alive beside it
        if len(_TEMPLATES) > 512:  # a caller making a new ModelSpec per call: bounded, not a leak
            _TEMPLATES.clear()
        entry = _TEMPLATES[key] = (model, [])
    for t in entry[1]:
        if t.guards(batch, seq) == t.expected:
            return t
    t = _trace(builder, model, phase, batch, seq, wf, af, kf, attention)
    entry[1].append(t)
    return t


def _trace(builder, model, phase, batch, seq, wf, af, kf, attention) -> TraceTemplate:
    tape = Tape({"B": batch, "S": seq})
    b = builder(model, phase, tape.inputs["B"], tape.inputs["S"], wf, af, kf, attention)
    ops = b.ops()
    nums = [op_numbers(op) for op in ops]
    fp = b.footprint(ops)
    outs = [x[0] for x in nums] + [x[1] for x in nums] + [x[2] for x in nums] + [x[3] for x in nums] \
        + [fp[k] for k in FOOTPRINT_KEYS]
    return TraceTemplate(names=tuple(o.name for o in ops), kinds=tuple(o.kind for o in ops),
                         compute_fmts=tuple(o.compute_fmt for o in ops), repeat=tuple(o.repeat for o in ops),
                         phases=tuple(o.phase for o in ops), groups=tuple(o.group for o in ops),
                         numbers=tape.compile(outs), guards=tape.guard_fn(), expected=tape.guard_values(),
                         params=model.params,
                         stored=tuple(stored_operands(o) for o in ops))


def numbers_many(model, phase: str, batch, seq, wf: str, af: str, kf: str, attention: str, *, builder):
    """Per-op numbers of many workloads of one structure: batch and seq are int arrays
    of one length W. Returns [(rows, template, parts)]: `rows` indexes the workloads
    that share a template, `parts` are `TraceTemplate.split` arrays shaped (len(rows),)
    per op (constants broadcast)."""
    batch = np.asarray(batch, dtype=np.int64).reshape(-1)
    seq = np.asarray(seq, dtype=np.int64).reshape(-1)
    tokens = batch * np.where(phase == "prefill", seq, 1)
    if len(batch) and int(tokens.max()) > _MAX_EXACT_TOKENS:
        raise OverflowError("batch*seq too large for exact int64 arithmetic; evaluate these points one by one")
    out = []
    todo = np.arange(len(batch))
    while len(todo):
        i0 = int(todo[0])
        t = template_for(model, phase, int(batch[i0]), int(seq[i0]), wf, af, kf, attention, builder=builder)
        g = t.guards(batch[todo], seq[todo])
        same = np.ones(len(todo), dtype=bool)
        for val, want in zip(g, t.expected):
            same &= np.broadcast_to(np.asarray(val) == want, same.shape)
        rows = todo[same]
        flat = t.numbers(batch[rows], seq[rows])
        flat = [np.broadcast_to(np.asarray(x, dtype=float), rows.shape) for x in flat]
        out.append((rows, t, t.split(flat)))
        todo = todo[~same]
    return out
