"""Session 14 serving audit fixes: transfer stalls draw static power; the static scheduler's batch;
TPOT of one-token outputs; which memory a fit uses."""

from __future__ import annotations

import pytest

from cosim.serving import serve

MODEL = "llama3_8b"


def _trace(tmp_path, n=8, prompt=496, output=500):
    p = tmp_path / "t.csv"
    p.write_text("arrival_s,prompt_len,output_len\n" + f"0,{prompt},{output}\n" * n)
    return str(p)


def test_offload_stall_draws_static_power(tmp_path):
    """Audit: with 4096 tokens of KV and 1 GiB offload, 8 x (496 + 500) tokens took 4.45 s instead of 2.43 s
    at the same 903.4 J: the offloaded-KV fetches stalled the steps and drew nothing. The steps are the same
    batches either way, so the extra energy is the h100_sxm file's static power (210 W) x the extra time."""
    t = _trace(tmp_path)
    base = serve(MODEL, "h100_sxm", trace=t).summary
    off = serve(MODEL, "h100_sxm", trace=t, kv_capacity_tokens=4096,
                offload={"host_capacity": "1 GiB", "fetch_fraction": 1.0})
    s = off.summary
    assert s["steps"] == base["steps"] and s["preemptions"] == 0
    stall = s["makespan_s"] - base["makespan_s"]
    assert base["makespan_s"] == pytest.approx(2.431, abs=5e-4) and s["makespan_s"] == pytest.approx(4.445, abs=5e-4)
    # (903.352 J before session 34, when a bucketed length began to keep its alignment to 8 tokens)
    assert base["energy_j"] == pytest.approx(903.385, abs=1e-3)
    assert s["energy_j"] - base["energy_j"] == pytest.approx(210.0 * stall, rel=1e-9)
    assert s["energy_j"] == pytest.approx(1326.395, abs=1e-3)
    assert any("charged the replica's static power over the stall" in n for n in off.notes)


def test_stall_of_a_tp2_replica_draws_both_devices(tmp_path):
    from cosim.serving.steptime import DeviceStepCost, StepBatch
    from cosim.serving import _device, _workload
    from cosim.serving.config import ServeConfig
    from workloads.models import load_model
    cfg = ServeConfig(model=MODEL, hw="dgx_h100", parallel={"tp": 2}, qps=1.0)
    hw, system = _device(cfg)
    steps = DeviceStepCost(_workload(cfg, load_model(MODEL), (("tp", 2),)), hw, system=system)
    steps.step_cost(StepBatch((), (512,) * 4, 1))
    c = steps.stall_cost(0.5)
    # roofline: the device file's static power (210 W for the H100 SXM) on each of the 2 devices
    assert c.latency_s == 0.5 and c.energy_j == pytest.approx(2 * 210.0 * 0.5, rel=1e-12)


def test_static_batches_are_bounded_by_max_num_seqs_and_kv_not_the_8192_token_budget():
    """Audit: the static scheduler's batch was capped at 8 = 8192 // 1024 by the continuous scheduler's
    default step budget (5.80 req/s) though docs/serving.md said it prefills up to max_num_seqs. Now its step
    budget is max_num_seqs x the longest prompt (256 x 1024 = 262,144 tokens, the padded batch HF generate
    runs), whose activations the KV capacity reserves; the batch is then bounded by the KV: 15,921 blocks
    of 16 tokens, each request holding ceil(1280 / 16) = 80 blocks -> 199 requests."""
    kw = dict(qps=100, requests=600, prompt_len=1024, output_len=256, scheduler="static")
    r = serve(MODEL, "h100_sxm", **kw)
    cap = r.capacity["replica0"]
    assert "at 262144 tokens" in cap.source and cap.blocks == 15921
    assert r.timeline["prefills"].max() == 15921 // 80 == 199
    assert any("step token budget 262,144 (max_num_seqs 256 x the longest prompt 1,024)" in n for n in r.notes)
    assert any(n.startswith("static batches: ") and "by the KV cache" in n and "(smallest such batch 199)" in n
               for n in r.notes)
    # a given budget still caps the batch, and the run says so
    small = serve(MODEL, "h100_sxm", max_batched_tokens=8192, **kw)
    assert small.timeline["prefills"].max() == 8192 // 1024 == 8
    assert any("by the step token budget max_batched_tokens = 8,192 tokens (smallest such batch 8)" in n
               for n in small.notes)
    assert r.summary["throughput_req_s"] > 3 * small.summary["throughput_req_s"]


def test_static_whole_batch_prefill_that_leaves_no_kv_room_says_what_to_change(tmp_path):
    from workloads.io import InputError
    with pytest.raises(InputError, match=r"scheduler static prefills a whole batch in one step: max_num_seqs 256 x "
                                         r"the longest prompt 4,096; lower max_num_seqs or give max_batched_tokens"):
        serve(MODEL, "h100_sxm", qps=1, requests=2, prompt_len=4096, output_len=16, scheduler="static")


