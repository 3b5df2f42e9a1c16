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

__all__ = ["PARALLEL_MIN_ELEMENTS", "threads_for", "serial_twin", "is_small"]

PARALLEL_MIN_ELEMENTS = 1 << 22  # 4 Mi float32 elements = 16 MiB


def is_small(n_elements: int) -> bool:
    """Below the threshold: one thread (and the kernels' serial twins)."""
    return n_elements < PARALLEL_MIN_ELEMENTS


def serial_twin(kernel):
    """`kernel` (a `parallel=True` numba dispatcher) compiled without `parallel`; a Python
    wrapper over such kernels names its own twin (a `serial_twin` attribute that builds it
    over theirs, as `microq.microexp_rows`); anything else is returned as is. The twin: its
    `prange` loops run as plain loops. The same code, so the same numbers (every kernel
    writes disjoint rows; the only reduction, `finite_amax`, is a max); what changes is
    the cost: a small call skips the parallel launch (~1 ms instead of 6-8 ms for a
    128 x 4096 mxfp4 quantize) and a first run compiles the serial loop in about a third
    of the time (mx_rows 2.7 s instead of 6.6 s). Cached under its own name (`<name>_serial`),
    so the two variants never share a cache entry."""
    import types

    from numba import njit
    build = getattr(kernel, "serial_twin", None)
    if callable(build):
        return build()
    if not (getattr(kernel, "targetoptions", None) or {}).get("parallel"):
        return kernel  # a plain function or a serial kernel already
    f = kernel.py_func
    g = types.FunctionType(f.__code__, f.__globals__, f.__name__ + "_serial", f.__defaults__, f.__closure__)
    g.__qualname__ = f.__qualname__ + "_serial"
    g.__module__, g.__doc__ = f.__module__, f.__doc__
    return njit(cache=True)(g)


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
