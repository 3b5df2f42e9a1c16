"""The `cosim` command. Each module in this package adds one subcommand through
`register(subparsers)`; this file only discovers them and runs the chosen one."""

from __future__ import annotations

import argparse
import pkgutil
import signal
import sys
from importlib import import_module

from cosim import interrupts

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cosim", description="Co-simulate compressed LLMs on GPUs, FPGAs and MX accelerators.")
    from cosim import __version__
    parser.add_argument("--version", action="version", version=f"cosim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = import_module(f"{__name__}.{info.name}")
        if hasattr(module, "register"):
            module.register(sub)
    from cosim.cli._help import finish
    finish(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command. Every failure at the edge is one `error:` line and exit 2 (bad
    input, or an OS error such as a full disk or an unwritable path); Ctrl-C is one line
    and exit 130 (what shells report for SIGINT), after the pools have been shut down; as
    a command, SIGTERM takes the same path (exit 143)."""
    try:
        parser = build_parser()  # imports every subcommand: a loaded machine can take seconds here
        args = parser.parse_args(argv)
    except KeyboardInterrupt:  # Ctrl-C before the command started: the same one line, not a traceback / -2
        if argv is not None:
            raise
        words = [w for w in sys.argv[1:] if not w.startswith("-")]
        print(f"error: interrupted (Ctrl-C); {_interrupted_note(argparse.Namespace(command=words[0] if words else None))}",
              file=sys.stderr)
        return 130
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if argv is None:  # run as the `cosim` command (tests pass argv and keep their process)
        interrupts.install()
    code = _run(args)
    if argv is None and code not in (130, 143) and interrupts.requested() is not None:
        code = _interrupted(args, interrupts.Terminated() if interrupts.requested() == signal.SIGTERM
                            else KeyboardInterrupt())  # raised where Python dropped it (a __del__)
    if argv is None and code in (130, 143):
        _ignore_further_interrupts()  # the run is over and said so: a second Ctrl-C must not kill the exit path
    if argv is None and code != 0:
        _exit_guard(code)  # an interrupted or failed run ends even if interpreter exit blocks
    if argv is None:
        # interpreter exit runs full garbage collections over every object the run created
        # (numba's registries, matplotlib's artists): ~0.4 s of a 5 s quickstart; frozen
        # objects are skipped and the OS frees the memory (benchmarks/results/startup_speed_s7c_ab)
        import gc
        gc.freeze()
    return code


def _run(args) -> int:
    from workloads.io import InputError

    from cosim.cli._paths import check_numeric_flags

    try:
        check_numeric_flags(args)
        from cosim.shadow import shadow_notes, warnings_as_notes
        for note in shadow_notes(args):
            print(f"note: {note}", file=sys.stderr)
        with warnings_as_notes():  # a loader's ShadowedNameWarning: the same note line, once
            return int(args.func(args) or 0)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt as e:
        return _interrupted(args, e)
    except MemoryError:
        print("error: out of memory; use a smaller input, sweep or --batch-size", file=sys.stderr)
        return 2
    except OSError as e:
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        print(f"error: {where}{e.strerror or e}", file=sys.stderr)
        return 2


def _interrupted(args, e: KeyboardInterrupt) -> int:
    code, why = (143, "terminated (SIGTERM)") if isinstance(e, interrupts.Terminated) else (130, "interrupted (Ctrl-C)")
    print(f"error: {why}; {_interrupted_note(args)}", file=sys.stderr)
    return code


def _interrupted_note(args) -> str:
    """What an interrupted command leaves: only a sweep stores finished points and resumes from them."""
    cmd = getattr(args, "command", None) or "the command"
    if cmd == "sweep":
        if getattr(args, "dry_run", False) or getattr(args, "repair", False):  # repair renames a new file over
            return "the store is unchanged (--dry-run and --repair change nothing until they finish)"
        return "finished results are kept, a re-run resumes"
    return f"`cosim {cmd}` does not resume (only `cosim sweep` does): a re-run starts over"


def _ignore_further_interrupts() -> None:
    import signal
    import threading
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _exit_guard(code: int, seconds: float = 10.0) -> None:
    """After Ctrl-C (or an error) the process must end even if interpreter exit blocks: exit joins every
    non-daemon thread and a pool's manager thread once waited in recv() forever (three
    interrupted `cosim sweep` processes were found alive 90 minutes later). A daemon
    thread ends the process with `code` if a normal exit has not happened within
    `seconds`; the store is already consistent (each line is written whole, with SIGINT
    held off) and pool and Dask workers end themselves when the driver is gone."""
    import os
    import threading
    import time

    def force() -> None:
        time.sleep(seconds)
        try:
            sys.stderr.flush()
        finally:
            os._exit(code)

    threading.Thread(target=force, daemon=True, name="cosim-exit-guard").start()


if __name__ == "__main__":
    sys.exit(main())
