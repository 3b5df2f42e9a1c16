"""Guards of the sweep library (`cosim.dse.sweep`), not only of `cosim sweep`: a user's folder as the
output is refused before anything is written; axis values are checked up front like `base`."""

from __future__ import annotations

import pytest

from cosim.dse import sweep
from workloads.io import InputError

BASE = {"model": "llama3_8b", "hw": "h100_sxm", "seq": 1024}


def _doc(grid, base=BASE):
    return {"name": "g", "base": base, "axes": [{"grid": grid}], "executor": "local", "workers": 1}


# ---- the output-folder guard in the library

def test_python_sweep_refuses_a_user_folder_and_writes_nothing(tmp_path):
    user = tmp_path / "userdir"
    user.mkdir()
    (user / "pareto.csv").write_text("mine\n")
    with pytest.raises(InputError) as e:
        sweep(_doc({"batch": [1, 2]}), output=user, quiet=True)
    msg = str(e.value)
    assert msg.startswith(f"output=: {user}: an existing directory holding pareto.csv but no sweep store")
    assert "expected a new or empty directory, or a sweep's own output to resume" in msg
    assert sorted(p.name for p in user.iterdir()) == ["pareto.csv"] and (user / "pareto.csv").read_text() == "mine\n"
    # the folder named by the sweep mapping's `output`: the message says so
    with pytest.raises(InputError, match=r"^<sweep>: output: .*userdir: an existing directory"):
        sweep({**_doc({"batch": [1]}), "output": str(user)}, quiet=True)
    # write=False writes only the store: refused too when the store would land in that folder
    with pytest.raises(InputError, match="no sweep store"):
        sweep(_doc({"batch": [1]}), output=user, quiet=True, write=False)
    assert sorted(p.name for p in user.iterdir()) == ["pareto.csv"]


def test_python_sweep_resumes_its_own_output_and_takes_a_new_or_empty_one(tmp_path):
    out = tmp_path / "out"
    assert list(sweep(_doc({"batch": [1, 2]}), output=out, quiet=True)["status"]) == ["ok", "ok"]
    assert (out / "results.jsonl").is_file() and (out / "summary.json").is_file()
    assert len(sweep(_doc({"batch": [1, 2]}), output=out, quiet=True)) == 2  # resume: its own store
    empty = tmp_path / "empty"
    empty.mkdir()
    assert len(sweep(_doc({"batch": [4]}), output=empty, quiet=True)) == 1
    # write=False with the store elsewhere: the output folder is not written, so not checked
    user = tmp_path / "userdir"
    user.mkdir()
    (user / "notes.txt").write_text("mine\n")
    df = sweep(_doc({"batch": [1]}), output=user, store=tmp_path / "s.jsonl", quiet=True, write=False)
    assert len(df) == 1 and sorted(p.name for p in user.iterdir()) == ["notes.txt"]


# ---- axis values checked up front against the rules that tie fields together

SYS = {"model": "llama3_8b", "system": "dgx_h100", "seq": 1024, "parallel": {"tp": 2}}


def _load(axes, base=BASE, source="s.yaml"):
    from cosim.dse.spec import sweep_from_dict
    return sweep_from_dict({"base": base, "axes": axes}, source=source)


