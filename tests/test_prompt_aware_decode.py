"""A decode step that knows its prompt length (build_trace's prompt_len): a recipe compressing the prompt alone
(SnapKV, FastKV) keeps the generated tokens whole, RocketKV and H2O set their budgets from it, in the trace, in
generate and in serving's step prices and KV charge. Llama-3-8B's bf16 cache: 32 layers x 8 KV heads x 128 x 2
(K, V) x 2 B = 131,072 B a token."""

import pytest
from hypothesis import given, settings, strategies as st

import cosim
from cosim.serving.kv_memory import PagedKV, StoredTokens, bytes_per_token
from cosim.serving.steptime import DeviceStepCost, StepBatch, Workload
from workloads.builder import build_trace
from workloads.io import InputError

TOKEN = 131_072


def _kept(trace):
    return trace.meta["kv_state"]["capacity"], trace.meta["footprint"]["kv_cache"]


def _effects(trace):
    return {k: v for e in trace.meta["recipe_effects"].values() for k, v in e.items()}


def test_snapkv_keeps_its_budget_of_the_prompt_and_every_generated_token():
    t = build_trace("llama3_8b", "decode", 1, 4196, recipe="snapkv", prompt_len=4096)
    assert _kept(t) == (1024 + 100, (1024 + 100) * TOKEN)
    assert "keeps 1,024 of the 4,096-token prompt and its 100 generated tokens whole" in _effects(t)["note_generated"]
    attn = next(o for o in t.ops if o.kind == "attention")
    assert attn.dims["kv_len"] == 1124  # the step reads what is kept
    # a prompt within the budget: nothing is evicted, the generated tokens join it
    t = build_trace("llama3_8b", "decode", 1, 4196, recipe="snapkv", prompt_len=512)
    assert _kept(t) == (4196, 4196 * TOKEN)
    assert _effects(t)["note"].startswith("the 512-token prompt fits its budget of 1,024 and its 3,684 generated")
    assert "note_generated" not in _effects(t)


def test_fastkv_retains_its_rate_of_the_prompt_and_every_generated_token():
    t = build_trace("llama3_8b", "decode", 1, 4196, recipe="fastkv", prompt_len=4096)
    assert _kept(t) == (409 + 100, (409 + 100) * TOKEN)  # int(0.1 x 4,096) = 409
    assert "keeps 409 of the 4,096-token prompt and its 100 generated tokens whole" in _effects(t)["note_generated"]


def test_without_a_prompt_length_the_context_is_one_prompt_as_before():
    for recipe, kept in (("snapkv", 1024), ("fastkv", 419)):
        a = build_trace("llama3_8b", "decode", 1, 4196, recipe=recipe)
        b = build_trace("llama3_8b", "decode", 1, 4196, recipe=recipe, prompt_len=4196)
        assert _kept(a) == _kept(b) == (kept, kept * TOKEN)
        assert "prompt_len" not in a.meta and b.meta["prompt_len"] == 4196  # said where given, as given


@pytest.mark.parametrize("recipe", ["kivi2", "streaming_llm"])
def test_a_recipe_compressing_the_whole_context_ignores_the_prompt_length(recipe):
    a = build_trace("llama3_8b", "decode", 1, 4196, recipe=recipe)
    b = build_trace("llama3_8b", "decode", 1, 4196, recipe=recipe, prompt_len=1000)
    assert _kept(a) == _kept(b)


@pytest.mark.parametrize("kwargs, want", [
    (dict(phase="prefill", seq=100, prompt_len=50), "prompt_len: got 50 with phase 'prefill'"),
    (dict(phase="decode", seq=100, prompt_len=101), "prompt_len: got 101; expected at most seq (100)"),
    (dict(phase="decode", seq=100, prompt_len=0), "prompt_len: got 0; expected a positive integer"),
    (dict(phase="decode", seq=100, prompt_len=True), "prompt_len: got True; expected a positive integer"),
])
def test_a_bad_prompt_length_is_one_clear_error(kwargs, want):
    with pytest.raises(InputError, match="build_trace: " + want.replace("(", r"\(").replace(")", r"\)")):
        build_trace("llama3_8b", recipe="snapkv", **kwargs)


