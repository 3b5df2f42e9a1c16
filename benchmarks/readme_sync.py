"""Copy generated tables from benchmarks/results/ into README.md.

    python benchmarks/readme_sync.py           # rewrite the blocks in README.md
    python benchmarks/readme_sync.py --check   # exit 1 if README.md is out of date

A block is the text between `<!-- begin: results/NAME.md -->` and
`<!-- end: results/NAME.md -->`; it is replaced by benchmarks/results/NAME.md as the
benchmark script wrote it, so no figure in README is typed by hand.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"(<!-- begin: results/(?P<name>[\w.-]+\.md) -->\n)(?P<body>.*?)(<!-- end: results/(?P=name) -->)",
                   re.S)


def synced(readme: str, results: Path = ROOT / "benchmarks" / "results") -> str:
    """README text with every block replaced by its results file (a missing file is an error)."""
    def fill(m: re.Match) -> str:
        src = results / m["name"]
        if not src.is_file():
            raise FileNotFoundError(f"README.md names results/{m['name']}, which does not exist; run the "
                                    f"benchmark that writes it")
        return m.group(1) + src.read_text() + m.group(4)
    return BLOCK.sub(fill, readme)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only report whether README.md is up to date")
    args = ap.parse_args()
    readme = ROOT / "README.md"
    old = readme.read_text()
    new = synced(old)
    if args.check:
        if new != old:
            print("README.md is out of date: run python benchmarks/readme_sync.py", file=sys.stderr)
            return 1
        return 0
    if new != old:
        readme.write_text(new)
    print(f"{len(BLOCK.findall(old))} block(s) in README.md {'updated' if new != old else 'already current'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
