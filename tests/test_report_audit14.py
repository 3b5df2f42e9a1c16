"""Session-14 report audit: what the terminal, report.html and report.json say must agree (checkpoint notes,
provenance of energy, skipped accuracy, format labels, schema fields)."""

import json

import pytest
import yaml

from cosim.cli import main

KIVI_E1 = {"name": "e1", "model": "llama3_8b", "phase": "decode", "batch": 8, "seq": 4096, "weights": "mxfp4",
           "kv": "bf16", "hw": "mi300x", "level": "analytical", "recipe": "kivi2",
           "accuracy": {"source": "synthetic", "layers": 1, "rows": 8, "tokens": 128, "checkpoint": "smollm2_135m"}}


def _write(tmp_path, doc, name="exp.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(doc))
    return p


@pytest.fixture(scope="module")
def e1_run(tmp_path_factory):
    """e1 (kivi2 over 128 tokens: its 128-token residual window holds them all) run once through the CLI."""
    import contextlib
    import io
    tmp = tmp_path_factory.mktemp("e1")
    p = _write(tmp, KIVI_E1)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["run", str(p), "--out", str(tmp / "out")]) == 0
    return buf.getvalue(), tmp / "out"


def test_checkpoint_notes_reach_terminal_and_html(e1_run):
    out, d = e1_run
    ck = json.loads((d / "report.json").read_text())["accuracy"]["checkpoint"]
    assert len(ck["did_not_act"]) == 1 and "no KV entry was quantized" in ck["did_not_act"][0]
    # the change is the weights' (mxfp4), said beside the warning; the hint names the YAML field, not a flag
    assert "weights mxfp4" in ck["did_not_act"][0]
    assert "--tokens" not in " ".join(ck["notes"]) and "accuracy.tokens in " in ck["did_not_act"][0]
    html = (d / "report.html").read_text()
    for n in ck["notes"]:
        if n != ck["baseline_note"]:
            assert n in out, n  # every checkpoint note printed
            assert n.replace("'", "&#39;") in html, n  # and in the page
    # the warning sits next to the perplexity line, not after unrelated output
    lines = out.splitlines()
    i = next(k for k, line in enumerate(lines) if line.strip().startswith("perplexity "))
    assert any(line.strip().startswith("WARNING: recipe kivi2") for line in lines[i:i + 5])
    assert "WARNING: recipe kivi2" in html.split('id="summary"')[1].split("</table>")[0]


def test_energy_provenance_names_the_level_that_priced_it(e1_run):
    """mi300x has no calibration: level analytical fell back to the roofline for every op, so the energy is the
    roofline's formula, not 'the analytical model's energy'."""
    _, d = e1_run
    doc = json.loads((d / "report.json").read_text())
    assert {r["level"] for r in doc["ops"]} == {"roofline"}
    assert doc["provenance"]["energy_j"].startswith("FLOPs x J/FLOP")
    assert "analytical" not in doc["provenance"]["energy_j"]


def test_energy_provenance_mixed_levels():
    from cosim.experiment import energy_provenance
    from cosim.report import Report
    rows = [{"level": "analytical"}, {"level": "roofline"}]
    rep = Report(model="m", hw="h", level="analytical", phase="decode", batch=1, seq=1, rows=rows, footprint={},
                 capacity_bytes=1.0)
    assert energy_provenance(rep).startswith("mixed levels: ops priced by the analytical / roofline models")
    rep.rows = rows[:1]
    assert energy_provenance(rep) == "the analytical model's energy (per-op provenance column)"


def test_no_accuracy_is_said_and_keeps_the_columns(tmp_path, capsys):
    doc = {"name": "s", "model": "llama3_8b", "phase": "decode", "batch": 1, "seq": 512, "weights": "mxfp4",
           "hw": "h100_sxm", "accuracy": {"layers": 1, "rows": 8, "tokens": 4}}
    p = _write(tmp_path, doc)
    assert main(["run", str(p), "--out", str(tmp_path / "o"), "--no-accuracy"]) == 0
    out = capsys.readouterr().out
    assert "accuracy skipped (--no-accuracy)" in out
    d = tmp_path / "o"
    assert "accuracy skipped (--no-accuracy)" in (d / "report.html").read_text()
    rep = json.loads((d / "report.json").read_text())
    assert any(n.startswith("accuracy skipped (--no-accuracy)") for n in rep["totals"]["notes"])
    assert {r["accuracy_status"] for r in rep["ops"]} == {"skipped"} and all(r["sqnr_db"] is None for r in rep["ops"])
    import csv
    rows = list(csv.DictReader((d / "report.csv").open()))
    assert {"sqnr_db", "accuracy_status"} <= set(rows[0]) and {r["accuracy_status"] for r in rows} == {"skipped"}
    assert {r["sqnr_db"] for r in rows} == {""}


