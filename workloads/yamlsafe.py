"""Loading YAML (and JSON) input files within a budget: safe tags only, no alias bombs,
no huge files, no duplicate keys, and error messages that never quote more than a short
prefix of a value.

Why each limit:
- size: every config we ship is under 20 KB; parsing cost grows with size, and a 15 MB
  file takes a minute in pure-Python YAML. `MAX_YAML_BYTES` (1 MiB) is 50x our largest.
- aliases: ``a: &x [..]; b: [*x, *x, ...]`` nested a few levels expands to billions of
  nodes from 1 KB of text ("billion laughs"). The document is *composed* first (node
  tree, aliases shared, nothing constructed); its expanded size is counted with a memo
  per node, so the count itself is linear in the file, and refused above
  `MAX_EXPANDED_NODES` before any Python object is built.
- duplicate keys: YAML keeps the last of two equal keys silently; in a config that
  hides a mistake, so every mapping at every depth is checked (a visited set makes
  shared alias targets walked once).
- depth: deeply nested input (JSON `[[[[...]]]]`) would blow Python's recursion limit.
"""

from __future__ import annotations

import difflib
import reprlib
from pathlib import Path
from typing import Any

__all__ = ["InputError", "short_repr", "hint", "load_yaml_text", "load_yaml_path", "load_json_path", "MAX_YAML_BYTES",
           "MAX_EXPANDED_NODES", "MAX_DEPTH"]

class InputError(ValueError):
    """Bad user input: message names file, field, value and expectation. (Defined here,
    re-exported by workloads.io, so that io can use this module without an import cycle.)"""


MAX_YAML_BYTES = 1024 * 1024
MAX_EXPANDED_NODES = 200_000
MAX_DEPTH = 64
MAX_SHOWN = 120

_repr = reprlib.Repr()
_repr.maxstring = MAX_SHOWN
_repr.maxother = MAX_SHOWN
_repr.maxlist = _repr.maxtuple = _repr.maxdict = _repr.maxset = 8
_repr.maxlevel = 3
_repr.maxlong = 40


def short_repr(value: Any, limit: int = MAX_SHOWN) -> str:
    """repr of `value` cut to `limit` characters, computed without ever stringifying
    the whole value (a 10 MB string or a deep structure costs the same as a short one)."""
    try:
        text = _repr.repr(value)
    except Exception:  # a hostile __repr__ must not turn an error message into a crash
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _error(source: str, what: str, message: str):
    return InputError(f"{source}: {message}" + (f" ({what} file)" if what else ""))


