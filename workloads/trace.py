"""Workload traces: an ordered list of ops plus what produced them.

Traces save to and load from YAML or JSON. Loading validates every field and names
the file, the op and the field when something is wrong.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable

from workloads.formats import FormatError
from functools import partial

from workloads.io import InputError, load_yaml_file
from workloads.io import require as _require
from workloads.ops import Op, OpError, TensorSpec, implied_block_axis

__all__ = ["Trace", "TraceError"]

TRACE_SCHEMA_VERSION = 1


class TraceError(InputError):
    pass


require = partial(_require, error=TraceError)


@dataclass(frozen=True)
class Trace:
    ops: tuple[Op, ...]
    model: str = ""
    phase: str = ""
    batch: int = 1
    seq: int = 0  # prompt length (prefill) or context length (decode)
    recipe: str = ""
    meta: dict = field(default_factory=dict)  # formats, footprint inputs, notes

    def __post_init__(self):
        object.__setattr__(self, "ops", tuple(self.ops))

    @classmethod
    def deferred(cls, make_ops, numbers=None, **fields) -> "Trace":
        """A trace whose ops are built on first access to `.ops` by `make_ops()`.
        `numbers` = (template, flat numbers) from workloads.template lets a cost model
        price it without building the ops (cosim.simulate's roofline fast path)."""
        t = object.__new__(cls)
        unknown = fields.keys() - _DEFERRED_FIELDS
        if unknown:
            raise TypeError(f"Trace.deferred: unknown fields {sorted(unknown)}")
        d = t.__dict__  # frozen: fill the instance dict directly, as __init__ would
        d.update(_DEFERRED_DEFAULTS)
        d.update(fields)
        if "meta" not in fields:
            d["meta"] = {}
        d["_make_ops"], d["_numbers"] = make_ops, numbers
        return t

    def __getattr__(self, name):
        if name == "ops":
            make = self.__dict__.get("_make_ops")
            if make is not None:
                ops = tuple(make())
                object.__setattr__(self, "ops", ops)
                return ops
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __getstate__(self):
        # pickles and copies carry the built ops, not the (unpicklable) builder closure
        state = {k: v for k, v in self.__dict__.items() if not k.startswith("_")}
        state["ops"] = self.ops
        return state

    @property
    def total_flops(self) -> float:
        return sum(op.total_flops for op in self.ops)

    @property
    def total_bytes(self) -> float:
        return sum(op.total_bytes for op in self.ops)

    @property
    def tokens(self) -> int:
        """Tokens processed by one pass of this trace."""
        return self.batch * (self.seq if self.phase == "prefill" else 1)

    def find(self, name: str) -> Op:
        for op in self.ops:
            if op.name == name:
                return op
        raise KeyError(f"trace has no op named {name!r}; ops: {[o.name for o in self.ops]}")

    def replace_ops(self, ops: Iterable[Op], **changes) -> "Trace":
        return replace(self, ops=tuple(ops), **changes)

    # ---- serialisation --------------------------------------------------
    def to_dict(self) -> dict:
        return {"schema_version": TRACE_SCHEMA_VERSION, "model": self.model, "phase": self.phase,
                "batch": self.batch, "seq": self.seq, "recipe": self.recipe,
                "meta": _plain(self.meta), "ops": [op.to_dict() for op in self.ops]}

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        data = self.to_dict()
        if path.suffix.lower() == ".json":
            path.write_text(json.dumps(data, indent=1))
        elif path.suffix.lower() in (".yaml", ".yml"):
            import yaml
            path.write_text(yaml.safe_dump(data, sort_keys=False))
        else:
            raise TraceError(f"{path}: trace files end in .yaml, .yml or .json, got {path.suffix!r}")
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Trace":
        path = Path(path)
        if path.suffix.lower() == ".json":
            try:
                data = json.loads(path.read_text())
            except FileNotFoundError:
                raise TraceError(f"{path}: no such trace file") from None
            except json.JSONDecodeError as e:
                raise TraceError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
        else:
            try:
                data = load_yaml_file(path, what="trace")
            except TraceError:
                raise
            except InputError as e:
                raise TraceError(str(e)) from None
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: Any, source: str = "<trace>") -> "Trace":
        require(isinstance(data, dict), source, "", data, "a mapping with 'ops'")
        version = data.get("schema_version", TRACE_SCHEMA_VERSION)
        require(version == TRACE_SCHEMA_VERSION, source, "schema_version", version,
                f"{TRACE_SCHEMA_VERSION}")
        ops_data = data.get("ops")
        require(isinstance(ops_data, list) and ops_data, source, "ops", ops_data, "a non-empty list of ops")
        ops = [_op_from_dict(o, source, i) for i, o in enumerate(ops_data)]
        batch = data.get("batch", 1)
        require(isinstance(batch, int) and batch >= 1, source, "batch", batch, "a positive integer")
        seq = data.get("seq", 0)
        require(isinstance(seq, int) and seq >= 0, source, "seq", seq, "a non-negative integer")
        return cls(ops=tuple(ops), model=str(data.get("model", "")), phase=str(data.get("phase", "")),
                   batch=batch, seq=seq, recipe=str(data.get("recipe", "") or ""),
                   meta=dict(data.get("meta") or {}))


