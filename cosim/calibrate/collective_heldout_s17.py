"""Session 17: a held-out round on a second H100 cluster of xxrjun/nccl-tests-cluster (example-cluster00, 17 single-node
8 x H100 runs, NCCL 2.28.7), scored once on the model frozen by validation/published/PREREGISTRATION_nccl_session17.md
(committed, with the sources list and the search record, before any latency was read). Nothing here fits anything.

The source's logs (one per node, five nccl-tests binaries each) were in the repository from 3446705 to 02789d8 and are
read at ``XX_COMMIT``. ``extract_raw`` copies the all_reduce / all_gather / reduce_scatter sections of each node's log
verbatim (from its ``# nccl-tests version`` line to its ``# Collective test concluded`` line) into
validation/published/raw_s17/, with the git blob id of every log in ``raw_s17/SOURCES.txt`` (run once, from a clone).
``build_rows`` re-derives the scored CSV from that copy with the project's nccl-tests reader (cosim.calibrate.nccl_table;
a test checks the committed CSV against it), so nothing downstream reads the clone. GPU and ranks come from each
section's ``# Rank`` lines, the launch mode from its ``nGpus`` header, the NCCL version from ``nccl-library=``, the
element type from its rows' type column (written into each row's note as ``nccl_dtype``, which the scorer passes on).
"""

from __future__ import annotations

import re
import subprocess
from functools import lru_cache
from pathlib import Path

from cosim.calibrate.nccl_table import (IN_RANGE, PUB, HeldoutRound, Table, nccl_library, parse_nccl_tests,
                                        perf_binary, read_nccl_text)

__all__ = ["XX_COMMIT", "LOG_DIR", "NODES", "KINDS", "RAW", "HELDOUT_S17_CSV", "ACCESSED", "TABLES", "ROUND",
           "extract_raw", "log_section", "build_rows", "write_csv", "headline_sources", "raw_name", "raw_text"]

XX_COMMIT = "b1298129db1c2d17d82af8b0c7a32c69a4bae0bc"
LOG_DIR = "benchmarks/example-cluster00/nccl-benchmark-results/single-node/runs/2511/without-debug/logs"
NODES = tuple(f"cnode2-{k:03d}" for k in range(1, 18))
KINDS = ("allreduce", "allgather", "reducescatter")  # the pre-registration's: all-reduce headline, the others beside
RAW = PUB / "raw_s17"
HELDOUT_S17_CSV = PUB / "nccl_8xh100_heldout_session17.csv"
ACCESSED = "2026-12-05"
_URL = f"https://github.com/xxrjun/nccl-tests-cluster/blob/{XX_COMMIT}/{LOG_DIR}/"


def _log_path(node: str) -> str:
    return f"{LOG_DIR}/nccl_N1_G8_{node}.log"


def raw_name(node: str, kind: str) -> str:
    return f"xxrjun_{node}_{perf_binary(kind)}.txt"


def log_section(text: str, binary: str, source: str = "<log>") -> str:
    """The lines of one nccl-tests run inside a log holding several: from the ``# nccl-tests version`` line just before
    ``# Collective test starting: <binary>`` to ``# Collective test concluded: <binary>``, verbatim (line ends kept)."""
    lines = text.splitlines(keepends=True)
    start = [i for i, ln in enumerate(lines) if ln.rstrip() == f"# Collective test starting: {binary}"]
    end = [i for i, ln in enumerate(lines) if ln.rstrip() == f"# Collective test concluded: {binary}"]
    if len(start) != 1 or len(end) != 1 or end[0] < start[0]:
        raise ValueError(f"{source}: field '# Collective test starting/concluded: {binary}': found {len(start)} start "
                         f"and {len(end)} end lines; expected exactly one of each, in that order")
    i = start[0]
    if i == 0 or not lines[i - 1].startswith("# nccl-tests version"):
        raise ValueError(f"{source}: line {i}: expected '# nccl-tests version ...' just before the {binary} start line")
    return "".join(lines[i - 1:end[0] + 1])


