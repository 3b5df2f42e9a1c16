"""FPGAs as systolic accelerators sized by their resources.

A MAC of each format costs DSP slices and/or LUTs (`mac_resources`); the model sizes the
largest PE array that fits a utilisation budget (`size_array`), carves the on-chip
BRAM/URAM into double-buffered scratchpads, and hands the result to the cycle model as an
`AcceleratorConfig`. Versal parts can instead map onto their AI Engine tiles
(``engine: aie``): each tile is a small output-stationary array of vector MACs.

```yaml
fpga:
  resources: {dsp: 9024, dsp_type: dsp48e2, lut: 1303680, ff: 2607360, bram36: 2016, uram: 960}
  budget: {dsp: 0.8, lut: 0.6, memory: 0.8}   # fraction of each resource the design may use
  engine: pl                                   # pl (DSP/LUT fabric) | aie (AI Engine tiles)
  pe: {formats: [int8, bf16], lanes: 1}
  array: {rows: auto, cols: auto, arrays: 1}   # auto = largest square that fits
  dataflow: ws
  dram_latency: 300 ns
  aie: {tiles: 400, macs_per_tile: {int8: 128, int16: 32, fp32: 8}, data_memory: 32 KiB}
```
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from hwmodels.accel import AcceleratorConfig, quantity
from hwmodels.arith import CellCosts, DotProductUnit, mac_cost
from hwmodels.spec_data import HardwareError, HardwareSpec, UnsupportedFormatError
from hwmodels.systolic import DATAFLOWS
from workloads.formats import FormatError, get_format
from workloads.io import field_error

__all__ = ["mac_resources", "size_array", "fpga_accelerator", "DSP_PACKING", "FPGA_ENERGY_FACTOR", "PL_VDD", "AIE_VDD"]

# MACs one DSP slice does per cycle, by element format.
#  DSP48E2 (27x18 multiplier): 2 INT8 MACs per DSP with the WP486 packing (alveo_ds963 note:
#  9024 DSP x 2 x 2 ops x ~680 MHz = 24.5 TOPS); 4 INT4 [U] (compression-methods.md §4);
#  one 8x8 (bf16) or 11x11 (fp16) significand product per DSP; fp32 needs 2 (24x24 > 27x18).
#  DSP58 (Versal, 27x24): INT8 3-element dot product per DSP [R, AM004]; native FP32 (DSPFP32)
#  = 1 fp32 / bf16 MAC per DSP [R].
DSP_PACKING = {
    "dsp48e2": {"int8": 2.0, "int4": 4.0, "bf16": 1.0, "fp16": 1.0, "fp32": 0.5},
    "dsp58": {"int8": 3.0, "int4": 6.0, "bf16": 1.0, "fp16": 1.0, "fp32": 1.0},
}

# FPGA vs standard-cell ASIC dynamic energy for the same logic: ~14x (Kuon & Rose, "Measuring
# the Gap Between FPGAs and ASICs", IEEE TCAD 2007) [R: recalled, not in hardware-data.yaml].
FPGA_ENERGY_FACTOR = 14.0

# Core supply the MAC and vector energies are priced at (docs/hardware-sources.md, keys amd_ds923, amd_ds957):
# - UltraScale+ programmable logic VCCINT 0.85 V [V: AMD DS923, Virtex UltraScale+ FPGA Data Sheet: DC and AC
#   Switching Characteristics, rev 1.20 (2024-08-09), "DSP48 Slice Switching Characteristics" Table 1, whose
#   columns are "Speed Grade and VCCINT Operating Voltages": 0.90 V (-3), 0.85 V (-2, -1), 0.72 V (-2 low
#   power); DS922 (Kintex UltraScale+, rev 1.18) heads its tables with the same voltages]. The U280's XCU280
#   is a Virtex UltraScale+ part; that its card runs the 0.85 V column, not the 0.72 V low-power one, is not
#   verified here [R].
# - Versal AI Engine 0.8 V [V: AMD DS957, Versal AI Core Series Data Sheet: DC and AC Switching
#   Characteristics, "AI Engine Switching Characteristics" table: the 0.80 V (M) -2 column gives an AI Engine
#   array FMAX of 1250 MHz, the 1.25 GHz clock versal_vck190.yaml prices (0.88 V (H) -2: 1300 MHz)].
# One value per engine prices the PE unit and the vector unit alike (the device file's energy.per_flop quotes
# the same figures: tests/test_fpga.py::test_roofline_per_flop_is_the_cycle_level_price).
PL_VDD = 0.85
AIE_VDD = 0.8


def _component_counts(fmt: str, lanes=None) -> dict:
    """Gate counts of one MAC lane (pp, adder bits, mux bits, register bits)."""
    out = {}
    for i, key in enumerate(("pp", "add", "mux", "reg")):
        v = [0.0] * 4
        v[i] = 1.0
        cells = CellCosts(0, v[0], 0, v[1], 0, v[2], 0, v[3], 0)
        out[key] = mac_cost(fmt, lanes, cells=cells, registers=True).area_um2
    return out


def mac_resources(fmt: str, dsp_type: str = "dsp48e2") -> dict:
    """DSP slices and LUTs of one MAC lane of ``fmt``. Formats with a DSP packing put the
    significand product in DSPs; everything else is LUT logic from the gate counts of
    `hwmodels.arith` (a LUT6 per adder bit on the carry chain, one per two 2:1 mux bits,
    one per multiplier partial product for LUT multipliers; MX/BFP scale handling in LUTs)."""
    f = get_format(fmt)
    elem = get_format(f.element) if f.element and f.family in ("mx", "nvfp4") else f
    pack = DSP_PACKING.get(dsp_type)
    if pack is None:
        raise HardwareError(f"fpga.resources.dsp_type: got {dsp_type!r}; expected one of {sorted(DSP_PACKING)}")
    c = _component_counts(f.name)
    logic = c["add"] + c["mux"] / 2
    if elem.name in pack:
        return {"dsp": 1.0 / pack[elem.name], "lut": logic, "ff": c["reg"]}
    return {"dsp": 0.0, "lut": logic + c["pp"], "ff": c["reg"]}


def _auto_or_int(v, source, field):
    if v in (None, "auto"):
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise field_error(source, field, f"got {v!r}; expected a positive integer or 'auto'", HardwareError)
    return v


@dataclass(frozen=True)
class ArraySizing:
    """A PE array sized to an FPGA's DSP and LUT budget."""
    rows: int
    cols: int
    arrays: int
    dsp_per_pe: float  # the widest of the formats' MAC units
    lut_per_pe: float
    dsp_used: float
    lut_used: float
    limits: dict  # "dsp" / "lut" -> PEs that resource's budget allows
    bound_by: str  # the resource that limits the array

    def to_dict(self) -> dict:
        return asdict(self)


