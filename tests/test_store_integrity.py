"""Issue 15, results store: checksums, de-duplication on read, concurrent writers,
`--repair`, regular files only."""

from __future__ import annotations

import multiprocessing as mp
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cosim.dse.store import ResultStore, StoreWarning, read_records, repair_store

ROOT = Path(__file__).resolve().parents[1]


def _batch(keys, lat):
    n = len(keys)
    return {"version": "t", "config": {"hw": {"name": "h100_sxm", "overrides": {}}}, "fields": ["x"],
            "values": np.arange(n, dtype=float).reshape(n, 1), "keys": list(keys), "index": list(range(n)),
            "point": {}, "metrics": {"latency_s": np.asarray(lat, dtype=float)}, "status": "ok", "error": None}


def _keys(p):
    return [k for r in read_records(p) for k in r["keys"]]


def test_a_flipped_bit_fails_the_checksum_and_is_skipped(tmp_path):
    p = tmp_path / "r.jsonl"
    with ResultStore(p) as s:
        s.append(_batch(["a"], [1.0]))
        s.append(_batch(["b"], [2.0]))
    lines = p.read_bytes().splitlines(keepends=True)
    assert b'"crc":"' in lines[0]
    # change one digit inside the first record's base64 metric: still valid JSON
    i = lines[0].index(b'"f8":"') + 8
    bad = lines[0][:i] + (b"B" if lines[0][i:i + 1] != b"B" else b"C") + lines[0][i + 1:]
    p.write_bytes(bad + lines[1])
    with pytest.warns(StoreWarning, match="line 1: checksum mismatch"):
        assert _keys(p) == ["b"]


def test_cat_merged_stores_count_each_configuration_once(tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    with ResultStore(a) as s:
        s.append(_batch(["k1", "k2"], [1, 2]))
    with ResultStore(b) as s:
        s.append(_batch(["k2", "k3"], [2, 3]))
    merged = tmp_path / "m.jsonl"
    merged.write_bytes(a.read_bytes() + b.read_bytes())  # cat a b > m
    assert _keys(merged) == ["k1", "k2", "k3"]
    with ResultStore(merged) as s:
        assert s.done == {"k1", "k2", "k3"} and sum(len(r["keys"]) for r in s.records) == 3


def test_repair_rewrites_only_intact_unique_records(tmp_path):
    p = tmp_path / "r.jsonl"
    with ResultStore(p) as s:
        s.append(_batch(["a"], [1.0]))
    good = p.read_bytes()
    p.write_bytes(good + b"{}\n" + good + b'{"torn')
    out = repair_store(p)
    assert out.to_dict() == {"damaged_lines": [2], "torn_tail_bytes": 6, "duplicate_points": 1, "points": 1,
                             "records": 1}
    assert p.read_bytes() == good


def test_repair_from_the_cli(tmp_path, capsys):
    from cosim.cli import main
    p = tmp_path / "r.jsonl"
    with ResultStore(p) as s:
        s.append(_batch(["a"], [1.0]))
    p.write_bytes(p.read_bytes() + b"garbage\n")
    assert main(["sweep", "--repair", "--store", str(p)]) == 0
    assert "1 damaged line" in capsys.readouterr().out
    assert p.read_bytes().count(b"\n") == 1


@pytest.mark.parametrize("special", ["/dev/zero", "{tmp}"])
def test_store_must_be_a_regular_file(tmp_path, special):
    from workloads.io import InputError
    path = special.format(tmp=tmp_path)
    with pytest.raises(InputError, match="regular file"):
        ResultStore(path)
    with pytest.raises(InputError, match="regular file"):
        read_records(path)


def _writer(path, start, barrier):
    barrier.wait()
    with ResultStore(path) as s:
        for i in range(0, 60, 3):  # both writers try the same 60 keys, in different orders
            j = (i + start) % 60
            s.append(_batch([f"k{j}", f"k{j + 1}", f"k{j + 2}"], [j, j + 1, j + 2]))


def test_two_concurrent_writers_store_each_key_once(tmp_path):
    p = tmp_path / "r.jsonl"
    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
    barrier = ctx.Barrier(2)
    ps = [ctx.Process(target=_writer, args=(str(p), s, barrier)) for s in (0, 30)]
    for x in ps:
        x.start()
    for x in ps:
        x.join(60)
    assert all(x.exitcode == 0 for x in ps)
    raw = [k for ln in p.read_bytes().splitlines() for k in __import__("json").loads(ln)["keys"]]
    assert len(raw) == len(set(raw))  # on disk, not only after de-dup on read
    assert sorted(_keys(p)) == sorted(f"k{i}" for i in range(60))


SWEEP = """name: twin
base: {model: llama3_8b, phase: decode, batch: 8, seq: 4096, weights: mxfp4, hw: h100_sxm}
axes:
  - random:
      samples: 1000
      seed: 1
      fields:
        hw.memory.hbm.bandwidth: {low: 1 TB/s, high: 10 TB/s, log: true}
objectives: {latency_s: min, energy_per_token_j: min}
batch_size: 50
output: OUT
"""


def test_two_sweeps_on_one_directory_give_the_uninterrupted_result(tmp_path):
    import pandas as pd
    from cosim.dse import sweep
    f = tmp_path / "s.yaml"
    f.write_text(SWEEP.replace("OUT", str(tmp_path / "shared")))
    cmd = [sys.executable, "-m", "cosim", "sweep", str(f), "-q"]
    ps = [subprocess.Popen(cmd, cwd=ROOT) for _ in range(2)]
    assert [p.wait(120) for p in ps] == [0, 0]
    ref_yaml = tmp_path / "ref.yaml"
    ref_yaml.write_text(SWEEP.replace("OUT", str(tmp_path / "alone")))
    ref = sweep(str(ref_yaml), quiet=True, write=False)
    from cosim.dse.store import decode  # keys may be stored packed ({"k24": ...})
    raw = [k for ln in (tmp_path / "shared" / "results.jsonl").read_bytes().splitlines()
           for k in decode(__import__("json").loads(ln))["keys"]]
    assert len(raw) == len(set(raw)) == len(ref) == 1000
    again = sweep(str(f), quiet=True, write=False)  # a third run: all from the store
    cols = ["key", "latency_s", "energy_j", "pareto"]
    pd.testing.assert_frame_equal(again[cols].reset_index(drop=True), ref[cols].reset_index(drop=True))
