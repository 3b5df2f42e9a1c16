"""SHA-256 digests of the microbenchmark suites' case lists (issue 11, held-out discipline): a
rules file pins the digest of the suite it defines before the suite is measured, and a test
asserts it, so a later edit of microbench.py cannot silently change a measured suite.

    python -m cosim.calibrate.suite_digest heldout4
"""

from __future__ import annotations

import hashlib
import json
import sys

__all__ = ["suite_cases", "suite_digest"]


def suite_cases(variant: str) -> dict:
    """Every case list of a microbench variant: GEMM (M, N, K), attention, elementwise, and the
    end-to-end points where the variant has its own."""
    from cosim.calibrate import microbench as mb
    out = {"attention": mb._attention_cases(variant), "elementwise": mb._elementwise_cases(variant)}
    if variant in mb.GEMM_SUITES:
        out["gemm"] = mb.gemm_cases(mb.GEMM_SUITES[variant])
    if variant in mb.E2E_POINTS:
        out["e2e"] = list(mb.E2E_POINTS[variant])
    return out


def suite_digest(variant: str) -> str:
    text = json.dumps(suite_cases(variant), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


if __name__ == "__main__":
    for v in sys.argv[1:]:
        c = suite_cases(v)
        print(v, suite_digest(v), {k: len(x) for k, x in c.items()})
