"""The bare-name note through the Python API: every loader that reads a bare bundled name while a same-named
local file (or, for a model, checkpoint folder) sits in the working directory tells the caller with a
workloads.io.ShadowedNameWarning carrying the note's text, once per name and local path; the CLI prints the
same fact once, as its `note:` line, never also as a Python warning."""

import json
import warnings

import pytest

import workloads.io as wio
from workloads.io import ShadowedNameWarning

_PHI3 = {"model_type": "phi3", "hidden_size": 3072, "intermediate_size": 8192, "num_hidden_layers": 32,
         "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 32064,
         "max_position_embeddings": 4096, "tie_word_embeddings": False}


@pytest.fixture(autouse=True)
def _fresh(monkeypatch, tmp_path):
    monkeypatch.setattr(wio, "_TOLD", set())  # what earlier tests were told does not count here
    monkeypatch.chdir(tmp_path)


def _note(what, name, bundled, kind="file"):
    return (f"{what} '{name}' is the bundled {bundled}; the {kind} ./{name} in the working directory is not read "
            f"(write ./{name} to use it)")


def _model_folder(tmp_path, name="llama3_8b"):
    (tmp_path / name).mkdir()
    (tmp_path / name / "config.json").write_text(json.dumps(_PHI3))


def _load_model():
    from workloads.models import load_model
    return load_model("llama3_8b")


def _build_trace():
    from workloads.builder import build_trace
    return build_trace("llama3_8b", phase="decode", batch=1, seq=128)


def _load_recipe():
    from workloads.compression import load_recipe
    return load_recipe("kivi2")


def _load_hw():
    from hwmodels.spec import load_hw
    return load_hw("h100_sxm")


def _load_system():
    from hwmodels.system import load_system
    return load_system("dgx_h100")


def _load_experiment():
    from cosim.experiment import load_experiment
    return load_experiment("quickstart")


def _load_sweep():
    from cosim.dse import load_sweep
    return load_sweep("weight_formats")


def _load_trace():
    from cosim.serving.arrivals import load_trace
    return load_trace("sharegpt_synth")


ENTRY_POINTS = [  # (loader, local name, what the note calls it, bundled file, a folder?)
    (_load_model, "llama3_8b", "model", "models/llama3_8b.yaml", True),
    (_build_trace, "llama3_8b", "model", "models/llama3_8b.yaml", True),
    (_load_recipe, "kivi2", "recipe", "recipes/kivi2.yaml", False),
    (_load_hw, "h100_sxm", "hardware", "hw/h100_sxm.yaml", False),
    (_load_system, "dgx_h100", "system", "systems/dgx_h100.yaml", False),
    (_load_experiment, "quickstart", "experiment", "experiments/quickstart.yaml", False),
    (_load_sweep, "weight_formats", "sweep", "sweeps/weight_formats.yaml", False),
    (_load_trace, "sharegpt_synth", "trace", "traces/sharegpt_synth.csv", False),
]


@pytest.mark.parametrize("load, name, what, bundled, folder", ENTRY_POINTS, ids=lambda v: getattr(v, "__name__", None))
def test_each_python_entry_point_warns_once_with_the_note(load, name, what, bundled, folder, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ShadowedNameWarning)
        load()  # nothing local yet: nothing said
    if folder:
        _model_folder(tmp_path, name)
    else:
        (tmp_path / name).write_text("not: read\n")
    with pytest.warns(ShadowedNameWarning) as got:
        load()
    notes = [str(w.message) for w in got if issubclass(w.category, ShadowedNameWarning)]
    assert notes == [_note(what, name, bundled, "folder" if folder else "file")], notes
    assert got[0].filename == __file__  # the warning points at the caller's line, not at the loader's
    with warnings.catch_warnings():
        warnings.simplefilter("error", ShadowedNameWarning)
        load()  # once per name and local path


def test_a_path_or_another_working_directory(tmp_path, monkeypatch):
    """`./h100_sxm` reads the local file: no note; the same bare name beside another local file: told again."""
    from hwmodels.spec import HardwareError, load_hw
    (tmp_path / "h100_sxm").write_text("name: mine\n")
    with pytest.warns(ShadowedNameWarning):
        load_hw("h100_sxm")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "h100_sxm").write_text("name: mine\n")
    monkeypatch.chdir(tmp_path / "b")
    with pytest.warns(ShadowedNameWarning):
        load_hw("h100_sxm")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ShadowedNameWarning)
        with pytest.raises(HardwareError, match="h100_sxm"):
            load_hw("./h100_sxm")  # the user's own (not a hardware file): an error, never a note


