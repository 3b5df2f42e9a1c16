"""Serving rates over the makespan (first arrival -> last finish, vLLM benchmark_serving's
duration) and over the steady-state windows (goodput over [first, last arrival), throughput
over [first, last finish)): hand-checkable with a step model of 1/64 s per step, whatever
the batch (binary-exact sums), and arrivals every 1/16 s on step boundaries."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from cosim.serving import serve
from cosim.serving.metrics import summarize
from cosim.serving.steptime import StepCost

H = 1 / 64  # seconds per step


class _Fixed:
    notes = ()

    def step_cost(self, batch):
        return StepCost(H, 1.0)


def _run(tmp_path, **kw):
    # 33 requests every 1/16 s (last at 2.0 s), 64 output tokens each: 1 prefill + 63 decode steps = 1.0 s
    p = tmp_path / "t.csv"
    p.write_text("arrival_s,prompt_len,output_len\n" + "".join(f"{i / 16},16,64\n" for i in range(33)))
    return serve("llama3_8b", "h100_sxm", step_model=_Fixed(), trace=str(p), scheduler="chunked",
                 slo_ttft_s=0.5, slo_tpot_s=0.05, **kw)


def test_sustained_load_reads_the_offered_rate_in_the_window_not_the_makespan(tmp_path):
    s = _run(tmp_path).summary
    # every request runs alone in its slots: TTFT = one step, e2e = 64 steps = 1.0 s, SLOs met
    assert s["ttft_p99_s"] == H and s["e2e_p99_s"] == 1.0 and s["slo_attainment"] == 1.0
    # makespan 0 -> 2.0 + 1.0 = 3.0 s: 33 / 3 = 11 req/s, though the system keeps up with all 16 req/s offered
    assert s["makespan_s"] == 3.0 and s["throughput_req_s"] == s["goodput_req_s"] == 11.0
    assert s["throughput_tok_s"] == 33 * 64 / 3.0 == 704.0
    # arrival window [0, 2.0): 32 requests, all meeting the SLOs -> 16 req/s = the offered rate
    assert s["arrival_window_s"] == 2.0 and s["goodput_window_req_s"] == 16.0
    # departure window [1.0, 3.0): 32 finishes -> 16 req/s, 32 * 64 / 2 = 1024 output tok/s
    assert s["departure_window_s"] == 2.0 and s["throughput_window_req_s"] == 16.0
    assert s["throughput_window_tok_s"] == 1024.0


def test_overload_window_throughput_is_the_capacity_and_goodput_counts_slo_misses(tmp_path):
    # 8 sequences at most: slot j serves requests j, j+8, ...; request 8k+j starts at j/16 + k (one
    # 1.0 s request per slot at a time), so capacity = 8 req/s < 16 offered, and TTFT = k/2 + 1/64
    r = _run(tmp_path, max_num_seqs=8)
    s, df = r.summary, r.requests
    k = df["rid"] // 8
    assert list(df["ttft_s"]) == list(k / 2 + H)
    assert s["slo_attainment"] == 8 / 33  # only k = 0 meets TTFT <= 0.5 s
    # last request (32 = 8*4 + 0) starts at 4.0, finishes 5.0: makespan figures 33/5 and 8/5
    assert s["makespan_s"] == 5.0 and s["throughput_req_s"] == 6.6 and s["goodput_req_s"] == 1.6
    # arrival window [0, 2.0): the 8 SLO-meeting requests / 2.0 s
    assert s["goodput_window_req_s"] == 4.0
    # departure window [1.0, 5.0): 32 finishes / 4.0 s = 8 req/s, the capacity (the makespan read 6.6)
    assert s["departure_window_s"] == 4.0 and s["throughput_window_req_s"] == 8.0
    assert s["throughput_window_tok_s"] == 8.0 * 64


def test_one_instant_has_no_window_and_says_so():
    df = pd.DataFrame({"arrival_s": [0.0, 0.0], "e2e_s": [1.0, 1.0], "ttft_s": [0.1, 0.1], "tpot_s": [0.01, 0.01],
                       "queueing_s": [0.0, 0.0], "output_len": [10, 10], "preemptions": [0, 0]})
    s = summarize(df, 1.0, None, None)
    assert s["arrival_window_s"] == 0.0 and s["departure_window_s"] == 0.0
    assert math.isnan(s["goodput_window_req_s"]) and math.isnan(s["throughput_window_req_s"])
    assert s["throughput_req_s"] == 2.0  # the makespan figure still exists


def test_format_names_both_time_bases(tmp_path):
    text = _run(tmp_path).format()
    assert "over the makespan (3.00 s, first arrival to last finish): throughput 11.00 req/s" in text
    assert "goodput 16.00 req/s over the 2.00 s from first to last arrival" in text
    assert "throughput 16.00 req/s, 1,024 output tok/s over the 2.00 s from first to last finish" in text


@pytest.mark.parametrize("metric", ["goodput_window_req_s", "throughput_window_tok_s"])
def test_sweep_metrics_include_the_window_figures(metric):
    from cosim.dse.evaluate import METRIC_NAMES
    from cosim.dse.spec import METRICS
    assert metric in METRIC_NAMES and metric in METRICS
