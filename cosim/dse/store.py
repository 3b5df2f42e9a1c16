"""The results store: append-only JSONL, one line per finished task, written the moment
the task's results arrive.

Why JSONL rather than sqlite: there is exactly one writer (the process that drives the
sweep; workers only return results), so no locking is needed; one task's results are
one `write` of one line (fsync'd at most a second later and at close), so after a SIGKILL at any instant the file
is every line that was complete plus at most one torn last line — which the reader
drops and the writer truncates away before it appends again. Nothing committed is
lost, nothing torn is ever read, and a re-run skips every key already present, so
nothing is run or stored twice. A line per *task* (thousands of roofline points) keeps
the store near 40 bytes per point and writing it far faster than evaluating; the file
stays greppable, diffable, mergeable with `cat`, and needs no library on a login node.

A line (a "batch record"):
    {"version", "config": the resolved configuration shared by the batch, minus its
     numeric hardware overrides, "fields": [numeric override names], "values": [[one
     row of those values per point]], "keys": [...], "index": [...], "point": {swept
     fields that are constant in the batch}, "metrics": {name: value | [per point]},
     "status": "ok" | "error" | [...], "error": text | null | [...]}
A per-point float column is stored as {"f8": base64 of its little-endian float64 bytes}:
exact (no decimal round trip to trust) and ~6x faster to write than decimal text.
The full configuration of point i is `config` with hw.overrides += zip(fields, values[i]).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import time
from pathlib import Path

import numpy as np

__all__ = ["ResultStore", "config_key", "key_prefix", "row_keys", "read_records", "expand", "split_numeric",
           "encode", "decode"]


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


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def split_numeric(config: dict) -> tuple[dict, dict]:
    """(config without numeric hardware overrides, {override: float})."""
    ov = config["hw"]["overrides"]
    num = {k: float(v) for k, v in ov.items() if _is_number(v)}
    rest = {**config, "hw": {**config["hw"], "overrides": {k: v for k, v in ov.items() if k not in num}}}
    return rest, num


def key_prefix(rest: dict, fields, version: str):
    """Hash state of everything but the numeric override values (shared by a batch)."""
    head = json.dumps({"config": _canon(rest), "fields": list(fields), "version": version},
                      sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(head.encode())


_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_GOLD = np.uint64(0x9E3779B97F4A7C15)


def _mix(h: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: a bijection of uint64 that spreads every input bit."""
    h = (h ^ (h >> np.uint64(30))) * _M1
    h = (h ^ (h >> np.uint64(27))) * _M2
    return h ^ (h >> np.uint64(31))


def row_keys(prefix, values: np.ndarray) -> list[str]:
    """One key per row of `values` (n, len(fields)) float64: the prefix hash (SHA-256 of
    the shared configuration) extended by the row's exact bytes, so a key is a stable
    hash of the full configuration. The per-row part is vectorised: two independent
    64-bit lanes seeded from the prefix digest absorb each value's bits through
    SplitMix64 mixing (96 bits kept: no collision expected below ~1e12 points)."""
    values = np.ascontiguousarray(values, dtype="<f8").reshape(len(values), -1)
    seed = np.frombuffer(prefix.digest()[:16], dtype="<u8")
    bits = values.view("<u8")
    with np.errstate(over="ignore"):
        lanes = []
        for lane in range(2):
            h = np.full(len(values), seed[lane], dtype=np.uint64)
            for j in range(bits.shape[1]):
                h = _mix(h ^ _mix(bits[:, j] + _GOLD * np.uint64(2 * j + lane + 1)))
            lanes.append(_mix(h))
    text = np.column_stack(lanes).astype(">u8").tobytes().hex()
    return [text[i:i + 24] for i in range(0, 32 * len(values), 32)]


def config_key(config: dict, version: str) -> str:
    """Stable hash of one fully-resolved configuration and the cosim version (the same
    key a sweep batch gives that configuration)."""
    rest, num = split_numeric(config)
    fields = sorted(num)
    return row_keys(key_prefix(rest, fields, version), np.array([[num[f] for f in fields]], dtype=float))[0]


def read_records(path: str | Path) -> list[dict]:
    """Every complete line; a torn last line (no newline yet, or unparsable) is dropped."""
    path = Path(path)
    if not path.exists():
        return []
    lines = path.read_bytes().split(b"\n")[:-1]  # the piece after the last newline is torn (or empty)
    out = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            out.append(decode(json.loads(line)))
        except ValueError:
            if i == len(lines) - 1:
                continue
            raise ValueError(f"{path}: line {i + 1} is not a JSON record; the store is damaged "
                             f"(a kill only ever tears the last line)") from None
    return out


def _at(v, i):
    if isinstance(v, (list, np.ndarray)):
        x = v[i]
        return x.item() if hasattr(x, "item") else x
    return v


def _enc(v):
    if isinstance(v, np.ndarray):
        if v.dtype.kind == "f":
            return {"f8": base64.b64encode(np.ascontiguousarray(v, dtype="<f8").tobytes()).decode(),
                    "shape": list(v.shape)}
        return v.tolist()
    return v


