"""`cosim run --force` over an earlier run removes that run's serve/ outputs (and interactive
page) it does not rewrite, names them on stderr, and leaves every other file alone."""
import json

from cosim.cli import main

SERVE = "serve: {qps: 4, requests: 6, prompt_len: 32, output_len: 4, slo_ttft_s: 0.5}\n"


def test_force_rerun_without_serve_removes_the_stale_serve_files(tmp_path, capsys):
    exp = tmp_path / "e.yaml"
    exp.write_text("model: llama3_8b\nhw: h100_sxm\n" + SERVE)
    out = tmp_path / "out"
    assert main(["run", str(exp), "--no-accuracy", "--out", str(out)]) == 0
    assert (out / "serve" / "summary.json").is_file()
    (out / "serve" / "mine.txt").write_text("a user's file")
    (out / "notes.txt").write_text("a user's file")
    (out / "report_interactive.html").write_text("<html>earlier</html>")
    capsys.readouterr()
    exp.write_text("model: llama3_8b\nhw: h100_sxm\n")
    assert main(["run", str(exp), "--no-accuracy", "--out", str(out), "--force"]) == 0
    err = capsys.readouterr().err
    assert "removed report_interactive.html, serve/requests.csv" in err and "stale" in err
    assert "serve" not in json.loads((out / "report.json").read_text())
    assert sorted(p.name for p in (out / "serve").iterdir()) == ["mine.txt"]
    assert (out / "notes.txt").is_file() and not (out / "report_interactive.html").exists()


def test_force_rerun_with_serve_removes_nothing(tmp_path, capsys):
    exp = tmp_path / "e.yaml"
    exp.write_text("model: llama3_8b\nhw: h100_sxm\n" + SERVE)
    out = tmp_path / "out"
    assert main(["run", str(exp), "--no-accuracy", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["run", str(exp), "--no-accuracy", "--out", str(out), "--force"]) == 0
    assert "removed" not in capsys.readouterr().err
    assert (out / "serve" / "summary.json").is_file()
