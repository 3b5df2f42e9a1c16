"""How a clock or array override reaches a spec's compute peaks: one rule for every level.

A hardware file's ``compute:`` figures are the peaks at the file's own clock and (for an
accelerator or FPGA) its own array. An override of the clock, or of a field the array is built
from (``accelerator.rows``, ``fpga.budget.dsp``, ...), scales them; `hwmodels.spec.load_hw`
applies this when it builds the spec, so `cosim.simulate`, every level and both sweep paths
(per spec, and `hwmodels.roofline.hw_table_variants` / `hwmodels.cycle_variants` on arrays)
price the same peaks.

* A spec with an ``accelerator:`` or ``fpga:`` section: a format its PEs compute in peaks at
  2 FLOP/MAC x arrays x rows x cols x MACs/PE/cycle(fmt) x clock (`AcceleratorConfig.peak_flops`,
  the formula the bundled files cite, e.g. mx_systolic_128: 4 x 128 x 128 x 1 x 2 x 1.0e9 =
  131.072 TFLOP/s); the vector format (fp32, when the PEs lack it) at arrays x vector lanes x
  FLOP/lane x clock (`AcceleratorConfig.vector_flops_per_cycle`). The file's figure must agree
  with the formula to its rounding (`PEAK_TOLERANCE`), checked at load; a variant's peak is the
  figure (or a ``compute.<fmt>`` override of it) times derived(variant) / derived(file), which
  is exactly the derived value when the figure is.
* Any other peak (a GPU's or a TPU's datasheet figure; an accelerator format that is neither
  its PEs' nor its vector unit's) is not derived from units here: a clock override scales it by
  new clock / the file's clock, taking the figure as units x ops/cycle x clock with units and
  ops/cycle fixed, and the spec carries a note saying so (`HardwareSpec.notes`).

Memory bandwidths are never scaled (on-chip SRAM bandwidths that the files derive from the
clock included): a clock what-if moves compute only. A file without a clock has nothing to
scale from: the override is refused.
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from pathlib import Path

from hwmodels.spec_data import HardwareError, HardwareSpec
from workloads.formats import get_format

__all__ = ["PEAK_TOLERANCE", "VECTOR_FORMAT", "PEAK_FIELDS", "array_config", "derived_peak", "check_stated_peaks",
           "scaled_spec", "peak_ratio", "reaches_peaks", "touches_peaks"]

PEAK_TOLERANCE = 1e-3  # a file's compute: figure vs its array's formula: the file's rounding (tpu_v4_like: 4.4e-6)
VECTOR_FORMAT = "fp32"  # elementwise ops run on the vector units (hwmodels.cycle; hwmodels.roofline imports it)


def array_config(hw: HardwareSpec):
    """The accelerator the spec's ``accelerator:`` / ``fpga:`` section describes (hwmodels.accelerators.config_for,
    which raises one error naming the file, the field, the value and what was expected), or None without one."""
    if "accelerator" not in hw.sections and "fpga" not in hw.sections:
        return None
    from hwmodels.accelerators import config_for
    return config_for(hw)


_FILE_CONFIGS: dict = {}  # id(file spec) -> (the spec, its array): load_hw caches the file's spec, so sweeps hit


def _file_config(file_spec: HardwareSpec):
    hit = _FILE_CONFIGS.get(id(file_spec))
    if hit is None or hit[0] is not file_spec:
        if len(_FILE_CONFIGS) > 256:
            _FILE_CONFIGS.clear()
        hit = _FILE_CONFIGS[id(file_spec)] = (file_spec, array_config(file_spec))
    return hit[1]


@lru_cache(maxsize=4096)
def _pe_rate(pe, fmt: str):
    """MACs per PE per cycle of `fmt` on the PE unit `pe` (hwmodels.arith.DotProductUnit), None when it lacks it:
    cached on the unit, which a variant of the array's size shares with its file."""
    return float(pe.macs_per_cycle(fmt)) if pe.supports(fmt) else None


def _units(cfg, fmt: str):
    """Operations per cycle of `fmt` on the array `cfg` (2 FLOP per MAC x PEs x MACs/PE/cycle; the vector units
    for the vector format), or None when the array does not compute `fmt` (the peak is then a stated figure)."""
    rate = _pe_rate(cfg.pe, fmt)
    if rate is not None:
        return 2.0 * cfg.pes * rate
    if get_format(fmt).name == VECTOR_FORMAT:
        return cfg.vector_flops_per_cycle()
    return None


def _formula(cfg, fmt: str) -> str:
    if _pe_rate(cfg.pe, fmt) is not None:
        return f"2 x {cfg.arrays} x {cfg.rows}x{cfg.cols} PEs x {_pe_rate(cfg.pe, fmt):g} MAC/PE/cycle"
    return f"{cfg.arrays} x {cfg.vector_lanes} vector lanes x {cfg.vector_flops_per_lane:g} FLOP/lane"


def derived_peak(cfg, fmt: str, clock_hz: float):
    """(peak FLOP/s, its formula as text) of `fmt` on the array `cfg` at `clock_hz`, or None."""
    u = _units(cfg, fmt)
    return None if u is None else (u * clock_hz, _formula(cfg, fmt))


