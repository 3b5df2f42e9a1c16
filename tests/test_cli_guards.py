"""Audit s11 guards of the command line: a fit refused from another GPU's measurements, sweep outputs that
are not the sweep's own store, output paths checked before a run (exit 2, one line, no traceback)."""

import pytest

from cosim.cli import main


def run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_calibrate_refuses_measurements_of_another_gpu(tmp_path, capsys):
    out = tmp_path / "mi.yaml"
    rc, _, err = run(capsys, "calibrate", "--fit-only", "--hw", "mi300x", "--measurements",
                     "validation/h100_ops.csv", "--out", out)
    assert rc == 2 and not out.exists()
    line = err.strip()
    assert "\n" not in line and "Traceback" not in line
    assert "--hw" in line and "'mi300x'" in line and "NVIDIA H100 80GB HBM3" in line and "calibration: {from:" in line


@pytest.mark.parametrize("device, part, same", [
    ("NVIDIA H100 80GB HBM3", "h100_sxm", True),   # torch's name of the SXM board
    ("NVIDIA H100 80GB HBM3", "h100_pcie", False),
    ("NVIDIA H100 PCIe", "h100_pcie", True),
    ("NVIDIA H100 PCIe", "h100_sxm", False),
    ("NVIDIA H100 NVL", "h100_sxm", False),
    ("NVIDIA H200", "h200", True),
    ("NVIDIA H200", "h100_sxm", False),
    ("NVIDIA H100 80GB HBM3", "mi300x", False),
    ("AMD Instinct MI300X", "mi300x", True),
    ("NVIDIA A100-SXM4-80GB", "a100_sxm_80gb", True),
    ("NVIDIA H100 80GB HBM3", "b200", False),
])
def test_device_matches_hardware_description(device, part, same):
    from hwmodels.spec import load_hw

    from cosim.cli.calibrate import device_matches

    assert device_matches(device, load_hw(part).description) is same


def _sweep_yaml(tmp_path, out, grid=None, name="s.yaml"):
    import yaml

    doc = {"name": "guard", "base": {"model": "llama3_8b", "hw": "h100_sxm", "seq": 1024},
           "axes": [{"grid": grid or {"batch": [1, 2]}}], "output": str(out), "executor": "local", "workers": 1}
    f = tmp_path / name
    f.write_text(yaml.safe_dump(doc))
    return f


def test_sweep_refuses_a_user_directory_without_a_store(tmp_path, capsys):
    user = tmp_path / "userdir"
    user.mkdir()
    (user / "pareto.csv").write_text("mine\n")
    rc, _, err = run(capsys, "sweep", _sweep_yaml(tmp_path, user), "-q")
    assert rc == 2 and (user / "pareto.csv").read_text() == "mine\n"
    assert "output" in err and "pareto.csv" in err and "results.jsonl" in err and "Traceback" not in err
    rc, _, err = run(capsys, "sweep", _sweep_yaml(tmp_path, tmp_path / "elsewhere"), "-q", "--out", user)
    assert rc == 2 and "--out" in err and (user / "pareto.csv").read_text() == "mine\n"


def test_sweep_resumes_into_its_own_output_and_a_new_or_empty_one(tmp_path, capsys):
    out = tmp_path / "out"
    f = _sweep_yaml(tmp_path, out)
    assert run(capsys, "sweep", f, "-q")[0] == 0
    assert (out / "results.jsonl").is_file()
    assert run(capsys, "sweep", f, "-q")[0] == 0  # resume: the sweep's own store
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run(capsys, "sweep", f, "-q", "--out", empty)[0] == 0


def test_a_changed_sweep_into_the_same_output_says_what_the_store_holds(tmp_path, capsys):
    import json

    out = tmp_path / "out"
    rc, _, err = run(capsys, "sweep", _sweep_yaml(tmp_path, out), "-q")
    assert rc == 0 and "another configuration" not in err
    assert json.loads((out / "summary.json").read_text())["store_other_rows"] == 0
    changed = _sweep_yaml(tmp_path, out, grid={"batch": [4]}, name="changed.yaml")
    rc, _, err = run(capsys, "sweep", changed, "-q")
    assert rc == 0
    assert "also holds 2 rows of another configuration" in err and str(out) in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["configurations"] == 1 and summary["store_other_rows"] == 2


