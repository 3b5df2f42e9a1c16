"""Every script in examples/ runs to the end, as a user runs it (`python examples/x.py`
from a fresh directory), and its sweep has no error rows. Heavy examples honour
COSIM_EXAMPLE_SMALL=1 (fewer points, the same code path)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


def test_examples_found():
    assert len(EXAMPLES) >= 2


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COSIM_EXAMPLE_SMALL": "1", "MPLBACKEND": "Agg"}
    r = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, f"{script.name} exited {r.returncode}:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    m = re.search(r"plots and tables in (\S+?)/?$", r.stdout, re.M)
    assert m, r.stdout[-2000:]
    summary = json.loads((tmp_path / m.group(1) / "summary.json").read_text())
    assert summary["configurations"] >= 2
    assert summary["ok"] == summary["configurations"], summary  # no error rows hidden behind a table
