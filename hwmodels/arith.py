"""Dot-product arithmetic units for MX / BFP / INT / FP formats: throughput, area, energy.

A parametric gate-level model in the form of "INT v.s. FP" (Chen et al., arXiv
2510.25602, Appendix C, Table 6; shared/docs/hardware-data.md §5.4). For a k-lane dot
product with element exponent bits x and significand width s:

====================  ==========================  ==================================
component             count per lane              cell
====================  ==========================  ==================================
significand multiply  s^2 partial products        multiplier partial product
adder tree            2s (int) or n (float) bits  adder bit
exponent add/sub/cmp  2x adder + x mux bits       (float only)
alignment shifter     n*log2(n) mux bits          (float only)
sub-block shift       2s mux bits                 (shared-microexponent MX4/6/9 only)
input registers       2 * element bits            register bit (PE pipelines; optional)
lane overhead         1 unit                      operand delivery / control per lane
shared, / k           normaliser n*log2(n) mux, block-scale dequantiser (/ block size),
                      FP32 accumulator, 32-bit output register
====================  ==========================  ==================================

n = min(2^(x+1) + 2*mantissa, psum_bits) is the fixed-point alignment width (Table 6).

Absolute cell costs come from Horowitz (ISSCC 2014, 45 nm, 0.9 V; hardware-data.md §4.1):
an 8-bit multiplier is 64 partial products (0.2 pJ, 282 um^2), a 32-bit adder 32 adder
bits (0.1 pJ, 137 um^2); a register bit costs what Aladdin's 40 nm library says relative
to its adder bit (hardware-data.md §4.3). Two numbers the gate counts cannot give -- the
weight of a shifter mux bit relative to an adder bit, and a fixed per-lane overhead --
differ between published design styles, so each published study is a *context* whose two
weights are solved (minimax in log ratio, on a fixed grid) from that study's own relative
costs (``CONTEXTS``); every anchor of every context is then a checked claim, and the
studies' further ratios not used in the solve are held-out checks (tests/test_arith.py,
docs/systolic-vs-scalesim.md). Costs move between nodes with Stillmaker-Baas factors.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from functools import lru_cache

import numpy as np

from workloads.formats import FormatError, NumberFormat, get_format
from workloads.io import field_error
from hwmodels.spec_data import HardwareError, UnsupportedFormatError

__all__ = ["CellCosts", "DotProductUnit", "MacCost", "mac_cost", "tech_scale", "CONTEXTS", "context_cells",
           "anchor_ratio", "STILLMAKER_NODES", "HOROWITZ_NODE_NM", "HOROWITZ_VDD"]

HOROWITZ_NODE_NM = 45
HOROWITZ_VDD = 0.9


@dataclass(frozen=True)
class CellCosts:
    """Area (um^2) and energy (J) of one cell of each kind at ``node_nm``/``vdd``."""
    node_nm: float
    mult_pp_um2: float
    mult_pp_j: float
    add_bit_um2: float
    add_bit_j: float
    mux_bit_um2: float
    mux_bit_j: float
    reg_bit_um2: float
    reg_bit_j: float
    lane_um2: float = 0.0
    lane_j: float = 0.0
    vdd: float = 0.9
    source: str = ""


# Horowitz 45 nm (hardware-data.yaml energy.horowitz_45nm_0p9v): int8 mult 0.2 pJ / 282 um^2
# over 8*8 partial products; int32 add 0.1 pJ / 137 um^2 over 32 bits.
_PP_J, _PP_UM2 = 0.2e-12 / 64, 282 / 64
_ADD_J, _ADD_UM2 = 0.1e-12 / 32, 137 / 32
# Aladdin 40 nm (energy.aladdin_40nm): register 0.009 pJ/bit, 5.98 um^2/bit vs the int32
# adder 0.21 pJ / 278 um^2 per 32 bits -> register bit = 1.37x / 0.69x an adder bit.
_REG_VS_ADD_J = 0.009 / (0.21 / 32)
_REG_VS_ADD_UM2 = 5.98 / (278 / 32)


def make_cells(mux_area: float, lane_area: float, mux_energy: float, lane_energy: float,
               source: str = "") -> CellCosts:
    """Horowitz-anchored cells with the two context weights (in adder-bit units)."""
    return CellCosts(node_nm=HOROWITZ_NODE_NM, vdd=HOROWITZ_VDD,
                     mult_pp_um2=_PP_UM2, mult_pp_j=_PP_J,
                     add_bit_um2=_ADD_UM2, add_bit_j=_ADD_J,
                     mux_bit_um2=mux_area * _ADD_UM2, mux_bit_j=mux_energy * _ADD_J,
                     reg_bit_um2=_REG_VS_ADD_UM2 * _ADD_UM2, reg_bit_j=_REG_VS_ADD_J * _ADD_J,
                     lane_um2=lane_area * _ADD_UM2, lane_j=lane_energy * _ADD_J, source=source)


# Stillmaker & Baas 2017 (hardware-data.yaml scaling.stillmaker_baas_2017): energy at a node
# is a*V^2 + b*V + c; area factor relative to 45 nm.
STILLMAKER_NODES = {
    130: ((7.171, -6.709, 2.904), 6.4),
    90: ((4.762, -4.781, 2.092), 2.8),
    65: ((3.755, -4.398, 1.975), 1.5),
    45: ((1.103, -0.362, 0.2767), 1.0),
    32: ((0.9559, -0.7823, 0.471), 0.46),
    20: ((0.373, -0.1582, 0.04104), 0.21),
    16: ((0.2958, -0.1241, 0.03024), 0.19),
    14: ((0.2363, -0.09675, 0.02239), 0.17),
    10: ((0.2068, -0.09311, 0.02375), 0.10),
    7: ((0.1776, -0.09097, 0.02447), 0.059),
}


def _node_energy_area(node_nm: float, vdd: float) -> tuple[float, float]:
    nodes = sorted(STILLMAKER_NODES)
    if node_nm < nodes[0]:
        # below 7 nm hwcomponents extrapolates energy ~ sqrt(node), area ~ node (hardware-data.md §6.1)
        (a, b, c), area7 = STILLMAKER_NODES[7]
        e7 = a * vdd * vdd + b * vdd + c
        return e7 * math.sqrt(node_nm / 7), area7 * node_nm / 7
    if node_nm > nodes[-1]:
        raise HardwareError(f"technology node {node_nm} nm outside the Stillmaker-Baas table "
                            f"({nodes[0]}-{nodes[-1]} nm)")
    # linear interpolation in node size between table rows (the corrected direction,
    # hardware-data.md §6.1 bug note)
    hi = min(n for n in nodes if n >= node_nm)
    lo = max(n for n in nodes if n <= node_nm)

    def ea(n):
        (a, b, c), area = STILLMAKER_NODES[n]
        return a * vdd * vdd + b * vdd + c, area

    if hi == lo:
        return ea(lo)
    (e_lo, a_lo), (e_hi, a_hi) = ea(lo), ea(hi)
    w = (node_nm - lo) / (hi - lo)
    return e_lo + w * (e_hi - e_lo), a_lo + w * (a_hi - a_lo)


def tech_scale(from_nm: float, to_nm: float, vdd_from: float = 0.8,
               vdd_to: float = 0.8) -> tuple[float, float]:
    """(energy factor, area factor) from one node/supply to another (Stillmaker-Baas)."""
    e0, a0 = _node_energy_area(from_nm, vdd_from)
    e1, a1 = _node_energy_area(to_nm, vdd_to)
    return e1 / e0, a1 / a0


def _significand(f: NumberFormat) -> int:
    """Multiplier input width: hidden bit + mantissa for floats, the full two's-complement
    word for ints, the magnitude for sign-magnitude block formats (bfp, microexp)."""
    if f.exponent_bits > 0:
        return f.mantissa_bits + 1
    if f.family in ("bfp", "microexp"):
        return f.mantissa_bits
    return f.element_bits  # int, mxint, int_group: two's complement


def _element(f: NumberFormat) -> NumberFormat:
    return get_format(f.element) if f.element and f.family in ("mx", "nvfp4") else f


# NVINT4 of the INT v.s. FP study: int4 elements, E4M3 scale per 16 (not in the format
# registry; used only as an anchor of the cost model).
NVINT4 = replace(get_format("int4"), name="nvint4", family="mx", element="int4", block_size=16,
                 scale_format="e4m3", scale_bits=8)


@dataclass(frozen=True)
class MacCost:
    """Area and energy of one MAC lane of a k-lane dot-product unit, by component."""
    format: str
    lanes: int
    node_nm: float
    area_um2: float
    energy_j: float
    area_breakdown: dict  # component -> um^2
    energy_breakdown: dict  # component -> J

    def to_dict(self) -> dict:
        return asdict(self)


def mac_cost(fmt: str, lanes: int | None = None, psum_bits: int = 24,
             cells: CellCosts | None = None, registers: bool = True) -> MacCost:
    """Area (um^2) and energy (J) per MAC lane of a k-lane dot product in ``fmt``, at the
    node of ``cells`` (default: the "intfp25" context at 45 nm), by component.
    ``lanes`` defaults to the block size of a block format, else 32.
    """
    f = get_format(fmt)
    e = _element(f)
    c = cells or context_cells("intfp25")
    k = int(lanes or f.block_size or 32)
    blk = int(f.block_size or k)
    x = e.exponent_bits
    s = _significand(e)
    comp_a: dict[str, float] = {}
    comp_e: dict[str, float] = {}

    def put(name, count, um2, j):
        comp_a[name] = comp_a.get(name, 0.0) + count * um2
        comp_e[name] = comp_e.get(name, 0.0) + count * j

    put("multiplier", s * s, c.mult_pp_um2, c.mult_pp_j)
    if x > 0:
        n = min(2 ** (x + 1) + 2 * e.mantissa_bits, psum_bits)
        put("adder_tree", n, c.add_bit_um2, c.add_bit_j)
        put("exponent", 2 * x, c.add_bit_um2, c.add_bit_j)  # exponent add + subtract
        put("exponent", x, c.mux_bit_um2, c.mux_bit_j)  # max-exponent comparator
        put("aligner", n * math.log2(n), c.mux_bit_um2, c.mux_bit_j)
        put("normalizer", n * math.log2(n) / k, c.mux_bit_um2, c.mux_bit_j)
    else:
        put("adder_tree", 2 * s, c.add_bit_um2, c.add_bit_j)
    if f.family == "microexp":
        put("subblock_shift", 2 * s, c.mux_bit_um2, c.mux_bit_j)
    put("lane_overhead", 1, c.lane_um2, c.lane_j)
    if registers:
        put("registers", 2 * e.element_bits + 32 / k, c.reg_bit_um2, c.reg_bit_j)
    # block-scale dequantiser, shared by the block (Table 6: two 8-bit integer adds for
    # power-of-two scales, two small FP multiplies for E4M3; one fp16 multiply for int groups)
    if f.block_size:
        sf = f.scale_format
        if sf in ("e8m0", "exp8"):
            put("scale", 16 / blk, c.add_bit_um2, c.add_bit_j)
        elif sf == "e4m3":
            put("scale", 2 * 16 / blk, c.mult_pp_um2, c.mult_pp_j)
            put("scale", 2 * 8 / blk, c.add_bit_um2, c.add_bit_j)
        elif sf == "fp16":
            put("scale", 121 / blk, c.mult_pp_um2, c.mult_pp_j)
            put("scale", 10 / blk, c.add_bit_um2, c.add_bit_j)
    # shared FP32 accumulator: 24-bit significand add, 8-bit exponent subtract/compare,
    # align + normalise shifters (Table 6 "shared FP32 accumulator / k")
    put("accumulator", (24 + 16) / k, c.add_bit_um2, c.add_bit_j)
    put("accumulator", 2 * 24 * math.log2(24) / k, c.mux_bit_um2, c.mux_bit_j)
    return MacCost(format=f.name, lanes=k, node_nm=c.node_nm, area_um2=sum(comp_a.values()),
                   energy_j=sum(comp_e.values()), area_breakdown=comp_a, energy_breakdown=comp_e)


def _union_cost(formats, lanes, psum_bits, cells, registers):
    """A unit serving several formats: each component sized for the most demanding format
    (a configurable datapath shares its multiplier, tree and shifters)."""
    costs = [mac_cost(f, lanes, psum_bits, cells, registers) for f in formats]
    # sorted: a set's order follows the per-process string hash, and float sums below
    # would then differ in the last bit from one run to the next
    keys = sorted(set().union(*(c.area_breakdown for c in costs)))
    area = {k: max(c.area_breakdown.get(k, 0.0) for c in costs) for k in keys}
    energy = {k: max(c.energy_breakdown.get(k, 0.0) for c in costs) for k in keys}
    # every format keeps its own scale handling
    area["scale"] = sum(c.area_breakdown.get("scale", 0.0) for c in costs)
    return {"area_um2": sum(area.values()), "energy_j": sum(energy.values()),
            "area_breakdown": area, "energy_breakdown": energy}


# ---------------------------------------------------------------------------------
# Published relative costs (hardware-data.yaml mx_bfp.relative_cost; hardware-data.md §5.2).
# Each anchor: (format(s) measured, baseline format(s), value, metric). Metrics: "ratio"
# (cost / baseline cost), "area_x_memory" (area per MAC x bits per element, relative),
# "density" (baseline area / area). ``fit`` anchors solve the context's two weights; the
# others are held out. ``registers``/``lanes`` describe the study's synthesis setup.
CONTEXTS = {
    # INT v.s. FP (arXiv 2510.25602) Table 5: MMU, combinational only, FP32 accumulation,
    # k = 32 (MX) / 16 (NV), psum 24 b, equal throughput, normalised to MXFP8.
    "intfp25": dict(
        src="intfp25 Table 5", registers=False, lanes=None,
        area=[(("mxint8",), ("mxfp8_e4m3",), 0.79, "ratio", True),
              (("nvfp4",), ("mxfp8_e4m3",), 0.54, "ratio", True),
              ((NVINT4,), ("mxfp8_e4m3",), 0.38, "ratio", True),
              (("mxint8", NVINT4), ("mxfp8_e4m3", "nvfp4"), 0.66, "ratio", False)],
        energy=[(("mxint8",), ("mxfp8_e4m3",), 0.63, "ratio", True),
                (("nvfp4",), ("mxfp8_e4m3",), 0.55, "ratio", True),
                ((NVINT4,), ("mxfp8_e4m3",), 0.34, "ratio", True),
                # mixed 8-bit : 4-bit units at 1:2 throughput (one 8-bit lane serves two 4-bit MACs)
                (("mxint8", NVINT4), ("mxfp8_e4m3", "nvfp4"), 0.75, "ratio", False)]),
    # Shared microexponents (ISCA 2023) p.7: 64-element dot product, only I/O registers,
    # vs a configurable FP8 (E4M3 + E5M2) dot product; area x memory ~2x (MX6), 4x (MX4) lower.
    "bdr23": dict(
        src="bdr23 p.7", registers=True, lanes=64,
        area=[(("mx6",), ("fp8_e4m3", "fp8_e5m2"), 1 / 2, "area_x_memory", True),
              (("mx4",), ("fp8_e4m3", "fp8_e5m2"), 1 / 4, "area_x_memory", True)],
        energy=[]),
    # MSFP (NeurIPS 2020) Table 1: MAC density vs an FP32 MAC (box 16), arithmetic only.
    "msfp20": dict(
        src="msfp20 Table 1", registers=False, lanes=16,
        area=[(("msfp16",), ("fp32",), 8.8, "density", True),
              (("bfp14_b16",), ("fp32",), 13.9, "density", False),
              (("msfp12",), ("fp32",), 31.9, "density", True)],
        energy=[]),
}

# Search grid for the two context weights (adder-bit units): mux bit 0.02..20, lane
# overhead 0 or 0.5..2000; log spaced. A grid, not an optimiser: no scipy dependency and
# the same answer on every machine.
_MUX_GRID = np.exp(np.linspace(np.log(0.02), np.log(20.0), 121))
_LANE_GRID = np.concatenate([[0.0], np.exp(np.linspace(np.log(0.5), np.log(2000.0), 121))])


def _unit_counts(formats, lanes, registers, psum_bits=24):
    """Cost of a (multi-format) lane as a linear form in the cell weights
    (pp, add, mux, reg, lane) -> vector of counts."""
    basis = []
    for i in range(5):
        v = [0.0] * 5
        v[i] = 1.0
        cells = CellCosts(0, v[0], v[0], v[1], v[1], v[2], v[2], v[3], v[3], v[4], v[4])
        basis.append(_union_cost(formats, lanes, psum_bits, cells, registers)["area_um2"])
    return np.array(basis)


def _anchor_value(anchor, w, ctx, metric_kind):
    fmts, base, _, metric, _ = anchor
    a = _unit_counts(fmts, ctx["lanes"], ctx["registers"]) @ w
    b = _unit_counts(base, ctx["lanes"], ctx["registers"]) @ w
    if metric == "ratio":
        return a / b
    if metric == "density":
        return b / a
    bits_a = max(get_format(f).bits_per_element for f in fmts)
    bits_b = max(get_format(f).bits_per_element for f in base)
    return a * bits_a / (b * bits_b)


@lru_cache(maxsize=None)
def _solve(context: str, kind: str) -> tuple[float, float]:
    ctx = CONTEXTS[context]
    anchors = [a for a in ctx[kind] if a[4]]
    if not anchors:
        return _solve("intfp25", kind)
    counts = [(_unit_counts(a[0], ctx["lanes"], ctx["registers"]),
               _unit_counts(a[1], ctx["lanes"], ctx["registers"]), a) for a in anchors]
    reg = _REG_VS_ADD_J if kind == "energy" else _REG_VS_ADD_UM2
    pp = (_PP_J / _ADD_J) if kind == "energy" else (_PP_UM2 / _ADD_UM2)
    mux, lane = np.meshgrid(_MUX_GRID, _LANE_GRID, indexing="ij")
    worst = np.zeros_like(mux)
    for ca, cb, (fmts, base, value, metric, _) in counts:
        va = ca[0] * pp + ca[1] + ca[2] * mux + ca[3] * reg + ca[4] * lane
        vb = cb[0] * pp + cb[1] + cb[2] * mux + cb[3] * reg + cb[4] * lane
        if metric == "ratio":
            r = va / vb
        elif metric == "density":
            r = vb / va
        else:
            ba = max(get_format(f).bits_per_element for f in fmts)
            bb = max(get_format(f).bits_per_element for f in base)
            r = va * ba / (vb * bb)
        worst = np.maximum(worst, np.abs(np.log(r / value)))
    i = np.unravel_index(np.argmin(worst), worst.shape)
    return float(mux[i]), float(lane[i])


def context_cells(context: str = "intfp25") -> CellCosts:
    """Horowitz-anchored cell costs with the context's solved mux and lane weights."""
    if context not in CONTEXTS:
        raise HardwareError(f"arith context: got {context!r}; expected one of {sorted(CONTEXTS)}")
    ma, la = _solve(context, "area")
    me, le = _solve(context, "energy")
    return make_cells(ma, la, me, le, source=f"horowitz14 cells, weights solved on {CONTEXTS[context]['src']}")