@pytest.mark.parametrize("axes, base, path, value, why", [
    ([{"grid": {"seq": [8192, 8193]}}], BASE, "axes[0].grid.seq[1]", "8193",
     "seq: got 8,193; expected at most 8,192, llama3_8b's maximum context"),
    ([{"zip": {"batch": [1, 2], "seq": [1024, 10000]}}], BASE, "axes[0].zip.seq[1]", "10000",
     "expected at most 8,192, llama3_8b's maximum context"),
    # a random range no value of which fits (both ends fail): refused at its low end
    ([{"random": {"samples": 4, "fields": {"seq": {"low": 9000, "high": 12000, "int": True}}}}], BASE,
     "axes[0].random.fields.seq.low", "9000", "expected at most 8,192"),
    ([{"grid": {"parallel.tp": [2, 3]}}], SYS, "axes[0].grid.parallel.tp[1]", "3",
     "tp: got 3; expected a divisor of the 32 attention heads of llama3_8b"),
    ([{"grid": {"parallel.pp": [2, 64]}}], SYS, "axes[0].grid.parallel.pp[1]", "64",
     "pp: got 64; expected at most the 32 layers of llama3_8b"),
    ([{"grid": {"parallel.tp": [8, 16]}}], SYS, "axes[0].grid.parallel.tp[1]", "16",
     "layout tp16-pp1-ep1-dp1 needs 16 devices; system dgx_h100 has 8"),
    # a model no seq of the sweep fits: the model value is the one no point can price
    ([{"grid": {"model": ["llama3_8b", "llama2_7b"]}}, {"grid": {"seq": [8192]}}], BASE, "axes[0].grid.model[1]",
     "'llama2_7b'", "expected at most 4,096, llama2_7b's maximum context"),
])
def test_a_value_no_point_can_price_is_refused_before_any_run(axes, base, path, value, why):
    # was: each became an error row of a sweep that exited 0
    with pytest.raises(InputError) as e:
        _load(axes, base)
    msg = str(e.value)
    assert msg.startswith(f"s.yaml: {path}: got {value}; expected a value some point of the sweep can price, "
                          f"but every point with it fails, e.g. (")
    assert why in msg


def test_a_base_no_point_can_price_is_named_as_the_base():
    with pytest.raises(InputError, match=r"^s\.yaml: base: parallel: layout tp16-pp1-ep1-dp1 needs 16 devices; "
                                         r"system dgx_h100 has 8 .*\(every point of the sweep fails\)$"):
        _load([{"grid": {"batch": [1, 2]}}], {**SYS, "parallel": {"tp": 16}})


def test_a_combination_of_valid_values_stays_a_row_with_a_warning(tmp_path):
    axes = [{"grid": {"model": ["llama3_8b", "llama2_7b"], "seq": [4096, 8192]}}]
    with pytest.warns(UserWarning, match=r"1 combination of valid values cannot be priced and will be error rows, "
                                         r"e\.g\. \(model 'llama2_7b', seq 8192\)"):
        _load(axes)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = sweep({**_doc({}), "axes": axes}, output=tmp_path / "o", quiet=True)
    assert list(df["status"]) == ["ok", "ok", "ok", "error"]
    assert "expected at most 4,096, llama2_7b's maximum context" in df["error"].iloc[3]
    # zip pairs each model with a seq it holds: nothing to warn about, nothing refused
    _load([{"zip": {"model": ["llama3_8b", "llama2_7b"], "seq": [8192, 4096]}}])


def test_a_random_range_that_fails_only_in_part_runs_with_a_warning_naming_the_part(tmp_path):
    # was refused: "axes[0].random.fields.seq.high: got 8192; ... every point with it fails", though the
    # end is not a sampled point and draws up to 4096 (llama2_7b's max context) are valid. Prefill's
    # largest step holds seq tokens, so the last seq that fits is 4096: draws in [4097, 8192] fail
    axes = [{"random": {"samples": 6, "seed": 0, "fields": {"seq": {"low": 512, "high": 8192, "int": True}}}}]
    base = {**BASE, "model": "llama2_7b"}
    with pytest.warns(UserWarning, match=r"axes\[0\]\.random\.fields\.seq: the range \[512, 8192\] can be priced "
                                         r"only in part: draws in \[4097, 8192\] fail at every point"):
        sp = _load(axes, base)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = sweep({**_doc({}, base), "axes": axes}, output=tmp_path / "o", quiet=True)
    assert set(df["status"]) <= {"ok", "error"} and len(df) == 6
    seqs = df["seq"].astype(int)
    assert list(df["status"]) == ["ok" if s <= 4096 else "error" for s in seqs]
    assert all("expected at most 4,096" in e for e in df.loc[seqs > 4096, "error"])
    assert {"ok", "error"} == set(df["status"])  # seed 0 draws on both sides of 4096


