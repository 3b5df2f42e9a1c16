"""Serving: hand-checkable numbers for generate() and the request-level engine."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import cosim
from cosim.serving import serve, generate
from cosim.serving.engine import Replica
from cosim.serving.kv_memory import bytes_per_token
from cosim.serving.steptime import StepBatch, Workload, bucketed, device_step_cost
from workloads.io import InputError

MODEL, HW = "llama3_8b", "h100_sxm"


def _trace(tmp_path, rows, name="t.csv"):
    p = tmp_path / name
    p.write_text("arrival_s,prompt_len,output_len\n" + "".join(f"{a},{pl},{o}\n" for a, pl, o in rows))
    return str(p)


# ---- generate ------------------------------------------------------------------------

@pytest.mark.parametrize("recipe", [None, "kivi2"])
def test_generate_matches_one_trace_per_token(recipe):
    g = generate(MODEL, HW, 300, 40, batch=2, recipe=recipe)
    pre = cosim.simulate(cosim.build_trace(MODEL, phase="prefill", batch=2, seq=300, recipe=recipe), HW)
    assert g.ttft_s == pytest.approx(pre.total_latency_s, rel=1e-12)
    ref = [cosim.simulate(cosim.build_trace(MODEL, phase="decode", batch=2, seq=300 + j, recipe=recipe), HW)
           for j in range(1, 40)]
    np.testing.assert_allclose(g.decode_times_s, [r.total_latency_s for r in ref], rtol=1e-12)
    np.testing.assert_allclose(g.decode_energy_j, [r.total_energy_j for r in ref], rtol=1e-12)
    assert g.tpot_s == pytest.approx(np.mean([r.total_latency_s for r in ref]), rel=1e-12)
    assert g.total_s == pytest.approx(g.ttft_s + sum(r.total_latency_s for r in ref), rel=1e-12)


def test_generate_vectorised_path_is_used_and_kv_grows():
    g = generate(MODEL, HW, 1000, 500, batch=16)
    assert any("one vectorised roofline call" in n for n in g.notes)
    assert np.all(np.diff(g.decode_times_s) > 0)  # every step reads one more token of KV


def test_generate_bad_input_names_field():
    with pytest.raises(InputError, match="output_len"):
        generate(MODEL, HW, 10, 0)


# ---- step-time model -------------------------------------------------------------------

def test_mixed_step_is_the_sum_of_its_priced_ops():
    m = device_step_cost(MODEL, HW)
    pre = cosim.simulate(cosim.build_trace(MODEL, phase="prefill", batch=1, seq=777), HW)
    assert m.step_cost(StepBatch(prefill=((777, 0, True),))).latency_s == pytest.approx(pre.total_latency_s, rel=1e-12)
    dec = cosim.simulate(cosim.build_trace(MODEL, phase="decode", batch=5, seq=900), HW)
    # KV lengths averaging 900: attention reads batch x mean KV, exactly the uniform batch's bytes
    got = m.step_cost(StepBatch(decode_kv=(800, 850, 900, 950, 1000))).latency_s
    assert got == pytest.approx(dec.total_latency_s, rel=1e-12)


@given(st.integers(1, 10**7), st.sampled_from([0.01, 0.02, 0.05]))
def test_bucketing_error_is_bounded(x, r):
    b = bucketed(x, r)
    # half a geometric step, plus rounding the grid point to a whole token and to x's alignment (at most 4 tokens:
    # a multiple of 8 stays one, any other length stays none)
    assert (x <= 64 and b == x) or abs(b / x - 1) <= math.sqrt(1 + r) - 1 + 5.0 / x + 1e-12
    assert (b % 8 == 0) == (x % 8 == 0) and (x <= 64 or b > 64)


# ---- the engine: acceptance checks -------------------------------------------------------

def test_single_request_ttft_is_prefill_and_tpot_is_decode(tmp_path):
    res = serve(MODEL, HW, trace=_trace(tmp_path, [(0.0, 512, 64)]), bucket=0.0)
    g = generate(MODEL, HW, 512, 64)
    row = res.requests.iloc[0]
    assert row["ttft_s"] == pytest.approx(g.ttft_s, rel=1e-12)
    assert row["tpot_s"] == pytest.approx(g.tpot_s, rel=1e-12)
    assert row["e2e_s"] == pytest.approx(g.total_s, rel=1e-12)


def test_fixed_kv_capacity_admits_exactly_what_fits(tmp_path):
    # 10 blocks of 16 tokens; each 32-token prompt needs 2 blocks -> 5 admitted in the first step
    rows = [(0.0, 32, 1)] * 12
    res = serve(MODEL, HW, trace=_trace(tmp_path, rows), kv_capacity_tokens=160, block_size=16)
    assert res.timeline["prefills"].iloc[0] == 5
    # static batching reserves prompt + output: 32 + 16 = 48 tokens = 3 blocks -> 3 per batch
    res = serve(MODEL, HW, trace=_trace(tmp_path, [(0.0, 32, 16)] * 7), kv_capacity_tokens=160,
                block_size=16, scheduler="static")
    assert res.timeline["prefills"].iloc[0] == 3
    assert res.timeline["running"].max() <= 3


def test_chunked_prefill_takes_ceil_L_over_B_steps(tmp_path):
    for L, B in ((1000, 256), (512, 512), (513, 512)):
        res = serve(MODEL, HW, trace=_trace(tmp_path, [(0.0, L, 1)]), scheduler="chunked", max_batched_tokens=B)
        assert res.summary["steps"] == math.ceil(L / B)
    res = serve(MODEL, HW, trace=_trace(tmp_path, [(0.0, 1000, 5)]), scheduler="chunked", max_batched_tokens=256)
    assert res.summary["steps"] == 4 + 4  # then one decode step per further token


def test_kivi2_raises_admitted_batch_by_its_stored_rate_at_the_requests_context(tmp_path):
    """Static batches reserve prompt + output = 1,024 tokens a request. bf16: 64 blocks. KIVI-2's cache is largest
    at 1,008 tokens (its 128-token fp16 residual full, before it is quantized: the decode trace there holds
    37,552,128 B), and blocks are not given back while a request runs: ceil(37,552,128 / 26,240) = 1,432 of the
    capacity's tokens (its 4,096-token rate, 26,240 B) = 90 blocks (session 36; every request was charged the
    4,096-token rate before: 64 blocks)."""
    rows = [(0.0, 64, 960)] * 150
    got = {}
    for recipe, blocks_per_request in ((None, 64), ("kivi2", 90)):
        res = serve(MODEL, HW, trace=_trace(tmp_path, rows), recipe=recipe, scheduler="static",
                    memory_fraction=0.25, max_batched_tokens=16384, max_num_seqs=1000)
        cap = res.capacity["replica0"]
        admitted = int(res.timeline["prefills"].iloc[0])
        assert admitted == cap.blocks // blocks_per_request
        got[recipe] = (admitted, cap)
    ratio = bytes_per_token(Workload(cosim.load_model(MODEL))) / \
        bytes_per_token(Workload(cosim.load_model(MODEL), recipe="kivi2"))
    assert (got["kivi2"][1].bytes_per_token, ratio) == (26240, pytest.approx(131072 / 26240))
    assert cosim.build_trace(MODEL, "decode", 1, 1008, recipe="kivi2").meta["footprint"]["kv_cache"] == 37552128
    assert got["kivi2"][0] / got[None][0] == pytest.approx(131072 * 1024 / 37552128, rel=0.05)


@pytest.mark.parametrize("opts", [
    dict(qps=20, requests=150, seed=3),
    # the host model's decode runs (graph replay: the inner run plus a constant per step)
    dict(qps=20, requests=60, prompt_len=300, output_len=120, level="analytical", profile="engine",
         host={"prefill_step_s": 0.003, "decode_step_s": "0.5 ms"}, seed=3)])
def test_fast_path_equals_step_by_step(opts, monkeypatch):
    fast = serve(MODEL, HW, **opts).requests
    monkeypatch.setattr(Replica, "_can_skip", lambda self, plan: False)
    slow = serve(MODEL, HW, **opts).requests
    for col in ("ttft_s", "tpot_s", "e2e_s"):
        np.testing.assert_allclose(fast[col], slow[col], rtol=1e-9)


def test_preemption_recompute_and_swap_finish_everything():
    opts = dict(qps=50, requests=60, prompt_len=200, output_len=300, kv_capacity_tokens=4000, seed=1)
    rec = serve(MODEL, HW, **opts)
    swap = serve(MODEL, HW, preemption="swap", **opts)
    assert rec.summary["preemptions"] > 0 and swap.summary["preemptions"] > 0
    assert len(rec.requests) == len(swap.requests) == 60


def test_speculative_decoding_tokens_per_step():
    # one request: steps = 1 prefill + decode steps each emitting 1 + accepted prefix
    k, a, n = 4, 0.6, 4001
    res = serve(MODEL, HW, qps=1, requests=1, prompt_len=100, output_len=n, scheduler="continuous",
                speculative={"draft_len": k, "acceptance": a, "draft_weights": "mxfp4"})
    expected = (1 - a ** (k + 1)) / (1 - a)
    assert (n - 1) / (res.summary["steps"] - 1) == pytest.approx(expected, rel=0.05)


def test_disaggregation_and_offload_run():
    d = serve(MODEL, HW, qps=10, requests=100, scheduler="disaggregated", seed=2)
    assert set(d.requests["replica"]) == {"prefill0"} and set(d.requests["decode_replica"]) == {"decode0"}
    o = serve(MODEL, HW, qps=50, requests=60, prompt_len=200, output_len=300, kv_capacity_tokens=4000,
              offload={"host_capacity": "8 GiB"}, seed=1)
    assert o.summary["preemptions"] == 0 and o.timeline["kv_host_used"].max() > 0


# ---- bad input ------------------------------------------------------------------------

def test_bad_inputs_name_the_field(tmp_path):
    with pytest.raises(InputError, match="qps"):
        serve(MODEL, HW, qps=-1)
    with pytest.raises(InputError, match="output_len.*context_window"):
        serve(MODEL, HW, qps=1, requests=2, prompt_len=100, output_len=9000, context_window=8192)
    bad = tmp_path / "bad.csv"
    bad.write_text("arrival_s,prompt_len\n0,10\n")
    with pytest.raises(InputError, match="missing column.*output_len"):
        serve(MODEL, HW, trace=str(bad))
    with pytest.raises(InputError, match="kv capacity"):
        serve(MODEL, HW, qps=1, requests=1, prompt_len=100, output_len=10, kv_capacity_tokens=64)
    with pytest.raises(InputError, match="scheduler"):
        serve(MODEL, HW, qps=1, scheduler="fifo")
    with pytest.raises(InputError, match="speculative.acceptance"):
        serve(MODEL, HW, qps=1, speculative={"acceptance": 1.5, "draft_weights": "mxfp4"})


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1e4, allow_nan=False), st.integers(1, 10**5), st.integers(1, 10**5)),
                min_size=1, max_size=20))
def test_trace_parser_round_trips(tmp_path_factory, rows):
    from cosim.serving.arrivals import load_trace
    p = tmp_path_factory.mktemp("tr") / "t.csv"
    p.write_text("arrival_s,prompt_len,output_len\n" + "".join(f"{a!r},{b},{c}\n" for a, b, c in rows))
    got = load_trace(str(p))
    assert sorted((r.arrival_s, r.prompt_len, r.output_len) for r in got) == sorted(rows)
    assert [r.arrival_s for r in got] == sorted(r.arrival_s for r in got)


def test_cli_serve_and_generate(tmp_path, capsys):
    from cosim.cli import main
    assert main(["generate", "--model", MODEL, "--hw", HW, "--prompt-len", "128", "--output-len", "16"]) == 0
    assert "TTFT" in capsys.readouterr().out
    assert main(["serve", "--model", MODEL, "--hw", HW, "--qps", "5", "--requests", "50",
                 "--out", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o" / "requests.csv").is_file() and (tmp_path / "o" / "latency_cdf.png").is_file()
    assert main(["serve", "--model", MODEL, "--hw", HW, "--qps", "-2"]) == 2
    assert "error: serve: qps" in capsys.readouterr().err


def test_experiment_and_sweep_serve_section(tmp_path):
    from cosim.experiment import experiment_from_dict, run_experiment
    from cosim.dse.spec import sweep_from_dict, apply_point
    base = {"model": MODEL, "hw": HW, "serve": {"qps": 4, "requests": 30, "slo_ttft_s": 0.5}}
    rep = run_experiment(experiment_from_dict(base), accuracy=False)
    assert rep.meta["serve"]["summary"]["requests"] == 30
    with pytest.raises(InputError, match="serve.*qps"):
        experiment_from_dict({**base, "serve": {"qps": -3}})
    sw = sweep_from_dict({"base": base, "axes": [{"grid": {"serve.qps": [2, 8]}}],
                          "objectives": {"goodput_req_s": "max"}})
    cfg = apply_point(sw.base.config, {"serve.qps": 8})
    assert cfg["serve"]["qps"] == 8 and sw.base.config["serve"]["qps"] == 4
