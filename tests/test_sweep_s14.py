"""Session 14 sweep audit fixes: Ctrl-C while a plot is saved; Pareto ties; energy_scope filled."""

from __future__ import annotations

import os
import signal
import time

import pytest

SPEC = """name: s14
base: {model: llama3_8b, phase: decode, batch: 8, seq: 1024, hw: h100_sxm}
axes:
  - grid: {weights: [bf16, fp8_e4m3]}
objectives: {latency_s: min, energy_per_token_j: min}
output: OUT
"""


def _spec(tmp_path, text=SPEC):
    f = tmp_path / "s.yaml"
    f.write_text(text.replace("OUT", str(tmp_path / "out")))
    return f


def test_ctrl_c_while_a_plot_is_saved_is_one_line_exit_130(tmp_path, monkeypatch, capsys):
    """Audit: Ctrl-C during the plots gave a 67-line traceback and exit 1: raised inside matplotlib's
    renderer, the KeyboardInterrupt came out of savefig as "ValueError: Invalid bounding box". Simulated: the
    save gets SIGINT and then fails as matplotlib did."""
    from matplotlib.figure import Figure

    from cosim.cli import main

    def interrupted_save(self, *a, **k):  # what matplotlib's renderer did with a Ctrl-C inside it
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)  # the handler runs here
        except KeyboardInterrupt:
            raise ValueError("Invalid bounding box") from None
    monkeypatch.setattr(Figure, "savefig", interrupted_save)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert main(["sweep", str(_spec(tmp_path)), "-q"]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: interrupted (Ctrl-C); finished results are kept, a re-run resumes"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is back


def test_a_plot_that_fails_with_no_signal_fails_as_before(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    from cosim.dse.sweep_plots import interrupts_held

    def broken(self, *a, **k):
        raise ValueError("Invalid bounding box")
    monkeypatch.setattr(Figure, "savefig", broken)
    with pytest.raises(ValueError, match="Invalid bounding box"):
        with interrupts_held():
            Figure().savefig(tmp_path / "x.png")
    # a signal, then the save fails: the interrupt, not the error
    with pytest.raises(KeyboardInterrupt):
        with interrupts_held():
            os.kill(os.getpid(), signal.SIGINT)
            raise ValueError("Invalid bounding box")
    # a signal during a save that then succeeds is raised after it
    with pytest.raises(KeyboardInterrupt):
        with interrupts_held():
            os.kill(os.getpid(), signal.SIGINT)
            done = True
    assert done
