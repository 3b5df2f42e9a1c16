"""Standard JSON out of cosim: every file cosim writes is RFC 8259 JSON, which has no NaN or
Infinity. A non-finite number (a skipped or undefined figure) is written as null, and the
readers of those files (`nan_if_null`) read null back as NaN where they need a number."""

from __future__ import annotations

import json
import math

__all__ = ["finite", "dumps", "dump", "nan_if_null", "finished_rows"]


def finite(obj):
    """obj with every non-finite float (NaN, +-inf, numpy scalars and arrays included) replaced by None,
    recursively through dicts, lists and tuples (tuples become lists, as json writes them)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, (str, bytes, int, type(None))):
        return obj
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    if hasattr(obj, "tolist") and hasattr(obj, "dtype"):  # numpy scalar or array
        return finite(obj.tolist())
    return obj


def _finite_default(default):
    if default is None:
        return None
    return lambda o: finite(default(o))


def dumps(obj, *, default=None, **kw) -> str:
    """json.dumps of finite(obj); allow_nan=False, so a non-finite number that slipped through (from `default`)
    is a ValueError, never a bare NaN in the file."""
    return json.dumps(finite(obj), allow_nan=False, default=_finite_default(default), **kw)


def dump(obj, f, *, default=None, **kw) -> None:
    f.write(dumps(obj, default=default, **kw))


def nan_if_null(v):
    """A number read back from cosim's JSON: null (a non-finite figure when written) as NaN."""
    return float("nan") if v is None else v


def finished_rows(path, **match) -> list[dict]:
    """The rows of a JSON-lines log a long run appends to as it goes (one finished row per line), those whose fields
    equal `match`; a missing file is no rows, and a line cut by an interrupted run is skipped (its row is redone)."""
    from pathlib import Path
    p = Path(path)
    if not p.exists():
        return []
    rows = []
    for line in p.read_text().splitlines():
        try:
            d = json.loads(line)
        except json.JSONDecodeError:
            continue
        if all(d.get(k) == v for k, v in match.items()):
            rows.append(d)
    return rows
