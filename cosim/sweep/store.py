"""The results store: one JSON record per line, appended as results arrive.

Why append-only JSONL rather than sqlite: there is exactly one writer (the process that
drives the sweep; workers only return results), so no locking is needed; a record is
one `write` of one line followed by `fsync`, so after a SIGKILL at any instant the file
is every record that was complete plus at most one torn last line — which the reader
drops and the writer truncates away before appending again. Nothing committed is lost,
nothing torn is ever read, and a re-run skips every key already present, so nothing is
run (or stored) twice. The file stays greppable, diffable and trivially mergeable
(`cat a.jsonl b.jsonl`), and needs no library on a cluster's login node.

Each record: {"key", "version", "config" (fully resolved), "point" (the swept fields),
"metrics" {...}, "status" ("ok" | "error"), "error"}.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

__all__ = ["ResultStore", "config_key", "read_records"]


def _canon(o):
    if isinstance(o, float):
        if math.isnan(o):
            return "nan"
        if math.isinf(o):
            return "inf" if o > 0 else "-inf"
        if o.is_integer() and abs(o) < 2 ** 53:
            return int(o)  # 4e12 and 4000000000000 are one configuration
    if isinstance(o, dict):
        return {str(k): _canon(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_canon(v) for v in o]
    if hasattr(o, "item"):
        return _canon(o.item())
    return o


def config_key(config: dict, version: str) -> str:
    """Stable hash of a fully-resolved configuration and the cosim version."""
    text = json.dumps({"config": _canon(config), "version": version}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def read_records(path: str | Path) -> list[dict]:
    """Every complete record; a torn last line (no newline yet, or unparsable) is dropped."""
    path = Path(path)
    if not path.exists():
        return []
    lines = path.read_bytes().split(b"\n")[:-1]  # the piece after the last newline is torn (or empty)
    out = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except ValueError:
            if i == len(lines) - 1:
                continue
            raise ValueError(f"{path}: line {i + 1} is not a JSON record; the store is damaged "
                             f"(a kill only ever tears the last line)") from None
    return out


def _valid_prefix_len(data: bytes) -> int:
    """Length of the leading part of `data` made of complete, parsable lines."""
    end = data.rfind(b"\n") + 1
    if end and data[:end].rstrip(b"\n"):
        last = data[:end].rstrip(b"\n").rsplit(b"\n", 1)[-1]
        try:
            json.loads(last)
        except ValueError:
            end = data[:end].rstrip(b"\n").rfind(b"\n") + 1
    return end


def _np(o):
    if hasattr(o, "item"):
        return o.item()
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


class ResultStore:
    """Append-only JSONL store. `done` is the set of keys already stored."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair()
        self.records = {r["key"]: r for r in read_records(self.path)}
        self._f = None

    def _repair(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        keep = _valid_prefix_len(data)
        if keep != len(data):
            with open(self.path, "r+b") as f:
                f.truncate(keep)
                f.flush()
                os.fsync(f.fileno())

    @property
    def done(self) -> set:
        return set(self.records)

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def append(self, records: list[dict]) -> int:
        """Write records not already stored; one write + fsync for the batch."""
        new = []
        for r in records:
            if r["key"] not in self.records:
                self.records[r["key"]] = r
                new.append(r)
        if not new:
            return 0
        if self._f is None:
            self._f = open(self.path, "ab")
        self._f.write(b"".join(json.dumps(r, separators=(",", ":"), default=_np).encode() + b"\n" for r in new))
        self._f.flush()
        os.fsync(self._f.fileno())
        return len(new)

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
