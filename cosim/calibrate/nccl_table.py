"""Read the text table nccl-tests prints (all_reduce_perf, all_gather_perf, ...).

The format (nccl-tests 2.x, src/common.cu):

    # nThread 1 nGpus 8 minBytes 8 maxBytes 8589934592 step: 2(factor) ...
    #       size         count      type   redop    root     time   algbw   busbw #wrong     time   algbw   busbw #wrong
    #        (B)    (elements)                               (us)  (GB/s)  (GB/s)            (us)  (GB/s)  (GB/s)
            1024           256     float     sum      -1    25.61    0.04    0.07      0    25.60    0.04    0.07      0

Older versions have no ``root`` column (12 fields); the column header, when present, fixes which. Data rows are the lines whose first field is a whole
number; '#' lines are headers; anything else (NCCL INFO logs, MPI banners) is not table and is skipped.
A data row that does not parse is one error naming the file, line, field, the bad value and what was
expected. The launch mode (hwmodels.launch) is read from the header's ``nGpus`` (never guessed).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from hwmodels.nccl import launch_from_harness
from workloads.ops import COLLECTIVE_KINDS

__all__ = ["NcclRow", "NcclTable", "NcclTableError", "parse_nccl_tests", "read_nccl_tests", "COLLECTIVE_OF_BINARY",
           "TABLE_ROW_COLUMNS", "table_rows", "write_table_rows"]

COLLECTIVE_OF_BINARY = {"all_reduce": "allreduce", "all_gather": "allgather", "reduce_scatter": "reducescatter",
                        "alltoall": "alltoall", "sendrecv": "sendrecv"}
_BINARY = re.compile(r"\b(all_reduce|all_gather|reduce_scatter|alltoall|sendrecv)_perf\b")
_FIELDS13 = ("size", "count", "type", "redop", "root", "oop_time", "oop_algbw", "oop_busbw", "oop_wrong",
             "ip_time", "ip_algbw", "ip_busbw", "ip_wrong")
_FIELDS12 = tuple(f for f in _FIELDS13 if f != "root")


class NcclTableError(ValueError):
    """A malformed nccl-tests output (the message names file, line, field, value, expectation)."""


@dataclass(frozen=True)
class NcclRow:
    line: int
    size_bytes: int
    count: int
    dtype: str
    redop: str
    oop_time_us: float
    oop_busbw_GBps: float
    ip_time_us: float
    ip_busbw_GBps: float


@dataclass(frozen=True)
class NcclTable:
    source: str
    collective: str  # allreduce, allgather, ... (COLLECTIVE_KINDS)
    n_gpus_per_process: int | None
    launch: str | None  # hwmodels.launch mode read from the header; None if the header is missing
    rows: tuple


def _bad(src, line, fld, value, expected):
    return NcclTableError(f"{src}:{line}: field {fld}: got {value!r}; expected {expected}")


def _num(src, line, fld, tok, kind):
    try:
        v = int(tok) if kind == "int" else float(tok)
    except ValueError:
        raise _bad(src, line, fld, tok, "a whole number" if kind == "int" else "a number") from None
    if kind == "time" and not v > 0:
        raise _bad(src, line, fld, tok, "a time in us > 0")
    if kind in ("int", "bw") and v < 0:
        raise _bad(src, line, fld, tok, "a value >= 0")
    return v


def _row(src: str, line: int, toks: list, width: int | None) -> NcclRow:
    """One data row; `width` is the field count the column header states (None: no header, 12 or 13)."""
    if len(toks) not in ((width,) if width else (12, 13)):
        want = f"{width} fields as the column header states" if width else "12 or 13 fields"
        raise _bad(src, line, "row", " ".join(toks), f"{want} ({' '.join(_FIELDS13 if width != 12 else _FIELDS12)}), "
                                                     f"got {len(toks)}")
    f = dict(zip(_FIELDS13 if len(toks) == 13 else _FIELDS12, toks))
    size = _num(src, line, "size", f["size"], "int")
    count = _num(src, line, "count", f["count"], "int")
    vals = {k: _num(src, line, k, f[k], "time" if k.endswith("time") else "bw")
            for k in ("oop_time", "oop_busbw", "ip_time", "ip_busbw")}
    return NcclRow(line, size, count, f["type"], f["redop"], vals["oop_time"], vals["oop_busbw"],
                   vals["ip_time"], vals["ip_busbw"])


def parse_nccl_tests(text: str, source: str = "<text>", collective: str | None = None) -> NcclTable:
    """The table of one nccl-tests run. `collective` is needed when the text does not name its binary
    (``# Collective test starting: all_reduce_perf`` or the command line)."""
    m = _BINARY.search(text)
    found = COLLECTIVE_OF_BINARY[m.group(1)] if m else None
    if collective is not None and collective not in COLLECTIVE_KINDS:
        raise NcclTableError(f"{source}: collective: got {collective!r}; expected one of {COLLECTIVE_KINDS}")
    if collective and found and collective != found:
        raise NcclTableError(f"{source}: collective: given {collective!r}, the text names {m.group(0)} ({found!r})")
    kind = collective or found
    if kind is None:
        raise NcclTableError(f"{source}: collective: not named by the text (no '<name>_perf'); expected it given "
                             f"(one of {COLLECTIVE_KINDS})")
    rows, width = [], None
    for i, raw in enumerate(text.splitlines(), 1):
        toks = raw.split()
        if toks[:1] == ["#"] and "size" in toks and "redop" in toks:  # the column header
            width = 13 if "root" in toks else 12
        if not toks or toks[0].startswith("#") or not toks[0].isdigit():
            continue
        rows.append(_row(source, i, toks, width))
    if not rows:
        raise NcclTableError(f"{source}: no data rows; expected lines 'size count type redop [root] time algbw "
                             f"busbw #wrong time algbw busbw #wrong' as nccl-tests prints them")
    g = re.search(r"\bnGpus\s+(\d+)", text)
    return NcclTable(source, kind, int(g.group(1)) if g else None, launch_from_harness(text), tuple(rows))


def read_nccl_tests(path, collective: str | None = None) -> NcclTable:
    p = Path(path)
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise NcclTableError(f"{p}: cannot read ({e.__class__.__name__}: {e}); expected an nccl-tests text output")
    return parse_nccl_tests(text, str(p), collective)


# the columns of a published-table CSV (validation/published/nccl_8xh100_heldout_session*.csv): one row per size
TABLE_ROW_COLUMNS = ("source", "url", "accessed", "gpu", "n_gpus", "harness", "launch", "collective", "forced",
                     "nccl", "size_bytes", "busbw_GBps", "time_us", "status", "in_range", "role", "note")


def table_rows(tab: NcclTable, in_range: tuple[int, int], *, source: str, url: str, accessed: str, gpu: str,
               n_gpus: int, harness: str, nccl: str, status: str, role: str, note: str) -> list[dict]:
    """One TABLE_ROW_COLUMNS dict per size of ``tab`` (out-of-place time and busbw, as strings ``%g``; no NCCL_ALGO
    forced); ``in_range`` (lo, hi) bytes, inclusive, marks the scored sizes."""
    return [{"source": source, "url": url, "accessed": accessed, "gpu": gpu, "n_gpus": str(n_gpus),
             "harness": harness, "launch": tab.launch or "", "collective": tab.collective, "forced": "",
             "nccl": nccl, "size_bytes": str(r.size_bytes), "busbw_GBps": f"{r.oop_busbw_GBps:g}",
             "time_us": f"{r.oop_time_us:g}", "status": status,
             "in_range": "yes" if in_range[0] <= r.size_bytes <= in_range[1] else "no", "role": role, "note": note}
            for r in tab.rows]


def write_table_rows(path, rows: list[dict]) -> Path:
    """``rows`` (table_rows dicts) to ``path`` as CSV with the TABLE_ROW_COLUMNS header, '\\n' line ends."""
    path = Path(path)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=TABLE_ROW_COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return path
