"""`cosim.blas_threads.one_blas_thread`: the one place BLAS is limited to one thread (the
functional core's sampling, and the second process for its whole life)."""

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


def test_the_functional_core_samples_on_one_blas_thread_whatever_the_caller_set(monkeypatch):
    """Its figures are then the same in every mode that runs it: with two threads quickstart's
    attention SQNR moved in the 16th digit (the caller's limit is back afterwards)."""
    pytest.importorskip("threadpoolctl")
    from threadpoolctl import threadpool_limits

    from cosim import layer_accuracy
    from cosim.experiment import _experiment_performance, load_experiment

    seen, real = [], layer_accuracy._trace_accuracy

    def spy(*a):
        seen.append(_blas_threads())
        return real(*a)
    monkeypatch.setattr(layer_accuracy, "_trace_accuracy", spy)
    exp = load_experiment("quickstart")
    trace, acc = _experiment_performance(exp)[0], exp.accuracy
    figures = []
    for limit in (1, 2):
        with threadpool_limits(limit, user_api="blas"):
            res = layer_accuracy.trace_accuracy(trace, layers=acc.layers, rows=acc.rows, tokens=acc.tokens,
                                                seed=acc.seed, model=exp.model, threads=2)
            assert _blas_threads() == [limit]
        figures.append(repr(sorted(res.by_op.items())))
    assert seen == [[1], [1]] and figures[0] == figures[1]
