"""The python examples of the accelerator docs run, and each `expr  # number` line gives that number
(docs/systolic-vs-scalesim.md once indexed a dataclass like a dict and crashed)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ["docs/systolic-vs-scalesim.md"]
BLOCK = re.compile(r"```python\n(.*?)```", re.S)
CHECK = re.compile(r"^(?P<expr>[^#\n]+?)\s+#\s*(?P<num>-?[\d.]+(?:e-?\d+)?)\s*$")


def _blocks(doc):
    return BLOCK.findall((ROOT / doc).read_text())


@pytest.mark.parametrize("doc", DOCS)
def test_doc_python_blocks_run_and_match_their_comments(doc):
    blocks = _blocks(doc)
    assert blocks, f"{doc}: no python block"
    checked = 0
    for block in blocks:
        env: dict = {}
        for line in block.splitlines():
            m = CHECK.match(line)
            if m:
                got = eval(m["expr"], env)  # noqa: S307 - the project's own docs
                assert got == pytest.approx(float(m["num"]), rel=1e-9), f"{doc}: {line.strip()} gave {got}"
                checked += 1
            elif line.strip():
                exec(line, env)  # noqa: S102
    assert checked
