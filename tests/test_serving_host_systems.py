"""Serving: host-time model, multi-device replicas (TP/PP on systems), the vectorised decode
run, bad input, and the published-measurement comparison — numbers a reader can check."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cosim.serving import HostOverhead, serve
from cosim.serving.host import host_for
from cosim.serving.kv_memory import bytes_per_token
from cosim.serving.steptime import DeviceStepCost, StepBatch, Workload, device_step_cost
from hwmodels.collectives import COLLECTIVE_KINDS, estimate_system_ops
from hwmodels.system import load_system
from workloads.builder import build_trace
from workloads.io import InputError
from workloads.models import load_model

MODEL, HW = "llama3_8b", "h100_sxm"
ROOT = Path(__file__).resolve().parents[1]


def _trace(tmp_path, rows, name="t.csv"):
    p = tmp_path / name
    p.write_text("arrival_s,prompt_len,output_len\n" + "".join(f"{a},{pl},{o}\n" for a, pl, o in rows))
    return str(p)


# ---- the vectorised decode run ---------------------------------------------------------

@pytest.mark.parametrize("bucket", [0.0, 0.02])
def test_decode_run_equals_step_by_step(bucket):
    m = device_step_cost(MODEL, HW, bucket=bucket)
    seqs, kv_sum, steps = 7, 7 * 300 + 3, 900  # a run crossing many KV buckets, odd mean KV
    lat, en = m.decode_run(seqs, kv_sum, steps)
    for j in (0, 1, 57, 450, steps - 1):
        kvs = [300 + j + (1 if i < 3 else 0) for i in range(seqs)]  # the per-sequence KVs of step j
        assert sum(kvs) == kv_sum + j * seqs
        c = m.step_cost(StepBatch((), tuple(kvs)))
        assert lat[j] == c.latency_s and en[j] == c.energy_j  # bit for bit


# ---- host model --------------------------------------------------------------------------

def test_eager_prefill_is_max_of_gpu_and_launches_plus_step_time():
    inner = device_step_cost(MODEL, HW, level="analytical")
    host = HostOverhead(cpu_per_kernel_s=1e-3, prefill_step_s=0.002, decode_step_s=0.0005)
    m = host_for(inner, host, inner.hw, "analytical")
    pre = StepBatch(((128, 0, True),), ())
    c = inner.step_cost(pre)
    assert c.kernels > 300  # 32 layers of kernels
    # host-bound at 1 ms per launch: kernels x 1 ms + 2 ms
    assert m.step_cost(pre).latency_s == pytest.approx(c.kernels * 1e-3 + 0.002, rel=1e-12)
    dec = StepBatch((), (1000,) * 8)
    assert m.step_cost(dec).latency_s == pytest.approx(inner.step_cost(dec).latency_s + 0.0005, rel=1e-12)
    # the calibrated host time per kernel when none is given: the H100's eager.cpu_per_kernel, 21.583 us (round 22's
    # re-fit of the host-bound eager decode steps; 20.024 us from the session-16 to round-19 calibrations, 24.535 us in
    # the session-4 to 15 one)
    cal = host_for(inner, HostOverhead(), inner.hw, "analytical")
    assert cal.cpu == pytest.approx(21.583e-6)
    assert cal.step_cost(pre).latency_s == pytest.approx(max(c.latency_s, c.kernels * 21.583e-6), rel=1e-12)


def test_host_time_draws_the_static_power_of_the_waiting_gpu():
    """The GPU waits, powered, while the host works: energy = the GPU step's + static W x host-only s.
    h100_sxm's analytical static power is its calibration's measured idle power, 132.64 W
    (cosim/configs/hw/calibration/h100_sxm.yaml `energy.static`)."""
    inner = device_step_cost(MODEL, HW, level="analytical")
    host = HostOverhead(cpu_per_kernel_s=1e-3, prefill_step_s=0.002, decode_step_s=0.0005, new_shape_s=0.05)
    m = host_for(inner, host, inner.hw, "analytical")
    dec = StepBatch((), (1000,) * 8)
    gpu = inner.step_cost(dec)
    static_w = inner.stall_cost(1.0).energy_j
    assert static_w == pytest.approx(132.64, rel=1e-9)
    c = m.step_cost(dec)  # eager decode: host-bound, kernels x 1 ms + 0.5 ms
    assert c.energy_j == pytest.approx(gpu.energy_j + 132.64 * (c.latency_s - gpu.latency_s), rel=1e-9)
    pre = StepBatch(((100, 0, True),), ())  # a new shape also pays 50 ms of host time
    g = inner.step_cost(pre)
    c = m.step_cost(pre)
    assert c.latency_s == pytest.approx(g.kernels * 1e-3 + 0.002 + 0.05, rel=1e-12)
    assert c.energy_j == pytest.approx(g.energy_j + 132.64 * (c.latency_s - g.latency_s), rel=1e-9)


def test_first_shape_cost_is_paid_once_per_prefill_length():
    inner = device_step_cost(MODEL, HW, level="analytical")
    host = HostOverhead(cpu_per_kernel_s=1e-6, new_shape_s=0.05, warm_lengths=(64,))
    m = host_for(inner, host, inner.hw, "analytical")
    b = StepBatch(((100, 0, True),), ())
    first, again = m.step_cost(b).latency_s, m.step_cost(b).latency_s
    assert first - again == pytest.approx(0.05)
    warm = StepBatch(((64, 0, True),), ())
    assert m.step_cost(warm).latency_s == m.step_cost(warm).latency_s  # listed as warm: never pays


def test_profile_and_host_change_step_times_and_say_so():
    base = serve(MODEL, HW, qps=4, requests=40, level="analytical", seed=1)
    eng = serve(MODEL, HW, qps=4, requests=40, level="analytical", profile="engine", seed=1)
    assert any("eager.cpu_per_kernel 21.58 us" in n for n in eng.notes)
    assert eng.summary["tpot_p50_s"] != base.summary["tpot_p50_s"]
    # no profile and no host: the steps are GPU time of a plain HF model's kernels, and the result says so
    assert any(n.startswith("no profile and no host setting: each step is a plain Hugging Face") for n in base.notes)
    assert not any(n.startswith("no profile and no host setting") for n in eng.notes)
    roof_plain = serve(MODEL, "a100_sxm_80gb", qps=4, requests=10, level="analytical", seed=1)  # uncalibrated: roofline
    assert not any(n.startswith("no profile and no host setting") for n in roof_plain.notes)
    roof = serve(MODEL, HW, qps=4, requests=40, level="roofline", profile="engine", seed=1)
    assert any("host launch time not priced" in n for n in roof.notes)
    with pytest.raises(InputError, match="host.cpu_per_kernel_s"):
        serve(MODEL, HW, qps=4, requests=4, level="roofline", host={"prefill_graphs": False})
    with pytest.raises(InputError, match="host.decode_step"):
        serve(MODEL, HW, qps=4, requests=4, host={"decode_step": 1})
    with pytest.raises(InputError, match="host.decode_step_s"):
        serve(MODEL, HW, qps=4, requests=4, host={"decode_step_s": -1})


def test_one_prompt_per_prefill_step(tmp_path):
    rows = [(0.0, 100, 2)] * 4
    one = serve(MODEL, HW, trace=_trace(tmp_path, rows), max_prefill_seqs=1, bucket=0.0)
    batched = serve(MODEL, HW, trace=_trace(tmp_path, rows), bucket=0.0)
    assert one.timeline["prefills"].max() == 1 and batched.timeline["prefills"].max() == 4
    assert len(set(np.round(one.requests.ttft_s, 12))) == 4  # four prefill steps, four first-token times


# ---- multi-device replicas ---------------------------------------------------------------

def test_tp2_step_is_the_sharded_trace_with_its_allreduces():
    system = load_system("dgx_h100")
    w = Workload(load_model(MODEL), parallel=(("tp", 2),))
    m = DeviceStepCost(w, system.device, "roofline", 0.0, system=system)
    tr = build_trace(MODEL, "decode", 8, 1024, parallel={"tp": 2})
    costs, _ = estimate_system_ops(tr.ops, system, "roofline")
    want = sum(c.latency_s * o.repeat for c, o in zip(costs, tr.ops))
    assert m.step_cost(StepBatch((), (1024,) * 8)).latency_s == pytest.approx(want, rel=1e-12)
    # by hand: 2 all-reduces per layer + the vocab-parallel embedding's = 65 all-reduces of
    # 8 x 4096 bf16 = 64 KiB over 2 ranks (recursive doubling: NCCL base 3.6 us + one 0.47 us
    # step + 65536 B / 450 GB/s), plus the logits all-gather (ring: 3.6 + 0.47 us +
    # 1/2 x 8 x 128256 x 2 B / 450 GB/s)
    coll = sum(c.latency_s * o.repeat for c, o in zip(costs, tr.ops) if o.kind in COLLECTIVE_KINDS)
    ar = 3.6e-6 + 0.47e-6 + 65536 / 450e9
    ag = 3.6e-6 + 0.47e-6 + 0.5 * 8 * 128256 * 2 / 450e9
    assert coll == pytest.approx(65 * ar + ag, rel=1e-9)


def test_tp_splits_kv_per_device_and_serve_runs_on_a_system():
    w1 = Workload(load_model(MODEL))
    w2 = Workload(load_model(MODEL), parallel=(("tp", 2),))
    # 32 layers x (K, V) x 8 KV heads x 128 x 2 B = 131,072 B/token; TP2 keeps 4 heads a device
    assert bytes_per_token(w1) == 131072 and bytes_per_token(w2) == 65536
    one = serve(MODEL, HW, qps=2, requests=30, prompt_len=512, output_len=64, seed=4)
    two = serve(MODEL, "dgx_h100", parallel={"tp": 2}, qps=2, requests=30, prompt_len=512, output_len=64, seed=4)
    assert 0.5 < two.summary["tpot_p50_s"] / one.summary["tpot_p50_s"] < 0.6  # half the weights + all-reduces
    assert any("parallel tp2" in n and "dgx_h100" in n for n in two.notes)
    cap1, cap2 = one.capacity["replica0"], two.capacity["replica0"]
    assert cap2.bytes_per_token == cap1.bytes_per_token / 2


def test_system_layout_errors_name_the_field():
    with pytest.raises(InputError, match="parallel.*needs 16 devices.*dgx_h100 has 8"):
        serve(MODEL, "dgx_h100", parallel={"tp": 16}, qps=1, requests=2)
    with pytest.raises(InputError, match="parallel.*dp, ep and microbatches"):
        serve(MODEL, "dgx_h100", parallel={"tp": 2, "dp": 2}, qps=1, requests=2)
    with pytest.raises(InputError, match="parallel: hw 'dgx_h100' is a system"):
        serve(MODEL, "dgx_h100", qps=1, requests=2)
    with pytest.raises(InputError, match="parallel"):
        serve(MODEL, "dgx_h100", parallel=[2], qps=1, requests=2)


# ---- bad input: the acceptance list, through the CLI ---------------------------------------

def test_cli_bad_inputs_one_error_line_naming_the_field(tmp_path, capsys):
    from cosim.cli import main
    bad = tmp_path / "bad.csv"
    bad.write_text("arrival_s,prompt_len\n0,10\n")
    cases = {
        ("--qps", "-1"): "error: serve: qps: got -1.0; expected a positive number",
        ("--qps", "1", "--requests", "2", "--prompt-len", "100", "--output-len", "9000"):
            "error: serve: output_len: request 0 has prompt 100 + output 9000 = 9100 tokens, so its largest step "
            "holds 9099 tokens of KV (prompt + output - 1: the last output token is never fed back); expected at "
            "most 8192 (llama3_8b's max_context",
        ("--trace", str(bad)): "missing column(s) output_len; expected columns arrival_s, prompt_len, output_len",
        ("--qps", "1", "--requests", "1", "--prompt-len", "100", "--output-len", "10", "--kv-capacity-tokens", "64"):
            "error: serve: kv capacity: request 0 needs 110 tokens of KV but replica replica0 holds 64",
    }
    for args, want in cases.items():
        assert main(["serve", "--model", MODEL, "--hw", HW, *args]) == 2
        err = capsys.readouterr().err.strip()
        assert want in err and len(err.splitlines()) == 1, err


# ---- published measurements (validation/serving_published) ------------------------------

def test_published_vllm_runs_pinned_and_within_tolerance(tmp_path):
    """Our side of validation/serving_published/results/comparison.json, recomputed on the
    same published requests: pinned to the committed values; roofline never above the
    measurement; the calibrated H100 median TPOT within the stated +-25 %."""
    import sys
    sys.path.insert(0, str(ROOT / "validation" / "serving_published"))
    import compare as pub
    committed = {(r["run"], r["model"], r["metric"]): r for r in
                 json.loads((ROOT / "validation/serving_published/results/comparison.json").read_text())}
    runs = {r["id"]: r for r in pub.runs()}
    for rid, name in (("h100_len2048", "analytical"), ("h100_len2048", "roofline"), ("2xa100_tp2_len2048", "roofline")):
        run = runs[rid]
        got = pub.predict(run, pub.trace_of(run, tmp_path / f"{rid}.csv"), pub.models(run)[name])
        for metric in pub.METRICS:
            row = committed[(rid, name, metric)]
            assert got[metric] == pytest.approx(row["cosim"], rel=1e-9)
            if metric != "median_ttft_ms" and name == "roofline":
                assert got[metric] <= run[metric]
        if name == "analytical":
            assert abs(got["median_tpot_ms"] / run["median_tpot_ms"] - 1) <= pub.TOLERANCE
