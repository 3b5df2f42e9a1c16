"""Numbers for people, at the edge: SI values (seconds, bytes, FLOP, joules) turned into
text a reader of a report or plot expects ("1.23 ms", "4.27 GB", "989 TFLOP/s", "12 %"),
and number formats shown by name ("MXFP4 (4.25 bits)"), not as JSON.

Decimal prefixes throughout (GB = 1e9 bytes), as the hardware datasheets use them."""

from __future__ import annotations

import math
from pathlib import Path

__all__ = ["PREFIXES", "si", "seconds", "nbytes", "flops", "flops_per_s", "joules", "percent", "quantity",
           "format_name", "formats_line", "display_source"]

PREFIXES = ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""),
             (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"), (1e-12, "p"))


def si(x, unit: str = "", digits: int = 3) -> str:
    """1.5e-3, "s" -> "1.5 ms"; None/NaN -> "n/a"; inf -> "inf"."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    x = float(x)
    if math.isinf(x):
        return f"{'-' if x < 0 else ''}inf {unit}".strip()
    if x == 0:
        return f"0 {unit}".strip()
    for scale, p in PREFIXES:
        if abs(x) >= scale * 0.9995:  # 999.96 ms prints as "1 s", not "1e+03 ms"
            return f"{x / scale:.{digits}g} {p}{unit}".strip()
    return f"{x:.{digits}g} {unit}".strip()


def seconds(x, digits: int = 3) -> str:
    return si(x, "s", digits)


def nbytes(x, digits: int = 3) -> str:
    return si(x, "B", digits)


def flops(x, digits: int = 3) -> str:
    return si(x, "FLOP", digits)


def flops_per_s(x, digits: int = 3) -> str:
    return si(x, "FLOP/s", digits)


def joules(x, digits: int = 3) -> str:
    return si(x, "J", digits)


def percent(fraction, digits: int = 3) -> str:
    """0.1234 -> "12.3 %"."""
    if fraction is None or (isinstance(fraction, float) and math.isnan(fraction)):
        return "n/a"
    v = 100 * float(fraction)
    if abs(v) >= 10 ** digits:  # 100 % stays "100 %", never "1e+02 %"
        return f"{v:.0f} %"
    return f"{v:.{digits}g} %"


def quantity(x, kind: str | None, digits: int = 3) -> str:
    """A hardware quantity of a known kind ("bandwidth": 2e12 -> "2 TB/s"); plain
    number text when the kind is unknown."""
    from hwmodels.units import BASE_UNIT
    if kind in BASE_UNIT and kind != "area" and isinstance(x, (int, float)) and not isinstance(x, bool):
        return si(x, BASE_UNIT[kind], digits)
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    return str(x)


def format_name(name) -> str:
    """"mxfp4" -> "MXFP4 (4.25 bits)": the registry name in capitals with its storage
    bits per element (scale overhead included); an unknown name is shown as given."""
    if not name:
        return "n/a"
    try:
        from workloads.formats import get_format
        bits = get_format(str(name)).bits_per_element
    except (ValueError, KeyError):
        return str(name)
    return f"{str(name).upper()} ({bits:g} bits)"


def formats_line(formats: dict) -> str:
    """{"weights": "mxfp4", "acts": "bf16", "kv": "bf16"} -> "weights MXFP4 (4.25 bits),
    activations BF16 (16 bits), KV cache BF16 (16 bits)"."""
    names = {"weights": "weights", "acts": "activations", "kv": "KV cache"}
    return ", ".join(f"{names.get(k, k)} {format_name(v)}" for k, v in (formats or {}).items())


def display_source(path) -> str:
    """A file the package ships is shown by its place in the package
    ("cosim/configs/hw/h100_sxm.yaml (bundled)") so reports never carry an install path
    such as site-packages; a user's own file keeps its path."""
    if not path:
        return "inline"
    p = Path(str(path))
    try:
        from workloads.io import InputError, bundled_root
        rel = p.resolve().relative_to(bundled_root().resolve())
    except (ValueError, OSError, InputError, TypeError):
        return str(path)
    return f"cosim/configs/{rel.as_posix()} (bundled)"
