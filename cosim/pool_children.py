"""Child processes of a process pool (the sweep's workers, cosim.second_process's
child): how they start (Ctrl-C ignored, ending themselves when the driver is gone) and
how a pool is stopped at once. Shared by cosim.dse.executors and cosim.second_process;
it imports nothing of cosim, so neither depends on the other."""

from __future__ import annotations

__all__ = ["stop_pool", "worker_init", "driver_alive"]


def stop_pool(pool) -> None:
    """Shut a pool down now: cancel queued tasks, end the workers (the results of running
    tasks are not wanted; the store has every finished one)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    results = getattr(pool, "_result_queue", None)  # shutdown() drops the reference
    manager = getattr(pool, "_executor_manager_thread", None)  # and this one
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(timeout=2)
        if p.is_alive():
            p.kill()
    # A worker terminated while writing its result leaves a partial message in the result
    # pipe, and the pool's manager thread then waits in recv() forever (the driver holds
    # the pipe's other write end, so no EOF comes) — and interpreter exit joins that
    # thread. Closing the driver's write end gives the reader its EOF: the manager marks
    # the pool broken and ends.
    writer = getattr(results, "_writer", None)
    if writer is not None:
        try:
            writer.close()
        except OSError:
            pass
    # Let the manager thread finish closing its wake-up pipe now: left running, it raced the
    # interpreter-exit hook that writes to that pipe ("OSError: [Errno 9] Bad file descriptor"
    # traceback after the one-line Ctrl-C message; CPython 3.11).
    if manager is not None and manager.is_alive():
        manager.join(timeout=5)


def _bare_names_told_by_driver() -> None:
    """A worker resolves the names its driver already resolved (load_sweep checks every model, hardware
    and recipe of a sweep), and the driver told the user of a shadowed one (workloads.io's
    ShadowedNameWarning, or the CLI's note): the worker does not repeat it once per process."""
    import warnings

    from workloads.io import ShadowedNameWarning
    warnings.simplefilter("ignore", ShadowedNameWarning)


def worker_init(driver_pid: int) -> None:
    """In each worker: Ctrl-C is the driver's to handle (workers printed a traceback each),
    and a worker ends itself when the driver is gone (SIGKILL of the driver left the
    workers, the forkserver and the resource tracker alive)."""
    import signal
    import threading

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _bare_names_told_by_driver()
    threading.Thread(target=_watch_driver, args=(driver_pid,), daemon=True, name="cosim-driver-watch").start()


def driver_alive(pid: int) -> bool:
    import os
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:  # a killed, unreaped driver is a zombie: 'Z'
            return f.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except FileNotFoundError:
        return False
    except OSError:  # no /proc (macOS): signal 0 tells whether the pid exists
        try:
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:
            return True


def _watch_driver(pid: int) -> None:
    import os
    import time
    while driver_alive(pid):
        time.sleep(0.25)
    os._exit(1)
