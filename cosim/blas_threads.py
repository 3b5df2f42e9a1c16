"""BLAS on one thread while another process or thread needs the cores.

OpenBLAS's idle threads spin on the cores for a while after each call: on a 2-core
machine they take the core that the second process (cosim.second_process) or the
functional core's sampling threads need. One thread changes the speed, not the numbers:
OpenBLAS splits a GEMM's output among its threads, never a dot product
(tests/test_second_process.py compares the reports)."""

from __future__ import annotations

from contextlib import nullcontext

__all__ = ["one_blas_thread"]


def one_blas_thread():
    """Limit BLAS to one thread now (threadpoolctl); the returned context manager restores
    the previous limits on exit (a caller that keeps the limit for good drops it). A null
    context when threadpoolctl is missing: an optional speed-up only."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return nullcontext()
    return threadpool_limits(1, user_api="blas")
