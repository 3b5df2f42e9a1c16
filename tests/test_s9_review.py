"""Session-9 review findings left open by the final review: each test fails on the code
before its fix (shown by running it against the HEAD copy of the changed file)."""

import json

from cosim.cli import main

_PHI3 = {"model_type": "phi3", "hidden_size": 3072, "intermediate_size": 8192, "num_hidden_layers": 32,
         "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 32064,
         "max_position_embeddings": 4096, "tie_word_embeddings": False}


# ---- 1. a bare bundled name: the bundled file for every kind, and a note when a local one is passed over

def test_a_bundled_trace_name_is_the_bundled_trace_even_beside_a_same_named_file(tmp_path, monkeypatch):
    # was: a file ./sharegpt_synth was read (traces resolved local-first, models bundled-first)
    from cosim.serving.arrivals import load_trace
    monkeypatch.chdir(tmp_path)
    bundled = load_trace("sharegpt_synth")
    (tmp_path / "sharegpt_synth").write_text("arrival_s,prompt_len,output_len\n0.0,7,3\n")
    assert load_trace("sharegpt_synth") == bundled and len(bundled) == 2000
    assert [(r.prompt_len, r.output_len) for r in load_trace("./sharegpt_synth")] == [(7, 3)]  # a path: the user's


def test_a_bundled_sweep_name_is_the_bundled_sweep_even_beside_a_same_named_file(tmp_path, monkeypatch):
    from cosim.dse.spec import load_sweep
    monkeypatch.chdir(tmp_path)
    (tmp_path / "weight_formats").write_text("not: a sweep\n")
    assert load_sweep("weight_formats").source.endswith("sweeps/weight_formats.yaml")


def test_the_cli_says_which_local_folder_a_bundled_name_passed_over(tmp_path, monkeypatch, capsys):
    (tmp_path / "llama3_8b").mkdir()
    (tmp_path / "llama3_8b" / "config.json").write_text(json.dumps(_PHI3))
    (tmp_path / "kivi2").mkdir()
    monkeypatch.chdir(tmp_path)
    assert main(["roofline", "--model", "llama3_8b", "--hw", "h100_sxm", "--recipe", "kivi2(group_size=64)"]) == 0
    err = capsys.readouterr().err
    assert ("note: model 'llama3_8b' is the bundled models/llama3_8b.yaml; the folder ./llama3_8b in the "
            "working directory is not read (write ./llama3_8b to use it)") in err, err
    assert "note: recipe 'kivi2' is the bundled recipes/kivi2.yaml; the folder ./kivi2" in err, err
    assert main(["roofline", "--model", "./llama3_8b", "--hw", "h100_sxm"]) == 0  # a path: no note
    assert "note: model" not in capsys.readouterr().err
