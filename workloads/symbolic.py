"""Tracing the trace builder: run it once with symbolic batch and sequence length,
record every arithmetic step, and compile the steps into one Python function.

Why: the builder is ordinary Python that creates ~20 ops and ~60 tensors per call.
Only a handful of its numbers depend on batch and sequence length; the structure
(names, kinds, formats, repeats) does not. Tracing it once per structure gives a
function ``numbers(B, S)`` that recomputes every op's FLOPs, bytes and GEMM sizes in
a few microseconds — and, called with numpy arrays, for thousands of workloads at
once. It is the same arithmetic, in the same order, on the same constants, so the
results are bit-identical to the builder's (tests compare them).

A `Sym` carries a concrete value beside its symbol. Arithmetic records one line of
code. A comparison (``min(seq, window)``, ``if offset < 0``) answers with the concrete
value and records a *guard*: the template is valid only for inputs that take the same
branches, which `Tape.guards_hold` checks before reuse (as JAX and torch.compile do).
Converting a Sym to int/float raises: that would silently freeze a symbolic number.
"""

from __future__ import annotations

import numbers
import operator

__all__ = ["Sym", "Tape", "is_sym"]

_BIN = {"add": "+", "sub": "-", "mul": "*", "truediv": "/", "floordiv": "//", "pow": "**", "mod": "%"}
_CMP = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}
_NUM = numbers.Real


def is_sym(x) -> bool:
    return type(x) is Sym


class Tape:
    """Recorded lines (target, expression, operand names), guards, and inputs."""

    def __init__(self, inputs: dict):
        self.lines: list = []
        self.guards: list = []  # (expression, result)
        self.inputs = {name: Sym(v, name, self) for name, v in inputs.items()}
        self._n = 0
        self._seen: dict = {}

    def new(self, value, expr: str, deps: tuple) -> "Sym":
        hit = self._seen.get(expr)  # the same expression of the same operands: reuse it
        if hit is not None:
            return hit
        name = f"v{self._n}"
        self._n += 1
        self.lines.append((name, expr, deps))
        self._seen[expr] = sym = Sym(value, name, self)
        return sym

    def compile(self, outputs: list, fn_name: str = "numbers"):
        """A function of the inputs returning `outputs` (Syms or constants) as a tuple,
        with every line not needed for them dropped."""
        names = [o.name if is_sym(o) else None for o in outputs]
        body = self._needed_lines([n for n in names if n])
        rets = [n if n else _ref(o)[0] for n, o in zip(names, outputs)]
        return _build(fn_name, list(self.inputs), body, "(" + "".join(r + ", " for r in rets) + ")")

    def guard_fn(self):
        """A function of the inputs returning the truth value of every guard."""
        exprs = [g for g, _ in self.guards]
        body = self._needed_lines([d for e in exprs for d in _operands(e)])
        return _build("guards", list(self.inputs), body, "(" + "".join(e + ", " for e in exprs) + ")")

    def guard_values(self) -> tuple:
        return tuple(r for _, r in self.guards)

    def _needed_lines(self, roots: list) -> list:
        need = set(roots)
        keep = []
        for name, expr, deps in reversed(self.lines):
            if name in need:
                keep.append(f"    {name} = {expr}")
                need.update(deps)
        return keep[::-1]


def _operands(expr: str) -> list:
    return [t for t in expr.replace("(", " ").replace(")", " ").split() if t.startswith("v") and t[1:].isdigit()]


def _build(fn_name: str, args: list, body: list, ret: str):
    src = f"def {fn_name}({', '.join(args)}):\n" + "\n".join(body + [f"    return {ret}"]) + "\n"
    ns: dict = {}
    exec(compile(src, f"<traced {fn_name}>", "exec"), ns)  # noqa: S102 - our own generated arithmetic
    fn = ns[fn_name]
    fn.source = src
    return fn


def _ref(x) -> tuple[str, tuple]:
    if is_sym(x):
        return x.name, (x.name,)
    if hasattr(x, "item"):  # a numpy scalar: its Python twin has the same value and a plain repr
        x = x.item()
    return repr(x), ()


def _binary(op_name: str, reverse: bool = False):
    sym = _BIN[op_name]
    fn = getattr(operator, op_name)

    def method(self, other):
        if not (is_sym(other) or isinstance(other, _NUM)) or isinstance(other, bool):
            return NotImplemented
        a, b = (other, self) if reverse else (self, other)
        # exact identities keep the compiled function short: int 1 * x, x * 1, 0 + x, x + 0
        # (an int operand of 1 or 0 leaves x's value and type unchanged)
        if type(other) is int and ((sym == "*" and other == 1) or (sym == "+" and other == 0)):
            return self
        va = a.value if is_sym(a) else a
        vb = b.value if is_sym(b) else b
        ra, da = _ref(a)
        rb, db = _ref(b)
        return self.tape.new(fn(va, vb), f"({ra} {sym} {rb})", da + db)
    return method


def _compare(op_name: str):
    sym = _CMP[op_name]
    fn = getattr(operator, op_name)

    def method(self, other):
        if not (is_sym(other) or isinstance(other, _NUM)) or isinstance(other, bool):
            return NotImplemented
        result = bool(fn(self.value, other.value if is_sym(other) else other))
        self.tape.guards.append((f"({self.name} {sym} {_ref(other)[0]})", result))
        return result
    return method


class Sym:
    """A traced number: concrete `value`, symbolic `name` on its `tape`."""

    __slots__ = ("value", "name", "tape")

    def __init__(self, value, name: str, tape: Tape):
        self.value, self.name, self.tape = value, name, tape

    def __neg__(self):
        return self.tape.new(-self.value, f"(-{self.name})", (self.name,))

    def __bool__(self):
        result = bool(self.value)
        self.tape.guards.append((f"({self.name} != 0)", result))
        return result

    def __int__(self):
        raise TypeError(f"symbolic value {self.name} cannot become a constant int while tracing")

    __float__ = __index__ = __int__

    def __hash__(self):
        return id(self)

    def __repr__(self):
        return f"Sym({self.name}={self.value!r})"


for _op in _BIN:
    setattr(Sym, f"__{_op}__", _binary(_op))
    setattr(Sym, f"__r{_op}__", _binary(_op, reverse=True))
for _op in _CMP:
    setattr(Sym, f"__{_op}__", _compare(_op))