def peak_ratio(fmt: str, cfg0, clock0: float, cfg1, clock1: float) -> tuple[float, bool]:
    """(factor from the file's peak to the variant's, derived?) of `fmt`: derived(variant) / derived(file) on
    an array (the ops/cycle ratio times the clock ratio: exactly the clock ratio when the array is the same),
    else the clock ratio (a stated figure). The one formula every path uses, so they agree to the bit."""
    u0 = _units(cfg0, fmt) if cfg0 is not None else None
    u1 = _units(cfg1, fmt) if cfg1 is not None and u0 is not None else None
    if u0 is not None and u1 is not None:
        return (u1 / u0) * (clock1 / clock0), True
    return clock1 / clock0, False


def check_stated_peaks(hw: HardwareSpec, cfg, compute: dict, src: str) -> list:
    """Problems (one line each) of a file whose ``compute:`` figure of an array format is not its array's
    peak: the roofline would then price another chip than the cycle level."""
    out = []
    for key, text in compute.items():
        try:
            fmt = get_format(str(key)).name
        except Exception:  # noqa: BLE001 - an unknown format is reported by the compute check
            continue
        d = derived_peak(cfg, fmt, hw.clock_hz)
        stated = hw.peak_flops.get(fmt)
        if d is None or stated is None or d[0] <= 0:
            continue
        if abs(stated / d[0] - 1.0) > PEAK_TOLERANCE:
            out.append(f"{src}: compute.{key}: got {text!r}; expected the array's peak {d[1]} x "
                       f"{hw.clock_hz / 1e9:g} GHz = {d[0] / 1e12:.7g} TFLOP/s "
                       f"(within {PEAK_TOLERANCE:.1%}: the roofline and the cycle level price the same array)")
    return out


# the fields of the array sections that its compute peaks are built from (override paths; a field or anything
# under it): what a roofline or analytical sweep over an accelerator: / fpga: field can vary. The others (buffer
# sizes, DRAM latency, dataflow, fold overlap, technology) are read by the cycle model only.
PEAK_FIELDS = ("accelerator.rows", "accelerator.cols", "accelerator.arrays", "accelerator.pe", "accelerator.vector",
               "fpga.array", "fpga.budget.dsp", "fpga.budget.lut", "fpga.resources.dsp", "fpga.resources.dsp_type",
               "fpga.resources.lut", "fpga.pe", "fpga.vector", "fpga.engine", "fpga.aie.tiles",
               "fpga.aie.macs_per_tile", "fpga.aie.vector_lanes")


def reaches_peaks(field: str) -> bool:
    """Does an override of this accelerator: / fpga: field (a path without the sweep's `hw.`) move the compute
    peaks, and so the roofline?"""
    return any(field == p or field.startswith(p + ".") for p in PEAK_FIELDS)


def touches_peaks(overrides) -> bool:
    """Do these overrides move what the peaks are scaled from (the clock, the array fields that set them)?"""
    return any(str(k) == "clock" or reaches_peaks(str(k)) for k in overrides or ())


def scaled_spec(file_spec: HardwareSpec, spec: HardwareSpec) -> HardwareSpec:
    """`spec` (the file with its overrides applied) with its compute peaks scaled from the file's clock and
    array to its own (the module's rule), and a note for the stated figures a clock change scaled."""
    if not file_spec.clock_hz or file_spec.clock_hz <= 0:
        raise HardwareError(f"{spec.source or spec.name}: overrides['clock']: got {spec.clock_hz!r}; expected a "
                            f"file that states its clock (its compute peaks have no clock to scale from)")
    cfg0, cfg1 = _file_config(file_spec), array_config(spec)
    c0, c1 = file_spec.clock_hz, spec.clock_hz
    peaks, stated = {}, []
    for fmt, p in spec.peak_flops.items():
        r, derived = peak_ratio(fmt, cfg0, c0, cfg1, c1)
        peaks[fmt] = p * r
        if not derived and r != 1.0:
            stated.append(fmt)
    notes = spec.notes
    if stated:
        names = [f for f in dict.fromkeys(get_format(f).name for f in stated) if f in stated]
        # a compute.<fmt> override is the peak at the file's clock: said as the user's, not as the file's figure
        own = [f for f in names if spec.peak_flops[f] != file_spec.peak_flops.get(f)]
        kept = [f for f in names if f not in own]
        why = ("datasheet figures" if cfg0 is None else
               "figures that the array's PEs and vector units do not account for")
        what = "; ".join(x for x in (f"{', '.join(kept)} are {why}" if kept else "",
                                     f"{', '.join(own)} {'is' if len(own) == 1 else 'are'} the compute override "
                                     f"(the peak at the file's clock)" if own else "") if x)
        notes = notes + (f"clock {c1 / 1e9:g} GHz (override; {Path(file_spec.source).name or file_spec.name} "
                         f"states {c0 / 1e9:g} GHz): compute peaks {what}, scaled by the clock ratio x{c1 / c0:.6g} "
                         f"(taken as units x ops/cycle x clock); memory bandwidths are not scaled",)
    return replace(spec, peak_flops=peaks, notes=notes)
