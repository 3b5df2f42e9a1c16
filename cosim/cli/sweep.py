"""`cosim sweep sweep.yaml`: run (or resume) a design-space sweep."""

from __future__ import annotations

import sys
from contextlib import contextmanager


def register(sub) -> None:
    p = sub.add_parser("sweep", help="run or resume a design-space sweep (grid/zip/random/NSGA-II)",
                       description="Run a sweep YAML: a base experiment plus axes, objectives and constraints. "
                                   "Results are appended to a resumable store; re-running skips finished points.")
    p.add_argument("sweep", nargs="?", help="sweep YAML path (or a bundled example name, see cosim/configs/sweeps)")
    p.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://host:8786 (implies --executor dask)")
    p.add_argument("--executor", choices=("local", "dask"), help="override the file's executor")
    p.add_argument("--workers", type=int, help="local processes / LocalCluster workers")
    p.add_argument("--out", help="output directory (default: the file's `output`)")
    p.add_argument("--store", help="results store (.jsonl; default <out>/results.jsonl)")
    p.add_argument("--batch-size", type=int, help="roofline points per task")
    p.add_argument("--csv", action="store_true", help="write the results table as CSV (default: Parquet)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar or table (for scripts)")
    p.add_argument("--top", type=int, default=10, help="Pareto points printed")
    p.add_argument("--dry-run", action="store_true",
                   help="validate the file and count the configurations (and how many the store already has); run nothing")
    p.add_argument("--repair", action="store_true",
                   help="rewrite the store (--store, or the sweep's) without damaged or duplicate lines; run nothing")
    p.set_defaults(func=run)


@contextmanager
def _warnings_as_lines():
    """A warning the sweep library gives (warnings.warn: a combination check, calibrated energies,
    a store repair...) as the CLI's own one `warning: <text>` line on stderr, not Python's
    `file:line: UserWarning` with the echoed source line; a ShadowedNameWarning still goes to the
    CLI's note handler (cosim.shadow.warnings_as_notes)."""
    import warnings

    from workloads.io import ShadowedNameWarning
    with warnings.catch_warnings():
        shown = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, ShadowedNameWarning):
                shown(message, category, filename, lineno, file, line)
            else:
                print(f"warning: {message}", file=sys.stderr)
        warnings.showwarning = show
        yield


def run(args) -> int:
    with _warnings_as_lines():
        return _run(args)


