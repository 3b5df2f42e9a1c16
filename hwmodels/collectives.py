"""What a collective costs on a system: alpha-beta models per algorithm and link topology.

Conventions (those of nccl-tests, so results compare directly):
- ``nbytes`` is the full buffer: the all-reduce buffer, the all-gather *output*, the
  reduce-scatter *input*, the all-to-all send buffer of one rank, the send/recv message.
- ``busbw = algbw x factor`` with algbw = nbytes / time and factor 2(n-1)/n for all-reduce,
  (n-1)/n for all-gather, reduce-scatter and all-to-all, 1 for send/recv.
- A link's bandwidth B is per device, per direction; alpha is its per-step latency, plus one
  ``base_latency`` per collective.

Algorithms (time for n ranks, message S, per-step latency a):
- ring:  all-reduce 2(n-1) a + 2 (n-1)/n S/B; all-gather / reduce-scatter (n-1) a + (n-1)/n S/B
- tree (double binary tree, all-reduce): 2 ceil(log2 n) a + 2 S/B (pipelined reduce + broadcast)
- recursive doubling (all-reduce, n a power of two): log2(n) (a + S/B)
- nvls (in-switch reduction, all-reduce): 2 a + S/B: each device sends S up and receives S down
- direct (all-to-all on a switch or full mesh): (n-1) a + (n-1)/n S/B
- torus: rings per dimension on bidirectional links; all-to-all bounded by the bisection
- hierarchical (group spans nodes): reduce-scatter inside the node, all-reduce across nodes on
  S/local bytes (one NIC per device: `local` parallel rails), all-gather inside the node.

`level="roofline"` uses the link's datasheet bandwidth and NCCL's alpha constants;
`level="analytical"` scales bandwidth and alpha by the efficiencies fitted to published
measurements (system file `collectives.efficiency`). Where a link has a fitted table only its
algorithms compete (NCCL has no recursive doubling, say); a link without one, or a forced
algorithm without a fit, is priced at the roofline with a note, never silently. The fastest
applicable algorithm is chosen, as NCCL's tuner does, unless one is forced. A protocol may carry a second line for a
size regime (``<protocol>_<regime>``: NVLS shrinks its chunk for small messages, ``nvls/simple_small``); the faster
line is priced, so protocol and regime crossovers are where fitted lines meet (docs/multi-device.md 5.1.5).

Energy of a collective on a system (estimate_system_ops): the link energy + the device's static power x
the collective's time, since every device of the group stays powered while it waits for the transfer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from hwmodels.nccl import NVLS_MIN_LOCAL_RANKS, NVLS_REDUCE_TYPES, bus_factor, nccl_type  # noqa: F401  (bus_factor re-exported)
from hwmodels.cost import OpCost
from hwmodels.energy import static_power_w
from hwmodels.collective_calibration import CollectiveCalibration, calibration_of
from hwmodels.launch import DEFAULT_LAUNCH, apply_launch, check_launch
from hwmodels.spec import HardwareError
from hwmodels.system import LinkSpec, SystemSpec, is_regime_protocol
from hwmodels.units import parse_quantity
from workloads.formats import FormatError, get_format
from workloads.ops import COLLECTIVE_KINDS, Op

__all__ = ["CollectiveCost", "collective_cost", "element_type", "nvls_offered", "candidate_lines", "is_regime_line", "algorithm_of", "nvls_time", "estimate_collective", "bus_factor", "group_span",
           "with_static_power", "estimate_system_ops",
           "message_bytes", "ALGORITHMS"]

ALGORITHMS = ("ring", "tree", "recursive_doubling", "nvls", "direct", "torus", "hierarchical")
_NO_FIT = "no fitted efficiency"  # the note of a link / algorithm priced at the roofline at the analytical level


@dataclass(frozen=True)
class CollectiveCost:
    time_s: float
    algorithm: str
    scope: str  # link(s) used: intra_node, inter_node or intra_node+inter_node
    kind: str
    nbytes: float
    ranks: int
    bytes_sent: dict = field(default_factory=dict)  # scope -> bytes one device puts on that link
    energy_j: float = 0.0  # one device's link energy
    notes: tuple = ()
    launch: str = DEFAULT_LAUNCH  # one_process_per_gpu | single_process | graph (hwmodels.launch)
    calibration: str = "fitted model"  # what priced it: "calibrated from <source> [status]" or the model's own
    # label: "fitted model", "roofline alpha-beta", "launch floor <mode>" (a binding floor), "... + launch <mode>"

    @property
    def algbw(self) -> float:
        return self.nbytes / self.time_s if self.time_s else math.inf

    @property
    def busbw(self) -> float:
        return self.algbw * bus_factor(self.kind, self.ranks)


def message_bytes(op: Op) -> float:
    """The nccl-tests buffer size of a collective op (see module docstring)."""
    if op.kind not in COLLECTIVE_KINDS:
        raise HardwareError(f"op {op.name!r}: kind {op.kind!r} is not a collective")
    if op.kind == "allgather":
        return op.outputs[0].nbytes
    return op.inputs[0].nbytes


def group_span(system: SystemSpec, ranks: int, stride: int) -> tuple[int, int]:
    """(members per node, nodes spanned) of a group of `ranks` devices `stride` apart in the
    device order (tensor parallel innermost, as Megatron and vLLM place ranks)."""
    g = system.devices_per_node
    local = 1 if stride >= g else max(1, min(ranks, g // stride))
    nodes = math.ceil(ranks / local)
    if nodes > system.nodes:
        raise HardwareError(f"{system.source or system.name}: a collective over {ranks} ranks at stride "
                            f"{stride} spans {nodes} nodes; the system has {system.nodes} "
                            f"(override 'nodes' for a larger cluster)")
    return local, nodes


# ---------------------------------------------------------------------------- link parameters

@dataclass(frozen=True)
class _Link:
    scope: str
    bw: float  # bytes/s per device per direction (after efficiency)
    alpha: float  # per step
    base: float
    energy: float | None
    isr: bool = False  # the switch reduces in-network (NVLS / SHARP)
    note: str = ""
    protocol: str = ""  # "" (one figure for all sizes), or ll / ll128 / simple
    fixed: float = 0.0  # per-collective latency of this (algorithm, protocol), independent of ranks (fitted)
    rank_coeff: float = 0.0  # NVLS: bandwidth x (1 - rank_coeff / n), fitted to 2/4/6/8-rank runs
    group_coeff: float = 0.0  # ring: bandwidth x (1 - g / n) / (1 - g / devices_per_node): the line is the full node's


def _params(system: SystemSpec, scope: str, alg: str, level: str, kind: str = "") -> list:
    """One _Link per protocol the fit lists for (scope, alg) — NCCL runs each algorithm with a
    low-latency (LL) or a bulk (Simple) protocol and picks the faster; the roofline has one. A line may carry an
    ``alltoall`` entry of its own, which prices all-to-all (session 12b: the direct line)."""
    lk: LinkSpec = system.link(scope)
    mk = lambda bw, alpha, proto="", note="", fixed=0.0, rc=0.0, gc=0.0: _Link(  # noqa: E731
        scope, bw, alpha, lk.base_latency_s, lk.energy_per_byte_j, lk.in_switch_reduction, note, proto, fixed, rc, gc)
    if level != "analytical":
        return [mk(lk.bandwidth_Bps, lk.latency_s)]
    fit = ((system.collectives.get("efficiency") or {}).get(scope) or {}).get(alg)
    if not fit:
        return [mk(lk.bandwidth_Bps, lk.latency_s, note=f"{system.name}: {_NO_FIT} for {scope}/{alg}; "
                                                        f"speed-of-light alpha-beta used (roofline)")]
    if isinstance(fit.get("alltoall"), dict):
        fit = fit["alltoall"] if kind == "alltoall" else {k: v for k, v in fit.items() if k != "alltoall"}
    per_proto = [("", fit)] if "bw" in fit else sorted(fit.items())
    out = []
    for proto, f in per_proto:
        alpha = lk.latency_s
        if f.get("latency") is not None:
            alpha = parse_quantity(f["latency"], "time", system.source, f"collectives.efficiency.{scope}.{alg}.latency")
        fixed = 0.0
        if f.get("fixed") is not None:
            fixed = parse_quantity(f["fixed"], "time", system.source, f"collectives.efficiency.{scope}.{alg}.fixed")
        out.append(mk(lk.bandwidth_Bps * float(f["bw"]), alpha, proto, fixed=fixed, rc=float(f.get("rank_coeff", 0.0)),
                      gc=float(f.get("group_coeff", 0.0))))
    return out


# ---------------------------------------------------------------------------- flat algorithms
# Each returns (time_s, bytes one device sends) on one link level, or None if not applicable.

def _flat(kind: str, alg: str, n: int, S: float, L: _Link, topo: str, dims: tuple, per_node: int):
    if n == 1:
        return 0.0, 0.0
    a, B = L.alpha, L.bw
    if topo == "mesh":
        # a full mesh: one link per peer; a sub-group of n of the node's devices uses n-1 links
        B = B * (n - 1) / max(per_node - 1, 1)
        if alg == "ring":  # a ring uses a single link to its neighbour
            B = L.bw / max(per_node - 1, 1)
    if topo == "ring":
        B = B / 2 if alg != "ring" else B  # a ring algorithm runs both directions; others cross single links
    if topo in ("torus2d", "torus3d"):
        return _torus(kind, n, S, L, dims) if alg == "torus" else None
    if alg == "torus":
        return None
    f = (n - 1) / n
    if alg == "ring" and L.group_coeff and topo == "switch" and per_node > 1:
        # a ring line fitted on the full node, run by a smaller group of it (docs/multi-device.md 5.1.13)
        B = B * (1 - L.group_coeff / n) / (1 - L.group_coeff / per_node)
    if kind == "allreduce":
        if alg == "ring":
            return 2 * (n - 1) * a + 2 * f * S / B, 2 * f * S
        if alg == "tree" and topo in ("switch",):
            return 2 * math.ceil(math.log2(n)) * a + 2 * S / B, 2 * S
        if alg == "recursive_doubling" and topo == "switch" and n & (n - 1) == 0:
            steps = int(math.log2(n))
            return steps * (a + S / B), steps * S
        if alg == "nvls" and topo == "switch" and L.isr:
            # in-switch reduction: each device sends S up and receives S down; the achieved rate grows
            # with the group (fitted rank_coeff, docs/multi-device.md 5.1.2)
            return (nvls_time(S, n, a, B, L.rank_coeff), S) if B * (1 - L.rank_coeff / n) > 0 else None
        if alg == "direct" and topo == "mesh":
            return 2 * a + 2 * f * S / B, 2 * f * S
        return None
    if kind in ("allgather", "reducescatter"):
        if alg == "ring":
            return (n - 1) * a + f * S / B, f * S
        if alg == "direct" and topo == "mesh":
            return a + f * S / B, f * S
        return None
    if kind == "alltoall":
        if alg == "direct" and topo in ("switch", "mesh"):
            return (n - 1) * a + f * S / B, f * S
        if alg == "ring" and topo == "ring":
            # bisection bound of a bidirectional ring: n S / 4 bytes cross 2 links per direction
            return (n - 1) * a + n * S / (8 * (B / 2)), f * S * n / 4
        return None
    if kind == "sendrecv":
        if alg == "direct":
            return a + S / (L.bw / max(per_node - 1, 1) if topo == "mesh" else B), S
        return None
    raise HardwareError(f"collective kind {kind!r}: expected one of {COLLECTIVE_KINDS}")


def nvls_time(S, n: int, alpha: float, bw_Bps, rank_coeff: float):
    """In-switch reduction over n ranks (before the line's fixed and base terms): 2 alpha + S / (bw (1 - c / n)).
    Numbers or numpy arrays (cosim.calibrate.nvls_regime_fit prices a grid of lines with it)."""
    return 2 * alpha + S / (bw_Bps * (1 - rank_coeff / n))


def _torus(kind: str, n: int, S: float, L: _Link, dims: tuple):
    """Rings along torus dimensions on bidirectional links (each of the 2 x len(dims) ports gets
    B / (2 len(dims)) per direction). A group of n <= dims[0] rides one dimension; a larger group
    spans dims[0] x ceil(n / dims[0]) and reduces one dimension after the other."""
    a, B = L.alpha, L.bw
    port = B / (2 * len(dims))
    ring_bw = 2 * port  # a bidirectional ring in one dimension
    x = min(n, dims[0])
    y = math.ceil(n / x)
    fx, fy = (x - 1) / x, (y - 1) / y
    if kind == "allreduce":
        t = 2 * ((x - 1) + (y - 1)) * a + 2 * (fx * S + fy * S / x) / ring_bw
        return t, 2 * (fx * S + fy * S / x)
    if kind in ("allgather", "reducescatter"):
        return ((x - 1) + (y - 1)) * a + (fx * S + fy * S / x) / ring_bw, fx * S + fy * S / x
    if kind == "alltoall":
        # bisection: n S / 4 bytes cross the cut; a 2-D cut has 2 y links per direction (wrap-around)
        cut_links = 2 * (y if y > 1 else 1)
        return (x + y - 2) * a + n * S / 4 / (cut_links * port), (n - 1) / n * S
    if kind == "sendrecv":
        return a + S / port, S
    return None


def _hierarchical(kind, S, local, nodes, intra: _Link, inter: _Link, topo_intra, dims, per_node):
    """Two-level collective: node-local phase on the intra link, cross-node phase on the inter
    link (`local` NICs in parallel, each carrying S/local)."""
    def best(k, n, s, L, topo):
        algs = ("ring", "tree", "direct", "torus") if topo != "switch" or L.scope == "inter_node" else ("ring", "direct")
        res = [r for r in (_flat(k, alg, n, s, L, topo, dims, per_node) for alg in algs) if r]
        return min(res) if res else None

    if kind == "allreduce":
        rs = best("reducescatter", local, S, intra, topo_intra)
        ar = best("allreduce", nodes, S / local, inter, "switch")
        ag = best("allgather", local, S, intra, topo_intra)
        return rs[0] + ar[0] + ag[0], {"intra_node": rs[1] + ag[1], "inter_node": ar[1]}
    if kind in ("allgather", "reducescatter"):
        a1 = best(kind, local, S, intra, topo_intra)
        a2 = best(kind, nodes, S / local, inter, "switch")
        return a1[0] + a2[0], {"intra_node": a1[1], "inter_node": a2[1]}
    if kind == "alltoall":
        n = local * nodes
        t_intra = (local - 1) * intra.alpha + S * (local - 1) / n / intra.bw
        t_inter = (nodes - 1) * inter.alpha + S * (n - local) / n / inter.bw
        return max(t_intra, t_inter), {"intra_node": S * (local - 1) / n, "inter_node": S * (n - local) / n}
    return None


# ---------------------------------------------------------------------------- entry points

def collective_cost(kind: str, nbytes: float, ranks: int, stride: int, system: SystemSpec,
                    level: str = "roofline", algorithm: str | None = None,
                    launch: str = DEFAULT_LAUNCH, calibration: CollectiveCalibration | None = None,
                    dtype: str | None = None) -> CollectiveCost:
    """Time, chosen algorithm, bytes and energy of one collective on `system`. `dtype` is the element type (a format
    name, workloads.formats, or an NCCL / nccl-tests type name: ``bf16``, ``half``, ``int8``, ``fp8_e4m3``); None
    (the default) prices as a 16-bit float, as before session 12b. A reduction of a type NCCL's NVLS cannot reduce
    (every 8-bit and block format) is not offered NVLS, and a group of 2 or fewer ranks in a node never is (nvls_offered). `launch` is how the
    ranks are driven (hwmodels.launch): one process per GPU (default, serving engines) or one process
    driving the node's GPUs (nccl-tests -g N), which adds the system file's fitted harness term.
    `calibration` (default: the system file's ``collectives.calibration``, if any) is one machine's
    measured small-message latency and floor (hwmodels.collective_calibration)."""
    check_launch(launch)
    if kind not in COLLECTIVE_KINDS:
        raise HardwareError(f"collective kind: got {kind!r}; expected one of {COLLECTIVE_KINDS}")
    if algorithm is not None and algorithm not in ALGORITHMS:
        raise HardwareError(f"collective algorithm: got {algorithm!r}; expected one of {ALGORITHMS}")
    if ranks < 1 or nbytes < 0:
        raise HardwareError(f"collective {kind}: got ranks={ranks}, bytes={nbytes}; expected ranks >= 1, bytes >= 0")
    etype = element_type(dtype)
    if ranks == 1:
        return CollectiveCost(0.0, "none", "none", kind, nbytes, 1, launch=launch, calibration="none (one rank)")
    if kind == "sendrecv":
        local, nodes = (1, 2) if stride >= system.devices_per_node else (2, 1)
        if nodes > system.nodes:
            raise HardwareError(f"{system.source or system.name}: a send/recv between nodes needs "
                                f"at least 2 nodes; the system has {system.nodes}")
    else:
        local, nodes = group_span(system, ranks, stride)
    nvls_ok, nvls_notes = nvls_offered(kind, etype, local, system)
    candidates = _candidates(kind, nbytes, ranks, local, nodes, system, level, algorithm, nvls_ok)
    if algorithm == "nvls" and not nvls_ok:
        raise HardwareError(f"{system.name}: algorithm 'nvls' forced for {kind} over {ranks} ranks, but "
                            f"{nvls_notes[0] if nvls_notes else 'NVLS is not offered'}")
    cal = calibration if calibration is not None else calibration_of(system)
    cal, cal_notes = _usable_calibration(cal, launch, level, system)
    if cal is not None and candidates:
        # a machine's calibration of an algorithm carries its own small-message law: that algorithm's regime lines
        # (e.g. nvls/simple_small) would count the small-message regime twice, so they step aside
        candidates = [c for c in candidates if not (is_regime_line(c[1]) and algorithm_of(c[1]) in cal.latency_s)]
        if any(algorithm_of(c[1]) in cal.latency_s for c in candidates):  # the zero-byte pass only when needed
            zero = _intercepts(kind, ranks, local, nodes, system, level, algorithm, nvls_ok)
            candidates = [(cal.adjust(c[0], zero[c[1]], nbytes, algorithm_of(c[1])),) + tuple(c[1:])
                          for c in candidates]
    if not candidates:
        raise HardwareError(f"{system.name}: no algorithm "
                            f"{'named ' + repr(algorithm) + ' ' if algorithm else ''}applies to {kind} over "
                            f"{ranks} ranks on topology {system.link('intra_node').topology}")
    t, alg, scope, sent, notes = min(candidates, key=lambda c: c[0])
    notes += nvls_notes
    # a floor or a constant shift keeps the algorithm order, so the choice above stands
    floored = cal is not None and cal.floor_s is not None and local > 1
    if floored:
        t = cal.apply_floor(t)  # the machine's measured floor stands in for the launch term
        launch_notes, launch_by = (f"floor {cal.floor_s * 1e6:.2f} us {cal.provenance}",), ""
    else:
        t, launch_notes, launch_by = apply_launch(t, launch, local, system, level)
    # the row says "calibrated" only where the calibration priced it: its latency law for the
    # winning algorithm, or its floor in place of the launch term; else what of the model priced it
    calibrated = cal is not None and (floored or algorithm_of(alg) in cal.latency_s)
    notes += cal_notes + launch_notes
    energy, missing = 0.0, []
    for sc, b in sent.items():
        e = system.link(sc).energy_per_byte_j
        if e is None:
            missing.append(sc)
        else:
            energy += b * e
    if missing:
        notes += (f"{system.name}: link {', '.join(missing)} has no energy figure; its transfer energy is not counted",)
    return CollectiveCost(t, alg, scope, kind, nbytes, ranks, dict(sent), energy, notes, launch,
                          cal.provenance if calibrated else _priced_by(level, notes, launch_by))


def _priced_by(level: str, notes: tuple, launch_by: str) -> str:
    """The label of an uncalibrated row: the fitted model or the alpha-beta roofline (also where a link has no fitted
    efficiency), and the launch term where it moved the time (a binding floor replaces the model time)."""
    if launch_by.startswith("launch floor"):
        return launch_by
    model = "roofline alpha-beta" if level != "analytical" or any(_NO_FIT in n for n in notes) else "fitted model"
    return f"{model} {launch_by}" if launch_by else model


def candidate_lines(kind: str, nbytes: float, ranks: int, stride: int, system: SystemSpec,
                    level: str = "analytical", algorithm: str | None = None, regimes: bool = True,
                    dtype: str | None = None) -> list:
    """[(label, time_s, intercept_s)] of every (algorithm, protocol) the model weighs for this collective,
    before any calibration or launch term: the intercept is the same line's time at 0 bytes (what a
    calibration replaces, hwmodels.collective_calibration). ``regimes=False`` leaves out the size-regime lines
    (``<protocol>_<regime>``), as a calibrated algorithm is priced."""
    local, nodes = group_span(system, ranks, stride)
    ok = nvls_offered(kind, element_type(dtype), local, system)[0]
    zero = _intercepts(kind, ranks, local, nodes, system, level, algorithm, ok)
    return [(c[1], c[0], zero[c[1]]) for c in _candidates(kind, nbytes, ranks, local, nodes, system, level, algorithm, ok)
            if regimes or not is_regime_line(c[1])]


def is_regime_line(label: str) -> bool:
    """A size-regime line of a protocol (``nvls/simple_small``), not the protocol's base line."""
    return is_regime_protocol(label.partition("/")[2])


def algorithm_of(label: str) -> str:
    """The algorithm of a candidate label (``nvls/simple_small`` -> ``nvls``)."""
    return label.partition("/")[0]


def _intercepts(kind, ranks, local, nodes, system, level, algorithm, nvls_ok: bool = True) -> dict:
    """label -> each candidate line's time at 0 bytes (the intercept a calibration replaces)."""
    return {c[1]: c[0] for c in _candidates(kind, 0.0, ranks, local, nodes, system, level, algorithm, nvls_ok)}


def element_type(dtype: str | None) -> str | None:
    """The canonical element type of `dtype` (an NCCL / nccl-tests name or a workloads.formats name), None for None."""
    if dtype is None:
        return None
    t = nccl_type(dtype)
    if t is not None:
        return t
    try:
        return get_format(dtype).name
    except FormatError as e:  # an unknown (or malformed) format name: one clear error; anything else is a bug, raised
        raise HardwareError(f"collective dtype: got {dtype!r}; expected a format name (workloads.formats) or an NCCL "
                            f"type name (half, bfloat16, float, double, int8, uint8, int32, ...)") from e


def nvls_offered(kind: str, etype: str | None, local: int, system: SystemSpec) -> tuple[bool, tuple]:
    """(whether NVLS may price this collective, notes). Two NCCL facts [S]: a single-node communicator of 2 GPUs or
    fewer never sets NVLS up (src/transport/nvls.cc ncclNvlsInit), and NVLS reduces only the types of
    hwmodels.nccl.NVLS_REDUCE_TYPES (src/include/device.h ncclNvlsSupported), so an all-reduce or reduce-scatter of any
    other type (int8, fp8, 4/6-bit and block formats) goes to another algorithm. A note says so where the system's
    switch reduces in-network (where NVLS would otherwise compete)."""
    # the model prices NVLS for all-reduce only (_flat): the note goes where an NVLS line would otherwise compete
    noted = kind == "allreduce" and system.link("intra_node").in_switch_reduction
    if 1 < local < NVLS_MIN_LOCAL_RANKS:
        return False, (f"{system.name}: NVLS not offered to a group of {local} ranks in a node (NCCL sets NVLS up only "
                       f"for {NVLS_MIN_LOCAL_RANKS} or more GPUs: src/transport/nvls.cc ncclNvlsInit)",) if noted else ()
    if kind in ("allreduce", "reducescatter") and etype is not None and etype not in NVLS_REDUCE_TYPES:
        return False, (f"{system.name}: NVLS not offered to an all-reduce of {etype}: NCCL's NVLS reduces only "
                       f"{'/'.join(sorted(NVLS_REDUCE_TYPES - {'tf32'}))} (src/include/device.h ncclNvlsSupported); "
                       f"priced on the other algorithms",) if noted else ()
    return True, ()


def _usable_calibration(cal, launch, level, system):
    """(calibration or None, notes): a calibration applies at the analytical level to collectives
    priced in the launch mode it was measured in; otherwise the model prices it, and a note says why."""
    if cal is None:
        return None, ()
    if level != "analytical":
        return None, (f"{system.name}: collective calibration ({cal.source}) is an analytical-level term; "
                      f"not applied at the {level} level",)
    if cal.launch != launch:
        return None, (f"{system.name}: collective calibration measured in launch {cal.launch}, this collective "
                      f"is priced in launch {launch}: not applied",)
    return cal, ()


def _candidates(kind, S, ranks, local, nodes, system, level, forced, nvls_ok: bool = True):
    intra_spec = system.link("intra_node")
    topo, dims, per_node = intra_spec.topology, intra_spec.dims, system.devices_per_node
    out = []
    if nodes == 1 or local == 1:
        scope = "intra_node" if nodes == 1 else "inter_node"
        t_topo = topo if scope == "intra_node" else "switch"
        fitted = ((system.collectives.get("efficiency") or {}).get(scope) or {}) if level == "analytical" else {}
        for alg in ("ring", "tree", "recursive_doubling", "nvls", "direct", "torus"):
            if forced and alg != forced:
                continue
            if fitted and alg not in fitted and not forced:
                continue  # with a fitted table, only the algorithms measured (what the library runs) compete
            if alg == "nvls" and not nvls_ok:
                continue  # NCCL offers no NVLS here (nvls_offered: group size or element type)
            for L in _params(system, scope, alg, level, kind):
                r = _flat(kind, alg, ranks, S, L, t_topo, dims, per_node)
                if r:
                    label = f"{alg}/{L.protocol}" if L.protocol else alg
                    out.append((L.base + L.fixed + r[0], label, scope, {scope: r[1]}, (L.note,) if L.note else ()))
        return out
    if forced and forced != "hierarchical":
        return out
    for intra in _params(system, "intra_node", "ring", level):
        for inter in _params(system, "inter_node", "ring", level):
            r = _hierarchical(kind, S, local, nodes, intra, inter, topo, dims, per_node)
            if r:
                notes = tuple(n for n in (intra.note, inter.note) if n)
                out.append((intra.base + r[0], "hierarchical", "intra_node+inter_node", r[1], notes))
    return out


def _op_format(op: Op) -> str | None:
    """The element type a collective op carries (its first input's format; all-gather: its output's)."""
    ts = op.outputs if op.kind == "allgather" else op.inputs
    return ts[0].fmt if ts and isinstance(ts[0].fmt, str) else None


def estimate_collective(op: Op, system: SystemSpec, level: str = "roofline") -> OpCost:
    """A collective op priced on `system` (one instance; multiply by op.repeat)."""
    ranks = int(op.dims.get("ranks", 1))
    stride = int(op.dims.get("stride", 1))
    c = collective_cost(op.kind, message_bytes(op), ranks, stride, system, level, dtype=_op_format(op))
    prov = ("speed-of-light:alpha-beta" if level == "roofline" or any(_NO_FIT in n for n in c.notes)
            else f"calibrated:{system.name} collectives ({c.calibration})")  # docs/reports-and-plots.md scheme
    return OpCost(latency_s=c.time_s, energy_j=c.energy_j, bound=f"link:{c.scope}", utilization=0.0,
                  flops=0.0, bytes_by_level={f"link_{k}": v for k, v in c.bytes_sent.items()},
                  energy_breakdown={"link": c.energy_j}, provenance=prov, notes=c.notes,
                  details={"algorithm": c.algorithm, "link": c.scope, "ranks": ranks, "launch": c.launch,
                           "message_bytes": c.nbytes, "busbw_Bps": c.busbw if c.time_s else 0.0,
                           "calibration": c.calibration})


def with_static_power(cost: OpCost, static_w: float | None) -> OpCost:
    """A collective's cost with its device's static power over its time: while a collective runs
    (not hidden behind compute) every device of the group is powered and waits for it, so its
    energy is the link energy + static power x time, as a compute op's carries static power x
    its time. `static_w` None (the device file gives no static power): link energy only, the
    static term unknown (NaN), as every energy of that device is dynamic only and says so."""
    static = cost.latency_s * static_w if static_w is not None else float("nan")
    return replace(cost, energy_j=cost.energy_j + (static if static_w is not None else 0.0),
                   energy_breakdown={**cost.energy_breakdown, "static": static})


def estimate_system_ops(ops, system: SystemSpec, level: str = "roofline", compute_fallback: bool = False):
    """(costs, notes) for a sharded trace on a system: compute and memory ops on one device of
    the system at `level`, collectives on its links (the same level's collective model). A
    collective's energy is its link energy + the device's static power x its time (with_static_power;
    the static power the device ops carry, else the device file's: hwmodels.energy.static_power_w)."""
    from hwmodels.estimate import estimate_ops

    ops = list(ops)
    dev_idx = [i for i, op in enumerate(ops) if op.kind not in COLLECTIVE_KINDS]
    costs = [None] * len(ops)
    dev_costs, notes = estimate_ops([ops[i] for i in dev_idx], system.device, level, compute_fallback)
    for i, c in zip(dev_idx, dev_costs):
        costs[i] = c
    notes = list(notes)
    static_w = static_power_w(((c.energy_breakdown["static"], c.latency_s) for c in dev_costs
                               if "static" in c.energy_breakdown), system.device)
    for i, op in enumerate(ops):
        if costs[i] is None:
            costs[i] = with_static_power(estimate_collective(op, system, level if level != "cycle" else "roofline"),
                                         static_w)
            notes += list(costs[i].notes)
            if level == "cycle":
                notes.append(f"{op.name}: collectives have no cycle-level model; alpha-beta (roofline) used")
    return costs, tuple(notes)
