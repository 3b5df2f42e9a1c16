"""Session 9: a held-out round of published single-node 8 x H100 nccl-tests tables, scored once on the model frozen
at the pre-registration commit (validation/published/PREREGISTRATION_nccl_session9.md). Nothing here fits anything.

The tables are the nccl-tests output as printed (header lines and the numeric table of each collective, copied from
the source's logs into validation/published/raw_s9/), turned into rows by the project's nccl-tests reader
(cosim.calibrate.nccl_table); every row of nccl_8xh100_heldout_session9.csv is re-derived from the raw text by
``build_rows`` (a test checks it). GPU and rank count come from each table's own ``# Rank ... device ...`` lines
(collective_heldout_s8.ranks_and_gpu); the launch mode from its ``nGpus`` header.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from cosim.calibrate.collective_heldout_s8 import ranks_and_gpu
from cosim.calibrate.nccl_table import read_nccl_tests

__all__ = ["PUB", "RAW", "HELDOUT_S9_CSV", "ACCESSED", "FROZEN", "Table", "TABLES", "IN_RANGE", "build_rows",
           "write_csv", "headline_sources"]

PUB = Path(__file__).resolve().parents[2] / "validation" / "published"
RAW = PUB / "raw_s9"
HELDOUT_S9_CSV = PUB / "nccl_8xh100_heldout_session9.csv"
ACCESSED = "2026-12-04"
FROZEN = "730659be8d0c34c49beb3f7e1e3a8cfb83d115cf"  # the commit that added PREREGISTRATION_nccl_session9.md
IN_RANGE = (1 << 10, 1 << 30)  # X2: 1 KB - 1 GB scored
_XX = ("https://github.com/xxrjun/nccl-tests-cluster/blob/455de4f8dee2fa94cd4044a7109fd8c576f9e6c1/benchmarks/"
       "example-cluster01/nccl-benchmark-results/single-node/runs/20260128-145017/without-debug/logs/")
_BINARY = {"allreduce": "all_reduce_perf", "allgather": "all_gather_perf", "reducescatter": "reduce_scatter_perf"}
_COLUMNS = ("source", "url", "accessed", "gpu", "n_gpus", "harness", "launch", "collective", "forced", "nccl",
            "size_bytes", "busbw_GBps", "time_us", "status", "in_range", "role", "note")


@dataclass(frozen=True)
class Table:
    source: str
    raw: str  # file under validation/published/raw_s9
    url: str
    collective: str
    nccl: str
    role: str  # headline (all-reduce) | separate (all-gather / reduce-scatter, scored in their own table)
    note: str


def _xx_tables() -> tuple:
    out = []
    for k in range(2, 12):
        node = f"cnode3-{k:03d}"
        for kind, binary in _BINARY.items():
            out.append(Table(f"xx_{node}_{kind}", f"xxrjun_{node}_{binary}.txt", _XX + f"nccl_N1_G8_{node}.log", kind,
                             "2.29.2", "headline" if kind == "allreduce" else "separate",
                             f"xxrjun/nccl-tests-cluster example-cluster01, single node {node}, 8 x H100 80GB HBM3; "
                             "srun -N 1 --ntasks-per-node=8 (sbatch_run_nccl_tests_single.sh), header nGpus 1: one "
                             "process per GPU; nccl-library=22902 (NCCL 2.29.2); NCCL_ALGO not forced; sizes 32 MB - "
                             "16 GB (-b 32M); dtype double; out-of-place time"))
    return tuple(out)


TABLES = _xx_tables()


def headline_sources() -> tuple:
    return tuple(t.source for t in TABLES if t.role == "headline")


def build_rows(tables=TABLES, raw=RAW) -> list[dict]:
    """Every row of every table, re-derived from the raw text (out-of-place time and busbw; ranks, GPU and launch
    mode from its header)."""
    out = []
    for t in tables:
        tab = read_nccl_tests(Path(raw) / t.raw, t.collective)
        n, gpu = ranks_and_gpu(Path(raw) / t.raw)
        harness = (f"nccl-tests {_BINARY[t.collective]} (header: nThread 1 nGpus {tab.n_gpus_per_process}; "
                   f"{n} ranks, one per process)")
        for r in tab.rows:
            out.append({"source": t.source, "url": t.url, "accessed": ACCESSED, "gpu": gpu, "n_gpus": str(n),
                        "harness": harness, "launch": tab.launch or "", "collective": tab.collective, "forced": "",
                        "nccl": t.nccl, "size_bytes": str(r.size_bytes), "busbw_GBps": f"{r.oop_busbw_GBps:g}",
                        "time_us": f"{r.oop_time_us:g}", "status": "V",
                        "in_range": "yes" if IN_RANGE[0] <= r.size_bytes <= IN_RANGE[1] else "no",
                        "role": t.role, "note": t.note})
    return out


def write_csv(path=HELDOUT_S9_CSV) -> Path:
    path = Path(path)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=_COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(build_rows())
    return path
