"""Price a held-out table with a frozen commit's own code (the session-8 / session-9 held-out rules: the model is
frozen at a commit, and the scorer re-prices every row with that commit's code, exported by `git archive`, beside the
branch head's prices)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["ROOT", "frozen_prices", "frozen_priced", "named_commit"]

ROOT = Path(__file__).resolve().parents[2]


def named_commit(prereg: Path, section: str) -> str:
    """The frozen commit a pre-registration names: the one 40-hex string in its `## <section>` part (to the end of
    the file). Anything else is one `error:` line (SystemExit), before anything is priced or written."""
    _, sep, part = prereg.read_text().partition(f"## {section}")
    found = sorted(set(re.findall(r"\b[0-9a-f]{40}\b", part)))
    if not sep or len(found) != 1:
        raise SystemExit(f"error: {prereg.name}: expected one 40-hex commit in its {section!r} section; "
                         f"found {found or 'none'}")
    return found[0]


def frozen_prices(commit: str, csv_path: Path, root: Path = ROOT) -> list:
    """Model times (us) of every row of `csv_path`, priced by `commit`'s own
    cosim.calibrate.collective_holdout_s4b.score_file (a `git archive` export of that commit run in a fresh
    interpreter). Raises subprocess.CalledProcessError (git / tar / the export failed) or OSError."""
    return [t for t, _ in frozen_priced(commit, csv_path, root)]


def frozen_priced(commit: str, csv_path: Path, root: Path = ROOT) -> list:
    """[(model time us, algorithm)] of every row of `csv_path`, priced by `commit`'s own code (as frozen_prices): the
    algorithm is the frozen commit's choice, which may differ from the branch head's."""
    with tempfile.TemporaryDirectory() as d:
        archive = subprocess.run(["git", "-C", str(root), "archive", commit], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", d], input=archive, check=True)
        code = ("import json, sys; from cosim.calibrate.collective_holdout_s4b import score_file; "
                "print(json.dumps([[r.model_us, r.algorithm] for r in score_file(sys.argv[1])]))")
        out = subprocess.run([sys.executable, "-c", code, str(csv_path)], cwd=d, check=True, capture_output=True,
                             text=True, env={"PYTHONPATH": d, "PATH": "/usr/bin:/bin"})
    return [(t, a) for t, a in json.loads(out.stdout)]
