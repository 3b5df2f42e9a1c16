"""Hardware specs: what a device can do, in SI units.

`HardwareSpec` is plain data. Loading from YAML (units written as text, every number
cited) lives below the dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from workloads.formats import get_format
from workloads.io import InputError

__all__ = ["HardwareSpec", "MemoryLevel", "HardwareError", "UnsupportedFormatError"]


class HardwareError(InputError):
    """A bad hardware description or a question the hardware cannot answer."""


class UnsupportedFormatError(HardwareError):
    """The hardware file gives no peak for this number format."""


@dataclass(frozen=True)
class MemoryLevel:
    name: str  # "hbm", "l2", "smem", "dram", "sram", "uram" …
    capacity_bytes: float
    bandwidth_Bps: float  # sustained-peak bytes/s this level can deliver to the level inside it
    energy_per_byte_j: float | None = None
    latency_s: float | None = None
    instances: int = 1  # copies of this level (e.g. one SMEM per SM); capacity_bytes is the total


@dataclass(frozen=True)
class HardwareSpec:
    name: str
    kind: str  # gpu | tpu | fpga | accelerator
    clock_hz: float
    peak_flops: dict  # number-format name -> dense FLOP/s (int formats: ops/s)
    memory: tuple  # MemoryLevel, outermost (off-chip) first
    energy_per_flop_j: dict = field(default_factory=dict)  # format -> J/FLOP
    static_power_w: float | None = None
    tdp_w: float | None = None
    interconnect: dict = field(default_factory=dict)  # link name -> bytes/s per direction
    sections: dict = field(default_factory=dict)  # model-specific raw sections (analytical, accelerator, fpga …)
    description: str = ""
    source: str = ""  # file it was loaded from

    @property
    def main_memory(self) -> MemoryLevel:
        return self.memory[0]

    def level(self, name: str) -> MemoryLevel:
        for lvl in self.memory:
            if lvl.name == name:
                return lvl
        raise HardwareError(f"{self.source or self.name}: no memory level {name!r}; "
                            f"levels: {[m.name for m in self.memory]}")

    def supports(self, fmt: str) -> bool:
        return get_format(fmt).name in self.peak_flops

    def peak(self, fmt: str) -> float:
        """Dense peak for a format; a format the file lacks is an error, never invented."""
        name = get_format(fmt).name
        if name not in self.peak_flops:
            raise UnsupportedFormatError(
                f"{self.source or self.name}: hardware {self.name!r} has no compute peak for "
                f"format {name!r} (it lists {sorted(self.peak_flops)}); pass a format it has, "
                f"or allow the explicit fallback (compute_fallback=True) to run it in a wider one")
        return self.peak_flops[name]

    def fallback_format(self, fmt: str) -> str:
        """The format a kernel would actually compute in when `fmt` has no unit here:
        the narrowest listed format at least as wide as the element format (e.g. mxfp4
        weights on an H100 run as fp8 or bf16 after dequantisation)."""
        f = get_format(fmt)
        if f.name in self.peak_flops:
            return f.name
        if f.element and f.element in self.peak_flops:
            return f.element
        need = f.element_bits
        wider = [(get_format(n).element_bits, -p, n) for n, p in self.peak_flops.items()
                 if get_format(n).element_bits >= need and get_format(n).is_float == (f.is_float or f.family in ("mx", "nvfp4"))]
        if not wider:
            wider = [(get_format(n).element_bits, -p, n) for n, p in self.peak_flops.items()
                     if get_format(n).element_bits >= need]
        if not wider:
            raise UnsupportedFormatError(f"{self.source or self.name}: no format at least as wide as {f.name!r}")
        return min(wider)[2]
