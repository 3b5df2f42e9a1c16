"""Host-side time of a serving step: what a software stack adds to the GPU time.

The cost models price what the GPU executes. A real engine also spends host time per
step, and for an 8B model on a Hopper GPU that time is of the same order as the GPU time:

- **eager launches**: a step that is not replayed from a CUDA graph issues its kernels one
  by one from Python; the GPU cannot run faster than the host issues them. The step takes
  max(GPU time, kernels x host time per kernel) — the two ends of
  `cosim.eager_host.eager_pipeline` (the bound is exact when one side dominates, which is
  the case for whole steps: a prefill of <= 1k tokens is host-bound, a long one GPU-bound).
  The host time per kernel is the calibration's `eager.cpu_per_kernel` (fitted on eager
  end-to-end runs of the same device, `cosim calibrate`), or given.
- **per-step overhead**: input preparation, sampling, scheduler bookkeeping, the
  synchronisation that returns tokens. Not derivable from the model; `prefill_step_s` and
  `decode_step_s` are fitted to measured step times (validation/serving_h200/compare.py
  fits them on one QPS run and predicts the other) or given.
- **first-shape cost**: eager PyTorch picks kernels (cuBLAS heuristics, SDPA dispatch) the
  first time it sees a shape; a prefill of a token count not run before in the process
  pays `new_shape_s` more (measured on the H200: 66-90 ms for a new prompt length vs
  23-26 ms for a repeated one). `warm_lengths` lists the lengths already run.

Which steps run in CUDA graphs is the stack's choice: vLLM and the H200 measurement engine
capture graphs for decode batches only (prompt lengths vary too much to capture), so an
implementation profile with `cuda_graphs` maps to decode in graphs, prefill eager.
"""

from __future__ import annotations

from cosim.eager_host import calibrated_cpu_per_kernel, cpu_per_kernel_origin
from cosim.serving.config import HostOverhead
from cosim.serving.steptime import StepBatch, StepCost
from workloads.io import InputError

__all__ = ["HostOverhead", "HostStepCost", "host_for"]


class HostStepCost:
    """A StepCostModel adding host time to an inner one (DeviceStepCost or a system's)."""

    def __init__(self, inner, host: HostOverhead, hw, level: str):
        self.inner, self.host = inner, host
        eager = not (host.prefill_graphs and host.decode_graphs)
        cpu = host.cpu_per_kernel_s
        if cpu is None and eager:
            cpu = calibrated_cpu_per_kernel(hw, level)
            if cpu is None:
                raise InputError(f"serve: host.cpu_per_kernel_s: eager steps need the host time per kernel "
                                 f"launch; {hw.name} at level {level} has no calibrated eager.cpu_per_kernel "
                                 f"(use level analytical on a calibrated device, or give cpu_per_kernel_s)")
            # a transferred calibration's figure is the sibling's host, not this device's (cpu_per_kernel_origin)
            self._cpu_src = f"eager.cpu_per_kernel {cpu * 1e6:.2f} us {cpu_per_kernel_origin(hw)}"
        else:
            self._cpu_src = f"cpu_per_kernel {cpu * 1e6:.2f} us ({host.source})" if cpu is not None else ""
        self.cpu = cpu or 0.0
        self._warm = set(host.warm_lengths)  # prefill token counts run before (first-shape cost paid)

    @property
    def notes(self) -> tuple:
        h = self.host
        mode = lambda g: "CUDA graph" if g else "eager (max(GPU, kernels x host per kernel))"
        own = (f"host: prefill steps {mode(h.prefill_graphs)}, decode steps {mode(h.decode_graphs)}"
               + (f"; {self._cpu_src}" if self._cpu_src else "")
               + f"; per-step host time prefill {h.prefill_step_s * 1e3:.3g} ms, decode {h.decode_step_s * 1e3:.3g} ms"
               + (f", new prefill shape +{h.new_shape_s * 1e3:.3g} ms" if h.new_shape_s else "")
               + f" ({h.source}); host time draws the replica's static power (the GPU waits, powered)")
        return tuple(self.inner.notes) + (own,)

    def stall_cost(self, seconds: float):
        """A stalled step (KV swap / offload fetch) costs what the device model says (time only for a given
        model without one): the host adds nothing."""
        stall = getattr(self.inner, "stall_cost", None)
        return stall(seconds) if stall is not None else StepCost(seconds, 0.0)

    @property
    def decode_window(self):
        return getattr(self.inner, "decode_window", None)

    @property
    def prompt_only(self) -> bool:
        return getattr(self.inner, "prompt_only", False)

    def decode_lengths(self, kv: tuple, prompts: tuple) -> tuple:
        return self.inner.decode_lengths(kv, prompts)

    def _idle_energy(self, seconds) -> float:
        """Host time beyond the GPU's: the replica's devices wait, powered, as in a stalled step
        (DeviceStepCost.stall_cost: its static power x seconds; 0 where the file gives none)."""
        return self.stall_cost(seconds).energy_j if seconds > 0 else 0.0

    def _with_host(self, c: StepCost, prefill: bool) -> StepCost:
        graphs = self.host.prefill_graphs if prefill else self.host.decode_graphs
        t = c.latency_s if graphs else max(c.latency_s, c.kernels * self.cpu)
        t += self.host.prefill_step_s if prefill else self.host.decode_step_s
        return StepCost(t, c.energy_j + self._idle_energy(t - c.latency_s), c.kernels)

    def step_cost(self, batch: StepBatch) -> StepCost:
        if not batch.prefill and not batch.decode_kv:
            return self.inner.step_cost(batch)
        c = self._with_host(self.inner.step_cost(batch), bool(batch.prefill))
        if batch.prefill and self.host.new_shape_s:
            n = sum(ch for ch, _, _ in batch.prefill)  # the step's token count is its GEMM shape
            if n not in self._warm:
                self._warm.add(n)
                c = StepCost(c.latency_s + self.host.new_shape_s,
                             c.energy_j + self._idle_energy(self.host.new_shape_s), c.kernels)
        return c


class _FastHostStepCost(HostStepCost):
    """With graph-replayed decode steps a decode run is the inner run plus a constant."""

    def decode_run(self, seqs: int, kv_sum: int, steps: int, prompts: tuple | None = None):
        lat, en = self.inner.decode_run(seqs, kv_sum, steps, prompts)
        return lat + self.host.decode_step_s, en + self._idle_energy(self.host.decode_step_s)


def host_for(inner, host: HostOverhead, hw, level: str):
    fast = host.decode_graphs and hasattr(inner, "decode_run")
    return (_FastHostStepCost if fast else HostStepCost)(inner, host, hw, level)
