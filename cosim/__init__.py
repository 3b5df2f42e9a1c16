"""cosim: co-simulate compressed LLMs on GPUs, FPGAs and MX accelerators —
accuracy from a numba functional core, latency/energy from roofline, analytical
and cycle-level hardware models."""

from __future__ import annotations

from importlib import import_module

from cosim import ops
from cosim.report import Report
from cosim.simulate import simulate
from cosim.dse import sweep
from hwmodels.estimate import estimate
from hwmodels.spec import load_hw
from hwmodels.system import load_system
from workloads.builder import build_trace
from workloads.models import load_model
from workloads.trace import Trace

from cosim.version import __version__
__all__ = ["load_hw", "load_system", "load_model", "build_trace", "simulate", "estimate", "ops", "Report", "Trace",
           "functional", "sweep", "__version__"]

_LAZY = {"functional": "cosim.functional", "plots": "cosim.plots"}


def __getattr__(name):
    # numba-backed and plotting modules load on first use, keeping `import cosim` fast
    if name in _LAZY:
        return import_module(_LAZY[name])
    raise AttributeError(f"module 'cosim' has no attribute {name!r}")
