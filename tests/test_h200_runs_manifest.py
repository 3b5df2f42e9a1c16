"""The H200 measurements are kept once, as the raw run folders validation/raw_h200_run<N>/ listed in the
run manifest validation/h200_runs.csv (issue 11 data debt). The merged table load_ops builds from the
manifest is the one the deleted validation/h200_ops.csv held, row for row and column for column: both
digests below were computed from that file (git show 16eca2e:validation/h200_ops.csv) before it was
removed; they are checked on the manifest's first 16 lines (written to a temporary manifest), so a run
listed after them (run 17 on) changes no number here: adding a run is one manifest line."""
import csv
import hashlib
import json
from pathlib import Path

import pytest

from cosim.calibrate import dataset
from workloads.io import InputError

MANIFEST = "validation/h200_runs.csv"
OLD_RUNS = 16  # the runs h200_ops.csv held: the manifest's first 16 lines
OLD_ROWS = 20222  # its measured rows (20,223 lines with the header)
# sha256 of the bytes of validation/h200_ops.csv at 16eca2e (6,007,196 bytes, 20,223 lines)
MERGED_CSV_SHA256 = "37afb0b0a0ca9f8737e67de677fdc150882c0564b95e2922bc7a6a7ee956b3c3"
# _digest(dataset.load_ops("validation/h200_ops.csv")) at 16eca2e: 20,222 measurements
LOAD_OPS_DIGEST = "bab372d6350eeefba02abef4d2ea32e8f564cef82945d95e80857cd055a0a6c2"


def _digest(meas) -> str:
    """Every field of every Measurement, in order: the row dict (columns and their order), class, time,
    split, suite, impl, reliability and the rebuilt op."""
    h = hashlib.sha256()
    for m in meas:
        h.update(json.dumps([list(m.row.items()), m.cls, repr(m.time_s), m.split, m.suite, m.impl, m.reliable,
                             repr(m.op)]).encode())
        h.update(b"\n")
    return h.hexdigest()


def _prefix_manifest(d, n_runs):
    """The manifest's first n_runs lines as a manifest of their own (its raw_<run>/ folders linked beside it)."""
    lines = Path(MANIFEST).read_text().splitlines(keepends=True)[: n_runs + 1]
    (d / "h200_runs.csv").write_text("".join(lines))
    for run, _suite in (ln.strip().split(",") for ln in lines[1:]):
        (d / f"raw_{run}").symlink_to(Path("validation", f"raw_{run}").resolve())
    return d / "h200_runs.csv"


@pytest.fixture(scope="module")
def old_manifest(tmp_path_factory):
    """The first OLD_RUNS runs: the table h200_ops.csv held, whatever runs are listed after them."""
    return _prefix_manifest(tmp_path_factory.mktemp("old16"), OLD_RUNS)


# The energy, e2e and env files (validation/h200_energy.csv, h200_e2e.csv, h200_env.json, last written at c6a0b29
# with runs 1-17) copied every raw_<run>/energy.csv, e2e.csv, env.json with suite and run prepended: what the
# loaders returned from those files, pinned (and checked against the files, test removed with them) before they
# were removed (11 runs have e2e rows, 2 energy rows, 17 env)
SIBLING_RUNS = 17
E2E_DIGEST = (1715, "cd719f600ae8ba8defb84b769b92eac8becbd9ea789739304ee24e83cd00fef5")
ENERGY_DIGEST = (33, "785f94d4230ed658d1209785c55ff806607bcb60af04a5c88e073513545dfea8")
ENV_DIGEST = (17, "df5bab24a2d016524b5e56ca545523f827f10bb731ee7371d2563db3d2d0bed6")


def _rows_digest(rows):
    h = hashlib.sha256()
    for r in rows:
        h.update(json.dumps(list(r.items()), default=repr).encode())
        h.update(b"\n")
    return len(rows), h.hexdigest()


def _env_digest(env):
    return len(env), hashlib.sha256(json.dumps(list(env.items())).encode()).hexdigest()


def test_energy_e2e_and_env_of_the_first_17_runs_are_what_the_removed_flat_files_held(tmp_path):
    man = _prefix_manifest(tmp_path, SIBLING_RUNS)
    assert _rows_digest(dataset.load_e2e(man)) == E2E_DIGEST
    assert _rows_digest(dataset.load_energy(man)) == ENERGY_DIGEST
    assert _env_digest(dataset.load_env(man)) == ENV_DIGEST


