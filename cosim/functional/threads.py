"""How many numba threads a kernel call gets.

A parallel region costs a thread wake-up and a barrier: on this 2-core machine, with
other processes (or OpenBLAS's own spinning threads right after a matmul) holding the
cores, the second thread can wait a whole scheduler slice. Measured under load
(benchmarks/functional_speed.py, issue 14): an (8, 4096) mxfp4 quantize took 0.07 ms on
one thread and 12-20 ms on two; at 4096 x 4096 two threads still pay off. So calls on
fewer than `PARALLEL_MIN_ELEMENTS` elements run on one thread; larger ones use all.
The result does not depend on the thread count (every kernel writes disjoint rows).
"""

from __future__ import annotations

from contextlib import contextmanager

import numba

__all__ = ["PARALLEL_MIN_ELEMENTS", "threads_for"]

PARALLEL_MIN_ELEMENTS = 1 << 22  # 4 Mi float32 elements = 16 MiB


@contextmanager
def threads_for(n_elements: int, min_elements: int | None = None):
    """Run the enclosed numba calls on one thread when the work is small (fewer than
    `min_elements`, default `PARALLEL_MIN_ELEMENTS` read at call time)."""
    if n_elements >= (PARALLEL_MIN_ELEMENTS if min_elements is None else min_elements):
        yield
        return
    prev = numba.get_num_threads()
    if prev == 1:
        yield
        return
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(prev)
