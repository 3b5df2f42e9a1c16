"""Session 12: choose the ring LL line of ``dgx_h100`` on every SEEN single-node 8 x H100 all-reduce table, by the rules
committed before any candidate was scored (validation/published/collective_selection_session12.md).

Candidates (each replaces ``collectives.efficiency.intra_node.ring.ll`` only):
- ``C0``: the incumbent (bw 0.2312, 0.9116 us per step);
- ``C1``: bw = NCCL's single-node Hopper LL bus bandwidth, read from the printed 4 x H100 tuner row
  (protocol_crossovers.NCCL_TUNER_4XH100: Ring LL 94.0 GB/s algbw x 2(n-1)/n = 141 GB/s) over the 450 GB/s link; the
  per-step latency re-derived from the same 1 KB point the incumbent uses (8 x H20, DeepEP #303, 16.38 us);
- ``C2``: bw and per-step latency by relative least squares over the training tables' one-process-per-GPU rows
  1 KB - 1 MB (re-fitted in each leave-one-table-out fold);
- ``C3``: NCCL's own ring LL line: C1's bandwidth, NCCL's NVLink ring LL hardware latency (0.6 us per step,
  src/graph/tuning.cc hwLat) and a fixed term of NCCL's ring LL base latency minus the link's 3.6 us (the printed
  4-rank latency 10.2 us = base + 6 x 0.6 gives base 6.6 us, tuning.cc baseLat).

Every row is priced as its harness ran it (launch mode from the harness, a forced NCCL_ALGO honoured), analytical level,
no calibration. Nothing here writes a system file.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass

import numpy as np

from cosim.calibrate import collective_select_rules as rules
from cosim.calibrate.collective_fit import _fit_ring_simple
from cosim.calibrate.collective_holdout_s4b import S11_RING_LL, score_file, with_ring_ll
from cosim.calibrate.nccl_table import IN_RANGE, PUB
from cosim.calibrate.protocol_crossovers import NCCL_TUNER_4XH100, nccl_ring_ll_busbw
from hwmodels.collectives import collective_cost
from hwmodels.nccl import bus_factor
from hwmodels.system import SystemSpec, load_system

__all__ = ["CANDIDATES", "FITTED", "MACHINES", "TOL", "Row", "seen_rows", "nccl_ll_bw", "ll_line", "with_ll",
           "loto", "summarise", "choose", "INCUMBENT_LL", "yaml_ll", "bundled_ll", "H20_1KB_US", "NCCL_RING_LL_HWLAT_NVLINK_S"]

TOL = 0.15
CANDIDATES = ("C0", "C1", "C2", "C3")
FITTED = {"C0": 2, "C1": 1, "C2": 2, "C3": 0}  # parameters fitted on measurements (tie-break: fewer wins)
H20_1KB_US = 16.38  # the 1 KB all-reduce on 8 x H20 (DeepEP #303; nccl_tests_hopper_nvlink4.csv), the incumbent's
NCCL_RING_LL_HWLAT_NVLINK_S = 0.6e-6  # NVIDIA/nccl src/graph/tuning.cc hwLat[NVLINK][Ring][LL] [V]
FIT_MAX_BYTES = 1 << 20  # C2 fits rows 1 KB - 1 MB
# the line sessions 3-11 shipped (dgx_h100 / dgx_h200 ring.ll), pinned so that the comparison re-runs after the choice
INCUMBENT_LL = S11_RING_LL
with_ll = with_ring_ll  # a copy of a system with another ring LL line

# machine -> (file, sources); the rules' table list (collective_selection_session12.md), one machine each
MACHINES = {
    "triton_dist_57": ("allreduce_h100_curve_heldout.csv", ("triton_dist_57",)),
    "together_pod": ("nccl_8xh100_heldout_session4.csv",
                     ("together_pod_all_reduce_ring", "together_pod_all_reduce_nvls")),
    "together_slurm": ("nccl_8xh100_heldout_session4.csv",
                       ("together_slurm_all_reduce_ring", "together_slurm_all_reduce_nvls")),
    "azure_nd_h100_v5": ("nccl_8gpu_heldout_session4b.csv", ("azure_nd_h100_v5",)),
    "vp_g138": ("nccl_8xh100_heldout_session8.csv", ("vp_g138_all_reduce",)),
    "nccl_tests_290": ("nccl_8xh100_heldout_session8.csv", ("nccl_tests_290",)),
    "index_15601983362": ("nccl_8xh100_heldout_session8.csv", ("index_15601983362",)),
    "xxrjun_cluster01": ("nccl_8xh100_heldout_session9.csv",
                         tuple(f"xx_cnode3-{k:03d}_allreduce" for k in range(2, 12))),
    "dgxc_pool0_01806": ("nccl_8xh100_heldout_session11.csv", ("dgxc_pool0_01806_all_reduce",)),
    "vidur_h100_dgx": ("vidur_h100_dgx_allreduce.csv", ("vidur_h100_dgx",)),
}
VIDUR_MIN_BYTES = 1 << 20  # session 3: Vidur's small-size medians are rank skew, scored from 1 MB up


@dataclass(frozen=True)
class Row:
    machine: str
    source: str
    size: int
    launch: str
    forced: str  # the run's NCCL_ALGO ("" = the model chooses)
    published_s: float


def seen_rows() -> list[Row]:
    """Every scored row of the rules' ten tables (8 x H100 SXM, 8 ranks, all-reduce, 1 KB - 1 GB)."""
    out = []
    for machine, (name, sources) in MACHINES.items():
        if name.startswith("vidur"):
            with open(PUB / name, newline="") as f:
                out += [Row(machine, r["source"], int(r["size_bytes"]), "one_process_per_gpu", "",
                            float(r["time_median_us"]) * 1e-6)
                        for r in csv.DictReader(f) if int(r["n_gpus"]) == 8 and r["source"] in sources
                        and VIDUR_MIN_BYTES <= int(r["size_bytes"]) <= IN_RANGE[1]]
            continue
        got = [r for r in score_file(PUB / name) if r.source in sources]
        out += [Row(machine, r.source, r.size_bytes, r.launch, r.forced, r.published_us * 1e-6) for r in got
                if r.in_range and r.collective == "allreduce" and r.n_gpus == 8 and r.gpu == "H100 SXM"]
        missing = set(sources) - {r.source for r in got}
        if missing:
            raise ValueError(f"{name}: sources {sorted(missing)} not found; expected the rules' table list")
    return out


