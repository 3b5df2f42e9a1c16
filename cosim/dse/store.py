"""The results store: append-only JSONL, one line per finished task, written the moment
the task's results arrive.

Why JSONL rather than sqlite: one task's results are one `write` of one line followed by
`fsync`, so after a SIGKILL at any instant the file is every line that was complete plus
at most one torn last line — which the reader drops and the writer truncates away before
it appends again. Several sweeps may share one store (two runs on one output directory,
a cluster job array): every append happens under an exclusive `fcntl` lock on
`<store>.lock`, after reading what the others appended since, so a key is written once
however many processes computed it. A sweep that finishes removes the lock file (under
the lock; a waiter that then holds the removed file's lock sees it is gone and locks a
new one), so a finished output holds no stray `results.jsonl.lock`. Readers de-duplicate by key as well (first
occurrence wins), so `cat a.jsonl b.jsonl > c.jsonl` counts each configuration once.
Each line carries a checksum (`"crc"`: the first 16 hex digits of the SHA-256 of the
line without it); a line that fails it, or does not parse, or lacks a record's fields
(a bit flip, a hand edit, a `{}`) is reported with its line number and skipped, and
`cosim sweep --repair` rewrites the store without such lines. Nothing committed is
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
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from cosim import jsonio

__all__ = ["ResultStore", "config_key", "key_prefix", "row_keys", "read_records", "expand", "split_numeric",
           "encode", "decode", "scan", "repair_store", "RepairSummary", "StoreWarning"]


class StoreWarning(UserWarning):
    """A damaged store line was skipped (its line number and why are in the message)."""


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
    # the first 12 bytes of each row's two big-endian lanes as 24 hex digits, built in numpy
    raw = np.column_stack(lanes).astype(">u8").view(np.uint8).reshape(len(values), 16)[:, :12]
    digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    hexa = np.empty((len(values), 24), dtype=np.uint8)
    hexa[:, 0::2], hexa[:, 1::2] = digits[raw >> 4], digits[raw & 15]
    return hexa.view("S24").ravel().astype("U24").tolist()


def config_key(config: dict, version: str) -> str:
    """Stable hash of one fully-resolved configuration and the cosim version (the same
    key a sweep batch gives that configuration)."""
    rest, num = split_numeric(config)
    fields = sorted(num)
    return row_keys(key_prefix(rest, fields, version), np.array([[num[f] for f in fields]], dtype=float))[0]


_CRC_TAIL = len(b',"crc":"') + 16 + len(b'"}')


def _with_crc(body: bytes) -> bytes:
    """A JSON object's bytes with its checksum appended as the last field."""
    crc = hashlib.sha256(body).hexdigest()[:16]
    return body[:-1] + b',"crc":"' + crc.encode() + b'"}'


def _parse_line(line: bytes):
    """(record, None) or (None, why). Lines of stores written before checksums have none."""
    line = line.rstrip(b"\r")
    if line.endswith(b'"}') and line[-_CRC_TAIL:].startswith(b',"crc":"'):
        body = line[:-_CRC_TAIL] + b"}"
        if hashlib.sha256(body).hexdigest()[:16].encode() != line[-18:-2]:
            return None, "checksum mismatch (the line was changed after it was written)"
    try:
        doc = json.loads(line)
        if not isinstance(doc, dict):
            return None, "not a JSON object"
        doc.pop("crc", None)
        rec = decode(doc)
        n = len(rec["keys"])
        if not (len(rec["index"]) == n and len(rec["values"]) == n and isinstance(rec["config"], dict)):
            return None, "record fields of different lengths"
        return rec, None
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as e:
        return None, f"not a store record ({type(e).__name__}: {str(e)[:80]})"


def _dedup(records: list, seen: set) -> list:
    """Records with every key already in `seen` dropped (and partly-seen ones cut)."""
    out = []
    for r in records:
        keep = [i for i, k in enumerate(r["keys"]) if k not in seen]
        if not keep:
            continue
        if len(keep) != len(r["keys"]):
            r = _subset(r, keep)
        seen.update(r["keys"])
        out.append(r)
    return out


