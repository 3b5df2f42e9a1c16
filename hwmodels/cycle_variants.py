"""The cycle-level model over many accelerator configurations in one numpy evaluation.

`evaluate_variants(ops, base, overrides)` prices a whole trace on V variants of one
accelerator whose numeric fields vary (array rows / cols / count, SRAM sizes, vector
lanes, DRAM latency, clock, main-memory bandwidth and energy, static power). It is the
same arithmetic as `hwmodels.cycle` — the fold model, the DRAM traffic of the fold
order, the mappings over the arrays, the stream tilings, the pipeline bounds and the
energy breakdown — written once more on numpy arrays shaped (GEMM pieces x variants):
every branch of the per-point code becomes a mask, every `max` an `np.maximum`, in the
same order of floating-point operations, so each variant's per-op latency and energy
equal the per-point model's bit for bit (tests/test_cycle_variants.py compares them).

Why a second copy of the formulas: the per-point model answers one op in tens of
microseconds with Python scalars (what `cosim.simulate` needs); numpy on length-1 arrays
would make that path several times slower, and a branch-free array version over
thousands of variants is what sweeps need. Discrete fields (dataflow, PE formats, fold
overlap, stream tiling) are fixed by the base spec; an FPGA (array sized from its
resource budget) is not handled here (the sweep then calls the model per point).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from hwmodels.accel import tile_buffer_need, tile_misfit
from hwmodels.accelerators import config_for
from hwmodels.arith import DotProductUnit
from hwmodels.cycle import (PSUM_BYTES, _bytes_per, _compute_format, _gemm_operands, applicable, area_breakdown,
                            expert_groups, grouped_sum, operand_notes)
from hwmodels.energy import WIRE_J_PER_BIT_MM, phy_area_mm2, sram_access_energy_per_byte, sram_area_mm2
from hwmodels.spec import HardwareError, HardwareSpec
from workloads.ops import ELEMENTWISE_FLOPS, attended_pairs

__all__ = ["evaluate_variants", "variant_field", "VARIANT_FIELDS"]

# accelerator fields (override path -> config attribute); memory / clock / energy fields below
VARIANT_FIELDS = {"accelerator.rows": "rows", "accelerator.cols": "cols", "accelerator.arrays": "arrays",
                  "accelerator.sram.ifmap": "sram_i", "accelerator.sram.filter": "sram_f",
                  "accelerator.sram.ofmap": "sram_o", "accelerator.vector.lanes": "vlanes",
                  "accelerator.dram_latency": "dram_lat", "clock": "clock", "energy.static_power": "static"}
_INT_FIELDS = ("rows", "cols", "arrays", "vlanes")


def variant_field(key: str, main_memory: str) -> bool:
    """Can this override vary along the variants of one `evaluate_variants` call?"""
    return key in VARIANT_FIELDS or key in (f"memory.{main_memory}.bandwidth", f"memory.{main_memory}.energy")


@lru_cache(maxsize=4096)
def _sram_e(size: float, node: float, vdd: float) -> float:
    return sram_access_energy_per_byte(size, node, vdd)


class _Cfg:
    """Per-variant numbers, each a (1, V) array (ints for counts)."""

    def __init__(self, base: HardwareSpec, overrides: dict, n: int):
        cfg = config_for(base)
        self.base_cfg = cfg
        sec = base.sections["accelerator"]
        mem = base.main_memory
        vals = {"rows": cfg.rows, "cols": cfg.cols, "arrays": cfg.arrays, "sram_i": cfg.sram_bytes["ifmap"],
                "sram_f": cfg.sram_bytes["filter"], "sram_o": cfg.sram_bytes["ofmap"], "vlanes": cfg.vector_lanes,
                "dram_lat": cfg.dram_latency_s, "clock": base.clock_hz, "static": base.static_power_w or 0.0,  # none: dynamic only (HardwareSpec.energy_scope labels it)
                "bw": mem.bandwidth_Bps, "e_dram": mem.energy_per_byte_j or 0.0}
        lanes_follow_cols = (sec.get("vector") or {}).get("lanes") is None
        for key, v in overrides.items():
            if not variant_field(key, mem.name):
                raise HardwareError(f"{base.source or base.name}: overrides[{key!r}]: not a field the cycle model "
                                    f"varies in one call; expected one of {sorted(VARIANT_FIELDS)} or "
                                    f"memory.{mem.name}.bandwidth / energy")
            attr = VARIANT_FIELDS.get(key) or ("bw" if key.endswith("bandwidth") else "e_dram")
            vals[attr] = np.asarray(v, dtype=float).reshape(-1)
        if lanes_follow_cols and "accelerator.vector.lanes" not in overrides:
            vals["vlanes"] = vals["cols"]  # the parser's default: one vector lane per column
        for attr, v in vals.items():
            a = np.broadcast_to(np.asarray(v, dtype=float), (n,))
            if attr in _INT_FIELDS:
                if np.any(a != np.floor(a)) or np.any(a < 1):
                    raise HardwareError(f"{base.source or base.name}: accelerator.{attr}: got "
                                        f"{float(a[(a != np.floor(a)) | (a < 1)][0])!r}; expected an integer >= 1")
                a = a.astype(np.int64)
            setattr(self, attr, a.reshape(1, n))
        self.n = n
        self._check_fits(base)
        self._energy(cfg)

    def _check_fits(self, base) -> None:
        """`AcceleratorConfig.check_fits` for every variant (hwmodels.accel.tile_buffer_need, the one rule): one
        clear error for the first misfit."""
        need = tile_buffer_need(self.rows, self.cols, self.base_cfg.tile_elem_bytes())
        have = {"ifmap": self.sram_i, "filter": self.sram_f, "ofmap": self.sram_o}
        for name, b in need.items():
            bad = np.flatnonzero((have[name] < b).ravel())
            if bad.size:
                j = int(bad[0])
                raise tile_misfit(f"{base.source or base.name}: variant {j}: accelerator.sram.{name}",
                                  have[name].ravel()[j], np.broadcast_to(b, self.rows.shape).ravel()[j],
                                  self.rows.ravel()[j], self.cols.ravel()[j])

    def _energy(self, cfg) -> None:
        """hwmodels.cycle._energy_params per variant."""
        node, vdd = cfg.node_nm, cfg.vdd
        for attr, name in (("sram_i", "ej_i"), ("sram_f", "ej_f"), ("sram_o", "ej_o")):
            sizes = getattr(self, attr).ravel()
            u, inv = np.unique(sizes, return_inverse=True)
            e = np.array([_sram_e(float(s), node, vdd) for s in u])[inv.ravel()]
            setattr(self, name, e.reshape(1, self.n))
        side_mm = np.sqrt(cfg.pe.area_um2() * self.rows * self.cols) / 1000.0
        self.wire = WIRE_J_PER_BIT_MM * 8 * side_mm / 2
        vec_unit = DotProductUnit(("fp32",), node_nm=node, vdd=vdd)
        self.fabric = float(cfg.extra.get("energy_factor", 1.0))
        self.vec_j = self.fabric * vec_unit.energy_per_mac_j("fp32") / 2
        self.vec_per_cycle = self.vlanes * self.arrays * cfg.vector_flops_per_lane
        self.bpc = self.bw / self.clock


def _ceil(a, b):
    return -(-a // b)


def _fold_geometry(m, n, k, df):
    if df == "os":
        return m, n, k
    if df == "ws":
        return k, n, m
    return k, m, n


def _cycles(m, n, k, R, C, df, overlap):
    """hwmodels.systolic._core (hardware counts): compute cycles and SRAM word reads."""
    sr, sc, t = _fold_geometry(m, n, k, df)
    row_folds, col_folds = _ceil(sr, R), _ceil(sc, C)
    folds = row_folds * col_folds
    if overlap:
        preload = 0 if df == "os" else R
        cycles = preload + (folds - 1) * np.maximum(t, R) + t + R + C - 2
    else:
        cycles = folds * (t + R + C - 2 if df == "os" else 2 * R + C + t - 2)
    if df == "os":
        ifr, fr, ow, orr = _ceil(n, C) * m * k, _ceil(m, R) * k * n, m * n, 0 * m
    elif df == "ws":
        ifr, fr, ow, orr = _ceil(n, C) * m * k, k * n, row_folds * m * n, (row_folds - 1) * m * n
    else:
        ifr, fr, ow, orr = m * k, _ceil(m, C) * k * n, row_folds * m * n, (row_folds - 1) * m * n
    return cycles, ifr, fr, ow, orr


def _dram(m, n, k, R, C, df, cap_i, cap_f, cap_o):
    """hwmodels.systolic.dram_traffic (double buffered): words in / out of DRAM."""
    cap_i, cap_f, cap_o = cap_i * 0.5, cap_f * 0.5, cap_o * 0.5
    a, b = m * k, k * n
    if df == "os":
        cf, rf = _ceil(n, C), _ceil(m, R)
        ifmap = np.where(a <= cap_i, a, a * cf)
        full, edge = np.divmod(n, C)
        filt = (np.where(full > 0, k * C * full * np.where(k * C <= cap_f, 1, rf), 0)
                + np.where(edge > 0, k * edge * 1 * np.where(k * edge <= cap_f, 1, rf), 0))
        return ifmap, filt, m * n, 0 * m
    t_len, sc = (m, n) if df == "ws" else (n, m)
    whole, cap_s = (a, cap_i) if df == "ws" else (b, cap_f)
    cf, rf = _ceil(sc, C), _ceil(k, R)
    stream = np.where(whole <= cap_s, whole, whole * cf)
    stat = b if df == "ws" else a
    ifmap, filt = (stream, stat) if df == "ws" else (stat, stream)
    ow = orr = 0
    full, edge = np.divmod(sc, C)
    for uc, cnt, present in ((C, full, full > 0), (edge, 1, edge > 0)):
        block = t_len * uc
        spill = (rf > 1) & (block > cap_o)
        ow = ow + np.where(present, cnt * block * np.where(spill, rf, 1), 0)
        orr = orr + np.where(present & spill, cnt * block * (rf - 1), 0)
    return ifmap, filt, ow, orr


def _piece(m, n, k, k_eff, c: _Cfg, df, overlap, cap, ba, bb, bc):
    """hwmodels.cycle._piece: (cycles, dram (ifmap, filter, ofmap), sram (ifmap, filter, ofmap))."""
    cyc, ifr, fr, ow, orr = _cycles(m, n, k_eff, c.rows, c.cols, df, overlap)
    ti, tf, tw, tr = _dram(m, n, k, c.rows, c.cols, df, *cap)
    with np.errstate(divide="ignore", invalid="ignore"):
        packed = k / k_eff
    dram = (ti * ba, tf * bb, (tw - m * n) * PSUM_BYTES + m * n * bc + tr * PSUM_BYTES)
    sram = (ifr * packed * ba, fr * packed * bb, (ow + orr) * PSUM_BYTES)
    return cyc, dram, sram


def _chunked(m, n, k, k_eff, c, df, overlap, cap, ops_b, chunk):
    """hwmodels.cycle._chunked: the streamed dimension cut into chunks (full ones + a rest)."""
    dim = m if df == "ws" else n
    full, rest = np.divmod(dim, chunk)
    has_rest = rest > 0
    parts = []
    for size, count in ((chunk, full), (np.where(has_rest, rest, chunk), 1)):
        mm, nn = (size, n) if df == "ws" else (m, size)
        parts.append((count, _piece(mm, nn, k, k_eff, c, df, overlap, cap, *ops_b)))
    (c1, (y1, d1, s1)), (_, (y2, d2, s2)) = parts
    cycles = np.where(has_rest, 0 + c1 * y1 + y2, 0 + c1 * y1)
    dram = tuple(np.where(has_rest, 0.0 + c1 * a + 1 * b, 0.0 + c1 * a) for a, b in zip(d1, d2))
    sram = tuple(np.where(has_rest, 0.0 + c1 * a + 1 * b, 0.0 + c1 * a) for a, b in zip(s1, s2))
    return cycles, dram, sram


def _os_k_tiled(m, n, k, p, c, overlap, cap, ba, bb, bc):
    """hwmodels.cycle._os_k_tiled: (valid mask, cycles, dram, sram)."""
    R, C = c.rows, c.cols
    uc = np.minimum(C, n)
    k_t = np.floor_divide(cap[1] / 2, uc).astype(np.int64)
    m_t = np.floor_divide(cap[2] / 2, uc).astype(np.int64) // R * R
    valid = (k_t >= 1) & (k_t < k) & (m_t >= R)
    k_t = np.where(valid, k_t, 1)
    m_t = np.where(valid, m_t, R)
    full, rest = np.divmod(k, k_t)
    has_rest = rest > 0

    def kt_eff(kk):
        return np.ceil(kk / p).astype(np.int64) if p >= 1 else kk

    y1 = _cycles(m, n, kt_eff(k_t), R, C, "os", overlap)[0]
    y2 = _cycles(m, n, kt_eff(np.where(has_rest, rest, k_t)), R, C, "os", overlap)[0]
    cycles = np.where(has_rest, 0 + full * y1 + 1 * y2, 0 + full * y1)
    chunks = np.where(has_rest, 2, full)
    m_chunks = np.ceil(m / m_t).astype(np.int64)
    col_folds = np.ceil(n / C).astype(np.int64)
    a_reads = np.where(m * k <= cap[0] / 2, m * k, m * k * col_folds)
    dram = (a_reads * ba, m_chunks * k * n * bb, m * n * bc)
    psum_trips = (chunks - 1) * m * n * PSUM_BYTES * 2
    sram = (col_folds * m * k * ba, np.ceil(m / R).astype(np.int64) * k * n * bb, m * n * PSUM_BYTES + psum_trips)
    return valid, cycles, dram, sram


def _pick(take, new, old):
    """Element-wise choice between two (cycles, dram, sram) candidates."""
    return (np.where(take, new[0], old[0]), tuple(np.where(take, a, b) for a, b in zip(new[1], old[1])),
            tuple(np.where(take, a, b) for a, b in zip(new[2], old[2])))


def _best_piece(m, n, k, k_eff, p, c: _Cfg, g, cap, ops_b, busy, stretch):
    """hwmodels.cycle._best_piece: the cheapest tiling of each piece."""
    df, overlap = g.dataflow, g.fold_overlap

    def cost(x):
        return np.maximum(x[0] * stretch, (0 + x[1][0] + x[1][1] + x[1][2]) * busy / c.bpc)

    dim = m if df == "ws" else n
    best = _chunked(m, n, k, k_eff, c, df, overlap, cap, ops_b, dim)
    if not g.stream_tiling:
        return best
    if df in ("ws", "is"):
        other = np.minimum(c.cols, n if df == "ws" else m)
        fit = np.floor_divide(cap[2] / 2, other).astype(np.int64)
        ok = (k_eff > c.rows) & (fit >= 1) & (fit < dim)
        if ok.any():
            alt = _chunked(m, n, k, k_eff, c, df, overlap, cap, ops_b, np.where(ok, fit, dim))
            best = _pick(ok & (cost(alt) < cost(best)), alt, best)
    elif df == "os":
        ok = k * np.minimum(c.cols, n) > cap[1] / 2
        if ok.any():
            valid, *alt = _os_k_tiled(m, n, k, p, c, overlap, cap, *ops_b)
            best = _pick(ok & valid & (cost(alt) < cost(best)), alt, best)
    return best


def _plans(m, n, b, arrays):
    """The mappings over the arrays (hwmodels.cycle.gemm_cost): (valid, waves, split, m, n, shared, busy)."""
    big = b >= arrays
    per = np.maximum(arrays // b, 1)
    sn, sm = np.minimum(per, n), np.minimum(per, m)
    return [(big, np.ceil(b / arrays), 1, m, n, None, arrays),
            (~big, 1, sn, m, np.ceil(n / sn).astype(np.int64), "ifmap", b * sn),
            (~big & (sm > 1), 1, sm, np.ceil(m / sm).astype(np.int64), n, "filter", b * sm)]


def _gemm_cost(G: dict, c: _Cfg, g) -> dict:
    """hwmodels.cycle.gemm_cost for G GEMM calls x V variants: cycles, macs, dram, sram,
    prologue / epilogue bytes (each (G, V))."""
    m, n, k, b, p, ba, bb, bc = (G[x] for x in ("m", "n", "k", "b", "p", "ba", "bb", "bc"))
    k_eff = np.where(p >= 1, np.ceil(k / p), k).astype(np.int64)
    stretch = np.where(p < 1, 1.0 / p, 1.0)
    cap = (c.sram_i / np.maximum(ba, 1e-9), c.sram_f / np.maximum(bb, 1e-9), c.sram_o / PSUM_BYTES)
    best = None
    for valid, waves, split, pm, pn, shared, busy in _plans(m, n, b, c.arrays):
        if not np.any(valid):
            continue
        pm, pn = np.where(valid, pm, m), np.where(valid, pn, n)  # keep unused plans finite
        cyc, d, s = _best_piece_rows(pm, pn, k, k_eff, p, c, g, cap, (ba, bb, bc), busy, stretch)
        inst = b * split
        dram = tuple(v * (b if name == shared else inst) for name, v in zip(("ifmap", "filter", "ofmap"), d))
        cycles = waves * cyc * stretch
        score = np.maximum(cycles, (0 + dram[0] + dram[1] + dram[2]) / c.bpc)
        cand = {"score": score, "cycles": cycles, "dram": dram, "sram": tuple(v * inst for v in s),
                "m": pm, "n": pn, "busy": np.minimum(busy, c.arrays)}
        if best is None:
            best = {k_: np.where(valid, v, np.nan) if k_ == "score" else v for k_, v in cand.items()}
            continue
        take = valid & (np.isnan(best["score"]) | (score < best["score"]))  # first of equals wins
        best = {k_: _where_tree(take, cand[k_], best[k_]) for k_ in cand}
    first, last = _edge_bytes(best["m"], best["n"], k, c, g.dataflow, ba, bb, bc)
    return {"cycles": best["cycles"], "macs": m * n * k * b, "dram": best["dram"], "sram": best["sram"],
            "prologue": first * best["busy"], "epilogue": last * best["busy"]}


def _where_tree(take, a, b):
    if isinstance(a, tuple):
        return tuple(np.where(take, x, y) for x, y in zip(a, b))
    return np.where(take, a, b)


def _best_piece_rows(m, n, k, k_eff, p, c, g, cap, ops_b, busy, stretch):
    """`_best_piece` with the rate given per GEMM row: os K-tiling needs a scalar rate, so
    rows are grouped by rate there (other dataflows use k_eff only)."""
    if g.dataflow != "os":
        return _best_piece(m, n, k, k_eff, None, c, g, cap, ops_b, busy, stretch)
    shape = np.broadcast_shapes(m.shape, c.rows.shape)
    out = None
    for rate in np.unique(p):
        rows = (p == rate).ravel()
        sl = (lambda a: np.broadcast_to(a, shape)[rows] if np.ndim(a) else a)  # noqa: E731
        res = _best_piece(*(sl(x) for x in (m, n, k, k_eff)), float(rate), c, g, tuple(sl(x) for x in cap),
                          tuple(sl(x) for x in ops_b), sl(busy), sl(stretch))
        if out is None:
            out = (np.zeros(shape, dtype=res[0].dtype), tuple(np.zeros(shape) for _ in range(3)),
                   tuple(np.zeros(shape) for _ in range(3)))
        out[0][rows] = res[0]
        for i in range(3):
            out[1][i][rows], out[2][i][rows] = res[1][i], res[2][i]
    return out


def _edge_bytes(m, n, k, c: _Cfg, df, ba, bb, bc):
    """hwmodels.cycle._edge_bytes per variant."""
    R, C = c.rows, c.cols
    sr, sc, _ = _fold_geometry(m, n, k, df)
    ur0, uc0 = np.minimum(R, sr), np.minimum(C, sc)
    uc_last = sc - (-(-sc // C) - 1) * C
    if df == "os":
        ur_last = sr - (-(-sr // R) - 1) * R
        return ur0 * ba + uc0 * bb, ur_last * uc_last * bc
    if df == "ws":
        return ur0 * uc0 * bb + ur0 * ba, uc_last * bc
    return ur0 * uc0 * ba + ur0 * bb, uc_last * bc


def _gemm_rows(ops, cfg, base, compute_fallback):
    """The GEMM calls of the trace (attention: its two matmuls) as column arrays, and per
    op what `_op_arrays` needs to finish it."""
    cols = {x: [] for x in ("m", "n", "k", "b", "p", "ba", "bb", "bc")}
    plan = []

    def add(m, n, k, b, p, ba, bb, bc):
        for x, v in zip(cols, (m, n, k, b, p, ba, bb, bc)):
            cols[x].append(v)
        return len(cols["m"]) - 1

    for op in ops:
        d = op.dims
        if op.kind in ("gemm", "moe_router"):
            fmt, note = _compute_format(op, cfg, base, compute_fallback)
            if op.kind == "gemm":
                m, n, k, b = int(d["m"]), int(d["n"]), int(d["k"]), int(d.get("b", 1))
            else:
                m, n, k, b = int(d["tokens"]), int(d["experts"]), int(d["hidden"]), 1
            if min(m, n, k, b) == 0:
                plan.append(("empty", op, None, (note,)))
                continue
            groups = expert_groups(op)
            if groups is not None:  # routed experts: one GEMM row per expert piece (hwmodels.cycle._grouped)
                ba, _, bc = _gemm_operands(op)
                rows = tuple((add(r, n, k, b, cfg.rate(fmt), ba, groups.weight_bytes, bc), c) for r, c in groups.pieces)
                plan.append(("grouped", op, (fmt, rows), (note,) + operand_notes(op, fmt, cfg) + (groups.note,)))
                continue
            plan.append(("gemm", op, (fmt, add(m, n, k, b, cfg.rate(fmt), *_gemm_operands(op))),
                         (note,) + operand_notes(op, fmt, cfg)))
        elif op.kind == "attention":
            fmt, note = _compute_format(op, cfg, base, compute_fallback)
            batch, heads, kvh = int(d["batch"]), int(d["heads"]), int(d.get("kv_heads", d["heads"]))
            q, kv, hd = int(d["q_len"]), int(d["kv_len"]), int(d["head_dim"])
            dv, group = int(d.get("v_head_dim", hd)), heads // max(kvh, 1)
            kv_t = [t for t in op.inputs if t.role == "kv"] or [op.inputs[-1]]
            bq, bk, p = _bytes_per(op.inputs[0]), _bytes_per(kv_t[0]), cfg.rate(fmt)
            i1 = add(q * group, kv, hd, batch * kvh, p, bq, bk, 4)
            i2 = add(q * group, dv, kv, batch * kvh, p, 4, bk, bq)
            plan.append(("attention", op, (fmt, i1, i2), (note,) + operand_notes(op, fmt, cfg)))
        elif op.kind in ELEMENTWISE_FLOPS:
            plan.append(("vector", op, None, None))
        else:
            plan.append(("roofline", op, None, (f"{op.name}: {op.kind} is not modelled at cycle level; "
                                                f"roofline estimate used",)))
    G = {x: np.array(v, dtype=np.int64 if x in "mnkb" else float).reshape(-1, 1) for x, v in cols.items()}
    return G, plan


def _finish(c: _Cfg, fmt, cycles, vector_flops, macs, dram, sram, prologue, epilogue):
    """hwmodels.cycle._finish + hwmodels.energy.op_energy per variant: (latency, energy).
    ``sram``: (bytes, J/B) pairs in the per-point dict's order."""
    cfg = c.base_cfg
    vec_cycles = vector_flops / c.vec_per_cycle if vector_flops else 0.0
    t_compute = (cycles + vec_cycles) / c.clock
    total_dram = 0
    for v in dram:
        total_dram = total_dram + v
    t_mem = total_dram / c.bw
    t_edges = (prologue + epilogue) / c.bw
    latency = np.maximum(t_compute + t_edges, t_mem) + c.dram_lat
    e_mac = c.fabric * cfg.pe.energy_per_mac_j(fmt) if macs else 0.0
    sram_j = moved = 0
    for b, ej in sram:
        sram_j = sram_j + b * ej
        moved = moved + b
    energy = 0 + macs * e_mac + vector_flops * c.vec_j + sram_j + total_dram * c.e_dram + moved * c.wire \
        + c.static * latency
    return latency, energy


