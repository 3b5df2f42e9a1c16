"""The command line: a real report end to end, and clear errors (exit 2, no traceback)."""

import json

import pytest

from cosim.cli import main


def run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_roofline_report_end_to_end(tmp_path, capsys):
    out_json, out_png, out_csv = tmp_path / "r.json", tmp_path / "r.png", tmp_path / "r.csv"
    rc, out, err = run(capsys, "roofline", "--model", "llama3_8b", "--hw", "h100_sxm", "--phase", "decode",
                       "--batch", "8", "--seq", "4096", "--weights", "mxfp4", "--kv", "fp8_e4m3",
                       "--plot", str(out_png), "--out", str(out_json))
    assert rc == 0, err
    assert "tokens/s" in out and "kv_cache" in out and "attention" in out
    data = json.loads(out_json.read_text())
    assert data["totals"]["fits_in_memory"] is True
    # KV in fp8: 8 sequences x 4096 tokens x 131072/2 B, + their fp32 scales (32 layers x 8 KV heads x 4 B x K, V)
    assert data["totals"]["footprint_bytes"]["kv_cache"] == 8 * 4096 * 65536 + 8 * 32 * 8 * 4 * 2
    assert out_png.stat().st_size > 10_000
    rc, _, _ = run(capsys, "roofline", "--model", "llama2_7b", "--hw", "a100_sxm_80gb", "--out", str(out_csv))
    assert rc == 0 and out_csv.read_text().startswith("op,kind,phase")


@pytest.mark.parametrize("argv,needle", [
    (["--model", "llama-9b", "--hw", "h100_sxm"], "unknown model 'llama-9b'"),
    (["--model", "llama3_8b", "--hw", "h100_sxmm"], "h100_sxm"),
    (["--model", "llama3_8b", "--hw", "h100_sxm", "--batch", "0"], "batch: got 0"),
    (["--model", "llama3_8b", "--hw", "h100_sxm", "--batch", "-4"], "batch: got -4"),
    (["--model", "llama3_8b", "--hw", "h100_sxm", "--seq", "0"], "seq: got 0"),
    (["--model", "llama3_8b", "--hw", "h100_sxm", "--weights", "mxfp5"], "did you mean"),
    (["--model", "llama3_8b", "--hw", "h100_sxm", "--weights", "mxfp4", "--acts", "mxfp4"], "no compute peak for format 'mxfp4'"),
    (["--model", "llama3_8b", "--hw", "h100_sxm", "--out", "report.txt"], ".csv or .json"),
    (["--model", "/nonexistent/model.yaml", "--hw", "h100_sxm"], "no such model file"),
    (["--model", "llama3_8b", "--hw", "/nonexistent/hw.yaml"], "/nonexistent/hw.yaml"),
])
def test_bad_cli_input_is_a_clear_error(capsys, tmp_path, monkeypatch, argv, needle):
    monkeypatch.chdir(tmp_path)
    rc, out, err = run(capsys, "roofline", *argv)
    assert rc == 2
    assert needle in err and "Traceback" not in err


def test_explicit_fallback_is_reported(capsys):
    rc, out, _ = run(capsys, "roofline", "--model", "llama3_8b", "--hw", "h100_sxm", "--weights", "mxfp4",
                     "--acts", "mxfp4", "--compute-fallback")
    assert rc == 0 and "note:" in out and "fallback" in out


def test_bad_user_hw_file(tmp_path, capsys):
    p = tmp_path / "myhw.yaml"
    p.write_text("name: x\nkind: gpu\nclock: 1 GHz\ncompute: {bf16: 100 TFLOP/s}\n"
                 "memory:\n  - {name: hbm, capacity: 80 GB, bandwidth: 3.35 TB}\n")
    rc, _, err = run(capsys, "roofline", "--model", "llama3_8b", "--hw", str(p))
    assert rc == 2 and "bandwidth" in err and "3.35 TB" in err and str(p) in err


@pytest.mark.parametrize("what,needle", [("hw", "h100_sxm"), ("models", "llama2_7b"), ("formats", "mxfp4")])
def test_list(capsys, what, needle):
    rc, out, _ = run(capsys, "list", what)
    assert rc == 0 and needle in out


def test_plot_from_saved_report(tmp_path, capsys):
    rj = tmp_path / "r.json"
    assert run(capsys, "roofline", "--model", "qwen2_5_7b", "--hw", "mi300x", "--phase", "prefill",
               "--batch", "2", "--seq", "512", "--out", str(rj))[0] == 0
    rc, out, err = run(capsys, "plot", str(rj), "--out", str(tmp_path / "p.svg"))
    assert rc == 0 and (tmp_path / "p.svg").read_text().startswith("<?xml")
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    rc, _, err = run(capsys, "plot", str(bad), "--out", str(tmp_path / "x.png"))
    assert rc == 2 and "not a cosim report" in err
