"""Eager PyTorch's host launches: a step's time when the host issues every kernel itself (CUDA graphs off).

The analytical level prices each op as it runs inside a stream (its launch latency hidden, as in a CUDA graph).
Eager PyTorch model code issues each kernel from Python, one every `eager.cpu_per_kernel` of host time (fitted on
the host-bound eager decode steps of the calibration run: a property of that machine's CPU and software stack, not
of the GPU). When kernels are short the GPU waits for the host, so small-batch eager decode is host-bound; this
prices that pipeline for the reports (`simulate`) and the end-to-end validation (`cosim.validate`).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EagerHostStep", "eager_pipeline", "eager_host_step", "launch_order", "calibrated_cpu_per_kernel",
           "cpu_per_kernel_origin", "GPU_TIME_NOTE", "GENERATION_GPU_TIME_NOTE", "gpu_time_note"]

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


def calibrated_cpu_per_kernel(hw, level: str) -> float | None:
    """The calibration's host time per eager kernel launch (s) of `hw` at `level` (its own calibration or a
    sibling's); None below the analytical level or without a calibration."""
    if level != "analytical":
        return None
    from hwmodels.gpu import params_for

    P = params_for(hw)
    return None if P is None or "eager.cpu_per_kernel" not in P.values else float(P["eager.cpu_per_kernel"])


def cpu_per_kernel_origin(hw) -> str:
    """Where `hw`'s calibrated eager.cpu_per_kernel comes from, for a report: its own calibration, or the sibling's
    it was transferred from (b200 from h100_sxm). Either way the figure is the calibration host's CPU, not the
    GPU's: a transfer rescales the GPU's parameters, never this one."""
    sec = (hw.sections or {}).get("analytical") or {}
    sibling = (sec.get("transfer") or {}).get("from")
    if sibling:
        return (f"transferred from {sibling}'s calibration, {hw.name} having none of its own (the {sibling} "
                f"calibration host's CPU, not the GPU)")
    return f"from the {hw.name} calibration (that machine's host CPU, not the GPU)"


def launch_order(ops) -> list:
    """Op indices in launch order. Ops before the first and after the last op with repeat > 1 run once; the span
    between them is the layer body, played L = max(repeat) times, an op of repeat r < L taking r of the L layers
    spread evenly (Gemma-2's alternating local and global attention, the MoE layers of a model whose first layers
    are dense, a cross-layer KV recipe's shared layers; which layers exactly the trace does not say)."""
    body = [i for i, op in enumerate(ops) if op.repeat > 1]
    if not body:
        return list(range(len(ops)))
    first, last = body[0], body[-1]
    L = max(int(ops[i].repeat) for i in body)
    seq = list(range(first))
    for layer in range(L):
        seq += [i for i in range(first, last + 1)
                if (layer + 1) * int(ops[i].repeat) // L > layer * int(ops[i].repeat) // L]
    return seq + list(range(last + 1, len(ops)))


def _kernels(cost) -> int:
    """Kernels the host launches for an op: work a recipe fused into another kernel (a dequantize inside the
    attention) launches none; an op priced without a count, one."""
    if cost.details.get("fused"):
        return 0
    return max(1, int(cost.details.get("kernels", 1)))


def eager_pipeline(ops, costs, cpu_per_kernel: float, order=None) -> float:
    """Step time (s) of eager PyTorch: the host issues one kernel every `cpu_per_kernel`; the GPU runs each kernel
    when both it is issued and the previous one is done. An op of k kernels (`costs[i].details["kernels"]`) is k
    equal kernels of its in-stream time, in `launch_order`. Short kernels behind a slow host leave the GPU idle
    even when the total GPU time exceeds the total host time."""
    host = gpu_end = fused = 0.0
    for i in launch_order(ops) if order is None else order:
        k = _kernels(costs[i])
        if k == 0:  # fused work runs inside a neighbouring kernel (a recipe places it before or after its host op):
            fused += costs[i].latency_s  # it lengthens the next kernel launched, or the stream's end
            continue
        g = costs[i].latency_s / k
        for _ in range(k):
            host += cpu_per_kernel
            gpu_end = max(gpu_end, host) + g + fused
            fused = 0.0
    return gpu_end + fused


@dataclass(frozen=True)
class EagerHostStep:
    """One pass launched eagerly: its kernels, the host time per kernel, the host's issue time, the GPU's
    in-stream time (the report's total), the pipelined step time, and what makes the kernel count a lower
    bound: ops priced without a kernel count (counted as one) and a mixture-of-experts router (Hugging Face's
    eager expert loop launches kernels per active expert; the trace has one op per expert projection)."""
    kernels: int
    cpu_per_kernel_s: float
    host_issue_s: float
    gpu_s: float
    step_s: float
    ops_counted_as_one_kernel: int = 0
    moe: bool = False

    @property
    def host_bound(self) -> bool:
        return self.host_issue_s > self.gpu_s

    def describe(self) -> str:
        """The report's `eager launch:` line."""
        from cosim.humanize import seconds

        caveats = ([f"{self.ops_counted_as_one_kernel} op(s) priced without a kernel count counted as one kernel"]
                   if self.ops_counted_as_one_kernel else []) + \
            (["MoE experts as the trace's ops (an eager expert loop launches more; unvalidated)"] if self.moe else [])
        return (f"{self.kernels} kernels at the calibration host's {seconds(self.cpu_per_kernel_s)} each "
                f"(eager.cpu_per_kernel: that machine's CPU, not the GPU): {seconds(self.step_s)} per pass "
                f"({seconds(self.host_issue_s)} of host issue, {seconds(self.gpu_s)} of GPU time: the table and "
                f"total)" + (f"; a lower bound: {'; '.join(caveats)}" if caveats else ""))


def eager_host_step(ops, costs, cpu_per_kernel: float) -> EagerHostStep:
    order = launch_order(ops)
    kernels = sum(_kernels(costs[i]) for i in order)
    return EagerHostStep(kernels=kernels, cpu_per_kernel_s=cpu_per_kernel, host_issue_s=kernels * cpu_per_kernel,
                         gpu_s=sum(c.latency_s * max(1, int(op.repeat)) for op, c in zip(ops, costs)),
                         step_s=eager_pipeline(ops, costs, cpu_per_kernel, order),
                         ops_counted_as_one_kernel=sum(1 for c in costs if "kernels" not in c.details),
                         moe=any(op.kind == "moe_router" for op in ops))