def _roofline_op(op, base, c: _Cfg, compute_fallback):
    """An op the cycle model hands to the roofline, per variant: its main memory, static power and
    compute peaks (scaled to the variant's clock and array as load_hw scales them,
    hwmodels.peak_scaling.peak_ratio) are the variant's."""
    from dataclasses import replace

    from hwmodels import roofline
    from hwmodels.peak_scaling import peak_ratio
    lat, en = np.empty(c.n), np.empty(c.n)
    cfg0 = c.base_cfg
    for j in range(c.n):
        mem = replace(base.main_memory, bandwidth_Bps=float(c.bw.ravel()[j]),
                      energy_per_byte_j=float(c.e_dram.ravel()[j]))
        cfg1 = replace(cfg0, rows=int(c.rows.ravel()[j]), cols=int(c.cols.ravel()[j]),
                       arrays=int(c.arrays.ravel()[j]), vector_lanes=int(c.vlanes.ravel()[j]))
        clock = float(c.clock.ravel()[j])
        peaks = {f: p * peak_ratio(f, cfg0, base.clock_hz, cfg1, clock)[0] for f, p in base.peak_flops.items()}
        hw = replace(base, clock_hz=clock, static_power_w=float(c.static.ravel()[j]), peak_flops=peaks,
                     memory=(mem,) + tuple(base.memory[1:]))
        cost = roofline.estimate(op, hw, compute_fallback=True)
        lat[j], en[j] = cost.latency_s, cost.energy_j
    return lat, en