def test_recipe_format_detail_names_the_tensors_and_inputs_stay_parseable():
    from workloads.builder import build_trace
    from workloads.formats import get_format
    t = build_trace("llama3_8b", phase="decode", batch=8, seq=4096, weights="mxfp4", kv="bf16", recipe="kivi2")
    assert t.meta["formats"] == {"weights": "mxfp4", "acts": "bf16", "kv": "bf16"}  # requested names
    # the RMSNorm gains (activation format) are not a recipe's weights: no weights detail for a KV recipe
    assert t.meta["format_detail"] == {
        "kv": "int2 K/V codes + fp16 scales/zeros + bf16 residual window (recipe kivi2; flag bf16)"}
    w = build_trace("llama3_8b", phase="decode", batch=1, seq=512, recipe="mxfp4_weights").meta["format_detail"]
    assert w["weights"].startswith("mxfp4 linear layers + bf16 embedding table, norm gains (activation format)")
    k = build_trace("llama3_8b", phase="decode", batch=1, seq=512, recipe="ksort_bfp12_keys").meta["format_detail"]
    assert k["kv"] == "bfp12_b32 K codes + bf16 V cache (recipe ksort_bfp12_keys; flag bf16)"
    for v in t.meta["formats"].values():
        get_format(v)


def test_recipe_format_detail_in_outputs(e1_run):
    import csv
    out, d = e1_run
    assert "kv=int2 K/V codes + fp16 scales/zeros + bf16 residual window (recipe kivi2; flag bf16)" in out
    doc = json.loads((d / "report.json").read_text())
    assert doc["totals"]["formats"]["kv"] == "bf16" and "int2 K/V codes" in doc["totals"]["format_detail"]["kv"]
    row = next(csv.DictReader((d / "report.csv").open()))
    assert (row["weights"], row["acts"], row["kv"]) == ("mxfp4", "bf16", "bf16")
    assert "as stored: int2 K/V codes" in (d / "report.html").read_text()


def test_report_json_header(e1_run, tmp_path, monkeypatch, capsys):
    from cosim.report import SCHEMA_VERSION
    from cosim.version import __version__
    _, d = e1_run
    run_doc = json.loads((d / "report.json").read_text())
    assert main(["roofline", "--model", "llama3_8b", "--hw", "h100_sxm", "--out", str(tmp_path / "r.json")]) == 0
    assert main(["generate", "--model", "llama3_8b", "--hw", "h100_sxm", "--prompt-len", "64", "--output-len", "4",
                 "--out", str(tmp_path / "g.json")]) == 0
    # what git says of this tree (a checkout here: HEAD's 40-hex hash, + a dirty mark when tracked files differ)
    import re
    import subprocess
    from pathlib import Path
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True)
    git_commit = run_doc["git_commit"]
    if head.returncode == 0:
        assert re.fullmatch(r"[0-9a-f]{40}( \(modified tracked files\))?", git_commit), git_commit
        assert git_commit.startswith(head.stdout.strip())
    else:
        assert git_commit.startswith("unknown: ")
    for doc in (run_doc, json.loads((tmp_path / "r.json").read_text()), json.loads((tmp_path / "g.json").read_text())):
        assert doc["schema_version"] == SCHEMA_VERSION and doc["cosim_version"] == __version__
        assert doc["git_commit"] == git_commit and "rows_are" in doc
    assert "totals over each op's repeat" in run_doc["rows_are"]
    # a bundled experiment is named by its place in the package, never by an install path
    monkeypatch.chdir(tmp_path)
    assert main(["run", "quickstart", "--no-accuracy", "--out", "q"]) == 0
    src = json.loads((tmp_path / "q" / "report.json").read_text())["totals"]["experiment"]["source"]
    assert src == "cosim/configs/experiments/quickstart.yaml (bundled)"


