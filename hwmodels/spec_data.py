"""Hardware specs as plain data: what a device can do, in SI units, and the errors about them.

`HardwareSpec` and `MemoryLevel` are built by `hwmodels.spec.load_hw` (which re-exports every
name here); they live in a module of their own so that the models a spec's sections describe
(hwmodels.accel, hwmodels.fpga, hwmodels.arith) can name them without importing the loader,
which builds those models at load time (hwmodels.peak_scaling).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from workloads.formats import get_format
from workloads.io import InputError

__all__ = ["HardwareSpec", "MemoryLevel", "HardwareError", "UnsupportedFormatError", "FALLBACK_OPTION"]


class HardwareError(InputError):
    """A bad hardware description or a question the hardware cannot answer."""


# how a message offers the explicit compute fallback by default (the CLI flag and the Python keyword); an
# experiment file names its own option instead (UnsupportedFormatError.message)
FALLBACK_OPTION = "--compute-fallback / compute_fallback=True"


class UnsupportedFormatError(HardwareError):
    """The hardware cannot compute in this number format. Structured, so that a caller can say it in its own
    terms without rewriting the text: `source` (the hardware file, or the device's name), `detail` (what it
    lacks: field, format, what it has) and `offer` (None, or how the explicit fallback is offered, with
    ``{option}`` where the option goes). str() is ``message()``: `source: detail` + the offer naming
    FALLBACK_OPTION."""

    def __init__(self, source: str, detail: str, offer: str | None = None, field: str | None = None):
        # args: picklable across worker processes
        super().__init__(*((source, detail, offer) + ((field,) if field is not None else ())))
        self.source, self.offer = str(source), offer
        # `field` given: the spec field at fault (workloads.io.field_error's attributes: source, field, problem);
        # `detail` then reads "field: problem"
        self.field, self.problem = field, detail
        self.detail = detail if field is None else f"{field}: {detail}"

    def message(self, option: str = FALLBACK_OPTION, source: str | None = None) -> str:
        """The message, the fallback offered as `option` and the hardware shown as `source` (default: its own)."""
        text = f"{self.source if source is None else source}: {self.detail}"
        return text + (self.offer.format(option=option) if self.offer else "")

    def __str__(self) -> str:
        return self.message()


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
    # what loading it did that changes a number and is not in the file: a clock override that scaled
    # datasheet peaks (hwmodels.peak_scaling); every report and sweep row of this spec lists them
    notes: tuple = ()

    @property
    def main_memory(self) -> MemoryLevel:
        return self.memory[0]

    @property
    def energy_scope(self) -> str:
        """'' when the file gives `energy.static_power`; else the label every energy figure of this
        device carries: its energies are dynamic only (the static term is unknown, not zero)."""
        if self.static_power_w is not None:
            return ""
        return f"dynamic only (no static power in {Path(self.source).name if self.source else self.name})"

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
                self.source or self.name, f"hardware {self.name!r} has no compute peak for format {name!r} (it lists "
                f"{sorted(self.peak_flops)})", "; pass a format it has, or allow the explicit fallback ({option}) to "
                "run it in a wider one")
        return self.peak_flops[name]

    def fallback_format(self, fmt: str) -> str:
        """The format a kernel would actually compute in when `fmt` has no unit here:
        the element format of a block format if listed, else the narrowest listed format
        at least as wide, preferring the same kind of number (float vs integer) — e.g.
        mxfp4 operands on an H100 run as fp8 after dequantisation."""
        f = get_format(fmt)
        if f.name in self.peak_flops:
            return f.name
        if f.element and f.element in self.peak_flops:
            return f.element
        wants_float = f.is_float or (f.element is not None and get_format(f.element).is_float)
        candidates = []
        for name, peak in self.peak_flops.items():
            g = get_format(name)
            if g.element_bits >= f.element_bits:
                other_kind = g.is_float != wants_float
                candidates.append((other_kind, g.element_bits, -peak, name))
        if not candidates:
            raise UnsupportedFormatError(self.source or self.name, f"no listed format is at least as wide as {f.name!r}")
        return min(candidates)[3]