def _area(base: HardwareSpec, c: _Cfg):
    """hwmodels.cycle.area_breakdown()["total"] per variant."""
    cfg = c.base_cfg
    pe = cfg.pe.area_um2() * (c.rows * c.cols * c.arrays) / 1e6
    vec = DotProductUnit(("fp32",), node_nm=cfg.node_nm, vdd=cfg.vdd).area_um2() * c.vlanes * c.arrays / 1e6
    sram = 0
    for attr in ("sram_i", "sram_f", "sram_o"):
        sizes = getattr(c, attr).ravel()
        u, inv = np.unique(sizes, return_inverse=True)
        sram = sram + np.array([sram_area_mm2(float(s), cfg.node_nm) for s in u])[inv.ravel()]
    sram = sram * c.arrays.ravel()
    kind = "hbm" if "hbm" in base.main_memory.name.lower() else "ddr"
    bw = c.bw.ravel()
    u, inv = np.unique(bw, return_inverse=True)
    phy = np.array([phy_area_mm2(float(x), kind) for x in u])[inv.ravel()]
    return 0 + pe.ravel() + vec.ravel() + sram + phy


def evaluate_variants(ops, base: HardwareSpec, overrides: dict, compute_fallback: bool = False) -> dict:
    """The cycle model on V variants of `base` at once. ``overrides``: {field: (V,) array}
    of the fields in `VARIANT_FIELDS` (plus main-memory bandwidth / energy), SI units.
    Returns ``total_latency_s`` / ``total_energy_j`` (V,), per-op ``latency_s`` /
    ``energy_j`` (ops, V) for one instance of each op, ``area_mm2`` (V,) and ``notes``."""
    ok, why = applicable(base)
    if not ok or "accelerator" not in base.sections:
        raise HardwareError(f"{base.source or base.name}: the vectorised cycle model needs an accelerator: "
                            f"section ({why or 'an fpga: array is sized per point'})")
    ops = list(ops)
    n = max([np.size(v) for v in overrides.values()] or [1])
    c = _Cfg(base, overrides, n)
    cfg = c.base_cfg
    G, plan = _gemm_rows(ops, cfg, base, compute_fallback)
    res = _gemm_cost(G, c, cfg) if len(G["m"]) else None
    lat, en = np.zeros((len(ops), n)), np.zeros((len(ops), n))
    for i, (kind, op, info, _) in enumerate(plan):
        if kind == "gemm":
            fmt, r = info
            s = tuple(x[r] + d[r] for x, d in zip(res["sram"], res["dram"]))  # + fills / write-backs
            lat[i], en[i] = _finish(c, fmt, res["cycles"][r], 0.0, int(res["macs"][r, 0]),
                                    tuple(x[r] for x in res["dram"]), tuple(zip(s, (c.ej_i, c.ej_f, c.ej_o))),
                                    res["prologue"][r], res["epilogue"][r])
        elif kind == "grouped":
            lat[i], en[i] = _grouped(c, info, res)
        elif kind == "attention":
            lat[i], en[i] = _attention(c, op, info, res)
        elif kind == "vector":
            din, dout = sum(t.nbytes for t in op.inputs), sum(t.nbytes for t in op.outputs)
            lat[i], en[i] = _finish(c, "fp32", 0.0, op.flops, 0.0, (din, dout),
                                    ((2 * din, c.ej_i), (2 * dout, c.ej_o)), 0.0, 0.0)
        elif kind == "roofline":
            lat[i], en[i] = _roofline_op(op, base, c, compute_fallback)
    tot_l, tot_e = np.zeros(n), np.zeros(n)
    for i, op in enumerate(ops):
        tot_l = tot_l + lat[i] * op.repeat
        tot_e = tot_e + en[i] * op.repeat
    notes = tuple(dict.fromkeys(n for p in plan for n in (p[3] or ()) if n))
    return {"total_latency_s": tot_l, "total_energy_j": tot_e, "latency_s": lat, "energy_j": en,
            "area_mm2": _area(base, c), "notes": notes}


