"""One provenance label scheme (hwmodels/cost.py OpCost): the roofline's figures are
`speed-of-light` in simulate rows, `cosim run` report.csv and sweep tables alike (were
`speed-of-light`, `roofline:speed-of-light` and `datasheet:<file>`: a reader could not join
the tables on it); the level that priced a row is its own column everywhere."""

import csv

import cosim
from cosim.cli import main
from cosim.dse import sweep

BASE = {"model": "llama3_8b", "hw": "h100_sxm", "seq": 1024, "phase": "decode", "batch": 1}


def test_one_roofline_label_in_simulate_run_and_sweep(tmp_path, capsys):
    rep = cosim.simulate(cosim.build_trace("llama3_8b", "decode", 1, 1024), "h100_sxm")
    simulate_labels = {(r["level"], r["provenance"]) for r in rep.rows}
    assert rep.meta["priced_from"] == ["speed-of-light"]

    e = tmp_path / "e.yaml"
    e.write_text(f"model: llama3_8b\nhw: h100_sxm\nseq: 1024\noutput: {tmp_path / 'run'}\n")
    assert main(["run", str(e)]) == 0
    with open(tmp_path / "run" / "report.csv") as f:
        run_labels = {(r["level"], r["provenance"]) for r in csv.DictReader(f)}

    df = sweep({"name": "t", "base": BASE, "axes": [{"grid": {"batch": [1, 4]}}], "output": str(tmp_path / "s")},
               quiet=True, write=False)
    sweep_labels = set(zip(df["level_used"], df["provenance"]))

    assert simulate_labels == run_labels == sweep_labels == {("roofline", "speed-of-light")}
    capsys.readouterr()
    assert main(["roofline", "--model", "llama3_8b", "--hw", "h100_sxm"]) == 0
    assert "priced from: speed-of-light" in capsys.readouterr().out  # the README quickstart line


def _documented_prefixes() -> list:
    """The `provenance` column of docs/reports-and-plots.md's table, up to its first `<`."""
    from pathlib import Path
    text = (Path(__file__).resolve().parents[1] / "docs" / "reports-and-plots.md").read_text()
    table = text.split("| `provenance` | meaning |")[1].split("\n\n")[0]
    return [ln.split("`")[1].split("<")[0] for ln in table.splitlines() if ln.startswith("| `")]


def test_analytical_collective_label_is_in_the_documented_scheme():
    """Was `fitted:dgx_h100 collectives; fitted model`, outside the documented scheme."""
    rep = cosim.simulate(cosim.build_trace("llama3_70b", phase="decode", batch=16, seq=4096, parallel={"tp": 4}),
                         "dgx_h100", level="analytical")
    comm = {r["provenance"] for r in rep.rows if r["kind"] == "allreduce"}
    assert comm == {"calibrated:dgx_h100 collectives (fitted model)"}, comm
    prefixes = _documented_prefixes()
    assert "calibrated:" in prefixes and "speed-of-light:alpha-beta" in prefixes
    for p in rep.meta["priced_from"]:
        assert any(p.startswith(x) for x in prefixes), (p, prefixes)
