"""Non-temporal (streaming) row stores for the block kernels, as LLVM intrinsics numba
does not offer.

Why: a plain store to a line that is not in cache first reads it (read-for-ownership),
so writing a 64 MiB result that is far larger than the caches moves 64 MiB from memory
that is then overwritten: quantize -> dequantize into a reused output read 128 MiB and
wrote 64 MiB where np.copyto (glibc's memcpy, which streams above about 3/4 of the L3
cache) reads 64 and writes 64. The kernels round a row into a scratch row that stays in
L1 and `stream_row` copies it out with `!nontemporal` vector stores (vmovntps on x86).
They are used only for a caller's reused output at least the size of the last-level
cache (`use_streaming`): into freshly mapped pages, which the OS has just zeroed through
the cache, streaming was slower (issue 14 A/B, docs/speed.md).

Streaming stores are weakly ordered: a task ends with `store_fence` (a sequentially
consistent fence, mfence on x86) before other threads may read what it wrote. The values
written are the scratch row's, bit for bit.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["stream_row", "store_fence", "use_streaming", "last_level_cache_bytes"]

VEC = 16  # float32 lanes per streaming store: one 64-byte cache line


@intrinsic
def _address(typingctx, arr, idx):
    """Address of arr[idx] (1-D float32 array) as an integer, for the alignment test."""
    if not isinstance(arr, types.Array) or not isinstance(idx, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        a = context.make_array(sig.args[0])(context, builder, args[0])
        return builder.ptrtoint(builder.gep(a.data, [args[1]]), ir.IntType(64))

    return types.uint64(arr, idx), codegen


@intrinsic
def _stream_lines(typingctx, dst, dlo, src, slo, nlines):
    """dst[dlo + k] = src[slo + k] for k < 16 * nlines with non-temporal 64-byte stores;
    dst + dlo must be 64-byte aligned (the caller checks), src needs only float alignment."""
    if not (isinstance(dst, types.Array) and isinstance(src, types.Array)):
        return None

    def codegen(context, builder, sig, args):
        d = context.make_array(sig.args[0])(context, builder, args[0])
        s = context.make_array(sig.args[2])(context, builder, args[2])
        vt = ir.VectorType(ir.FloatType(), VEC)
        dv = builder.bitcast(builder.gep(d.data, [args[1]]), vt.as_pointer())
        sv = builder.bitcast(builder.gep(s.data, [args[3]]), vt.as_pointer())
        nontemporal = builder.module.add_metadata([ir.Constant(ir.IntType(32), 1)])
        with cgutils.for_range(builder, args[4]) as loop:
            v = builder.load(builder.gep(sv, [loop.index]), align=4)
            st = builder.store(v, builder.gep(dv, [loop.index]), align=64)
            st.set_metadata("nontemporal", nontemporal)
        return context.get_dummy_value()

    return types.void(dst, dlo, src, slo, nlines), codegen


@intrinsic
def store_fence(typingctx):
    """Order this thread's streaming stores before anything it does next."""

    def codegen(context, builder, sig, args):
        builder.fence("seq_cst")
        return context.get_dummy_value()

    return types.void(), codegen


@njit(inline="always", cache=True)
def stream_row(dst, src, n):
    """dst[:n] = src[:n] (1-D float32): plain stores up to dst's first 64-byte boundary and
    after its last, streaming stores in between; plain stores only when dst is not even
    4-byte aligned (a view into a byte buffer)."""
    a = _address(dst, 0)
    head = n
    if (a & np.uint64(3)) == 0:
        head = min(np.int64(((np.uint64(64) - (a & np.uint64(63))) & np.uint64(63)) >> np.uint64(2)), n)
    for k in range(head):
        dst[k] = src[k]
    lines = (n - head) // VEC
    if lines > 0:
        _stream_lines(dst, head, src, head, lines)
    for k in range(head + lines * VEC, n):
        dst[k] = src[k]


CACHE_DIR = Path("/sys/devices/system/cpu/cpu0/cache")


def _cache_sizes_bytes(cache_dir: Path) -> list:
    """Sizes of the CPU caches listed under a sysfs cache directory ('32768K' -> bytes);
    entries without a readable size are skipped."""
    sizes = []
    for d in sorted(cache_dir.glob("index*")):
        try:
            txt = (d / "size").read_text().strip().upper()
        except OSError:
            continue
        digits = txt.rstrip("KMG")
        if digits.isdigit():
            sizes.append(int(digits) * {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(txt[-1:], 1))
    return sizes


@lru_cache(maxsize=1)
def last_level_cache_bytes() -> int:
    """Size of the largest CPU cache (Linux sysfs, cpu0); 0 where none can be read (then
    nothing streams)."""
    return max(_cache_sizes_bytes(CACHE_DIR), default=0)


def use_streaming(out: np.ndarray | None) -> bool:
    """Stream the result rows: a caller's reused output at least as large as the last-level
    cache (a smaller one may still be in cache and read right after: plain stores keep it
    there)."""
    llc = last_level_cache_bytes()
    return out is not None and llc > 0 and out.nbytes >= llc
