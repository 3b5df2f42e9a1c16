"""Quantities written as text ("3.35 TB/s", "80 GiB", "0.28 pJ") -> floats in SI base units.

A small strict parser instead of a units library: hardware files use a dozen units, and the
useful part is the refusal — a bandwidth written "3.35 TB" (bytes, not bytes/s), a bit/byte
mix-up, a negative capacity or a value a thousand times off must stop the run with a message
naming the file, the field, the value and the unit that was expected.

Kinds and their SI base unit:

=================  =========  ==============================================================
kind               base       accepted units (SI prefixes k M G T P E; binary Ki Mi Gi Ti Pi
                              where marked *; m u µ n p f for the small-side kinds)
=================  =========  ==============================================================
flops              FLOP/s     FLOP/s, FLOPS, OP/s, OPS (TFLOP/s, TFLOPS, TOP/s, TOPS, ...)
bandwidth          B/s        B/s*, bit/s (GB/s, GiB/s, TB/s, Gbit/s)
bytes              B          B*, bit (GB, GiB, MB, MiB, KB, KiB, kB, Mbit)
frequency          Hz         Hz (MHz, GHz)
power              W          W (mW, W, kW)
energy             J          J (fJ, pJ, nJ, uJ, mJ, J)
energy_per_byte    J/B        J/B, J/bit (pJ/B, pJ/bit)
energy_per_flop    J/FLOP     J, J/FLOP, J/OP (pJ, pJ/FLOP, pJ/op)
time               s          s (ps, ns, us, µs, ms, s)
area               m^2        m2, m^2 (mm2, mm^2, um2, µm^2, cm2)
=================  =========  ==============================================================

"KB" is read as 1e3 bytes, as vendors print it (the binary 1024 is written KiB).
Numbers (int/float) are accepted only when `allow_number=True`; they are then taken to be in the
base unit (used for programmatic overrides such as sweeps).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

from workloads.io import InputError, fail

__all__ = ["parse_quantity", "format_quantity", "KINDS", "BASE_UNIT", "InputError"]

# Factors are exact Decimals so that "989.4 TFLOP/s" becomes exactly the float 989.4e12.
_D = Decimal
_SI = {"": _D(1), "k": _D("1e3"), "K": _D("1e3"), "M": _D("1e6"), "G": _D("1e9"), "T": _D("1e12"),
       "P": _D("1e15"), "E": _D("1e18")}
_BIN = {"Ki": _D(2**10), "Mi": _D(2**20), "Gi": _D(2**30), "Ti": _D(2**40), "Pi": _D(2**50)}
_SMALL = {"": _D(1), "m": _D("1e-3"), "u": _D("1e-6"), "µ": _D("1e-6"), "μ": _D("1e-6"),
          "n": _D("1e-9"), "p": _D("1e-12"), "f": _D("1e-15"), "k": _D("1e3")}
_AREA_PREFIX = {"": _D(1), "c": _D("1e-2"), "m": _D("1e-3"), "u": _D("1e-6"), "µ": _D("1e-6"),
                "μ": _D("1e-6"), "n": _D("1e-9")}
_ONE, _EIGHTH, _EIGHT = _D(1), _D("0.125"), _D(8)


def _table(prefixes: dict, units: dict) -> dict:
    """unit text -> multiplier to the base unit, for every prefix x unit pair."""
    out = {}
    for p, pm in prefixes.items():
        for u, um in units.items():
            out[p + u] = pm * um
    return out


# Each kind: accepted spellings -> factor to the SI base unit, the base unit's name, and
# the plausible range (SI) for one device; a value outside is almost surely a unit slip.
_UNITS = {
    "flops": _table(_SI, {"FLOP/s": _ONE, "FLOPS": _ONE, "FLOPs/s": _ONE, "OP/s": _ONE,
                          "OPS": _ONE, "OPs/s": _ONE}),
    "bandwidth": {**_table({**_SI, **_BIN}, {"B/s": _ONE}), **_table(_SI, {"bit/s": _EIGHTH})},
    "bytes": {**_table({**_SI, **_BIN}, {"B": _ONE}), **_table(_SI, {"bit": _EIGHTH})},
    "frequency": _table(_SI, {"Hz": _ONE}),
    "power": _table({**_SMALL, "M": _D("1e6")}, {"W": _ONE}),
    "energy": _table(_SMALL, {"J": _ONE}),
    "energy_per_byte": _table(_SMALL, {"J/B": _ONE, "J/bit": _EIGHT, "J/byte": _ONE}),
    "energy_per_flop": _table(_SMALL, {"J": _ONE, "J/FLOP": _ONE, "J/OP": _ONE, "J/op": _ONE,
                                       "J/flop": _ONE}),
    "time": _table({k: v for k, v in _SMALL.items() if k != "k"}, {"s": _ONE}),
    "area": _table(_AREA_PREFIX, {"m2": _ONE, "m^2": _ONE, "m²": _ONE}),
}
# Prefix tables square for area: 1 mm^2 = (1e-3 m)^2.
_UNITS["area"] = {u: f * f for u, f in _UNITS["area"].items()}

BASE_UNIT = {"flops": "FLOP/s", "bandwidth": "B/s", "bytes": "B", "frequency": "Hz",
             "power": "W", "energy": "J", "energy_per_byte": "J/B", "energy_per_flop": "J/FLOP",
             "time": "s", "area": "m2"}
_EXAMPLE = {"flops": "989.4 TFLOP/s or 1978.9 TOP/s", "bandwidth": "3.35 TB/s or 819 GiB/s",
            "bytes": "80 GB or 50 MiB", "frequency": "1.83 GHz", "power": "700 W",
            "energy": "0.5 pJ", "energy_per_byte": "5.5 pJ/bit or 44 pJ/B",
            "energy_per_flop": "0.28 pJ or 0.28 pJ/FLOP", "time": "2 us", "area": "814 mm2"}
# Bounds are deliberately wide (a wafer-scale chip must pass) yet catch 1e3-1e6 slips.
_RANGE = {"flops": (1e6, 1e19), "bandwidth": (1e3, 1e17), "bytes": (1.0, 1e16),
          "frequency": (1e3, 1e11), "power": (1e-6, 1e7), "energy": (1e-19, 1e3),
          "energy_per_byte": (1e-17, 1e-6), "energy_per_flop": (1e-18, 1e-6),
          "time": (1e-15, 1e6), "area": (1e-16, 1.0)}
KINDS = tuple(_UNITS)

_NUMBER = re.compile(r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*(.*?)\s*$", re.ASCII)


def _expected(kind: str, allow_zero: bool) -> str:
    sign = "a non-negative" if allow_zero else "a positive"
    return f"{sign} {kind} quantity in {BASE_UNIT[kind]}-compatible units, e.g. '{_EXAMPLE[kind]}'"


def _which_kind(unit: str) -> str | None:
    for k, table in _UNITS.items():
        if unit in table:
            return k
    return None


def parse_quantity(text, kind: str, source: str, field: str, *, allow_zero: bool = False,
                   allow_number: bool = False) -> float:
    """Parse "3.35 TB/s" (kind="bandwidth") -> 3.35e12. Raises InputError naming source
    (file), field, the bad value and the expected unit on any problem."""
    if type(text) is str:  # a spec's quantities are re-read on every load with overrides
        hit = _PARSED.get((text, kind, allow_zero))
        if hit is not None:
            return hit
    if kind not in _UNITS:
        raise ValueError(f"parse_quantity: unknown kind {kind!r}; kinds: {', '.join(KINDS)}")
    expected = _expected(kind, allow_zero)
    if isinstance(text, bool) or text is None:
        fail(source, field, text, expected)
    if isinstance(text, (int, float)):
        if not allow_number:
            fail(source, field, text, expected + " (a number needs its unit written as text)")
        value = float(text)
    elif isinstance(text, str):
        m = _NUMBER.match(text)
        if not m:
            fail(source, field, text, expected + " (could not read a number at the start)")
        unit = m.group(2)
        if not unit:
            fail(source, field, text, expected + " (the unit is missing)")
        table = _UNITS[kind]
        if unit not in table:
            other = _which_kind(unit)
            if other:
                hint = f" ('{unit}' is a {other} unit)"
            elif re.fullmatch(r"[kKMGTPE]?b(/s|ps)?", unit):
                hint = f" (unknown unit '{unit}'; write bits as 'bit' or 'bit/s', bytes as 'B')"
            else:
                hint = f" (unknown unit '{unit}')"
            fail(source, field, text, expected + hint)
        value = float(Decimal(m.group(1)) * table[unit])
    else:
        fail(source, field, text, expected + f" (got a {type(text).__name__}, not text)")
    if not math.isfinite(value):
        fail(source, field, text, expected)
    if value < 0 or (value == 0 and not allow_zero):
        fail(source, field, text, expected)
    lo, hi = _RANGE[kind]
    if value != 0 and not lo <= value <= hi:
        fail(source, field, text, f"{expected}; {value:.4g} {BASE_UNIT[kind]} is outside the "
                                  f"plausible range [{lo:g}, {hi:g}] for one device (unit slip?)")
    if type(text) is str:
        if len(_PARSED) > 4096:
            _PARSED.clear()
        _PARSED[(text, kind, allow_zero)] = value
    return value


_PARSED: dict = {}  # (text, kind, allow_zero) -> value, for text that parsed (errors name their field: not cached)


def format_quantity(value: float, kind: str) -> str:
    """SI value -> text that parse_quantity reads back (for reports and round-trips)."""
    if kind not in _UNITS:
        raise ValueError(f"format_quantity: unknown kind {kind!r}")
    return f"{float(value)!r} {BASE_UNIT[kind]}"
