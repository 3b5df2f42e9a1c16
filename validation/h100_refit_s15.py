"""Re-fit the H100 calibration on the seven fit suites measured on a lent H100 in session 15 (issue 11).

NOT ADOPTED in session 15 (validation/heldout14_rules.md, "Status"): running this overwrites the committed
session-9 H100 calibration; the session that adopts it regenerates the figures that depend on it and freezes
heldout14 before measuring it. Procedure (validation/heldout14_rules.md):
the same procedure as the H200's calibration — the fit suites default, fit3 .. fit8 (validation/h100_runs.csv,
runs h100_run4 .. h100_run10; held-out runs never fitted) and the H200's validated term set (`--terms h200`: no term
chosen on H100 rows) — with the session-9 energy loops (validation/h100_energy.csv: the new runs measured no energy
section), whose attention ran FlashAttention-2 (`energy_backend="fa2"`).

    PYTHONPATH=. python validation/h100_refit_s15.py   # about 5-10 min on 2 cores; writes the committed file
"""
from cosim.calibrate.fit import fit_to_file

OUT = "cosim/configs/hw/calibration/h100_sxm.yaml"

if __name__ == "__main__":
    _, rep = fit_to_file("validation/h100_runs.csv", OUT, "h100_sxm", energy_csv="validation/h100_energy.csv",
                         e2e_csv="validation/h100_runs.csv", env_json="validation/h100_runs.csv", terms="h200",
                         energy_backend="fa2")
    print(f"wrote {OUT}\n  terms: {rep['terms']}")
    for group, q in rep["quality"].items():
        print(f"  {group:<18} " + ", ".join(f"{k}={v}" for k, v in q.items()))
