"""Single-op constructors for `cosim.estimate`: build an Op from a few numbers."""

from __future__ import annotations

from workloads.builder import wider_format
from workloads.io import InputError
from workloads.ops import ELEMENTWISE_FLOPS, Op, TensorSpec

__all__ = ["gemm", "attention", "elementwise"]


def _pos(name, v, allow_zero=False):
    if isinstance(v, bool) or not isinstance(v, int) or v < (0 if allow_zero else 1):
        raise InputError(f"cosim.ops: {name}: got {v!r}; expected a {'non-negative' if allow_zero else 'positive'} integer")
    return v


def gemm(m: int, n: int, k: int, fmt: str = "bf16", weight_fmt: str | None = None, out_fmt: str | None = None,
         name: str = "gemm") -> Op:
    """C[m,n] = A[m,k] · B[k,n]; B is treated as the weight."""
    m, n, k = _pos("m", m), _pos("n", n), _pos("k", k)
    wf = weight_fmt or fmt
    return Op(name, "gemm", {"m": m, "n": n, "k": k},
              (TensorSpec("a", (m, k), fmt), TensorSpec("b", (k, n), wf, "weight")),
              (TensorSpec("c", (m, n), out_fmt or fmt),), wider_format(fmt, wf))


def attention(batch: int, heads: int, kv_heads: int, q_len: int, kv_len: int, head_dim: int,
              causal: bool = True, fmt: str = "bf16", kv_fmt: str | None = None, name: str = "attention") -> Op:
    """Fused (flash) attention: reads Q, K, V once, writes O."""
    for nm, v in (("batch", batch), ("heads", heads), ("kv_heads", kv_heads), ("q_len", q_len),
                  ("kv_len", kv_len), ("head_dim", head_dim)):
        _pos(nm, v)
    if heads % kv_heads:
        raise InputError(f"cosim.ops.attention: kv_heads: got {kv_heads}; expected a divisor of heads ({heads})")
    if causal and q_len > kv_len:
        raise InputError(f"cosim.ops.attention: q_len: got {q_len}; expected at most kv_len ({kv_len}) when causal")
    kf = kv_fmt or fmt
    return Op(name, "attention",
              {"batch": batch, "heads": heads, "kv_heads": kv_heads, "q_len": q_len, "kv_len": kv_len,
               "head_dim": head_dim, "causal": causal},
              (TensorSpec("q", (batch, q_len, heads, head_dim), fmt),
               TensorSpec("k_cache", (batch, kv_len, kv_heads, head_dim), kf, "kv"),
               TensorSpec("v_cache", (batch, kv_len, kv_heads, head_dim), kf, "kv")),
              (TensorSpec("o", (batch, q_len, heads, head_dim), fmt),), wider_format(fmt, kf))


# inputs read per output element
_N_INPUTS = {"add": 2, "mul": 2, "silu_mul": 2}


def elementwise(kind: str, rows: int, cols: int, fmt: str = "bf16", name: str | None = None) -> Op:
    if kind not in ELEMENTWISE_FLOPS:
        raise InputError(f"cosim.ops.elementwise: kind: got {kind!r}; expected one of {sorted(ELEMENTWISE_FLOPS)}")
    rows, cols = _pos("rows", rows), _pos("cols", cols)
    ins = tuple(TensorSpec(f"x{i}", (rows, cols), fmt) for i in range(_N_INPUTS.get(kind, 1)))
    if kind in ("rmsnorm", "layernorm"):
        ins += (TensorSpec("gain", (cols,), fmt, "weight"),)
    return Op(name or kind, kind, {"rows": rows, "cols": cols}, ins, (TensorSpec("y", (rows, cols), fmt),), fmt)