def extract_raw(mirror_git_dir: str | Path, out: Path = RAW) -> list[Path]:
    """Copy the three sections of each node's log at XX_COMMIT (read with ``git show`` from a clone of
    xxrjun/nccl-tests-cluster) into ``out``, and the URL, commit and blob id of every log into out/SOURCES.txt.
    Run once."""
    out.mkdir(parents=True, exist_ok=True)
    git = ["git", "--git-dir", str(mirror_git_dir)]
    written, sources = [], [f"xxrjun/nccl-tests-cluster at {XX_COMMIT} (logs first committed in 3446705, 2026-01-01; "
                            f"removed from the tree in 02789d8, 2026-02-02); accessed {ACCESSED}",
                            "Each raw file is one run's section of the node's log, copied verbatim (git show | "
                            "cosim.calibrate.collective_heldout_s17.log_section).", ""]
    for node in NODES:
        spec = f"{XX_COMMIT}:{_log_path(node)}"
        blob = subprocess.run(git + ["rev-parse", spec], check=True, capture_output=True, text=True).stdout.strip()
        text = subprocess.run(git + ["show", spec], check=True, capture_output=True, text=True).stdout
        for kind in KINDS:
            p = out / raw_name(node, kind)
            p.write_text(log_section(text, perf_binary(kind), spec))
            written.append(p)
        sources.append(f"{_URL}nccl_N1_G8_{node}.log  git blob {blob}")
    (out / "SOURCES.txt").write_text("\n".join(sources) + "\n")
    return written


def _size(b: int) -> str:
    return f"{b >> 30} GB" if b >= 1 << 30 else f"{b >> 20} MB"


@lru_cache(maxsize=None)
def raw_text(path: Path) -> str:
    """The text of one raw section file, read once per process (the tables, their notes and the tests all parse
    the same string)."""
    return read_nccl_text(path)


def _tables(raw: Path = RAW) -> tuple:
    """The 51 tables (17 nodes x 3 collectives); NCCL version, nGpus, element type and sizes of each note are read
    from its own raw text (each file read once, by ``raw_text``)."""
    out = []
    for node in NODES:
        for kind in KINDS:
            path = raw / raw_name(node, kind)
            text = raw_text(path)
            tab, (code, nccl) = parse_nccl_tests(text, str(path), kind), nccl_library(path, text)
            sizes = [r.size_bytes for r in tab.rows]
            dtypes = sorted({r.dtype for r in tab.rows})
            if len(dtypes) != 1:
                raise ValueError(f"{path}: field type: got {dtypes}; expected one element type per run")
            graph = re.search(r"\bgraph: (\d+)", text)
            procs = "one process per GPU" if tab.launch == "one_process_per_gpu" else f"launch {tab.launch}"
            out.append(Table(f"xx_{node}_{kind}", path.name, _URL + f"nccl_N1_G8_{node}.log", kind, nccl,
                             "headline" if kind == "allreduce" else "separate",
                             f"xxrjun/nccl-tests-cluster example-cluster00, single node {node}, 8 x H100 80GB HBM3; "
                             f"srun --ntasks-per-node=8 (sbatch_run_nccl_tests_single.sh), header nGpus "
                             f"{tab.n_gpus_per_process}: {procs}; nccl-library={code} (NCCL {nccl}); NCCL_ALGO not "
                             f"forced; graph {graph.group(1) if graph else 'not stated'}; sizes {_size(min(sizes))} - "
                             f"{_size(max(sizes))}; nccl_dtype {dtypes[0]}; out-of-place time"))
    return tuple(out)


TABLES = _tables()
ROUND = HeldoutRound(TABLES, RAW, ACCESSED, HELDOUT_S17_CSV, IN_RANGE)
headline_sources, build_rows, write_csv = ROUND.headline_sources, ROUND.build_rows, ROUND.write_csv