def test_load_ops_of_the_first_16_runs_is_the_old_merged_csv_row_for_row(old_manifest):
    meas = dataset.load_ops(old_manifest)
    assert len(meas) == OLD_ROWS
    assert _digest(meas) == LOAD_OPS_DIGEST


def test_write_merged_regenerates_the_old_merged_csv_byte_for_byte(old_manifest, tmp_path):
    out = tmp_path / "h200_ops.csv"
    assert dataset.write_merged(old_manifest, out) == OLD_ROWS
    assert hashlib.sha256(out.read_bytes()).hexdigest() == MERGED_CSV_SHA256
    # and a flat CSV loads as the manifest does
    assert _digest(dataset.load_ops(out)) == LOAD_OPS_DIGEST


def test_the_whole_manifest_starts_with_the_old_table_and_adds_each_later_run_once():
    runs = dataset.manifest_runs(MANIFEST)
    fields, rows = dataset.merged_rows(MANIFEST)
    meas = dataset.load_ops(MANIFEST)
    assert _digest(meas[:OLD_ROWS]) == LOAD_OPS_DIGEST
    n_old = sum(1 for _, _, r in rows if r["run"] in {run for run, _, _ in runs[:OLD_RUNS]})
    assert n_old == OLD_ROWS  # no FAILED or empty row among them: load_ops keeps every one
    later = []
    for run, suite, raw in runs[OLD_RUNS:]:
        with open(raw, newline="") as f:
            later += [{"suite": suite, "run": run, **r} for r in csv.DictReader(f)]
    assert [r for _, _, r in rows[n_old:]] == later


def test_every_raw_run_is_listed_once_with_its_suite():
    runs = dataset.manifest_runs(MANIFEST)
    numbers = [int(r.removeprefix("h200_run")) for r, _, _ in runs]
    assert numbers == sorted(set(numbers)) and [r for r, _, _ in runs] == [f"h200_run{i}" for i in numbers]
    # a number is skipped only where a rules file reserved it for a suite never measured on the H200 (h200_run22:
    # heldout17, validation/heldout17_rules.md, measurable only at a checkout of 4250fe9)
    from validation import heldout_tables as ht
    listed = {s for _, s, _ in runs}
    reserved = {int(named["h200"].removeprefix("h200_run")) for suite, named in ht.NAMED_RUNS.items()
                if "h200" in named and suite not in listed}
    assert set(range(1, max(numbers) + 1)) - set(numbers) == reserved & set(range(1, max(numbers) + 1)) == {22}
    assert sorted(p.name for p in Path("validation").glob("raw_h200_run*")) == sorted(f"raw_{r}" for r, _, _ in runs)
    suites = [s for _, s, _ in runs]
    assert len(set(suites)) == len(suites) and suites[0] == "default" and set(suites) <= set(dataset.SUITES)


def test_siblings_of_a_manifest_and_of_a_flat_csv():
    assert str(dataset.sibling("validation/h100_ops.csv", "env", "json")) == "validation/h100_env.json"


