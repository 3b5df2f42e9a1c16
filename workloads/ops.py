"""Ops and the tensors they touch.

An `Op` is one kernel-sized piece of work: its kind, its dimensions, the tensors it
reads and writes (`TensorSpec`, each with a number format and a role) and how many
times it repeats (e.g. once per layer). FLOPs and bytes are *derived* from dims and
formats here, never typed in, so a recipe that changes a format or a density changes
the cost automatically.

Conventions
- ``Op.flops`` / ``Op.bytes`` are for one instance; ``total_flops`` / ``total_bytes``
  multiply by ``repeat``.
- FLOPs count a multiply-accumulate as 2. Attention FLOPs are its two matmuls
  (QKᵀ and PV); softmax is counted by its own op in the unfused form.
- Bytes are compulsory traffic (each tensor read or written once), the quantity a
  roofline puts on its x axis; bytes at inner memory levels come from the hardware
  model, which knows the capacities.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Mapping

from workloads.formats import get_format
from workloads.symbolic import is_sym

__all__ = ["TensorSpec", "Op", "implied_block_axis", "OpError", "ROLES", "OP_KINDS", "ELEMENTWISE_FLOPS", "COLLECTIVE_KINDS",
           "PER_PROMPT", "OVER_CONTEXT"]

ROLES = ("weight", "activation", "kv", "state")


class OpError(ValueError):
    """An op or tensor with impossible dims, role or format."""


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    fmt: str
    role: str = "activation"
    density: float = 1.0  # fraction stored/touched (sparsity, eviction)
    # the axis a block/group format blocks a weight along (None: its reduction axis, -2 of the traces'
    # (..., k, n) layout; -1 for a 1-D weight); an embedding table's rows are blocked along -1
    block_axis: int | None = field(default=None, repr=False)  # in to_dict when set; repr kept as before

    def __post_init__(self):
        # traced (symbolic) sizes stay symbolic: see workloads.symbolic / workloads.template
        object.__setattr__(self, "shape", tuple(s if is_sym(s) else int(s) for s in self.shape))
        if any(not is_sym(s) and s < 0 for s in self.shape):
            raise OpError(f"tensor {self.name!r}: shape must be non-negative, got {self.shape}")
        if self.role not in ROLES:
            raise OpError(f"tensor {self.name!r}: role must be one of {ROLES}, got {self.role!r}")
        if not is_sym(self.density) and not 0.0 <= self.density <= 1.0:
            raise OpError(f"tensor {self.name!r}: density must be in [0, 1], got {self.density!r}")
        get_format(self.fmt)  # validates the name

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    def _short_block_axis(self):
        """(format, length of the block axis) for a weight in a block/group format whose block
        axis ends in a short block; (format, rows, cols) for a weight matrix in a 2-D tile format
        (fp8_block) whose last two axes are not whole tiles, (row format, length) for rows of one
        along a set `block_axis`; None otherwise (the amortised figure is exact)."""
        f = get_format(self.fmt)
        if not f.block_size or self.role != "weight" or not self.shape:
            return None
        if f.block_shape is not None:
            if self.block_axis is None and len(self.shape) >= 2:  # a weight matrix: its 2-D tiles
                rows, cols = self.shape[-2], self.shape[-1]
                if is_sym(rows) or is_sym(cols) or rows <= 0 or cols <= 0 or (
                        rows % f.block_shape[0] == 0 and cols % f.block_shape[1] == 0):
                    return None
                return f, rows, cols
            # rows along a set block axis (an embedding op's gathered rows of the table): each row read
            # carries the scales of the ceil(n / C) tiles it crosses, whatever rows the tiles span
            n = self.shape[self.block_axis if self.block_axis is not None else -1]
            if is_sym(n) or n <= 0:
                return None
            return f.with_block_size(f.block_shape[1]), n
        axis = self.block_axis if self.block_axis is not None else (-2 if len(self.shape) >= 2 else -1)
        n = self.shape[axis]
        if is_sym(n) or n <= 0 or n % f.block_size == 0:
            return None
        return f, n

    def _stored_unit(self) -> tuple:
        """(format, bits, elements) of one stored unit, the one dispatch over `_short_block_axis`: the format's
        amortised bits per element (elements 1); a 2-D tile format's whole tiles of the matrix (rows x cols,
        `tile_bits`); a row along the block axis that ends in a short block (n elements, `row_bits`)."""
        short = self._short_block_axis()
        if short is None:
            f = get_format(self.fmt)
            return f, f.bits_per_element, 1
        if len(short) == 3:
            f, rows, cols = short
            return f, f.tile_bits(rows, cols), rows * cols
        f, n = short
        return f, f.row_bits(n), n

    @property
    def bits_per_element(self) -> float:
        """Storage bits per element as stored. A weight in a block/group format carries one
        scale per block actually stored along its block axis: a row whose length is not a
        multiple of the block ends in a short block with a whole scale (SmolLM2's 576 =
        4.5 x 128: int4_g128 stores 4.1389 bits/element, not 4.125); a 2-D tile format
        (fp8_block) one scale per tile actually stored. Other roles (their blocking is the
        kernel's choice) and symbolic lengths: the format's amortised figure. A per-tensor
        scale (NVFP4's fp32) is not spread over the elements here: `nbytes` adds it per matrix."""
        _, bits, n = self._stored_unit()
        return bits / n

    # cached (the fields are frozen): a serving run's traces ask each tensor's bytes several times each
    @cached_property
    def nbytes(self) -> float:
        """Bytes moved: the stored bytes (`stored_bytes`) of the fraction `density` touched."""
        return self._bytes(self.density)

    @cached_property
    def stored_bytes(self) -> float:
        """Bytes the whole tensor occupies in memory, whatever fraction of it an op touches (`density`:
        routed experts, eviction): scale overhead of block formats included (per block stored) and, for a
        weight, a per-tensor scale once per matrix (`tensor_scales`)."""
        return self._bytes(1.0)

    @property
    def tensor_scales(self) -> int:
        """Per-tensor scales a weight in a format with one (NVFP4's fp32) stores: one per matrix. The leading
        axes of a 3-D+ weight index separate matrices (routed experts, each with its own scale; MLA's absorbed
        per-head slices, priced the same way). 0 for other formats and roles: an activation or KV cache in
        NVFP4 has its per-tensor scale folded into the kernel's one fp32 alpha (global scale of A x that of
        B, a calibrated constant), a scalar argument, not a tensor the kernel streams."""
        if self.role != "weight" or not get_format(self.fmt).tensor_scale_bits:
            return 0
        return math.prod(self.shape[:-2]) if len(self.shape) >= 3 else 1

    def _bytes(self, density) -> float:
        f, bits, n = self._stored_unit()
        units = self.numel if n == 1 else self.numel // n  # whole stored units (one element each when amortised)
        b = units * density * bits / 8.0
        scales = self.tensor_scales
        return b + scales * f.tensor_scale_bits / 8.0 * density if scales else b

    def to_dict(self) -> dict:
        d = {"name": self.name, "shape": list(self.shape), "fmt": self.fmt, "role": self.role}
        if self.density != 1.0:
            d["density"] = self.density
        if self.block_axis is not None:
            d["block_axis"] = self.block_axis
        return d


def implied_block_axis(op_kind: str, tensor_name: str, role: str) -> int | None:
    """The block axis the builders set for a weight a trace stored without ``block_axis``
    (traces saved before it was written, hand-written traces): an embedding op's table is
    blocked along its rows (-1, workloads.builder) and ResMoE's pruned ``*.residual_values``
    along their last axis (workloads.compression.moe). None: TensorSpec's own default."""
    if role != "weight":
        return None
    if op_kind == "embedding" or tensor_name.endswith(".residual_values"):
        return -1
    return None


# FLOPs per output element of elementwise/reduction kernels. These are conventions
# (a norm: square, accumulate, scale, multiply by gain), used for the compute side of
# an op that is memory-bound on every machine we model.
ELEMENTWISE_FLOPS: Mapping[str, float] = {
    "copy": 0.0,
    "add": 1.0,
    "mul": 1.0,
    "rmsnorm": 4.0,
    "layernorm": 7.0,
    "softmax": 5.0,
    "silu_mul": 5.0,
    "gelu_mul": 9.0,  # GeGLU: tanh-GELU of the gate times the up projection
    "gelu": 8.0,
    "softcap": 3.0,  # cap * tanh(x / cap): Gemma-2's logit soft-capping
    "add_rmsnorm": 5.0,  # fused residual add + RMSNorm (serving engines)
    "rope": 3.0,
    "rope_fused": 3.0,  # RoPE on q and k in one kernel (serving engines)
    "embedding": 0.0,
    "quantize": 4.0,
    "dequantize": 2.0,
    "topk": 2.0,
}

# Communication between devices (emitted by workloads.parallel); priced by the system's
# link and collective models, never by a device's memory roofline. dims: ranks (group
# size), stride (distance between members in the device order), message bytes come from
# the op's tensors (see workloads.parallel.message_bytes).
COLLECTIVE_KINDS = ("allreduce", "allgather", "reducescatter", "alltoall", "sendrecv")

OP_KINDS = ("gemm", "attention") + tuple(ELEMENTWISE_FLOPS) + ("moe_router",) + COLLECTIVE_KINDS + ("custom",)

# dims flags (True) saying how a prefill op's work falls when a prompt is prefilled in chunks
# (serving's chunked prefill, cosim.serving.steptime); set where the op is built. A trace prices
# a whole prompt either way; an op with neither flag is per-token work, each chunk its own share.
# - PER_PROMPT: done once a prompt, over all of it, after its last token (a prompt recipe's
#   observation-window selection and gather, ZipCache's probe attention, GEAR's prompt compression)
# - OVER_CONTEXT: done over every token of the sequence so far each time the sequence runs (MLA's
#   kv_b_proj expanding the cached latents again for each chunk, as vLLM's chunked-context path does)
PER_PROMPT = "per_prompt"
OVER_CONTEXT = "over_context"


@dataclass(frozen=True)
class Op:
    name: str
    kind: str
    dims: Mapping[str, int | float | bool]
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    compute_fmt: str = "bf16"  # the format the arithmetic runs in (selects the peak)
    repeat: int = 1
    phase: str = ""
    group: str = ""  # where in the block: attn, mlp, moe, embed, head, recipe …

    def __post_init__(self):
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "outputs", tuple(self.outputs))
        object.__setattr__(self, "dims", dict(self.dims))
        if self.kind not in OP_KINDS:
            raise OpError(f"op {self.name!r}: kind must be one of {OP_KINDS}, got {self.kind!r}")
        if not isinstance(self.repeat, int) or self.repeat < 1:
            raise OpError(f"op {self.name!r}: repeat must be a positive integer, got {self.repeat!r}")
        for key, val in self.dims.items():
            if isinstance(val, (int, float)) and not isinstance(val, bool) and val < 0:
                raise OpError(f"op {self.name!r}: dim {key} must be non-negative, got {val!r}")
        get_format(self.compute_fmt)

    # ---- derived cost -------------------------------------------------
    @property
    def flops(self) -> float:
        d = self.dims
        if self.kind == "gemm":
            return 2.0 * d.get("b", 1) * d["m"] * d["n"] * d["k"]
        if self.kind == "attention":
            dv = d.get("v_head_dim", d["head_dim"])
            capped = 3.0 if d.get("softcap") else 0.0  # cap * tanh(s / cap) per score
            return d["batch"] * d["heads"] * attended_pairs(d) * (2.0 * (d["head_dim"] + dv) + capped)
        if self.kind == "moe_router":
            return 2.0 * d["tokens"] * d["experts"] * d["hidden"]
        if self.kind == "custom":
            return float(d.get("flops", 0.0))
        if self.kind in COLLECTIVE_KINDS:
            return 0.0  # the reduction adds are negligible next to the transfer
        return ELEMENTWISE_FLOPS[self.kind] * d["rows"] * d["cols"]

    @property
    def bytes(self) -> float:
        return sum(t.nbytes for t in self.inputs) + sum(t.nbytes for t in self.outputs)

    def bytes_by_role(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for t in self.inputs + self.outputs:
            out[t.role] = out.get(t.role, 0.0) + t.nbytes
        return out

    @property
    def intensity(self) -> float:
        return self.flops / self.bytes if self.bytes else math.inf

    @property
    def total_flops(self) -> float:
        return self.flops * self.repeat

    @property
    def total_bytes(self) -> float:
        return self.bytes * self.repeat

    def with_(self, **changes) -> "Op":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        d = {"name": self.name, "kind": self.kind, "dims": dict(self.dims),
             "inputs": [t.to_dict() for t in self.inputs],
             "outputs": [t.to_dict() for t in self.outputs],
             "compute_fmt": self.compute_fmt, "repeat": self.repeat}
        if self.phase:
            d["phase"] = self.phase
        if self.group:
            d["group"] = self.group
        return d


SCALE_SUFFIX = ".scale"  # `<tensor>.scale`: the fp32 scales of a stored tensor (a narrow KV cache's per KV head)


def stored_operands(op: "Op") -> tuple:
    """(role, format) of the stored operands (weights, KV cache) an op multiplies: its weight and KV inputs, the
    fp32 scale tensors beside them (`<tensor>.scale`) aside -- they are read with the tensor, not multiplied, so
    a device without an fp32 unit is not said to multiply an fp32 KV cache. The operand-format rule's one
    reading (hwmodels.roofline.stored_operand_notes at the roofline and cycle levels, the trace templates)."""
    return tuple((t.role, t.fmt) for t in op.inputs
                 if t.role in ("weight", "kv") and not t.name.endswith(SCALE_SUFFIX))


def attended_pairs(d: Mapping) -> float:
    """Query-key pairs one head scores. Causal: query i (of q_len, aligned to the end
    of kv_len) sees kv_len - q_len + i + 1 keys; a `window` caps what each sees."""
    q, kv = _int(d["q_len"]), _int(d["kv_len"])
    window = _int(d.get("window", 0) or 0)
    if not d.get("causal", True):
        return float(q * (min(kv, window) if window else kv))
    offset = kv - q
    if offset < 0:
        raise OpError(f"attention: q_len {q} exceeds kv_len {kv}")
    # sum_{i=0}^{q-1} (offset + i + 1), each term capped by the window
    total = q * offset + q * (q + 1) / 2.0
    if window and window < kv:
        # terms offset+i+1 > window are capped: count how many and subtract the excess
        first = max(0, window - offset)  # i from which the term exceeds window
        n_cap = max(0, q - first)
        if n_cap:
            lo, hi = offset + first + 1, offset + q
            total -= (lo + hi) * n_cap / 2.0 - window * n_cap
    return total if is_sym(total) else float(total)


def _int(x):
    return x if is_sym(x) else int(x)
