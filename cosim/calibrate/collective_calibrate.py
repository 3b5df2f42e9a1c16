"""Fit one machine's small-message collective calibration (hwmodels.collective_calibration) from its own
nccl-tests output, the way a GPU is calibrated per device.

From the machine's rows of one collective run with one algorithm:
- floor = the median time of the rows at or below ``floor_max`` bytes (default 8 KB: the launch floor);
- latency[algorithm] = the median over the rows in ``latency_band`` (default 1 - 2 MiB) of the intercept
  that makes the law give the measured time: t = a + w(S) (i - a) + b(S), so a = (t - b - w i) / (1 - w),
  with i and b the fitted model's intercept and bytes term of the algorithm's fastest protocol at S.
Nothing else of the model moves: bandwidths stay the fitted ones.

CLI (prints the YAML block to paste under the system file's ``collectives:``; one ``error:`` line, exit 2):

    python -m cosim.calibrate.collective_calibrate all_reduce.txt --system dgx_h100 --algorithm nvls
"""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import replace

from hwmodels.collective_calibration import CollectiveCalibration
from hwmodels.collectives import candidate_lines
from hwmodels.spec import HardwareError
from workloads.yamlsafe import InputError

__all__ = ["fit_calibration", "uncalibrated", "yaml_block", "main", "FLOOR_MAX", "LATENCY_BAND"]

FLOOR_MAX = 8 << 10
LATENCY_BAND = (1 << 20, 2 << 20)


def uncalibrated(system):
    """The system without any ``collectives.calibration`` (what a calibration is fitted against)."""
    coll = {k: v for k, v in (system.collectives or {}).items() if k != "calibration"}
    return replace(system, collectives=coll)


def _line(kind, S, ranks, system, algorithm):
    """(intercept, bytes term) of the algorithm's fastest protocol at S (the model's choice if None)."""
    lines = [x for x in candidate_lines(kind, S, ranks, 1, system, "analytical", algorithm)]
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
        label = min(candidate_lines(kind, S, ranks, 1, base, "analytical", algorithm), key=lambda x: x[1])[0]
        alg_name = alg_name or label.split("/")[0]
        i, b = _line(kind, S, ranks, base, label.split("/")[0])
        w = probe.weight(S, label.split("/")[0])
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


def main(argv=None) -> int:
    from cosim.calibrate.nccl_table import NcclTableError, read_nccl_tests
    from hwmodels.system import load_system

    ap = argparse.ArgumentParser(prog="python -m cosim.calibrate.collective_calibrate", description=__doc__.split("\n")[0])
    ap.add_argument("file", help="nccl-tests text output of one collective on one machine")
    ap.add_argument("--system", required=True, help="bundled system name or YAML path")
    ap.add_argument("--collective", default=None, help="allreduce, allgather, ... (if the text does not name it)")
    ap.add_argument("--algorithm", default=None, help="the NCCL_ALGO the run forced (ring, nvls); default: the model's choice")
    ap.add_argument("--ranks", type=int, default=None, help="ranks of the run (default: the system's devices per node)")
    ap.add_argument("--law", default="blend", choices=("replace", "blend"))
    ap.add_argument("--in-place", action="store_true", help="use the in-place times (default out-of-place)")
    a = ap.parse_args(argv)
    try:
        table = read_nccl_tests(a.file, a.collective)
        system = load_system(a.system)
        if table.launch is None:
            raise NcclTableError(f"{a.file}: header: no 'nGpus N' line; expected the nccl-tests header (launch mode)")
        blend = {}
        if a.law == "blend":
            from cosim.calibrate.calibration_law_fit import chosen_blend
            blend = chosen_blend()
        pts = [(r.size_bytes, (r.ip_time_us if a.in_place else r.oop_time_us) * 1e-6) for r in table.rows]
        cal = fit_calibration(pts, system, table.collective, a.ranks or system.devices_per_node, a.algorithm,
                              table.launch, f"{a.file} ({table.collective}, {len(pts)} rows)", blend=blend)
    except (NcclTableError, InputError) as e:  # InputError: HardwareError and quantity errors
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(yaml_block(cal))
    return 0


if __name__ == "__main__":
    sys.exit(main())