def nccl_ll_bw(link_Bps: float) -> float:
    """NCCL's single-node Hopper ring LL bus bandwidth as a fraction of the link: the printed 4 x H100 tuner row's algbw
    times the all-reduce bus factor at 4 ranks (94.0 x 1.5 = 141 GB/s), over the link's per-direction bandwidth."""
    return nccl_ring_ll_busbw() / link_Bps


def ll_line(cid: str, system: SystemSpec, train: list[Row] | None = None) -> dict:
    """{bw, latency_s, fixed_s} of candidate ``cid`` (C2 fitted on ``train``)."""
    lk = system.link("intra_node")
    B, base, n = lk.bandwidth_Bps, lk.base_latency_s, 8
    f, steps = bus_factor("allreduce", n), 2 * (n - 1)
    if cid == "C0":
        return dict(INCUMBENT_LL)
    if cid == "C1":
        bw = nccl_ll_bw(B)
        return {"bw": bw, "latency_s": (H20_1KB_US * 1e-6 - base - f * 1024 / (B * bw)) / steps, "fixed_s": 0.0}
    if cid == "C2":
        pts = [(n, r.size, r.published_s) for r in train or []
               if r.launch == "one_process_per_gpu" and r.size <= FIT_MAX_BYTES]
        fit = _fit_ring_simple(B, base, pts)
        return {"bw": float(fit["bw"]), "latency_s": float(fit["latency_s"]), "fixed_s": 0.0}
    if cid == "C3":
        tuner_lat = NCCL_TUNER_4XH100["ring/ll"][0] * 1e-6  # 4 ranks: base + 6 hwLat
        return {"bw": nccl_ll_bw(B), "latency_s": NCCL_RING_LL_HWLAT_NVLINK_S,
                "fixed_s": tuner_lat - 6 * NCCL_RING_LL_HWLAT_NVLINK_S - base}
    raise ValueError(f"candidate: got {cid!r}; expected one of {CANDIDATES}")


def price(rows: list[Row], system: SystemSpec) -> list[tuple[float, str]]:
    return [(c.time_s, c.algorithm) for c in (collective_cost("allreduce", r.size, 8, 1, system, "analytical",
                                                              r.forced or None, launch=r.launch) for r in rows)]


@dataclass(frozen=True)
class Fold:
    cid: str
    machine: str
    line: dict
    errors: tuple  # signed time errors, model / published - 1, per row of the held-out machine
    algorithms: tuple


def loto(rows: list[Row] | None = None, system: SystemSpec | None = None, cands=CANDIDATES) -> list[Fold]:
    """Every candidate scored on every machine; C2 fitted on the other machines' rows."""
    rows = rows if rows is not None else seen_rows()
    system = system or load_system("dgx_h100")
    out = []
    for cid in cands:
        for m in MACHINES:
            held = [r for r in rows if r.machine == m]
            line = ll_line(cid, system, [r for r in rows if r.machine != m])
            priced = price(held, with_ll(system, line))
            out.append(Fold(cid, m, line, tuple(t / r.published_s - 1 for (t, _), r in zip(priced, held)),
                            tuple(a for _, a in priced)))
    return out


def summarise(folds: list[Fold]) -> dict:
    """{cid: {S, worst_f, pooled_within, points, worst_p90, per: {machine: {within, points, f, median, p90}}}}
    (collective_select_rules.summarise)."""
    return rules.summarise(folds, TOL, worst_f=True)


def choose(res: dict, incumbent: str = "C0", margin_rows: int = 2, tie_pp: float = 1.0) -> tuple[str | None, dict]:
    """The rules' choice (collective_select_rules.choose): (chosen candidate or None, {cid: why}); ties go to
    fewer fitted parameters, then the lower worst-table p90, then CANDIDATES order."""
    return rules.choose(res, incumbent, list(res), FITTED, CANDIDATES, margin_rows, tie_pp, unit="table", tol=TOL)


def yaml_ll(line: dict) -> dict:
    """The system-file entry of a line, rounded as the files carry it (bw 4 decimals, times to 0.1 ns)."""
    out = {"bw": round(line["bw"], 4), "latency": f"{line['latency_s'] * 1e6:.4f} us"}
    if line.get("fixed_s"):
        out["fixed"] = f"{line['fixed_s'] * 1e6:.4f} us"
    return out


def bundled_ll(name: str = "dgx_h100") -> dict:
    """The ring LL entry a bundled system file carries now."""
    return dict(load_system(name).collectives["efficiency"]["intra_node"]["ring"]["ll"])