def _dec(v):
    if isinstance(v, dict) and "f8" in v:
        return np.frombuffer(base64.b64decode(v["f8"]), dtype="<f8").reshape(v["shape"])
    return v


def encode(record: dict) -> dict:
    """In-memory batch record (numpy columns) -> JSON-able dict. Keys of the usual 24
    characters are stored as one string ({"k24": concatenation}), indices as base64
    int64 ({"i8": ...}): one JSON value each instead of thousands."""
    keys = record["keys"]
    doc = {**record, "values": _enc(np.asarray(record["values"], dtype=float)),
           "metrics": {m: _enc(v) for m, v in record["metrics"].items()}}
    joined = "".join(keys)
    if len(joined) == 24 * len(keys):
        doc["keys"] = {"k24": joined}
    doc["index"] = {"i8": base64.b64encode(np.ascontiguousarray(record["index"], dtype="<i8").tobytes()).decode()}
    return doc


def decode(doc: dict) -> dict:
    if isinstance(doc.get("keys"), dict):
        joined = doc["keys"]["k24"]
        doc = {**doc, "keys": [joined[i:i + 24] for i in range(0, len(joined), 24)]}
    if isinstance(doc.get("index"), dict):
        doc = {**doc, "index": np.frombuffer(base64.b64decode(doc["index"]["i8"]), dtype="<i8").tolist()}
    values = _dec(doc["values"])
    if not isinstance(values, np.ndarray):
        values = np.asarray(values, dtype=float).reshape(len(doc["keys"]), len(doc["fields"]))
    return {**doc, "values": values, "metrics": {m: _dec(v) for m, v in doc["metrics"].items()}}


def expand(record: dict) -> list[dict]:
    """A batch record as one dict per point: key, index, config, point, metrics, status, error."""
    out = []
    for i, key in enumerate(record["keys"]):
        cfg = json.loads(json.dumps(record["config"]))
        cfg["hw"]["overrides"].update(zip(record["fields"], map(float, record["values"][i])))
        out.append({"key": key, "index": record["index"][i], "config": cfg, "point": record.get("point", {}),
                    "metrics": {m: _at(v, i) for m, v in record["metrics"].items()},
                    "status": _at(record["status"], i), "error": _at(record.get("error"), i),
                    "level_used": _at(record.get("level_used"), i), "provenance": _at(record.get("provenance"), i)})
    return out


def _subset(record: dict, keep: list[int]) -> dict:
    def pick(v):
        if isinstance(v, np.ndarray):
            return v[keep]
        return [v[i] for i in keep] if isinstance(v, list) else v
    return {**record, "keys": pick(record["keys"]), "index": pick(record["index"]),
            "values": pick(record["values"]), "metrics": {m: pick(v) for m, v in record["metrics"].items()},
            "status": pick(record["status"]), "error": pick(record.get("error")),
            "level_used": pick(record.get("level_used")), "provenance": pick(record.get("provenance"))}


def _valid_prefix_len(data: bytes) -> int:
    """Length of the leading part of `data` made of complete, parsable lines."""
    end = data.rfind(b"\n") + 1
    body = data[:end].rstrip(b"\n")
    if body:
        try:
            decode(json.loads(body.rsplit(b"\n", 1)[-1]))
        except ValueError:
            end = body.rfind(b"\n") + 1
    return end


class ResultStore:
    """Append-only JSONL store of batch records; `done` holds every stored key."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair()
        self.records = read_records(self.path)
        self.done = {k for r in self.records for k in r["keys"]}
        self._f = None
        self._synced = float("-inf")  # the first append syncs

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

    def __contains__(self, key: str) -> bool:
        return key in self.done

    def lookup(self, key: str) -> tuple[dict, str]:
        """(metrics, status) of one stored point."""
        for r in reversed(self.records):
            if key in r["keys"]:
                i = list(r["keys"]).index(key)
                return {m: _at(v, i) for m, v in r["metrics"].items()}, _at(r["status"], i)
        raise KeyError(key)

    # fsync at most this often (and at close): a write() already survives a killed
    # process (it is in the OS page cache); fsync guards against an OS crash or power
    # loss, and at ~10 ms each it cost more than evaluating a task of roofline points
    FSYNC_INTERVAL_S = 1.0

    def append(self, record: dict) -> int:
        """Store the record's points that are not stored yet: one write (flushed to the
        OS at once), fsync'd within FSYNC_INTERVAL_S and at close."""
        if self.done.isdisjoint(record["keys"]):
            keep = record["keys"]
        else:
            keep = [i for i, k in enumerate(record["keys"]) if k not in self.done]
            if not keep:
                return 0
            if len(keep) != len(record["keys"]):
                record = _subset(record, keep)
        line = json.dumps(encode(record), separators=(",", ":"), default=_np).encode() + b"\n"
        if self._f is None:
            self._f = open(self.path, "ab")
        self._f.write(line)
        self._f.flush()
        now = time.monotonic()
        if now - self._synced >= self.FSYNC_INTERVAL_S:
            os.fsync(self._f.fileno())
            self._synced = now
        self.records.append(record)
        self.done.update(record["keys"])
        return len(keep)

    def close(self) -> None:
        if self._f is not None:
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()
            self._f = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _np(o):
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")
