"""The functional core gives the same bits as before the issue-14 kernel rewrite: every
case of tests/functional_digests.py (quantize / GEMM cases over every block format,
rounding, compat, saturation, axis and special-value path) hashes to the digest recorded
from the previous implementation (tests/data/functional_digests.json)."""

from __future__ import annotations

import json

import numpy as np

from tests.script_loader import load_script


def test_outputs_match_the_recorded_digests():
    D = load_script("tests/functional_digests.py", "functional_digests")
    want = json.loads(D.PATH.read_text())
    with np.errstate(all="ignore"):
        got = D.compute()
    assert len(want) > 1000 and set(got) == set(want)
    bad = sorted(k for k in want if got[k] != want[k])
    assert not bad, f"{len(bad)} of {len(want)} cases changed bits, e.g. {bad[:8]}"