_DEFERRED_FIELDS = frozenset({"model", "phase", "batch", "seq", "recipe", "meta"})
_DEFERRED_DEFAULTS = {"model": "", "phase": "", "batch": 1, "seq": 0, "recipe": ""}


def _op_from_dict(o: Any, source: str, i: int) -> Op:
    where = f"ops[{i}]"
    require(isinstance(o, dict), source, where, o, "a mapping")
    where = f"ops[{i}] ({o.get('name', '?')})"
    for key in ("name", "kind", "dims", "inputs", "outputs"):
        require(key in o, source, f"{where}.{key}", None, "present")
    require(isinstance(o["dims"], dict), source, f"{where}.dims", o["dims"], "a mapping of dim -> number")
    try:
        tensors = {}
        for side in ("inputs", "outputs"):
            require(isinstance(o[side], list), source, f"{where}.{side}", o[side], "a list of tensors")
            tensors[side] = tuple(
                TensorSpec(name=t["name"], shape=tuple(t["shape"]), fmt=t["fmt"],
                           role=t.get("role", "activation"), density=float(t.get("density", 1.0)),
                           block_axis=_block_axis(t, o["kind"], source, f"{where}.{side}[{j}]"))
                for j, t in enumerate(o[side]))
        return Op(name=str(o["name"]), kind=o["kind"], dims=o["dims"], inputs=tensors["inputs"],
                  outputs=tensors["outputs"], compute_fmt=o.get("compute_fmt", "bf16"),
                  repeat=o.get("repeat", 1), phase=o.get("phase", ""), group=o.get("group", ""))
    except (OpError, FormatError) as e:
        raise TraceError(f"{source}: {where}: {e}") from None
    except (KeyError, TypeError) as e:
        raise TraceError(f"{source}: {where}: malformed tensor entry ({e}); expected name, shape, fmt, role") from None


def _block_axis(t: Any, op_kind: Any, source: str, where: str) -> int | None:
    """A tensor's ``block_axis``: absent -> the axis the builders set (implied_block_axis);
    present -> an integer axis of its shape (a bool or float is refused, not truncated)."""
    if not isinstance(t, dict) or t.get("block_axis") is None:
        return None if not isinstance(t, dict) else implied_block_axis(
            str(op_kind), str(t.get("name", "")), t.get("role", "activation"))
    ax = t["block_axis"]
    shape = t.get("shape")
    ndim = len(shape) if isinstance(shape, (list, tuple)) else 0
    require(isinstance(ax, int) and not isinstance(ax, bool) and -ndim <= ax < ndim, source,
            f"{where}.block_axis", ax, f"an integer axis in {-ndim}..{ndim - 1} of its {ndim}-D shape")
    return ax


def _plain(x):
    """Metadata as YAML/JSON-safe builtins."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if hasattr(x, "item"):
        return x.item()
    return x