def _attention(c: _Cfg, op, info, res):
    """hwmodels.cycle._estimate's attention branch per variant."""
    fmt, i1, i2 = info
    d = op.dims
    q, kv = int(d["q_len"]), int(d["kv_len"])
    pairs = attended_pairs(d)
    frac = pairs / (q * kv) if q * kv else 0.0
    cycles = (res["cycles"][i1] + res["cycles"][i2]) * frac
    vec = ELEMENTWISE_FLOPS["softmax"] * int(d["batch"]) * int(d["heads"]) * pairs
    dram = (sum(t.nbytes for t in op.inputs if t.role != "kv"), sum(t.nbytes for t in op.inputs if t.role == "kv"),
            sum(t.nbytes for t in op.outputs))
    sram = tuple(((a[i1] + a[i2]) * frac + d, ej) for a, d, ej in zip(res["sram"], dram, (c.ej_i, c.ej_f, c.ej_o)))
    macs = (int(res["macs"][i1, 0]) + int(res["macs"][i2, 0])) * frac
    return _finish(c, fmt, cycles, vec, macs, dram, sram, res["prologue"][i1], res["epilogue"][i2])


def _grouped(c: _Cfg, info, res):
    """hwmodels.cycle._grouped per variant: the expert pieces summed in the same order."""
    fmt, rows = info
    idx, cnt = [r for r, _ in rows], [x for _, x in rows]
    cycles = grouped_sum(cnt, [res["cycles"][r] for r in idx])
    macs = grouped_sum(cnt, [int(res["macs"][r, 0]) for r in idx])
    dram = tuple(grouped_sum(cnt, [d[r] for r in idx]) for d in res["dram"])
    sram = tuple(grouped_sum(cnt, [x[r] for r in idx]) for x in res["sram"])
    s = tuple((x + d, ej) for x, d, ej in zip(sram, dram, (c.ej_i, c.ej_f, c.ej_o)))  # + fills / write-backs
    return _finish(c, fmt, cycles, 0.0, macs, dram, s, res["prologue"][idx[0]], res["epilogue"][idx[-1]])
