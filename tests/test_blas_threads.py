"""`cosim.blas_threads.one_blas_thread`: the one place BLAS is limited to one thread (the
experiment while its second process works, and that child for its whole life)."""

from __future__ import annotations

import sys

import pytest


def _blas_threads():
    from threadpoolctl import threadpool_info
    return sorted({p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"})


def test_one_blas_thread_limits_then_restores():
    pytest.importorskip("threadpoolctl")
    from threadpoolctl import threadpool_limits

    from cosim.blas_threads import one_blas_thread

    import numpy  # noqa: F401  (loads the BLAS threadpoolctl reports on)
    with threadpool_limits(2, user_api="blas"):  # a known starting point above one
        assert _blas_threads() == [2]
        with one_blas_thread():
            assert _blas_threads() == [1]
        assert _blas_threads() == [2]
        one_blas_thread()  # the child's use: the limit stays
        assert _blas_threads() == [1]


def test_without_threadpoolctl_a_null_context(monkeypatch):
    from contextlib import nullcontext

    from cosim.blas_threads import one_blas_thread

    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # import raises ImportError
    assert isinstance(one_blas_thread(), nullcontext)


def test_the_experiment_limits_blas_only_beside_its_second_process():
    pytest.importorskip("threadpoolctl")
    from threadpoolctl import threadpool_limits

    from cosim.experiment import _one_blas_thread

    with threadpool_limits(2, user_api="blas"):
        with _one_blas_thread(False):
            assert _blas_threads() == [2]
        with _one_blas_thread(True):
            assert _blas_threads() == [1]
        assert _blas_threads() == [2]
