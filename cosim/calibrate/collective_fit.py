"""Fit a system's collective efficiencies (the analytical level) to published nccl-tests points.

Two numbers per (link, algorithm), both read straight off measurements:
- ``bw``: large-message busbw over the link's per-direction bandwidth. For ring (and tree,
  and direct, which move the same bytes per device) busbw tends to B x bw; for NVLS the
  algorithm bandwidth tends to B x bw, so bw = busbw / (2 (n-1)/n) / B.
- ``latency``: the per-step alpha that reproduces the smallest published message,
  (t - base_latency - bandwidth term) / steps, with the algorithm's own step count. The
  small-message point does not say which algorithm NCCL picked, so every all-reduce
  algorithm is fitted to it; larger points are hold-outs.
Points: validation/published/*.csv (columns documented there).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from hwmodels.system import SystemSpec

__all__ = ["load_points", "fit_collective_efficiency", "ALLREDUCE_STEPS"]

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


def fit_collective_efficiency(system: SystemSpec, points: list[dict], gpu: str = "H100 SXM",
                              small_gpu: str = "H20") -> dict:
    """{algorithm: {"bw": fraction, "latency_s": seconds per step}} for the intra-node link."""
    link = system.link("intra_node")
    B, base = link.bandwidth_Bps, link.base_latency_s
    big = [p for p in points if p["gpu"] == gpu and p["busbw_GBps"] and p["collective"] == "allreduce"]
    n = big[0]["n_gpus"]
    ring = [p["busbw_GBps"] * 1e9 for p in big if p["algorithm"] == "ring"]
    nvls = [p["busbw_GBps"] * 1e9 for p in big if p["algorithm"] == "nvls"]
    eff = {"ring": sum(ring) / len(ring) / B, "nvls": sum(nvls) / len(nvls) / (2 * (n - 1) / n) / B}
    eff["tree"] = eff["direct"] = eff["ring"]  # same bytes per device on the same NVLink ports
    small = [p for p in points if p["gpu"] == small_gpu and p["time_us"]]
    ar = min((p for p in small if p["collective"] == "allreduce"), key=lambda p: p["size_bytes"])
    a2a = min((p for p in small if p["collective"] == "alltoall"), key=lambda p: p["size_bytes"])
    out = {}
    for alg, steps in ALLREDUCE_STEPS.items():
        S, t = ar["size_bytes"], ar["time_us"] * 1e-6
        bw_term = {"ring": 2 * (n - 1) / n * S, "tree": 2 * S, "nvls": S}[alg] / (B * eff[alg])
        out[alg] = {"bw": eff[alg], "latency_s": (t - base - bw_term) / steps(n)}
    S, t = a2a["size_bytes"], a2a["time_us"] * 1e-6
    out["direct"] = {"bw": eff["direct"],
                     "latency_s": (t - base - (n - 1) / n * S / (B * eff["direct"])) / (n - 1)}
    return out
