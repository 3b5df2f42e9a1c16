"""The scoring the published nccl-tests held-out rounds share (session 9's, reused by session 11): rows priced by the
frozen commit's own code, and per-set tables of the time and bus-bandwidth errors with and without X3 / X4, per
source and per size band (validation/published/PREREGISTRATION_nccl_session9.md, "How a row is priced and scored")."""

from __future__ import annotations

import dataclasses
import statistics
import subprocess
import sys
from pathlib import Path

from cosim.calibrate import frozen_commit
from cosim import jsonio
from cosim.calibrate.collective_holdout_s4b import BANDS, score_file, x3_x4

__all__ = ["TOL", "stats", "fmt", "score_table", "frozen_rows", "verdict", "frozen_rows_or_error", "Headline",
           "score_headline", "frozen_check", "write_result", "row_records", "rows_table"]

TOL = 15.0  # the acceptance line's tolerance, %


def stats(rows, busbw: bool = False) -> dict:
    """Time error |model / published - 1| (busbw: |published / model - 1|, the bus-bandwidth error) over in-range rows."""
    e = [abs(100 * ((r.published_us / r.model_us) if busbw else (r.model_us / r.published_us)) - 100)
         for r in rows if r.in_range]
    if not e:
        return {"points": 0}
    return {"points": len(e), "within": sum(x <= TOL for x in e), "median": statistics.median(e), "max": max(e)}


def fmt(s: dict) -> str:
    return "- | - | -" if not s["points"] else f"{s['within']} of {s['points']} | {s['median']:.1f}% | {s['max']:.1f}%"