def test_a_local_model_file_by_a_non_bundled_name_is_no_shadow(tmp_path):
    """A bare name that is not bundled is the user's file: read, remembered, never called shadowed."""
    from workloads.models import load_model
    (tmp_path / "mymodel").write_text((wio.bundled_dir("models") / "llama3_8b.yaml").read_text())
    with warnings.catch_warnings():
        warnings.simplefilter("error", ShadowedNameWarning)
        a = load_model("mymodel")
        assert load_model("mymodel") is a  # the remembered spec, still no note


def test_the_cli_prints_each_note_once_and_no_python_warning(tmp_path, capsys):
    from cosim.cli import main
    _model_folder(tmp_path)
    (tmp_path / "h100_sxm").write_text("name: mine\n")
    assert main(["roofline", "--model", "llama3_8b", "--hw", "h100_sxm"]) == 0
    err = capsys.readouterr().err
    assert err.count("note: " + _note("model", "llama3_8b", "models/llama3_8b.yaml", "folder")) == 1, err
    assert err.count("note: " + _note("hw", "h100_sxm", "hw/h100_sxm.yaml")) == 1, err
    assert err.count("is the bundled") == 2 and "ShadowedNameWarning" not in err, err


def test_cosim_run_prints_an_experiment_files_note_once(tmp_path, capsys):
    """The file's model is resolved by the loaders (told as a note on stderr); the printed report does not repeat
    it, and report.json keeps it."""
    from cosim.cli import main
    _model_folder(tmp_path)
    (tmp_path / "x.yaml").write_text("name: x\nmodel: llama3_8b\nphase: decode\nbatch: 1\nseq: 128\nhw: h100_sxm\n"
                                     "level: roofline\noutput: out\n")
    assert main(["run", "./x.yaml", "--no-accuracy"]) == 0
    cap = capsys.readouterr()
    note = _note("model", "llama3_8b", "models/llama3_8b.yaml", "folder")
    assert (cap.out + cap.err).count(note) == 1, (cap.out, cap.err)
    assert "ShadowedNameWarning" not in cap.err
    assert note in json.loads((tmp_path / "out" / "report.json").read_text())["totals"]["notes"]


def test_cosim_sweep_prints_a_sweep_files_note_once(tmp_path, capsys):
    from cosim.cli import main
    _model_folder(tmp_path, "mistral_7b")
    (tmp_path / "s.yaml").write_text("name: s\nbase: {model: llama3_8b, phase: decode, seq: 128, batch: 1, "
                                     "hw: h100_sxm, level: roofline}\naxes:\n  - grid: {model: [llama3_8b, "
                                     "mistral_7b]}\nobjectives: {latency_s: min}\noutput: out\n")
    assert main(["sweep", "./s.yaml", "--dry-run"]) == 0
    err = capsys.readouterr().err
    assert err.count(_note("model", "mistral_7b", "models/mistral_7b.yaml", "folder")) == 1, err
    assert "ShadowedNameWarning" not in err


def test_run_experiment_from_python_warns_and_keeps_the_note_in_its_report(tmp_path):
    from cosim.experiment import run_experiment
    _model_folder(tmp_path)
    with pytest.warns(ShadowedNameWarning, match="model 'llama3_8b' is the bundled"):
        rep = run_experiment({"name": "x", "model": "llama3_8b", "phase": "decode", "batch": 1, "seq": 128,
                              "hw": "h100_sxm", "level": "roofline"})
    assert _note("model", "llama3_8b", "models/llama3_8b.yaml", "folder") in rep.notes


# ---------------------------------------------------------------------------- names the caller never gave

@pytest.fixture
def _cold(monkeypatch):
    """Nothing remembered from earlier loads: each load below reads its files (and their nested names) again."""
    import hwmodels.spec as hs
    import workloads.models as wm
    for mod, names in ((hs, ("_SPEC_CACHE", "_BY_NAME")), (wm, ("_MODEL_CACHE", "_BY_NAME"))):
        for name in names:
            monkeypatch.setattr(mod, name, {})


def _silent(call):
    """`call()`'s result; fails if it issued any ShadowedNameWarning."""
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        out = call()
    assert not [str(w.message) for w in got if issubclass(w.category, ShadowedNameWarning)]
    return out


