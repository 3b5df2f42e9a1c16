"""The energy loops' backend and file are arguments of `cosim calibrate` (review leftover s15), and validate never
prices default-backend rows with a calibration that lacks the cuDNN kernels the device ran (the heldout13/14 rule,
once inside validation/heldout_tables.py only, now in cosim.validate for every caller)."""
import copy
import dataclasses

import pytest

from cosim.calibrate.fit import fit, header
from cosim.cli import main
from cosim.validate import validate
from hwmodels.spec import load_hw
from workloads.io import InputError


def test_fit_refuses_an_energy_backend_it_cannot_price():
    with pytest.raises(InputError, match=r"energy_backend: got 'fa3'; expected 'fa2', 'cudnn' or None"):
        fit("validation/h100_runs.csv", "h100_sxm", "validation/h100_energy.csv", terms="h200", energy_backend="fa3")


def test_cli_refuses_a_missing_energy_file_naming_the_option(capsys, tmp_path):
    missing = tmp_path / "no_energy.csv"
    rc = main(["calibrate", "--fit-only", "--hw", "h100_sxm", "--measurements", "validation/h100_runs.csv",
               "--energy", str(missing)])
    err = capsys.readouterr().err
    assert rc == 2 and f"--energy: got {str(missing)!r}, which is not a file" in err


def test_cli_refuses_an_unknown_energy_backend(capsys):
    with pytest.raises(SystemExit):
        main(["calibrate", "--fit-only", "--energy-backend", "fa3"])
    assert "invalid choice: 'fa3'" in capsys.readouterr().err


def test_header_names_every_argument_that_changed_the_fit():
    own = header("h200", "validation/h200_runs.csv")
    assert "#   cosim calibrate --fit-only --hw h200 --measurements validation/h200_runs.csv\n" in own
    # a flat file's own sibling energy CSV is its default: not repeated
    assert "--energy" not in header("h100_sxm", "validation/h100_ops.csv", "validation/h100_energy.csv")
    refit = header("h100_sxm", "validation/h100_runs.csv", "validation/h100_energy.csv", "h200", "fa2")
    assert ("--measurements validation/h100_runs.csv --energy validation/h100_energy.csv --terms h200 "
            "--energy-backend fa2\n") in refit


def _without_cudnn(name):
    """`name`'s spec with its calibration's cuDNN parameters removed and FA2 as its default (as the H100's
    session-9 calibration was)."""
    hw = load_hw(name)
    sec = copy.deepcopy(hw.sections["analytical"])
    sec["params"].pop("attn_cudnn")
    sec["structure"]["attention_default"] = "fa2"
    return dataclasses.replace(hw, sections={**hw.sections, "analytical": sec})


def test_default_backend_rows_are_not_scored_by_a_calibration_without_cudnn():
    """heldout13 on the H200: 80 default-backend prefill and 188 decode rows (the counts the H200 tables print);
    a calibration without cuDNN counts them as not scored instead of pricing them with FA2's parameters."""
    full = validate("h200", "validation/h200_runs.csv", split="test13", include_unreliable=True)
    cut = validate(_without_cudnn("h200"), "validation/h200_runs.csv", split="test13", include_unreliable=True)
    n_default = {c: full.classes[c]["analytical"]["n"] for c in ("attention_prefill", "attention_decode")}
    assert n_default == {"attention_prefill": 80, "attention_decode": 188}
    assert cut.classes["attention_prefill"]["analytical"]["n"] == 0
    assert cut.classes["attention_decode"]["analytical"]["n"] == 0
    assert any(n.startswith("not scored (default-backend rows") and "attention_decode 188, attention_prefill 80" in n
               for n in cut.notes)
    # the FA2-pinned rows are still priced, with the same parameters as before
    assert cut.classes["attention_prefill_fa2"]["analytical"] == full.classes["attention_prefill_fa2"]["analytical"]
    assert not any("default-backend" in n for n in full.notes)


def test_energy_loops_of_another_gpu_are_refused(capsys):
    """--energy validation/raw_h200_run1/energy.csv for --hw h100_sxm: its env.json says NVIDIA H200 (the H100's
    power model would have been fitted on H200 loops silently; review finding s16)."""
    rc = main(["calibrate", "--fit-only", "--hw", "h100_sxm", "--measurements", "validation/h100_runs.csv",
               "--energy", "validation/raw_h200_run1/energy.csv"])
    err = capsys.readouterr().err
    assert rc == 2 and "--energy: got 'validation/raw_h200_run1/energy.csv', measured on 'NVIDIA H200'" in err


def test_header_of_a_flat_file_without_an_ops_name_names_the_energy_file(tmp_path):
    """header() used dataset.sibling, which refuses a flat name without _ops: a finished fit was not written
    (review finding s16); such a file has no own energy file, so the header names the one used."""
    text = header("h100_sxm", str(tmp_path / "measure.csv"), str(tmp_path / "power.csv"))
    assert f"--measurements {tmp_path / 'measure.csv'} --energy {tmp_path / 'power.csv'}\n" in text


def test_h100_default_term_set_is_its_committed_calibrations():
    """`cosim calibrate --hw h100_sxm` without --terms fits the set its committed calibration used: since round 18
    (session 26) r18_h100, round 14's r14_h100 (the H200's set plus the in-stream speedup) plus FA2 prefill priced as
    the kernel FlashAttention-2 runs (the session-16 re-fit used the H200's set; the session-9 set stays available by
    name); the H200 keeps its own, since round 19 (session 27) r19_h200: its set plus the same FA2 prefill form."""
    from cosim.calibrate import fit as fit_mod
    name, terms, line = fit_mod.terms_for("h100_sxm")  # since round 22 (session 32): r18_h100 with the nvjet menus
    assert name == "r22_h100" and terms is fit_mod.TERM_SETS["r22_h100"]
    assert line.startswith("r22_h100 set") and line.endswith("h100_sxm's default set (the set of its committed "
                                                              "calibration: fit.DEFAULT_SET)")
    assert fit_mod.terms_for("h100_sxm", "h100_sxm")[1] is fit_mod.TERMS_BY_HW["h100_sxm"]
    name, terms, line = fit_mod.terms_for("h200")
    assert name == "r19_h200" and terms is fit_mod.TERM_SETS["r19_h200"] == {**fit_mod.TERM_SETS["h200"],
                                                                             "fa2_prefill_kernels": True}
    assert line.startswith("r19_h200 set") and line.endswith("h200's default set (the set of its committed "
                                                              "calibration: fit.DEFAULT_SET)")
