"""Session 12's held-out round on AIConfigurator's measured NCCL tables: the scored CSV is re-derived from the verbatim
raw copy, the headline is what the pre-registration names, and the frozen commit is read from its addendum."""

import csv

from cosim.calibrate import collective_heldout_s12 as s12
from cosim.calibrate.nccl_table import TABLE_ROW_COLUMNS


def test_the_scored_csv_is_re_derived_from_the_raw_copy():
    with open(s12.HELDOUT_S12_CSV, newline="") as f:
        committed = list(csv.DictReader(f))
    assert committed == [{k: r[k] for k in TABLE_ROW_COLUMNS} for r in s12.build_rows()]


def test_headline_is_the_8_gpu_fp16_all_reduce_on_h100_from_1_kb():
    rows = s12.build_rows()
    head = [r for r in rows if r["role"] == "headline"]
    assert {(r["gpu"], r["collective"], r["n_gpus"]) for r in head} == {("H100 SXM", "allreduce", "8")}
    # 512 B ... 512 MB doubling: 21 sizes; the 512 B row is outside 1 KB - 1 GB (X2)
    sizes = [int(r["size_bytes"]) for r in head]
    assert sizes == [512 << i for i in range(21)]
    assert [r["in_range"] for r in head].count("yes") == 20
    # fp16: bytes = message_size (elements) x 2; the time column is ms in the file, us here
    with open(s12.RAW / "aic_h100_2_29_2.csv", newline="") as f:
        raw = next(r for r in csv.DictReader(f) if (r["op_name"], r["num_gpus"], r["nccl_dtype"], r["message_size"])
                   == ("all_reduce", "8", "half", "512"))
    first = next(r for r in head if r["size_bytes"] == "1024")
    assert float(first["time_us"]) == float(f"{float(raw['latency']) * 1000:g}")
    assert all(r["launch"] == "one_process_per_gpu" and r["busbw_GBps"] == "" for r in rows)


def test_the_frozen_commit_is_the_addendum_s():
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "collective_heldout_s12.py"
    spec = importlib.util.spec_from_file_location("bench_s12", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.frozen_commit().startswith("3bda6a0")
