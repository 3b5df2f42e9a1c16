"""The `cosim` command. Each module in this package adds one subcommand through
`register(subparsers)`; this file only discovers them and runs the chosen one."""

from __future__ import annotations

import argparse
import pkgutil
import sys
from importlib import import_module

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
    from workloads.io import InputError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
