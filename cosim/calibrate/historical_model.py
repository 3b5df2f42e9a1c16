"""Model pieces a later session replaced, kept so that the historical scorers and fits re-run unchanged (as
launch_refit_s9.S4B_TERM keeps the session-4b launch term). Imports nothing above hwmodels."""

from __future__ import annotations

import copy
from dataclasses import replace

from hwmodels.system import load_system

__all__ = ["S11_RING_LL", "with_ring_ll", "session11_system"]

# the ring LL line sessions 3-11 shipped in dgx_h100 / dgx_h200 (bw, per-step latency s, fixed s); session 12 replaced it
# (validation/published/collective_selection_session12.md). The historical scorers price with it, so that their
# committed tables re-run unchanged, as they keep the session-4b launch term.
S11_RING_LL = {"bw": 0.2312, "latency_s": 0.9116e-6, "fixed_s": 0.0}


def with_ring_ll(system, line: dict):
    """A copy of ``system`` whose intra-node ring LL line is ``line`` ({bw, latency_s[, fixed_s]}), written as the
    system files write it, so that it is priced through the bundled path."""
    coll = copy.deepcopy(system.collectives)
    entry = {"bw": line["bw"], "latency": f"{line['latency_s'] * 1e6!r} us"}
    if line.get("fixed_s"):
        entry["fixed"] = f"{line['fixed_s'] * 1e6!r} us"
    coll["efficiency"]["intra_node"]["ring"]["ll"] = entry
    return replace(system, collectives=coll)


def session11_system(name: str):
    """The bundled system ``name`` with the ring LL line of sessions 3-11 (S11_RING_LL): what the historical scorers
    and fits (launch floor, CUDA-graph term, calibrations) were computed on."""
    return with_ring_ll(load_system(name), S11_RING_LL)