def test_generate_holds_and_prices_the_generated_tokens_whole():
    from cosim.serving.generate import generate
    g = generate("llama3_8b", "h100_sxm", prompt_len=2000, output_len=300, recipe="snapkv")
    assert g.footprint["kv_cache"] == (1024 + 299) * TOKEN  # the last step: the budget + 299 generated tokens
    assert any(n.startswith("recipe snapkv: compresses the prompt alone") for n in g.notes)
    plain = generate("llama3_8b", "h100_sxm", prompt_len=1024, output_len=300)
    # the last step reads 1,024 + 299 tokens: as a bf16 cache whose prompt is the budget
    assert g.decode_times_s[-1] == pytest.approx(plain.decode_times_s[-1], rel=1e-12)
    assert not any("prompt alone" in n for n in generate("llama3_8b", "h100_sxm", 100, 1, recipe="snapkv").notes)


def test_a_serving_decode_step_is_priced_at_its_prompt():
    model = cosim.load_model("llama3_8b")
    snap = DeviceStepCost(Workload(model, recipe="snapkv"), cosim.load_hw("h100_sxm"))
    plain = DeviceStepCost(Workload(model), cosim.load_hw("h100_sxm"))
    # 2,300 tokens, 2,000 of them the prompt: reads 1,024 + 300, as a plain cache of 1,324 tokens
    assert snap.decode_context_cost(1, 2300, 2000) == plain.decode_context_cost(1, 1324)
    stepped = snap.step_cost(StepBatch((), (2300,), 1, (2000,)))
    assert stepped.latency_s > snap.step_cost(StepBatch((), (2300,), 1)).latency_s  # the old reading: 1,024
    # a run of decode steps is priced as step by step
    lat, _ = snap.decode_run(2, 2 * 2300, 5, prompts=(2000, 2000))
    for i in range(5):
        c = snap.step_cost(StepBatch((), (2300 + i, 2300 + i), 1, (2000, 2000)))
        assert lat[i] == pytest.approx(c.latency_s, rel=1e-12)


def test_a_request_is_charged_its_kept_prompt_and_its_generated_tokens_whole():
    w = Workload(cosim.load_model("llama3_8b"), recipe="snapkv")
    unit = bytes_per_token(w)  # at 4,096 tokens SnapKV keeps 1,024: a quarter of a token
    stored = StoredTokens(w, unit, 16)
    assert unit == TOKEN / 4
    # 2,300 tokens (2,304 in blocks) after a 2,000-token prompt: 1,024 kept + 304 whole, in quarter tokens
    assert stored(2300, 2000) == (1024 + 304) * 4
    assert stored(2300) == 1024 * 4  # read as one prompt, as before
    assert stored(1500, 2000) == stored(1500)  # within the prompt: as a prompt of its length
    kv = PagedKV(10_000, 16, stored=stored)
    assert kv.grow("a", 2300, 2000) and kv.used == (1024 + 304) * 4 // 16


def test_serving_a_prompt_only_recipe_never_charges_its_generated_tokens_at_the_prompts_rate():
    """FastKV keeps 10 % of a prompt, within 1 % of its rate at 4,096 tokens: a token a token was its charge, which
    billed each generated token at a tenth of what it stores."""
    from cosim.serving import serve
    res = serve("llama3_8b", "h100_sxm", qps=5, requests=3, prompt_len=2000, output_len=300, recipe="fastkv")
    assert not any("a request is charged one token of capacity a token" in n for n in res.notes)
    assert any("recipe fastkv stores a request's cache at a rate its prompt sets" in n
               and "each generated token is added at the rate the recipe stores a token it keeps (131,072 B/token"
               in n for n in res.notes)
    assert any(n.startswith("recipe fastkv: compresses the prompt alone") for n in res.notes)


def test_on_the_step_grid_the_generated_tokens_keep_their_own_precision():
    """bucket 0.02 put 30,000 and 29,800 on the grid apart (30,248 and 29,656): 592 generated tokens priced, not 200;
    16,000 after 15,900 crossed (16,048 < 16,050) and dropped its 100 generated tokens."""
    model, hw = cosim.load_model("llama3_8b"), cosim.load_hw("h100_sxm")
    exact = DeviceStepCost(Workload(model), hw)
    grid = DeviceStepCost(Workload(model, recipe="snapkv"), hw, bucket=0.02)
    for kv, prompt, reads in ((30_000, 29_800, 1224), (16_000, 15_900, 1124)):
        got = grid.decode_context_cost(1, kv, prompt).latency_s / exact.decode_context_cost(1, reads).latency_s
        assert got == pytest.approx(1.0, abs=0.01)


