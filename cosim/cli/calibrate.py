"""`cosim calibrate`: measure a GPU (needs the torch extra and a CUDA GPU) and/or fit the
analytical model's parameters from measurement CSVs (`--fit-only`, no GPU needed)."""

from __future__ import annotations

import sys
from pathlib import Path

from workloads.io import InputError


def register(sub) -> None:
    p = sub.add_parser("calibrate", help="measure a GPU and fit the analytical model (hwmodels.gpu)",
                       description=__doc__)
    p.add_argument("--hw", default="h100_sxm", help="hardware spec whose calibration is written (name or YAML path)")
    p.add_argument("--out-dir", default="validation", help="where the measurement CSVs are written/read")
    p.add_argument("--measurements", help="run manifest (*_runs.csv: run, suite per line; each run's rows in "
                                          "raw_<run>/ops.csv beside it) or flat ops CSV to fit and to add the run "
                                          "to (default: <out-dir>/<hw>_runs.csv, created for a device "
                                          "measured for the first time; <out-dir>/<hw>_ops.csv where only that "
                                          "flat file exists); a manifest's energy/e2e/env are its runs' "
                                          "raw_<run>/energy.csv, e2e.csv, env.json, a flat file's its siblings "
                                          "*_energy.csv, *_e2e.csv, *_env.json")
    p.add_argument("--out", "--calibration", dest="calibration",
                   help="calibration YAML to write; with --fit-only nothing is written without it (the fit "
                        "quality is printed); when measuring: cosim/configs/hw/calibration/<hw>.yaml next to the "
                        "hardware file")
    p.add_argument("--fit-only", action="store_true", help="do not measure; fit from existing CSVs")
    p.add_argument("--residuals-only", action="store_true",
                   help="do not measure or re-fit: give the calibration named by --out its measured-residual table "
                        "(hwmodels.gpu_residuals) from the fit rows of --measurements; its parameters are kept")
    # the names are not listed here: fit.TERM_SETS owns them, an unknown one is refused with the list (and importing
    # fit for this help would slow every cosim command)
    p.add_argument("--terms", help="optional-term set to fit (a cosim.calibrate.fit.TERM_SETS name; default: the set "
                                   "the GPU's committed calibration was fitted with, fit.DEFAULT_SET, else base, the "
                                   "session-8 form); the calibration's provenance.terms says which")
    p.add_argument("--energy", help="energy-loop CSV to fit the power model from (default: the measurements' "
                                    "own energy: a manifest's raw_<run>/energy.csv, a flat file's *_energy.csv); "
                                    "e.g. validation/h100_energy.csv for the H100 runs, which measured none")
    p.add_argument("--energy-backend", choices=("fa2", "cudnn"),
                   help="SDPA backend the energy loops' attention ran (default: the fitted default backend); "
                        "the H100's session-9 loops forced FlashAttention-2: fa2")
    from cosim.calibrate.dataset import SUITES

    p.add_argument("--variant", choices=tuple(SUITES), default="default",
                   help="measurement suite (cosim.calibrate.dataset.SUITES): "
                        + " / ".join(s for s, split in SUITES.items() if split == "fit")
                        + " (fitted, then the fit runs) or heldout* (validation-only shapes)")
    p.add_argument("--sections", default="launch,gemm,attention,elementwise,energy,e2e",
                   help="measurement sections to run, comma-separated")
    p.add_argument("--run-name", help="name of this run in the combined CSVs (default: <variant>-<UTC time>)")
    p.set_defaults(func=run)


