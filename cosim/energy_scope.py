"""What an energy figure includes, in one vocabulary for every table row that carries it (`cosim plan
--out`, sweep results and summary.json): "dynamic + static" (the device file gives energy.static_power),
"dynamic only (no static power in <file>)" (HardwareSpec.energy_scope: the static term is unknown, not
zero) or "unknown (energy n/a for this point)" (no energy at all: NaN, e.g. a device file without
energy per FLOP). Never blank: a blank read back from a CSV as a float NaN column (session 14 audit)."""

from __future__ import annotations

import math

__all__ = ["FULL", "UNKNOWN", "energy_scope_label", "is_dynamic_only"]

FULL = "dynamic + static"
UNKNOWN = "unknown (energy n/a for this point)"


def energy_scope_label(device_scope: str, energy) -> str:
    """The row's label: UNKNOWN where its energy is NaN/None, else the device's scope
    (HardwareSpec.energy_scope, '' when it gives static power: FULL)."""
    if energy is None or (isinstance(energy, float) and math.isnan(energy)):
        return UNKNOWN
    return device_scope or FULL


def is_dynamic_only(label) -> bool:
    """Whether a row's energy_scope label (energy_scope_label's) is a device's dynamic-only scope: a label,
    neither FULL nor UNKNOWN (read off the vocabulary, not the label's words)."""
    return isinstance(label, str) and bool(label) and label not in (FULL, UNKNOWN)
