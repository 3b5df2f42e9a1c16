"""Eager PyTorch's host launches: a step's time when the host issues every kernel itself (CUDA graphs off).

The analytical level prices each op as it runs inside a stream (its launch latency hidden, as in a CUDA graph).
Eager PyTorch model code issues each kernel from Python, one every `eager.cpu_per_kernel` of host time (fitted on
the host-bound eager decode steps of the calibration run: a property of that machine's CPU and software stack, not
of the GPU). When kernels are short the GPU waits for the host, so small-batch eager decode is host-bound; this
prices that pipeline for the reports (`simulate`) and the end-to-end validation (`cosim.validate`).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EagerHostStep", "eager_pipeline", "eager_host_step", "GPU_TIME_NOTE", "GENERATION_GPU_TIME_NOTE",
           "gpu_time_note"]

GENERATION_GPU_TIME_NOTE = ("CUDA graphs off: TTFT, TPOT and the total are GPU time (launch latency hidden, as in a "
                            "CUDA graph); eager PyTorch's host launches can make a step host-bound (cosim simulate "
                            "--level analytical prices one pass launched eagerly: totals.eager_host)")

# the note of a pass priced so (a report's and a sweep row's alike; the report's `eager launch:` line gives the step)
GPU_TIME_NOTE = ("CUDA graphs off: latency is GPU time (launch latency hidden, as in a CUDA graph); eager PyTorch's "
                 "host launches can make a pass host-bound (cosim simulate --level analytical: totals.eager_host)")


def gpu_time_note(trace, level: str, hw) -> str | None:
    """GPU_TIME_NOTE for a pass the analytical GPU model prices without CUDA graphs (a GPU with a calibration, its
    own or a sibling's), else None."""
    eager = level == "analytical" and not trace.meta.get("cuda_graphs") and getattr(hw, "kind", None) == "gpu"
    return GPU_TIME_NOTE if eager and (getattr(hw, "sections", None) or {}).get("analytical") else None


def _blocks(ops) -> list:
    """Op indices in launch order: each run of consecutive ops with the same repeat is one block played `repeat`
    times (a dense model: the embedding, the layer body x layers, the head; a model with dense and MoE layers plays
    each kind of layer as its own block, the same kernels in a slightly different order)."""
    seq, i = [], 0
    while i < len(ops):
        j = i
        while j + 1 < len(ops) and ops[j + 1].repeat == ops[i].repeat:
            j += 1
        seq += list(range(i, j + 1)) * max(1, int(ops[i].repeat))
        i = j + 1
    return seq


def eager_pipeline(ops, costs, cpu_per_kernel: float) -> float:
    """Step time (s) of eager PyTorch: the host issues one kernel every `cpu_per_kernel`; the GPU runs each kernel
    when both it is issued and the previous one is done. An op of k kernels (`costs[i].details["kernels"]`) is k
    equal kernels of its in-stream time. Short kernels behind a slow host leave the GPU idle even when the total GPU
    time exceeds the total host time."""
    host = gpu_end = 0.0
    for i in _blocks(ops):
        k = max(1, int(costs[i].details.get("kernels", 1)))
        g = costs[i].latency_s / k
        for _ in range(k):
            host += cpu_per_kernel
            gpu_end = max(gpu_end, host) + g
    return gpu_end


@dataclass(frozen=True)
class EagerHostStep:
    """One pass launched eagerly: its kernels, the host time per kernel, the host's issue time, the GPU's
    in-stream time (the report's total) and the pipelined step time."""
    kernels: int
    cpu_per_kernel_s: float
    host_issue_s: float
    gpu_s: float
    step_s: float

    @property
    def host_bound(self) -> bool:
        return self.host_issue_s > self.gpu_s

    def describe(self) -> str:
        """The report's `eager launch:` line."""
        from cosim.humanize import seconds

        return (f"{self.kernels} kernels at the calibration host's {seconds(self.cpu_per_kernel_s)} each "
                f"(eager.cpu_per_kernel: that machine's CPU, not the GPU): {seconds(self.step_s)} per pass, "
                f"{'host' if self.host_bound else 'GPU'}-bound (the table and total: {seconds(self.gpu_s)} of GPU "
                f"time)")


def eager_host_step(ops, costs, cpu_per_kernel: float) -> EagerHostStep:
    seq = _blocks(ops)
    kernels = sum(max(1, int(costs[i].details.get("kernels", 1))) for i in seq)
    gpu_s = sum(c.latency_s * max(1, int(op.repeat)) for op, c in zip(ops, costs))
    return EagerHostStep(kernels=kernels, cpu_per_kernel_s=cpu_per_kernel, host_issue_s=kernels * cpu_per_kernel,
                         gpu_s=gpu_s, step_s=eager_pipeline(ops, costs, cpu_per_kernel))
