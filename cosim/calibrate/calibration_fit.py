"""Fit one machine's small-message collective calibration (hwmodels.collective_calibration) from its own
nccl-tests output, the way a GPU is calibrated per device.

From the machine's rows of one collective run with one algorithm:
- floor = the median time of the rows at or below ``floor_max`` bytes (default 8 KB: the launch floor);
- latency[algorithm] = the median over the rows in ``latency_band`` (default 1 - 2 MiB) of the intercept
  that makes the law give the measured time: t = a + w(S) (i - a) + b(S), so a = (t - b - w i) / (1 - w),
  with i and b the fitted model's intercept and bytes term of the algorithm's fastest protocol at S.
Nothing else of the model moves: bandwidths stay the fitted ones. A calibrated algorithm is fitted and priced
without its size-regime lines (``nvls/simple_small``): the calibration's own law covers that regime.

The CLI is cosim.calibrate.collective_calibrate.
"""

from __future__ import annotations

import statistics
from dataclasses import replace

from hwmodels.collective_calibration import CollectiveCalibration
from hwmodels.collectives import algorithm_of, candidate_lines
from hwmodels.spec import HardwareError
from hwmodels.system import is_regime_protocol

__all__ = ["fit_calibration", "uncalibrated", "single_line", "yaml_block", "FLOOR_MAX", "LATENCY_BAND"]

FLOOR_MAX = 8 << 10
LATENCY_BAND = (1 << 20, 2 << 20)


def uncalibrated(system):
    """The system without any ``collectives.calibration`` (what a calibration is fitted against)."""
    return replace(system, calibration=None)


def single_line(system):
    """The system with one line per (algorithm, protocol): its size-regime lines (``<protocol>_<regime>``, e.g.
    nvls simple_small) left out. A calibration acts on these base lines (its law is chosen on them, and a
    calibrated algorithm is priced without its regime lines, hwmodels.collectives.collective_cost)."""
    coll = dict(system.collectives or {})
    eff = coll.get("efficiency") or {}
    coll["efficiency"] = {sc: {a: ({p: q for p, q in f.items() if not is_regime_protocol(p)}
                                   if isinstance(f, dict) and "bw" not in f else f) for a, f in algs.items()}
                          for sc, algs in eff.items()}
    return replace(system, collectives=coll)


def _line(kind, S, ranks, system, algorithm):
    """(intercept, bytes term) of the algorithm's fastest protocol at S (the model's choice if None)."""
    lines = [x for x in candidate_lines(kind, S, ranks, 1, system, "analytical", algorithm, regimes=False)]
    if not lines:
        raise HardwareError(f"{system.name}: no {algorithm or 'model'} line for {kind} over {ranks} ranks")
    label, t, i = min(lines, key=lambda x: x[1])
    return i, t - i


def fit_calibration(points, system, kind: str, ranks: int, algorithm: str | None, launch: str, source: str,
                    status: str = "V", blend: dict | None = None, floor_max: int = FLOOR_MAX,
                    latency_band: tuple = LATENCY_BAND) -> CollectiveCalibration:
    """A calibration from `points` [(size_bytes, time_s)] of one run (see the module docstring).
    `blend` {algorithm: (half_bytes, p)} of the blend law (others: replace); `algorithm` the run's
    (None: the model's choice at each size)."""
    base = uncalibrated(system)
    blend = dict(blend or {})
    probe = CollectiveCalibration(source, status, launch, {}, None, "blend", blend)
    floor_pts = [t for S, t in points if S <= floor_max]
    floor = statistics.median(floor_pts) if floor_pts else None
    alphas, alg_name = [], algorithm
    for S, t in points:
        if not latency_band[0] <= S <= latency_band[1]:
            continue
        label = min(candidate_lines(kind, S, ranks, 1, base, "analytical", algorithm, regimes=False),
                    key=lambda x: x[1])[0]
        alg_name = alg_name or algorithm_of(label)
        i, b = _line(kind, S, ranks, base, algorithm_of(label))
        w = probe.weight(S, algorithm_of(label))
        alphas.append((t - b - w * i) / (1.0 - w))
    if floor is None and not alphas:
        raise HardwareError(f"{source}: no rows at <= {floor_max} B (floor) nor in {latency_band[0]}-"
                            f"{latency_band[1]} B (latency); expected at least one to calibrate from")
    latency = {alg_name: max(statistics.median(alphas), 0.0)} if alphas else {}
    return CollectiveCalibration(source, status, launch, latency, floor, "blend" if blend else "replace", blend)


def yaml_block(cal: CollectiveCalibration) -> str:
    lat = ", ".join(f"{a}: {v * 1e6:.2f} us" for a, v in cal.latency_s.items())
    law = "{form: replace}"
    if cal.law == "blend":
        half = ", ".join(f"{a}: {h:.0f} B" for a, (h, _) in cal.blend.items())
        ps = ", ".join(f"{a}: {p:g}" for a, (_, p) in cal.blend.items())
        law = f"{{form: blend, half: {{{half}}}, p: {{{ps}}}}}"
    out = ["calibration:", f"  source: {cal.source!r}", f"  status: {cal.status}", f"  launch: {cal.launch}"]
    if cal.floor_s is not None:
        out.append(f"  floor: {cal.floor_s * 1e6:.2f} us")
    if lat:
        out.append(f"  latency: {{{lat}}}")
    out.append(f"  law: {law}")
    return "\n".join(out)
