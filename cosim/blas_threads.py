"""BLAS on one thread while another process or thread needs the cores.

OpenBLAS's idle threads spin on the cores for a while after each call: on a 2-core
machine they take the core that the second process (cosim.second_process) or the
functional core's sampling threads need. The thread count can also move a result's last
bits (each thread's share of a GEMM's output takes the full or the edge kernel differently):
the functional core's sampling always runs on one thread (cosim.layer_accuracy.trace_accuracy),
so a report's figures do not depend on the mode that ran it (tests/test_second_process.py)."""

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
