"""Session 15 review leftovers: each figure or list has one source of truth. Each test failed (or
could not run) on the code before its fix."""

import pytest

from cosim import parallel_timing
from cosim.serving.steptime import DeviceStepCost, StepBatch, Workload, device_step_cost
from workloads.models import load_model

MODEL, HW = "llama3_8b", "h100_sxm"


# ---- 1. the serving step's static power: one figure per step model, not a running (J, s) sum ----------

def test_stall_draws_the_calibrated_static_power_before_any_step_is_priced():
    """h100_sxm at level analytical: its calibration's measured idle power, 132.64 W
    (calibration/h100_sxm.yaml `energy.static`), whether or not a step was priced before. The running sum
    answered the device file's 210 W until a step had been priced, 132.64 W after."""
    m = device_step_cost(MODEL, HW, level="analytical")
    assert m.stall_cost(1.0).energy_j == pytest.approx(132.64, rel=1e-9)
    m.step_cost(StepBatch(((300, 0, True),), (700, 900)))
    assert m.stall_cost(0.5).energy_j == pytest.approx(0.5 * 132.64, rel=1e-9)
    # the figure of any step's device ops, by simulate's rule (parallel_timing.device_static_power_w)
    ops = m.workload.trace("prefill", 1, 300).ops
    costs, _ = m._estimate(ops)
    assert parallel_timing.device_static_power_w(ops, costs, m.hw) == pytest.approx(m.static_power_w, rel=1e-12)


def test_the_static_power_is_read_once_not_per_priced_component(monkeypatch):
    """A pp2 replica's idle stage draws static_power_w x the step: the figure is read once for the model
    (the old code re-derived it, and added to the running sum, on every priced component)."""
    from hwmodels.system import load_system
    calls = []
    real = parallel_timing.device_static_power_w
    monkeypatch.setattr(parallel_timing, "device_static_power_w", lambda *a: calls.append(1) or real(*a))
    s = load_system("dgx_h100")
    m = DeviceStepCost(Workload(load_model(MODEL), parallel=(("pp", 2),)), s.device, "roofline", 0.0, system=s)
    for kv in (300, 900, 2000):
        m.step_cost(StepBatch(((128, 0, True),), (kv,) * 4))
    assert len(m._cache) >= 6 and len(calls) == 1
    # roofline: no op reports a static term, so the device file's 210 W (h100_sxm.yaml energy.static_power)
    assert m.static_power_w == 210.0
    one = DeviceStepCost(Workload(load_model(MODEL), parallel=(("pp", 2),)), s.device, "roofline", 0.0, system=s,
                         replica_devices=1)  # the same priced trace, no idle stage
    b = StepBatch((), (1000,) * 8)
    c, c1 = m.step_cost(b), one.step_cost(b)
    assert c.latency_s == c1.latency_s and c.energy_j - c1.energy_j == pytest.approx(210.0 * c.latency_s, rel=1e-12)


# ---- 2 and 3. a replica's step budget is the one it is built with; the static counters are declared fields --

def _static_replica(budget):
    from types import SimpleNamespace

    from cosim.serving.arrivals import RequestSpec
    from cosim.serving.config import ServeConfig
    from cosim.serving.engine import Replica, Request
    from cosim.serving.kv_memory import PagedKV
    cfg = ServeConfig(model=MODEL, hw=HW, scheduler="static", max_num_seqs=8, qps=1.0)
    rep = Replica(SimpleNamespace(env=SimpleNamespace(now=0.0)), "r0", "both", None, PagedKV(1000, 16), cfg,
                  1.0, budget)
    rep.waiting.extend(Request(RequestSpec(i, 0.0, 100, 4)) for i in range(4))
    return rep


def test_static_batch_is_cut_by_the_budget_the_replica_was_built_with():
    """Four waiting prompts of 100 tokens, budget 250: a static batch of 2 (300 > 250), cut by
    max_batched_tokens, counted in the replica's declared StaticBatchCounts. (The replica took
    ServeConfig.token_budget, 8192 here, and serve overwrote it afterwards; its counters were
    attributes set into its __dict__ by the policy.)"""
    from cosim.serving.scheduler import StaticBatchCounts
    rep = _static_replica(250)
    plan = rep.policy.plan(rep)
    assert [c for _, c in plan.prefill] == [100, 100] and rep.max_batched_tokens == 250
    assert rep.static_batches == StaticBatchCounts(1, {"max_batched_tokens": (1, 2)})
    rep = _static_replica(400)  # all four fit: a batch, no cause
    assert len(rep.policy.plan(rep).prefill) == 4 and rep.static_batches == StaticBatchCounts(1, {})


