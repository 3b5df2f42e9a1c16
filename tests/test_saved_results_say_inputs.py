"""Saved results say what produced them: serve --out summary.json has the run's `config` (ServeConfig.record),
generate --out .json an `inputs` record and the .csv the same as constant columns, simulate --out JSON the
pricing inputs (attention backend and who chose it) in `totals.inputs`."""
import csv
import json

from cosim.cli import main


def test_serve_summary_json_has_the_run_config(tmp_path, capsys):
    out = tmp_path / "s"
    assert main(["serve", "--model", "llama3_8b", "--hw", "h100_sxm", "--qps", "5", "--requests", "6", "--prompt-len",
                 "32", "--output-len", "4", "--kv", "fp8_e4m3", "--scheduler", "chunked", "--slo-tpot", "0.05",
                 "--out", str(out)]) == 0
    cfg = json.loads((out / "summary.json").read_text())["config"]
    assert (cfg["model"], cfg["hw"], cfg["qps"], cfg["scheduler"], cfg["kv"], cfg["slo_tpot_s"], cfg["slo_ttft_s"]) \
        == ("llama3_8b", "h100_sxm", 5.0, "chunked", "fp8_e4m3", 0.05, None)
    assert cfg["requests"] == 6 and cfg["prompt_len"] == 32 and cfg["trace"] is None


def test_generate_json_and_csv_say_formats_and_recipe(tmp_path, capsys):
    argv = ["generate", "--model", "llama3_8b", "--hw", "h100_sxm", "--prompt-len", "64", "--output-len", "3",
            "--weights", "fp8_e4m3", "--kv", "fp8_e4m3"]
    assert main(argv + ["--out", str(tmp_path / "g.json")]) == 0
    inp = json.loads((tmp_path / "g.json").read_text())["inputs"]
    assert inp == {"weights": "fp8_e4m3", "acts": "bf16", "kv": "fp8_e4m3", "recipe": None, "attention": "fused",
                   "compute_fallback": False, "profile": None, "implementation": None, "attention_backend": None}
    assert main(argv + ["--out", str(tmp_path / "g.csv")]) == 0
    rows = list(csv.DictReader((tmp_path / "g.csv").open()))
    assert len(rows) == 2  # output 3: two decode steps
    for r in rows:
        assert (r["model"], r["hw"], r["level"], r["weights"], r["kv"], r["prompt_len"], r["recipe"]) == \
            ("llama3_8b", "h100_sxm", "roofline", "fp8_e4m3", "fp8_e4m3", "64", "")


def test_simulate_analytical_json_says_the_attention_backend_and_who_chose_it(tmp_path, capsys):
    p = tmp_path / "a.json"
    assert main(["simulate", "--model", "llama3_8b", "--hw", "h100_sxm", "--level", "analytical", "--batch", "8",
                 "--seq", "1024", "--out", str(p)]) == 0
    printed = capsys.readouterr().out
    assert "attention backend: cudnn (the calibration's default" in printed  # the H100 re-fit: PyTorch's default
    inp = json.loads(p.read_text())["totals"]["inputs"]
    assert inp["attention_backend"] == "cudnn" and inp["backend_chosen_by"] == "the calibration's default"
    assert inp["profile"] is None and inp["attention"] == "fused" and inp["overlap"] is None
    # the roofline's fast path keeps the same record (no backend at that level)
    assert main(["simulate", "--model", "llama3_8b", "--hw", "h100_sxm", "--batch", "8", "--seq", "1024",
                 "--out", str(p)]) == 0
    assert json.loads(p.read_text())["totals"]["inputs"]["attention_backend"] is None
