"""One call run in a second Python process while this one goes on (`cosim run` with both
accuracy checks: the real-checkpoint forward passes there, the functional core here).

Why a process and not a thread: both halves are mostly numba kernels, which hold the GIL,
and a numba parallel launch from two threads at once aborts under numba's fallback
threading layer. The child is forked where that is safe (`_start_method`: no fresh
interpreter, no second round of imports) and spawned otherwise: a fork of a process
whose numba or OpenMP threads already ran is not safe. The child ignores Ctrl-C and
ends itself if this process dies (the sweep workers' initializer), so an interrupt is
handled here once, as before; its BLAS runs on one thread (see `_child_init`).

Nothing changes in the numbers: the child runs the same function on the same inputs,
with the same environment (numba cache, thread counts). Where a second process cannot be
started, `result()` runs the call here (and says so on stderr).
"""

from __future__ import annotations

import os
import sys

__all__ = ["SecondProcess", "wait_for_parent"]


_GATE = None  # in the child: the parent's "go on" event (see `wait_for_parent`)


def wait_for_parent(timeout_s: float = 600.0) -> None:
    """In a child started by SecondProcess: wait until the parent calls `go_on()` (at most
    `timeout_s`); elsewhere return at once. The quickstart's child loads the checkpoint
    and runs the unquantized pass, then waits here while the parent's functional core
    compiles the numba kernels both need: a cold start compiles them once, not twice."""
    if _GATE is not None:
        _GATE.wait(timeout_s)


class SecondProcess:
    def __init__(self, fn, *args, **kwargs):
        self._call = (fn, args, kwargs)
        self._pool = self._future = self._gate = None
        try:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            method = _start_method()
            if method == "fork":  # text buffered here would be written again by the child at its exit
                _numba_target_ready()
                sys.stdout.flush()
                sys.stderr.flush()
            ctx = mp.get_context(method)
            self._gate = ctx.Event()  # handed over when the child starts (initargs), as events must be
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=ctx, initializer=_child_init,
                                             initargs=(os.getpid(), self._gate))
            self._future = self._pool.submit(fn, *args, **kwargs)
        except (OSError, ImportError, RuntimeError, ValueError) as e:
            self._fallback_note(e)

    def go_on(self) -> None:
        """Release a child waiting in `wait_for_parent`."""
        if self._gate is not None:
            self._gate.set()

    def _fallback_note(self, e) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._future = None
        print(f"cosim: no second process ({type(e).__name__}: {e}); running it in this one", file=sys.stderr)

    def result(self):
        """The call's return value (its exception re-raised here), waiting for the child."""
        from concurrent.futures.process import BrokenProcessPool
        if self._future is not None:
            try:
                out = self._future.result()
                self._pool.shutdown(wait=False)
                return out
            except BrokenProcessPool as e:  # the child died (killed, out of memory): do it here
                self._fallback_note(e)
            except BaseException:
                self.cancel()
                raise
        fn, args, kwargs = self._call
        return fn(*args, **kwargs)

    def cancel(self) -> None:
        """End the child now (an error or Ctrl-C in this process)."""
        if self._pool is not None:
            from cosim.pool_children import stop_pool
            stop_pool(self._pool)
            self._pool = self._future = None


def _start_method() -> str:
    """"fork" while this process is still single-threaded and numba has not started its
    threading layer (the child then skips a fresh interpreter's imports, ~0.5 s);
    "spawn" otherwise, and off Linux (macOS system libraries are not fork-safe)."""
    import threading
    if os.environ.get("COSIM_SPAWN", "") not in ("", "0") or not sys.platform.startswith("linux"):
        return "spawn"
    if threading.active_count() > 1:
        return "spawn"
    par = sys.modules.get("numba.np.ufunc.parallel")
    if par is not None and getattr(par, "_is_initialized", True):
        return "spawn"
    return "fork"


def _numba_target_ready() -> None:
    """Set up numba's CPU compilation target (its typing and lowering registries) before a
    fork, so that both processes use this one set-up: each process otherwise builds it on
    its first kernel call, ~0.15 s of CPU (0.25 s on a loaded machine) — the quickstart's
    child calls the GGUF and quantize kernels too. It starts no thread (numba's threading
    layer starts with the first parallel launch, which `_start_method` checks for), and it
    is skipped where numba is not imported yet: nothing is imported for it."""
    if "numba" not in sys.modules:
        return
    try:
        from numba.core.registry import cpu_target
        cpu_target.typing_context.refresh()
        cpu_target.target_context.refresh()
    except Exception:  # an optional speed-up only (an internal API that may move)
        return


def _child_init(parent_pid: int, gate=None) -> None:
    """In the child: Ctrl-C is the parent's, the child ends with the parent, and BLAS runs
    on one thread — the parent keeps the other core busy, and two processes each with two
    spinning OpenBLAS threads on two cores made a 0.3 s forward pass take 2-3 s (same
    numbers: cosim.blas_threads)."""
    global _GATE
    from cosim.pool_children import worker_init
    worker_init(parent_pid)
    _GATE = gate
    from cosim.blas_threads import one_blas_thread
    one_blas_thread()  # for the child's whole life: its restoring context is dropped