def test_a_sliding_window_model_finds_its_windowed_ops_and_charges_a_generated_token_as_one():
    """Mistral-7B's 4,096-token window: window_names were found from SnapKV's budget-capped traces (none), and the
    appended rate read across the window charged a generated token up to 2x a plain one."""
    w = Workload(cosim.load_model("mistral_7b"), recipe="snapkv")
    assert DeviceStepCost(w, cosim.load_hw("h100_sxm")).window_names
    stored = StoredTokens(w, bytes_per_token(w), 16)
    assert stored.appended_rate == TOKEN  # 32 layers x 8 KV heads x 128 x 2 x 2 B
    t = build_trace("mistral_7b", "decode", 1, 8000, recipe="fastkv", prompt_len=1000)
    assert _effects(t)["note_generated"] == ("keeps 100 of the 1,000-token prompt and its 7,000 generated tokens "
                                             "whole (it selects once, in prefill); the cache holds only 4,096 of them "
                                             "(a sliding window or an earlier part's eviction)")


def test_a_given_step_model_without_prompts_still_runs_decode_runs():
    """The engine passes prompts only to a step model that prices by prompts: a user's decode_run of three
    arguments keeps working."""
    from cosim.serving import serve
    from cosim.serving.steptime import StepCost

    class Flat:
        notes = ()

        def step_cost(self, batch):
            return StepCost(1e-3 * (1 + len(batch.decode_kv)), 0.0)

        def decode_run(self, seqs, kv_sum, steps):
            import numpy as np
            return np.full(steps, 1e-3 * (1 + seqs)), np.zeros(steps)

    res = serve("llama3_8b", "h100_sxm", step_model=Flat(), qps=5, requests=4, prompt_len=100, output_len=50,
                recipe="snapkv")
    assert res.summary["requests"] == 4


def test_a_batch_mixing_prompts_within_and_beyond_the_budget_reads_each_sequences_kept_tokens():
    """KV (300, 4200) after prompts (100, 4000): SnapKV keeps 300 and 1,024 + 200, a mean of 762; the mean prompt
    (2,050, beyond the budget) read 1,224."""
    model, hw = cosim.load_model("llama3_8b"), cosim.load_hw("h100_sxm")
    snap, plain = DeviceStepCost(Workload(model, recipe="snapkv"), hw), DeviceStepCost(Workload(model), hw)
    got = snap.step_cost(StepBatch((), (300, 4200), 1, (100, 4000)))
    assert got.latency_s == pytest.approx(plain.step_cost(StepBatch((), (762, 762), 1)).latency_s, rel=1e-12)


@pytest.mark.parametrize("recipe, kept_only", [("snapkv", True), ("fastkv", True), ("snapkv+kivi2", True),
                                               ("snapkv+h2o", False)])
def test_a_step_is_read_as_its_kept_tokens_only_where_the_recipe_depends_on_them_alone(recipe, kept_only):
    """H2O after SnapKV keeps a share of the whole context: its steps are priced at the mean prompt and generated
    tokens instead (each on the grid)."""
    model, hw = cosim.load_model("llama3_8b"), cosim.load_hw("h100_sxm")
    steps = DeviceStepCost(Workload(model, recipe=recipe), hw)
    assert steps._kept_only is kept_only
    lat, _ = steps.decode_run(2, 2 * 2300, 3, prompts=(2000, 1800))
    for i in range(3):
        c = steps.step_cost(StepBatch((), (2300 + i, 2300 + i), 1, (2000, 1800)))
        assert lat[i] == pytest.approx(c.latency_s, rel=1e-12)


def test_simulate_takes_a_prompt_length_and_says_what_the_recipe_kept(capsys):
    from cosim.cli import main
    assert main(["simulate", "--model", "llama3_8b", "--hw", "h100_sxm", "--recipe", "snapkv", "--seq", "4196",
                 "--prompt-len", "4096"]) == 0
    out = capsys.readouterr().out
    assert "decode, batch 1, seq 4196 (4,096 of them the prompt)" in out
    assert "kv_cache 147 MB" in out  # 1,124 x 131,072 B
    assert "recipe snapkv: keeps 1,024 of the 4,096-token prompt and its 100 generated tokens whole" in out