@pytest.mark.parametrize("name", ["b200", "h100_pcie"])
def test_a_bundled_gpus_calibration_sibling_is_no_note(name, tmp_path, _cold):
    """b200.yaml / h100_pcie.yaml say `calibration: {from: h100_sxm}`: the user gave `b200`, not `h100_sxm`, so a
    local ./h100_sxm is not called shadowed (and the user is still told when they do give `h100_sxm`)."""
    from hwmodels.spec import load_hw
    (tmp_path / "h100_sxm").write_text("name: mine\n")
    spec = _silent(lambda: load_hw(name))
    assert spec.sections["analytical"]["transfer"]["source"].endswith("hw/h100_sxm.yaml")  # the bundled sibling read
    with pytest.warns(ShadowedNameWarning, match="hardware 'h100_sxm' is the bundled"):
        load_hw("h100_sxm")  # the caller's own bare name: told


def test_a_bundled_systems_device_is_no_note(tmp_path, _cold):
    """dgx_h100.yaml says `device: h100_sxm`: the user gave `dgx_h100`; its device beside ./h100_sxm: no note."""
    from hwmodels.spec import load_hw
    from hwmodels.system import load_system
    (tmp_path / "h100_sxm").write_text("name: mine\n")
    s = _silent(lambda: load_system("dgx_h100"))
    assert s.device.source.endswith("h100_sxm.yaml")
    (tmp_path / "dgx_h100").write_text("name: mine\n")
    with pytest.warns(ShadowedNameWarning) as got:  # the caller's own bare names: each told
        load_system("dgx_h100")
        load_hw("h100_sxm")
    assert [str(w.message).split(" is ")[0] for w in got] == ["system 'dgx_h100'", "hardware 'h100_sxm'"]


@pytest.mark.parametrize("what, local", [("hw", "h100_sxm"), ("systems", "dgx_h100"), ("systems", "h100_sxm"),
                                         ("models", "llama3_8b")])
def test_cosim_list_names_no_shadowed_file(what, local, tmp_path, capsys, _cold):
    """`cosim list` loads every bundled file; the user named none of them: no note, no warning."""
    from cosim.cli import main
    if what == "models":
        _model_folder(tmp_path, local)
    else:
        (tmp_path / local).write_text("name: mine\n")
    assert _silent(lambda: main(["list", what])) == 0
    cap = capsys.readouterr()
    assert local in cap.out and "is the bundled" not in cap.out + cap.err, cap.err


def test_cosim_roofline_on_a_transferred_gpu_prints_no_siblings_note(tmp_path, capsys, _cold):
    from cosim.cli import main
    (tmp_path / "h100_sxm").write_text("name: mine\n")
    assert _silent(lambda: main(["roofline", "--model", "llama3_8b", "--hw", "b200"])) == 0
    err = capsys.readouterr().err
    assert "is the bundled" not in err, err


def test_what_counts_as_a_shadowing_local_entry(tmp_path):
    """shadow_note's one stat (a cached bare-name load pays it every call) keeps Path.is_file / is_dir's answers:
    a file or a link to one shadows; a folder only for a model and only with a config.json; a dangling link or
    nothing there does not."""
    b = wio.bundled_dir("models") / "llama3_8b.yaml"
    (tmp_path / "f").write_text("x")
    (tmp_path / "plain").mkdir()
    _model_folder(tmp_path, "ckpt")
    (tmp_path / "to_f").symlink_to(tmp_path / "f")
    (tmp_path / "to_ckpt").symlink_to(tmp_path / "ckpt")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    kinds = {}
    for name in ("f", "plain", "ckpt", "to_f", "to_ckpt", "dangling", "missing"):
        for folders in (False, True):
            note = wio.shadow_note(name, b, "model", folders)
            kinds[name, folders] = note and note.split("the ")[2].split(" ")[0]
    assert {k: v for k, v in kinds.items() if v} == {("f", False): "file", ("f", True): "file",
                                                     ("to_f", False): "file", ("to_f", True): "file",
                                                     ("ckpt", True): "folder", ("to_ckpt", True): "folder"}
    assert wio.shadow_note("f", None, "model") is None and wio.shadow_note("./f", b, "model") is None
    assert wio.shadow_note("a\0b", b, "model") is None  # no such name on any file system: nothing there
