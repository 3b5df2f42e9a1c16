"""Measure collectives on this node, one process per device (issue 17's nccl-tests-like sweep).

    torchrun --nproc_per_node 8 -m cosim.calibrate.collectives --out OUTDIR
    torchrun --nproc_per_node 2 -m cosim.calibrate.collectives --out OUTDIR --backend gloo --max-bytes 64K

For every collective (all-reduce, all-gather, reduce-scatter, all-to-all, send/recv between
rank pairs 2i <-> 2i+1) and every message size from --min-bytes to --max-bytes (powers of
two; sizes follow nccl-tests: the all-reduce buffer, the all-gather output, the
reduce-scatter input, each rank's all-to-all send buffer, the send/recv message), it times
--iters repetitions after --warmup ones and writes rank 0's rows to OUTDIR/collectives.csv
(time in us: mean / min / max over ranks of the per-iteration mean; algbw and busbw as
nccl-tests defines them) and OUTDIR/collectives_env.json (versions, devices, the NCCL
environment).

NVLink SHARP and multicast are switched off (NCCL_NVLS_ENABLE=0,
TORCH_SYMM_MEM_DISABLE_MULTICAST=1, NVSHMEM_DISABLE_NVLS=1) unless --allow-nvls: on shared
machines the multicast objects are a lent resource, and the ring/tree curves are what the
fit needs first. Nothing here imports cosim's models; only torch (and the pure-Python
hwmodels.nccl conventions) is needed.
"""

from __future__ import annotations

import argparse
import warnings
import csv
import os
import platform
import socket
import sys
import time

from cosim import jsonio
from hwmodels.nccl import bus_factor  # the one definition of nccl-tests' busbw factors (pure Python)

__all__ = ["main", "parse_size", "bus_factor", "COLLECTIVES"]

COLLECTIVES = ("allreduce", "allgather", "reducescatter", "alltoall", "sendrecv")
NO_MULTICAST = {"NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1", "NVSHMEM_DISABLE_NVLS": "1"}


def parse_size(text: str) -> int:
    """'1K' -> 1024, '1G' -> 2**30, '4096' -> 4096 (binary units, as nccl-tests' -b/-e)."""
    t = str(text).strip().upper().rstrip("B")
    mult = {"K": 2 ** 10, "M": 2 ** 20, "G": 2 ** 30}.get(t[-1:], 1)
    num = t[:-1] if t[-1:] in "KMG" else t
    try:
        value = int(float(num) * mult)
    except ValueError:
        raise SystemExit(f"error: size: got {text!r}; expected a byte count such as 1K, 64M or 1G") from None
    if value < 1:
        raise SystemExit(f"error: size: got {text!r}; expected at least 1 byte")
    return value


