"""Guards of the run manifest (review of the manifest change, session 9): a repeated run name is refused
before anything is measured or overwritten; a manifest line has exactly run, suite with a suite of
dataset.SUITES; a manifest without its last newline is extended on a new line; a run with another header
leaves the manifest as it was and the error names the differing columns; sibling() keeps the extension and
refuses a name with neither _ops nor _runs; a fresh device gets a manifest; the removed flat file's error
points to the manifest beside it."""
import argparse
import csv
import json
import os
from pathlib import Path

import pytest

from cosim.calibrate import dataset, microbench
from cosim.cli import calibrate as cli_calibrate
from workloads.io import InputError


def _raw(folder, n, header=("section", "kind", "fmt", "dims", "impl", "median_s", "p10_s", "p90_s", "note"),
         exist_ok=False):
    folder.mkdir(exist_ok=exist_ok)
    with open(folder / "ops.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for i in range(n):
            row = {"section": "ew", "kind": "add", "fmt": "bf16", "dims": json.dumps({"rows": 8 * (i + 1), "cols": 64}),
                   "impl": "torch", "median_s": 1e-5, "p10_s": 9e-6, "p90_s": 1.1e-5, "note": ""}
            w.writerow([row.get(h, "") for h in header])


def _args(tmp_path, run_name, measurements=None, variant="default"):
    return argparse.Namespace(hw="h200", out_dir=str(tmp_path), measurements=measurements, calibration=None,
                              fit_only=False, variant=variant, sections="gemm", run_name=run_name)


@pytest.fixture
def no_gpu(monkeypatch):
    """microbench.run recorded instead of run (no GPU here): the test sees whether measuring was reached."""
    calls = []

    def fake(out_dir, sections, variant="default"):  # what microbench did: makedirs, then ops.csv opened "w"
        calls.append(out_dir)
        os.makedirs(out_dir, exist_ok=True)
        (Path(out_dir) / "ops.csv").unlink(missing_ok=True)
        _raw(Path(out_dir), 1, exist_ok=True)

    monkeypatch.setattr(microbench, "run", fake)
    return calls


def test_a_listed_run_name_is_refused_before_measuring_and_its_raw_rows_survive(tmp_path, no_gpu, capsys):
    _raw(tmp_path / "raw_r1", 3)
    man = tmp_path / "h200_runs.csv"
    man.write_text("run,suite\nr1,default\n")
    before = (tmp_path / "raw_r1" / "ops.csv").read_bytes()
    assert cli_calibrate.run(_args(tmp_path, "r1", variant="heldout")) == 2
    err = capsys.readouterr().err
    assert "h200_runs.csv: run: got 'r1', already listed; expected a new run name" in err
    assert no_gpu == [] and (tmp_path / "raw_r1" / "ops.csv").read_bytes() == before
    assert man.read_text() == "run,suite\nr1,default\n"


def test_an_existing_raw_folder_not_listed_is_refused_before_measuring(tmp_path, no_gpu, capsys):
    _raw(tmp_path / "raw_r1", 3)
    _raw(tmp_path / "raw_default-20261204T2100", 2)  # the default name of a run in the same minute
    (tmp_path / "h200_runs.csv").write_text("run,suite\nr1,default\n")
    assert cli_calibrate.run(_args(tmp_path, "default-20261204T2100")) == 2
    assert "raw_default-20261204T2100/ already exists" in capsys.readouterr().err
    assert no_gpu == [] and len((tmp_path / "raw_default-20261204T2100" / "ops.csv").read_text().splitlines()) == 3


def test_a_new_run_is_measured_beside_the_manifest_wherever_out_dir_points(tmp_path, no_gpu, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    _raw(tmp_path / "data" / "raw_r1", 2)
    man = tmp_path / "data" / "h200_runs.csv"
    man.write_text("run,suite\nr1,default\n")
    args = _args(tmp_path / "elsewhere", "r2", measurements=str(man), variant="heldout")
    assert cli_calibrate.run(args) == 0  # heldout: listed, not fitted
    assert no_gpu == [str(tmp_path / "data" / "raw_r2")]
    assert man.read_text() == "run,suite\nr1,default\nr2,heldout\n"


def test_a_fresh_device_gets_a_manifest_and_an_old_flat_file_is_still_read(tmp_path, no_gpu):
    ns = _args(tmp_path, "r1")
    assert cli_calibrate._paths(ns)[0] == tmp_path / "h200_runs.csv"
    (tmp_path / "h200_ops.csv").write_text("suite,run\n")
    assert cli_calibrate._paths(ns)[0] == tmp_path / "h200_ops.csv"
    (tmp_path / "h200_ops.csv").unlink()
    ns.variant = "heldout"
    assert cli_calibrate.run(ns) == 0
    assert (tmp_path / "h200_runs.csv").read_text() == "run,suite\nr1,heldout\n"
    assert [m.row["run"] for m in dataset.load_ops(tmp_path / "h200_runs.csv")] == ["r1"]


def test_microbench_never_truncates_an_earlier_runs_csv(tmp_path):
    _raw(tmp_path / "raw_r1", 2)
    before = (tmp_path / "raw_r1" / "ops.csv").read_bytes()
    with pytest.raises(SystemExit, match=r"raw_r1/ops.csv: exists with \d+ bytes"):
        microbench.run(str(tmp_path / "raw_r1"), ["gemm"])  # refused before torch is imported
    with pytest.raises(SystemExit, match="earlier run"):
        microbench.CsvOut(str(tmp_path / "raw_r1" / "ops.csv"), microbench.OPS_FIELDS)
    assert (tmp_path / "raw_r1" / "ops.csv").read_bytes() == before
    (tmp_path / "empty.csv").write_text("")
    out = microbench.CsvOut(str(tmp_path / "empty.csv"), ["a"])  # an empty file holds nothing to lose
    out.row(a=1)
    out.f.close()
    assert (tmp_path / "empty.csv").read_text().splitlines() == ["a", "1"]


def test_a_manifest_without_its_last_newline_gets_the_new_line_on_a_line_of_its_own(tmp_path):
    _raw(tmp_path / "raw_r1", 1)
    _raw(tmp_path / "raw_r2", 2)
    man = tmp_path / "x_runs.csv"
    man.write_text("run,suite\nr1,default")  # saved by an editor without the final newline
    assert dataset.merge_run(tmp_path / "raw_r2", man, "heldout", "r2") == {str(man): 2}
    assert man.read_text() == "run,suite\nr1,default\nr2,heldout\n"
    assert [m.split for m in dataset.load_ops(man)] == ["fit", "test", "test"]


@pytest.mark.parametrize("line, match", [
    ("r1,heldoutr3,fit3", r"line 2: got 3 fields \['r1', 'heldoutr3', 'fit3'\]; expected 2 \(run, suite\)"),
    ("r1", r"line 2: got 1 fields \['r1'\]; expected 2"),
    ("r1,heldoutr3", r"line 2: suite: got 'heldoutr3'; expected one of \['default', 'heldout',"),
])
def test_a_manifest_line_is_exactly_a_run_and_a_known_suite(tmp_path, line, match):
    _raw(tmp_path / "raw_r1", 1)
    man = tmp_path / "x_runs.csv"
    man.write_text(f"run,suite\n{line}\n")
    with pytest.raises(InputError, match="x_runs.csv: " + match):
        dataset.load_ops(man)


def test_merge_run_refuses_a_suite_not_in_suites(tmp_path):
    _raw(tmp_path / "raw_r1", 1)
    man = tmp_path / "x_runs.csv"
    with pytest.raises(InputError, match="suite: got 'heldout99'; expected one of"):
        dataset.merge_run(tmp_path / "raw_r1", man, "heldout99", "r1")
    assert not man.exists()


def test_a_run_with_another_header_leaves_the_manifest_as_it_was_and_names_the_columns(tmp_path):
    _raw(tmp_path / "raw_r1", 1)
    _raw(tmp_path / "raw_r2", 1, header=("section", "kind", "fmt", "dims", "impl", "median_s", "p10_s", "p90_s",
                                                  "power_w", "note"))
    man = tmp_path / "x_runs.csv"
    dataset.merge_run(tmp_path / "raw_r1", man, "default", "r1")
    with pytest.raises(InputError, match=r"raw_r2/ops.csv: header: extra columns \['power_w'\], missing columns \[\]"):
        dataset.merge_run(tmp_path / "raw_r2", man, "heldout", "r2")
    assert man.read_text() == "run,suite\nr1,default\n"
    assert len(dataset.load_ops(man)) == 1
    # and a manifest edited by hand to list it says the same
    man.write_text("run,suite\nr1,default\nr2,heldout\n")
    with pytest.raises(InputError, match=r"raw_r2/ops.csv: header: extra columns \['power_w'\]"):
        dataset.load_ops(man)


def test_sibling_keeps_the_extension_and_refuses_a_name_without_ops_or_runs(tmp_path):
    assert str(dataset.sibling("v/h100_ops_v2.csv", "env", "json")) == "v/h100_env_v2.json"
    assert str(dataset.sibling("v/h100_ops_v2.csv", "e2e")) == "v/h100_e2e_v2.csv"
    assert str(dataset.sibling("v/h200_runs.csv", "env", "json")) == "v/h200_env.json"
    with pytest.raises(InputError, match=r"v/measured.csv: measurements file name: got 'measured.csv'; "
                                         r"expected <prefix>_ops.csv .* or <prefix>_runs.csv"):
        dataset.sibling("v/measured.csv", "e2e")
    _raw(tmp_path / "raw_r1", 1)
    (tmp_path / "all.csv").write_text("suite,run\n")
    with pytest.raises(InputError, match="measurements file name"):
        dataset.merge_run(tmp_path / "raw_r1", tmp_path / "all.csv", "default", "r1")
    assert (tmp_path / "all.csv").read_text() == "suite,run\n"  # no ops rows appended into it


def test_the_removed_flat_file_points_to_the_manifest_beside_it(tmp_path, capsys):
    _raw(tmp_path / "raw_r1", 1)
    (tmp_path / "x_runs.csv").write_text("run,suite\nr1,default\n")
    with pytest.raises(InputError, match=r"x_ops.csv: measurements: no such file; .*x_runs.csv is there"):
        dataset.load_ops(tmp_path / "x_ops.csv")
    from cosim.cli import validate as cli_validate
    sub = argparse.ArgumentParser().add_subparsers()
    cli_validate.register(sub)
    assert "ops CSV or run manifest" in sub.choices["validate"].format_help()
    assert not os.path.exists(tmp_path / "x_ops.csv")


def test_a_manifest_run_keeps_its_energy_e2e_and_env_in_its_raw_folder(tmp_path):
    _raw(tmp_path / "raw_r1", 1)
    (tmp_path / "raw_r1" / "e2e.csv").write_text("model,phase,mode,batch,seq,ctx,layers,layers_full,median_s\n"
                                                 "m,decode,graph,1,1,128,2,32,0.001\n")
    (tmp_path / "raw_r1" / "env.json").write_text('{"device_name": "GPU X"}')
    man = tmp_path / "x_runs.csv"
    assert dataset.merge_run(tmp_path / "raw_r1", man, "heldout", "r1") == {str(man): 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw_r1", "x_runs.csv"]  # no flat copies
    (e2e,) = dataset.load_e2e(man)
    assert (list(e2e)[:3], e2e["split"], e2e["batch"], e2e["median_s"]) == (["suite", "run", "model"], "test", 1, 0.001)
    assert dataset.load_env(man) == {"r1": {"device_name": "GPU X"}}
    with pytest.raises(InputError, match=r"x_runs.csv: energy measurements: no listed run has raw_<run>/energy.csv"):
        dataset.load_energy(man)
    from cosim.validate import measured_devices
    assert measured_devices(man) == ["GPU X"]


# every retired suite: heldout11 (session 11) and heldout12 (session 12)
RETIRED = ("heldout11", "heldout12")


def test_the_retired_suites_are_heldout11_and_heldout12():
    assert tuple(microbench.RETIRED_SUITES) == RETIRED
    assert all(s in dataset.SUITES for s in RETIRED)  # still known (their rows would land in their split)


@pytest.mark.parametrize("suite", RETIRED)
@pytest.mark.parametrize("manifest", [True, False], ids=["manifest", "flat-csv"])
def test_a_retired_suite_is_refused_before_measuring(tmp_path, no_gpu, capsys, manifest, suite):
    """heldout11 and heldout12 were retired unmeasured (microbench.RETIRED_SUITES): measuring either would test no
    committed model. Refused on both of cosim calibrate's paths (a run manifest, a flat <prefix>_ops.csv), by
    microbench itself and by merge_run; the error names the suite to measure, heldout13."""
    meas = tmp_path / ("h200_runs.csv" if manifest else "h200_ops.csv")
    meas.write_text("run,suite\n" if manifest else "")
    assert dataset.is_manifest(meas) == manifest
    assert cli_calibrate.run(_args(tmp_path, "h200_run18", measurements=str(meas), variant=suite)) == 2
    err = capsys.readouterr().err
    assert f"--variant: got '{suite}', retired unmeasured" in err and "heldout13 replaced" in err
    assert no_gpu == [] and not (tmp_path / "raw_h200_run18").exists()
    assert meas.read_text() == ("run,suite\n" if manifest else "")
    with pytest.raises(InputError, match=f"suite: got '{suite}', retired unmeasured"):
        dataset.check_new_run(meas, "h200_run18", suite)


@pytest.mark.parametrize("suite", RETIRED)
def test_microbench_and_merge_run_refuse_a_retired_suite(tmp_path, suite):
    # the real microbench.run: its refusal comes before a folder is made or a GPU is looked for
    with pytest.raises(SystemExit, match=f"--variant: got '{suite}', retired unmeasured"):
        microbench.run(str(tmp_path / "raw_x"), ["gemm"], variant=suite)
    assert not (tmp_path / "raw_x").exists()
    _raw(tmp_path / "raw_h200_run18", 2)
    man = tmp_path / "h200_runs.csv"
    man.write_text("run,suite\n")
    with pytest.raises(InputError, match=f"suite: got '{suite}', retired unmeasured"):
        dataset.merge_run(tmp_path / "raw_h200_run18", man, suite, "h200_run18")
    assert man.read_text() == "run,suite\n"


def test_the_fresh_suite_is_not_refused(tmp_path):
    """heldout13 replaces them: check_new_run accepts it (the retired refusal is no blanket one)."""
    man = tmp_path / "h200_runs.csv"  # not there yet: a first run
    assert "heldout13" not in microbench.RETIRED_SUITES
    assert dataset.check_new_run(man, "h200_run18", "heldout13") == tmp_path / "raw_h200_run18"


@pytest.mark.parametrize("suite, section", [("fit10", "gemm"), ("fit10", "e2e"), ("fit9", "elementwise")])
def test_microbench_refuses_a_section_a_tail_suite_does_not_define(tmp_path, suite, section):
    # fit9 / fit10 define only their tail sections: any other would measure the default suite's cases under their name
    with pytest.raises(SystemExit, match=f"--sections: got {section} for --variant {suite}; expected only "):
        microbench.run(str(tmp_path / "raw_x"), ["attention", section], variant=suite)
    assert not (tmp_path / "raw_x").exists()
