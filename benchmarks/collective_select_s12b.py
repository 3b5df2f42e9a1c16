"""Session 12b: small-group ring and all-to-all lines chosen on seen tables, leave one machine out, by the rules committed
first (validation/published/collective_selection_session12b.md; cosim.calibrate.collective_select_s12b).

Prints and writes benchmarks/results/collective_select_s12b.{md,json}. Run from the repo root:
PYTHONPATH=. python benchmarks/collective_select_s12b.py
"""

from __future__ import annotations

import json
from pathlib import Path

from cosim.calibrate.collective_select_s12b import A2A, FITTED, RING, choose, fit, loto, seen_rows, summarise
from hwmodels.system import load_system

OUT = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
_DESC = {"R0": "incumbent ring lines", "R1": "ring ll / ll128 / simple bw x (1 - g/n) / (1 - g/8)",
         "R2": "ring ll128 / simple bw x (1 - g/n) / (1 - g/8)", "A0": "incumbent direct (bw 0.8185, 1.028 us / step)",
         "A1": "direct bw + per-step latency, least squares", "A2": "A1 + a fixed term"}


def _params(p: dict) -> str:
    if not p:
        return "-"
    if "g" in p:
        return f"g {p['g']:.2f}"
    return f"bw {p['bw']:.4f}, {p['latency_s'] * 1e6:.3f} us/step, fixed {p['fixed_s'] * 1e6:.2f} us"


def main() -> None:
    rows = seen_rows()
    res = summarise(loto(rows))
    md = ["# Session 12b: small-group ring and all-to-all lines, leave one machine out (seen data)", "",
          "Rules: validation/published/collective_selection_session12b.md (committed before this was run). "
          "Analytical level, bundled dgx_h100 / dgx_h200, no calibration, each row priced as its harness ran it, "
          "element type from the row (session 12b's dtype-aware NVLS in every candidate).", ""]
    out = {"rows": len(rows), "families": {}}
    base = {n: load_system(n) for n in ("dgx_h100", "dgx_h200")}
    for name, fam in (("ring (2 and 4 ranks: all-reduce, all-gather, reduce-scatter)", RING),
                      ("all-to-all (2, 4 and 8 ranks)", A2A)):
        machines = list(res[fam[0]]["per"])
        md += [f"## {name}", "", "| candidate | params fitted | S (mean f) | pooled within 15 % | worst p90 | "
               + " | ".join(f"{m}: within / median / p90 (fold params)" for m in machines) + " |",
               "|---|---:|---:|---:|---:|" + "---|" * len(machines)]
        for cid in fam:
            r = res[cid]
            cells = [f"{p['within']}/{p['points']} / {100 * p['median']:.1f} % / {100 * p['p90']:.1f} % ({_params(p['params'])})"
                     for p in (r["per"][m] for m in machines)]
            md.append(f"| {cid}: {_DESC[cid]} | {FITTED[cid]} | {100 * r['S']:.1f} % | {r['pooled_within']} of "
                      f"{r['points']} | {100 * r['worst_p90']:.1f} % | " + " | ".join(cells) + " |")
        chosen, why = choose(res, fam)
        md += [""] + [f"- {c}: {w}" for c, w in why.items()]
        final = fit(chosen, rows, base) if chosen else {}
        md += ["", f"**Choice: {chosen or 'none (the model stays as it is)'}**"
               + (f"; refitted on every machine of the statistic: {_params(final)}" if chosen else ""), ""]
        out["families"][fam[0][0]] = {"chosen": chosen, "final": final, "why": why,
                                      "summary": {c: {k: v for k, v in res[c].items() if k != "per"} for c in fam},
                                      "per": {c: res[c]["per"] for c in fam}}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "collective_select_s12b.md").write_text("\n".join(md) + "\n")
    (OUT / "collective_select_s12b.json").write_text(json.dumps(out, indent=1, default=str) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
