"""A Ctrl-C / SIGTERM whose exception Python dropped (raised inside a __del__, printed as
"Exception ignored") still ends the command as interrupted: the sweep stops at its next stored
record and the CLI exits 143 / 130 with its one line, never 0 (a CI run saw exit 0)."""

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cosim import interrupts
from cosim.dse import sweep

ROOT = Path(__file__).resolve().parents[1]

DROPPED = """
import signal, sys
import cosim.cli as cli

def run(args):  # the command: its SIGTERM exception is dropped, as Python drops one raised in a __del__
    try:
        signal.raise_signal(signal.SIGTERM)
    except KeyboardInterrupt:
        pass
    return 0

cli._run = run
sys.argv = ["cosim", "roofline", "--model", "llama3_8b", "--hw", "h100_sxm"]
sys.exit(cli.main())
"""


def test_a_dropped_sigterm_still_exits_143_with_the_one_line():
    p = subprocess.run([sys.executable, "-c", DROPPED], cwd=ROOT, capture_output=True, text=True, timeout=120,
                       preexec_fn=lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL))
    assert (p.returncode, p.stderr.strip().splitlines()) == (
        143, ["error: terminated (SIGTERM); `cosim roofline` does not resume (only `cosim sweep` does): "
              "a re-run starts over"])


def test_an_inherited_ignore_is_kept():
    """`nohup` / a background job set the signal ignored on purpose: install() keeps that."""
    code = ("import signal; from cosim import interrupts; interrupts.install(); "
            "print(signal.getsignal(signal.SIGTERM) == signal.SIG_IGN)")
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                       preexec_fn=lambda: signal.signal(signal.SIGTERM, signal.SIG_IGN))
    assert p.stdout.strip() == "True"


def test_the_sweep_stops_at_the_next_record_once_a_signal_is_recorded(tmp_path, monkeypatch):
    spec = {"name": "stop", "base": {"model": "llama3_8b", "phase": "decode", "batch": 1, "seq": 512,
                                     "hw": "h100_sxm"},
            "axes": [{"grid": {"hw.memory.hbm.bandwidth": ["1 TB/s", "2 TB/s", "3 TB/s", "4 TB/s"]}}], "objectives": {"latency_s": "min"}}
    monkeypatch.setattr(interrupts, "_received", [signal.SIGTERM])
    with pytest.raises(interrupts.Terminated):
        sweep(spec, output=tmp_path / "out", batch_size=1, quiet=True)
    from cosim.dse.store import read_records
    assert sum(len(r["keys"]) for r in read_records(tmp_path / "out" / "results.jsonl")) == 1  # one stored, kept