def _loader():
    import yaml
    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _compose(text: str, source: str, what: str):
    import yaml
    try:
        return yaml.compose(text, Loader=_loader())
    except yaml.composer.ComposerError as e:  # e.g. several documents in one file
        raise _error(source, what, f"malformed YAML: {e.problem}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        loc = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise _error(source, what, f"malformed YAML{loc}: {short_repr(getattr(e, 'problem', str(e)))}") from None


def _check_tree(root, source: str, what: str) -> None:
    """Expanded size (aliases counted as often as used), depth and duplicate keys, each
    node visited once."""
    import yaml
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    # iterative post-order: (node, children_done)
    stack = [(root, False)]
    on_path: set[int] = set()
    while stack:
        node, done = stack.pop()
        nid = id(node)
        if nid in size:
            continue
        kids = ([c for kv in node.value for c in kv] if isinstance(node, yaml.MappingNode) else
                list(node.value) if isinstance(node, yaml.SequenceNode) else [])
        if not done:
            if nid in on_path:  # recursive alias (&a [*a]): infinite expansion
                raise _error(source, what, f"line {node.start_mark.line + 1}: a recursive YAML alias; "
                                           f"expected plain data")
            on_path.add(nid)
            stack.append((node, True))
            stack.extend((k, False) for k in kids if id(k) not in size)
            if len(stack) > 10 * MAX_EXPANDED_NODES:
                raise _error(source, what, "too many YAML nodes")
            continue
        on_path.discard(nid)
        if isinstance(node, yaml.MappingNode):
            _refuse_duplicates(node, source, what)
        size[nid] = 1 + sum(size[id(k)] for k in kids)
        depth[nid] = 1 + max((depth[id(k)] for k in kids), default=0)
        if size[nid] > MAX_EXPANDED_NODES:
            raise _error(source, what, f"the YAML expands to over {MAX_EXPANDED_NODES:,} values (aliases "
                                       f"reused many times: an alias bomb?); expected a config file")
        if depth[nid] > MAX_DEPTH:
            raise _error(source, what, f"nesting deeper than {MAX_DEPTH} levels; expected a config file")


def _refuse_duplicates(node, source: str, what: str) -> None:
    import yaml
    seen: dict = {}
    for k, _ in node.value:
        if not isinstance(k, yaml.ScalarNode):
            continue
        if k.value in seen:
            raise _error(source, what, f"{short_repr(k.value)}: key repeated at line {k.start_mark.line + 1} "
                                       f"(first at line {seen[k.value] + 1}); expected each key once per "
                                       f"mapping (YAML would silently keep only the last)")
        seen[k.value] = k.start_mark.line


def load_yaml_text(text: str, source: str = "<yaml>", what: str = "") -> Any:
    """Parse YAML text under the budgets above; plain data (safe tags) only."""
    import yaml
    if len(text) > MAX_YAML_BYTES:
        raise _error(source, what, f"{len(text)} characters; refusing YAML over {MAX_YAML_BYTES} bytes "
                                   f"(configs are small; this is not one)")
    root = _compose(text, source, what)
    if root is None:
        return None
    _check_tree(root, source, what)
    loader = _loader()("")
    try:
        return loader.construct_document(root)
    except yaml.constructor.ConstructorError as e:
        raise _error(source, what, f"refused a YAML tag the safe loader does not allow "
                                   f"({short_repr(e.problem)}); files hold plain data only") from None
    except (yaml.YAMLError, ValueError, OverflowError, TypeError) as e:
        raise _error(source, what, f"malformed YAML value: {short_repr(str(e))}") from None
    finally:
        loader.dispose()


def _read_text(path: Path, what: str, limit: int) -> str:
    try:
        if not path.is_file():  # a FIFO, /dev/zero, a directory: never read "forever"
            kind = "directory" if path.is_dir() else "special file" if path.exists() else None
            raise InputError(f"{path}: " + (f"is a {kind}; expected a regular {what} file" if kind
                                            else f"no such {what} file"))
        size = path.stat().st_size
        if size > limit:
            raise InputError(f"{path}: {what} file is {size} bytes; refusing files over {limit} bytes")
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as e:
        raise InputError(f"{path}: cannot read the {what} file ({e.strerror or e})") from None
    if len(data) > limit:
        raise InputError(f"{path}: {what} file grew past {limit} bytes while read; refusing it")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text (byte {e.start}); expected a UTF-8 {what} file") from None


def load_yaml_path(path: str | Path, what: str = "config") -> Any:
    """Read a YAML file: a regular, UTF-8 file of at most MAX_YAML_BYTES, under the budgets."""
    path = Path(path)
    return load_yaml_text(_read_text(path, what, MAX_YAML_BYTES), str(path), "")


def load_json_path(path: str | Path, what: str = "config") -> Any:
    """Read a JSON file (HF config.json) with the same size, encoding and depth limits;
    duplicate keys are refused, as in YAML."""
    import json

    path = Path(path)
    text = _read_text(path, what, MAX_YAML_BYTES)

    def pairs(items):
        out = {}
        for k, v in items:
            if k in out:
                raise InputError(f"{path}: {short_repr(k)}: key repeated; expected each key once per object")
            out[k] = v
        return out
    depth = cur = 0
    for ch in text:  # bracket depth without parsing (json.loads recursion is the risk)
        if ch in "[{":
            cur += 1
            depth = max(depth, cur)
        elif ch in "]}":
            cur -= 1
    if depth > MAX_DEPTH:
        raise InputError(f"{path}: JSON nested {depth} levels deep; expected at most {MAX_DEPTH}")
    try:
        return json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}); expected a {what} file") from None
    except (RecursionError, ValueError) as e:
        raise InputError(f"{path}: not valid JSON ({short_repr(str(e))}); expected a {what} file") from None


def hint(word, choices) -> str:
    """" (did you mean 'x'?)" for the closest of `choices`, or "" (every error naming a bad choice ends with it)."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