def test_opt_in_and_per_point_infeasibility_are_not_refused():
    _load([{"grid": {"seq": [8193]}}], {**BASE, "allow_beyond_max_context": True})
    # a capacity too small to hold the weights: a legitimate infeasible point, fits_in_memory False in its row
    _load([{"grid": {"hw.memory.hbm.capacity": ["1 GB", "80 GB"]}}])


def test_cli_exits_2_with_one_line_for_a_value_no_point_can_price(tmp_path, capsys):
    import yaml

    from cosim.cli import main
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump({"name": "g", "base": BASE, "axes": [{"grid": {"seq": [1024, 8193]}}],
                                 "output": str(tmp_path / "out")}))
    assert main(["sweep", str(f), "-q"]) == 2  # was 0, with an error row
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"error: {f}: axes[0].grid.seq[1]: got 8193;")
    assert not (tmp_path / "out").exists()


def _warned(axes, base=BASE) -> list:
    import warnings
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        _load(axes, base)
    return [str(x.message) for x in w if issubclass(x.category, UserWarning)]


def test_a_random_range_failing_with_some_partners_is_said_as_a_range_not_a_point(tmp_path):
    """Was "2 combinations of valid values cannot be priced and will be error rows, e.g. (model
    'llama2_7b', seq 8192, batch 1)": 8192 and 1 are the ends of random ranges, not points, and the
    number of error rows depends on the draws. llama2_7b holds 4,096 tokens: with it, seq draws in
    [4097, 8192] fail; batch is read by no broken rule, so its two ends are one case."""
    axes = [{"grid": {"model": ["llama3_8b", "llama2_7b"]}},
            {"random": {"samples": 8, "seed": 0, "fields": {"seq": {"low": 512, "high": 8192, "int": True},
                                                           "batch": {"low": 1, "high": 8, "int": True}}}}]
    msgs = _warned(axes)
    assert len(msgs) == 1, msgs
    assert msgs[0].startswith("s.yaml: draws of the random range axes[1].random.fields.seq [512, 8192] cannot be "
                              "priced with some of their partners and will be error rows: with model 'llama2_7b', "
                              "draws of seq in [4097, 8192] fail (at seq 8192: seq: got 8,192; expected at most "
                              "4,096"), msgs[0]
    assert "combination" not in msgs[0] and "batch" not in msgs[0]
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = sweep({**_doc({}), "axes": axes}, output=tmp_path / "o", quiet=True)
    bad = (df["model"] == "llama2_7b") & (df["seq"].astype(int) > 4096)
    assert list(df["status"]) == ["error" if b else "ok" for b in bad] and bad.any() and not bad.all()


def test_a_discrete_combination_paired_with_range_ends_counts_once_without_the_ends():
    # was "2 combinations ... e.g. (model 'llama2_7b', seq 8192, batch 1)": batch 1 and 8 are a range's ends
    axes = [{"grid": {"model": ["llama3_8b", "llama2_7b"], "seq": [4096, 8192]}},
            {"random": {"samples": 4, "fields": {"batch": {"low": 1, "high": 8, "int": True}}}}]
    msgs = _warned(axes)
    assert len(msgs) == 1 and msgs[0].startswith(
        "s.yaml: 1 combination of valid values cannot be priced and will be error rows, e.g. (model 'llama2_7b', "
        "seq 8192): "), msgs


def test_a_part_of_a_range_that_fails_everywhere_is_said_once():
    axes = [{"random": {"samples": 6, "seed": 0, "fields": {"seq": {"low": 512, "high": 8192, "int": True}}}}]
    msgs = _warned(axes, {**BASE, "model": "llama2_7b"})
    assert len(msgs) == 1 and "can be priced only in part: draws in [4097, 8192] fail at every point" in msgs[0]
