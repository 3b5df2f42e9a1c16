"""A system's own small-message collective calibration, like a GPU's per-device calibration.

The fitted collective model (hwmodels.collectives) carries machine-independent bandwidths and
latencies; its small-message time is dominated by a per-machine floor (driver, NCCL version,
launch mode, harness flags) that no constant fits on every machine (docs/multi-device.md 5.1.4).
A system file may therefore carry, under ``collectives.calibration``, what one machine measured:

    calibration:
      source: nccl-tests all_reduce_perf on <machine>, <file / URL>   # where the numbers come from
      status: V                        # V measured, R reported, D derived, U unknown (as hardware files)
      launch: single_process           # the harness mode it was measured in; applied only to that mode
      floor: 26.1 us                   # optional: the smallest time any collective takes there
      latency: {nvls: 37.9 us}         # per algorithm: the measured intercept (alpha) of its time line
      law: {form: blend, half: {nvls: 8 MiB}, p: {nvls: 1}}   # per algorithm, fitted on fit data (else replace)

Priced time of a candidate (algorithm, protocol) with model time t = i + b(S) (intercept i, bytes b):
- ``replace``: a + b(S)
- ``blend``:   a + w(S) (i - a) + b(S), w(S) = S^p / (S^p + half^p) for the algorithms the law lists
  (the others: replace): the measured small-message
  intercept at small S, the fitted (large-message) intercept at large S (NCCL grows its channel count,
  and with it the per-collective overhead, with the message size);
then max(floor, .) where a floor is given (else the system's launch term, hwmodels.launch).
Every priced collective says what priced it (hwmodels.collectives): ``calibrated from <source> [status]`` where the
calibration did, else the model's own label (``fitted model``, ``launch floor single_process``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hwmodels.spec import HardwareError
from workloads.yamlsafe import InputError
from hwmodels.units import parse_quantity

__all__ = ["CollectiveCalibration", "calibration_of", "parse_calibration", "calibration_of_block", "LAWS", "STATUSES"]

LAWS = ("replace", "blend")
STATUSES = ("V", "R", "D", "U")
_KEYS = {"source", "status", "launch", "floor", "latency", "law"}


@dataclass(frozen=True)
class CollectiveCalibration:
    source: str
    status: str
    launch: str
    latency_s: dict = field(default_factory=dict)  # algorithm -> seconds
    floor_s: float | None = None
    law: str = "blend"
    blend: dict = field(default_factory=dict)  # algorithm -> (half_bytes, p); absent: replace

    @property
    def provenance(self) -> str:
        return f"calibrated from {self.source} [{self.status}]"

    def weight(self, nbytes: float, algorithm: str) -> float:
        """w(S) of the blend law: 0 (measured intercept) at small S, 1 (fitted intercept) at large S."""
        hp = self.blend.get(algorithm) if self.law == "blend" else None
        if hp is None or nbytes <= 0:
            return 0.0
        half, p = hp
        return nbytes ** p / (nbytes ** p + half ** p)

    def adjust(self, t: float, intercept: float, nbytes: float, algorithm: str) -> float:
        """A candidate's time with its intercept replaced by the measured one (algorithms the
        calibration does not name keep the model's time)."""
        a = self.latency_s.get(algorithm)
        if a is None:
            return t
        return t - intercept + a + self.weight(nbytes, algorithm) * (intercept - a)

    def apply_floor(self, t: float) -> float:
        return t if self.floor_s is None else max(t, self.floor_s)


def parse_calibration(block, where: str) -> tuple:
    """(calibration or None, problems) of a ``collectives.calibration`` block: parsed once, at load
    (hwmodels.system keeps the result on the SystemSpec); each problem names field, value and what was expected."""
    if block is None:
        return None, []
    if not isinstance(block, dict):
        return None, [f"{where}: collectives.calibration: got {block!r}; expected a mapping with {sorted(_KEYS)}"]
    errs = []
    for k in set(block) - _KEYS:
        errs.append(f"{where}: collectives.calibration.{k}: unknown key; expected one of {sorted(_KEYS)}")
    for k in ("source", "status", "launch"):
        v = block.get(k)
        if not isinstance(v, str) or not v.strip():
            errs.append(f"{where}: collectives.calibration.{k}: got {v!r}; expected text")
    if block.get("status") not in STATUSES:
        errs.append(f"{where}: collectives.calibration.status: got {block.get('status')!r}; expected one of {STATUSES}")
    if block.get("floor") is None and not block.get("latency"):
        errs.append(f"{where}: collectives.calibration: neither floor nor latency given; expected at least one")
    cal = None
    try:
        cal = calibration_of_block(block, where)
    except InputError as e:  # HardwareError and parse_quantity's errors
        errs.append(str(e))
    return (None if errs else cal), errs


def calibration_of_block(block: dict, where: str) -> CollectiveCalibration:
    fld = "collectives.calibration"
    lat = block.get("latency") or {}
    if not isinstance(lat, dict):
        raise HardwareError(f"{where}: {fld}.latency: got {lat!r}; expected a mapping algorithm -> time")
    latency = {str(a): parse_quantity(v, "time", where, f"{fld}.latency.{a}", allow_zero=True) for a, v in lat.items()}
    floor = block.get("floor")
    floor_s = None if floor is None else parse_quantity(floor, "time", where, f"{fld}.floor")
    law = block.get("law") or {"form": "replace"}
    if not isinstance(law, dict) or law.get("form") not in LAWS:
        raise HardwareError(f"{where}: {fld}.law: got {law!r}; expected {{form: replace}} or {{form: blend, half, p}}")
    blend = {}
    if law["form"] == "blend":
        halves, ps = law.get("half") or {}, law.get("p") or {}
        if not isinstance(halves, dict) or not isinstance(ps, dict) or set(halves) != set(ps):
            raise HardwareError(f"{where}: {fld}.law: got {law!r}; expected half and p mappings with the same algorithms")
        for a in halves:
            p = ps[a]
            if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 < p <= 8:
                raise HardwareError(f"{where}: {fld}.law.p.{a}: got {p!r}; expected a number in (0, 8]")
            blend[str(a)] = (parse_quantity(halves[a], "bytes", where, f"{fld}.law.half.{a}"), float(p))
    return CollectiveCalibration(str(block.get("source", "")).strip(), str(block.get("status", "")),
                                 str(block.get("launch", "")), latency, floor_s, law["form"], blend)


def calibration_of(system) -> CollectiveCalibration | None:
    """The system file's calibration (parsed once when the system was loaded), or None: then every collective
    is priced by the model and the system's launch term (hwmodels.collectives labels what priced each row).
    A raw block left in SystemSpec.collectives (``replace(system, collectives={..., "calibration": block})``,
    the pre-session-8 way) is never read, so it is refused rather than priced as uncalibrated."""
    coll = getattr(system, "collectives", None)
    if isinstance(coll, dict) and "calibration" in coll:
        where = getattr(system, "source", "") or getattr(system, "name", "") or "system"
        raise HardwareError(f"{where}: SystemSpec.collectives['calibration']: got a raw block there, which is never "
                            f"read; expected the calibration in SystemSpec.calibration: load the file through "
                            f"hwmodels.system.load_system (it parses collectives.calibration), or set "
                            f"replace(system, calibration=calibration_of_block(block, where))")
    return getattr(system, "calibration", None)
