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

Session 4 (``extra`` = nccl_fit_session4.csv, split pre-registered in
PREREGISTRATION_nccl_session4.md) replaces two single-point fits by least squares over the
fit sources, in relative error:
- ring/simple: per-step alpha and bw over every ring Simple point >= 8 MB at 2, 4 and 8 ranks
  (Vidur 8 - 64 MB, nccl-collectives-bench 2/4 ranks up to 8 GB, nccl #1455 2 / 4 GB busbw), so
  the bandwidth is the one of the 8 MB - 8 GB range, not the multi-GB asymptote alone.
- nvls/simple: a fixed per-collective latency, bw and the rank law bw x (1 - c / n), over the
  NVLS runs at 4 and 6 ranks (256 MB - 8 GB); the 8-rank 480 GB/s busbw (nccl #1455) is left out
  of the fit as its check.
- tree is not fitted: inside one node NCCL's tree is a chain (tuning.cc prices it with
  2 (nRanks - 1) intra-node steps, like the ring, and the tuner logs show chains), so it is not a
  separate, cheaper choice there.
Session 12 (validation/published/collective_selection_session12.md, chosen leave one table out over the ten seen single-node
8 x H100 tables): with ``extra``, ring/ll's bandwidth is NCCL's own Hopper LL bus bandwidth (141 GB/s, the printed
4 x H100 tuner row, protocol_crossovers.nccl_ring_ll_busbw) instead of the slope to Vidur's 1 MB median; its per-step
latency still reproduces the smallest nccl-tests point.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from hwmodels.system import SystemSpec
from cosim.calibrate.protocol_crossovers import nccl_ring_ll_busbw

__all__ = ["load_points", "load_vidur", "load_extra", "fit_collective_efficiency", "ALLREDUCE_STEPS", "FIT_SIZES",
           "SIMPLE_MIN_BYTES", "fit_check"]

SIMPLE_MIN_BYTES = 8 << 20  # ring points from here up are taken as the Simple protocol (Vidur's 8 MB fit point)

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


FIT_SIZES = {"ll": 1 << 20, "simple": 8 << 20, "ll128": 2 << 20}  # the Vidur points the fit uses; the rest are hold-outs


def load_extra(path) -> list[dict]:
    """The session-4 fit points: [{n, alg, S, t}] (seconds, bytes) of nccl_fit_session4.csv."""
    with open(path, newline="") as f:
        return [{"n": int(r["n_gpus"]), "alg": r["algorithm"], "S": float(r["size_bytes"]),
                 "t": float(r["time_us"]) * 1e-6} for r in csv.DictReader(f)]


def _fit_ring_simple(B: float, base: float, pts: list[tuple]) -> dict:
    """alpha (per step) and bw (fraction of B) minimising the relative error of
    t = base + 2(n-1) alpha + 2(n-1)/n S / (B bw) over (n, S, t) points."""
    A = np.array([[2 * (n - 1) / t, 2 * (n - 1) / n * S / B / t] for n, S, t in pts])
    y = np.array([(t - base) / t for n, S, t in pts])
    (alpha, inv_bw), *_ = np.linalg.lstsq(A, y, rcond=None)
    return {"bw": 1 / inv_bw, "latency_s": alpha}


def _fit_nvls(B: float, base: float, pts: list[tuple]) -> dict:
    """fixed latency, bw and rank_coeff c of t = base + fixed + S / (B bw (1 - c/n)), relative
    least squares; c on a 0.001 grid, (fixed, 1/bw) linear for each c."""
    best = None
    for c in np.arange(0.0, 1.5, 0.001):
        A = np.array([[1 / t, S / (B * (1 - c / n)) / t] for n, S, t in pts])
        y = np.array([(t - base) / t for n, S, t in pts])
        sol, *_ = np.linalg.lstsq(A, y, rcond=None)
        err = float(np.sum((A @ sol - y) ** 2))
        if best is None or err < best[0]:
            best = (err, sol, float(c))
    _, (fixed, inv_bw), c = best
    return {"bw": 1 / inv_bw, "latency_s": 0.0, "fixed_s": fixed, "rank_coeff": round(c, 3)}


def fit_collective_efficiency(system: SystemSpec, points: list[dict], vidur: dict, gpu: str = "H100 SXM",
                              small_gpu: str = "H20", extra: list[dict] | None = None) -> dict:
    """{algorithm: {protocol: {"bw", "latency_s"}}} (direct: one figure) for the intra-node link.
    With ``extra`` (load_extra), ring/simple and nvls/simple are the session-4 least-squares fits."""
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
    if extra is not None:
        ring = [(8, S, t) for S, t in vidur.items() if S >= SIMPLE_MIN_BYTES]
        ring += [(p["n"], p["S"], p["t"]) for p in extra if p["alg"] == "ring" and p["S"] >= SIMPLE_MIN_BYTES]
        ring += [(p["n_gpus"], p["size_bytes"], p["size_bytes"] * f / (p["busbw_GBps"] * 1e9))
                 for p in big if p["algorithm"] == "ring"]
        out["ring"]["simple"] = _fit_ring_simple(B, base, ring)
        # LL128: NCCL prices its bandwidth at 0.92 of Simple's (tuning.cc; the 4-rank proto sweep of
        # nccl-collectives-bench measures 313 / 340 = 0.92 at 256 MB); per-step latency from Vidur's
        # 2 MB point, where the measured curve leaves the LL line
        bw128 = 0.92 * out["ring"]["simple"]["bw"]
        S4, t4 = FIT_SIZES["ll128"], vidur[FIT_SIZES["ll128"]]
        out["ring"]["ll128"] = {"bw": bw128, "latency_s": (t4 - base - f * S4 / (B * bw128)) / steps["ring"]}
        # ring LL (session 12, validation/published/collective_selection_session12.md, chosen leave one table out): the
        # bandwidth is NCCL's Hopper LL bus bandwidth (141 GB/s, the printed tuner row; no longer the slope to Vidur's
        # torch.distributed 1 MB median), the per-step latency from the same 1 KB point as before
        bw_ll = nccl_ring_ll_busbw() / B
        out["ring"]["ll"] = {"bw": bw_ll, "latency_s": (t1 - base - f * S1 / (B * bw_ll)) / steps["ring"]}
        # NVLS keeps the link's own per-step alpha for its 2 steps (no fitted latency): base + 2 a
        nv = _fit_nvls(B, base + 2 * link.latency_s, [(p["n"], p["S"], p["t"]) for p in extra if p["alg"] == "nvls"])
        out["nvls"] = {"simple": {k: v for k, v in nv.items() if k != "latency_s"}}
        del out["tree"]
    S, t = a2a["size_bytes"], a2a["time_us"] * 1e-6
    out["direct"] = {"bw": simple_bw["ring"],
                     "latency_s": (t - base - (n - 1) / n * S / (B * simple_bw["ring"])) / (n - 1)}
    return out


def fit_check(system: SystemSpec, fit: dict) -> list[dict]:
    """One row per (algorithm, protocol): the system file's figures next to a fresh fit, and
    whether they agree (bw to 5e-4, times to 5 ns, rank_coeff exactly)."""
    from hwmodels.units import parse_quantity

    eff = system.collectives["efficiency"]["intra_node"]
    q = lambda d, k: parse_quantity(d[k], "time", system.name, k) if d.get(k) is not None else 0.0  # noqa: E731
    rows = []
    for alg, f in fit.items():
        pairs = [("", eff[alg], f)] if "bw" in f else [(p, eff[alg][p], g) for p, g in f.items()]
        for proto, file_fit, new in pairs:
            row = {"algorithm": alg, "protocol": proto, "bw_fit": float(new["bw"]), "bw_file": file_fit["bw"],
                   "latency_fit_us": new.get("latency_s", 0.0) * 1e6, "latency_file_us": q(file_fit, "latency") * 1e6,
                   "fixed_fit_us": new.get("fixed_s", 0.0) * 1e6, "fixed_file_us": q(file_fit, "fixed") * 1e6,
                   "rank_coeff_fit": new.get("rank_coeff", 0.0), "rank_coeff_file": file_fit.get("rank_coeff", 0.0)}
            lat_ok = "latency_s" not in new or abs(new["latency_s"] - q(file_fit, "latency")) < 5e-9
            row["agree"] = bool(abs(row["bw_fit"] - row["bw_file"]) < 5e-4 and lat_ok
                                and abs(new.get("fixed_s", 0.0) - q(file_fit, "fixed")) < 5e-9
                                and row["rank_coeff_fit"] == row["rank_coeff_file"])
            rows.append(row)
    return rows
