"""`cosim run exp.yaml` with a `serve:` block prints the serving summary and where its files went (it printed
only the single-step table; TTFT/TPOT/goodput went to report.json and out/serve/ silently)."""
import json

from cosim.cli import main


def test_run_with_a_serve_block_prints_the_serving_summary_and_its_folder(tmp_path, capsys):
    exp = tmp_path / "e.yaml"
    exp.write_text("model: llama3_8b\nhw: h100_sxm\nserve: {qps: 4, requests: 12, prompt_len: 64, output_len: 8, "
                   "slo_ttft_s: 0.5}\n")
    out = tmp_path / "out"
    assert main(["run", str(exp), "--no-accuracy", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"serving run ({exp}: serve):" in text
    assert "serve llama3_8b on h100_sxm — scheduler continuous, level roofline, 12 requests, qps 4" in text
    lines = text.splitlines()
    assert any(ln.startswith("ttft ") for ln in lines) and any(ln.startswith("tpot ") for ln in lines)
    assert "goodput" in text and "SLO attainment 100.0 %" in text
    assert f"wrote {out / 'serve'}/ (requests.csv, timeline.csv, summary.json, latency_cdf.png, kv_timeline.png)" in text
    assert (out / "serve" / "summary.json").is_file()
    doc = json.loads((out / "report.json").read_text())
    assert doc["serve"]["summary"]["requests"] == 12 and "serve/summary.json" in doc["serve"]["files"]
