"""Which accelerator a hardware spec describes, by the section it carries: one registry
from section name to the builder of its AcceleratorConfig. It sits above both builders
(hwmodels.accel parses an explicit `accelerator:` section, hwmodels.fpga sizes the largest
array an `fpga:` budget allows), so neither imports the other's dispatcher."""

from __future__ import annotations

from hwmodels.accel import AcceleratorConfig, parse_accelerator
from hwmodels.fpga import fpga_accelerator
from hwmodels.spec import HardwareError, HardwareSpec

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
            return build(hw)
    raise HardwareError(f"{hw.source or hw.name}: no accelerator: or fpga: section; the cycle model needs one "
                        f"(see cosim/configs/hw/mx_systolic_128.yaml)")
