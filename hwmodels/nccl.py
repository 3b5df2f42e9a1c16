"""nccl-tests conventions shared by the collective model (hwmodels.collectives) and the
measurement script (cosim.calibrate.collectives). Pure Python (standard library only): the script
runs on a bare GPU node."""

import re

__all__ = ["bus_factor", "launch_from_harness"]

_NGPUS = re.compile(r"\bnGpus\s+(\d+)")  # the nccl-tests header: "# nThread 1 nGpus 8 minBytes ..."
_G_FLAG = re.compile(r"(?:^|\s)(?:-g|--ngpus)\s*(\d+)\b")  # the command line: "... -g 8" (not -G: CUDA graphs)
_GRAPH = re.compile(r"\bgraph:\s*(\d+)|(?:^|\s)(?:-G|--cudagraph)\s*(\d+)\b")  # header "graph: 1" / "-G 1"
_ONE_RANK_PER_PROCESS = re.compile(r"torch\.distributed|torchrun|ProcessGroupNCCL")


def bus_factor(kind: str, n: int) -> float:
    """busbw / algbw as nccl-tests reports it (doc/PERFORMANCE.md): 2(n-1)/n for all-reduce,
    (n-1)/n for all-gather, reduce-scatter and all-to-all, 1 for send/recv."""
    if kind == "allreduce":
        return 2.0 * (n - 1) / n
    if kind in ("allgather", "reducescatter", "alltoall"):
        return (n - 1) / n
    return 1.0


def launch_from_harness(text: str) -> str | None:
    """The launch mode (hwmodels.launch) an nccl-tests header or command line states: GPUs per process
    (`nGpus N` in the header, `-g N` / `--ngpus N` on the command line) > 1 is ``single_process``, 1 is
    ``one_process_per_gpu``; a torch.distributed harness is one rank per process; CUDA-graph launches (header
    `graph: N` or `-G N` / `--cudagraph N`, N > 0) are ``graph`` whatever the process layout. None if the text
    says neither (never guessed)."""
    g = _GRAPH.search(text)
    if g and int(g.group(1) or g.group(2)) > 0:
        return "graph"
    m = _NGPUS.search(text) or _G_FLAG.search(text)
    if m:
        return "single_process" if int(m.group(1)) > 1 else "one_process_per_gpu"
    return "one_process_per_gpu" if _ONE_RANK_PER_PROCESS.search(text) else None