def test_parallel_totals_name_device_and_system(tmp_path, capsys):
    doc = {"name": "p", "model": "llama3_70b", "phase": "decode", "batch": 16, "seq": 8192, "weights": "fp8_e4m3",
           "acts": "fp8_e4m3", "kv": "fp8_e4m3", "system": "dgx_h100", "parallel": {"tp": 8}, "level": "roofline",
           "accuracy": False}
    assert main(["run", str(_write(tmp_path, doc)), "--out", str(tmp_path / "o")]) == 0
    t = json.loads((tmp_path / "o" / "report.json").read_text())["totals"]
    par = t["parallel"]
    # session 17: energy_per_token_j is the layout's (was the device trace's, 8x smaller here)
    assert t["energy_per_token_j"] == t["system_energy_per_token_j"] == par["system_energy_per_token_j"]
    # tp=8, pp=1, one micro-batch: 8 copies of the trace's energy over the same tokens, no idle device-seconds
    assert t["system_energy_per_token_j"] == pytest.approx(8 * t["device_energy_per_token_j"], rel=1e-9)
    assert t["totals_scope"].startswith("batch, tokens_per_s, energy_per_token_j and system_*: the whole layout")


def test_sqnr_says_pooled_over_sampled_layers(e1_run):
    out, d = e1_run
    assert "output SQNR per op, pooled over 1 sampled layer x" in out
    doc = json.loads((d / "report.json").read_text())
    assert "pooled over the sampled layers (summed signal / summed noise" in doc["provenance"]["sqnr_db"]
    html = (d / "report.html").read_text()
    assert ">SQNR (pooled)</th>" in html and "worst op output SQNR (synthetic tensors, pooled over" in html


def test_zero_byte_op_one_rule(e1_run):
    """kivi2.dequant reads its codes from on chip (0 off-chip bytes): its intensity is n/a in every output, and
    its bytes a float 0.0 as every other row's."""
    import csv
    out, d = e1_run
    op = next(r for r in json.loads((d / "report.json").read_text())["ops"] if r["op"] == "kivi2.dequant")
    assert op["bytes"] == 0.0 and isinstance(op["bytes"], float) and op["intensity"] is None
    row = next(r for r in csv.DictReader((d / "report.csv").open()) if r["op"] == "kivi2.dequant")
    assert (row["bytes"], row["intensity"]) == ("0.0", "")
    line = next(x for x in out.splitlines() if x.startswith("kivi2.dequant"))
    assert " n/a " in line and "inf" not in line


def test_roofline_notes():
    """The wider-ceiling note gives weight-only quantization as the reason when the activations are BF16 (on any
    GPU), and the not-drawn note names collectives and their share of time."""
    from cosim.plots import not_drawn_note, wider_ceiling_notes
    from cosim.simulate import simulate
    from hwmodels.spec import load_hw
    from workloads.builder import build_trace
    h100, b200 = load_hw("h100_sxm"), load_hw("b200")
    rep = simulate(build_trace("llama3_8b", phase="decode", batch=1, seq=512, weights="mxfp4"), h100)
    for hw in (h100, b200):
        (n,) = wider_ceiling_notes([rep], hw)
        assert n.startswith("MXFP4 weights with BF16 activations compute in BF16 (weight-only quantization")
        assert "has no MXFP4 peak" not in n
    both = simulate(build_trace("llama3_8b", phase="decode", batch=1, seq=512, weights="mxfp4", acts="mxfp4"), h100,
                    compute_fallback=True)  # H100 has no MXFP4 math: that is the reason here
    (n,) = wider_ceiling_notes([both], h100)
    assert n.startswith("MXFP4 weights: h100_sxm has no MXFP4 peak; their GEMMs run at the")
    rep = simulate(build_trace("llama3_70b", phase="decode", batch=16, seq=8192, weights="fp8_e4m3",
                               acts="fp8_e4m3", kv="fp8_e4m3", parallel={"tp": 8}), "dgx_h100")
    ar = [r for r in rep.rows if r["kind"] == "allreduce"]
    share = 100 * sum(r["latency_s"] for r in ar) / rep.total_latency_s
    note = not_drawn_note([rep], rep.total_latency_s)
    assert f"allreduce x{len(ar)} (collective) {share:.1f} % of time" in note