def scan(path: str | Path, data: bytes | None = None, first_line: int = 1):
    """(records, problems, complete_bytes) of a store's bytes: every complete line that
    parses and passes its checksum, de-duplicated by key (first wins); problems as
    (line number, why); complete_bytes: length up to the last newline (a torn tail
    after it is not a problem: a writer was killed, or is writing it now)."""
    if data is None:
        data = _read_store_bytes(Path(path))
    end = data.rfind(b"\n") + 1
    records, problems = [], []
    for i, line in enumerate(data[:end].split(b"\n")[:-1]):
        if not line.strip():
            continue
        rec, why = _parse_line(line)
        if why:
            problems.append((first_line + i, why))
        else:
            records.append(rec)
    return records, problems, end


def _read_store_bytes(path: Path) -> bytes:
    from workloads.io import InputError
    if not path.exists():
        return b""
    if not path.is_file():  # /dev/zero, a FIFO, a directory: never read "forever"
        raise InputError(f"{path}: the results store must be a regular file (.jsonl)")
    try:
        return path.read_bytes()
    except OSError as e:
        raise InputError(f"{path}: cannot read the results store ({e.strerror or e})") from None


def _report(path, problems) -> None:
    for line, why in problems[:20]:
        warnings.warn(f"{path}: line {line}: {why}; skipped (`cosim sweep --repair` rewrites the store "
                      f"without damaged lines)", StoreWarning, stacklevel=3)
    if len(problems) > 20:
        warnings.warn(f"{path}: {len(problems) - 20} more damaged lines skipped", StoreWarning, stacklevel=3)


def read_records(path: str | Path) -> list[dict]:
    """Every complete, intact record, each key once (first occurrence); a torn last
    line is dropped; damaged lines are reported (StoreWarning, with line numbers) and
    skipped."""
    records, problems, _ = scan(path)
    _report(path, problems)
    return _dedup(records, set())


