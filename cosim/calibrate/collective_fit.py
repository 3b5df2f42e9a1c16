"""Fit a system's collective efficiencies (the analytical level) to published measurements.

NCCL runs each algorithm with a low-latency protocol (LL: small fixed cost, a fraction of the
link bandwidth) or a bulk one (Simple: near-full bandwidth, larger fixed cost) and takes the
faster. Each (algorithm, protocol) gets two numbers, read off measurements:
- ``bw``: a fraction of the link's per-direction bandwidth. Simple: large-message busbw / B
  (for NVLS, algbw / B = busbw / (2 (n-1)/n) / B). LL: from the slope between the smallest
  nccl-tests point and a mid-size point (1 MB).
- ``latency``: the per-step alpha that reproduces a point with the link's base latency:
  LL from the smallest message, Simple from a mid-size message (8 MB), with each
  algorithm's own step count.
Sources (validation/published/): nccl_tests_hopper_nvlink4.csv (nccl-tests figures),
vidur_h100_dgx_allreduce.csv (Vidur's measured 8 x H100 DGX all-reduce kernel times).
Points not used here are hold-outs (benchmarks/parallel_vs_peers.py).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from hwmodels.system import SystemSpec

__all__ = ["load_points", "load_vidur", "fit_collective_efficiency", "ALLREDUCE_STEPS", "FIT_SIZES"]

# steps of the alpha term for n ranks (hwmodels.collectives)
ALLREDUCE_STEPS = {"ring": lambda n: 2 * (n - 1), "tree": lambda n: 2 * math.ceil(math.log2(n)),
                   "nvls": lambda n: 2}


def load_points(path) -> list[dict]:
    rows = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            r["n_gpus"] = int(r["n_gpus"])
            r["size_bytes"] = float(r["size_bytes"])
            r["time_us"] = float(r["time_us"]) if r["time_us"] else None
            r["busbw_GBps"] = float(r["busbw_GBps"]) if r["busbw_GBps"] else None
            rows.append(r)
    return rows


def load_vidur(path, n_gpus: int = 8) -> dict:
    """{size_bytes: median seconds} of Vidur's measured all-reduce at n_gpus."""
    with open(path, newline="") as f:
        return {int(r["size_bytes"]): float(r["time_median_us"]) * 1e-6
                for r in csv.DictReader(f) if int(r["n_gpus"]) == n_gpus}


FIT_SIZES = {"ll": 1 << 20, "simple": 8 << 20}  # the Vidur points the fit uses; the rest are hold-outs


def fit_collective_efficiency(system: SystemSpec, points: list[dict], vidur: dict, gpu: str = "H100 SXM",
                              small_gpu: str = "H20") -> dict:
    """{algorithm: {protocol: {"bw", "latency_s"}}} (direct: one figure) for the intra-node link."""
    link = system.link("intra_node")
    B, base = link.bandwidth_Bps, link.base_latency_s
    big = [p for p in points if p["gpu"] == gpu and p["busbw_GBps"] and p["collective"] == "allreduce"]
    n = big[0]["n_gpus"]
    f = 2 * (n - 1) / n
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    simple_bw = {"ring": mean([p["busbw_GBps"] * 1e9 for p in big if p["algorithm"] == "ring"]) / B,
                 "nvls": mean([p["busbw_GBps"] * 1e9 for p in big if p["algorithm"] == "nvls"]) / f / B}
    small = [p for p in points if p["gpu"] == small_gpu and p["time_us"]]
    ar = min((p for p in small if p["collective"] == "allreduce"), key=lambda p: p["size_bytes"])
    a2a = min((p for p in small if p["collective"] == "alltoall"), key=lambda p: p["size_bytes"])
    S1, t1 = ar["size_bytes"], ar["time_us"] * 1e-6
    S2, t2 = FIT_SIZES["ll"], vidur[FIT_SIZES["ll"]]
    ll_bw = (f * S2 - f * S1) / B / (t2 - t1)  # slope of the LL line between the two points
    steps = {alg: fn(n) for alg, fn in ALLREDUCE_STEPS.items()}
    out = {"ring": {"ll": {"bw": ll_bw, "latency_s": (t1 - base - f * S1 / (B * ll_bw)) / steps["ring"]}},
           "tree": {"ll": {"bw": ll_bw, "latency_s": (t1 - base - 2 * S1 / (B * ll_bw)) / steps["tree"]}}}
    S3, t3 = FIT_SIZES["simple"], vidur[FIT_SIZES["simple"]]
    out["ring"]["simple"] = {"bw": simple_bw["ring"],
                             "latency_s": (t3 - base - f * S3 / (B * simple_bw["ring"])) / steps["ring"]}
    out["nvls"] = {"simple": {"bw": simple_bw["nvls"],
                              "latency_s": (t3 - base - S3 / (B * simple_bw["nvls"])) / steps["nvls"]}}
    S, t = a2a["size_bytes"], a2a["time_us"] * 1e-6
    out["direct"] = {"bw": simple_bw["ring"],
                     "latency_s": (t - base - (n - 1) / n * S / (B * simple_bw["ring"])) / (n - 1)}
    return out