class _Fixed:
    """1/64 s per step whatever the batch (binary-exact sums)."""
    notes = ()

    def step_cost(self, batch):
        from cosim.serving.steptime import StepCost
        return StepCost(1 / 64, 1.0)


def test_one_token_requests_have_no_tpot_and_leave_the_tpot_statistics(tmp_path):
    """Audit: a one-token output had TPOT 0, which entered the statistics: half the requests with one
    output token halved the TPOT mean. Requests 2 s apart run alone: 65 tokens = 1 prefill + 64 decode steps
    of 1/64 s, TPOT 1/64 s; 1 token: no TPOT (NaN), left out (vLLM benchmark_serving counts output_len > 1)."""
    import math
    p = tmp_path / "t.csv"
    p.write_text("arrival_s,prompt_len,output_len\n" + "".join(f"{2 * i},16,{1 if i % 2 else 65}\n" for i in range(8)))
    r = serve(MODEL, "h100_sxm", step_model=_Fixed(), trace=str(p), slo_tpot_s=1 / 64)
    s, df = r.summary, r.requests
    assert df.loc[df.output_len == 1, "tpot_s"].isna().all() and (df.loc[df.output_len == 65, "tpot_s"] == 1 / 64).all()
    assert s["tpot_mean_s"] == s["tpot_p50_s"] == s["tpot_p99_s"] == 1 / 64  # was 1/128 mean, 0 at p50
    assert (s["tpot_requests"], s["tpot_excluded"]) == (4, 4)
    assert s["slo_attainment"] == 1.0  # no TPOT to miss
    assert "(4 of 8 requests with one output token excluded: no TPOT)" in r.format()
    assert any(n.startswith("TPOT is undefined for the 4 of 8 requests with one output token") for n in r.notes)
    # every request one token: TPOT n/a throughout, never 0
    p.write_text("arrival_s,prompt_len,output_len\n0,16,1\n1,16,1\n")
    one = serve(MODEL, "h100_sxm", step_model=_Fixed(), trace=str(p))
    assert math.isnan(one.summary["tpot_mean_s"]) and math.isnan(one.summary["tpot_p99_s"])
    tpot_row = [ln for ln in one.format().splitlines() if ln.startswith("tpot")][0]
    assert tpot_row.split()[1:5] == ["n/a"] * 4 and "none left" in tpot_row


def test_generate_one_output_token_has_no_tpot(tmp_path, capsys):
    import json
    import math

    from cosim.cli import main
    from cosim.serving.generate import generate
    g = generate(MODEL, "h100_sxm", 128, 1)
    assert math.isnan(g.tpot_s) and any("TPOT is undefined" in n for n in g.notes)
    assert main(["generate", "--model", MODEL, "--hw", "h100_sxm", "--prompt-len", "128", "--output-len", "1",
                 "--out", str(tmp_path / "g.json")]) == 0
    assert "TPOT n/a (output length 1: no token after the first)" in capsys.readouterr().out
    assert json.loads((tmp_path / "g.json").read_text())["tpot_s"] is None
    assert generate(MODEL, "h100_sxm", 128, 3).tpot_s > 0


def test_memory_rule_is_stated_and_vllm_budget_reproducible():
    """Each command says which memory it fits against; serve at memory_fraction 0.9 x measured / file gives
    the KV budget vLLM would take from the measured device total (validation/h100_env.json: 85,017,493,504 B).
    KV blocks = floor((80e9 x f - weights - activations) / (16 x 131,072 B)): 26,337 at 0.9, 28,491 at 0.9564."""
    import json
    from pathlib import Path

    from cosim.plan import plan
    from cosim.serving.generate import generate
    measured = json.loads((Path(__file__).parents[1] / "validation" / "h100_env.json").read_text())["run1"]["total_mem_bytes"]
    assert measured == 85017493504
    base = serve(MODEL, "h100_sxm", qps=1, requests=2)
    assert base.capacity["replica0"].blocks == 26337
    assert any(n.startswith("memory: the engine uses memory_fraction 0.9 of h100_sxm's hbm capacity 80 GB (74.51 GiB, "
                            "the device file's datasheet figure") for n in base.notes)
    vllm = serve(MODEL, "h100_sxm", qps=1, requests=2, memory_fraction=0.9 * measured / 80e9)
    cap = vllm.capacity["replica0"]
    assert cap.blocks == 28491 and "74.51 GiB x 0.956447 -" in cap.source
    assert (cap.blocks * 16 - 421392) / 421392 == pytest.approx(0.0818, abs=5e-4)
    g = generate(MODEL, "h100_sxm", 128, 4)
    assert any(n.startswith("memory rule: the footprint (weights + KV + activations) fits if it uses at most 100 % "
                            "of h100_sxm's hbm capacity 80 GB") for n in g.notes)
    p = plan(MODEL, "dgx_h100", max_devices=1)
    assert any(n.startswith("memory rule: a layout's per-device footprint") for n in p.notes)