def test_plot_other_hw_is_labelled(tmp_path, capsys, monkeypatch):
    import cosim.plots as P
    assert main(["roofline", "--model", "llama3_8b", "--hw", "h100_sxm", "--out", str(tmp_path / "r.json")]) == 0
    seen = {}
    real = P.roofline_figure

    def spy(*a, **k):
        seen.update(title=a[2] if len(a) > 2 else k.get("title"), notes=k.get("extra_notes"))
        return real(*a, **k)
    monkeypatch.setattr(P, "roofline_figure", spy)
    assert main(["plot", str(tmp_path / "r.json"), "--hw", "b200", "--out", str(tmp_path / "p.png")]) == 0
    assert "priced on h100_sxm; ceilings of b200" in seen["title"]
    assert "not re-priced on b200" in seen["notes"][0] and "not re-priced on b200" in capsys.readouterr().out
    assert main(["plot", str(tmp_path / "r.json"), "--hw", "h100_sxm", "--out", str(tmp_path / "q.png")]) == 0
    assert seen["title"] is None and not seen["notes"]


def _err(tmp_path, capsys, doc, *flags):
    assert main(["run", str(_write(tmp_path, doc)), "--out", str(tmp_path / "o"), *flags]) == 2
    return capsys.readouterr().err


BASE = {"name": "b", "model": "llama3_8b", "phase": "decode", "batch": 1, "seq": 512, "hw": "h100_sxm",
        "accuracy": False}


def test_input_errors_in_the_files_terms(tmp_path, capsys):
    err = _err(tmp_path, capsys, {**BASE, "accuracy": {"source": "synthetc"}})
    assert "accuracy.source: got 'synthetc'" in err and "did you mean 'synthetic'?" in err
    err = _err(tmp_path, capsys, {**BASE, "accuracy": {"source": "checkpont"}})
    assert "goes in accuracy.checkpoint" in err
    err = _err(tmp_path, capsys, {**BASE, "accuracy": {"rows": 0}})
    assert "expected a positive integer (1 or more)" in err and "1,099,511,627,776" not in err
    err = _err(tmp_path, capsys, {**BASE, "weights": "int4_g128", "acts": "fp8_e4m3", "hw": "mx_systolic_128",
                                  "level": "cycle"})
    assert "acts: fp8_e4m3, weights: int4_g128" in err and "`compute_fallback: true` in the file" in err
    assert "compute_fallback=True" not in err and "cosim/configs/hw/mx_systolic_128.yaml" in err
    assert err.endswith("\n")


def test_layers_clamp_and_few_tokens_are_said(tmp_path, capsys):
    doc = {**BASE, "weights": "mxfp4", "accuracy": {"layers": 100, "rows": 4, "tokens": 5,
                                                     "checkpoint": "smollm2_135m"}}
    assert main(["run", str(_write(tmp_path, doc)), "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "accuracy.layers: 100 asked; the model has 32 layers, so all 32 were sampled" in out
    assert "WARNING: only 2 predictions scored (accuracy.tokens 5" in out
    html = (tmp_path / "o" / "report.html").read_text()
    assert html.count("<h2>Memory footprint</h2>") == 1 and "Memory footprint by part (chart)" in html


def test_few_predictions_advice_is_derived_from_the_run():
    """The advice counts from the run: with the default prefill (half the window) 66 tokens score 32
    predictions (66 - 33 - 1); with a given prefill each further token adds one (100 tokens, prefill 90:
    9 scored, so 100 + 23 = 123)."""
    from types import SimpleNamespace
    from cosim.experiment import FEW_PREDICTIONS, _tokens_for
    assert FEW_PREDICTIONS == 32
    w = _tokens_for(32, SimpleNamespace(prefill=None, tokens=10), 4)
    assert w == 66 and w - w // 2 - 1 == 32
    assert _tokens_for(32, SimpleNamespace(prefill=90, tokens=100), 9) == 123
