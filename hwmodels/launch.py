"""How the collective is launched: one process per GPU, one process driving several GPUs, or a CUDA graph.

nccl-tests runs either way: `mpirun -np 8 ... -g 1` (one process per GPU, what vLLM, TensorRT-LLM
and Megatron do: one rank per process) or `-g 8` (one thread enqueues every local rank's kernel, one
after the other). The second has a higher small-message floor (23 us at 4 GPUs, 35 us at 8 GPUs,
against 16.4 us one-process-per-GPU on the same NVLink4 fabric; docs/multi-device.md 5.1.3). The
fitted collective model prices ``one_process_per_gpu`` (the default: what serving engines run); the
``single_process`` mode adds the harness term the system file states, fitted only on fit data
(``collectives.launch`` in the system YAML; law chosen by cosim.calibrate.launch_fit, constants re-chosen on every
single-process table held, leave one node out, by cosim.calibrate.launch_refit_s9; nodes' own floors at 8 GPUs
span 26 - 36 us, so no constant is within 15 % of every machine):

- ``floor``: max(t, a + b n): the host enqueues the n kernels of one collective in a + b n seconds and
  the GPUs work while the next one is enqueued, so back-to-back collectives cost whichever is longer;
- ``additive``: t + a + b n: the enqueue does not overlap the GPU work.

n is the number of GPUs the one process drives (the ranks of the group on one node).

``graph`` (CUDA-graph capture and replay: nccl-tests ``-G``, a serving engine's captured decode step): the host
enqueues nothing per collective, so the host term a + b n is replaced by the per-collective graph-node term of
``collectives.launch.graph`` (b = 0: one graph launch replays every GPU's node). Law and g were chosen and fitted
on a same-run eager / graph A/B (validation/published/PREREGISTRATION_nccl_graph_session7.md,
cosim.calibrate.graph_fit).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwmodels.spec import HardwareError
from hwmodels.units import parse_quantity

__all__ = ["LAUNCH_MODES", "DEFAULT_LAUNCH", "LAUNCH_LAWS", "LaunchTerm", "launch_term", "apply_launch",
           "check_launch"]

LAUNCH_MODES = ("one_process_per_gpu", "single_process", "graph")
DEFAULT_LAUNCH = "one_process_per_gpu"
LAUNCH_LAWS = ("floor", "additive")


@dataclass(frozen=True)
class LaunchTerm:
    law: str  # floor | additive
    a_s: float  # seconds per collective
    b_s: float  # seconds per driven GPU

    def overhead(self, n: int) -> float:
        return self.a_s + self.b_s * n

    def apply(self, t, n: int):
        """The launched time of model time t (a number, or a numpy array as the fit scripts pass)."""
        h = self.overhead(n)
        if self.law != "floor":
            return t + h
        return max(t, h) if np.ndim(t) == 0 else np.maximum(t, h)


def check_launch(launch: str) -> None:
    if launch not in LAUNCH_MODES:
        raise HardwareError(f"collective launch: got {launch!r}; expected one of {LAUNCH_MODES}")


def launch_term(system, mode: str) -> LaunchTerm | None:
    """The system file's term for `mode` (None for the default one-process-per-GPU mode); a clear
    error when the file has none for a non-default mode (never a silent fallback)."""
    check_launch(mode)
    if mode == DEFAULT_LAUNCH:
        return None
    src = system.source or system.name
    spec = (system.collectives.get("launch") or {}).get(mode)
    if not spec:
        fitted_by = ("CUDA-graph nccl-tests runs (cosim.calibrate.graph_fit)" if mode == "graph"
                     else "single-process nccl-tests runs (cosim.calibrate.launch_fit)")
        raise HardwareError(f"{src}: collectives.launch.{mode}: missing; expected {{law, a, b}} fitted to {fitted_by}")
    fld = f"collectives.launch.{mode}"
    return LaunchTerm(spec["law"], parse_quantity(spec["a"], "time", src, f"{fld}.a", allow_zero=True),
                      parse_quantity(spec["b"], "time", src, f"{fld}.b", allow_zero=True))


def apply_launch(t: float, mode: str, n_local: int, system, level: str) -> tuple[float, tuple, str]:
    """(time, notes, what priced it) of a collective of model time t launched in `mode` by one process per node
    driving n_local GPUs. What priced it: "" (the model time stands: no term, a floor that does not bind, or a level
    without the term), ``launch floor <mode>`` (a binding floor) or ``+ launch <mode>`` (an additive term).
    The roofline (a bound) carries no harness term and says so."""
    term = launch_term(system, mode)
    # a process driving one GPU enqueues as one process per GPU does; a graph replaces the launch whatever n is
    if term is None or (n_local <= 1 and mode != "graph"):
        return t, (), ""
    if level != "analytical":
        return t, (f"launch {mode}: the harness term is an analytical-level fit; not added at the {level} level",), ""
    t2 = term.apply(t, n_local)
    if term.law == "floor":
        by = f"launch floor {mode}" if t2 > t else ""
    else:
        by = f"+ launch {mode}"
    if mode == "graph":
        return t2, (f"launch graph: {term.law} {term.overhead(n_local) * 1e6:.2f} us per collective (CUDA-graph node; "
                    f"{system.name} collectives.launch.graph)",), by
    return t2, (f"launch {mode}: {term.law} {term.a_s * 1e6:.2f} us + {term.b_s * 1e6:.3f} us x {n_local} GPUs "
                f"= {term.overhead(n_local) * 1e6:.2f} us ({system.name} collectives.launch)",), by
