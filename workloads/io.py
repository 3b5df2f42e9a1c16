"""Reading user files safely, and errors that say where the problem is.

Every input error names the file, the field, the bad value and what was expected.
YAML is read with the safe loader only: a file carrying Python object tags is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["InputError", "require", "fail", "field_error", "check_name", "load_yaml_file", "MAX_INPUT_FILE_BYTES", "doc_kind",
           "bundled_root", "bundled_dir", "bundled_names", "looks_like_path", "resolve_bundled", "copy_tree",
           "shadow_note", "ShadowedNameWarning", "warn_shadowed", "untold_shadow_note"]

# Configs are small; anything this large is a mistake (or an attack), not a config.
MAX_INPUT_FILE_BYTES = 1024 * 1024  # = workloads.yamlsafe.MAX_YAML_BYTES


from workloads.yamlsafe import InputError, short_repr  # noqa: E402 (defined there: no import cycle)


def field_error(source: str, field: str, problem: str, error: type = InputError) -> Exception:
    """``error("source: field: problem")`` (``"source: problem"`` without a field) carrying `source`,
    `field` and `problem` as attributes, so a caller can re-attribute the field (hwmodels.accelerators:
    to the override that set it) without parsing the message."""
    e = error(f"{source}: {field}: {problem}" if field else f"{source}: {problem}")
    e.source, e.field, e.problem = source, field, problem
    return e


def fail(source: str, field: str, value: Any, expected: str, error: type = InputError) -> None:
    shown = "missing" if value is None else short_repr(value)
    raise field_error(source, field, f"got {shown}; expected {expected}", error)


def doc_kind(doc: Any) -> str:
    """What a loaded YAML document is, for "got ..." in an error: an empty file loads as None."""
    return "an empty file" if doc is None else type(doc).__name__


def check_name(text: str, what: str) -> None:
    """A name or path longer than any file system allows (255 bytes a component) is
    refused here, before `Path.exists` turns it into an OSError traceback."""
    parts = str(text).replace("\\", "/").split("/")
    longest = max((len(p.encode()) for p in parts), default=0)
    if longest > 255 or len(str(text)) > 4096:
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


# ---------------------------------------------------------------------------- bundled files

def bundled_root() -> Path:
    """The bundled YAML/data folder: package data of the `cosim` distribution, in
    cosim/configs/ (not a top-level `configs` package, which would clash with other
    packages that ship one). Found through the import system's spec of `cosim` WITHOUT
    importing it: workloads sits below cosim and never runs its code."""
    import importlib.util
    spec = importlib.util.find_spec("cosim")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("bundled files: the cosim package (which ships them under cosim/configs/) is not "
                         "installed; expected `pip install cosim` or running from a checkout")
    return Path(next(iter(spec.submodule_search_locations))) / "configs"


def bundled_dir(kind: str) -> Path:
    """The folder of bundled files of one kind ("hw", "models", "recipes", "sweeps",
    "experiments", "systems", "traces", "text")."""
    return bundled_root() / kind


def bundled_names(kind: str) -> list[str]:
    d = bundled_dir(kind)
    try:  # listed once per folder state: a sweep resolves one name per value it checks
        key = (str(d), d.stat().st_mtime_ns)
    except OSError:
        key = None
    if key is None or key not in _NAMES:
        names = sorted(p.name[:-5] for p in d.iterdir() if p.name.endswith(".yaml") and p.is_file())
        if key is None:
            return names
        _NAMES[key] = names
    return list(_NAMES[key])


_NAMES: dict = {}  # (folder, its mtime) -> bundled names: adding or removing a file changes the mtime


_ATOMS = (str, int, float, bool, type(None), bytes)


def copy_tree(doc):
    """A deep copy of parsed YAML/JSON data (dicts, lists, scalars), several times faster
    than `copy.deepcopy`, which a sweep paid per checked value; anything else is copied
    by `copy.deepcopy`."""
    t = type(doc)
    if t is dict:
        return {k: v if type(v) in _ATOMS else copy_tree(v) for k, v in doc.items()}
    if t is list:
        return [v if type(v) in _ATOMS else copy_tree(v) for v in doc]
    if t in _ATOMS:
        return doc
    import copy
    return copy.deepcopy(doc)


def looks_like_path(text: str) -> bool:
    import os
    return "/" in text or os.sep in text or text.endswith((".yaml", ".yml", ".json"))


def resolve_bundled(kind: str, name_or_path, what: str, error: type = InputError, warn: bool = True) -> Path:
    """One rule for every loader: a bare name ("h100_sxm") is the bundled file
    cosim/configs/<kind>/<name>.yaml; a path is the user's own file. A path written as in
    the docs ("cosim/configs/sweeps/x.yaml", or the shorter "configs/sweeps/x.yaml") that
    does not exist from the current directory is the bundled file of that name, so example
    commands work from any directory. An unknown bare name raises `error` naming the close
    matches and the bundled names. `warn=False` for a name the caller did not give (one a bundled file
    names inside itself): only the caller's own bare name is told of a shadowing local file."""
    import difflib

    text = str(name_or_path).strip()
    check_name(text, what)
    if looks_like_path(text) or isinstance(name_or_path, Path):
        p = Path(text).expanduser()
        parts = p.parts[1:] if p.parts[:1] == ("cosim",) else p.parts
        if not p.exists() and len(parts) == 3 and parts[0] == "configs" and parts[1] == kind:
            bundled = bundled_dir(kind) / parts[2]
            if bundled.is_file():
                return bundled
        return p
    names = bundled_names(kind)
    if text not in names:
        close = difflib.get_close_matches(text, names, n=4, cutoff=0.4)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise error(f"unknown {what} {short_repr(text)}: not a bundled {what} name (see `cosim list {kind}`){hint}; "
                    f"bundled: {', '.join(names)}; or give a path to your own .yaml file")
    bundled = bundled_dir(kind) / f"{text}.yaml"
    if warn:
        warn_shadowed(text, bundled, what, folders=kind == "models")
    return bundled


