"""Which accelerator a hardware spec describes, by the section it carries: one registry
from section name to the builder of its AcceleratorConfig. It sits above both builders
(hwmodels.accel parses an explicit `accelerator:` section, hwmodels.fpga sizes the largest
array an `fpga:` budget allows), so neither imports the other's dispatcher."""

from __future__ import annotations

from hwmodels.accel import AcceleratorConfig, parse_accelerator
from hwmodels.fpga import fpga_accelerator
from hwmodels.spec_data import HardwareError, HardwareSpec, UnsupportedFormatError
from workloads.io import InputError

__all__ = ["BUILDERS", "config_for"]

BUILDERS = {
    "accelerator": lambda hw: parse_accelerator(hw.sections["accelerator"], hw.source or hw.name),
    "fpga": fpga_accelerator,
}


def config_for(hw: HardwareSpec) -> AcceleratorConfig:
    """The accelerator a spec describes: its ``accelerator:`` section, or for an FPGA the
    largest array its resources allow (hwmodels.fpga)."""
    for section, build in BUILDERS.items():
        if section in hw.sections:
            try:
                return build(hw)
            except InputError as e:
                raise _blamed(e, hw) from None
    raise HardwareError(f"{hw.source or hw.name}: no accelerator: or fpga: section; the cycle model needs one "
                        f"(see cosim/configs/hw/mx_systolic_128.yaml)")


def _blamed(e: InputError, hw: HardwareSpec) -> InputError:
    """`e` re-raised naming the override it came from (`blame`), from its structured source, field and
    problem (workloads.io.field_error; an UnsupportedFormatError given its field): an UnsupportedFormatError
    is rebuilt from its pieces (the offer keeps naming the fallback option), any other InputError carries
    one message. An error without a field, or about another file, is raised as it came."""
    parts = blame(e, hw)
    if parts is None:
        return e
    if isinstance(e, UnsupportedFormatError):
        return UnsupportedFormatError(parts[0], parts[1], e.offer)
    return type(e)(f"{parts[0]}: {parts[1]}")


def blame(e: Exception, hw: HardwareSpec):
    """(where, what) of an error about a field of the spec's accelerator/fpga section once overrides were
    applied, or None where nothing is re-attributed: a field an override set (or lies under) names that
    override, not the bundled file ("override accelerator.sram.filter (applied to mx_systolic_128.yaml)",
    "got 1024 B ..."); a field the file holds but an override made wrong (rows raised past what the
    filter buffer holds) keeps the file and lists the overrides applied."""
    from pathlib import Path
    overrides = hw.sections.get("overrides") or {}
    src = hw.source or hw.name
    field = getattr(e, "field", None)
    if not overrides or not field or getattr(e, "source", None) != src:
        return None
    for key in sorted(overrides, key=len, reverse=True):
        if field == key or field.startswith(f"{key}."):
            return f"override {field} (applied to {Path(src).name})", e.problem
    applied = ", ".join(f"{k}={v!r}" for k, v in overrides.items())
    return f"{src} (with overrides {applied})", f"{field}: {e.problem}"