def test_a_later_parts_cut_is_applied_once_to_the_kept_and_generated_tokens():
    """fastkv+razor_attention: K(P) read after the whole recipe cut the prompt twice (Razor again on K + G): the
    step was priced at 0.69x its trace at 30,000 + 300 tokens on Llama-3.2-3B. K is FastKV's kept_tokens now."""
    w = Workload(cosim.load_model("llama3_2_3b"), recipe="fastkv+razor_attention")
    steps = DeviceStepCost(w, cosim.load_hw("h100_sxm"))
    assert steps._kept_only
    for prompt, kv in ((8000, 8300), (30_000, 30_300), (60_000, 100_000)):
        ops = [o for o in w.trace("decode", 1, kv, prompt_len=prompt).ops if o.name in steps.context_names]
        lengths, mean_prompt = steps._decode_lengths(StepBatch((), (kv,), 1, (prompt,)))
        assert steps.decode_context_cost(1, lengths[0], mean_prompt) == steps._price(ops)


def test_the_fast_path_checks_the_window_on_the_lengths_it_prices(tmp_path):
    """Mistral-7B (window 4,096) with SnapKV: raw contexts 5,000 and 8,100 after prompts 100 and 8,000 keep 5,000
    and 1,124 tokens, which straddle the window; the engine's fast path checked the raw ones and priced such runs at
    the mean (TPOT +1.8 % against step by step)."""
    from cosim.serving import serve
    from cosim.serving.steptime import device_step_cost

    class StepByStep:  # the same step model without the fast path
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            if name == "decode_run":
                raise AttributeError(name)
            return getattr(self.inner, name)

    p = tmp_path / "t.csv"
    # at 22 s the first two hold ~4,500 tokens: every raw context is past the window, the kept ones are not
    p.write_text("arrival_s,prompt_len,output_len\n" + "0.0,100,5000\n" * 2 + "22.0,8000,600\n" * 2)
    fast = serve("mistral_7b", "h100_sxm", trace=str(p), recipe="snapkv")
    slow = serve("mistral_7b", "h100_sxm", trace=str(p), recipe="snapkv",
                 step_model=StepByStep(device_step_cost("mistral_7b", "h100_sxm", recipe="snapkv", bucket=0.02)))
    assert fast.summary["tpot_mean_s"] == pytest.approx(slow.summary["tpot_mean_s"], rel=1e-12)


def test_a_reports_csv_names_the_prompt_length(tmp_path):
    from cosim.report import Report
    rep = cosim.simulate(build_trace("llama3_8b", "decode", 1, 4196, recipe="snapkv", prompt_len=4096), "h100_sxm")
    import pandas as pd
    rep.save(tmp_path / "r.csv")
    assert set(pd.read_csv(tmp_path / "r.csv")["prompt_len"]) == {4096}
    rep.save(tmp_path / "r.json")
    assert Report.load(tmp_path / "r.json").inputs()["prompt_len"] == 4096
    plain = cosim.simulate(build_trace("llama3_8b", "decode", 1, 4196, recipe="snapkv"), "h100_sxm")
    assert plain.inputs()["prompt_len"] is None


@pytest.mark.parametrize("recipe", ["rocketkv", "snapkv+rocketkv"])
def test_a_decode_step_prices_every_op_of_its_trace(recipe):
    """RocketKV selects only past its budget: its top-k ops exist at 2,048 tokens, not at 1,024, so they were in
    neither the token-wise nor the context set and went unpriced (0.026 ms of a 4.53 ms step)."""
    w = Workload(cosim.load_model("llama3_8b"), recipe=recipe)
    steps = DeviceStepCost(w, cosim.load_hw("h100_sxm"))
    trace = w.trace("decode", 1, 2300, prompt_len=2000)
    assert any(o.name == "rocketkv.token_topk" for o in trace.ops)
    whole = steps._price(list(trace.ops)).latency_s
    assert steps.step_cost(StepBatch((), (2300,), 1, (2000,))).latency_s == pytest.approx(whole, rel=1e-9)


_BASE = {"name": "pl", "model": "llama3_8b", "hw": "h100_sxm", "phase": "decode", "seq": 4196, "recipe": "snapkv",
         "accuracy": False}


