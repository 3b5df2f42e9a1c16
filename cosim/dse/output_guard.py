"""The sweep output-folder guard, shared by `cosim sweep` and `cosim.dse.sweep(...)`: a sweep
writes results.*, pareto.csv, plots and summary.json into its output directory over what is
there, so an existing directory is accepted only empty or as a sweep's own output."""

from __future__ import annotations

from pathlib import Path

from workloads.io import InputError

__all__ = ["check_sweep_output", "remove_stale"]


def _is_sweep_summary(path: Path) -> bool:
    import json
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and {"name", "objectives", "store"} <= set(doc)


def check_sweep_output(out, store, flag: str = "output") -> None:
    """A sweep writes results.*, pareto.csv, plots and summary.json into `out`, over what is there: an
    existing directory is accepted only empty or as a sweep's own output (its store results.jsonl or that
    store's lock, the sweep's --store, or a sweep's summary.json), never a user's folder whose files would
    be overwritten."""
    p = Path(out).expanduser()
    if not p.is_dir():
        return
    entries = sorted(e.name for e in p.iterdir() if not e.name.startswith(".cosim-probe-"))
    if not entries:
        return
    store = Path(store).expanduser() if store else p / "results.jsonl"
    # a store's lock is created before its first line: a sweep running concurrently on the same output
    marks = (p / "results.jsonl", store, Path(str(store) + ".lock"), p / "results.jsonl.lock")
    if any(m.is_file() for m in marks) or _is_sweep_summary(p / "summary.json"):
        return
    shown = ", ".join(entries[:3]) + (f", ... ({len(entries)} entries)" if len(entries) > 3 else "")
    raise InputError(f"{flag}: {str(p)[:200]}: an existing directory holding {shown} but no sweep store "
                     f"(results.jsonl) or sweep summary.json; expected a new or empty directory, or a sweep's "
                     f"own output to resume (the sweep would overwrite files there)")


def remove_stale(out, names, what: str) -> list:
    """Remove the files `names` (relative to `out`) an earlier run of `what` wrote there and this run did not
    rewrite -- left there they would read as this run's -- and any folder under `out` that leaves empty; says so
    on stderr. Callers pass only names their command itself writes, never a user's file. Returns the removed."""
    import sys
    out = Path(out)
    gone = [n for n in names if (out / n).is_file()]
    for n in gone:
        (out / n).unlink()
        d = (out / n).parent
        while d != out and d.is_dir() and not any(d.iterdir()):
            d.rmdir()
            d = d.parent
    if gone:
        print(f"cosim: removed {', '.join(gone)} from {out}: an earlier run of {what} wrote "
              f"{'them' if len(gone) > 1 else 'it'} and this one does not (stale)", file=sys.stderr)
    return gone
