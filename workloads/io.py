"""Reading user files safely, and errors that say where the problem is.

Every input error names the file, the field, the bad value and what was expected.
YAML is read with the safe loader only: a file carrying Python object tags is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["InputError", "require", "fail", "load_yaml_file", "MAX_INPUT_FILE_BYTES"]

# Configs are small; anything this large is a mistake (or an attack), not a config.
MAX_INPUT_FILE_BYTES = 16 * 1024 * 1024


class InputError(ValueError):
    """Bad user input: message names file, field, value and expectation."""


def fail(source: str, field: str, value: Any, expected: str, error: type = InputError) -> None:
    where = f"{source}: {field}" if field else source
    shown = "missing" if value is None else repr(value)
    if len(shown) > 120:
        shown = shown[:117] + "..."
    raise error(f"{where}: got {shown}; expected {expected}")


def require(ok: bool, source: str, field: str, value: Any, expected: str, error: type = InputError) -> None:
    if not ok:
        fail(source, field, value, expected, error)


def load_yaml_file(path: str | Path, what: str = "config") -> Any:
    import yaml

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such {what} file")
    size = path.stat().st_size
    if size > MAX_INPUT_FILE_BYTES:
        raise InputError(f"{path}: {what} file is {size} bytes; refusing files over "
                         f"{MAX_INPUT_FILE_BYTES} bytes")
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text file; expected a UTF-8 YAML {what} file") from None
    try:
        return yaml.safe_load(text)
    except yaml.constructor.ConstructorError as e:
        raise InputError(f"{path}: refused a YAML tag the safe loader does not allow "
                         f"({e.problem}); {what} files hold plain data only") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        loc = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise InputError(f"{path}: malformed YAML{loc}: {getattr(e, 'problem', e)}") from None