def test_an_experiment_names_its_prompt_length_and_keeps_older_keys():
    from cosim.experiment import experiment_from_dict, run_experiment
    exp = experiment_from_dict({**_BASE, "prompt_len": 4096})
    assert exp.to_dict()["prompt_len"] == 4096
    assert run_experiment(exp).footprint["kv_cache"] == 1124 * TOKEN
    assert "prompt_len" not in experiment_from_dict(_BASE).to_dict()  # a sweep store's keys stay as they were


@pytest.mark.parametrize("doc, want", [
    ({"prompt_len": 5000}, "prompt_len: got 5000; expected an integer from 1 to 4,196"),
    ({"prompt_len": 100, "phase": "prefill"}, "prompt_len: got 100; expected null with phase 'prefill'"),
    ({"prompt_len": "100"}, "prompt_len: got '100'"),
])
def test_a_bad_prompt_length_in_an_experiment_names_the_field(doc, want):
    from cosim.experiment import experiment_from_dict
    with pytest.raises(InputError) as e:
        experiment_from_dict({**_BASE, **doc}, source="e.yaml")
    assert str(e.value).startswith("e.yaml: " + want)


def test_a_sweep_varies_the_prompt_length_and_refuses_one_no_point_can_price(tmp_path):
    from cosim.dse import sweep
    spec = {"name": "t", "base": _BASE, "axes": [{"grid": {"prompt_len": [100, 2000, 4096]}}],
            "output": str(tmp_path / "out")}
    df = sweep(spec, quiet=True, write=False)
    mem = dict(zip(df["prompt_len"], df["memory_bytes"]))
    # KV of 4,196 tokens whole, 1,024 + 2,196 and 1,024 + 100: the rest of the footprint is the same
    assert mem[100] - mem[2000] == pytest.approx((4196 - 3220) * TOKEN, rel=1e-12)
    assert mem[2000] - mem[4096] == pytest.approx((3220 - 1124) * TOKEN, rel=1e-12)
    spec["axes"] = [{"grid": {"prompt_len": [100, 5000]}}]
    with pytest.raises(InputError, match=r"axes\[0\]\.grid\.prompt_len\[1\]: got 5000; .* prompt_len: got 5,000; "
                                         r"expected at most seq \(4,196\)"):
        sweep(spec, quiet=True, write=False)


def test_a_null_axis_value_is_a_point_of_its_own(tmp_path):
    """pandas' factorize coded None as -1, read as the last distinct value: [null, 512] priced 512 twice, and [null]
    alone raised an IndexError. A null point keeps the key of a base without prompt_len."""
    from cosim.dse import sweep
    spec = {"name": "t", "base": _BASE, "axes": [{"grid": {"prompt_len": [None, 512], "recipe": [None, "snapkv"]}}],
            "output": str(tmp_path / "out")}
    df = sweep(spec, quiet=True, write=False)
    got = {(None if pd_isna(p) else int(p), r if isinstance(r, str) else None): m
           for p, r, m in zip(df["prompt_len"], df["recipe"], df["memory_bytes"])}
    assert len(got) == 4
    # no recipe: the cache holds 4,196 tokens either way; SnapKV keeps 1,024 of a 4,196-token prompt, or all of 512
    assert got[(None, None)] == got[(512, None)] == got[(512, "snapkv")] > got[(None, "snapkv")]
    assert got[(None, None)] - got[(None, "snapkv")] == pytest.approx((4196 - 1024) * TOKEN, rel=1e-12)
    spec["axes"] = [{"grid": {"prompt_len": [None], "batch": [1, 2]}}]
    assert len(sweep(spec, quiet=True, write=False)) == 2


def pd_isna(v):
    return v is None or (isinstance(v, float) and v != v)


def test_a_base_prompt_length_pairs_with_each_points_seq_and_serving_refuses_one(tmp_path):
    from cosim.dse import sweep
    from cosim.experiment import experiment_from_dict
    spec = {"name": "t", "base": {**_BASE, "prompt_len": 3000},
            "axes": [{"grid": {"seq": [1024, 4096], "prompt_len": [512, 1024]}}], "output": str(tmp_path / "out")}
    assert len(sweep(spec, quiet=True, write=False)) == 4  # the base's 3,000 never meets seq 1,024
    with pytest.raises(InputError, match="prompt_len: got 100; expected null when `serve` is set"):
        experiment_from_dict({**_BASE, "prompt_len": 100, "serve": {"qps": 1, "requests": 2}}, source="e.yaml")


