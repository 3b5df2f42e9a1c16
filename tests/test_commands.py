"""Commands behave as a new user expects: defaults and an example in every --help, one
default per option, files written only where asked, bundled names and docs-style paths
resolving from any directory, a copied hardware file still finding its calibration."""

import argparse
import shutil
from pathlib import Path

import pytest

from cosim.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]


def _subparsers():
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


def test_every_command_has_an_example_and_every_option_help():
    subs = _subparsers()
    assert {"roofline", "simulate", "run", "sweep", "list", "recipe", "validate", "calibrate"} <= set(subs)
    for name, sp in subs.items():
        assert "example" in (sp.epilog or "") and "cosim " + name in sp.epilog, name
        undocumented = [a.dest for a in sp._actions if not a.help]
        assert undocumented == [], f"cosim {name}: options without help text: {undocumented}"


def test_help_shows_defaults_and_one_seq_default(capsys):
    subs = _subparsers()
    texts = {}
    for name in ("roofline", "recipe"):
        texts[name] = subs[name].format_help()
        seq = next(a for a in subs[name]._actions if a.dest == "seq")
        assert seq.default == 2048, name
    assert "(default: 2048)" in texts["roofline"] and "(default: 2048)" in texts["recipe"]
    assert "(default: None)" not in texts["roofline"] and "(default: False)" not in texts["roofline"]
    assert "prefill: the whole prompt" in texts["roofline"] and "FlashAttention-style" in texts["roofline"]


def test_validate_writes_a_plot_only_when_asked(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    ops = str(ROOT / "validation" / "h100_ops.csv")
    assert main(["validate", "--hw", "h100_sxm", "--measurements", ops]) == 0
    assert list(tmp_path.iterdir()) == []
    assert main(["validate", "--hw", "h100_sxm", "--measurements", ops, "--plot", "s.png"]) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["s.png"]


def test_calibrate_fit_only_writes_only_where_asked(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    from hwmodels.spec import hw_path
    bundled = hw_path("h100_sxm").parent / "calibration" / "h100_sxm.yaml"
    before = bundled.read_bytes()
    ops = str(ROOT / "validation" / "h100_ops.csv")
    assert main(["calibrate", "--fit-only", "--hw", "h100_sxm", "--measurements", ops]) == 0
    assert "not written" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == [] and bundled.read_bytes() == before
    assert main(["calibrate", "--fit-only", "--hw", "h100_sxm", "--measurements", ops, "--out", "cal.yaml"]) == 0
    assert (tmp_path / "cal.yaml").stat().st_size > 1000 and bundled.read_bytes() == before


def test_docs_paths_and_bundled_names_resolve_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from cosim.dse.spec import load_sweep
    from cosim.experiment import load_experiment
    from workloads.compression import load_recipe
    from workloads.models import load_model
    assert load_sweep("configs/sweeps/hbm_vs_compute.yaml").name == "hbm_vs_compute"
    assert load_sweep("hbm_vs_compute").name == "hbm_vs_compute"
    assert load_experiment("configs/experiments/quickstart.yaml").config["batch"] == 8
    assert load_model("configs/models/llama3_8b.yaml").layers == 32
    assert load_recipe("configs/recipes/kivi2.yaml").name == "kivi2"
    with pytest.raises(Exception, match="no such sweep file"):
        load_sweep("configs/sweeps/nosuch.yaml")
    # the place the files have in a checkout works from anywhere too
    assert load_sweep("cosim/configs/sweeps/hbm_vs_compute.yaml").name == "hbm_vs_compute"
    assert load_model("cosim/configs/models/llama3_8b.yaml").layers == 32


def test_no_top_level_configs_package():
    """The bundled files are package data of cosim (cosim/configs); a top-level `configs`
    package would clash with other distributions that ship one (LLM-Viewer does)."""
    import importlib.util
    from pathlib import Path

    from workloads.io import bundled_root
    root = Path(__file__).resolve().parents[1]
    assert not (root / "configs").exists() and bundled_root() == root / "cosim" / "configs"
    assert importlib.util.find_spec("configs") is None
    text = (root / "pyproject.toml").read_text()
    assert '"configs*"' not in text and "configs/hw/calibration/*.yaml" in text


def test_copied_hardware_file_falls_back_to_bundled_calibration_and_says_so(tmp_path):
    import cosim
    from hwmodels.spec import hw_path
    shutil.copy(hw_path("h100_sxm"), tmp_path / "my_h100.yaml")
    hw = cosim.load_hw(tmp_path / "my_h100.yaml")
    rep = cosim.simulate(cosim.build_trace("llama3_8b", "decode", 8, 4096), hw, level="analytical")
    ref = cosim.simulate(cosim.build_trace("llama3_8b", "decode", 8, 4096), "h100_sxm", level="analytical")
    assert rep.total_latency_s == ref.total_latency_s
    gemm = next(r for r in rep.rows if r["kind"] == "gemm")
    assert gemm["provenance"].startswith("calibrated:") and "bundled calibration/h100_sxm.yaml" in gemm["provenance"]


def test_list_recipes_describes_and_cites(capsys):
    assert main(["list", "recipes"]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("kivi2 "))
    assert "KIVI 2-bit KV cache" in line and "[Liu et al., KIVI, ICML 2024, arXiv:2402.02750]" in line


def test_list_sweeps_and_experiments(capsys):
    assert main(["list", "sweeps"]) == 0
    assert "hbm_vs_compute" in capsys.readouterr().out
    assert main(["list", "experiments"]) == 0
    assert capsys.readouterr().out.startswith("quickstart")


def test_bundled_root_without_cosim_is_one_clear_error(monkeypatch):
    import importlib.util

    from workloads.io import InputError, bundled_root
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(InputError, match="cosim package .* is not installed"):
        bundled_root()
