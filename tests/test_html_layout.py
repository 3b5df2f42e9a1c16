"""The HTML report of a parallel run shows the layout's totals, not only one device's trace
(new-user audit, session 8: report.html gave the micro-batch trace's tokens/s and energy)."""

import json
import re

from cosim.cli import main
from cosim.cli._common import si


def _summary(html: str) -> dict:
    table = re.search(r'<table id="summary">(.*?)</table>', html, re.S).group(1)
    cells = re.findall(r"<tr><td>(.*?)</td><td[^>]*>(.*?)</td></tr>", table)
    return {k.replace("&#39;", "'"): v for k, v in cells}


def test_parallel_run_report_html_shows_the_layout_totals(tmp_path, capsys):
    # llama3_70b on 8 H100s as 8 pipeline stages x 4 micro-batches of 16: `cosim plan` ranks it
    # at an 81.1 ms step, 788.9 tokens/s (64 tokens / 81.1 ms); one micro-batch trace is 292.9 tokens/s
    e = tmp_path / "e.yaml"
    e.write_text(f"model: llama3_70b\nsystem: dgx_h100\nparallel: {{tp: 1, pp: 8, microbatches: 4}}\nbatch: 64\n"
                 f"seq: 8192\noutput: {tmp_path / 'out'}\n")
    assert main(["run", str(e)]) == 0
    out = capsys.readouterr().out
    layout_line = next(ln for ln in out.splitlines() if ln.startswith("layout: "))
    par = json.loads((tmp_path / "out" / "report.json").read_text())["totals"]["parallel"]
    html = (tmp_path / "out" / "report.html").read_text()
    s = _summary(html)
    assert s["layout throughput"] == f"{par['layout_tokens_per_s']:,.1f} tokens/s" == "788.9 tokens/s"
    assert f"{par['layout_tokens_per_s']:,.1f} tokens/s" in layout_line
    # step = (4 + 8 - 1) x slowest stage; the tokens/s is the global batch over it
    assert par["step_latency_s"] == 11 * par["slowest_stage_s"]
    assert par["layout_tokens_per_s"] == 64 / par["step_latency_s"]
    assert s["layout step time"].replace("\u2009", " ").startswith("81.1")
    # system energy per step = the trace's energy x tp 1 x dp 1 x 4 micro-batches, over 64 tokens
    assert f"({si(par['system_energy_per_token_j'], 'J')}/token)" in layout_line
    # both parts of the formula (was only "(tp 1 x dp 1 x 4 micro-batch traces)", which left 90.4 J unexplained)
    assert s["system energy per step"].endswith("= 4 x 20.4 J (tp 1 x dp 1 x 4 micro-batch traces) + idle static "
                                                "90.4 J (0.4305 idle device-s x 210 W)"), s["system energy per step"]
    assert s["layout"].startswith("tp1-pp8-ep1-dp1-mb4 (8 devices), global batch 64, 4 micro-batches")
    # the per-device rows say whose they are
    assert s["throughput (one device's micro-batch trace)"] == "292.9 tokens/s"
    assert "global batch 64 on tp1-pp8-ep1-dp1-mb4 (micro-batch 16)" in html


def test_single_device_report_has_no_layout_rows(tmp_path, capsys):
    e = tmp_path / "e.yaml"
    e.write_text(f"model: llama3_8b\nhw: h100_sxm\noutput: {tmp_path / 'out'}\n")
    assert main(["run", str(e)]) == 0
    s = _summary((tmp_path / "out" / "report.html").read_text())
    assert "throughput" in s and not any(k.startswith("layout") for k in s)
