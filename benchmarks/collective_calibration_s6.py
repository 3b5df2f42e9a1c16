"""Session 6: per-machine collective calibration scored on the held-out machines (rules in
validation/collective_calibration_rules.md, committed before scoring).

1. The calibration law, chosen on fit data only (cosim.calibrate.calibration_law_fit: Together AI rows).
2. Each held-out machine (Azure ND H100 v5, ND H200 v5) calibrated from its own 2/4/8 KB and 1/2 MiB rows;
   every other row of 1 KB - 1 GB scored, side by side with the uncalibrated session-4b price.

Prints and writes benchmarks/results/collective_calibration_s6.{md,json}. Run from the repo root:
PYTHONPATH=. python benchmarks/collective_calibration_s6.py
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from cosim.calibrate.calibration_law_fit import FAMILIES, choose, compare_laws
from cosim.calibrate.collective_holdout_s4b import BANDS
from cosim.calibrate.collective_holdout_s6 import CALIBRATION_SIZES, score_calibrated

OUT = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def stats(errs: list) -> dict:
    if not errs:
        return {"points": 0}
    a = [abs(e) for e in errs]
    return {"points": len(a), "median_abs_err_pct": statistics.median(a), "max_abs_err_pct": max(a),
            "within": sum(e <= 15.0 for e in a)}


def groups(rows) -> dict:
    kept = [r for r in rows if not r.excluded]
    out = {}
    for label, sel in (("all", rows), ("without X3 and X4", kept)):
        out[label] = (stats([r.err_pct for r in sel]), stats([r.row.err_pct for r in sel]))
    for src in dict.fromkeys(r.row.source for r in rows):
        for label, sel in (("", rows), (", without X3 and X4", kept)):
            mine = [r for r in sel if r.row.source == src]
            out[f"{src}{label}"] = (stats([r.err_pct for r in mine]), stats([r.row.err_pct for r in mine]))
    for name, lo, hi in BANDS:
        for label, sel in (("", rows), (", without X3 and X4", kept)):
            band = [r for r in sel if lo <= r.row.size_bytes <= hi]
            out[f"size {name}{label}"] = (stats([r.err_pct for r in band]), stats([r.row.err_pct for r in band]))
    return out


def _fmt(s: dict) -> str:
    if not s["points"]:
        return "- | - | -"
    return f"{s['median_abs_err_pct']:.1f}% | {s['max_abs_err_pct']:.1f}% | {s['within']} of {s['points']}"


def main() -> None:
    md = ["# Session 6: per-machine collective calibration vs held-out nccl-tests", "",
          "Rules: validation/collective_calibration_rules.md (committed before scoring). error = model / published - 1.", "",
          "## 1. Calibration law, chosen on fit data (Together AI 8 x H100)", "",
          "| family | law | half | p | fit median | validation median | validation within 15 % |",
          "|---|---|---:|---:|---:|---:|---:|"]
    laws = {}
    for fam in FAMILIES:
        scores = compare_laws(fam)
        best = choose(scores)
        laws[fam] = [s.__dict__ for s in scores] + [{"chosen": best.law}]
        md += [f"| {s.family} | {'**' + s.law + '**' if s is best else s.law} | "
               f"{s.half_bytes / 2**20:g} MiB | {s.p:g} | {s.fit_median:.1f}% | {s.val_median:.1f}% | "
               f"{s.val_within} of {s.val_points} |" if s.law == "blend" else
               f"| {s.family} | {'**' + s.law + '**' if s is best else s.law} | - | - | {s.fit_median:.1f}% | "
               f"{s.val_median:.1f}% | {s.val_within} of {s.val_points} |" for s in scores]
    rows, cals = score_calibrated()
    md += ["", "## 2. Calibrations (each from its own machine's rows at "
           f"{', '.join(f'{s >> 10} KB' if s < 1 << 20 else f'{s >> 20} MiB' for s in CALIBRATION_SIZES)})", "",
           "| machine | floor | NVLS latency (alpha) | law | source |", "|---|---:|---:|---|---|"]
    for src, c in cals.items():
        md.append(f"| {src} | {c.floor_s * 1e6:.2f} us | {c.latency_s['nvls'] * 1e6:.2f} us | {c.law} "
                  f"{ {a: (f'{h / 2**20:g} MiB', p) for a, (h, p) in c.blend.items()} } | {c.source} |")
    g = groups(rows)
    md += ["", "## 3. Held-out scores (calibrated vs the uncalibrated session-4b model, same rows)", "",
           "| set | calibrated: median | max | within 15 % | uncalibrated: median | max | within 15 % |",
           "|---|---:|---:|---:|---:|---:|---:|"]
    md += [f"| {k} | {_fmt(a)} | {_fmt(b)} |" for k, (a, b) in g.items()]
    md += ["", "## 4. Every scored row", "",
           "| machine | size (B) | published (us) | calibrated (us) | error | uncalibrated (us) | error | excluded | provenance |",
           "|---|---:|---:|---:|---:|---:|---:|---|---|"]
    md += [f"| {r.row.source} | {r.row.size_bytes:,} | {r.row.published_us:g} | {r.calibrated_us:.2f} | "
           f"{r.err_pct:+.1f}% | {r.row.model_us:.2f} | {r.row.err_pct:+.1f}% | {r.excluded} | {r.calibration} |"
           for r in rows]
    OUT.mkdir(parents=True, exist_ok=True)
    result = {"laws": laws, "summary": {k: {"calibrated": a, "uncalibrated": b} for k, (a, b) in g.items()},
              "rows": [{"source": r.row.source, "size_bytes": r.row.size_bytes, "published_us": r.row.published_us,
                        "calibrated_us": r.calibrated_us, "err_pct": r.err_pct, "uncalibrated_us": r.row.model_us,
                        "uncalibrated_err_pct": r.row.err_pct, "excluded": r.excluded, "provenance": r.calibration}
                       for r in rows]}
    (OUT / "collective_calibration_s6.json").write_text(json.dumps(result, indent=1))
    (OUT / "collective_calibration_s6.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
