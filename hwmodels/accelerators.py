"""Which accelerator a hardware spec describes, by the section it carries: one registry
from section name to the builder of its AcceleratorConfig. It sits above both builders
(hwmodels.accel parses an explicit `accelerator:` section, hwmodels.fpga sizes the largest
array an `fpga:` budget allows), so neither imports the other's dispatcher."""

from __future__ import annotations

from hwmodels.accel import AcceleratorConfig, parse_accelerator
from hwmodels.fpga import fpga_accelerator
from hwmodels.spec import HardwareError, HardwareSpec, UnsupportedFormatError
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
    """`e` re-raised naming the override it came from: a structured UnsupportedFormatError is
    rebuilt from its pieces (source, detail, offer: the offer keeps naming the fallback option);
    any other InputError carries one message."""
    if isinstance(e, UnsupportedFormatError):
        parts = _blame_parts(f"{e.source}: {e.detail}", hw)
        return e if parts is None else UnsupportedFormatError(parts[0], parts[1], e.offer)
    return type(e)(blame_override(str(e), hw))


def blame_override(msg: str, hw: HardwareSpec) -> str:
    """An error about a field of the spec's accelerator/fpga section names the override it came
    from, not the bundled file ("override accelerator.sram.filter (applied to mx_systolic_128.yaml):
    got 1024 B ..."); a field the file holds but an override made wrong (rows raised past what the
    filter buffer holds) keeps the file and lists the overrides applied."""
    parts = _blame_parts(msg, hw)
    return msg if parts is None else f"{parts[0]}: {parts[1]}"


def _blame_parts(msg: str, hw: HardwareSpec):
    """blame_override's answer as (where, what), or None where nothing is re-attributed."""
    from pathlib import Path
    overrides = hw.sections.get("overrides") or {}
    src = hw.source or hw.name
    if not overrides or not msg.startswith(f"{src}: "):
        return None
    rest = msg[len(src) + 2:]
    field, sep, tail = rest.partition(": ")
    for key in sorted(overrides, key=len, reverse=True):
        if sep and (field == key or field.startswith(f"{key}.")):
            return f"override {field} (applied to {Path(src).name})", tail
    applied = ", ".join(f"{k}={v!r}" for k, v in overrides.items())
    return f"{src} (with overrides {applied})", rest
