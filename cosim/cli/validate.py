"""`cosim validate`: predicted vs measured per op class, end to end and energy, for the
roofline and analytical levels, on the held-out split of a measurement CSV."""

from __future__ import annotations

import sys

from cosim import jsonio

from workloads.io import InputError


def register(sub) -> None:
    p = sub.add_parser("validate", help="compare roofline/analytical predictions with GPU measurements",
                       description=__doc__)
    p.add_argument("--hw", required=True, help="hardware spec (name or YAML path)")
    p.add_argument("--measurements", required=True, help="ops CSV or run manifest (*_runs.csv) written by "
                                                             "cosim calibrate")
    p.add_argument("--energy", help="energy CSV (default: a manifest's runs' raw_<run>/energy.csv, a flat "
                                        "CSV's sibling *_energy.csv)")
    p.add_argument("--e2e", help="end-to-end CSV (default: a manifest's runs' raw_<run>/e2e.csv, a flat "
                                     "CSV's sibling *_e2e.csv)")
    from cosim.calibrate.dataset import HELDOUT_SPLITS

    held = tuple(HELDOUT_SPLITS.values())
    p.add_argument("--split", choices=held + ("fit", "all"), default="test",
                   help=f"test = held-out shapes never used by the fit (default); {held[1]} .. {held[-1]} = the "
                        f"later held-out suites ({list(HELDOUT_SPLITS)[1]} .. {list(HELDOUT_SPLITS)[-1]})")
    p.add_argument("--include-unreliable", action="store_true",
                   help="also score rows whose repeats spread > 50%% of the median (host-bound launches)")
    p.add_argument("--plot", help="write the predicted-vs-measured scatter to this file (.png, .svg or .pdf; a "
                                  "missing folder is created); nothing is written without it")
    p.add_argument("--json", help="write every comparison row to this file (.json; a missing folder is created)")
    p.set_defaults(func=run)


def run(args) -> int:
    from cosim.cli._paths import check_output_file, ensure_parent
    from cosim.validate import format_tables, scatter_plot, validate

    # before the work, as plan and roofline do: a bad extension or path is one error line, not a traceback after
    # the tables (matplotlib refuses .txt, writes .jpg, appends .png to a bare name); folders are made on writing
    if args.plot:
        check_output_file(args.plot, "--plot", (".png", ".svg", ".pdf"))
    if args.json:
        check_output_file(args.json, "--json", (".json",))
    try:
        res = validate(args.hw, args.measurements, args.energy, args.e2e, args.split, args.include_unreliable)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_tables(res))
    if args.plot:
        print(f"wrote {scatter_plot(res, ensure_parent(args.plot, '--plot'))}")
    if args.json:
        path = ensure_parent(args.json, "--json")
        with open(path, "w") as f:
            jsonio.dump(res.to_dict(), f, indent=1, default=str)
        print(f"wrote {path}")
    return 0