def size_array(resources: dict, budget: dict, formats, dsp_type: str, rows=None, cols=None,
               arrays: int = 1, source: str = "fpga") -> ArraySizing:
    """The largest rows x cols x arrays PE array whose DSPs and LUTs fit the budget.
    Given rows and cols, check they fit and say which resource they exceed."""
    per = [mac_resources(f, dsp_type) for f in formats]
    dsp_pe = max(p["dsp"] for p in per)
    lut_pe = max(p["lut"] for p in per)
    dsp_cap = resources.get("dsp", 0) * budget.get("dsp", 0.8)
    lut_cap = resources.get("lut", 0) * budget.get("lut", 0.6)
    limits = {"dsp": dsp_cap / dsp_pe if dsp_pe else math.inf, "lut": lut_cap / lut_pe if lut_pe else math.inf}
    max_pe = min(limits.values())
    if rows and cols:
        need = rows * cols * arrays
        if need > max_pe:
            res = min(limits, key=limits.get)
            have = resources.get(res, 0)
            raise field_error(
                source, "fpga.array", f"got {arrays} x {rows}x{cols} = {need} PEs; expected at most "
                f"{int(max_pe)}: each PE needs {dsp_pe:.3g} DSP and {lut_pe:.0f} LUT for {list(formats)}, "
                f"and the {res.upper()} budget is {budget.get(res, 0):.0%} of {have}", HardwareError)
    else:
        side = int(math.isqrt(int(max_pe // arrays)))
        if side < 1:
            raise field_error(source, "fpga.resources", f"not even one PE fits the budget ({limits})", HardwareError)
        rows = rows or side
        cols = cols or max(1, int(max_pe // arrays // rows))
    return ArraySizing(rows=rows, cols=cols, arrays=arrays, dsp_per_pe=dsp_pe, lut_per_pe=lut_pe,
                       dsp_used=rows * cols * arrays * dsp_pe, lut_used=rows * cols * arrays * lut_pe,
                       limits=limits, bound_by=min(limits, key=limits.get))


def _sram_bytes(res: dict, budget: float) -> float:
    # BRAM36: 36 Kbit, URAM: 288 Kbit (UltraScale+ / Versal block RAM sizes)
    return (res.get("bram36", 0) * 36 * 1024 + res.get("uram", 0) * 288 * 1024) / 8 * budget


def fpga_accelerator(hw: HardwareSpec) -> AcceleratorConfig:
    src = hw.source or hw.name
    sec = hw.sections["fpga"]
    if not isinstance(sec, dict):
        raise field_error(src, "fpga", f"got {sec!r}; expected a mapping", HardwareError)
    known = {"resources", "budget", "engine", "pe", "array", "dataflow", "dram_latency", "technology", "aie",
             "vector", "fold_overlap", "device"}
    unknown = set(sec) - known
    if unknown:
        raise field_error(src, "fpga", f"unknown key(s) {sorted(unknown)}; expected some of {sorted(known)}",
                          HardwareError)
    res = sec.get("resources") or {}
    for key in ("dsp", "lut", "ff", "bram36", "uram"):
        v = res.get(key, 0)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            raise field_error(src, f"fpga.resources.{key}", f"got {v!r}; expected a non-negative count", HardwareError)
    budget = {"dsp": 0.8, "lut": 0.6, "memory": 0.8, **(sec.get("budget") or {})}
    for key, v in budget.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 1:
            raise field_error(src, f"fpga.budget.{key}", f"got {v!r}; expected a fraction in (0, 1]", HardwareError)
    pe = sec.get("pe") or {}
    fmts = pe.get("formats")
    if not isinstance(fmts, list) or not fmts:
        raise field_error(src, "fpga.pe.formats", f"got {fmts!r}; expected a non-empty list of formats", HardwareError)
    for f in fmts:
        try:
            get_format(f)
        except FormatError as e:
            raise field_error(src, "fpga.pe.formats", f"got {f!r}; expected a registered format ({e})",
                              HardwareError) from None
    df = str(sec.get("dataflow", "ws")).lower()
    if df not in DATAFLOWS:
        raise field_error(src, "fpga.dataflow", f"got {sec.get('dataflow')!r}; expected one of {list(DATAFLOWS)}",
                          HardwareError)
    lat = quantity(sec["dram_latency"], "time", src, "fpga.dram_latency", allow_zero=True) if sec.get("dram_latency") else 0.0
    node = float((sec.get("technology") or {}).get("node_nm", 16))
    engine = sec.get("engine", "pl")
    if engine == "aie":
        return _aie(hw, sec, fmts, lat, node, src)
    if engine != "pl":
        raise field_error(src, "fpga.engine", f"got {engine!r}; expected 'pl' or 'aie'", HardwareError)
    dsp_type = res.get("dsp_type", "dsp48e2")
    arr = sec.get("array") or {}
    rows = _auto_or_int(arr.get("rows"), src, "fpga.array.rows")
    cols = _auto_or_int(arr.get("cols"), src, "fpga.array.cols")
    arrays = _auto_or_int(arr.get("arrays", 1), src, "fpga.array.arrays") or 1
    sz = size_array(res, budget, fmts, dsp_type, rows, cols, arrays, src)
    mem = _sram_bytes(res, budget["memory"]) / sz.arrays
    sram = {"ifmap": 0.4 * mem, "filter": 0.4 * mem, "ofmap": 0.2 * mem}
    # pack_narrow: a DSP sized for the widest format packs narrower MACs (2 int8 / 4 int4 per bf16 DSP)
    unit = DotProductUnit(tuple(fmts), lanes=1, pack_narrow=True, node_nm=node, vdd=PL_VDD, name="fpga.pe",
                          source=src)
    cfg = AcceleratorConfig(rows=sz.rows, cols=sz.cols, arrays=sz.arrays, dataflow=df, pe=unit,
                            vector_lanes=int((sec.get("vector") or {}).get("lanes", sz.cols)),
                            vector_flops_per_lane=2.0, sram_bytes=sram, dram_latency_s=lat, node_nm=node,
                            vdd=PL_VDD, source=src, fold_overlap=bool(sec.get("fold_overlap", True)),
                            extra={"fpga": sz, "energy_factor": FPGA_ENERGY_FACTOR})
    cfg.check_fits("fpga.resources (BRAM36/URAM x budget.memory, split 40/40/20) -> sram")
    return cfg


def _aie(hw, sec, fmts, lat, node, src) -> AcceleratorConfig:
    aie = sec.get("aie") or {}
    tiles = aie.get("tiles")
    if isinstance(tiles, bool) or not isinstance(tiles, int) or tiles < 1:
        raise field_error(src, "fpga.aie.tiles", f"got {tiles!r}; expected a positive integer", HardwareError)
    macs = {get_format(k).name: float(v) for k, v in (aie.get("macs_per_tile") or {}).items()}
    for f in fmts:
        if get_format(f).name not in macs:
            raise UnsupportedFormatError(src, f"got {f!r}; the AI Engine tiles list MACs only for "
                                              f"{sorted(macs)} (fpga.aie.macs_per_tile)", field="fpga.pe.formats")
    native = max(macs.values())
    # a tile's vector MACs as an 8 x (native / 8) output-stationary block, folds pipelined
    rows = 8
    cols = int(native // rows)
    rates = tuple((f, macs[get_format(f).name] / native) for f in fmts if macs[get_format(f).name] != native)
    unit = DotProductUnit(tuple(fmts), lanes=1, pack_narrow=False, rates=rates, node_nm=node, vdd=AIE_VDD,
                          name="fpga.aie", source=src)
    mem = quantity(aie.get("data_memory", "32 KiB"), "bytes", src, "fpga.aie.data_memory")
    sram = {"ifmap": 0.375 * mem, "filter": 0.375 * mem, "ofmap": 0.25 * mem}
    return AcceleratorConfig(rows=rows, cols=cols, arrays=tiles, dataflow="os", pe=unit,
                             vector_lanes=int(aie.get("vector_lanes", 16)), vector_flops_per_lane=2.0,
                             sram_bytes=sram, dram_latency_s=lat, node_nm=node, vdd=AIE_VDD, source=src,
                             fold_overlap=True, extra={"engine": "aie"})
