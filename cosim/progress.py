"""Progress lines for slow steps: a step that is still running after `after_s` seconds
(2 by default) prints what it is doing to stderr, and its duration when it ends, so a
first run that compiles numba kernels or writes a million-row table is never silent.
Fast steps print nothing. `COSIM_QUIET=1` (or `quiet()`) silences it."""

from __future__ import annotations

import os
import sys
import threading
import time
from contextlib import contextmanager

__all__ = ["step", "quiet", "AFTER_S"]

AFTER_S = 2.0
_state = {"quiet": os.environ.get("COSIM_QUIET", "") not in ("", "0")}


@contextmanager
def quiet(on: bool = True):
    old, _state["quiet"] = _state["quiet"], on
    try:
        yield
    finally:
        _state["quiet"] = old


@contextmanager
def step(what: str, after_s: float = AFTER_S, stream=None):
    """Time a step; announce it once it has run `after_s` seconds, report its end."""
    if _state["quiet"]:
        yield
        return
    stream = stream or sys.stderr
    t0 = time.perf_counter()
    shown = threading.Event()

    def announce():
        shown.set()
        print(f"cosim: {what} ...", file=stream, flush=True)

    timer = threading.Timer(after_s, announce)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        dt = time.perf_counter() - t0
        if shown.is_set() or dt >= after_s:
            print(f"cosim: {what}: done in {dt:.1f} s", file=stream, flush=True)