def _paths(args):
    from hwmodels.spec import hw_path

    from cosim.calibrate.dataset import is_manifest, sibling

    name = Path(args.hw).stem
    prefix = Path(args.out_dir) / name.split("_")[0]
    manifest = prefix.with_name(prefix.name + "_runs.csv")
    flat = prefix.with_name(prefix.name + "_ops.csv")
    # a device with a manifest, or with nothing measured yet, gets a manifest; an old flat file is read as before
    ops = Path(args.measurements) if args.measurements else flat if flat.is_file() and not manifest.is_file() \
        else manifest
    cal = Path(args.calibration) if args.calibration else hw_path(args.hw).parent / "calibration" / f"{name}.yaml"
    energy = Path(args.energy) if getattr(args, "energy", None) else None
    if energy is not None and not energy.is_file():
        raise InputError(f"--energy: got {str(energy)!r}, which is not a file; expected an energy-loop CSV "
                         f"written by cosim calibrate (e.g. validation/h100_energy.csv)")
    if is_manifest(ops):  # a manifest's runs keep their energy/e2e/env files in raw_<run>/: read through it too
        return ops, energy or ops, ops, ops, cal
    return ops, energy or sibling(ops, "energy"), sibling(ops, "e2e"), sibling(ops, "env", "json"), cal


def device_matches(device: str, description: str) -> bool:
    """Whether a measured GPU (torch's device name, e.g. "NVIDIA H100 80GB HBM3") is the part a hardware
    file describes (its `description`, e.g. "NVIDIA H100 SXM5 80GB (HBM3, 700 W)"): every product id of the
    name (letters then digits, e.g. H100, MI300X; not a memory size or HBM generation) is in the
    description, and a PCIe / NVL board is not fitted as an SXM one (nor the reverse)."""
    import re

    def ids(text):
        return {t for t in re.findall(r"[A-Z]+[0-9]+[A-Z0-9]*", text.upper())
                if not re.fullmatch(r"[0-9]*GB|HBM[0-9A-Z]*|SXM[0-9]*", t)}

    def forms(text):
        up = text.upper()
        return {f for f in ("PCIE", "NVL") if f in up}

    dev = ids(device)
    return bool(dev) and dev <= ids(description) and forms(device) == forms(description)


def check_measured_device(measurements, hw_name: str) -> None:
    """Refuse a fit of --hw from another GPU's measurements: the calibration would keep the --hw part's
    datasheet bandwidth as its reference, so nothing is rescaled and the part is priced at the measured
    GPU's speed (audit s11: --hw mi300x fitted from H100 rows)."""
    from cosim.validate import measured_devices

    desc, other = _other_devices(measured_devices(Path(measurements)), hw_name, f"{measurements} records")
    if other:
        raise InputError(f"--hw: got {hw_name!r} ({desc}), but {measurements} was measured on "
                         f"{', '.join(repr(d) for d in other)}; expected --hw naming the measured GPU, or, to "
                         f"price another GPU from it, a family transfer `calibration: {{from: <fitted part>}}` "
                         f"in that GPU's hardware file")


def _other_devices(devices: list, hw_name: str, what: str) -> tuple:
    """(the --hw part's description, the measured devices that are not it); a note where none was recorded."""
    from hwmodels.spec import load_hw

    if not devices:
        print(f"note: {what} no measured device (no env json); not checked against --hw {hw_name}", file=sys.stderr)
        return "", []
    hw = load_hw(hw_name)
    desc = getattr(hw, "description", "") or hw.name
    return desc, [d for d in devices if not device_matches(d, desc)]


def energy_env(energy: Path) -> Path | None:
    """The env record beside an energy-loop CSV (raw_<run>/env.json, or <prefix>_env.json beside
    <prefix>_energy.csv), or None."""
    if energy.name == "energy.csv":
        env = energy.with_name("env.json")
    elif energy.stem.endswith("_energy"):
        env = energy.with_name(energy.stem.removesuffix("_energy") + "_env.json")
    else:
        return None
    return env if env.is_file() else None


def check_energy_device(energy: Path, hw_name: str) -> None:
    """--energy names another run's loops: refuse loops measured on another GPU (the power model would be fitted
    on them silently; review finding s16), as check_measured_device does for the ops rows."""
    from cosim.validate import env_devices

    env = energy_env(energy)
    desc, other = _other_devices(env_devices(env) if env else [], hw_name, f"--energy {energy} records")
    if other:
        raise InputError(f"--energy: got {str(energy)!r}, measured on {', '.join(repr(d) for d in other)} ({env}); "
                         f"expected energy loops of the GPU --hw names ({hw_name}: {desc})")


