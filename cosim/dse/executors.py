"""Where sweep tasks run. Every executor takes a list of tasks (each a list of points)
and yields each task's records as soon as that task finishes; the driver stores them.

- "local": in this process when there is one worker or one task (no start-up cost),
  otherwise a process pool of `workers` processes (forked from a clean forkserver
  that has imported cosim once; spawned where forkserver is unavailable).
- "dask": a Dask distributed cluster — an existing one (`scheduler="tcp://host:8786"`
  or a `distributed.Client`), or a LocalCluster of `workers` processes when none is
  given. The same `evaluate_task` runs on the workers, so results are identical.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Iterable, Iterator

from cosim.dse.evaluate import evaluate_task
from cosim.pool_children import stop_pool as _stop
from cosim.pool_children import worker_init as _worker_init
from workloads.io import InputError

__all__ = ["run_tasks", "dask_client"]


def run_tasks(tasks: list, executor: str = "local", workers: int = 1, scheduler=None) -> Iterator[list]:
    if not tasks:
        return iter(())
    if executor == "dask" or scheduler is not None:
        return _dask(tasks, workers, scheduler)
    if workers <= 1 or len(tasks) == 1:
        return (evaluate_task(t) for t in tasks)
    return _pool(tasks, workers)


def _pool(tasks, workers) -> Iterable[list]:
    import multiprocessing as mp
    import os
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    # forkserver: one clean server process imports cosim once, workers fork from it
    # (no inherited threads or locks, no per-worker import cost); spawn where unavailable
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["cosim.dse.evaluate", "hwmodels.estimate", "workloads.builder"])
    else:
        ctx = mp.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init,
                               initargs=(os.getpid(),))
    finished = False
    try:
        # keep a bounded number in flight so results stream back (and get stored) early
        pending, queue = set(), list(reversed(tasks))
        with _sigint_ignored():  # the first submits start the forkserver and workers: born ignoring Ctrl-C
            while queue and len(pending) < 2 * workers:
                pending.add(pool.submit(evaluate_task, queue.pop()))
        while queue or pending:
            while queue and len(pending) < 2 * workers:
                pending.add(pool.submit(evaluate_task, queue.pop()))
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in done:
                yield f.result()
        finished = True
    finally:
        if finished:  # every result is in: the idle workers get their exit sentinel and end on their
            pool.shutdown(wait=False)  # own while the driver builds the table (joined at interpreter exit)
        else:  # Ctrl-C, an error, or the consumer stopped: do not wait for running tasks
            _stop(pool)


def dask_client(scheduler=None, workers: int = 1):
    """(client, owned): a Client for `scheduler` (address or Client), or a new
    LocalCluster with `workers` single-threaded worker processes."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise InputError("executor dask: the 'distributed' package is not installed; "
                         "pip install 'cosim[dask]' (dask[distributed], dask-jobqueue)") from None
    if scheduler is not None and hasattr(scheduler, "submit"):
        return scheduler, False
    if isinstance(scheduler, str):
        try:
            return Client(scheduler, timeout="20s"), True
        except (OSError, TimeoutError) as e:
            raise InputError(f"scheduler: could not connect to {scheduler!r} ({e}); expected the address of a "
                             f"running dask scheduler, e.g. tcp://host:8786") from None
    with _sigint_ignored():  # workers are spawned now and inherit the ignore (see _sigint_ignored)
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=logging.CRITICAL, preload=["cosim.dse.dask_preload"])
        return Client(cluster), True


def _dask(tasks, workers, scheduler) -> Iterable[list]:
    from distributed import as_completed

    client, owned = dask_client(scheduler, workers)
    finished = False
    done = as_completed()
    try:
        # a bounded number in flight (as the local pool does): results stream back early and
        # Ctrl-C leaves the scheduler no backlog of thousands of queued tasks to unwind
        try:
            n_workers = len(client.scheduler_info().get("workers", ()))
        except Exception:
            n_workers = 0
        limit = 4 * max(1, workers, n_workers)
        queue = list(reversed(tasks))
        while queue and done.count() < limit:
            done.add(client.submit(evaluate_task, queue.pop(), pure=False))
        for fut in done:
            result = fut.result()
            fut.release()
            if queue:
                done.add(client.submit(evaluate_task, queue.pop(), pure=False))
            yield result
        finished = True
    finally:
        _close_dask(client, owned, done, finished)


@contextmanager
def _sigint_ignored():
    """SIGINT ignored in this process for the block (main thread only; elsewhere a no-op).
    Used while a LocalCluster starts: its worker processes are spawned (fork + exec), and
    an ignored signal is the one disposition that survives exec, so the workers never see
    the terminal's Ctrl-C (sent to the whole process group) and print no tracebacks; the
    driver alone handles it. A Ctrl-C in this window (the cluster's start, about a second)
    is dropped; the preload covers workers a nanny restarts later."""
    import signal
    import threading
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def _close_dask(client, owned: bool, done, finished: bool) -> None:
    """Shut down what the sweep started. After Ctrl-C or an error, on a cluster of our own:
    mute distributed's teardown logging (the in-process scheduler logged a page of
    CancelledError/CommClosedError tracebacks), kill the worker processes first (so none
    can outlive us whatever happens next), then close client and cluster with short
    timeouts while SIGINT is ignored; a close that does not finish (a CPU-starved scheduler
    took over a minute) is abandoned, never allowed to replace the interrupt or to be
    retried at interpreter exit. On someone else's cluster: cancel our tasks only."""
    if finished:
        if owned:
            cluster = getattr(client, "cluster", None)
            client.close(timeout=30)
            if cluster is not None:
                cluster.close(timeout=30)
        return
    logging.getLogger("distributed").setLevel(logging.CRITICAL + 10)  # even teardown races log at CRITICAL
    with _sigint_ignored():
        if not owned:
            try:
                client.cancel(list(done.futures), force=True)
            except Exception:  # the cluster may be going away; nothing of ours is left running then
                pass
            return
        cluster = getattr(client, "cluster", None)
        _kill_local_workers(cluster)
        for obj in (client, cluster):
            if obj is None:
                continue
            try:
                obj.close(timeout=5)
            except Exception:
                _mark_closed(obj)


def _kill_local_workers(cluster) -> None:
    """SIGKILL the worker processes of a LocalCluster's nannies (they live in this process)."""
    for nanny in list((getattr(cluster, "workers", None) or {}).values()):
        try:  # a killed worker is not to be replaced: the nanny closes itself instead
            from distributed.core import Status
            nanny.status = Status.closing_gracefully
        except Exception:
            pass
        proc = getattr(getattr(getattr(nanny, "process", None), "process", None), "_process", None)
        try:
            if proc is not None and proc.is_alive():
                proc.kill()
        except Exception:  # already reaped
            pass


def _mark_closed(obj) -> None:
    """A client or cluster whose close timed out: mark it closed so that __del__ and the
    atexit hooks do not try again (Client.__del__ waited 60 s at interpreter exit)."""
    try:
        from distributed.core import Status
        obj.status = "closed" if obj.__class__.__name__ == "Client" else Status.closed
    except Exception:
        pass
