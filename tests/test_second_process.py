"""cosim.second_process: a call run in a spawned child gives what the call gives here,
re-raises its exception here, and runs here when no child can be started."""

import json
import math
import os
from pathlib import Path

import pytest

from cosim.second_process import SecondProcess


def test_result_and_error_come_back_from_the_child():
    assert SecondProcess(math.comb, 52, 5).result() == 2598960
    with pytest.raises(ValueError, match="invalid literal"):
        SecondProcess(int, "not a number").result()


def test_without_a_child_the_call_runs_here(monkeypatch, capsys):
    import concurrent.futures

    def refuse(*a, **k):
        raise OSError("no processes left")
    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", refuse)
    assert SecondProcess(math.comb, 10, 3).result() == 120
    assert "no second process (OSError: no processes left); running it in this one" in capsys.readouterr().err


@pytest.mark.slow  # two quickstart-sized runs
def test_run_experiment_gives_the_same_report_with_and_without_the_second_process(monkeypatch):
    from cosim import accuracy
    from cosim.experiment import load_experiment, run_experiment
    exp = load_experiment("quickstart")
    accuracy._checkpoint.cache_clear()
    accuracy._baseline_run.cache_clear()
    beside = run_experiment(exp, second_process=True)  # the checkpoint is not loaded here yet: a child runs it
    assert accuracy._checkpoint.cache_info().currsize == 0
    monkeypatch.setenv("COSIM_ONE_PROCESS", "1")
    here = run_experiment(exp, second_process=True)
    a, b = beside.meta["accuracy"]["checkpoint"], here.meta["accuracy"]["checkpoint"]
    a.pop("elapsed_s"), b.pop("elapsed_s")
    same = lambda x, y: json.dumps(x, sort_keys=True, default=str) == json.dumps(y, sort_keys=True, default=str)
    assert same(a, b) and same(beside.rows, here.rows)  # (as text: NaN fields compare equal)


@pytest.mark.skipif(not hasattr(os, "killpg"), reason="process groups")
def test_ctrl_c_during_cosim_run_is_one_line_exit_130_and_leaves_no_process(tmp_path):
    """Interrupted while the functional core and the child run (the plots start after the functional
    core): 1.5 s in, past the fork (~0.6 s warm) and well before a warm run's end (~4 s here); the
    earlier 3.5 s could outlive a warm run once it got faster."""
    import signal
    import subprocess
    import sys
    import time
    root = Path(__file__).resolve().parents[1]
    p = subprocess.Popen([sys.executable, "-m", "cosim", "run", "quickstart", "--out", str(tmp_path / "qs")],
                         cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                         # SIGINT as a terminal leaves it: a suite run in the background (`pytest &`) passes it
                         # on ignored, and the Ctrl-C sent below would be lost
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(1.5)
    os.killpg(p.pid, signal.SIGINT)  # as a terminal does: every process of the group
    err = p.communicate(timeout=120)[1]
    assert p.returncode == 130, err[-2000:]
    assert err.strip().splitlines()[-1] == ("error: interrupted (Ctrl-C); `cosim run` does not resume (only `cosim sweep` "
                                            "does): a re-run starts over")
    t0 = time.time()
    while time.time() - t0 < 20:
        try:
            os.killpg(p.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    raise AssertionError("a process of the interrupted run is still alive")


def test_the_child_is_forked_only_where_that_is_safe(monkeypatch):
    """A fresh single-threaded Linux process forks (no second round of imports); another
    live thread, numba's started threading layer or COSIM_SPAWN=1 make it spawn."""
    import subprocess
    import sys
    import threading

    from cosim import second_process as sp
    root = Path(__file__).resolve().parents[1]
    code = "from cosim.second_process import _start_method; print(_start_method())"
    fresh = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                           env={**os.environ, "COSIM_SPAWN": ""}).stdout.strip()
    assert fresh == ("fork" if sys.platform.startswith("linux") else "spawn")
    stop = threading.Event()
    t = threading.Thread(target=stop.wait)
    t.start()
    try:
        assert sp._start_method() == "spawn"
    finally:
        stop.set()
        t.join()
    monkeypatch.setenv("COSIM_SPAWN", "1")
    assert sp._start_method() == "spawn"


def test_numba_set_up_before_the_fork_keeps_the_fork_safe():
    """_numba_target_ready (run before forking the child) builds numba's target in this
    process without starting a thread or numba's threading layer: the start method stays
    "fork", and a forked child then runs a cached kernel with the same result."""
    import subprocess
    import sys
    root = Path(__file__).resolve().parents[1]
    code = ("import numpy as np, threading\n"
            "from cosim.second_process import _numba_target_ready, _start_method, SecondProcess\n"
            "from cosim.functional import quantize\n"
            "_numba_target_ready()\n"
            "x = np.linspace(-3, 3, 64, dtype=np.float32).reshape(2, 32)\n"
            "print(_start_method(), threading.active_count())\n"
            "if __name__ == '__main__':\n"
            "    y = SecondProcess(quantize, x, 'mxfp4').result()\n"
            "    print(bool(np.array_equal(y, quantize(x, 'mxfp4'))))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                         env={**os.environ, "COSIM_SPAWN": ""})
    lines = out.stdout.split()
    if not sys.platform.startswith("linux"):
        pytest.skip("fork is used on Linux only")
    assert lines == ["fork", "1", "True"], out.stderr[-1500:]


def test_ctrl_c_while_the_commands_are_imported_is_the_same_one_line_exit_130(monkeypatch, capsys):
    """A Ctrl-C that lands before the command starts (building the parser imports every subcommand, seconds on a
    loaded machine) is the same one line and exit 130; it was an uncaught KeyboardInterrupt (the process died of
    SIGINT, exit -2: the flaky Ctrl-C test under load)."""
    import signal
    import sys

    import cosim.cli as cli

    def interrupted():
        raise KeyboardInterrupt
    monkeypatch.setattr(cli, "build_parser", interrupted)
    monkeypatch.setattr(sys, "argv", ["cosim", "run", "quickstart", "--out", "x"])
    old = signal.getsignal(signal.SIGINT)
    try:
        assert cli.main() == 130
    finally:
        signal.signal(signal.SIGINT, old)
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "error: interrupted (Ctrl-C); `cosim run` does not resume (only `cosim sweep` does): a re-run starts over")
