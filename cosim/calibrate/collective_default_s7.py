"""Score the bundled dgx_h100 (no machine calibration) against every published single-node 8 x H100 all-reduce
nccl-tests curve the project holds, and ask whether ANY machine-independent default could be within 15 % of all
of them (validation/collective_default_rules_s7.md, committed before this ran). Nothing here fits anything.
"""

from __future__ import annotations

from dataclasses import dataclass

from cosim.calibrate.collective_holdout_s4b import BANDS, HELDOUT_S4B_CSV, ScoredRow, score_file, summary, x3_x4
from cosim.calibrate.launch_fit import TOGETHER_CSV

__all__ = ["TOLERANCE", "default_rows", "kept", "Band", "feasibility", "empty_sizes", "score_table", "band_table"]

TOLERANCE = 0.15


def default_rows(systems: dict | None = None) -> list[ScoredRow]:
    """Every in-range all-reduce row of the Together and Azure single-node files, each priced as its harness ran
    it (single_process, the run's forced algorithm or the model's own choice), uncalibrated, on `systems`
    (default: the bundled files; collective_holdout_s4b.session4b_systems() for the one-NVLS-line model)."""
    rows = score_file(TOGETHER_CSV, systems=systems) + score_file(HELDOUT_S4B_CSV, systems=systems)
    return [r for r in rows if r.collective == "allreduce" and r.in_range and r.n_gpus == 8]


def kept(rows: list[ScoredRow]) -> list[ScoredRow]:
    """The rows left after the exclusions X3 (single-row spike) and X4 (busbw < 0.10 GB/s)."""
    x3, x4 = x3_x4(rows)
    return [r for i, r in enumerate(rows) if i not in x3 | x4]


@dataclass(frozen=True)
class Band:
    size_bytes: int
    group: str
    curves: int
    lo_us: float  # the lowest time within 15 % of every curve: max_i 0.85 p_i
    hi_us: float  # the highest: min_i 1.15 p_i
    model_us: tuple  # the default's price per curve (same order as the curves)

    @property
    def feasible(self) -> bool:
        return self.lo_us <= self.hi_us


def feasibility(rows: list[ScoredRow], group_of=lambda r: "all") -> list[Band]:
    """Per (group, size) over the curves (sources) of the group: the interval of predictions within 15 % of all
    of them (error = model / published - 1). Rows of one source at one size are averaged (interleaved runs)."""
    cells: dict = {}
    for r in rows:
        cells.setdefault((group_of(r), r.size_bytes), {}).setdefault(r.source, []).append(r)
    out = []
    for (g, size), by_src in sorted(cells.items()):
        ps = [sum(x.published_us for x in v) / len(v) for v in by_src.values()]
        ms = tuple(sum(x.model_us for x in v) / len(v) for v in by_src.values())
        out.append(Band(size, g, len(ps), max(ps) * (1 - TOLERANCE), min(ps) * (1 + TOLERANCE), ms))
    return out


def empty_sizes(bands: list[Band]) -> list:
    """(group, size) where no single prediction is within 15 % of every curve (needs >= 2 curves)."""
    return [(b.group, b.size_bytes) for b in bands if b.curves > 1 and not b.feasible]


def _fmt(s: dict) -> str:
    if not s.get("points"):
        return "- | - | -"
    return f"{s['median_abs_err_pct']:.1f}% | {s['max_abs_err_pct']:.1f}% | {s['within']} of {s['points']}"


def score_table(rows, label: str = "all 8 x H100 curves") -> tuple[list, dict]:
    """(markdown lines, {set: (summary, summary without X3 / X4)}) over all rows, per source and per size band."""
    keep = kept(rows)
    sets = {label: (rows, keep)}
    for src in dict.fromkeys(r.source for r in rows):
        sets[src] = ([r for r in rows if r.source == src], [r for r in keep if r.source == src])
    for name, lo, hi in BANDS:
        sets[f"size {name}"] = ([r for r in rows if lo <= r.size_bytes <= hi], [r for r in keep if lo <= r.size_bytes <= hi])
    res = {k: (summary(a), summary(b)) for k, (a, b) in sets.items()}
    md = ["| set | median | max | within 15 % | without X3 / X4: median | max | within 15 % |",
          "|---|---:|---:|---:|---:|---:|---:|"]
    md += [f"| {k} | {_fmt(a)} | {_fmt(b)} |" for k, (a, b) in res.items()]
    return md, res


def band_table(bands) -> list:
    """Markdown lines of feasibility() cells."""
    md = ["| group | size (B) | curves | feasible interval (us) | empty? | default's prices (us) |",
          "|---|---:|---:|---|---|---|"]
    md += [f"| {b.group} | {b.size_bytes:,} | {b.curves} | {b.lo_us:.1f} - {b.hi_us:.1f} | "
           f"{'**empty**' if b.curves > 1 and not b.feasible else 'no'} | {', '.join(f'{m:.1f}' for m in b.model_us)} |"
           for b in bands]
    return md