def _sizes(lo: int, hi: int, world: int, elem: int) -> list[int]:
    out, s = [], lo
    while s <= hi:
        # whole elements, divisible by the world size (all-gather / reduce-scatter / all-to-all)
        q = world * elem
        out.append(max(q, (s // q) * q))
        s *= 2
    return sorted(set(out))


def _op(torch, dist, kind, nbytes, world, rank, device, dtype):
    """A closure running one collective of nbytes (nccl-tests size convention)."""
    esize = torch.tensor([], dtype=dtype).element_size()
    n = nbytes // esize
    if kind == "allreduce":
        x = torch.ones(n, dtype=dtype, device=device)
        return lambda: dist.all_reduce(x)
    if kind == "allgather":
        x, y = torch.ones(n // world, dtype=dtype, device=device), torch.empty(n, dtype=dtype, device=device)
        return lambda: dist.all_gather_into_tensor(y, x)
    if kind == "reducescatter":
        x, y = torch.ones(n, dtype=dtype, device=device), torch.empty(n // world, dtype=dtype, device=device)
        return lambda: dist.reduce_scatter_tensor(y, x)
    if kind == "alltoall":
        x, y = torch.ones(n, dtype=dtype, device=device), torch.empty(n, dtype=dtype, device=device)
        return lambda: dist.all_to_all_single(y, x)
    peer = rank ^ 1
    x = torch.ones(n, dtype=dtype, device=device)
    if peer >= world:  # an odd rank out sits idle
        return lambda: None

    def sendrecv():
        if rank % 2 == 0:
            dist.send(x, peer)
            dist.recv(x, peer)
        else:
            dist.recv(x, peer)
            dist.send(x, peer)
    return sendrecv


def _time(torch, dist, fn, warmup, iters, cuda) -> float:
    """Mean seconds per iteration on this rank, after a barrier (one round trip for sendrecv)."""
    for _ in range(warmup):
        fn()
    if cuda:
        torch.cuda.synchronize()
    dist.barrier()
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    if cuda:
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / iters


def _env(torch, dist, backend, world, device) -> dict:
    info = {"hostname": socket.gethostname(), "python": sys.version.split()[0], "platform": platform.platform(),
            "torch": torch.__version__, "backend": backend, "world_size": world,
            "env": {k: v for k, v in os.environ.items() if k.startswith(("NCCL_", "TORCH_", "NVSHMEM_", "CUDA_"))},
            "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if device.type == "cuda":
        info["cuda"] = torch.version.cuda
        info["nccl"] = ".".join(map(str, torch.cuda.nccl.version()))
        info["devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


def run(args) -> int:
    if not args.allow_nvls:
        os.environ.update(NO_MULTICAST)  # before the process group exists
    import torch
    import torch.distributed as dist

    warnings.filterwarnings("ignore", category=FutureWarning)  # reduce_scatter_tensor's rename notice
    backend = args.backend or ("nccl" if torch.cuda.is_available() else "gloo")
    dist.init_process_group(backend)
    rank, world = dist.get_rank(), dist.get_world_size()
    cuda = backend == "nccl"
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    dtype = getattr(torch, args.dtype)
    esize = torch.tensor([], dtype=dtype).element_size()
    rows = []
    kinds = [k for k in args.collectives.split(",") if k]
    for kind in kinds:
        if kind not in COLLECTIVES:
            raise SystemExit(f"error: --collectives: got {kind!r}; expected some of {', '.join(COLLECTIVES)}")
        for nbytes in _sizes(parse_size(args.min_bytes), parse_size(args.max_bytes), world, esize):
            fn = _op(torch, dist, kind, nbytes, world, rank, device, dtype)
            t = _time(torch, dist, fn, args.warmup, args.iters, cuda)
            if kind == "sendrecv":
                t /= 2  # one iteration is a round trip: report one direction, as nccl-tests' sendrecv
            stats = torch.tensor([t, t, t], dtype=torch.float64, device=device)
            mean, lo, hi = stats.clone(), stats[1:2].clone(), stats[2:3].clone()
            dist.all_reduce(mean[:1])
            dist.all_reduce(lo, op=dist.ReduceOp.MIN)
            dist.all_reduce(hi, op=dist.ReduceOp.MAX)
            m = float(mean[0]) / world
            rows.append({"collective": kind, "size_bytes": nbytes, "ranks": world, "dtype": args.dtype,
                         "backend": backend, "time_us": m * 1e6, "time_min_us": float(lo[0]) * 1e6,
                         "time_max_us": float(hi[0]) * 1e6, "algbw_GBps": nbytes / m / 1e9,
                         "busbw_GBps": nbytes / m / 1e9 * bus_factor(kind, world), "iters": args.iters})
    if rank == 0:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "collectives.csv"), "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        with open(os.path.join(args.out, "collectives_env.json"), "w") as f:
            jsonio.dump(_env(torch, dist, backend, world, device), f, indent=1)
        print(f"wrote {len(rows)} rows to {os.path.join(args.out, 'collectives.csv')}")
    dist.barrier()
    dist.destroy_process_group()
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="cosim.calibrate.collectives", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="output directory (collectives.csv, collectives_env.json)")
    p.add_argument("--min-bytes", default="1K")
    p.add_argument("--max-bytes", default="1G")
    p.add_argument("--collectives", default=",".join(COLLECTIVES))
    p.add_argument("--dtype", default="bfloat16", help="torch dtype name (bfloat16, float32, ...)")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--backend", choices=("nccl", "gloo"), default=None, help="default: nccl with CUDA, else gloo")
    p.add_argument("--allow-nvls", action="store_true", help="leave NVLink SHARP / multicast enabled")
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