def test_the_kv_twin_reads_the_prompt_the_step_had():
    from cosim.layer_accuracy import twin_prompt
    assert twin_prompt(build_trace("llama3_8b", "decode", 1, 4096, recipe="snapkv", prompt_len=1024)) == 1024
    assert twin_prompt(build_trace("llama3_8b", "decode", 1, 8192, recipe="snapkv")) == 4096


def test_rocketkv_splits_its_budget_from_the_prompt():
    """rocketkv_budget(7900, 1024, 128, 256): capacity 3,657, prompt budget 3,401, chunk 2, r 72, k 512. After a
    7,900-token prompt and 100 generated tokens the cache holds 3,401 + 100 tokens: a step reads
    72·ceil(3501/2) + 2·512·128 = 257,144 elements per KV head; the cache is sized at the capacity before the first
    step: (3,657 tokens + ceil(3657/2) chunk summaries of 2·128 bf16 a head) x 131,072 B. Read as one 8,000-token
    prompt (no prompt_len) it is the capacity of 8,000 (3,678), the reserve full, as before."""
    e = build_trace("llama3_8b", "decode", 1, 8000, recipe="rocketkv", prompt_len=7900)
    fx = e.meta["recipe_effects"]["rocketkv"]
    assert (fx["capacity"], fx["prompt_budget"], fx["kept_tokens"]) == (3657, 3401, 3501)
    assert fx["read_elements_per_kv_head"] == 72 * 1751 + 2 * 512 * 128 == 257_144
    assert e.meta["footprint"]["kv_cache"] == (3657 + 1829) * TOKEN
    assert "keeps 3,401 of the 7,900-token prompt and its 100 generated tokens" in fx["note"]
    whole = build_trace("llama3_8b", "decode", 1, 8000, recipe="rocketkv").meta["recipe_effects"]["rocketkv"]
    assert (whole["capacity"], whole["kept_tokens"]) == (3678, 3678) and "note" not in whole


def test_rocketkv_generation_past_its_reserve_is_said():
    fx = build_trace("llama3_8b", "decode", 1, 8000, recipe="rocketkv",
                     prompt_len=7000).meta["recipe_effects"]["rocketkv"]
    assert fx["kept_tokens"] == fx["prompt_budget"] + 1000
    assert "outgrow the reserve" in fx["note"] and "new_tokens >= 1,000" in fx["note"]


def test_h2o_sets_its_budget_from_the_prompt():
    """H2O's reference fixes its budgets at the first forward from the prompt (int(0.1·4096) + int(0.1·4096) = 818)
    and evicts generated tokens to them; read as one 4,196-token prompt: int(419.6) · 2 = 838."""
    fx = lambda **kw: build_trace("llama3_8b", "decode", 1, 4196, recipe="h2o", **kw).meta["recipe_effects"]["h2o"]
    assert fx(prompt_len=4096)["kept_tokens"] == 818
    assert fx()["kept_tokens"] == 838
    # after SnapKV (a part compressing the prompt alone) H2O's share stays of the context, as before: a composite's
    # rule, which serving's 1-token-prompt probes need (a budget from that prompt keeps no token)
    chain = build_trace("llama3_8b", "decode", 1, 4196, recipe="snapkv+h2o", prompt_len=4096)
    assert chain.meta["recipe_effects"]["h2o"]["kept_tokens"] == 838


def test_serving_says_it_reads_h2os_budget_from_the_context():
    from cosim.serving import serve
    res = serve("llama3_8b", "h100_sxm", qps=5, requests=2, prompt_len=2000, output_len=20, recipe="h2o")
    assert any(n.startswith("recipe h2o: its reference sets its budget once from the prompt") for n in res.notes)
    snap = serve("llama3_8b", "h100_sxm", qps=5, requests=2, prompt_len=2000, output_len=20, recipe="snapkv+h2o")
    assert not any("sets its budget once from the prompt" in n for n in snap.notes)  # the composite's rule instead


