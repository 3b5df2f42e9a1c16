"""Session 12: a held-out round on NVIDIA AIConfigurator's measured NCCL tables (NCCL 2.29.2, 8 x H100 and 8 x H200),
scored once on the frozen model named by validation/published/PREREGISTRATION_nccl_session12.md (committed, with its
rulings, before any latency was read). Nothing here fits anything.

The tables are parquet files of ai-dynamo/aiconfigurator: its collector runs nccl-tests (`all_reduce_perf -b S -e S
-t N -d half|int8 -w 40 -a 1 -n 100|60 -c 0`, one process, N threads, one GPU each) once per size S and stores the
out-of-place time column in ms with ``message_size`` = S / bytes per element. ``extract_raw`` copies every row of both
files verbatim into validation/published/raw_s12/ (once; pyarrow needed only there); ``build_rows`` re-derives the
scored CSV from that copy (a test checks it), so nothing downstream reads the parquet.
"""

from __future__ import annotations

import csv
import io
import subprocess
from pathlib import Path

from cosim.calibrate.nccl_table import IN_RANGE, PUB, write_table_rows

__all__ = ["AIC_COMMIT", "FILES", "RAW", "HELDOUT_S12_CSV", "ACCESSED", "HARNESS", "extract_raw", "build_rows",
           "write_csv", "role_of", "RAW_COLUMNS"]

AIC_COMMIT = "dec5f4cd21b7a91c19fa3d23eb70988f3965fd47"
_DATA = "aic-core/src/aiconfigurator_core/systems/data"
# table name -> (path in the repository at AIC_COMMIT, GPU column hwmodels prices, device string the file must carry)
FILES = {"aic_h100_2_29_2": (f"{_DATA}/h100_sxm/comm/nccl/2.29.2/nccl_perf.parquet", "H100 SXM", "NVIDIA H100 80GB HBM3"),
         "aic_h200_2_29_2": (f"{_DATA}/h200_sxm/comm/nccl/2.29.2/nccl_perf.parquet", "H200 SXM", "NVIDIA H200")}
RAW = PUB / "raw_s12"
HELDOUT_S12_CSV = PUB / "nccl_heldout_session12.csv"
ACCESSED = "2026-12-05"
RAW_COLUMNS = ("framework", "version", "device", "op_name", "kernel_source", "nccl_dtype", "num_gpus", "message_size",
               "latency")
_BINARY = {"all_reduce": "allreduce", "all_gather": "allgather", "reduce_scatter": "reducescatter",
           "alltoall": "alltoall"}
_BYTES_PER_ELEMENT = {"half": 2, "int8": 1}  # the collector's own map (collect_nccl.py: 2 if half else 1)
# the pre-registration's launch ruling: -t N -g 1 drives each GPU from its own host thread (launch_from_harness reads
# "-g 1" as one_process_per_gpu)
HARNESS = ("nccl-tests {binary}_perf -b S -e S -t {n} -g 1 -d {dtype} -w 40 -a 1 -n 100|60 -c 0 (one process, {n} "
           "threads, one GPU per thread; AIConfigurator collector/network/collect_nccl.py)")


def _url(path: str) -> str:
    return f"https://github.com/ai-dynamo/aiconfigurator/blob/{AIC_COMMIT}/{path}"


def extract_raw(mirror_git_dir: str | Path, out: Path = RAW) -> list[Path]:
    """Copy every row of both parquet files at AIC_COMMIT (read with `git show` from a clone) into one CSV each,
    columns RAW_COLUMNS as stored; the blob id of each file is written beside it. Run once."""
    import pyarrow.parquet as pq  # lazily: only this one-time copy needs it

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (path, _gpu, device) in FILES.items():
        spec = f"{AIC_COMMIT}:{path}"
        blob = subprocess.run(["git", "--git-dir", str(mirror_git_dir), "rev-parse", spec], check=True,
                              capture_output=True, text=True).stdout.strip()
        data = subprocess.run(["git", "--git-dir", str(mirror_git_dir), "show", spec], check=True,
                              capture_output=True).stdout
        table = pq.read_table(io.BytesIO(data)).to_pylist()
        missing = [c for c in RAW_COLUMNS if table and c not in table[0]]
        if missing:
            raise ValueError(f"{spec}: columns {missing} missing; expected {RAW_COLUMNS}")
        devices = {r["device"] for r in table}
        if devices != {device}:
            raise ValueError(f"{spec}: device column {sorted(devices)}; expected only {device!r}")
        p = out / f"{name}.csv"
        with open(p, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(RAW_COLUMNS)
            for r in table:
                w.writerow([r[c] for c in RAW_COLUMNS])
        (out / f"{name}.source.txt").write_text(f"{_url(path)}\ngit blob {blob}\naccessed {ACCESSED}\n")
        written.append(p)
    return written


def role_of(table: str, op: str, n: int, dtype: str) -> str:
    """The pre-registration's headline: H100, all_reduce, 8 GPUs, half; every other row is scored beside it."""
    return "headline" if (table, op, n, dtype) == ("aic_h100_2_29_2", "all_reduce", 8, "half") else "information"


def build_rows(raw: Path = RAW) -> list[dict]:
    """The scored CSV's rows (nccl_table.TABLE_ROW_COLUMNS), re-derived from raw_s12/: bytes = message_size x the
    collector's bytes per element, time = latency (ms) x 1000, no busbw (the file has none: X4 does not apply)."""
    rows = []
    for name, (path, gpu, _device) in FILES.items():
        with open(raw / f"{name}.csv", newline="") as f:
            recs = list(csv.DictReader(f))
        recs.sort(key=lambda r: (r["op_name"], int(r["num_gpus"]), r["nccl_dtype"], int(r["message_size"])))
        for r in recs:
            op, n, dtype = r["op_name"], int(r["num_gpus"]), r["nccl_dtype"]
            size = int(r["message_size"]) * _BYTES_PER_ELEMENT[dtype]
            rows.append({
                "source": f"{name}_{op}_{n}gpu_{dtype}", "url": _url(path), "accessed": ACCESSED, "gpu": gpu,
                "n_gpus": str(n), "harness": HARNESS.format(binary=op, n=n, dtype=dtype),
                "launch": "one_process_per_gpu", "collective": _BINARY[op], "forced": "", "nccl": r["version"],
                "size_bytes": str(size), "busbw_GBps": "", "time_us": f"{float(r['latency']) * 1000:g}",
                "status": "V", "in_range": "yes" if IN_RANGE[0] <= size <= IN_RANGE[1] else "no",
                "role": role_of(name, op, n, dtype),
                "note": f"{r['device']}; {r['framework']} campaign; NCCL {r['version']}; nccl_dtype {dtype}; "
                        f"out-of-place time (the collector's split()[5]); -c 0: no correctness check"})
    return rows


def write_csv(path: Path = HELDOUT_S12_CSV) -> Path:
    return write_table_rows(path, build_rows())