def test_serve_checks_out_before_simulating(tmp_path, capsys, monkeypatch):
    import cosim.serving

    def never(*a, **k):
        raise AssertionError("simulated although --out cannot be written")

    monkeypatch.setattr(cosim.serving, "serve", never)
    afile = tmp_path / "afile"
    afile.write_text("x")
    rc, _, err = run(capsys, "serve", "--model", "llama3_8b", "--hw", "h100_sxm", "--qps", "1", "--requests", "5",
                     "--out", afile)
    assert rc == 2 and afile.read_text() == "x"
    assert err.strip().startswith("error: --out:") and "is a file" in err and "expected a directory" in err


@pytest.mark.parametrize("argv, says", [
    (["sweep", "s.yaml"], "finished results are kept, a re-run resumes"),
    (["sweep", "s.yaml", "--dry-run"], "the store is unchanged"),
    (["roofline", "--model", "llama3_8b", "--hw", "h100_sxm"], "`cosim roofline` does not resume (only `cosim sweep`"),
    (["serve", "--model", "llama3_8b", "--hw", "h100_sxm"], "`cosim serve` does not resume"),
])
def test_ctrl_c_says_what_each_command_keeps(argv, says, capsys):
    from cosim.cli import _run, build_parser

    args = build_parser().parse_args(argv)

    def interrupted(_args):
        raise KeyboardInterrupt

    args.func = interrupted
    assert _run(args) == 130
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: interrupted (Ctrl-C); ") and says in err and "\n" not in err


def test_calibrate_out_must_be_yaml(tmp_path, capsys):
    keep = tmp_path / "keep_me.txt"
    keep.write_text("mine\n")
    rc, _, err = run(capsys, "calibrate", "--fit-only", "--hw", "h100_sxm", "--measurements",
                     "validation/h100_ops.csv", "--out", keep)
    assert rc == 2 and keep.read_text() == "mine\n"
    assert err.strip().startswith("error: --out:") and "'.txt'" in err and ".yaml or .yml" in err


@pytest.mark.parametrize("hw, says", [("h100_sxm", "e.g. dgx_h100 (built of h100_sxm)"),
                                      ("l40s", "a system YAML (no bundled system is built of l40s)")])
def test_serve_tp_on_one_device_says_a_system_is_needed(hw, says, capsys):
    rc, _, err = run(capsys, "serve", "--model", "llama3_8b", "--hw", hw, "--tp", "2", "--qps", "1", "--requests", "3")
    line = err.strip()
    assert rc == 2 and "\n" not in line and "Traceback" not in line
    assert f"got tp=2 with hw '{hw}', a single device" in line and "--tp/--pp need --hw naming a system" in line
    assert says in line


def test_a_finished_sweep_leaves_no_lock_file(tmp_path, capsys):
    out = tmp_path / "out"
    f = _sweep_yaml(tmp_path, out)
    assert run(capsys, "sweep", f, "-q")[0] == 0
    assert (out / "results.jsonl").is_file() and not (out / "results.jsonl.lock").exists()
    assert run(capsys, "sweep", f, "-q")[0] == 0  # resume from the store, again without a lock left
    assert not (out / "results.jsonl.lock").exists()


def test_a_writer_waiting_on_a_removed_lock_file_locks_the_new_one(tmp_path):
    """The lock file is removed under the lock at a sweep's end: a writer that was waiting on it then
    holds a removed file's lock, which excludes no one; it must lock the file at the path instead."""
    import threading
    import time

    from cosim.dse.store import _locked

    store = tmp_path / "results.jsonl"
    lock = tmp_path / "results.jsonl.lock"
    seen = []

    def writer():
        with _locked(store):
            seen.append(lock.exists())  # the path names the file whose lock this writer holds

    with _locked(store):
        t = threading.Thread(target=writer)
        t.start()
        time.sleep(0.3)  # the writer is waiting in flock on this file
        lock.unlink()
    t.join(10)
    assert not t.is_alive() and seen == [True]