@contextmanager
def _locked(path: Path):
    """Exclusive lock on <store>.lock (fcntl; where unavailable, no lock: one writer)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    lock = str(path) + ".lock"
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            here = os.stat(lock)
            mine = os.fstat(fd)
            if (here.st_dev, here.st_ino) == (mine.st_dev, mine.st_ino):
                break
        except FileNotFoundError:
            pass
        # the file was removed (a finished sweep, remove_lock_file) while this process waited on it:
        # holding a removed file's lock excludes no one, so lock the file now at that path
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def remove_lock_file(path: str | Path) -> None:
    """Remove `<store>.lock` under the lock (at a sweep's clean finish): a writer waiting on it, or
    starting later, locks a new file (_locked checks that the file it holds is still the one there)."""
    path = Path(path)
    lock = Path(str(path) + ".lock")
    if not lock.exists():
        return
    with _locked(path):
        try:
            lock.unlink()
        except FileNotFoundError:
            pass


@dataclass(frozen=True)
class RepairSummary:
    """What `repair_store` kept and dropped."""
    damaged_lines: list  # 1-based line numbers that failed their checksum or did not parse
    torn_tail_bytes: int  # an unfinished last line (a killed writer)
    duplicate_points: int  # points stored more than once (kept once)
    points: int  # points kept
    records: int  # records (batches) kept

    def to_dict(self) -> dict:
        return asdict(self)


def repair_store(path: str | Path) -> RepairSummary:
    """Rewrite a store with only its intact records, each key once (atomically: a new
    file renamed over the old, under the lock). Returns counts for the report."""
    from workloads.io import InputError
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no results store to repair (expected a regular .jsonl file)")
    with _locked(path):
        data = _read_store_bytes(path)
        records, problems, end = scan(path, data)
        kept = _dedup(records, set())
        tmp = path.with_name(path.name + ".repair")
        with open(tmp, "wb") as f:
            for r in kept:
                f.write(_line(r))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    n_in = sum(len(r["keys"]) for r in records)
    n_out = sum(len(r["keys"]) for r in kept)
    return RepairSummary(damaged_lines=[ln for ln, _ in problems], torn_tail_bytes=len(data) - end,
                         duplicate_points=n_in - n_out, points=n_out, records=len(kept))


def _line(record: dict) -> bytes:
    body = jsonio.dumps(encode(record), separators=(",", ":"), default=_np).encode()
    return _with_crc(body) + b"\n"


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
    if isinstance(v, list) and None in v and all(x is None or (isinstance(x, (int, float)) and not isinstance(x, bool))
                                                 for x in v):
        return [jsonio.nan_if_null(x) for x in v]  # a numeric column whose NaNs were written as null
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
                    "level_used": _at(record.get("level_used"), i), "provenance": _at(record.get("provenance"), i),
                    "attention_backend": _at(record.get("attention_backend"), i), "notes": _at(record.get("notes"), i)})
    return out


def _subset(record: dict, keep: list[int]) -> dict:
    def pick(v):
        if isinstance(v, np.ndarray):
            return v[keep]
        return [v[i] for i in keep] if isinstance(v, list) else v
    return {**record, "keys": pick(record["keys"]), "index": pick(record["index"]),
            "values": pick(record["values"]), "metrics": {m: pick(v) for m, v in record["metrics"].items()},
            "status": pick(record["status"]), "error": pick(record.get("error")),
            "level_used": pick(record.get("level_used")), "provenance": pick(record.get("provenance")),
            "attention_backend": pick(record.get("attention_backend")), "notes": pick(record.get("notes"))}


class ResultStore:
    """Append-only JSONL store of batch records shared safely by concurrent writers;
    `done` holds every stored key (including those other processes appended)."""

    def __init__(self, path: str | Path):
        from workloads.io import InputError
        self.path = Path(path)
        if self.path.exists() and not self.path.is_file():
            raise InputError(f"{self.path}: the results store must be a regular file (.jsonl)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.records: list = []
        self.done: set = set()
        self._offset = 0  # bytes of the file already read into `records`
        self._lines = 0
        self.read_records = 0  # records read from the file (earlier runs, other writers), not appended here
        with _locked(self.path):
            self._truncate_torn_tail()
            self._refresh()

    def _truncate_torn_tail(self) -> None:
        """Under the lock: a tail without a newline is a killed writer's torn line. The last
        byte decides (reading the whole file before every append made a sweep quadratic)."""
        if not self.path.exists():
            return
        if self.path.is_file():
            with open(self.path, "rb") as f:
                size = f.seek(0, os.SEEK_END)
                if size == 0:
                    return
                f.seek(size - 1)
                if f.read(1) == b"\n":
                    return
        data = _read_store_bytes(self.path)
        keep = data.rfind(b"\n") + 1
        if keep != len(data):
            with open(self.path, "r+b") as f:
                f.truncate(keep)
                f.flush()
                os.fsync(f.fileno())

    def _refresh(self) -> None:
        """Under the lock: read what was appended since the last read (other writers)."""
        if not self.path.exists():
            return
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            data = f.read()
        records, problems, end = scan(self.path, data, first_line=self._lines + 1)
        _report(self.path, problems)
        records = _dedup(records, self.done)
        self.read_records += len(records)
        self.records += records
        self._offset += end
        self._lines += data[:end].count(b"\n")

    def __contains__(self, key: str) -> bool:
        return key in self.done

    def lookup(self, key: str) -> tuple[dict, str]:
        """(metrics, status) of one stored point."""
        for r in reversed(self.records):
            if key in r["keys"]:
                i = list(r["keys"]).index(key)
                return {m: _at(v, i) for m, v in r["metrics"].items()}, _at(r["status"], i)
        raise KeyError(key)

    def append(self, record: dict) -> int:
        """Store the record's points that no writer has stored yet: under the lock, read
        the others' new lines, then one write + fsync of the rest. SIGINT and SIGTERM are
        held off during the write so Ctrl-C (or `kill`) never tears a line."""
        import signal
        import threading
        main = threading.current_thread() is threading.main_thread() and hasattr(signal, "pthread_sigmask")
        if main:
            old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            with _locked(self.path):
                self._truncate_torn_tail()
                self._refresh()
                keep = record["keys"]
                if not self.done.isdisjoint(keep):  # (a set test in C: the common case)
                    keep = [i for i, k in enumerate(record["keys"]) if k not in self.done]
                    if not keep:
                        return 0
                    if len(keep) != len(record["keys"]):
                        record = _subset(record, keep)
                line = _line(record)
                with open(self.path, "ab") as f:
                    f.write(line)
                    f.flush()
                    os.fsync(f.fileno())
                self._offset += len(line)
                self._lines += 1
                self.records.append(record)
                self.done.update(record["keys"])
                return len(keep)
        finally:
            if main:
                signal.pthread_sigmask(signal.SIG_SETMASK, old)

    def refresh(self) -> None:
        """Pick up records other writers appended (call before building the table)."""
        with _locked(self.path):
            self._refresh()

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _np(o):
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")