def run(args) -> int:
    try:
        ops, energy, e2e, env, cal = _paths(args)
        from cosim.calibrate.fit import terms_for

        terms = getattr(args, "terms", None)
        terms_for(args.hw, terms)  # an unknown --terms is refused before anything is measured or fitted
        if args.calibration:  # a calibration is YAML: --out notes.txt was overwritten with it
            from cosim.cli._paths import check_output_file
            check_output_file(cal, "--out", (".yaml", ".yml"))
        if getattr(args, "residuals_only", False):
            if not args.calibration:
                raise InputError("--residuals-only: --out missing; expected the calibration YAML to give a table")
            # the fit path's check, before anything is written: another GPU's rows would give --hw its residuals
            check_measured_device(ops, args.hw)
            from cosim.calibrate.fit import add_residuals
            block = add_residuals(cal, ops, args.hw)
            print(f"wrote {Path(cal).with_name(block['table'])} ({block['rows']} fit rows; classes "
                  f"{', '.join(block['classes'])}) and its residual_correction block in {cal}")
            return 0
        if not args.fit_only:
            from cosim.calibrate import microbench

            import datetime as dt

            from cosim.calibrate.dataset import is_manifest as dataset_is_manifest
            from cosim.calibrate.dataset import merge_run

            from cosim.calibrate.dataset import check_new_run, refuse_retired

            refuse_retired(args.variant, "--variant")  # before the GPU is touched
            run_name = args.run_name or f"{args.variant}-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M}"
            # refused before the GPU is touched: a listed run or an existing raw folder would be overwritten
            if dataset_is_manifest(ops):  # a manifest's runs live beside it, wherever --out-dir points
                raw = check_new_run(ops, run_name, args.variant)
            else:
                raw = Path(args.out_dir) / f"raw_{run_name}"
                if raw.exists():
                    raise InputError(f"--run-name: got {run_name!r}, but {raw}/ already exists; expected a new run "
                                     f"name whose raw folder is not there yet (measuring would overwrite it)")
            # microbench.run asks for PyTorch and a CUDA GPU itself, before it writes anything (its check, the one
            # copy); nothing is announced before it: a refusal is never preceded by "measuring ..."
            microbench.run(str(raw), [s for s in args.sections.split(",") if s], variant=args.variant)
            print(f"measured ({args.variant} suite) into {raw}")
            for path, n in merge_run(raw, ops, args.variant, run_name).items():
                print(f"listed run {run_name} ({n} rows in {raw / 'ops.csv'}) in {path}" if path == str(ops)
                      and dataset_is_manifest(ops) else f"appended {n} rows to {path}")
            from cosim.calibrate.dataset import HELDOUT_SPLITS
            if args.variant in HELDOUT_SPLITS:
                return 0  # held-out rows are never fitted
        from cosim.calibrate.fit import fit, fit_to_file

        check_measured_device(ops, args.hw)  # the env the fit reads names the GPU its rows come from
        if getattr(args, "energy", None):
            check_energy_device(Path(args.energy), args.hw)
        energy_backend = getattr(args, "energy_backend", None)
        if args.fit_only and not args.calibration:  # write only where asked: never into the install
            _section, rep = fit(ops, args.hw, energy, e2e, env, terms, energy_backend)
            print("fitted (not written; give --out FILE.yaml to save the calibration)")
        else:
            _section, rep = fit_to_file(ops, cal, args.hw, energy, e2e, env, terms, energy_backend)
            print(f"wrote {cal}")
        print(f"  terms: {rep['terms']}")
        for group, q in rep["quality"].items():
            print(f"  {group:<18} " + ", ".join(f"{k}={v}" for k, v in q.items()))
        return 0
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except SystemExit as e:  # microbench: no torch / no CUDA, with the message naming the extra
        print(f"error: {e}", file=sys.stderr)
        return 2
