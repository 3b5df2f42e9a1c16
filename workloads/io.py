"""Reading user files safely, and errors that say where the problem is.

Every input error names the file, the field, the bad value and what was expected.
YAML is read with the safe loader only: a file carrying Python object tags is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["InputError", "require", "fail", "load_yaml_file", "MAX_INPUT_FILE_BYTES", "bundled_dir",
           "bundled_names", "looks_like_path", "resolve_bundled"]

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


# ---------------------------------------------------------------------------- bundled files

def bundled_dir(kind: str):
    """The folder of bundled files of one kind ("hw", "models", "recipes", "sweeps",
    "experiments") inside the installed package data."""
    from importlib import resources
    return resources.files("configs") / kind


def bundled_names(kind: str) -> list[str]:
    return sorted(p.name[:-5] for p in bundled_dir(kind).iterdir() if p.name.endswith(".yaml") and p.is_file())


def looks_like_path(text: str) -> bool:
    import os
    return "/" in text or os.sep in text or text.endswith((".yaml", ".yml", ".json"))


def resolve_bundled(kind: str, name_or_path, what: str, error: type = InputError) -> Path:
    """One rule for every loader: a bare name ("h100_sxm") is the bundled file
    configs/<kind>/<name>.yaml; a path is the user's own file. A path written as in the
    docs ("configs/sweeps/x.yaml") that does not exist from the current directory is the
    bundled file of that name, so example commands work from any directory. An unknown
    bare name raises `error` naming the close matches and the bundled names."""
    import difflib
    from importlib import resources

    text = str(name_or_path).strip()
    if looks_like_path(text) or isinstance(name_or_path, Path):
        p = Path(text).expanduser()
        parts = p.parts
        if not p.exists() and len(parts) == 3 and parts[0] == "configs" and parts[1] == kind:
            bundled = bundled_dir(kind) / parts[2]
            if bundled.is_file():
                with resources.as_file(bundled) as q:
                    return Path(q)
        return p
    names = bundled_names(kind)
    if text not in names:
        close = difflib.get_close_matches(text, names, n=4, cutoff=0.4)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise error(f"unknown {what} {text!r}: not a bundled {what} name (see `cosim list {kind}`){hint}; "
                    f"bundled: {', '.join(names)}; or give a path to your own .yaml file")
    with resources.as_file(bundled_dir(kind) / f"{text}.yaml") as q:
        return Path(q)
