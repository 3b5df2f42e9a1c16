"""nccl-tests conventions shared by the collective model (hwmodels.collectives) and the
measurement script (cosim.calibrate.collectives). Pure Python, no imports: the script runs on
a bare GPU node."""

__all__ = ["bus_factor"]


def bus_factor(kind: str, n: int) -> float:
    """busbw / algbw as nccl-tests reports it (doc/PERFORMANCE.md): 2(n-1)/n for all-reduce,
    (n-1)/n for all-gather, reduce-scatter and all-to-all, 1 for send/recv."""
    if kind == "allreduce":
        return 2.0 * (n - 1) / n
    if kind in ("allgather", "reducescatter", "alltoall"):
        return (n - 1) / n
    return 1.0
