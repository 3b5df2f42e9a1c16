"""Reading user files safely, and errors that say where the problem is.

Every input error names the file, the field, the bad value and what was expected.
YAML is read with the safe loader only: a file carrying Python object tags is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["InputError", "require", "fail", "check_name", "load_yaml_file", "MAX_INPUT_FILE_BYTES"]

# Configs are small; anything this large is a mistake (or an attack), not a config.
MAX_INPUT_FILE_BYTES = 1024 * 1024  # = workloads.yamlsafe.MAX_YAML_BYTES


class InputError(ValueError):
    """Bad user input: message names file, field, value and expectation."""


def fail(source: str, field: str, value: Any, expected: str, error: type = InputError) -> None:
    from workloads.yamlsafe import short_repr  # bounded: never stringify a huge value whole
    where = f"{source}: {field}" if field else source
    shown = "missing" if value is None else short_repr(value)
    raise error(f"{where}: got {shown}; expected {expected}")


def check_name(text: str, what: str) -> None:
    """A name or path longer than any file system allows (255 bytes a component) is
    refused here, before `Path.exists` turns it into an OSError traceback."""
    parts = str(text).replace("\\", "/").split("/")
    longest = max((len(p.encode()) for p in parts), default=0)
    if longest > 255 or len(str(text)) > 4096:
        from workloads.yamlsafe import short_repr
        raise InputError(f"{what}: got {short_repr(str(text), 60)} ({len(str(text))} characters); expected a "
                         f"bundled {what} name or a path (at most 255 bytes per path component)")


def require(ok: bool, source: str, field: str, value: Any, expected: str, error: type = InputError) -> None:
    if not ok:
        fail(source, field, value, expected, error)


def load_yaml_file(path: str | Path, what: str = "config") -> Any:
    """A YAML input file as plain data, read under workloads.yamlsafe's budgets (regular
    UTF-8 file, size, alias expansion, depth, duplicate keys refused at every depth)."""
    from workloads.yamlsafe import load_yaml_path
    return load_yaml_path(path, what)
