"""User-path audit of session 12: `cosim generate`, `plan`, `recipe` and experiment files.
Each test pins what a user ran and what was wrong; the numbers are checked by hand in the comments."""

from __future__ import annotations

import json

import pytest

from cosim.cli import main
from cosim.serving.generate import generate
from workloads.io import InputError
from workloads.models import load_model


def _err(capsys, argv) -> str:
    """The one `error:` line of a refused command (exit 2, nothing else on stderr, no traceback)."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


# ---- 1. generate checks memory fit -------------------------------------------------------------------

def test_generate_70b_on_one_h100_does_not_fit_and_says_so(capsys):
    g = generate("llama3_70b", "h100_sxm", 1024, 8)
    params = load_model("llama3_70b").params  # 70,553,706,496
    assert g.footprint["weights"] == params * 2 == 141_107_412_992  # bf16
    # KV at the last step: 1024 + 8 - 1 = 1031 tokens x 80 layers x 2 (K, V) x 8 kv heads x 128 x 2 B
    assert g.footprint["kv_cache"] == 1031 * 80 * 2 * 8 * 128 * 2 == 337_838_080
    assert g.capacity_bytes == 80e9 and not g.fits_in_memory
    assert g.memory_bytes == pytest.approx(sum(g.footprint.values()))
    assert any(n.startswith("does not fit: 141.62 GB") for n in g.notes)
    s = g.summary()
    assert s["fits_in_memory"] is False and s["footprint_bytes"]["weights"] == 141_107_412_992
    assert main(["generate", "--model", "llama3_70b", "--hw", "h100_sxm", "--prompt-len", "1024",
                 "--output-len", "8"]) == 0  # priced, as roofline/simulate price a trace that does not fit
    out = capsys.readouterr().out
    assert "memory: weights 141 GB, kv_cache 338 MB" in out and "of 80 GB (DOES NOT FIT)" in out


def test_generate_kv_of_a_large_batch_at_the_final_context():
    g = generate("llama3_8b", "h100_sxm", 8000, 100, batch=128)
    # 128 sequences x (8000 + 100 - 1) tokens x 131,072 B (32 layers x 2 x 8 kv heads x 128 x 2 B)
    assert g.footprint["kv_cache"] == 128 * 8099 * 131_072 == 135_878_672_384
    assert not g.fits_in_memory
    small = generate("llama3_8b", "h100_sxm", 128, 4)
    assert small.fits_in_memory and small.footprint["kv_cache"] == 131 * 131_072


# ---- 2. generate: the max_context rule with the opt-in roofline has ----------------------------------

def test_generate_beyond_max_context_is_refused_with_the_flag_named(capsys):
    msg = _err(capsys, ["generate", "--model", "llama3_8b", "--hw", "h100_sxm", "--prompt-len", "8192",
                        "--output-len", "16"])
    assert "generate: output_len: prompt 8192 + output 16 tokens put the largest step at 8207" in msg
    assert "--allow-beyond-max-context" in msg
    assert main(["generate", "--model", "llama3_8b", "--hw", "h100_sxm", "--prompt-len", "8192",
                 "--output-len", "16", "--allow-beyond-max-context"]) == 0
    assert "note: seq 8,207 is beyond llama3_8b's maximum context of 8,192" in capsys.readouterr().out
    g = generate("llama3_8b", "h100_sxm", 8192, 16, allow_beyond_max_context=True)
    assert g.decode_times_s.size == 15


# ---- 3. generate --out: .csv or real .json, refused up front otherwise ---------------------------------

def test_generate_out_json_is_json_and_a_bad_extension_is_refused_before_pricing(tmp_path, capsys,
                                                                                   monkeypatch):
    out = tmp_path / "new" / "gen.json"  # a missing folder is created, as roofline does
    assert main(["generate", "--model", "llama3_8b", "--hw", "h100_sxm", "--prompt-len", "128",
                 "--output-len", "4", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["prompt_len"] == 128 and doc["fits_in_memory"] is True
    assert [s["context_len"] for s in doc["decode_steps"]] == [129, 130, 131]
    csv = tmp_path / "gen.csv"
    assert main(["generate", "--model", "llama3_8b", "--hw", "h100_sxm", "--prompt-len", "128",
                 "--output-len", "4", "--out", str(csv)]) == 0
    # session 13: what produced the steps follows as constant columns (model, hw, level, shape, inputs record)
    assert csv.read_text().splitlines()[0].startswith("step,context_len,latency_s,energy_j,model,hw,level,")
    import sys
    gen = sys.modules["cosim.serving.generate"]  # the module (cosim.serving's `generate` is the function)

    def boom(*a, **k):
        raise AssertionError("priced before the --out check")
    monkeypatch.setattr(gen, "generate", boom)
    msg = _err(capsys, ["generate", "--model", "llama3_8b", "--hw", "h100_sxm", "--out", str(tmp_path / "g.txt")])
    assert msg.endswith("g.txt: unknown extension '.txt'; expected .csv or .json") and "--out" in msg
    assert not (tmp_path / "g.txt").exists()


# ---- 4. the compute-fallback advice names a flag the command has -------------------------------------

def test_generate_and_plan_take_the_compute_fallback_the_error_recommends(capsys):
    msg = _err(capsys, ["generate", "--model", "llama3_8b", "--hw", "h100_sxm", "--weights", "mxfp4",
                        "--acts", "mxfp4", "--output-len", "2"])
    assert "--compute-fallback" in msg
    assert main(["generate", "--model", "llama3_8b", "--hw", "h100_sxm", "--weights", "mxfp4", "--acts",
                 "mxfp4", "--output-len", "2", "--compute-fallback"]) == 0
    assert "computed at the fp8_e4m3 peak (explicit fallback)" in capsys.readouterr().out
    base = ["plan", "--model", "llama3_8b", "--system", "dgx_h100", "--weights", "mxfp4", "--acts", "mxfp4",
            "--max-devices", "2"]
    assert "--compute-fallback" in _err(capsys, base)
    assert main(base + ["--compute-fallback"]) == 0
    out = capsys.readouterr().out
    assert "best: " in out and "note: compute fallback: mxfp4 computed at the fp8_e4m3 peak (h100_sxm" in out


# ---- 7. generate --level cycle on a GPU names the level that priced ----------------------------------

def test_generate_cycle_on_a_gpu_names_the_level_that_priced_the_steps():
    g = generate("llama3_8b", "h100_sxm", 128, 4, level="cycle")
    assert g.level == "roofline"
    steps = [n for n in g.notes if n.startswith("decode context ops priced step by step")]
    assert steps == ["decode context ops priced step by step (3 steps, level roofline; requested cycle)"]
    g = generate("llama3_8b", "h100_sxm", 128, 4, level="analytical")  # a calibrated GPU: no fallback
    assert "decode context ops priced step by step (3 steps, level analytical)" in g.notes


# ---- 5. plan --plot / --out: the extension and folder checked before the search ----------------------

@pytest.mark.parametrize("name, bad", [("p.xyz", "'.xyz'"), ("p.jpg", "'.jpg'")])
def test_plan_plot_refuses_an_unknown_extension_up_front(tmp_path, capsys, monkeypatch, name, bad):
    import cosim.plan

    def boom(*a, **k):
        raise AssertionError("searched before the --plot check")
    monkeypatch.setattr(cosim.plan, "plan", boom)
    msg = _err(capsys, ["plan", "--model", "llama3_8b", "--system", "dgx_h100", "--plot", str(tmp_path / name)])
    assert msg.startswith("error: --plot: ") and msg.endswith(f"unknown extension {bad}; expected .png or .svg or .pdf")
    assert not (tmp_path / name).exists()
    msg = _err(capsys, ["plan", "--model", "llama3_8b", "--system", "dgx_h100", "--out", str(tmp_path / "t.txt")])
    assert msg.startswith("error: --out: ") and "expected .csv or .json" in msg


def test_plan_plot_into_a_missing_folder_creates_it_like_roofline(tmp_path, capsys):
    plot = tmp_path / "nodir3" / "p.png"
    assert main(["plan", "--model", "llama3_8b", "--system", "dgx_h100", "--max-devices", "2",
                 "--plot", str(plot)]) == 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    roof = tmp_path / "nodir4" / "r.png"
    assert main(["roofline", "--model", "llama3_8b", "--hw", "h100_sxm", "--plot", str(roof)]) == 0
    assert roof.is_file()


# ---- 9. recipe: validated and priced before the table is printed --------------------------------------

def test_recipe_refusal_prints_no_table_header(capsys):
    msg = _err(capsys, ["recipe", "mxfp4_native", "--hw", "h100_sxm"])  # also: nothing on stdout
    assert "has no compute peak for format 'mxfp4'" in msg and "--compute-fallback" in msg
    assert main(["recipe", "mxfp4_native", "--hw", "h100_sxm", "--compute-fallback"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("mxfp4_native: method weight_format") and "baseline  mxfp4_native" in out


def test_recipe_refusal_leaves_stdout_empty(capsys):
    assert main(["recipe", "mxfp4_native", "--hw", "h100_sxm"]) == 2
    assert capsys.readouterr().out == ""


# ---- 6. an experiment's hw and system must name the same device ---------------------------------------

def _experiment(tmp_path, text: str):
    f = tmp_path / "e.yaml"
    f.write_text(text)
    return f


def test_experiment_refuses_an_hw_the_system_would_ignore(tmp_path, capsys):
    from cosim.experiment import load_experiment
    f = _experiment(tmp_path, "model: llama3_8b\nhw: a100_sxm_80gb\nsystem: dgx_h100\nparallel: {tp: 2}\n")
    with pytest.raises(InputError) as e:
        load_experiment(f)
    assert str(e.value) == (f"{f}: hw: got 'a100_sxm_80gb' with system: 'dgx_h100', whose device is 'h100_sxm'; "
                            f"expected hw: h100_sxm or no hw (a system run prices the system's own device, so "
                            f"this hw would be ignored)")
    assert _err(capsys, ["run", str(f), "--no-accuracy"]).startswith(f"error: {f}: hw: got 'a100_sxm_80gb'")
    same = _experiment(tmp_path, "model: llama3_8b\nhw: h100_sxm\nsystem: dgx_h100\nparallel: {tp: 2}\n")
    assert load_experiment(same).system == "dgx_h100"  # the same device: accepted
    none = _experiment(tmp_path, "model: llama3_8b\nsystem: dgx_h100\nparallel: {tp: 2}\n")
    assert load_experiment(none).hw.name.endswith("h100_sxm.yaml")  # the system's device


# ---- 8. output: relative to the current directory (inputs relative to the file) -----------------------

def test_experiment_output_is_relative_to_the_current_directory(tmp_path, monkeypatch, capsys):
    import cosim.experiment as ex
    doc = " ".join(ex._path_or_name.__doc__.split())  # the documented rule is the one that runs
    assert "`output:` is not an input and stays relative to the current directory" in doc
    (tmp_path / "files").mkdir()
    (tmp_path / "run_here").mkdir()
    f = tmp_path / "files" / "e.yaml"
    f.write_text("name: rel\nmodel: llama3_8b\nhw: h100_sxm\naccuracy: false\noutput: out/rel\n")
    assert ex.load_experiment(f).output == "out/rel"  # kept as written
    monkeypatch.chdir(tmp_path / "run_here")
    assert main(["run", str(f)]) == 0
    assert "wrote out/rel/report.html" in capsys.readouterr().out
    assert (tmp_path / "run_here" / "out" / "rel" / "report.json").is_file()
    assert not (tmp_path / "files" / "out").exists()


def test_plan_out_names_its_inputs_and_a_json_header(tmp_path):
    import json

    import pandas as pd
    base = ["plan", "--model", "llama3_8b", "--system", "dgx_h100", "--max-devices", "2", "--seq", "1024",
            "--recipe", "kivi2"]
    assert main(base + ["--out", str(tmp_path / "p.csv")]) == 0
    df = pd.read_csv(tmp_path / "p.csv")
    assert set(df["model"]) == {"llama3_8b"} and set(df["seq"]) == {1024} and set(df["recipe"]) == {"kivi2"}
    assert set(df["sp"]) == {False} and set(df["sp_searched"]) == {"off"}  # the layout's, then the option
    assert set(df["weights"]) == {"bf16"}  # resolved (none given: the checkpoint declares none)
    assert main(base + ["--out", str(tmp_path / "p.json")]) == 0
    d = json.loads((tmp_path / "p.json").read_text())
    assert d["schema_version"] >= 2 and d["inputs"]["system"] == "dgx_h100" and d["inputs"]["recipe"] == "kivi2"
    assert len(d["rows"]) == len(df) and d["rows"][0]["layout"] == df["layout"][0]
    assert "max_microbatches" in d["inputs"]
    assert main(base + ["--acts", "fp8_e4m3", "--out", str(tmp_path / "q.json")]) == 0
    notes = json.loads((tmp_path / "q.json").read_text())["notes"]
    assert sum(n.startswith("acts fp8_e4m3: ") for n in notes) == 1
