"""CLI: fit one machine's collective calibration from its nccl-tests output (cosim.calibrate.calibration_fit)
and print the YAML block to paste under the system file's ``collectives:``; bad input is one ``error:``
line and exit 2.

    python -m cosim.calibrate.collective_calibrate all_reduce.txt --system dgx_h100 --algorithm nvls
"""

from __future__ import annotations

import argparse
import sys

from cosim.calibrate.calibration_fit import fit_calibration, yaml_block
from cosim.calibrate.calibration_law_fit import chosen_blend
from cosim.calibrate.nccl_table import NcclTableError, read_nccl_tests
from hwmodels.system import load_system
from workloads.yamlsafe import InputError

__all__ = ["main"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m cosim.calibrate.collective_calibrate", description=__doc__.split("\n")[0])
    ap.add_argument("file", help="nccl-tests text output of one collective on one machine")
    ap.add_argument("--system", required=True, help="bundled system name or YAML path")
    ap.add_argument("--collective", default=None, help="allreduce, allgather, ... (if the text does not name it)")
    ap.add_argument("--algorithm", default=None, help="the NCCL_ALGO the run forced (ring, nvls); default: the model's choice")
    ap.add_argument("--ranks", type=int, default=None, help="ranks of the run (default: N of a -g N single-process run, else the system's devices per node)")
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
            blend = chosen_blend()
        pts = [(r.size_bytes, (r.ip_time_us if a.in_place else r.oop_time_us) * 1e-6) for r in table.rows]
        # a single-process run (-g N) drives N ranks; otherwise the node's devices unless told: said in the source
        ranks = a.ranks or (table.launch == "single_process" and table.n_gpus_per_process) or system.devices_per_node
        cal = fit_calibration(pts, system, table.collective, ranks, a.algorithm, table.launch,
                              f"{a.file} ({table.collective}, {len(pts)} rows, {ranks} ranks)", blend=blend)
    except (NcclTableError, InputError) as e:  # InputError: HardwareError and quantity errors
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(yaml_block(cal))
    return 0


if __name__ == "__main__":
    sys.exit(main())
