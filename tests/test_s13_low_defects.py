"""Session-13 user-path audit, low items: each was silent or misleading."""

import pytest

from cosim.cli import main
from workloads.io import InputError


def test_kv_capacity_beyond_device_memory_is_refused_with_the_numbers(capsys):
    # 100,000,000 tokens x 131,072 B/token (llama3_8b bf16 KV: 32 layers x 8 heads x 128 x 2 x 2 B) = 13,107.2 GB
    # on an H100 whose engine share is 0.9 x 74.5 GiB = 67.1 GiB; was accepted as "(given)"
    assert main(["serve", "--model", "llama3_8b", "--hw", "h100_sxm", "--qps", "5", "--requests", "5",
                 "--kv-capacity-tokens", "100000000"]) == 2
    err = capsys.readouterr().err
    assert ("error: serve: kv_capacity_tokens: got 100,000,000 (13,107.2 GB of KV at 131,072 B/token); expected at "
            "most ") in err
    assert "h100_sxm has 67.1 GiB for the engine (memory_fraction 0.9 x 74.5 GiB of hbm)" in err


def test_no_room_error_says_the_share_of_device_memory():
    from cosim.serving import serve
    with pytest.raises(InputError, match=r"h100_sxm has 67\.1 GiB for the engine \(memory_fraction 0\.9 x 74\.5 GiB "
                                         r"of hbm\); weights 131\.4 GiB"):
        serve("llama3_70b", "h100_sxm", qps=5, requests=5)


def test_an_unsorted_trace_is_served_sorted_and_says_so(tmp_path):
    from cosim.serving import serve
    p = tmp_path / "t.csv"
    p.write_text("arrival_s,prompt_len,output_len\n0.5,16,2\n0.0,16,2\n1.0,16,2\n")
    r = serve("llama3_8b", "h100_sxm", trace=str(p))
    note = next(n for n in r.notes if n.startswith(f"trace {p}: rows not in arrival order"))
    assert "2 of 3 requests moved (request 0 is file row 3)" in note
    assert list(r.requests.sort_values("rid")["arrival_s"]) == [0.0, 0.5, 1.0]
    p.write_text("arrival_s,prompt_len,output_len\n0.0,16,2\n0.5,16,2\n")
    assert not any("rows not in arrival order" in n for n in serve("llama3_8b", "h100_sxm", trace=str(p)).notes)


def test_trace_errors_show_plain_numbers(tmp_path):
    from cosim.serving.arrivals import load_trace
    p = tmp_path / "t.csv"
    p.write_text("arrival_s,prompt_len,output_len\n0.0,-3,2\n")
    with pytest.raises(InputError) as e:
        load_trace(str(p))
    assert "row 2: prompt_len: got -3; expected a positive token count" in str(e.value)
    assert "np." not in str(e.value)


def test_accuracy_notes_a_residual_window_that_holds_every_token():
    from cosim.accuracy import _residual_window_notes
    (note,) = _residual_window_notes("kivi2", 128)  # kivi2.yaml residual_length 128
    assert note.startswith("recipe kivi2: its full-precision residual window (residual_length 128) holds all 128 "
                           "tokens of this run, so no KV entry was quantized")
    assert _residual_window_notes("kivi2", 129) == [] and _residual_window_notes(None, 10) == []


def test_accuracy_refuses_weights_that_a_weight_recipe_would_drop(capsys):
    assert main(["accuracy", "--checkpoint", "smollm2_135m", "--tokens", "64", "--weights", "mxfp4",
                 "--recipe", "int4_g128_weights"]) == 2
    err = capsys.readouterr().err
    assert ("accuracy: --weights: got 'mxfp4' with --recipe 'int4_g128_weights', whose part int4_g128_weights sets "
            "every linear layer's weights to int4_g128_zp, so --weights would be dropped") in err


def test_calibrate_checks_torch_before_announcing_a_measurement(tmp_path, capsys, monkeypatch):
    import builtins
    real = builtins.__import__

    def no_torch(name, *a, **k):
        if name == "torch":
            raise ImportError("No module named 'torch'")
        return real(name, *a, **k)
    monkeypatch.setattr(builtins, "__import__", no_torch)
    assert main(["calibrate", "--hw", "h100_sxm", "--out-dir", str(tmp_path / "cal"), "--run-name", "t1"]) == 2
    cap = capsys.readouterr()
    assert "measuring" not in cap.out and "needs PyTorch with CUDA" in cap.err


def test_quickstart_says_tokens_run_and_predictions_scored(tmp_path, capsys):
    # quickstart.yaml: 256 tokens of the text through smollm2_135m, prefill 128 -> 127 next-token predictions
    # scored; it printed "127 tokens of us_founding_documents.txt"
    assert main(["run", "quickstart", "--out", str(tmp_path / "q")]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("accuracy on a real checkpoint"))
    assert ("(smollm2_135m, 256 tokens of us_founding_documents.txt run, 127 predictions scored after a 128-token "
            "prompt; proxy for llama3_8b)") in line
