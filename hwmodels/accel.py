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
from hwmodels.spec_data import HardwareError, HardwareSpec
from hwmodels.systolic import DATAFLOWS
from workloads.formats import FormatError, get_format
from workloads.io import field_error

PSUM_BYTES = 4  # partial sums spilled between K-folds (and an array's output tile) are fp32

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

    @property
    def widest_elem_bytes(self) -> float:
        """Bytes per element of the widest format the PE computes in: what a buffer's tile must hold."""
        return max(get_format(f).bits_per_element for f in self.pe.formats) / 8

    def check_fits(self, field: str = "accelerator.sram") -> None:
        """Double-buffered SRAMs must hold at least one tile edge per half (`check_tile_buffers`), in the
        widest PE format, with fp32 partial sums."""
        check_tile_buffers(self.sram_bytes, self.rows, self.cols, self.tile_elem_bytes(),
                           lambda name: f"{field}.{name}", source=self.source)

    def tile_elem_bytes(self) -> dict:
        """Element bytes of each buffer's tile: the widest PE format in and stationary, fp32 partial sums out."""
        eb = self.widest_elem_bytes
        return {"ifmap": eb, "filter": eb, "ofmap": PSUM_BYTES}


def tile_buffer_need(rows, cols, elem_bytes: dict, halves: int = 2) -> dict:
    """Bytes each SRAM must hold for one tile edge per buffer half, times `halves` (2: double buffered): R
    elements of the streaming operand (ifmap), one R x C stationary tile (filter), C elements of the output
    (ofmap), in `elem_bytes` per buffer. The one fit rule of the array models (AcceleratorConfig.check_fits,
    hwmodels.cycle_variants per variant, hwmodels.pipeline.check_fits); elementwise over arrays of rows/cols."""
    return {"ifmap": rows * elem_bytes["ifmap"] * halves, "filter": rows * cols * elem_bytes["filter"] * halves,
            "ofmap": cols * elem_bytes["ofmap"] * halves}


def _bytes_text(b) -> str:
    b = float(b)
    return f"{b:.0f}" if b.is_integer() else f"{b:g}"


def tile_misfit(where: str, have, need, rows, cols, halves: int = 2, source: str | None = None) -> HardwareError:
    """The error for a buffer smaller than `tile_buffer_need`: `where` names the field (or flag) and buffer;
    with `source` (the spec file), `where` is that file's field and the error carries both
    (workloads.io.field_error)."""
    problem = (f"got {_bytes_text(have)} B; expected at least {_bytes_text(need)} B (one "
               f"{int(rows)}x{int(cols)} tile{', double buffered' if halves == 2 else ''})")
    if source is not None:
        return field_error(source, where, problem, HardwareError)
    return HardwareError(f"{where}: {problem}")


def check_tile_buffers(sram_bytes: dict, rows, cols, elem_bytes: dict, where_of, halves: int = 2,
                       source: str | None = None) -> None:
    """`tile_misfit` for the first buffer (ifmap, filter, ofmap) below `tile_buffer_need`; `where_of(name)`: what
    the error names for buffer `name` (the field of `source`, when given)."""
    for name, b in tile_buffer_need(rows, cols, elem_bytes, halves).items():
        if sram_bytes[name] < b:
            raise tile_misfit(where_of(name), sram_bytes[name], b, rows, cols, halves, source)


def _int(d, key, source, where, default=None, lo=1):
    v = d.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise field_error(source, f"{where}.{key}", f"got {v!r}; expected an integer >= {lo}", HardwareError)
    return v


def parse_accelerator(sec: dict, source: str, where: str = "accelerator") -> AcceleratorConfig:
    if not isinstance(sec, dict):
        raise field_error(source, where, f"got {sec!r}; expected a mapping", HardwareError)
    known = {"arrays", "rows", "cols", "dataflow", "pe", "vector", "sram", "dram_latency", "technology",
             "fold_overlap", "stream_tiling"}
    unknown = set(sec) - known
    if unknown:
        raise field_error(source, where, f"unknown key(s) {sorted(unknown)}; expected some of {sorted(known)}",
                          HardwareError)
    rows = _int(sec, "rows", source, where)
    cols = _int(sec, "cols", source, where)
    arrays = _int(sec, "arrays", source, where, default=1)
    df = str(sec.get("dataflow", "ws")).lower()
    if df not in DATAFLOWS:
        raise field_error(source, f"{where}.dataflow", f"got {sec.get('dataflow')!r}; expected one of "
                          f"{list(DATAFLOWS)} (output / weight / input stationary)", HardwareError)
    pe = sec.get("pe") or {}
    fmts = pe.get("formats")
    if not isinstance(fmts, list) or not fmts:
        raise field_error(source, f"{where}.pe.formats", f"got {fmts!r}; expected a non-empty list of number formats",
                          HardwareError)
    for f in fmts:
        try:
            get_format(f)
        except FormatError as e:
            raise field_error(source, f"{where}.pe.formats", f"got {f!r}; expected a registered format ({e})",
                              HardwareError) from None
    tech = sec.get("technology") or {}
    node = float(tech.get("node_nm", 7))
    vdd = float(tech.get("vdd", 0.8))
    rates = pe.get("rates") or {}
    if not isinstance(rates, dict):
        raise field_error(source, f"{where}.pe.rates", f"got {rates!r}; expected a mapping format -> MACs/cycle",
                          HardwareError)
    unit = DotProductUnit(tuple(fmts), lanes=_int(pe, "lanes", source, f"{where}.pe", default=1),
                          pack_narrow=bool(pe.get("pack_narrow", True)), node_nm=node, vdd=vdd,
                          rates=tuple(rates.items()), name=f"{where}.pe", source=source)
    vec = sec.get("vector") or {}
    vlanes = _int(vec, "lanes", source, f"{where}.vector", default=cols)
    vfl = float(vec.get("flops_per_lane", 2))
    sram = sec.get("sram")
    if not isinstance(sram, dict):
        raise field_error(source, f"{where}.sram", f"got {sram!r}; expected a mapping with ifmap, filter, ofmap sizes",
                          HardwareError)
    sizes = {}
    for name in ("ifmap", "filter", "ofmap"):
        if name not in sram:
            raise field_error(source, f"{where}.sram.{name}", "missing; expected a size such as '8 MiB'", HardwareError)
        sizes[name] = quantity(sram[name], "bytes", source, f"{where}.sram.{name}")
    lat = quantity(sec["dram_latency"], "time", source, f"{where}.dram_latency", allow_zero=True) \
        if sec.get("dram_latency") is not None else 0.0
    cfg = AcceleratorConfig(rows=rows, cols=cols, arrays=arrays, dataflow=df, pe=unit,
                            vector_lanes=vlanes, vector_flops_per_lane=vfl, sram_bytes=sizes,
                            dram_latency_s=lat, node_nm=node, vdd=vdd, source=source,
                            fold_overlap=bool(sec.get("fold_overlap", True)),
                            stream_tiling=bool(sec.get("stream_tiling", True)))
    cfg.check_fits()
    return cfg