import errno as _errno  # noqa: E402

_NOTHING_THERE = (_errno.ENOENT, _errno.ENOTDIR, _errno.EBADF, _errno.ELOOP)  # as pathlib: "no such file", not a fault


def shadow_note(text: str, bundled: Path | str | None, what: str, folders: bool = False) -> str | None:
    """The note the one rule above owes the user: a bare name that is a bundled file
    (`bundled`, None if not) wins over a same-named local file, which is then not read. A
    same-named folder counts only with `folders` (models: a checkpoint folder's config.json is
    what ``./name`` reads) and only when it holds a config.json; for any other kind ``./name``
    of a folder is an error, so the note would send the user to one. None when nothing is shadowed."""
    text = str(text).strip()
    if bundled is None or not text or looks_like_path(text):
        return None
    # one stat of the one candidate (a cached load by a bare name pays this every call; Path.is_file then
    # Path.is_dir cost four times as much), with Path.is_file's errors: a missing one is no note, others raise
    import os
    import stat
    try:
        mode = os.stat(text).st_mode
    except ValueError:  # a name the file system cannot hold (an embedded NUL): nothing there
        return None
    except OSError as e:
        if e.errno not in _NOTHING_THERE:
            raise
        return None
    if stat.S_ISREG(mode):
        kind = "file"
    elif folders and stat.S_ISDIR(mode) and (Path(text) / "config.json").is_file():
        kind = "folder"
    else:
        return None
    bundled = Path(bundled)
    return (f"{what} {text!r} is the bundled {bundled.parent.name}/{bundled.name}; the {kind} ./{text} in the "
            f"working directory is not read (write ./{text} to use it)")


# ---------------------------------------------------------------------------- telling the user, once

class ShadowedNameWarning(UserWarning):
    """A bare bundled name was read as the bundled file while a same-named local file (or, for a model,
    checkpoint folder) sits in the working directory; the message is shadow_note's text. Issued by the
    loaders (load_model, load_recipe, load_hw, load_system, load_experiment, load_sweep, load_trace and
    what calls them, such as build_trace) once per name and local path in a process; the CLI prints it as
    its `note:` line instead."""


_TOLD: set = set()  # (bundled file, local path) pairs whose note was given: warned, or printed by the CLI


def _told_key(text: str, bundled: Path) -> tuple[str, str]:
    return str(Path(bundled).resolve()), str(Path(str(text).strip()).resolve())


def untold_shadow_note(text: str, bundled: Path | None, what: str, folders: bool = False) -> str | None:
    """shadow_note's text when it has not been given yet in this process (then it counts as given: the
    caller prints it); None when nothing is shadowed or the user was already told."""
    note = shadow_note(text, bundled, what, folders)
    if note is None or _told_key(text, bundled) in _TOLD:
        return None
    _TOLD.add(_told_key(text, bundled))
    return note


def _caller_stacklevel() -> int:
    """warnings.warn's stacklevel of the first frame outside this project's packages (the user's call)."""
    import sys
    root = Path(__file__).resolve().parents[1]
    own = tuple(str(root / pkg) for pkg in ("workloads", "hwmodels", "cosim"))
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(own):
        frame, level = frame.f_back, level + 1
    return level


def warn_shadowed(text: str, bundled: Path | None, what: str, folders: bool = False) -> str | None:
    """The Python API's side of the note: a ShadowedNameWarning carrying shadow_note's text, once per
    name and local path (untold_shadow_note); returns the note (None when nothing is shadowed)."""
    import warnings
    note = shadow_note(text, bundled, what, folders)
    if note is not None and _told_key(text, bundled) not in _TOLD:  # untold_shadow_note without a second look
        _TOLD.add(_told_key(text, bundled))
        warnings.warn(note, ShadowedNameWarning, stacklevel=_caller_stacklevel())
    return note