def test_serve_gives_each_replica_the_static_budget_and_notes_its_cut_batches(tmp_path, monkeypatch):
    """static, max_num_seqs 4, 8 prompts of 100 tokens all at t=0 on 2 replicas: each replica's budget is
    4 x 100 = 400 (serving.token_budget), none cut. max_batched_tokens 250 given: every batch is cut at 2
    prompts by it: 2 replicas x 2 batches, the first of each cut with requests waiting -> "2 of 4"."""
    from cosim.serving import engine, serve
    built = []
    real = engine.Replica.__init__

    def spy(self, *a, **k):
        real(self, *a, **k)
        built.append(self.max_batched_tokens)

    monkeypatch.setattr(engine.Replica, "__init__", spy)
    trace = tmp_path / "t.csv"
    trace.write_text("arrival_s,prompt_len,output_len\n" + "0.0,100,4\n" * 8)
    kw = dict(trace=str(trace), scheduler="static", max_num_seqs=4, replicas=2)
    r = serve(MODEL, HW, **kw)
    assert built == [400, 400] and not [n for n in r.notes if "stopped below" in n]
    built.clear()
    r = serve(MODEL, HW, max_batched_tokens=250, **kw)
    assert built == [250, 250]
    note = [n for n in r.notes if n.startswith("static batches: ") and "stopped below" in n]
    assert note == ["static batches: 2 of 4 stopped below max_num_seqs (4) with requests waiting, by the step token "
                    "budget max_batched_tokens = 250 tokens (smallest such batch 2)"], note


# ---- 4. requests.csv's `weights` is the format the step model priced, read from it, not re-derived ----------

def test_requests_csv_weights_is_the_format_the_steps_were_priced_in(tmp_path):
    """llama3_1_8b's config.json with an AWQ quantization_config (4 bits, group 128, zero point): the
    checkpoint's declared int4_g128_zp, which the step model priced (DeviceStepCost.formats, build_trace's
    resolution) and requests.csv reports; with no step model of ours (a given one prices its own formats)
    the cell is empty, not a format the run never priced."""
    import json
    from pathlib import Path

    from cosim.serving import serve
    from cosim.serving.config import ServeConfig
    from cosim.serving.output import request_inputs, requests_csv_frame
    cfg = json.loads((Path(__file__).parent / "data" / "hf_configs" / "llama3_1_8b.json").read_text())
    cfg["quantization_config"] = {"quant_method": "awq", "bits": 4, "group_size": 128, "zero_point": True}
    p = tmp_path / "config.json"
    p.write_text(json.dumps(cfg))
    r = serve(str(p), HW, qps=2.0, requests=3, prompt_len=64, output_len=4)
    assert r.config.weights is None and r.priced_formats["weights"] == "int4_g128_zp"
    assert set(requests_csv_frame(r)["weights"]) == {"int4_g128_zp"}
    c = ServeConfig(model=MODEL, hw=HW, qps=1.0)
    assert request_inputs(c, {"weights": "fp8_e4m3"})["weights"] == "fp8_e4m3"  # the priced format, as given
    assert request_inputs(c)["weights"] is None  # none priced by a step model of ours: empty, never guessed
    assert request_inputs(ServeConfig(model=MODEL, hw=HW, qps=1.0, weights="int8"), {"weights": "bf16"})["weights"] \
        == "int8"  # a format given is the config's own


# ---- 5. `cosim plan`'s memory rule is written from data, not patched with str.replace ------------------

def test_plan_fit_rule_names_the_per_device_footprint():
    from cosim.plan import plan
    from cosim.serving.kv_memory import fit_rule
    from hwmodels.system import load_system
    want = ("memory rule: a layout's per-device footprint (weights + KV + activations) fits if it uses at most "
            "100 % of h100_sxm's "
            "hbm capacity 80 GB (74.51 GiB, the device file's datasheet figure, not a measured device total); "
            "`cosim serve` uses memory_fraction 0.9 of it by default")
    assert fit_rule(load_system("dgx_h100").device, footprint="a layout's per-device footprint") == want
    assert want in plan(MODEL, "dgx_h100", max_devices=1).notes


