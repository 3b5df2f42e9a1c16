"""A decode step that knows its prompt length (build_trace's prompt_len): a recipe compressing the prompt alone
(SnapKV, FastKV) keeps the generated tokens whole, in the trace, in generate and in serving's step prices and KV
charge. Llama-3-8B's bf16 cache: 32 layers x 8 KV heads x 128 x 2 (K, V) x 2 B = 131,072 B a token."""

import pytest

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


def test_fastkv_retains_its_rate_of_the_prompt_and_every_generated_token():
    t = build_trace("llama3_8b", "decode", 1, 4196, recipe="fastkv", prompt_len=4096)
    assert _kept(t) == (409 + 100, (409 + 100) * TOKEN)  # int(0.1 x 4,096) = 409
    assert "keeps 409 of the 4,096-token prompt and its 100 generated tokens whole" in _effects(t)["note_generated"]


def test_without_a_prompt_length_the_context_is_one_prompt_as_before():
    for recipe, kept in (("snapkv", 1024), ("fastkv", 419)):
        a = build_trace("llama3_8b", "decode", 1, 4196, recipe=recipe)
        b = build_trace("llama3_8b", "decode", 1, 4196, recipe=recipe, prompt_len=4196)
        assert _kept(a) == _kept(b) == (kept, kept * TOKEN)
        assert "prompt_len" not in b.meta


@pytest.mark.parametrize("recipe", ["h2o", "kivi2", "streaming_llm"])
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
    lat, _ = snap.decode_run(2, 2 * 2300, 5, prompt_sum=2 * 2000)
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
               and "131,072 B/token after a 2,000-token prompt" in n for n in res.notes)
    assert any(n.startswith("recipe fastkv: compresses the prompt alone") for n in res.notes)