def test_rocketkv_in_a_window_scores_the_tokens_the_cache_holds():
    """Mistral-7B's 4,096-token window at 20,000 tokens: rocketkv_budget(20000, 1024, 128, 256) has capacity 5,138,
    chunk 3, r 77, k 512, but the cache holds 4,096 tokens: ceil(4096/3) = 1,366 summaries (session 38; 1,713 of the
    capacity before), 77·1366 + 2·512·128 = 236,254 elements read, (4,096 + 1,366) x 131,072 B stored."""
    t = build_trace("mistral_7b", "decode", 1, 20000, recipe="rocketkv", allow_beyond_max_context=True)
    fx = t.meta["recipe_effects"]["rocketkv"]
    assert (fx["capacity"], fx["kept_tokens"], fx["read_elements_per_kv_head"]) == (5138, 4096, 236_254)
    assert next(o for o in t.ops if o.name == "rocketkv.approx_scores").dims["n"] == 1366
    assert t.meta["footprint"]["kv_cache"] == (4096 + 1366) * TOKEN
    # given a prompt, the note says what the cache holds rather than advising a larger reserve
    fx = build_trace("mistral_7b", "decode", 1, 12000, recipe="rocketkv",
                     prompt_len=4000).meta["recipe_effects"]["rocketkv"]
    assert fx["kept_tokens"] == 4096 and "the cache holds only 4,096 of them" in fx["note"]
    assert "new_tokens >=" not in fx["note"]


def test_rocketkvs_serving_charge_never_falls_below_what_it_stores():
    """After a 4,096-token prompt (capacity 2,928, chunk 2) the cache grows past its 256-token reserve with each
    generated token and its chunk summary (1.5 tokens' worth): charged at that rate, over by at most the reserve and
    its summaries (384 tokens); charged at the plain rate it fell 1,614 tokens short at 3,999 generated tokens."""
    w = Workload(cosim.load_model("llama3_8b"), recipe="rocketkv")
    unit = bytes_per_token(w)
    stored = StoredTokens(w, unit, 16)
    for generated in (1, 256, 1999, 3999):
        n = 4096 + generated
        actual = w.trace("decode", 1, n, prompt_len=4096).meta["footprint"]["kv_cache"]
        over = stored(n, 4096) * unit - actual
        assert 0 <= over <= (256 * 1.5 + 16) * TOKEN, generated


@pytest.mark.parametrize("recipe", ["h2o+snapkv", "h2o+rocketkv"])
def test_h2o_beside_a_prompt_only_part_keeps_the_context_rule(recipe):
    """Serving's probes read a prompt-only part after a 1-token prompt, where H2O's budget from that prompt keeps no
    token: H2O keeps its share of the context beside such a part, in either order (it crashed serve and generate)."""
    from cosim.serving import generate
    g = generate("llama3_8b", "h100_sxm", prompt_len=2000, output_len=20, recipe=recipe)
    assert g.decode_times_s.size == 19
    t = build_trace("llama3_8b", "decode", 1, 4196, recipe=recipe, prompt_len=4096)
    assert t.meta["recipe_effects"]["h2o"]["kept_tokens"] == 838


def test_a_step_with_no_token_generated_yet_reads_its_prompt():
    w = Workload(cosim.load_model("llama3_8b"), recipe="rocketkv")
    steps = DeviceStepCost(w, cosim.load_hw("h100_sxm"))
    own = steps._price(list(w.trace("decode", 1, 4096, prompt_len=4096).ops)).latency_s
    assert steps.step_cost(StepBatch((), (4096,), 1, (4096,))).latency_s == pytest.approx(own, rel=1e-9)


@settings(max_examples=12, deadline=None)
@given(prompt=st.integers(1100, 7000), generated=st.integers(0, 1000))
def test_rocketkv_holds_its_kept_prompt_and_generated_tokens_and_serving_never_undercharges(prompt, generated):
    """For any prompt beyond its 1,024-token budget: the step holds rocketkv_budget(P)'s prompt budget plus the
    generated tokens, stores at least those (and its capacity), and serving's charge is never below what it stores."""
    from workloads.compression.eviction import rocketkv_budget
    q = rocketkv_budget(prompt, 1024, 128, 256)
    n = prompt + generated
    t = build_trace("llama3_8b", "decode", 1, n, recipe="rocketkv", prompt_len=prompt)
    held = q.prompt_budget + generated
    assert t.meta["recipe_effects"]["rocketkv"]["kept_tokens"] == held
    assert t.meta["footprint"]["kv_cache"] >= max(held, q.capacity) * TOKEN
    if generated:
        w = Workload(cosim.load_model("llama3_8b"), recipe="rocketkv")
        unit = bytes_per_token(w)
        assert StoredTokens(w, unit, 16)(n, prompt) * unit >= t.meta["footprint"]["kv_cache"]