# ---- 6. the sweep labels energy_scope with cosim.energy_scope's one function ------------------------------

def test_sweep_energy_scope_is_energy_scope_label_per_distinct_pair(tmp_path, monkeypatch):
    """h100_sxm (static power in its file), mx_systolic_128 (none: dynamic only), tpu_v5e (no energy per FLOP:
    energy NaN: unknown, though its file gives no static power either): each label is
    energy_scope_label(device scope, row energy), asked once per distinct (scope, energy known) pair --
    3 here for 12 rows. (The sweep re-coded the rule: the device scope or "dynamic + static", then
    "unknown" over NaN energies.)"""
    import cosim.dse.runner as runner
    from cosim.dse import sweep
    from cosim.energy_scope import energy_scope_label
    calls = []
    monkeypatch.setattr(runner, "energy_scope_label", lambda d, e: calls.append((d, e == e)) or energy_scope_label(d, e))
    df = sweep({"name": "t", "base": {"model": MODEL, "phase": "decode", "seq": 1024, "hw": HW},
                "axes": [{"grid": {"hw": ["h100_sxm", "mx_systolic_128", "tpu_v5e"], "batch": [1, 2, 4, 8]}}],
                "output": str(tmp_path / "out")}, quiet=True, write=False, workers=1)
    assert len(df) == 12 and sorted(calls) == [("", True),
                                               ("dynamic only (no static power in mx_systolic_128.yaml)", True),
                                               ("dynamic only (no static power in tpu_v5e.yaml)", False)]
    assert dict(zip(df["hw"], df["energy_scope"])) == {
        "h100_sxm": "dynamic + static", "mx_systolic_128": "dynamic only (no static power in mx_systolic_128.yaml)",
        "tpu_v5e": "unknown (energy n/a for this point)"}


# ---- 8. run/serve guard and clean the files their writers list, and clean only after the run succeeded ----

SERVE_BLOCK = "serve: {qps: 4, requests: 6, prompt_len: 32, output_len: 4, slo_ttft_s: 0.5}\n"


def test_the_guarded_lists_are_the_writers_own(tmp_path):
    from cosim.cli.run import _outputs
    from cosim.html_report import report_files
    from cosim.serving import serve
    from cosim.serving.output import OUTPUT_FILES, write_outputs
    paths = write_outputs(serve(MODEL, HW, qps=4, requests=3, prompt_len=32, output_len=4), tmp_path / "s")
    assert tuple(p.name for p in paths) == OUTPUT_FILES and all(p.is_file() for p in paths)
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == sorted(OUTPUT_FILES)
    assert _outputs(False, False) == ["report.csv", "report.json", "report.html"] == report_files(False)
    assert _outputs(True, True) == ["report.csv", "report.json", "report.html", "report_interactive.html",
                                    "serve/requests.csv", "serve/timeline.csv", "serve/summary.json",
                                    "serve/latency_cdf.png", "serve/kv_timeline.png"]


def test_a_failed_force_rerun_removes_nothing(tmp_path, monkeypatch, capsys):
    """The stale serve/ files of an earlier run go only once the new run succeeded: a --force rerun that
    fails leaves the earlier run's files as they were."""
    import cosim.experiment
    from cosim.cli import main
    from workloads.io import InputError
    exp = tmp_path / "e.yaml"
    exp.write_text(f"model: {MODEL}\nhw: {HW}\n" + SERVE_BLOCK)
    out = tmp_path / "out"
    assert main(["run", str(exp), "--no-accuracy", "--out", str(out)]) == 0
    before = sorted(p.name for p in (out / "serve").iterdir())
    exp.write_text(f"model: {MODEL}\nhw: {HW}\n")

    def fail(*a, **k):
        raise InputError("e.yaml: a run that fails")

    monkeypatch.setattr(cosim.experiment, "run_experiment", fail)
    capsys.readouterr()
    assert main(["run", str(exp), "--no-accuracy", "--out", str(out), "--force"]) != 0
    assert "removed" not in capsys.readouterr().err
    assert sorted(p.name for p in (out / "serve").iterdir()) == before == sorted(
        ["requests.csv", "timeline.csv", "summary.json", "latency_cdf.png", "kv_timeline.png"])
