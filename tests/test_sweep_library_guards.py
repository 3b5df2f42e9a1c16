"""Guards of the sweep library (`cosim.dse.sweep`), not only of `cosim sweep`: a user's folder as the
output is refused before anything is written; axis values are checked up front like `base`."""

from __future__ import annotations

import pytest

from cosim.dse import sweep
from workloads.io import InputError

BASE = {"model": "llama3_8b", "hw": "h100_sxm", "seq": 1024}


def _doc(grid, base=BASE):
    return {"name": "g", "base": base, "axes": [{"grid": grid}], "executor": "local", "workers": 1}


# ---- the output-folder guard in the library

def test_python_sweep_refuses_a_user_folder_and_writes_nothing(tmp_path):
    user = tmp_path / "userdir"
    user.mkdir()
    (user / "pareto.csv").write_text("mine\n")
    with pytest.raises(InputError) as e:
        sweep(_doc({"batch": [1, 2]}), output=user, quiet=True)
    msg = str(e.value)
    assert msg.startswith(f"output=: {user}: an existing directory holding pareto.csv but no sweep store")
    assert "expected a new or empty directory, or a sweep's own output to resume" in msg
    assert sorted(p.name for p in user.iterdir()) == ["pareto.csv"] and (user / "pareto.csv").read_text() == "mine\n"
    # the folder named by the sweep mapping's `output`: the message says so
    with pytest.raises(InputError, match=r"^<sweep>: output: .*userdir: an existing directory"):
        sweep({**_doc({"batch": [1]}), "output": str(user)}, quiet=True)
    # write=False writes only the store: refused too when the store would land in that folder
    with pytest.raises(InputError, match="no sweep store"):
        sweep(_doc({"batch": [1]}), output=user, quiet=True, write=False)
    assert sorted(p.name for p in user.iterdir()) == ["pareto.csv"]


def test_python_sweep_resumes_its_own_output_and_takes_a_new_or_empty_one(tmp_path):
    out = tmp_path / "out"
    assert list(sweep(_doc({"batch": [1, 2]}), output=out, quiet=True)["status"]) == ["ok", "ok"]
    assert (out / "results.jsonl").is_file() and (out / "summary.json").is_file()
    assert len(sweep(_doc({"batch": [1, 2]}), output=out, quiet=True)) == 2  # resume: its own store
    empty = tmp_path / "empty"
    empty.mkdir()
    assert len(sweep(_doc({"batch": [4]}), output=empty, quiet=True)) == 1
    # write=False with the store elsewhere: the output folder is not written, so not checked
    user = tmp_path / "userdir"
    user.mkdir()
    (user / "notes.txt").write_text("mine\n")
    df = sweep(_doc({"batch": [1]}), output=user, store=tmp_path / "s.jsonl", quiet=True, write=False)
    assert len(df) == 1 and sorted(p.name for p in user.iterdir()) == ["notes.txt"]
