"""The quickstart's printed report, regenerated for README.

    python benchmarks/quickstart_output.py   # -> benchmarks/results/quickstart_output.md
    python benchmarks/readme_sync.py         # copies it into README.md

Runs `cosim run quickstart` into a temporary directory (nothing else is written) and
keeps what it prints, as a fenced block.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    with tempfile.TemporaryDirectory() as d:
        env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        p = subprocess.run([sys.executable, "-m", "cosim", "run", "quickstart", "--out", d], cwd=d, env=env,
                           capture_output=True, text=True)
        if p.returncode:
            print(p.stderr, file=sys.stderr)
            return p.returncode
        text = p.stdout.replace(d, "reports/quickstart")
    out = ROOT / "benchmarks" / "results" / "quickstart_output.md"
    out.write_text("```text\n" + text.rstrip("\n") + "\n```\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