def _raw(folder, n, note=""):
    folder.mkdir()
    with open(folder / "ops.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["section", "kind", "fmt", "dims", "impl", "median_s", "p10_s", "p90_s", "note"])
        for i in range(n):
            w.writerow(["ew", "add", "bf16", json.dumps({"rows": 8 * (i + 1), "cols": 64}), "torch", 1e-5, 9e-6, 1.1e-5,
                        note])


def test_adding_a_run_is_one_manifest_line(tmp_path):
    man = tmp_path / "x_runs.csv"
    _raw(tmp_path / "raw_r1", 2)
    _raw(tmp_path / "raw_r2", 3)
    assert dataset.merge_run(tmp_path / "raw_r1", man, "default", "r1") == {str(man): 2}
    assert dataset.merge_run(tmp_path / "raw_r2", man, "heldout", "r2") == {str(man): 3}
    assert man.read_text() == "run,suite\nr1,default\nr2,heldout\n"
    meas = dataset.load_ops(man)
    assert [(m.suite, m.row["run"], m.split) for m in meas] == [("default", "r1", "fit")] * 2 + [
        ("heldout", "r2", "test")] * 3
    assert list(meas[0].row)[:3] == ["suite", "run", "section"]
    with pytest.raises(InputError, match="already listed"):
        dataset.merge_run(tmp_path / "raw_r2", man, "heldout", "r2")
    _raw(tmp_path / "elsewhere", 1)
    with pytest.raises(InputError, match="raw_r3"):
        dataset.merge_run(tmp_path / "elsewhere", man, "fit3", "r3")


def test_bad_manifests_say_file_line_and_what_was_expected(tmp_path):
    man = tmp_path / "x_runs.csv"
    man.write_text("run,split\nr1,fit\n")
    with pytest.raises(InputError, match=r"x_runs.csv: header: got \['run', 'split'\]"):
        dataset.load_ops(man)
    man.write_text("run,suite\nr9,default\n")
    with pytest.raises(InputError, match=r"line 2: run 'r9': .*raw_r9.*no such file"):
        dataset.load_ops(man)
    _raw(tmp_path / "raw_r1", 1)
    man.write_text("run,suite\nr1,default\nr1,heldout\n")
    with pytest.raises(InputError, match="line 3"):
        dataset.load_ops(man)
    (tmp_path / "raw_r2").mkdir()
    (tmp_path / "raw_r2" / "ops.csv").write_text("section,kind\new,add\n")
    man.write_text("run,suite\nr1,default\nr2,heldout\n")
    with pytest.raises(InputError, match="raw_r2.*header"):
        dataset.load_ops(man)


def test_a_bad_row_is_named_by_its_raw_file_and_row(tmp_path):
    man = tmp_path / "x_runs.csv"
    _raw(tmp_path / "raw_r1", 2)
    rows = (tmp_path / "raw_r1" / "ops.csv").read_text().replace("1e-05", "fast", 1)
    (tmp_path / "raw_r1" / "ops.csv").write_text(rows)
    man.write_text("run,suite\nr1,default\n")
    with pytest.raises(InputError, match=r"raw_r1/ops.csv: row 2: median_s: got 'fast'"):
        dataset.load_ops(man)


def test_cosim_calibrate_reads_and_extends_the_manifest_where_there_is_one():
    import argparse

    from cosim.cli.calibrate import _paths
    ns = argparse.Namespace(hw="h200", out_dir="validation", measurements=None, calibration=None)
    ops, energy, e2e, env, _cal = _paths(ns)
    # the manifest is read for the energy, e2e and env files too (its runs' raw_<run>/energy.csv, e2e.csv, env.json)
    assert {str(ops), str(energy), str(e2e), str(env)} == {"validation/h200_runs.csv"}
    ns.hw = "h100_sxm"  # session 15 gave the H100 a manifest too (runs h100_run3-10): it is read and extended
    assert str(_paths(ns)[0]) == "validation/h100_runs.csv"
    ns.measurements = "validation/h100_ops.csv"  # the session-9 flat file, as the committed calibration names it
    assert str(_paths(ns)[0]) == "validation/h100_ops.csv" and str(_paths(ns)[1]) == "validation/h100_energy.csv"


def test_one_suite_table_gives_the_splits_and_the_cli_choices():
    import argparse

    from cosim.cli import calibrate, validate
    assert {s for _, s, _ in dataset.manifest_runs(MANIFEST)} <= set(dataset.SUITES)  # every listed run's suite
    # held-out suite heldout<i> has split test<i>, every other suite is fitted (read from SUITES, not typed)
    assert dataset.HELDOUT_SPLITS == {s: s.replace("heldout", "test") for s in dataset.SUITES if
                                      s.startswith("heldout")}
    assert all(split == "fit" for s, split in dataset.SUITES.items() if s not in dataset.HELDOUT_SPLITS)
    sub = argparse.ArgumentParser().add_subparsers()
    calibrate.register(sub)
    validate.register(sub)
    acts = {a.dest: a for p in sub.choices.values() for a in p._actions}
    assert list(acts["variant"].choices) == list(dataset.SUITES)
    assert list(acts["split"].choices) == list(dataset.HELDOUT_SPLITS.values()) + ["fit", "all"]
