"""nccl-tests conventions shared by the collective model (hwmodels.collectives) and the
measurement script (cosim.calibrate.collectives). Pure Python (standard library only): the script
runs on a bare GPU node."""

import re

__all__ = ["bus_factor", "launch_from_harness", "nccl_type", "dtype_from_harness", "NVLS_REDUCE_TYPES",
           "NVLS_MIN_LOCAL_RANKS", "NCCL_TYPE_NAMES"]

_NGPUS = re.compile(r"\bnGpus\s+(\d+)")  # the nccl-tests header: "# nThread 1 nGpus 8 minBytes ..."
_G_FLAG = re.compile(r"(?:^|\s)(?:-g|--ngpus)\s*(\d+)\b")  # the command line: "... -g 8" (not -G: CUDA graphs)
_GRAPH = re.compile(r"\bgraph:\s*(\d+)|(?:^|\s)(?:-G|--cudagraph)\s*(\d+)\b")  # header "graph: 1" / "-G 1"
_ONE_RANK_PER_PROCESS = re.compile(r"torch\.distributed|torchrun|ProcessGroupNCCL")
_D_FLAG = re.compile(r"(?:^|\s)(?:-d|--datatype)\s+([A-Za-z0-9_]+)")  # nccl-tests "-d half"
_NOTE_DTYPE = re.compile(r"\bnccl_dtype\s+([A-Za-z0-9_]+)")  # a table note "nccl_dtype int8"

# ncclDataType_t as nccl-tests' -d flag and the NCCL API spell it -> one canonical element-type name (the project's
# format names where one exists: workloads.formats). NCCL >= 2.24 adds the 8-bit floats (ncclFloat8e4m3 / e5m2).
NCCL_TYPE_NAMES = {
    "int8": "int8", "char": "int8", "uint8": "uint8", "int32": "int32", "int": "int32", "uint32": "uint32",
    "int64": "int64", "uint64": "uint64", "half": "fp16", "float16": "fp16", "fp16": "fp16", "float": "fp32",
    "float32": "fp32", "fp32": "fp32", "double": "fp64", "float64": "fp64", "fp64": "fp64", "bfloat16": "bf16",
    "bf16": "bf16", "f8e4m3": "fp8_e4m3", "float8e4m3": "fp8_e4m3", "fp8_e4m3": "fp8_e4m3", "f8e5m2": "fp8_e5m2",
    "float8e5m2": "fp8_e5m2", "fp8_e5m2": "fp8_e5m2",
}
# [S] the element types NCCL's NVLS path can reduce with a sum (NVIDIA/nccl src/include/device.h ncclNvlsSupported:
# int32 / uint32 / int64 / uint64 / half / bfloat16 for sum and min-max, float / double for sum; every other type,
# the 8-bit ones included, has no NVLS reduction kernel and NCCL prices it on another algorithm). tf32 is an fp32
# tensor in memory (the collective moves fp32).
NVLS_REDUCE_TYPES = frozenset({"int32", "uint32", "int64", "uint64", "fp16", "bf16", "fp32", "tf32", "fp64"})
# [S] NCCL turns NVLS off for a single-node communicator of 2 GPUs or fewer (src/transport/nvls.cc ncclNvlsInit:
# "gpuCount <= 2" -> nvlsSupport 0), whatever the operation
NVLS_MIN_LOCAL_RANKS = 3


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


def nccl_type(name: str) -> str | None:
    """The canonical element type of an NCCL / nccl-tests type name (``half`` -> ``fp16``), None if not one."""
    return NCCL_TYPE_NAMES.get(name.strip().lower())


def dtype_from_harness(text: str) -> str | None:
    """The element type a table row states: a note's ``nccl_dtype X`` or the command line's ``-d X`` (nccl-tests), as
    its canonical name (nccl_type); None where the text states none (nccl-tests' default is float, never guessed)."""
    m = _NOTE_DTYPE.search(text) or _D_FLAG.search(text)
    if not m:
        return None
    t = nccl_type(m.group(1))
    if t is None:
        raise ValueError(f"element type: got {m.group(1)!r} in {text[:80]!r}; expected one of {sorted(NCCL_TYPE_NAMES)}")
    return t
