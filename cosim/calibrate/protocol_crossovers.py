"""Where the model switches protocol (or NVLS chunk regime), next to where NCCL's own tuner switches.

The model prices one line per (algorithm, protocol[, regime]) and the fastest wins, so a crossover is the size
where two fitted lines meet. NCCL's tuner does the same with its own constants: time = latency + bytes / (1000 x
algbw) us per (algorithm, protocol) (src/graph/tuning.cc, ncclTopoGetAlgoTime), and prints the table with
NCCL_DEBUG_SUBSYS=TUNING. NCCL_TUNER_4XH100 is that table's ring all-reduce row as NCCL 2.29.2 printed it on a
4 x H100 NVSwitch slice (waynehacking8/nccl-collectives-bench @ec97f06, results/scaling_attributed/g4_Ring.log:
"AllReduce | ... | 10.2/ 94.0 | 25.4/ 220.8 | 28.8/ 240.0 |" for Ring LL / LL128 / Simple, us / GB/s) [V].
"""

from __future__ import annotations

from hwmodels.collectives import candidate_lines
from hwmodels.nccl import bus_factor
from hwmodels.system import SystemSpec

__all__ = ["NCCL_TUNER_4XH100", "model_crossovers", "tuner_crossovers", "nccl_ring_ll_busbw"]

NCCL_TUNER_4XH100 = {"ring/ll": (10.2, 94.0), "ring/ll128": (25.4, 220.8), "ring/simple": (28.8, 240.0)}


def nccl_ring_ll_busbw(table: dict = NCCL_TUNER_4XH100, ranks: int = 4) -> float:
    """NCCL's single-node Hopper ring LL bus bandwidth, bytes/s: the printed tuner row's algbw times the all-reduce bus
    factor of its rank count (94.0 GB/s x 2 (4-1) / 4 = 141 GB/s; tuning.cc caps ring LL at llMaxBws Hopper-N1 = 141
    GB/s, so the figure does not depend on the rank count). The ring LL line's bandwidth since session 12
    (validation/published/collective_selection_session12.md)."""
    return table["ring/ll"][1] * 1e9 * bus_factor("allreduce", ranks)


def _winner(system, kind, S, ranks, algorithm):
    return min(candidate_lines(kind, S, ranks, 1, system, "analytical", algorithm), key=lambda x: x[1])[0]


def model_crossovers(system: SystemSpec, kind: str, ranks: int, algorithm: str | None = None,
                     lo: float = 1024.0, hi: float = float(1 << 30)) -> list:
    """[(size_bytes, from_label, to_label)] where the model's fastest line changes between lo and hi (a scan at
    2^(1/8) steps, then bisection to 0.1 % in size)."""
    out, S, prev = [], lo, _winner(system, kind, lo, ranks, algorithm)
    while S < hi:
        nxt = min(S * 2 ** 0.125, hi)
        lab = _winner(system, kind, nxt, ranks, algorithm)
        if lab != prev:
            a, b = S, nxt
            while b / a > 1.001:
                m = (a * b) ** 0.5
                a, b = (m, b) if _winner(system, kind, m, ranks, algorithm) == prev else (a, m)
            out.append((b, prev, lab))
            prev = lab
        S = nxt
    return out


def tuner_crossovers(table: dict = NCCL_TUNER_4XH100) -> list:
    """[(size_bytes, from_label, to_label)] where NCCL's printed tuning model switches (lines in order of latency)."""
    labels = sorted(table, key=lambda k: table[k][0])
    out, cur = [], labels[0]
    for nxt in labels[1:]:
        (l1, b1), (l2, b2) = table[cur], table[nxt]
        if b2 > b1:  # the slower-to-start, faster line wins above lat + S / (1000 bw) equality
            out.append(((l2 - l1) / (1 / (1000 * b1) - 1 / (1000 * b2)), cur, nxt))
            cur = nxt
    return out
