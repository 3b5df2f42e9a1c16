"""Ctrl-C and SIGTERM for the `cosim` command: raised as exceptions, and never lost.

Python runs a signal handler at the next bytecode of the main thread, and that can be inside a
`__del__` or a weakref callback, where the raised exception is printed as "Exception ignored"
and dropped: the command then ran on to the end and exited 0 as if never stopped. So the
handlers also record the signal, long loops call `raise_if_requested()`, and the CLI turns a
recorded signal into the interrupted exit (130 / 143) even when the command returned normally."""

from __future__ import annotations

import signal
import threading

__all__ = ["Terminated", "install", "requested", "raise_if_requested"]

_received: list[int] = []


class Terminated(KeyboardInterrupt):
    """SIGTERM raised like Ctrl-C, so `kill PID` runs the same clean shutdown (a sweep
    started with `&` from a script has SIGINT ignored by the shell, but not SIGTERM)."""


def _exception(signum: int) -> KeyboardInterrupt:
    return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _record_and_raise(signum, frame):
    _received.append(signum)
    raise _exception(signum)


def install() -> None:
    """In the main thread: SIGTERM and Ctrl-C raise (and are recorded). A signal the parent set
    to be ignored stays ignored (`nohup`, a shell's background job), as does any handler a
    caller installed."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _record_and_raise)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _record_and_raise)


def requested() -> int | None:
    """The first signal received since `install()`, or None."""
    return _received[0] if _received else None


def raise_if_requested() -> None:
    """Raise the interrupt again if its first raise was dropped (see the module docstring)."""
    if _received:
        raise _exception(_received[0])
