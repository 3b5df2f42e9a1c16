"""Choose and fit the single-process launch term of the collective model on fit data only
(PREREGISTRATION_nccl_session4b.md) and check the bundled system files carry the chosen fit.

Prints and writes benchmarks/results/launch_fit_s4b.{md,json}. Run from the repo root:
PYTHONPATH=. python benchmarks/launch_fit_s4b.py
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from cosim.calibrate.launch_fit import choose, fit_laws, split_rows, yaml_entry
from cosim.calibrate.collective_holdout_s4b import session11_system
from hwmodels.system import load_system

OUT = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
_DESC = {"A1": "additive t + a", "A2": "additive t + b n", "F1": "floor max(t, a)", "F2": "floor max(t, a + b n)"}


def main() -> None:
    h100 = session11_system("dgx_h100")  # the model the law was chosen on (ring LL line of sessions 3-11)
    fit, val = split_rows(h100)
    fits = fit_laws(h100)
    best = choose(fits)
    files = {name: (load_system(name).collectives.get("launch") or {}).get("single_process")
             for name in ("dgx_h100", "dgx_h200")}
    agree = {name: f == yaml_entry(best.term()) for name, f in files.items()}
    md = ["# Single-process launch term: candidate laws fitted on the fit split, chosen on the validation split", "",
          f"Fit split: {len(fit)} rows (4-GPU `-g 4` 1-4 KB rows of nccl_fit_session4.csv, Together 8-GPU `-g 8` "
          f"forced-ring all-reduce 1 KB - 1 GB); validation split: the other {len(val)} Together rows. "
          "t = the one-process-per-GPU analytical model time (dgx_h100); n = GPUs driven by the process. "
          "Error = model / measured - 1.", "",
          "| law | a (us) | b (us per GPU) | fit median abs error | validation median abs error | validation within 15 % | chosen |",
          "|---|---:|---:|---:|---:|---:|---|"]
    for f in fits:
        md.append(f"| {f.law}: {_DESC[f.law]} | {f.a_s * 1e6:.2f} | {f.b_s * 1e6:.2f} | {f.fit_median_pct:.1f}% | "
                  f"{f.val_median_pct:.1f}% | {f.val_within15} of {f.val_points} | {'yes' if f is best else ''} |")
    md += ["", f"Chosen: {best.law}; floor at 4 GPUs {best.term().overhead(4) * 1e6:.2f} us, at 8 GPUs "
           f"{best.term().overhead(8) * 1e6:.2f} us. System files carry it: "
           + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in agree.items()) + "."
           + ("" if all(agree.values()) else " The constants were re-chosen in session 9 on every fit table held, "
              "leave one node out (cosim.calibrate.launch_refit_s9, benchmarks/results/launch_refit_s9.md); the law is "
              "this one.")]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "launch_fit_s4b.md").write_text("\n".join(md) + "\n")
    (OUT / "launch_fit_s4b.json").write_text(json.dumps(
        {"laws": [asdict(f) for f in fits], "chosen": best.law, "yaml_entry": yaml_entry(best.term()),
         "system_files_agree": agree, "fit_points": len(fit), "validation_points": len(val)}, indent=1))
    print("\n".join(md))


if __name__ == "__main__":
    main()
