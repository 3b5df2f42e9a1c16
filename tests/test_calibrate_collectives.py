"""Issue 17's collective measurement script: size parsing, and a real gloo run at world size 2."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cosim.calibrate.collectives import _sizes, bus_factor, parse_size

ROOT = Path(__file__).resolve().parents[1]


def test_sizes_and_factors():
    assert parse_size("1K") == 1024 and parse_size("1G") == 2 ** 30 and parse_size("4096") == 4096
    assert _sizes(1024, 8192, 8, 2) == [1024, 2048, 4096, 8192]
    assert _sizes(10, 10, 8, 4) == [32]  # at least one element per rank
    assert bus_factor("allreduce", 8) == 1.75 and bus_factor("sendrecv", 2) == 1.0
    with pytest.raises(SystemExit, match="byte count"):
        parse_size("lots")


@pytest.mark.slow
def test_gloo_world_size_2_writes_csv_and_env(tmp_path):
    pytest.importorskip("torch")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29623",
           "-m", "cosim.calibrate.collectives", "--out", str(tmp_path), "--backend", "gloo", "--dtype", "float32",
           "--min-bytes", "1K", "--max-bytes", "4K", "--iters", "2", "--warmup", "1"]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = list(csv.DictReader(open(tmp_path / "collectives.csv")))
    assert {x["collective"] for x in rows} == {"allreduce", "allgather", "reducescatter", "alltoall", "sendrecv"}
    assert len(rows) == 5 * 3
    for x in rows:
        t = float(x["time_us"]) * 1e-6
        assert t > 0 and float(x["algbw_GBps"]) == pytest.approx(int(x["size_bytes"]) / t / 1e9)
        assert float(x["busbw_GBps"]) == pytest.approx(float(x["algbw_GBps"]) * bus_factor(x["collective"], 2))
    env_info = json.load(open(tmp_path / "collectives_env.json"))
    assert env_info["world_size"] == 2 and env_info["env"]["NCCL_NVLS_ENABLE"] == "0"
