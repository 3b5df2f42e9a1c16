"""Cycle-level model (level="cycle") of systolic accelerators and FPGAs.

For every op of a trace:

* gemm / moe_router: the GEMM is spread over the arrays (batch instances first, else
  the N columns), costed with the closed-form fold model of `hwmodels.systolic`
  (hardware counts, not SCALE-Sim's conventions). A PE that packs p MACs of a narrow
  format per cycle shortens the reduction (K) by p; a format with an explicit rate
  below 1 MAC/cycle stretches every cycle.
* routed-expert GEMMs (dims ``experts_touched``: the builder's ``expert_*`` ops, the
  parallel sharder's and moe_prune's): a grouped GEMM, one expert after the other, see
  `expert_groups`: each touched expert's weights cross DRAM, its share of the routed rows
  streams through them.
* attention: its two matmuls (QK^T and PV, query heads of a GQA group packed into M)
  on the arrays, plus the softmax on the vector unit; fused, so K/V/Q/O cross DRAM once.
* elementwise kinds: FLOPs on the vector unit, bytes through DRAM.
* allreduce / custom: not modelled at this level -> roofline, with a note.

Memory: DRAM traffic follows the fold order and the SRAM sizes
(`hwmodels.systolic.dram_traffic`); the double-buffered pipeline overlaps it with
compute, so latency = max(start-up bytes in + compute + last results out, traffic /
bandwidth) + DRAM latency: both are lower bounds of `hwmodels.pipeline`, which simulates the same
schedule event by event; the tests check that it moves the same bytes and that this
closed form is never above the simulated time and at most 40 % below it (balanced
compute and traffic: read-after-write waits, bursts).
Energy by component comes from `hwmodels.energy`, MAC energy from `hwmodels.arith`.
SRAM accesses counted (as Accelergy/Timeloop count them): the array side's reads and partial-sum
writes/reads, plus every DRAM byte once more in the buffer it passes through: a fill from DRAM is a
write into that buffer, a write-back to DRAM a read out of it (`with_fills`). Elementwise ops stage
their inputs in the ifmap buffer and their outputs in the ofmap buffer: the fill, the vector unit's
read, its write and the write-back (2 accesses per byte each side).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from hwmodels import roofline
from hwmodels.accel import PSUM_BYTES, AcceleratorConfig
from hwmodels.accelerators import config_for
from hwmodels.arith import DotProductUnit
from hwmodels.cost import OpCost
from hwmodels.energy import (EnergyParams, WIRE_J_PER_BIT_MM, op_energy, phy_area_mm2, sram_access_energy_per_byte,
                             sram_area_mm2)
from hwmodels.spec import HardwareSpec, UnsupportedFormatError
from hwmodels.systolic import dram_traffic, fold_geometry, gemm_cycles
from workloads.formats import get_format
from workloads.ops import ELEMENTWISE_FLOPS, Op, attended_pairs, stored_operands

__all__ = ["estimate", "estimate_trace", "applicable", "area_breakdown", "gemm_cost", "GemmCost", "FPGA_AREA_NOTE",
           "ExpertGroups", "expert_groups"]

# an FPGA's "area" is what its PE arrays and buffers would take as standard cells, not the FPGA die
FPGA_AREA_NOTE = "FPGA: area of the equivalent standard-cell design"


def applicable(hw: HardwareSpec) -> tuple[bool, str]:
    if hw.kind not in ("accelerator", "fpga", "tpu"):
        return False, f"hardware kind {hw.kind!r} is not an accelerator or FPGA"
    if "accelerator" not in hw.sections and "fpga" not in hw.sections:
        return False, "the spec has no accelerator: or fpga: section"
    return True, ""


def _energy_params(hw: HardwareSpec, cfg: AcceleratorConfig) -> EnergyParams:
    sram = {k: sram_access_energy_per_byte(v, cfg.node_nm, cfg.vdd) for k, v in cfg.sram_bytes.items()}
    dram = hw.main_memory.energy_per_byte_j or 0.0
    # wires: from the SRAM edge to the middle of one array, half its side on average
    side_mm = math.sqrt(cfg.pe.area_um2() * cfg.rows * cfg.cols) / 1000.0
    wire = WIRE_J_PER_BIT_MM * 8 * side_mm / 2
    vec_unit = DotProductUnit(("fp32",), node_nm=cfg.node_nm, vdd=cfg.vdd)
    fabric = float(cfg.extra.get("energy_factor", 1.0))  # FPGA logic vs standard cells
    return EnergyParams(sram_j_per_byte=sram, dram_j_per_byte=dram, wire_j_per_byte=wire,
                        static_power_w=hw.static_power_w,  # None: unknown (hwmodels.energy.op_energy)
                        vector_j_per_flop=fabric * vec_unit.energy_per_mac_j("fp32") / 2,
                        mac_factor=fabric)


def _compute_format(op: Op, cfg: AcceleratorConfig, hw: HardwareSpec, compute_fallback: bool):
    fmt = get_format(op.compute_fmt).name
    if cfg.supports(fmt):
        return fmt, None
    if not compute_fallback:
        sec = "accelerator" if "accelerator" in hw.sections else "fpga"
        raise UnsupportedFormatError(
            hw.source or hw.name, f"{sec}.pe.formats: op {op.name!r} computes in {fmt!r}; the PE supports "
            f"{list(cfg.pe.formats)}", " (add the format, or allow the explicit fallback: {option})")
    want = get_format(fmt).element_bits
    wider = sorted((get_format(f).element_bits, f) for f in cfg.pe.formats
                   if get_format(f).element_bits >= want)
    used = wider[0][1] if wider else max(cfg.pe.formats, key=lambda f: get_format(f).element_bits)
    return used, f"{op.name}: PE has no {fmt} mode; computed as {used} (explicit fallback)"


def operand_notes(op: Op, fmt: str, cfg: AcceleratorConfig) -> tuple:
    """A stored operand (weights, KV cache) in a format the PE has no unit for is multiplied as
    ``fmt`` (the activations' format): said in the op's notes and the report, never silently --
    the rule the roofline level applies too (hwmodels.roofline.stored_operand_notes).
    The conversion (e.g. int4 -> bf16 dequantization) is not charged."""
    return roofline.stored_operand_notes(stored_operands(op), fmt, cfg.supports)


def _piece(m, n, k, k_eff, cfg: AcceleratorConfig, cap: dict, ba, bb, bc) -> dict:
    """One (m x k)(k x n) GEMM on one array: cycles, DRAM and SRAM bytes."""
    g = gemm_cycles(m, n, k_eff, cfg.rows, cfg.cols, cfg.dataflow, overlap=cfg.fold_overlap)
    t = dram_traffic(m, n, k, cfg.rows, cfg.cols, cfg.dataflow, cap["ifmap"], cap["filter"], cap["ofmap"])
    packed = k / k_eff  # a packed PE reads p narrow elements per K step
    return {"cycles": g.compute_cycles, "folds": g.folds, "g": g,
            "dram": {"ifmap": t.ifmap_dram_reads * ba, "filter": t.filter_dram_reads * bb,
                     "ofmap": (t.ofmap_dram_writes - m * n) * PSUM_BYTES + m * n * bc
                              + t.ofmap_dram_reads * PSUM_BYTES},
            "sram": {"ifmap": g.ifmap_sram_reads * packed * ba, "filter": g.filter_sram_reads * packed * bb,
                     "ofmap": (g.ofmap_sram_writes + g.ofmap_sram_reads) * PSUM_BYTES}}


def _stream_axes(m, n, cfg) -> tuple:
    """(streamed, across) of a ws / is fold: the GEMM dimension it runs over in time and the one on the
    array columns, fold_geometry's T and Sc (ws: M and N; is: N and M). os streams K, which `_chunked`
    never cuts: (N, M), its whole N one piece."""
    if cfg.dataflow == "os":
        return n, m
    _, across, streamed = fold_geometry(m, n, 1, cfg.rows, cfg.cols, cfg.dataflow)
    return streamed, across


def _chunked(m, n, k, k_eff, cfg, cap, ba, bb, bc, chunk) -> dict:
    """The GEMM with its streamed dimension (`_stream_axes`: M for ws, N for is) cut into chunks of
    ``chunk``, each run to completion (all K-folds) before the next: partial sums of a
    chunk fit on chip, the stationary operand is re-read per chunk."""
    dim = _stream_axes(m, n, cfg)[0]
    full, rest = divmod(dim, chunk)
    parts = [(chunk, full)] + ([(rest, 1)] if rest else [])
    out = {"cycles": 0, "folds": 0, "dram": {"ifmap": 0.0, "filter": 0.0, "ofmap": 0.0},
           "sram": {"ifmap": 0.0, "filter": 0.0, "ofmap": 0.0}, "g": None, "chunk": chunk}
    for size, count in parts:
        if not count:
            continue
        mm, nn = (size, n) if cfg.dataflow == "ws" else (m, size)
        p = _piece(mm, nn, k, k_eff, cfg, cap, ba, bb, bc)
        out["cycles"] += count * p["cycles"]
        out["folds"] += count * p["folds"]
        out["g"] = out["g"] or p["g"]
        for key in ("dram", "sram"):
            for name, v in p[key].items():
                out[key][name] += count * v
    return out


def _os_k_tiled(m, n, k, p, cfg: AcceleratorConfig, cap: dict, ba, bb, bc) -> dict | None:
    """os with the reduction cut into chunks whose K x C weight block fits half the filter
    buffer, and M into chunks whose partial sums (M_t x C, fp32) fit half the ofmap
    buffer: each weight block is then read once per M chunk instead of once per row fold.
    Every K chunk is a fold of its own (its fill/drain is paid again); partial sums go
    back and forth between the PEs and the ofmap SRAM. None when it does not apply."""
    R, C = cfg.rows, cfg.cols
    uc = min(C, n)
    k_t = int(cap["filter"] / 2 // uc)
    m_t = int(cap["ofmap"] / 2 // uc) // R * R  # cap is already in fp32 partial-sum words
    if k_t < 1 or k_t >= k or m_t < R:
        return None
    kt_eff = lambda kk: math.ceil(kk / p) if p >= 1 else kk  # noqa: E731
    full, rest = divmod(k, k_t)
    parts = [(k_t, full)] + ([(rest, 1)] if rest else [])
    cycles = folds = 0
    g0 = None
    for kk, count in parts:
        g = gemm_cycles(m, n, kt_eff(kk), R, C, "os", overlap=cfg.fold_overlap)
        cycles += count * g.compute_cycles
        folds += count * g.folds
        g0 = g0 or g
    chunks = len(parts) if rest else full
    m_chunks = math.ceil(m / m_t)
    col_folds = math.ceil(n / C)
    a_reads = m * k if m * k <= cap["ifmap"] / 2 else m * k * col_folds
    dram = {"ifmap": a_reads * ba, "filter": m_chunks * k * n * bb, "ofmap": m * n * bc}
    psum_trips = (chunks - 1) * m * n * PSUM_BYTES * 2  # partial sums out of and back into the PEs
    sram = {"ifmap": col_folds * m * k * ba, "filter": math.ceil(m / R) * k * n * bb,
            "ofmap": m * n * PSUM_BYTES + psum_trips}
    return {"cycles": cycles, "folds": folds, "dram": dram, "sram": sram, "g": g0, "chunk": m_t, "k_chunk": k_t}


def _best_piece(m, n, k, k_eff, p, cfg: AcceleratorConfig, cap, ba, bb, bc, busy, bpc, stretch) -> dict:
    """The cheapest tiling of one (m x k)(k x n) piece on one array."""
    def cost(c):
        return max(c["cycles"] * stretch, sum(c["dram"].values()) * busy / bpc)

    dim, across = _stream_axes(m, n, cfg)
    best = _chunked(m, n, k, k_eff, cfg, cap, ba, bb, bc, dim)
    if not cfg.stream_tiling:
        return best
    alts = []
    if cfg.dataflow in ("ws", "is") and k_eff > cfg.rows:
        fit = int(cap["ofmap"] / 2 // min(cfg.cols, across))
        if 1 <= fit < dim:
            alts.append(_chunked(m, n, k, k_eff, cfg, cap, ba, bb, bc, fit))
    if cfg.dataflow == "os" and k * min(cfg.cols, n) > cap["filter"] / 2:
        alts.append(_os_k_tiled(m, n, k, p, cfg, cap, ba, bb, bc))
    for alt in alts:
        if alt is not None and cost(alt) < cost(best):
            best = alt
    return best


@dataclass(frozen=True)
class GemmCost:
    """b GEMMs mapped onto the arrays: cycles, MACs and bytes (DRAM and SRAM per operand)."""
    cycles: float
    macs: int
    dram: dict  # ifmap / filter / ofmap -> bytes
    sram: dict  # ifmap / filter / ofmap -> bytes
    folds: int
    cycles_per_fold: float
    mapping_efficiency: float  # percent
    arrays_busy: int
    waves: int
    split: int  # pieces each instance is cut into across arrays
    split_dim: str  # n (A broadcast), m (B broadcast) or batch
    prologue_bytes: float  # must arrive before the first MAC
    epilogue_bytes: float  # leaves after the last
    rate: float  # narrow elements per PE per K step
    stream_chunk: int | None  # the streamed dimension's tile (None: not tiled)
    k_chunk: int
    # ws / is: each fold streams fewer rows than the R cycles its stationary tile takes to load
    # (one row per cycle), so the load path, not the MACs, sets the fold rate (decode GEMVs)
    stationary_load_bound: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def gemm_cost(m: int, n: int, k: int, b: int, fmt: str, cfg: AcceleratorConfig,
              bytes_a: float, bytes_b: float, bytes_c: float, bytes_per_cycle: float = math.inf) -> GemmCost:
    """Cycles, SRAM and DRAM traffic of b independent (m x k)(k x n) GEMMs on the arrays.
    ``bytes_*``: bytes per element of A (ifmap), B (filter/weights), C (ofmap).

    Mapping: batch instances over the arrays; with fewer instances than arrays, each is
    split over its N columns (A broadcast to the pieces) or its M rows (B broadcast),
    whichever is faster. With ``cfg.stream_tiling`` each piece also tries cheaper tilings:
    ws / is cut the streamed dimension when a K-fold's partial sums would spill out of
    half the ofmap buffer; os cuts K (and M) when a K x C weight block does not fit half
    the filter buffer. The mapping with the lower max(compute, traffic / bandwidth) is
    kept (``bytes_per_cycle``: DRAM bytes per array clock)."""
    p = cfg.rate(fmt)
    k_eff = math.ceil(k / p) if p >= 1 else k
    stretch = 1.0 / p if p < 1 else 1.0
    bpc = bytes_per_cycle
    # per array buffer capacity in elements of each operand (partial sums are fp32)
    cap = {name: cfg.sram_bytes[name] / max(bb, 1e-9) for name, bb in
           (("ifmap", bytes_a), ("filter", bytes_b), ("ofmap", PSUM_BYTES))}
    if b >= cfg.arrays:
        plans = [dict(waves=math.ceil(b / cfg.arrays), split=1, m=m, n=n, shared=None, busy=cfg.arrays)]
    else:
        per = cfg.arrays // b
        sn, sm = min(per, n), min(per, m)
        plans = [dict(waves=1, split=sn, m=m, n=math.ceil(n / sn), shared="ifmap", busy=b * sn)]
        if sm > 1:
            plans.append(dict(waves=1, split=sm, m=math.ceil(m / sm), n=n, shared="filter", busy=b * sm))
    best = None
    for pl in plans:
        piece = _best_piece(pl["m"], pl["n"], k, k_eff, p, cfg, cap, bytes_a, bytes_b, bytes_c, pl["busy"], bpc,
                            stretch)
        instances = b * pl["split"]
        dram = {name: v * (b if name == pl["shared"] else instances) for name, v in piece["dram"].items()}
        cycles = pl["waves"] * piece["cycles"] * stretch
        score = max(cycles, sum(dram.values()) / bpc)
        if best is None or score < best[0]:
            best = (score, pl, piece, dram, cycles, instances)
    _, pl, piece, dram, cycles, instances = best
    sram = {k_: v * instances for k_, v in piece["sram"].items()}
    g = piece["g"]
    # pipeline prologue / epilogue: what must arrive before the first MAC / leave after the last
    first, last = _edge_bytes(pl["m"], pl["n"], k, cfg, bytes_a, bytes_b, bytes_c)
    busy = min(pl["busy"], cfg.arrays)
    streamed = fold_geometry(pl["m"], pl["n"], k_eff, cfg.rows, cfg.cols, cfg.dataflow)[2]
    if piece["chunk"]:
        streamed = min(streamed, piece["chunk"])
    load_bound = cfg.dataflow in ("ws", "is") and streamed < cfg.rows
    return GemmCost(cycles=cycles, macs=m * n * k * b, dram=dram, sram=sram, folds=piece["folds"] * pl["waves"],
                    cycles_per_fold=g.cycles_per_fold * stretch, mapping_efficiency=g.mapping_efficiency,
                    arrays_busy=busy, waves=pl["waves"], split=pl["split"],
                    split_dim={"ifmap": "n", "filter": "m"}.get(pl["shared"], "batch"), prologue_bytes=first * busy,
                    epilogue_bytes=last * busy, rate=p, stream_chunk=piece["chunk"], k_chunk=piece.get("k_chunk", k),
                    stationary_load_bound=load_bound)


def _edge_bytes(m, n, k, cfg: AcceleratorConfig, ba, bb, bc) -> tuple[float, float]:
    """Bytes that must cross DRAM before the first MAC and after the last one, for an array
    that streams within a fold: the stationary tile (ws: weights, is: inputs) plus the first
    element of each streamed row and column in; the last results out (os drains its whole
    last R x C tile, ws/is the last row of outputs)."""
    R, C = cfg.rows, cfg.cols
    sr, sc, t = fold_geometry(m, n, k, R, C, cfg.dataflow)
    ur0, uc0 = min(R, sr), min(C, sc)
    uc_last = sc - (-(-sc // C) - 1) * C
    if cfg.dataflow == "os":
        ur_last = sr - (-(-sr // R) - 1) * R
        return ur0 * ba + uc0 * bb, ur_last * uc_last * bc
    if cfg.dataflow == "ws":
        return ur0 * uc0 * bb + ur0 * ba, uc_last * bc
    return ur0 * uc0 * ba + ur0 * bb, uc_last * bc  # is


def _bytes_per(t) -> float:
    return t.bits_per_element / 8 * t.density  # per block stored (a weight's short last block included)


def _gemm_operands(op: Op):
    ins = list(op.inputs)
    w = [t for t in ins if t.role in ("weight", "kv")]
    a = [t for t in ins if t not in w]
    ta = a[0] if a else ins[0]
    tb = w[0] if w else (ins[1] if len(ins) > 1 else ins[0])
    tc = op.outputs[0] if op.outputs else ta
    return _bytes_per(ta), _weight_bytes_per(op, w) if w else _bytes_per(tb), _bytes_per(tc)


def _weight_bytes_per(op: Op, w) -> float:
    """Bytes per weight element of a GEMM: every stored weight tensor (SpQR's codes + statistics, NVFP4's
    per-tensor scale, ...) over b x k x n, so the weights that cross DRAM are the roofline's bytes (the first
    tensor's format alone missed SpQR's statistics and NVFP4's 4 B scale)."""
    d = op.dims
    if op.kind != "gemm" or any(t.role != "weight" for t in w):
        return _bytes_per(w[0])
    return sum(t.nbytes for t in w) / (int(d.get("b", 1)) * int(d["k"]) * int(d["n"]))


@dataclass(frozen=True)
class ExpertGroups:
    """A routed-expert GEMM as the grouped GEMM a MoE kernel runs on the arrays."""
    touched: float  # experts whose weights are loaded (expected count, as the trace's density)
    pieces: tuple  # ((rows, experts), ...): experts with that many routed rows each; sum rows x experts = m
    weight_bytes: float  # bytes per weight element of ONE expert (format, scales, any other density)
    note: str | None = None


def expert_groups(op: Op) -> ExpertGroups | None:
    """The grouped GEMM of a routed-expert op (one that carries ``experts_touched`` in its dims);
    None for any other op.

    The trace's op is all routed rows at once: ``m`` = tokens x top_k token-expert rows, a weight
    (E, k, n) whose ``density`` is the expected fraction of experts this step touches, E_touched / E
    (workloads.moe.experts_touched: uniform top-k routing). The roofline prices exactly that: the
    weight bytes of E_touched experts and 2 m n k FLOPs. A MoE kernel on the array runs one GEMM per
    touched expert: that expert's k x n weights are loaded from DRAM (E_touched x k x n x bytes over
    the step, the roofline's weight bytes) and the rows routed to it stream through them.

    Token balance, the roofline's assumption made explicit: routing is uniform, so the m rows are
    spread as evenly as they can be over the E_touched experts: r = m / E_touched rows each on
    average, a fraction (r - floor r) of the experts with ceil(r) rows and the rest floor(r) (the
    step's cycles are the expected sum over experts; an unbalanced router makes the busiest expert,
    and the step, longer). Bytes per weight element of one expert are the op's weight bytes (every
    weight tensor: codes, scales, per-tensor scales, any other density) over E_touched x k x n, so
    the weights the model loads are the roofline's by construction. A trace with more touched
    experts than rows (moe_prune's rounding of tokens x fractional top_k) loads only m experts:
    said in the note."""
    d = op.dims
    if op.kind != "gemm" or "experts_touched" not in d:
        return None
    m, n, k, b = int(d["m"]), int(d["n"]), int(d["k"]), int(d.get("b", 1))
    touched = float(d["experts_touched"])
    if min(m, n, k, b) == 0 or touched <= 0:
        return None
    weight = sum(t.nbytes for t in op.inputs if t.role == "weight")
    per_elem = weight / (touched * b * k * n)
    note = None
    if touched > m:
        note = (f"{op.name}: {touched:.3g} experts touched by {m} routed rows; priced as {m} experts of one row "
                f"each (weights of {m} experts loaded, not {touched:.3g})")
        touched = float(m)
    r = m / touched
    lo = math.floor(r)
    f = r - lo
    pieces = ((lo, touched * (1.0 - f)),) + (((lo + 1, touched * f),) if f > 0 else ())
    return ExpertGroups(touched=touched, pieces=pieces, weight_bytes=per_elem, note=note)


def grouped_sum(counts, values):
    """sum_i counts[i] x values[i], in one fixed order (scalars or numpy arrays alike: the
    per-op and the vectorised paths combine expert pieces with the same operations)."""
    acc = counts[0] * values[0]
    for c, v in zip(counts[1:], values[1:]):
        acc = acc + c * v
    return acc


def with_fills(sram: dict, dram: dict) -> dict:
    """SRAM accesses per buffer: the array side's (``sram``) plus each DRAM byte of that buffer once
    (fill from DRAM = one write, write-back to DRAM = one read)."""
    return {k: sram[k] + dram[k] for k in sram}


def _finish(op, hw, cfg, ep, fmt, compute_cycles, vector_flops, macs, dram_bytes, sram_bytes,
            prologue_bytes, epilogue_bytes, details, notes, load_bound: bool = False, ws_tile: str = "weight"):
    """The op's latency, energy and bound. ``load_bound`` (GemmCost.stationary_load_bound): the array's time
    is set by loading stationary tiles, and the bound reported instead of "compute" names them: on a
    weight-stationary array ``ws_tile``-load ("weight-load" for a GEMM, "kv-load" for attention, whose
    stationary tiles are K and V), on an input-stationary one "input-load"."""
    load_label = (f"{ws_tile}-load" if cfg.dataflow == "ws" else "input-load") if load_bound else None
    clock = hw.clock_hz
    bw = hw.main_memory.bandwidth_Bps
    vec_cycles = vector_flops / cfg.vector_flops_per_cycle() if vector_flops else 0.0
    t_compute = (compute_cycles + vec_cycles) / clock
    total_dram = sum(dram_bytes.values())
    t_mem = total_dram / bw
    # two lower bounds of the double-buffered pipeline: every byte crosses the DRAM port,
    # and the first tile must arrive before compute starts and the last leave after it
    t_edges = (prologue_bytes + epilogue_bytes) / bw
    latency = max(t_compute + t_edges, t_mem) + cfg.dram_latency_s
    bound = "compute" if t_compute + t_edges >= t_mem else hw.main_memory.name
    if bound == "compute" and load_label:
        bound = load_label
    e = op_energy(macs, ep.mac_factor * cfg.pe.energy_per_mac_j(fmt) if macs else 0.0, sram_bytes, total_dram,
                  vector_flops, latency, ep)
    total = e.pop("total")
    peak = cfg.peak_flops(fmt, clock) if macs else cfg.vector_flops_per_cycle() * clock
    util = op.flops / (latency * peak) if latency > 0 and peak > 0 else 0.0
    details.update(compute_fmt=fmt, compute_cycles=compute_cycles, vector_cycles=vec_cycles,
                   total_cycles=latency * clock, stall_cycles=max(0.0, latency * clock - compute_cycles - vec_cycles),
                   dram_bytes=dict(dram_bytes), sram_bytes=dict(sram_bytes))
    levels = {hw.main_memory.name: total_dram, "sram": sum(sram_bytes.values())}
    return OpCost(latency_s=latency, energy_j=total, bound=bound, utilization=util, flops=op.flops,
                  bytes_by_level=levels, energy_breakdown=e, provenance="cycle-model",
                  notes=tuple(n for n in notes if n), details=details)


def _estimate(op: Op, hw: HardwareSpec, cfg: AcceleratorConfig, ep: EnergyParams,
              compute_fallback: bool) -> OpCost:
    notes = []
    if op.kind in ("gemm", "moe_router"):
        fmt, note = _compute_format(op, cfg, hw, compute_fallback)
        notes.append(note)
        notes.extend(operand_notes(op, fmt, cfg))
        d = op.dims
        if op.kind == "gemm":
            m, n, k, b = int(d["m"]), int(d["n"]), int(d["k"]), int(d.get("b", 1))
        else:
            m, n, k, b = int(d["tokens"]), int(d["experts"]), int(d["hidden"]), 1
        if min(m, n, k, b) == 0:
            return OpCost(latency_s=0.0, provenance="cycle-model", flops=0.0, notes=(f"{op.name}: empty GEMM",))
        ba, bb, bc = _gemm_operands(op)
        groups = expert_groups(op)
        if groups is not None:
            notes.append(groups.note)
            return _grouped(op, hw, cfg, ep, fmt, groups, n, k, b, ba, bc, notes)
        g = gemm_cost(m, n, k, b, fmt, cfg, ba, bb, bc, hw.main_memory.bandwidth_Bps / hw.clock_hz)
        details = {k_: getattr(g, k_) for k_ in ("folds", "cycles_per_fold", "mapping_efficiency", "arrays_busy",
                                                 "rate", "stream_chunk", "k_chunk", "split_dim",
                                                 "stationary_load_bound")}
        return _finish(op, hw, cfg, ep, fmt, g.cycles, 0.0, g.macs, g.dram, with_fills(g.sram, g.dram),
                       g.prologue_bytes, g.epilogue_bytes, details, notes, g.stationary_load_bound)
    if op.kind == "attention":
        fmt, note = _compute_format(op, cfg, hw, compute_fallback)
        notes.append(note)
        notes.extend(operand_notes(op, fmt, cfg))
        d = op.dims
        batch, heads, kvh = int(d["batch"]), int(d["heads"]), int(d.get("kv_heads", d["heads"]))
        q, kv, hd = int(d["q_len"]), int(d["kv_len"]), int(d["head_dim"])
        dv = int(d.get("v_head_dim", hd))
        group = heads // max(kvh, 1)
        pairs = attended_pairs(d)
        frac = pairs / (q * kv) if q * kv else 0.0  # causal / windowed blocks skipped
        q_t = op.inputs[0]
        kv_t = [t for t in op.inputs if t.role == "kv"] or [op.inputs[-1]]
        bq, bk = _bytes_per(q_t), _bytes_per(kv_t[0])
        bpc = hw.main_memory.bandwidth_Bps / hw.clock_hz
        s1 = gemm_cost(q * group, kv, hd, batch * kvh, fmt, cfg, bq, bk, 4, bpc)
        s2 = gemm_cost(q * group, dv, kv, batch * kvh, fmt, cfg, 4, bk, bq, bpc)
        cycles = (s1.cycles + s2.cycles) * frac
        vec = ELEMENTWISE_FLOPS["softmax"] * batch * heads * pairs
        sram = {k_: (s1.sram[k_] + s2.sram[k_]) * frac for k_ in s1.sram}
        dram = {"ifmap": sum(t.nbytes for t in op.inputs if t.role != "kv"),
                "filter": sum(t.nbytes for t in op.inputs if t.role == "kv"),
                "ofmap": sum(t.nbytes for t in op.outputs)}
        load = s1.stationary_load_bound and s2.stationary_load_bound
        details = {"folds": s1.folds + s2.folds, "causal_fraction": frac,
                   "mapping_efficiency": s1.mapping_efficiency, "stationary_load_bound": load}
        return _finish(op, hw, cfg, ep, fmt, cycles, vec, (s1.macs + s2.macs) * frac, dram, with_fills(sram, dram),
                       s1.prologue_bytes, s2.epilogue_bytes, details, notes, load, ws_tile="kv")
    if op.kind in ELEMENTWISE_FLOPS:
        dram = {"vector_in": sum(t.nbytes for t in op.inputs), "vector_out": sum(t.nbytes for t in op.outputs)}
        # staged in the ifmap / ofmap buffers: fill + vector read in, vector write + write-back out
        sram = {"ifmap": 2 * dram["vector_in"], "ofmap": 2 * dram["vector_out"]}
        return _finish(op, hw, cfg, ep, "fp32", 0.0, op.flops, 0.0, dram, sram, 0.0, 0.0,
                       {"unit": "vector"}, notes)
    # allreduce / custom: outside the array model
    c = roofline.estimate(op, hw, compute_fallback=True)
    note = f"{op.name}: {op.kind} is not modelled at cycle level; roofline estimate used"
    return OpCost(**{**c.__dict__, "provenance": "fallback:roofline (cycle level does not model "
                                                 f"{op.kind})", "notes": tuple(c.notes) + (note,)})


def _grouped(op, hw, cfg, ep, fmt, groups: ExpertGroups, n, k, b, ba, bc, notes) -> OpCost:
    """A routed-expert GEMM (`expert_groups`): one GEMM per touched expert, each mapped over the
    arrays as any GEMM; cycles, MACs and bytes are the sum over experts, the pipeline's prologue is
    the first expert's and its epilogue the last one's (the next expert's weights stream in while
    the previous one computes)."""
    bpc = hw.main_memory.bandwidth_Bps / hw.clock_hz
    gs = [gemm_cost(rows, n, k, b, fmt, cfg, ba, groups.weight_bytes, bc, bpc) for rows, _ in groups.pieces]
    cnt = [c for _, c in groups.pieces]
    cycles = grouped_sum(cnt, [g.cycles for g in gs])
    macs = grouped_sum(cnt, [g.macs for g in gs])
    dram = {key: grouped_sum(cnt, [g.dram[key] for g in gs]) for key in gs[0].dram}
    sram = {key: grouped_sum(cnt, [g.sram[key] for g in gs]) for key in gs[0].sram}
    load = all(g.stationary_load_bound for g in gs)
    details = {k_: getattr(gs[0], k_) for k_ in ("cycles_per_fold", "mapping_efficiency", "arrays_busy", "rate",
                                                 "stream_chunk", "k_chunk", "split_dim")}
    details.update(folds=grouped_sum(cnt, [g.folds for g in gs]), stationary_load_bound=load,
                   experts_touched=groups.touched, expert_rows=[[rows, c] for rows, c in groups.pieces],
                   expert_weight_bytes=groups.weight_bytes * k * n * b)
    return _finish(op, hw, cfg, ep, fmt, cycles, 0.0, macs, dram, with_fills(sram, dram),
                   gs[0].prologue_bytes, gs[-1].epilogue_bytes, details, notes, load)


def estimate(op: Op, hw: HardwareSpec, compute_fallback: bool = False) -> OpCost:
    cfg = config_for(hw)
    return _estimate(op, hw, cfg, _energy_params(hw, cfg), compute_fallback)


def estimate_trace(ops, hw: HardwareSpec, compute_fallback: bool = False):
    """(list[OpCost], notes) for a whole trace; the config and energy tables are built once."""
    cfg = config_for(hw)
    ep = _energy_params(hw, cfg)
    costs = [_estimate(op, hw, cfg, ep, compute_fallback) for op in ops]
    notes = tuple(dict.fromkeys(n for c in costs for n in c.notes))
    area = area_breakdown(hw, cfg)
    summary = (f"cycle model: {cfg.arrays} x {cfg.rows}x{cfg.cols} {cfg.dataflow} arrays; silicon area of one device "
               f"{area['total']:.1f} mm2 (" + ", ".join(f"{k} {v:.1f}" for k, v in area.items() if k != "total")
               + ")" + ("" if hw.kind != "fpga" else f"; {FPGA_AREA_NOTE}"))
    return costs, notes + (summary,)


def area_breakdown(hw: HardwareSpec, cfg: AcceleratorConfig | None = None) -> dict:
    """Silicon area (mm^2) by component: PE arrays, vector units, SRAM, memory PHY; sums to total."""
    cfg = cfg or config_for(hw)
    pe = cfg.pe.area_um2() * cfg.pes / 1e6
    vec = DotProductUnit(("fp32",), node_nm=cfg.node_nm, vdd=cfg.vdd).area_um2() \
        * cfg.vector_lanes * cfg.arrays / 1e6
    sram = sum(sram_area_mm2(v, cfg.node_nm) for v in cfg.sram_bytes.values()) * cfg.arrays
    mem = hw.main_memory
    kind = "hbm" if "hbm" in mem.name.lower() else "ddr"
    phy = phy_area_mm2(mem.bandwidth_Bps, kind) if hw.kind != "fpga" else 0.0
    out = {"pe_array": pe, "vector": vec, "sram": sram, "memory_phy": phy}
    out["total"] = sum(out.values())
    return out
