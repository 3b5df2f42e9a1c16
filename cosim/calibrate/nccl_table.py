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
from typing import Callable

from hwmodels.nccl import launch_from_harness
from workloads.ops import COLLECTIVE_KINDS

__all__ = ["NcclRow", "NcclTable", "NcclTableError", "parse_nccl_tests", "read_nccl_tests", "COLLECTIVE_OF_BINARY",
           "TABLE_ROW_COLUMNS", "table_rows", "write_table_rows", "Table", "PUB", "IN_RANGE", "GPU_OF_DEVICE",
           "ranks_and_gpu", "published_rows", "nccl_library", "BINARY_OF_COLLECTIVE", "perf_binary", "table_harness",
           "published_session", "HeldoutRound"]

COLLECTIVE_OF_BINARY = {"all_reduce": "allreduce", "all_gather": "allgather", "reduce_scatter": "reducescatter",
                        "alltoall": "alltoall", "sendrecv": "sendrecv"}
BINARY_OF_COLLECTIVE = {c: b for b, c in COLLECTIVE_OF_BINARY.items()}  # allreduce -> all_reduce (one map, both ways)
_BINARY = re.compile(r"\b(all_reduce|all_gather|reduce_scatter|alltoall|sendrecv)_perf\b")
_FIELDS13 = ("size", "count", "type", "redop", "root", "oop_time", "oop_algbw", "oop_busbw", "oop_wrong",
             "ip_time", "ip_algbw", "ip_busbw", "ip_wrong")
_FIELDS12 = tuple(f for f in _FIELDS13 if f != "root")

# the published held-out rounds (cosim.calibrate.collective_heldout_s8, _s9, ...): where their raw text and CSVs are,
# and the sizes their rules score (rule X2: 1 KB - 1 GB, inclusive)
PUB = Path(__file__).resolve().parents[2] / "validation" / "published"
IN_RANGE = (1 << 10, 1 << 30)
# the device names nccl-tests prints (cudaGetDeviceProperties) -> the GPU column hwmodels prices (the 80 GB HBM3
# part is the SXM5 board; the PCIe and NVL boards print "H100 PCIe" / "H100 NVL")
GPU_OF_DEVICE = {"NVIDIA H100 80GB HBM3": "H100 SXM"}
_RANK = re.compile(r"^#\s*Rank\s+(\d+)\s.*\sdevice\s+\d+\s+\[[^\]]*\]\s+(.+?)\s*$", re.M)


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


def read_nccl_text(path) -> str:
    """The text of an nccl-tests output file; a file that cannot be read is one NcclTableError naming it."""
    p = Path(path)
    try:
        return p.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise NcclTableError(f"{p}: cannot read ({e.__class__.__name__}: {e}); expected an nccl-tests text output")


def read_nccl_tests(path, collective: str | None = None) -> NcclTable:
    return parse_nccl_tests(read_nccl_text(path), str(Path(path)), collective)


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


@dataclass(frozen=True)
class Table:
    """One published nccl-tests table of a held-out round: its verbatim text is ``raw`` (a file of the round's raw
    folder), ``url`` where it was read, ``role`` what the round's rules make of it (headline, info, separate)."""
    source: str
    raw: str  # file under the round's raw folder (validation/published/raw_s<N>)
    url: str
    collective: str
    nccl: str  # "" when the source does not state it
    role: str
    note: str
    status: str = "V"  # V: a stable URL (rule Q1); R: read, but no stable URL


def ranks_and_gpu(path) -> tuple[int, str]:
    """(ranks, GPU) read from the header's ``# Rank r ... device d [bus] <name>`` lines: every rank once, one device
    name, one that GPU_OF_DEVICE knows."""
    found = _RANK.findall(Path(path).read_text())
    ranks = sorted(int(r) for r, _ in found)
    names = sorted({n for _, n in found})
    if not found or ranks != list(range(len(ranks))):
        raise ValueError(f"{path}: header Rank lines: got ranks {ranks}; expected ranks 0..N-1, each once "
                         f"('#  Rank  0 Group  0 Pid ... device  0 [bus] NVIDIA ...')")
    if len(names) != 1 or names[0] not in GPU_OF_DEVICE:
        raise ValueError(f"{path}: header Rank lines: device {', '.join(names)}; expected one of "
                         f"{sorted(GPU_OF_DEVICE)} on every rank")
    return len(ranks), GPU_OF_DEVICE[names[0]]


