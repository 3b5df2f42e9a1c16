"""The ``accelerator:`` section of a hardware YAML, parsed and validated.

```yaml
accelerator:
  arrays: 4                 # independent R x C systolic arrays (cores)
  rows: 128
  cols: 128
  dataflow: ws              # os | ws | is
  fold_overlap: true        # double-buffered stationary registers: folds back to back (default)
  stream_tiling: true       # ws/is: cut the streamed dimension when partial sums would spill (default)
  pe:                       # the dot-product unit in every PE
    formats: [mxfp8_e4m3, mxfp4, bf16]
    lanes: 1                # MACs per PE per cycle in the widest format
    pack_narrow: true       # a wide lane serves floor(wide/narrow) narrow MACs
    rates: {bf16: 0.5}      # optional explicit MACs/PE/cycle per format (overrides packing)
  vector: {lanes: 128, flops_per_lane: 2}   # per array, for softmax / norms / elementwise
  sram: {ifmap: 8 MiB, filter: 8 MiB, ofmap: 4 MiB}   # per array, double buffered
  dram_latency: 500 ns
  technology: {node_nm: 7, vdd: 0.75}
```
Every error names the file, the field, the bad value and what was expected.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hwmodels.arith import DotProductUnit
from hwmodels.spec import HardwareError, HardwareSpec
from hwmodels.systolic import DATAFLOWS
from workloads.formats import FormatError, get_format

__all__ = ["AcceleratorConfig", "parse_accelerator", "quantity"]


def quantity(text, kind: str, source: str, field_name: str, allow_zero: bool = False) -> float:
    """Parse a unit-carrying value ("8 MiB", "100 ns") with the project's parser."""
    from hwmodels.units import parse_quantity

    return parse_quantity(text, kind, source, field_name, allow_zero=allow_zero)


@dataclass(frozen=True)
class AcceleratorConfig:
    rows: int
    cols: int
    arrays: int
    dataflow: str
    pe: DotProductUnit
    vector_lanes: int  # per array
    vector_flops_per_lane: float
    sram_bytes: dict  # ifmap / filter / ofmap, per array
    dram_latency_s: float
    node_nm: float
    vdd: float
    source: str = ""
    fold_overlap: bool = True
    stream_tiling: bool = True
    extra: dict = field(default_factory=dict)

    @property
    def pes(self) -> int:
        return self.rows * self.cols * self.arrays

    def rate(self, fmt: str) -> float:
        """MACs per PE per cycle in ``fmt`` (explicit rate, else the unit's packing)."""
        return float(self.pe.macs_per_cycle(fmt))

    def supports(self, fmt: str) -> bool:
        return self.pe.supports(fmt)

    def peak_flops(self, fmt: str, clock_hz: float) -> float:
        return 2.0 * self.pes * self.rate(fmt) * clock_hz

    def vector_flops_per_cycle(self) -> float:
        return self.vector_lanes * self.arrays * self.vector_flops_per_lane

    def check_fits(self, elem_bytes: float, field: str = "accelerator.sram") -> None:
        """Double-buffered SRAMs must hold at least one tile edge per half: R rows of the
        streaming operand and one R x C stationary tile."""
        need = {"ifmap": self.rows * elem_bytes * 2, "filter": self.rows * self.cols * elem_bytes * 2,
                "ofmap": self.cols * 4 * 2}
        for name, b in need.items():
            if self.sram_bytes[name] < b:
                raise HardwareError(
                    f"{self.source}: {field}.{name}: got {self.sram_bytes[name]:.0f} B; expected at "
                    f"least {b:.0f} B (one {self.rows}x{self.cols} tile, double buffered)")


def _int(d, key, source, where, default=None, lo=1):
    v = d.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise HardwareError(f"{source}: {where}.{key}: got {v!r}; expected an integer >= {lo}")
    return v


def parse_accelerator(sec: dict, source: str, where: str = "accelerator") -> AcceleratorConfig:
    if not isinstance(sec, dict):
        raise HardwareError(f"{source}: {where}: got {sec!r}; expected a mapping")
    known = {"arrays", "rows", "cols", "dataflow", "pe", "vector", "sram", "dram_latency", "technology",
             "fold_overlap", "stream_tiling"}
    unknown = set(sec) - known
    if unknown:
        raise HardwareError(f"{source}: {where}: unknown key(s) {sorted(unknown)}; expected some of {sorted(known)}")
    rows = _int(sec, "rows", source, where)
    cols = _int(sec, "cols", source, where)
    arrays = _int(sec, "arrays", source, where, default=1)
    df = str(sec.get("dataflow", "ws")).lower()
    if df not in DATAFLOWS:
        raise HardwareError(f"{source}: {where}.dataflow: got {sec.get('dataflow')!r}; expected one of "
                            f"{list(DATAFLOWS)} (output / weight / input stationary)")
    pe = sec.get("pe") or {}
    fmts = pe.get("formats")
    if not isinstance(fmts, list) or not fmts:
        raise HardwareError(f"{source}: {where}.pe.formats: got {fmts!r}; expected a non-empty list of number formats")
    for f in fmts:
        try:
            get_format(f)
        except FormatError as e:
            raise HardwareError(f"{source}: {where}.pe.formats: got {f!r}; expected a registered format ({e})") from None
    tech = sec.get("technology") or {}
    node = float(tech.get("node_nm", 7))
    vdd = float(tech.get("vdd", 0.8))
    rates = pe.get("rates") or {}
    if not isinstance(rates, dict):
        raise HardwareError(f"{source}: {where}.pe.rates: got {rates!r}; expected a mapping format -> MACs/cycle")
    unit = DotProductUnit(tuple(fmts), lanes=_int(pe, "lanes", source, f"{where}.pe", default=1),
                          pack_narrow=bool(pe.get("pack_narrow", True)), node_nm=node, vdd=vdd,
                          rates=tuple(rates.items()), name=f"{where}.pe", source=source)
    vec = sec.get("vector") or {}
    vlanes = _int(vec, "lanes", source, f"{where}.vector", default=cols)
    vfl = float(vec.get("flops_per_lane", 2))
    sram = sec.get("sram")
    if not isinstance(sram, dict):
        raise HardwareError(f"{source}: {where}.sram: got {sram!r}; expected a mapping with ifmap, filter, ofmap sizes")
    sizes = {}
    for name in ("ifmap", "filter", "ofmap"):
        if name not in sram:
            raise HardwareError(f"{source}: {where}.sram.{name}: missing; expected a size such as '8 MiB'")
        sizes[name] = quantity(sram[name], "bytes", source, f"{where}.sram.{name}")
    lat = quantity(sec["dram_latency"], "time", source, f"{where}.dram_latency", allow_zero=True) \
        if sec.get("dram_latency") is not None else 0.0
    cfg = AcceleratorConfig(rows=rows, cols=cols, arrays=arrays, dataflow=df, pe=unit,
                            vector_lanes=vlanes, vector_flops_per_lane=vfl, sram_bytes=sizes,
                            dram_latency_s=lat, node_nm=node, vdd=vdd, source=source,
                            fold_overlap=bool(sec.get("fold_overlap", True)),
                            stream_tiling=bool(sec.get("stream_tiling", True)))
    widest = max(get_format(f).bits_per_element for f in unit.formats) / 8
    cfg.check_fits(widest)
    return cfg
