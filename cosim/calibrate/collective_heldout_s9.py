"""Session 9: a held-out round of published single-node 8 x H100 nccl-tests tables, scored once on the model frozen
at the pre-registration commit (validation/published/PREREGISTRATION_nccl_session9.md). Nothing here fits anything.

The tables are the nccl-tests output as printed (header lines and the numeric table of each collective, copied from
the source's logs into validation/published/raw_s9/), turned into rows by the project's nccl-tests reader
(cosim.calibrate.nccl_table); every row of nccl_8xh100_heldout_session9.csv is re-derived from the raw text by
``build_rows`` (a test checks it). GPU and rank count come from each table's own ``# Rank ... device ...`` lines
(nccl_table.ranks_and_gpu); the launch mode from its ``nGpus`` header; the
NCCL version (``nccl-library=``), dtype and sizes of each row's note from the same log.
"""

from __future__ import annotations

from pathlib import Path

from cosim.calibrate.nccl_table import IN_RANGE, PUB, HeldoutRound, Table, nccl_library, perf_binary, read_nccl_tests

__all__ = ["PUB", "RAW", "HELDOUT_S9_CSV", "ACCESSED", "FROZEN", "Table", "TABLES", "IN_RANGE", "ROUND", "build_rows",
           "nccl_library", "write_csv", "headline_sources"]

RAW = PUB / "raw_s9"
HELDOUT_S9_CSV = PUB / "nccl_8xh100_heldout_session9.csv"
ACCESSED = "2026-12-04"
FROZEN = "730659be8d0c34c49beb3f7e1e3a8cfb83d115cf"  # the commit that added PREREGISTRATION_nccl_session9.md
_XX = ("https://github.com/xxrjun/nccl-tests-cluster/blob/455de4f8dee2fa94cd4044a7109fd8c576f9e6c1/benchmarks/"
       "example-cluster01/nccl-benchmark-results/single-node/runs/20260128-145017/without-debug/logs/")
_KINDS = ("allreduce", "allgather", "reducescatter")  # the source's three logs of each node


# Table (role: headline all-reduce | separate: all-gather / reduce-scatter, scored in their own table), PUB,
# IN_RANGE (X2: 1 KB - 1 GB scored) and nccl_library are the rounds' shared ones (cosim.calibrate.nccl_table)


def _size(b: int) -> str:
    return f"{b >> 30} GB" if b >= 1 << 30 else f"{b >> 20} MB"


def _xx_tables(raw: Path = RAW) -> tuple:
    """The 30 tables; NCCL version, nGpus, dtype and sizes of each note are read from its own raw log."""
    out = []
    for k in range(2, 12):
        node = f"cnode3-{k:03d}"
        for kind in _KINDS:
            path = raw / f"xxrjun_{node}_{perf_binary(kind)}.txt"
            tab, (code, nccl) = read_nccl_tests(path, kind), nccl_library(path)
            sizes = [r.size_bytes for r in tab.rows]
            dtypes = sorted({r.dtype for r in tab.rows})
            procs = "one process per GPU" if tab.launch == "one_process_per_gpu" else f"launch {tab.launch}"
            out.append(Table(f"xx_{node}_{kind}", path.name, _XX + f"nccl_N1_G8_{node}.log", kind, nccl,
                             "headline" if kind == "allreduce" else "separate",
                             f"xxrjun/nccl-tests-cluster example-cluster01, single node {node}, 8 x H100 80GB HBM3; "
                             f"srun -N 1 --ntasks-per-node=8 (sbatch_run_nccl_tests_single.sh), header nGpus "
                             f"{tab.n_gpus_per_process}: {procs}; nccl-library={code} (NCCL {nccl}); NCCL_ALGO not "
                             f"forced; sizes {_size(min(sizes))} - {_size(max(sizes))} (-b {min(sizes) >> 20}M); dtype "
                             f"{', '.join(dtypes)}; out-of-place time"))
    return tuple(out)


TABLES = _xx_tables()
ROUND = HeldoutRound(TABLES, RAW, ACCESSED, HELDOUT_S9_CSV, IN_RANGE)
headline_sources, build_rows, write_csv = ROUND.headline_sources, ROUND.build_rows, ROUND.write_csv