def nccl_library(path, text: str | None = None) -> tuple[int, str]:
    """(NCCL_VERSION_CODE, version) a nccl-tests log's header states: ``nccl-library=22902`` -> (22902, "2.29.2")
    (the code is major x 10000 + minor x 100 + patch). ``text``: the log's text when already read (``path`` then
    only names it in errors)."""
    m = re.search(r"\bnccl-library=(\d+)", Path(path).read_text() if text is None else text)
    if not m:
        raise ValueError(f"{path}: field nccl-library: not in the header; expected a line '# nccl-tests version ... "
                         "nccl-library=<NCCL_VERSION_CODE>' as nccl-tests prints it")
    v = int(m.group(1))
    return v, f"{v // 10000}.{v // 100 % 100}.{v % 100}"


def perf_binary(collective: str) -> str:
    """The nccl-tests binary that measures ``collective``: allreduce -> all_reduce_perf."""
    return f"{BINARY_OF_COLLECTIVE[collective]}_perf"


def table_harness(t: Table, tab: NcclTable, ranks: int) -> str:
    """The harness column of a published table's rows (published_rows' ``harness``): the binary of the table's
    collective and its header's process layout (hwmodels.nccl.launch_from_harness reads the launch mode back from it):
    ``nccl-tests all_reduce_perf (header: nThread 1 nGpus 1; 8 ranks, one per process)``, or without the ranks when
    one process drives several GPUs (``nGpus 8``)."""
    per = f"; {ranks} ranks, one per process" if tab.n_gpus_per_process == 1 else ""
    return f"nccl-tests {perf_binary(t.collective)} (header: nThread 1 nGpus {tab.n_gpus_per_process}{per})"


def published_session(rel) -> int:
    """The held-out round a file of validation/published belongs to, from its path relative to PUB: its name's
    ``session<N>`` or its ``raw_s<N>`` folder; 0 for the files of no numbered session. A round's "not held before"
    check reads the files of earlier rounds only (a later round's source list may name this round's source)."""
    rel = Path(rel)
    m = re.search(r"session(\d+)", rel.name) or re.match(r"raw_s(\d+)", rel.parts[0])
    return int(m.group(1)) if m else 0


def published_rows(tables, raw, *, accessed: str, harness, in_range: tuple[int, int] = IN_RANGE) -> list[dict]:
    """Every row of every ``Table``, re-derived from its verbatim text under ``raw`` (out-of-place time and busbw;
    ranks and GPU from its header); ``harness(table, nccl_table, ranks)`` is the harness column the round writes."""
    out = []
    for t in tables:
        tab = read_nccl_tests(Path(raw) / t.raw, t.collective)
        n, gpu = ranks_and_gpu(Path(raw) / t.raw)
        out += table_rows(tab, in_range, source=t.source, url=t.url, accessed=accessed, gpu=gpu, n_gpus=n,
                          harness=harness(t, tab, n), nccl=t.nccl, status=t.status, role=t.role, note=t.note)
    return out


@dataclass(frozen=True)
class HeldoutRound:
    """One published held-out round (cosim.calibrate.collective_heldout_s8, _s9, _s11): its ``Table``s, the folder of
    their verbatim text (``raw``), when they were read (``accessed``) and the CSV its rows are kept in (``csv``). The
    round's rows are re-derived from the raw text (``build_rows``, a test per round checks the CSV against it)."""
    tables: tuple
    raw: Path
    accessed: str
    csv: Path
    in_range: tuple = IN_RANGE  # rule X2: 1 KB - 1 GB scored
    harness: Callable = table_harness  # the harness column each row carries (published_rows)

    def headline_sources(self) -> tuple:
        """The sources of the tables whose role is ``headline`` (in table order)."""
        return tuple(t.source for t in self.tables if t.role == "headline")

    def build_rows(self, tables=None, raw=None) -> list[dict]:
        """Every row of every table (default: the round's), re-derived from the raw text under ``raw`` (default: the
        round's folder): out-of-place time and busbw; ranks, GPU and launch mode from each table's header."""
        return published_rows(self.tables if tables is None else tables, self.raw if raw is None else raw,
                              accessed=self.accessed, harness=self.harness, in_range=self.in_range)

    def write_csv(self, path=None) -> Path:
        """The round's rows to ``path`` (default: the round's CSV)."""
        return write_table_rows(self.csv if path is None else path, self.build_rows())

    def headline_rows(self, rows, collective: str | None = None) -> list:
        """The scored rows (collective_holdout_s4b.ScoredRow) of the headline tables, in range (and of ``collective``
        only, when given)."""
        heads = self.headline_sources()
        return [r for r in rows if r.source in heads and r.in_range and (collective is None or r.collective == collective)]
