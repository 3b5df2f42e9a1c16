"""`cosim recipe`: effect table next to the baseline, accuracy twin, clean errors."""

from cosim.cli import main


def test_recipe_effect_table(capsys):
    assert main(["recipe", "kivi2", "--model", "llama3_8b", "--seq", "32768", "--allow-beyond-max-context", "--hw", "a100_sxm_80gb"]) == 0
    out = capsys.readouterr().out
    assert "kivi2: method kivi" in out and "arXiv:2402.02750" in out
    # 4.29 GB of bf16 KV at 32K -> 812 MB (doc §1.1): 5.29x
    kv = next(line for line in out.splitlines() if line.startswith("footprint kv_cache"))
    assert "4.29 GB" in kv and "812 MB" in kv and "5.29x" in kv
    assert "latency on a100_sxm_80gb" in out and "kivi2.v_quantize" in out


def test_recipe_with_accuracy(capsys):
    assert main(["recipe", "snapkv", "--seq", "16384", "--allow-beyond-max-context", "--accuracy", "--prompt", "2048", "--steps", "4"]) == 0
    out = capsys.readouterr().out
    assert "kept 1024, read per step 1024" in out
    assert "snapkv: attn_rel_error" in out and "mass_kept" in out


def test_recipe_errors_are_one_line(capsys, tmp_path):
    assert main(["recipe", "kivi3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown recipe 'kivi3'") and "Traceback" not in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nmethod: snapkv\ncitation: c\nparameters: {capacity: -3}\n")
    assert main(["recipe", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "parameters.capacity" in err and "-3" in err


def test_compare_traces_rows():
    from compression_helpers import LLAMA3_8B, trace_for
    from workloads.compression import apply_recipe
    from cosim.compare import compare_traces
    t = trace_for(LLAMA3_8B, seq=32768)
    rows = {r.quantity: r for r in compare_traces(t, apply_recipe(t, "kivi2", LLAMA3_8B), "h100_sxm")}
    assert rows["footprint kv_cache"].ratio == 4294967296 / 812122112
    assert rows["footprint weights"].ratio == 1.0
    assert rows["latency on h100_sxm"].ratio > 1 and rows["energy"].unit == "J"
    assert rows["energy"].to_dict()["quantity"] == "energy"


def test_native_mx_on_a_gpu_without_mx_needs_the_fallback(capsys):
    assert main(["recipe", "mxfp4_native", "--hw", "h100_sxm"]) == 2
    assert "no compute peak for format 'mxfp4'" in capsys.readouterr().err
    assert main(["recipe", "mxfp4_native", "--hw", "h100_sxm", "--compute-fallback"]) == 0


def test_recipe_table_labels_ratio_phase_and_prints_notes(capsys):
    assert main(["recipe", "rocketkv", "--seq", "200"]) == 0
    out = capsys.readouterr().out
    assert "baseline/recipe" in out and "ratio" not in out.split("\n\n")[-1].splitlines()[0]
    assert "note: recipe rocketkv: prompt of 200 tokens fits the token budget 1024" in out
    assert main(["recipe", "h2o", "--phase", "prefill", "--seq", "2048"]) == 0
    out = capsys.readouterr().out
    assert "prompt 2048, kept in the cache after prefill 408" in out and "read per step" not in out
    assert main(["recipe", "mla", "--model", "deepseek_v2_lite", "--seq", "1024"]) == 0
    assert "note: recipe mla: deepseek_v2_lite is natively MLA; trace unchanged" in capsys.readouterr().out