def score_table(rows, label: str) -> tuple[list, dict]:
    """(markdown lines, figures) of `rows` as a whole (`label`), per source and per size band: time and busbw error,
    and time without X3 / X4."""
    x3, x4 = x3_x4(rows)
    keep = [r for i, r in enumerate(rows) if i not in x3 | x4]
    sets = {label: rows}
    for src in dict.fromkeys(r.source for r in rows):
        sets[src] = [r for r in rows if r.source == src]
    for name, lo, hi in BANDS:
        sets[f"size {name}"] = [r for r in rows if lo <= r.size_bytes <= hi]
    res = {k: {"time": stats(v), "busbw": stats(v, True),
               "time_kept": stats([r for r in v if r in keep])} for k, v in sets.items()}
    md = ["| set | time: within 15 % | median | max | busbw: within 15 % | median | max | "
          "time without X3 / X4: within 15 % | median | max |",
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    md += [f"| {k} | {fmt(v['time'])} | {fmt(v['busbw'])} | {fmt(v['time_kept'])} |" for k, v in res.items()]
    return md, res


def frozen_rows(frozen: str, csv_path: Path, root: Path = frozen_commit.ROOT) -> tuple[list, list, int]:
    """(rows priced by this tree, the same rows with the frozen commit's prices and algorithm choices, how many prices
    differ). Raises subprocess.CalledProcessError or OSError when the frozen commit cannot price them
    (frozen_commit.frozen_priced)."""
    head = score_file(csv_path)
    fp = frozen_commit.frozen_priced(frozen, csv_path, root)
    moved = sum(t != r.model_us for (t, _), r in zip(fp, head))
    return head, [dataclasses.replace(r, model_us=t, algorithm=a) for (t, a), r in zip(fp, head)], moved


def verdict(kept: dict, covered: list) -> str:
    """Session 9's "What 'met' means": every kept headline row within 15 % and rows in each of the three bands."""
    if kept.get("points") and kept["within"] == kept["points"]:
        return "met" if len(covered) == len(BANDS) else "met on the covered bands only"
    return "not met"


# ---------------------------------------------------------------------------- the rounds' benchmark script shape
# (benchmarks/collective_heldout_s9.py, _s11.py): frozen prices or one error line, the headline table and verdict, the
# frozen-commit check, the md / json written and printed


def frozen_rows_or_error(frozen: str, csv_path: Path, root: Path) -> tuple | None:
    """frozen_rows, or None after one ``error:`` line on stderr when the frozen commit cannot price the rows (the
    script then exits 2 and writes nothing)."""
    try:
        return frozen_rows(frozen, csv_path, root)
    except (subprocess.CalledProcessError, OSError) as e:
        print(f"error: frozen commit {frozen[:7]} could not price {csv_path.name} ({e}); the rules score this "
              f"held-out on that commit's code: fetch the full history (git fetch --unshallow) and re-run",
              file=sys.stderr)
        return None


@dataclasses.dataclass(frozen=True)
class Headline:
    md: list  # score_table's markdown lines
    stats: dict  # score_table's figures, by set
    kept: dict  # the headline set's time stats without X3 / X4
    covered: list  # the size bands (collective_holdout_s4b.BANDS) with a row
    verdict: str
    label: str = ""
    rows: tuple = ()

    def verdict_lines(self, excluded: str = "X3 / X4", excluded_count: str = "them") -> list:
        """The verdict sentence and the rows beyond the tolerance, as a round's result file prints them."""
        within = self.stats[self.label]["time"]
        md = ["", f"Bands covered: {', '.join(self.covered)}. Verdict by the rules: **{self.verdict}** "
                  f"({self.kept['within']} of {self.kept['points']} rows within 15 % without {excluded}; "
                  f"{within['within']} of {within['points']} with {excluded_count}).", ""]
        misses = [r for r in self.rows if abs(r.err_pct) > TOL]
        if misses:
            md += ["Rows beyond 15 %: " + ", ".join(f"{r.size_bytes:,} B ({r.err_pct:+.1f}%, {r.algorithm})"
                                                      for r in misses) + ".", ""]
        return md


def score_headline(rows, label: str) -> Headline:
    """score_table of the headline rows, the bands they cover and the rules' verdict."""
    md, res = score_table(rows, label)
    kept = res[label]["time_kept"]
    covered = [name for name, lo, hi in BANDS if any(lo <= r.size_bytes <= hi for r in rows)]
    return Headline(md, res, kept, covered, verdict(kept, covered), label, tuple(rows))


def rows_table(rows) -> list:
    """Markdown, one line per scored row: published and frozen-model time, both errors, the model's algorithm and
    the exclusion (X3 / X4) that applies to it."""
    x3, x4 = x3_x4(rows)
    md = ["| size (B) | published (us) | model (us) | error | busbw error | algorithm | excluded |",
          "|---:|---:|---:|---:|---:|---|---|"]
    md += [f"| {r.size_bytes:,} | {r.published_us:.2f} | {r.model_us:.2f} | {r.err_pct:+.1f}% | "
           f"{100 * (r.published_us / r.model_us - 1):+.1f}% | {r.algorithm} | "
           f"{'X3' if i in x3 else 'X4' if i in x4 else ''} |" for i, r in enumerate(rows)]
    return md


def row_records(rows, head_rows) -> list:
    """Each scored row as the result JSON stores it: the frozen price beside this tree's."""
    return [{"source": r.source, "size": r.size_bytes, "published_us": r.published_us, "model_us": r.model_us,
             "head_model_us": h.model_us, "algorithm": r.algorithm, "collective": r.collective,
             "in_range": r.in_range} for r, h in zip(rows, head_rows)]


def frozen_check(frozen: str, rows, moved: int) -> str:
    """The result's last line: whether the frozen commit's prices are this tree's."""
    return (f"Frozen-commit check: {len(rows)} rows re-priced by {frozen[:7]}'s own code: "
            + ("identical to this tree's prices." if not moved else
               f"DIFFERENT at {moved} rows; the frozen prices are the result (every table above)."))


def write_result(out: Path, stem: str, md: list, data: dict) -> None:
    """``md`` to out/<stem>.md and ``data`` to out/<stem>.json (indent 1), then ``md`` printed."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.md").write_text("\n".join(md) + "\n")
    (out / f"{stem}.json").write_text(jsonio.dumps(data, indent=1))
    print("\n".join(md))
