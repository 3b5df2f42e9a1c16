"""Serving rates over the makespan (first arrival -> last finish, vLLM benchmark_serving's
duration) and without the drain (goodput over [first, last arrival), throughput over the steady
window [first finish, last arrival)): hand-checkable with a step model of 1/64 s per step,
whatever the batch (binary-exact sums), and arrivals every 1/16 s on step boundaries."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from cosim.serving import serve
from cosim.serving.metrics import MIN_WINDOW_S, ServeResult, completed_between, has_window, summarize
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
    # steady window (first finish 1.0, last finish by the last arrival 2.0]: 16 finishes (requests 1..16);
    # steps ending at 65/64 .. 128/64 s each emit one token for each of the 16 requests running -> 1024 tokens
    assert (s["steady_start_s"], s["steady_end_s"], s["steady_window_s"]) == (1.0, 2.0, 1.0)
    assert s["throughput_window_req_s"] == 16.0 and s["throughput_window_tok_s"] == 1024.0


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
    # steady window (1.0, 2.0]: requests 1..7 (1.0625 .. 1.4375) and 8 (2.0) finish in it, 8 run in every
    # step -> 8 req/s and
    # 8 * 64 = 512 tok/s, the capacity (the makespan read 6.6 req/s, 422.4 tok/s)
    assert s["steady_window_s"] == 1.0 and s["throughput_window_req_s"] == 8.0
    assert s["throughput_window_tok_s"] == 512.0 and s["throughput_tok_s"] == 422.4


def test_no_window_is_nan_and_says_so(tmp_path):
    df = pd.DataFrame({"arrival_s": [0.0, 0.0], "e2e_s": [1.0, 1.0], "ttft_s": [0.1, 0.1], "tpot_s": [0.01, 0.01],
                       "queueing_s": [0.0, 0.0], "output_len": [10, 10], "preemptions": [0, 0]})
    s = summarize(df, 1.0, None, None)
    assert s["arrival_window_s"] == 0.0 and s["steady_window_s"] == 0.0
    assert math.isnan(s["goodput_window_req_s"]) and math.isnan(s["throughput_window_req_s"])
    assert s["throughput_req_s"] == 2.0  # the makespan figure still exists
    # a run whose last request arrives before the first finishes: NaN throughput, and a note says why
    p = tmp_path / "t.csv"
    p.write_text("arrival_s,prompt_len,output_len\n0,16,64\n0.5,16,64\n")
    r = serve("llama3_8b", "h100_sxm", step_model=_Fixed(), trace=str(p))
    # no SLO given: goodput is undefined (NaN, session 13; it read 2.0 req/s, every request "meeting" no SLO)
    assert math.isnan(r.summary["throughput_window_tok_s"]) and math.isnan(r.summary["goodput_window_req_s"])
    # request 0 finishes after its 64 steps plus request 1's prefill step (continuous: prefill first) = 65/64 s
    assert r.summary["steady_start_s"] == 65 / 64
    assert any(n.startswith("no steady window: no request finished after the first (1.016 s) and by the last "
                            "arrival (0.500 s)") for n in r.notes)
    assert "throughput n/a (no second finish by the last arrival)" in r.format()


def test_timeline_tokens_add_up_on_the_fast_path():
    # roofline steps take the fast path (runs of decode steps, one timeline row each): every output token is
    # in the timeline once, and tokens_between over the whole run counts them all
    from cosim.serving.metrics import tokens_between
    r = serve("llama3_8b", "h100_sxm", qps=20, requests=60, seed=3)
    tl = r.timeline
    assert (tl["steps"] > 1).any()
    total = int(r.requests["output_len"].sum())
    assert tl["tokens"].sum() == total
    assert tokens_between(tl, 0.0, math.inf) == pytest.approx(total, rel=1e-12)
    mid = float(r.requests["arrival_s"].median())
    assert tokens_between(tl, 0.0, mid) + tokens_between(tl, mid, math.inf) == pytest.approx(total, rel=1e-12)


def test_format_names_both_time_bases(tmp_path):
    text = _run(tmp_path).format()
    assert "over the makespan (3.00 s, first arrival to last finish): throughput 11.00 req/s" in text
    assert ("without the drain: goodput 16.00 req/s over the 2.00 s from first to last arrival; throughput "
            "16.00 req/s, 1,024 output tok/s over (first finish 1.00 s, last finish by the last arrival 2.00 s]") in text


@pytest.mark.parametrize("metric", ["goodput_window_req_s", "throughput_window_tok_s"])
def test_sweep_metrics_include_the_window_figures(metric):
    from cosim.dse.evaluate import METRIC_NAMES
    from cosim.dse.spec import METRICS
    assert metric in METRIC_NAMES and metric in METRICS


def _frame(arrival, e2e, ok_ttft=True):
    n = len(arrival)
    return pd.DataFrame({"arrival_s": arrival, "e2e_s": e2e, "ttft_s": [0.1 if ok_ttft else 9.0] * n,
                         "tpot_s": [0.01] * n, "queueing_s": [0.0] * n, "output_len": [10] * n,
                         "preemptions": [0] * n})


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 400), d_exp=st.integers(-8, 2), s_mult=st.integers(1, 64))
def test_even_arrivals_constant_service_read_one_over_d_without_the_drain(n, d_exp, s_mult):
    # N arrivals every d s (a power of two: exact sums), each served in s = m * d / 4 s, all SLOs met:
    # goodput over the arrivals reads 1 / d exactly; finishes s + i d in (first finish s, last finish by the
    # last arrival (N-1) d] read 1 / d too, whatever s / d; the makespan reads N / ((N - 1) d + s), below 1 / d
    # exactly when s > d
    d = 2.0 ** d_exp
    s_e2e = s_mult * d / 4
    s = summarize(_frame([i * d for i in range(n)], [s_e2e] * n), 1.0, 0.5, None)
    assert s["goodput_window_req_s"] == 1 / d
    assert s["throughput_req_s"] == pytest.approx(n / ((n - 1) * d + s_e2e), rel=1e-12)
    assert (s["throughput_req_s"] < 1 / d) == (s_e2e > d)
    if s_e2e + d <= (n - 1) * d:  # a second finish by the last arrival
        assert s["throughput_window_req_s"] == pytest.approx(1 / d, rel=1e-12)
    else:
        assert math.isnan(s["throughput_window_req_s"])


@pytest.mark.parametrize("n, old", [(3, 4 / 3), (11, 20 / 19), (101, 200 / 199)])
def test_service_not_a_whole_number_of_gaps_reads_the_offered_rate(n, old):
    # arrivals every 1 s, 0.5 s service (offered 1 req/s): finishes at 0.5, 1.5, ..; the last by the last
    # arrival n - 1 is n - 1.5, so the window (0.5, n - 1.5] holds n - 2 finishes over n - 2 s -> 1.0.
    # The old window [0.5, n - 1) counted n - 1 finishes over n - 1.5 s (`old`: 1.3333, 1.0526, 1.005)
    s = summarize(_frame([float(i) for i in range(n)], [0.5] * n), 1.0, 0.5, None)
    assert (s["steady_start_s"], s["steady_end_s"]) == (0.5, n - 1.5)
    assert s["throughput_window_req_s"] == 1.0 != old


@settings(max_examples=60, deadline=None)
@given(arr=st.lists(st.floats(0, 100, allow_nan=False), min_size=2, max_size=60),
       e2e=st.lists(st.floats(0.001, 50, allow_nan=False), min_size=60, max_size=60))
def test_window_counts_whole_goodput_requests_and_bounded_throughput_progress(arr, e2e):
    # goodput counts whole requests; the steady throughput counts output progress (session 14): at least the
    # requests run wholly inside (a, b], at most every request with a token in it
    df = _frame(sorted(arr), e2e[:len(arr)])
    s = summarize(df, 1.0, 0.5, None)
    if s["arrival_window_s"] >= MIN_WINDOW_S:
        k = s["goodput_window_req_s"] * s["arrival_window_s"]
        assert abs(k - round(k)) < 1e-9 and 0 <= round(k) <= len(arr) - 1
    if s["steady_window_s"] >= MIN_WINDOW_S:
        a, b = s["steady_start_s"], s["steady_end_s"]
        k = s["throughput_window_req_s"] * s["steady_window_s"]
        fin = df["arrival_s"] + df["e2e_s"]
        first = (df["arrival_s"] + df["ttft_s"]).clip(upper=fin)
        inside = int(((first > a) & (fin <= b)).sum())
        touching = int(((first <= b) & (fin > a)).sum())
        assert inside - 1e-9 <= k <= touching + 1e-9 and touching <= len(arr) - 1
    miss = summarize(_frame(sorted(arr), e2e[:len(arr)], ok_ttft=False), 1.0, 0.5, None)["goodput_window_req_s"]
    assert miss == 0.0 if s["arrival_window_s"] >= MIN_WINDOW_S else math.isnan(miss)


@settings(max_examples=80, deadline=None)
@given(first=st.lists(st.floats(0, 100, allow_nan=False), min_size=1, max_size=40),
       dur=st.lists(st.floats(0, 50, allow_nan=False), min_size=40, max_size=40),
       n=st.lists(st.integers(1, 600), min_size=40, max_size=40), m=st.floats(-10, 160, allow_nan=False))
def test_completed_between_adds_up_to_the_request_count(first, dur, n, m):
    # over all time every request counts 1; splitting a window at any m adds up
    k = len(first)
    f, fin, nn = np.array(first), np.array(first) + np.array(dur[:k]), np.array(n[:k])
    assert completed_between(f, fin, nn, -math.inf, math.inf) == pytest.approx(k, rel=1e-12)
    whole = completed_between(f, fin, nn, -1.0, 200.0)
    assert completed_between(f, fin, nn, -1.0, m) + completed_between(f, fin, nn, m, 200.0) == pytest.approx(whole, rel=1e-12)


def _bursts(periods=6):
    # 4 requests per 1 s period (a batch admitted together at j + 1/4, 4 output tokens each): one finishes at
    # j + 7/8, three at j + 1 -- like the continuous scheduler's bursts (audit: 10 then 246 of 256, 0.19 s
    # apart, every 8.6 s). Arrivals every 0.2 s up to 4.6 s, so load is offered past the 4th burst
    rows = []
    for j in range(periods):
        for i in range(4):
            arr = (4 * j + i) / 5
            fin = j + (0.875 if i == 0 else 1.0)
            rows.append((arr, fin - arr, j + 0.25 - arr))
    df = pd.DataFrame(rows, columns=["arrival_s", "e2e_s", "ttft_s"])
    return df.assign(tpot_s=0.01, queueing_s=0.0, output_len=4, preemptions=0)


def test_bursty_finishes_read_the_capacity_not_a_burst_more():
    """Session 14 audit: finishes in bursts read 43.6 req/s for a capacity of 29.8 (serve --qps 100
    --requests 3000, 1024/256 tokens on h100_sxm): the window (first finish, last finish by the last
    arrival] opened at a burst's first finish and closed at a later burst's last one, so it held ~3 bursts
    over ~2 periods."""
    s = summarize(_bursts(), 1.0, None, None)
    assert (s["steady_start_s"], s["steady_end_s"]) == (0.875, 4.0)
    # whole finishes in (0.875, 4.0]: 3 + 4 + 4 + 4 = 15 over 3.125 s = 4.8 req/s (the old figure) for a capacity
    # of 4 req/s. Progress: the 3 requests of burst 0 finishing at 1.0 (first token 0.25, tokens 0.25 s apart at
    # 0.25, 0.5, 0.75, 1.0) make 1 of their 4 tokens in the window: 3/4 of a request; bursts 1-3 run inside: 12
    assert s["throughput_window_req_s"] == 12.75 / 3.125 == 4.08


def test_a_window_below_a_nanosecond_is_no_window():
    """Arrivals 5e-324 s apart (hypothesis found them) made the arrival-window goodput 1 / 5e-324 = inf."""
    s = summarize(_frame([0.0, 5e-324], [1.0, 1.0]), 1.0, 0.5, None)
    assert math.isnan(s["goodput_window_req_s"]) and s["arrival_window_s"] < MIN_WINDOW_S


def test_one_window_threshold_for_the_figures_the_notes_and_the_text():
    """A sub-ns window printed "goodput nan req/s over the 0.00 s" (the text tested > 0, the figure >= 1 ns)."""
    assert not has_window(MIN_WINDOW_S / 2) and has_window(MIN_WINDOW_S) and not has_window(float("nan"))
    df = _frame([0.0, 5e-324, 5e-324], [1.0, 1.0, 1.0])
    s = summarize(df, 1.0, 0.5, None)
    s.update(level_used="roofline")

    class _C:
        model, hw, scheduler, level, qps, trace = "m", "h", "chunked", "roofline", None, "t.csv"
    text = ServeResult(_C(), df, s, None, {}).format()
    assert "goodput n/a (one arrival instant)" in text and "nan" not in text.split("without the drain:")[1]


def test_without_an_slo_goodput_and_attainment_are_nan_and_say_so(tmp_path):
    """Was "goodput 11.00 req/s (SLO attainment 100.0 %)" and slo_attainment 1.0 with no SLO at all."""
    import json

    from cosim.serving.output import write_outputs
    p = tmp_path / "t.csv"
    p.write_text("arrival_s,prompt_len,output_len\n" + "".join(f"{i / 16},16,64\n" for i in range(33)))
    r = serve("llama3_8b", "h100_sxm", step_model=_Fixed(), trace=str(p), scheduler="chunked")
    s = r.summary
    assert all(math.isnan(s[k]) for k in ("slo_attainment", "goodput_req_s", "goodput_window_req_s"))
    assert s["throughput_req_s"] == 11.0  # the same 33 requests over 3.0 s as with SLOs
    text = r.format().split("\nnote: ")[0]
    assert "goodput n/a (no SLO given)" in text and "SLO attainment" not in text and "nan" not in text.lower()
    assert any(n.startswith("no SLO given (slo_ttft_s / slo_tpot_s") for n in r.notes)
    write_outputs(r, tmp_path / "out")
    doc = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert doc["summary"]["slo_attainment"] is None and doc["summary"]["goodput_req_s"] is None
    assert any("no SLO given" in n for n in doc["notes"])


@pytest.mark.parametrize("scheduler", ["continuous", "chunked"])
def test_saturated_run_window_rate_is_the_burst_capacity(scheduler):
    """The audit's run (llama3_8b on h100_sxm, 1024 + 256 tokens, 100 req/s offered, 3000 requests): the
    continuous scheduler finishes requests in bursts of 256 (max_num_seqs) every P s, so the capacity is
    256 / P (29.78 req/s); the window figure read 43.61 (whole finishes), now 29.91. The chunked scheduler's
    finishes are spread out: it read 30.43 and reads 30.22. Both agree with the window's token rate / 256."""
    r = serve("llama3_8b", "h100_sxm", qps=100, requests=3000, prompt_len=1024, output_len=256,
              scheduler=scheduler, slo_ttft_s=0.5, slo_tpot_s=0.05)
    s, df = r.summary, r.requests
    per_token = s["throughput_window_tok_s"] / 256
    assert s["throughput_window_req_s"] == pytest.approx(per_token, rel=0.015)
    if scheduler == "continuous":
        fin = np.sort((df["arrival_s"] + df["e2e_s"]).to_numpy())
        big = np.unique(fin[255::256][:4])  # the last finish of each burst of 256 (every request finishes in one)
        period = float(np.diff(big).mean())
        assert np.ptp(np.diff(big)) < 1e-6 * period  # strictly periodic bursts
        assert s["throughput_window_req_s"] == pytest.approx(256 / period, rel=0.005)
        assert 256 / period == pytest.approx(29.78, abs=0.01)
        # the old count: every finish in (first finish, last finish by the last arrival]
        a, b = s["steady_start_s"], s["steady_end_s"]
        old = ((fin > a) & (fin <= b)).sum() / (b - a)
        assert old == pytest.approx(43.61, abs=0.01) and old > 1.4 * 256 / period
