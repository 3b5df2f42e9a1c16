"""Output paths and numeric flags checked before any work starts, so that an hour-long
sweep never ends in a traceback because its output directory is read-only.

`check_output_file` / `check_output_dir` prove writability the only reliable way: by
creating (and removing) a probe file where the output will go (or, for a directory not made
yet, in its nearest existing ancestor: a check creates no folder, `ensure_dir` /
`ensure_parent` do when the command writes) — that catches read-only
files and file systems, /proc, a file where a directory is expected, names longer than
the file system allows, and permission problems alike. Every failure is an InputError
naming the flag, the path and the reason (the CLI prints it as one `error:` line).
"""

from __future__ import annotations

import errno
import math
import os
import tempfile
from pathlib import Path

from workloads.io import InputError

__all__ = ["check_output_file", "check_output_dir", "ensure_dir", "ensure_parent", "check_no_overwrite",
           "check_numeric_flags",
           "POSITIVE_INT_FLAGS"]

# flag -> (lowest allowed value, what it is); flags absent from a command are skipped
POSITIVE_INT_FLAGS = {"top": 1, "steps": 1, "batch": 1, "seq": 1, "prompt": 1, "workers": 1,
                      "batch_size": 1, "stride": 1, "seed": 0, "layers": 1, "rows": 1, "tokens": 1,
                      "prefill": 0}
POSITIVE_FLOAT_FLAGS = {"bandwidth": (0.0, False), "latency": (0.0, True), "sram": (0.0, False),
                        "sram_bandwidth": (0.0, False)}  # (bound, zero allowed)


def _why(e: OSError) -> str:
    if e.errno == errno.ENAMETOOLONG:
        return "a name longer than the file system allows"
    return e.strerror or str(e)


def _probe_dir(d: Path, flag: str, shown: str) -> None:
    try:
        fd, probe = tempfile.mkstemp(prefix=".cosim-probe-", dir=d)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise InputError(f"{flag}: {shown}: cannot write into {d} ({_why(e)}); expected a writable directory") from None


def _name_ok(p: Path, flag: str) -> None:
    try:
        limit = os.pathconf(p.parent if p.parent.exists() else ".", "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    for part in p.parts:
        if len(part.encode()) > limit:
            raise InputError(f"{flag}: path component of {len(part.encode())} bytes; expected at most {limit} "
                             f"(the file system's name limit)")


def _existing_ancestor(p: Path) -> Path:
    """The nearest path at or above `p` that exists (the current directory for a relative path)."""
    q = p
    while not q.exists():
        if q.parent == q:
            return q
        q = q.parent if str(q.parent) else Path(".")
    return q


def check_output_dir(path, flag: str = "--out") -> Path:
    """`path` is a writable directory, or can be made one: it is checked, never created — a
    refused or interrupted command leaves no folder behind. A missing directory is checked at
    its nearest existing ancestor (a directory, writable); `ensure_dir` / `ensure_parent`
    create it when the command is about to write."""
    p = Path(path).expanduser()
    shown = str(p)[:200]
    _name_ok(p, flag)
    try:
        if p.exists():
            if not p.is_dir():
                raise InputError(f"{flag}: {shown}: is a file; expected a directory")
            _probe_dir(p, flag, shown)
            return p
        anc = _existing_ancestor(p)
    except OSError as e:
        raise InputError(f"{flag}: {shown}: cannot create the directory ({_why(e)})") from None
    if not anc.is_dir():
        raise InputError(f"{flag}: {shown}: cannot create the directory ({anc} is a file); expected a directory path")
    _probe_dir(anc, flag, shown)
    return p


def ensure_dir(path, flag: str = "--out") -> Path:
    """Create the (checked) output directory now that the command writes into it."""
    p = Path(path).expanduser()
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"{flag}: {str(p)[:200]}: cannot create the directory ({_why(e)})") from None
    return p


def ensure_parent(path, flag: str = "--out") -> Path:
    """Create the (checked) output file's directory now that the command writes the file."""
    p = Path(path).expanduser()
    ensure_dir(p.parent if str(p.parent) else Path("."), flag)
    return p


def check_no_overwrite(out, names, flag: str = "--out", force: bool = False) -> None:
    """A command writing the files `names` into the folder `out` never overwrites an earlier run's
    files silently (as `cosim sweep` refuses a folder that is not its own): any of them already
    there is refused, naming them, unless the user gave --force."""
    p = Path(out).expanduser()
    if not p.is_dir():
        return
    for n in names:  # --force or not, a file where a folder goes (out/serve a file) or the reverse fails the write
        parts = Path(n).parts
        for i in range(1, len(parts)):
            sub = p.joinpath(*parts[:i])
            if sub.exists() and not sub.is_dir():
                raise InputError(f"{flag}: {str(sub)[:200]}: exists and is not a directory; expected a folder for "
                                 f"{n} (or no such path)")
        if (p / n).is_dir():
            raise InputError(f"{flag}: {str(p / n)[:200]}: is a directory; expected the file {n} (or no such path)")
    if force:
        return
    there = [n for n in names if (p / n).exists()]
    if there:
        shown = ", ".join(there[:4]) + (f", ... ({len(there)} files)" if len(there) > 4 else "")
        raise InputError(f"{flag}: {str(p)[:200]}: already holds {shown} from an earlier run; expected a new "
                         f"directory or one without these files (give --force to overwrite them)")


def check_output_file(path, flag: str = "--out", exts: tuple = ()) -> Path:
    """`path` can be written: a known extension, an existing (or creatable, not created here)
    writable parent directory, and — if it exists — a writable regular file."""
    p = Path(path).expanduser()
    shown = str(p)[:200]
    _name_ok(p, flag)
    if exts and p.suffix.lower() not in exts:
        raise InputError(f"{flag}: {shown}: unknown extension {p.suffix or '(none)'!r}; expected "
                         f"{' or '.join(exts)}")
    if p.exists():
        if not p.is_file():
            raise InputError(f"{flag}: {shown}: exists and is not a regular file; expected a file path")
        if not os.access(p, os.W_OK):
            raise InputError(f"{flag}: {shown}: the file is read-only; expected a writable path")
    check_output_dir(p.parent if str(p.parent) else Path("."), flag)
    return p


def check_numeric_flags(args) -> None:
    """Counts must be positive (a `--top -1` silently meant 'all but one'), floats finite."""
    for name, lo in POSITIVE_INT_FLAGS.items():
        v = getattr(args, name, None)
        if isinstance(v, int) and not isinstance(v, bool) and v < lo:
            raise InputError(f"--{name.replace('_', '-')}: got {v}; expected an integer >= {lo}")
    for name, (lo, zero_ok) in POSITIVE_FLOAT_FLAGS.items():
        v = getattr(args, name, None)
        if isinstance(v, float) and (math.isnan(v) or v < lo or (v == lo and not zero_ok)):
            raise InputError(f"--{name.replace('_', '-')}: got {v}; expected a number "
                             f"{'>=' if zero_ok else '>'} {lo:g}")