def _run(args) -> int:
    from cosim.dse import load_sweep
    from cosim.dse.runner import run_sweep
    from workloads.io import InputError

    if args.repair and args.sweep is None and args.store:
        return _repair(args.store)
    if args.sweep is None:
        raise InputError("sweep: a sweep YAML is required (or --repair --store FILE)")
    spec = load_sweep(args.sweep, overrides={"scheduler": args.scheduler, "executor": args.executor,
                                             "workers": args.workers, "output": args.out, "store": args.store,
                                             "batch_size": args.batch_size,
                                             "table_format": "csv" if args.csv else None})
    if args.repair:
        return _repair(spec.store_path)
    from cosim.shadow import sweep_shadow_notes  # the file's bare names, as the CLI's flags
    for note in sweep_shadow_notes(spec, tell=True):  # those load_sweep's loaders did not tell already
        print(f"note: {note}", file=sys.stderr)
    from cosim.cli._paths import check_output_dir, check_output_file
    out_flag = "--out" if args.out else f"{spec.source}: output"
    # the same checks for --dry-run as for the run: "valid" promises that the run will not refuse the output
    check_output_dir(spec.output, out_flag)
    check_output_file(spec.store_path, "--store", (".jsonl",))
    if args.dry_run:
        from cosim.dse.output_guard import check_sweep_output  # run_sweep's guard: a user's folder is refused
        check_sweep_output(spec.output, spec.store_path, out_flag)
        from cosim.dse.runner import plan
        from cosim.dse.store import read_records
        n, cols = spec.columns()
        keys = {k for b in (plan(spec, n, cols) if n else []) for k in b["keys"]}
        done = {k for r in read_records(spec.store_path) for k in r["keys"]} & keys
        print(f"{spec.source}: valid; {len(keys)} distinct configurations from the axes ({n} points), "
              f"{len(done)} already in {spec.store_path}"
              + (f"; plus a {spec.search['trials']}-trial NSGA-II search" if spec.search else ""))
        return 0
    df = run_sweep(spec, quiet=args.quiet, output_flag=out_flag)
    n_ok = int((df["status"] == "ok").sum())
    from cosim.dse.runner import objective_notes
    notes = objective_notes(spec, df)  # NaN objectives, mixed energy scopes: as in summary.json
    if args.quiet:  # no table, but error rows and the summary's warnings are never silent: stderr
        if n_ok < len(df):
            first = df.loc[df["status"] != "ok", "error"].iloc[0]
            print(f"note: {spec.name}: {len(df) - n_ok} of {len(df)} configurations are error rows; first: {first}",
                  file=sys.stderr)
        for w in notes["warnings"]:
            print(f"warning: {spec.name}: {w}", file=sys.stderr)
        for w, c in _note_counts(df)[0]:  # the rows' WARNING notes (a checkpoint accuracy run's), as without --quiet
            print(f"warning: {spec.name}: {w[len('WARNING: '):]} ({c} row{'s' if c != 1 else ''})", file=sys.stderr)
        return 0
    n_nan = notes["nan_objectives"]["feasible_rows"]  # the parenthesis qualifies "feasible"; all ok rows: the warning
    print(f"{spec.name}: {len(df)} configurations ({n_ok} ok, {len(df) - n_ok} errors), "
          f"{int(df['feasible'].sum())} feasible"
          + (f" ({n_nan} with a NaN objective, not ranked)" if n_nan else "")
          + f", {int(df['pareto'].sum())} on the Pareto front"
          + (f" (+{int(df['pareto_tie'].sum())} identical in every objective: column pareto_tie)"
             if df["pareto_tie"].any() else ""))
    for w in notes["warnings"]:
        print(f"warning: {w}")
    if spec.constraints:
        print("constraints: " + ", ".join(str(c) for c in spec.constraints))
    from cosim.dse.runner import level_counts
    levels, n_fb = level_counts(df)
    if len(levels) > 1 or n_fb:  # never silent: rows priced by different levels or by the fallback
        print("levels: " + ", ".join(f"{k} {v}" for k, v in levels.items())
              + (f" ({n_fb} by fallback: roofline)" if n_fb else "") + "; per row: level_used, provenance")
    _print_notes(df)
    front = df[df["pareto"]].sort_values(next(iter(spec.objectives)))
    cols = spec.fields() + [m for m in spec.objectives] + (["level_used"] if len(levels) > 1 or n_fb else []) \
        + (["energy_scope"] if len(notes["energy_scopes"]) > 1 else []) \
        + (["pareto_ties"] if df["pareto_tie"].any() else [])  # a front mixing scopes shows which is which
    if len(front):
        print(front[cols].head(args.top).to_string(index=False))
    errs = df[df["status"] != "ok"]
    if len(errs):
        print(f"first error: {errs['error'].iloc[0]}")
    print(f"wrote {spec.output}/ (results table, pareto.csv, plots, summary.json); store {spec.store_path}")
    return 0


def _print_notes(df, top: int = 5) -> None:
    """The rows' notes (fallbacks, warnings, what a model left out), each distinct note once with its row
    count: never only in the results table's `notes` column. Every WARNING note is printed; of the others, the
    `top` most frequent."""
    warn, rest = _note_counts(df)
    if not warn and not rest:
        return
    print(f"notes ({int(df['notes'].notna().sum())} of {len(df)} rows; per row: column notes):")
    for note, c in warn + rest[:top]:
        print(f"  {c} row{'s' if c != 1 else ''}: {note}")
    if len(rest) > top:
        print(f"  ... {len(rest) - top} more distinct notes in the notes column")


def _note_counts(df) -> tuple[list, list]:
    """([(note, rows)] of the WARNING notes, [(note, rows)] of the others), each most frequent first: every
    distinct note of the `notes` column with the number of rows that carry it."""
    from collections import Counter

    from cosim.dse.evaluate import NOTES_SEP
    noted = df["notes"].dropna() if "notes" in df else []
    ranked = Counter(n for row in noted for n in str(row).split(NOTES_SEP)).most_common()
    return ([(n, c) for n, c in ranked if n.startswith("WARNING:")],
            [(n, c) for n, c in ranked if not n.startswith("WARNING:")])


def _repair(path) -> int:
    from cosim.dse.store import repair_store
    r = repair_store(path)
    lines = r.damaged_lines
    print(f"{path}: kept {r.points} points in {r.records} records; dropped {len(lines)} damaged line"
          f"{'s' if len(lines) != 1 else ''}" + (f" (lines {', '.join(map(str, lines[:20]))})" if lines else "")
          + f", {r.duplicate_points} duplicate points, {r.torn_tail_bytes} torn tail bytes")
    return 0