def anchor_ratio(context: str, anchor, kind: str = "area") -> float:
    """The model's value of one published anchor of ``context`` (same metric and units)."""
    ctx = CONTEXTS[context]
    c = context_cells(context)
    if kind == "area":
        w = np.array([c.mult_pp_um2, c.add_bit_um2, c.mux_bit_um2, c.reg_bit_um2, c.lane_um2])
    else:
        w = np.array([c.mult_pp_j, c.add_bit_j, c.mux_bit_j, c.reg_bit_j, c.lane_j])
    return float(_anchor_value(anchor, w, ctx, kind))


@dataclass(frozen=True)
class DotProductUnit:
    """A multi-format dot-product unit (one PE of a systolic array, or a vector MAC).

    ``formats``: input formats it accepts; ``lanes``: MACs per cycle in its widest
    format; ``pack_narrow``: a lane of the widest format serves floor(wide/narrow)
    narrower MACs per cycle (INT v.s. FP Table 7 reuse: an fp8 lane serves fp4, an int8
    lane int4; Blackwell and CDNA4 run FP4 at 2x FP8, hardware-data.md §5.2).
    Area: a datapath sized for the most demanding format plus every format's scale
    handling; energy per MAC: the datapath of the format actually computed.
    ``registers``: PE operand/result registers (a systolic PE forwards operands).
    """
    formats: tuple
    lanes: int = 1
    pack_narrow: bool = True
    psum_bits: int = 24
    node_nm: float = 7.0
    vdd: float = 0.8
    registers: bool = True
    context: str = "intfp25"
    rates: tuple = ()  # ((format, MACs per lane per cycle), ...) explicit, overrides packing
    name: str = "dpu"
    source: str = ""

    def __post_init__(self):
        where = self.source or self.name
        # a unit read from a file is named by its section path (hwmodels.accel: "accelerator.pe"): its errors
        # name the file's full field (accelerator.pe.rates), which the override blame (hwmodels.accelerators
        # .blame) matches against the override keys; a unit built in code names its own fields
        pre = f"{self.name}." if self.source else ""
        if not self.formats:
            raise field_error(where, f"{pre}formats", "got []; expected at least one number format", HardwareError)
        fmts = tuple(self._format(f, where, f"{pre}formats", "a registered number format").name
                     for f in self.formats)
        if int(self.lanes) != self.lanes or self.lanes < 1:
            raise field_error(where, f"{pre}lanes", f"got {self.lanes!r}; expected a positive integer", HardwareError)
        if self.context not in CONTEXTS:
            raise field_error(where, f"{pre}context", f"got {self.context!r}; expected one of {sorted(CONTEXTS)}",
                              HardwareError)
        object.__setattr__(self, "formats", fmts)
        rates = dict(self.rates.items() if isinstance(self.rates, dict) else self.rates)
        clean = []
        for f, r in rates.items():
            name = self._format(f, where, f"{pre}rates", f"a rate keyed by one of the unit's formats {list(fmts)}",
                                what="a rate for ").name
            if name not in fmts:
                raise UnsupportedFormatError(where, f"got a rate for {f!r}; expected one of the unit's "
                                                    f"formats {list(fmts)}", field=f"{pre}rates")
            if isinstance(r, bool) or not isinstance(r, (int, float)) or r <= 0:
                raise field_error(where, f"{pre}rates.{f}", f"got {r!r}; expected MACs per lane per cycle > 0",
                                  HardwareError)
            clean.append((name, float(r)))
        object.__setattr__(self, "rates", tuple(sorted(clean)))
        if len(clean) == len(fmts):
            raise field_error(where, f"{pre}rates", "every format has an explicit rate; leave the lane's native "
                              "format(s) without one", HardwareError)

    @staticmethod
    def _format(name, where: str, fld: str, expected: str, what: str = "") -> NumberFormat:
        """The registered format `name`, else one HardwareError naming the file, the field, the value and
        what was expected (get_format's bare FormatError names none of them)."""
        try:
            return get_format(name)
        except FormatError:
            raise field_error(where, fld, f"got {what}{name!r}, not a registered number format (`cosim list "
                              f"formats`); expected {expected}", HardwareError) from None

    @property
    def native_bits(self) -> int:
        """Element width of a lane: the widest format that runs at the packing rate."""
        explicit = dict(self.rates)
        return max(_element(get_format(f)).element_bits for f in self.formats if f not in explicit)

    def supports(self, fmt: str) -> bool:
        return get_format(fmt).name in self.formats

    def _require(self, fmt: str) -> NumberFormat:
        f = get_format(fmt)
        if f.name not in self.formats:
            raise UnsupportedFormatError(
                self.source or self.name, f"formats: the unit cannot compute {f.name!r}; it supports {list(self.formats)}")
        return f

    def macs_per_cycle(self, fmt: str) -> float:
        """MACs per cycle of the whole unit in ``fmt``."""
        f = self._require(fmt)
        explicit = dict(self.rates)
        if f.name in explicit:
            return self.lanes * explicit[f.name]
        if not self.pack_narrow:
            return int(self.lanes)
        return int(self.lanes) * max(1, self.native_bits // _element(f).element_bits)

    def _factors(self) -> tuple[float, float]:
        return tech_scale(HOROWITZ_NODE_NM, self.node_nm, HOROWITZ_VDD, self.vdd)

    def _cells(self) -> CellCosts:
        return context_cells(self.context)

    def energy_per_mac_j(self, fmt: str) -> float:
        f = self._require(fmt)
        ef, _ = self._factors()
        return mac_cost(f.name, None, self.psum_bits, self._cells(), self.registers).energy_j * ef

    def area_um2(self) -> float:
        _, af = self._factors()
        u = _union_cost(self.formats, None, self.psum_bits, self._cells(), self.registers)
        return u["area_um2"] * self.lanes * af

    def breakdown(self, fmt: str) -> dict:
        """Per-component area (of the whole unit) and energy (per MAC in ``fmt``)."""
        f = self._require(fmt)
        ef, af = self._factors()
        u = _union_cost(self.formats, None, self.psum_bits, self._cells(), self.registers)
        c = mac_cost(f.name, None, self.psum_bits, self._cells(), self.registers)
        return {"area_um2": {k: v * af * self.lanes for k, v in u["area_breakdown"].items()},
                "energy_j": {k: v * ef for k, v in c.energy_breakdown.items()}}
