"""Issue 15, edge of the CLI: every bad output path or flag is one `error:` line and
exit 2 before any work; Ctrl-C is one line and exit 130; a SIGKILLed 2-worker sweep
leaves no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cosim.cli import main

ROOT = Path(__file__).resolve().parents[1]
BASE = ["roofline", "--model", "llama3_8b", "--hw", "h100_sxm"]


def _one_error(capsys, argv, *needles):
    rc = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2, err
    assert len(err) == 1 and err[0].startswith("error: "), err
    for n in needles:
        assert n in err[0], err[0]
    return err[0]


@pytest.mark.parametrize("flag,value,needle", [
    ("--out", "{tmp}/missing/dir/x.csv", None),  # created: fine (see below)
    ("--out", "{tmp}/ro.csv", "read-only"),
    ("--out", "{tmp}/adir", "unknown extension"),
    ("--out", "{tmp}/afile/x.csv", "is a file"),
    ("--out", "/proc/x.csv", "cannot write"),
    ("--plot", "{tmp}/x.gif", "unknown extension"),
    ("--out", "{tmp}/" + "n" * 300 + ".csv", "name limit"),
])
def test_unwritable_outputs_fail_before_work(tmp_path, capsys, flag, value, needle):
    (tmp_path / "ro.csv").write_text("")
    (tmp_path / "ro.csv").chmod(0o444)
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("")
    path = value.format(tmp=tmp_path)
    if needle is None:
        assert main(BASE + [flag, path]) == 0
        assert Path(path).is_file()
        return
    if needle == "read-only" and os.geteuid() == 0:
        pytest.skip("root writes read-only files")
    _one_error(capsys, BASE + [flag, path], needle)


@pytest.mark.parametrize("argv,needle", [
    (BASE + ["--top", "-1"], "--top: got -1"),
    (BASE + ["--top", "0"], "--top: got 0"),
    (BASE + ["--batch", "0"], "--batch"),
    (["recipe", "kivi2", "--steps", "0"], "--steps: got 0"),
])
def test_non_positive_counts_refused(capsys, argv, needle):
    _one_error(capsys, argv, needle)


def test_os_errors_become_one_line(capsys, monkeypatch):
    import cosim.cli.roofline as r

    def disk_full(args):
        raise OSError(28, "No space left on device", "/data/out.csv")
    monkeypatch.setattr(r, "run", disk_full)
    rc = main(BASE)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == ["error: /data/out.csv: No space left on device"]


def test_long_names_are_one_error(capsys):
    _one_error(capsys, ["roofline", "--model", "m" * 5000, "--hw", "h100_sxm"])
    _one_error(capsys, ["sweep", "s" * 5000 + ".yaml", "--dry-run"])
    _one_error(capsys, ["run", "e" * 5000])
    _one_error(capsys, BASE + ["--recipe", "r" * 5000])


SWEEP = """name: killme
base: {model: llama3_8b, phase: decode, batch: 8, seq: 4096, weights: mxfp4, hw: h100_sxm}
axes:
  - random:
      samples: 400000
      seed: 0
      fields:
        hw.memory.hbm.bandwidth: {low: 1 TB/s, high: 10 TB/s, log: true}
objectives: {latency_s: min, energy_per_token_j: min}
batch_size: 2000
workers: 2
output: OUT
"""


def _group(pgid: int) -> list[str]:
    """Live (non-zombie) processes of a process group."""
    out = subprocess.run(["ps", "-eo", "pgid=,stat=,pid=,args="], capture_output=True, text=True).stdout
    return [ln for ln in out.splitlines() if ln.split()[0] == str(pgid) and not ln.split()[1].startswith("Z")]


def _start_sweep(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(SWEEP.replace("OUT", str(tmp_path / "out")))
    p = subprocess.Popen([sys.executable, "-m", "cosim", "sweep", str(f), "-q"], cwd=ROOT,
                         start_new_session=True, stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    while time.time() - t0 < 60 and len(_group(p.pid)) < 5:  # driver, tracker, forkserver, 2 workers
        time.sleep(0.2)
    assert len(_group(p.pid)) >= 5, _group(p.pid)
    time.sleep(1.0)
    return p


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="process-group checks use Linux ps//proc")
def test_sigkill_of_a_two_worker_sweep_leaves_no_orphans(tmp_path):
    p = _start_sweep(tmp_path)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    t0 = time.time()
    while _group(p.pid) and time.time() - t0 < 10:
        time.sleep(0.2)
    left = _group(p.pid)
    for ln in left:  # never leave them behind, even when the test fails
        os.kill(int(ln.split()[2]), signal.SIGKILL)
    assert left == []
    from cosim.dse.store import read_records
    read_records(tmp_path / "out" / "results.jsonl")  # the store reads back cleanly


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="process-group checks use Linux ps//proc")
def test_ctrl_c_is_one_line_exit_130_and_fast(tmp_path):
    p = _start_sweep(tmp_path)
    os.killpg(p.pid, signal.SIGINT)
    t0 = time.time()
    err = p.communicate(timeout=90)[1]
    took = time.time() - t0
    t1 = time.time()
    while _group(p.pid) and time.time() - t1 < 10:
        time.sleep(0.2)
    left = _group(p.pid)
    for ln in left:
        os.kill(int(ln.split()[2]), signal.SIGKILL)
    assert p.returncode == 130
    assert err.strip().splitlines() == ["error: interrupted (Ctrl-C); finished results are kept, a re-run resumes"]
    assert took < 15 and left == []  # about 0.5 s on an idle machine


def test_huge_sweeps_refused_in_dry_run_before_allocating(tmp_path, capsys):
    vals = list(range(1, 101))
    f = tmp_path / "g.yaml"
    f.write_text("name: g\nbase: quickstart\naxes:\n"
                 f"  - grid: {{batch: {vals}, seq: {vals}}}\n"
                 f"  - grid: {{hw.clock: {[f'{v} GHz' for v in vals]}}}\n"
                 f"  - grid: {{hw.memory.hbm.bandwidth: {[f'{v} GB/s' for v in vals]}}}\n")
    _one_error(capsys, ["sweep", str(f), "--dry-run"], "100,000,000 points", "at most 2,000,000")
    f.write_text("base: quickstart\naxes:\n  - random: {samples: 1000000000, fields: {batch: {low: 1, high: 8, int: true}}}\n")
    _one_error(capsys, ["sweep", str(f), "--dry-run"], "samples", "1000000000")
    f.write_text("base: quickstart\naxes:\n  - random: {samples: 10, fields: {hw.clock: {low: 1 GHz, high: 2 GHz, log: 'false'}}}\n")
    _one_error(capsys, ["sweep", str(f), "--dry-run"], "log", "YAML boolean")


def test_heatmap_of_a_large_grid_is_fast(tmp_path):
    import numpy as np
    import pandas as pd
    from cosim.dse.sweep_plots import heatmap_plot
    n = 400
    x, y = np.meshgrid(np.arange(n) * 1.5, np.arange(n) * 2.0)
    df = pd.DataFrame({"a": x.ravel(), "b": y.ravel(), "m": (x * y).ravel()})
    t0 = time.time()
    heatmap_plot(df, "a", "b", "m", tmp_path / "h.png")
    assert (tmp_path / "h.png").stat().st_size > 0 and time.time() - t0 < 30
