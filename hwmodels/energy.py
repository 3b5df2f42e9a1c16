"""Energy and area of a whole accelerator, by component.

energy = MACs x energy/MAC(format)                 (hwmodels.arith dot-product unit)
       + SRAM bytes x energy/byte(bank + route)    (Horowitz SRAM read of one 128 KiB bank, plus the
                                                    wire from the buffer's port to the bank)
       + DRAM bytes x energy/byte                  (the spec's outermost memory level)
       + NoC / wire bytes x distance x pJ/bit/mm   (Keckler; hardware-data.md §4.5)
       + static power x time

area   = PE array (dot-product units) + vector unit + SRAM (raw 6T bit cells / array efficiency)
       + memory PHYs (+ controllers)

All numbers are per instance of an op; the breakdown dicts always sum to the total.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hwmodels.arith import HOROWITZ_NODE_NM, HOROWITZ_VDD, tech_scale

__all__ = ["sram_energy_per_byte", "sram_access_energy_per_byte", "SRAM_BANK_BYTES", "sram_area_mm2",
           "bitcell_mm2", "BITCELL_UM2", "EnergyParams", "op_energy", "phy_area_mm2", "static_power_w",
           "WIRE_J_PER_BIT_MM"]

# Horowitz ISSCC 2014, 45 nm / 0.9 V, 64-bit SRAM read: 8 KB 10 pJ, 32 KB 20 pJ, 1 MB 100 pJ
# (hardware-data.yaml energy.horowitz_45nm_0p9v.memory_pj_per_64bit_access).
_SRAM_SIZES = np.log(np.array([8 * 1024, 32 * 1024, 1024 * 1024], dtype=float))
_SRAM_PJ_64B = np.log(np.array([10.0, 20.0, 100.0]))

# Repeated global wires at 7-16 nm: 0.05-0.15 pJ/bit/mm, practical default 0.1
# (hardware-data.md §4.5, consistent with Keckler 2011: 0.12 pJ/bit/mm at 40 nm).
WIRE_J_PER_BIT_MM = 0.1e-12

# SRAM area = 6T bit cells / array efficiency. The bit cell is the foundry's raw high-density 6T
# cell (the cell alone, no periphery), so dividing by an array efficiency adds the periphery once:
#   TSMC N7 HD 6T: 0.027 um^2 (Chang et al., "A 7nm 256Mb SRAM in high-k metal-gate FinFET technology
#     with write-assist circuitry for low-VMIN applications", ISSCC 2017 paper 12.1; 256 Mib on a
#     42.64 mm^2 test die) [V: WikiChip "7 nm lithography process", which cites the paper];
#   TSMC 16 nm HD 6T: 0.07 um^2 (Chen et al., "A 16 nm 128 Mb SRAM in high-k metal-gate FinFET
#     technology with write-assist circuitry for low-VMIN applications", JSSC 50(1) 2015) [V: WikiChip
#     "16 nm lithography process"; a later revision lists 16FF+ HD 0.074 um^2];
#   TSMC N5 and N3E HD 6T: 0.021 um^2 [V: IEDM 2022 report (WikiChip Fuse, "IEDM 2022: did we just
#     witness the death of SRAM?"): N3E 0.021 um^2, "exactly the same bitcell size as their N5 node"].
# Between the listed nodes the cell is interpolated in log(area) vs log(node); outside them the nearest
# cell is scaled with the Stillmaker-Baas area factor (hwmodels.arith.tech_scale).
# LLMCompass's cost model (and the shared hardware-data.yaml, sram_bitcell_mm2, which copies it) uses
# 0.17 um^2/bit at 7 nm as its "bit cell": that is about the whole 256 Mib N7 test die per bit
# (42.64 mm^2 / 268.4 Mbit = 0.159 um^2), periphery included, so dividing it by an array efficiency
# counted the periphery twice (a GC200-like 900 MB of SRAM came out at 1,739 mm^2 against the real
# chip's 823 mm^2 die). The published cell wins (docs/hardware-sources.md, `tsmc_n7_sram`).
# Array efficiency (cells / macro area) from CACTI, as LLMCompass tabulates it: 0.076 (4 KB) ... 0.704
# (128 KB); larger memories are tiled from 128-512 KB banks, so they keep ~0.7. Between the two points
# the area is the bit cells plus a periphery interpolated in log(size) between the two points'
# (cells x (1/eff - 1)): interpolating the efficiency itself in log(size) made it rise faster than the
# size below ~7.3 KB, so a larger SRAM came out smaller.
BITCELL_UM2 = {16.0: 0.070, 7.0: 0.027, 5.0: 0.021, 3.0: 0.021}  # TSMC high-density 6T, um^2 (sources above)
_EFF_SIZES = np.array([4 * 1024, 128 * 1024], dtype=float)
_EFF = np.array([0.076, 0.704])


def bitcell_mm2(node_nm: float) -> float:
    """Area (mm^2) of one high-density 6T SRAM bit cell at ``node_nm`` (BITCELL_UM2, interpolated in
    log-log between its nodes; scaled with tech_scale's area factor beyond them)."""
    nodes = sorted(BITCELL_UM2)
    node = float(node_nm)
    if node < nodes[0] or node > nodes[-1]:
        ref = nodes[0] if node < nodes[0] else nodes[-1]
        _, af = tech_scale(ref, node)
        return BITCELL_UM2[ref] * af * 1e-6
    y = np.interp(math.log(node), np.log(nodes), np.log([BITCELL_UM2[n] for n in nodes]))
    return float(math.exp(y)) * 1e-6


# LLMCompass PHY areas (do not scale with node): HBM2e 10.45 mm^2 per 1024-bit channel,
# DDR5 1.45 mm^2 per 32-bit unit.
HBM_PHY_MM2_PER_CHANNEL = 10.45
HBM_CHANNEL_BPS = 1024 * 3.2e9 / 8  # 1024 bits at 3.2 Gb/s/pin (LLMCompass GA100 HBM2e) = 409.6 GB/s
DDR_PHY_MM2_PER_32B = 1.45
DDR_32B_BPS = 32 * 4.8e9 / 8  # one 32-bit DDR5-4800 unit = 19.2 GB/s


def sram_energy_per_byte(size_bytes: float, node_nm: float = 7.0, vdd: float = 0.8) -> float:
    """J per byte read from an SRAM of ``size_bytes`` (log-log interpolation of Horowitz's
    three sizes, end slopes extrapolated), scaled from 45 nm / 0.9 V to the node."""
    x = math.log(max(float(size_bytes), 64.0))
    if x <= _SRAM_SIZES[0]:
        slope = (_SRAM_PJ_64B[1] - _SRAM_PJ_64B[0]) / (_SRAM_SIZES[1] - _SRAM_SIZES[0])
        y = _SRAM_PJ_64B[0] + slope * (x - _SRAM_SIZES[0])
    elif x >= _SRAM_SIZES[-1]:
        slope = (_SRAM_PJ_64B[2] - _SRAM_PJ_64B[1]) / (_SRAM_SIZES[2] - _SRAM_SIZES[1])
        y = _SRAM_PJ_64B[2] + slope * (x - _SRAM_SIZES[2])
    else:
        y = float(np.interp(x, _SRAM_SIZES, _SRAM_PJ_64B))
    ef, _ = tech_scale(HOROWITZ_NODE_NM, node_nm, HOROWITZ_VDD, vdd)
    return math.exp(y) * 1e-12 / 8.0 * ef


# A buffer larger than one bank is tiled from banks of SRAM_BANK_BYTES: the area model's array
# efficiency stops at its 128 KB point (0.704) for exactly that reason. An access reads one bank, so it
# is priced at the bank's size on Horowitz's curve (inside its 8 KB - 1 MB range), plus the wire from
# the buffer's port to the bank: half the side of the buffer's modelled area (sram_area_mm2) at
# WIRE_J_PER_BIT_MM. Pricing the whole 8-32 MiB buffer as one array extrapolated Horowitz's 45 nm curve
# 8-32x past its 1 MB end (8 MiB: 262 pJ per 64-bit read at 45 nm, against 38 pJ for the bank).
SRAM_BANK_BYTES = 128 * 1024


def sram_access_energy_per_byte(size_bytes: float, node_nm: float = 7.0, vdd: float = 0.8) -> float:
    """J per byte read from (or written to: priced as a read) a buffer of ``size_bytes``: one
    bank of min(size, SRAM_BANK_BYTES) on Horowitz's curve, plus the wire from the buffer's port to
    that bank, half the side of the buffer (0 for a buffer of one bank)."""
    bank = sram_energy_per_byte(min(float(size_bytes), SRAM_BANK_BYTES), node_nm, vdd)
    if size_bytes <= SRAM_BANK_BYTES:
        return bank
    side_mm = math.sqrt(sram_area_mm2(size_bytes, node_nm))
    return bank + WIRE_J_PER_BIT_MM * 8 * side_mm / 2


def sram_area_mm2(size_bytes: float, node_nm: float = 7.0) -> float:
    """Area (mm^2) of an SRAM: bits x raw 6T bit-cell area (bitcell_mm2) / CACTI array efficiency."""
    if size_bytes <= 0:
        return 0.0
    cell = bitcell_mm2(node_nm)
    cells = float(size_bytes) * 8 * cell
    if size_bytes <= _EFF_SIZES[0] or size_bytes >= _EFF_SIZES[1]:  # one efficiency outside the ramp
        return cells / (_EFF[0] if size_bytes <= _EFF_SIZES[0] else _EFF[1])
    periphery = _EFF_SIZES * 8 * cell * (1 / _EFF - 1)  # the two end points' periphery, mm^2
    return cells + float(np.interp(math.log(size_bytes), np.log(_EFF_SIZES), periphery))


def phy_area_mm2(bandwidth_Bps: float, kind: str = "hbm") -> float:
    """Memory-interface PHY area for a given off-chip bandwidth (whole channels)."""
    if kind == "hbm":
        return math.ceil(bandwidth_Bps / HBM_CHANNEL_BPS) * HBM_PHY_MM2_PER_CHANNEL
    return math.ceil(bandwidth_Bps / DDR_32B_BPS) * DDR_PHY_MM2_PER_32B


@dataclass(frozen=True)
class EnergyParams:
    """Per-component energy coefficients of one accelerator."""
    sram_j_per_byte: dict  # buffer name -> J/B
    dram_j_per_byte: float
    wire_j_per_byte: float  # J per byte moved between SRAM and the array (NoC / wires)
    static_power_w: float | None  # None: the file gives none (static energy unknown, NaN; total dynamic only)
    vector_j_per_flop: float
    mac_factor: float = 1.0  # multiplies the dot-product unit's MAC energy (FPGA fabric)


def op_energy(macs: float, e_mac_j: float, sram_bytes: dict, dram_bytes: float,
              vector_flops: float, latency_s: float, p: EnergyParams) -> dict:
    """Energy breakdown of one op instance; keys sum to ``total``. With no static power in the
    file (`p.static_power_w` None) ``static`` is NaN (unknown, never a silent 0) and ``total`` is the
    dynamic energy only (the sum of the other keys); the report labels it so (HardwareSpec.energy_scope)."""
    table = p.sram_j_per_byte
    for name in sram_bytes:
        if name not in table and "default" not in table:
            raise KeyError(f"op_energy: SRAM bytes under {name!r} but no energy for that buffer (priced: "
                           f"{sorted(table)}): they would be charged 0 J")
    sram = sum(b * table.get(name, table.get("default")) for name, b in sram_bytes.items())
    moved = sum(sram_bytes.values())
    out = {
        "mac": macs * e_mac_j,
        "vector": vector_flops * p.vector_j_per_flop,
        "sram": sram,
        "dram": dram_bytes * p.dram_j_per_byte,
        "noc": moved * p.wire_j_per_byte,
    }
    out["total"] = sum(out.values())
    if p.static_power_w is None:
        out["static"] = float("nan")
    else:
        out["static"] = p.static_power_w * latency_s
        out["total"] += out["static"]
    return out


def static_power_w(parts, hw) -> float | None:
    """The static power priced work carries (W), from (static J, seconds) pairs of the ops that
    report a static term (the analytical and cycle levels): their J over their seconds; else the
    device file's `energy.static_power` (what the roofline adds per second); None if the file gives
    none (the energies are then dynamic only and say so, HardwareSpec.energy_scope). A device of a
    layout draws it while it waits: for a collective (hwmodels.collectives.estimate_system_ops) and
    for a pipeline's idle stages (cosim.parallel_timing.layout_step; cosim.serving.steptime)."""
    # an op whose static energy is unknown (NaN: no energy.static_power in the file) adds nothing
    parts = [(e, t) for e, t in parts if e == e]
    busy = sum(t for _, t in parts)
    if busy > 0:
        return sum(e for e, _ in parts) / busy
    return getattr(hw, "static_power_w", None)
