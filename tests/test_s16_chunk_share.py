"""Session 16 (helper h16b): serving leftovers in the step-cost model, the refusals and the notes."""

import dataclasses

import pytest

from tests.test_s15_fixrev import _tiny

from cosim.serving.steptime import StepBatch, device_step_cost


def _priced(steps, batch):
    """The ops step_cost prices for `batch` on a fresh cache, and the cost."""
    steps = dataclasses.replace(steps, _cache={}, _ctx_ops={}, _btab=None)
    priced, price = [], steps._price
    steps._price = lambda ops: (priced.extend(ops := list(ops)), price(ops))[1]
    return priced, steps.step_cost(batch)


def _ctx_ops(priced, steps):
    return [o for o in priced if o.name not in steps.token_names]


def test_every_prefill_chunk_carries_its_own_kv_quantize():
    """A 512-token prompt in two 256-token chunks, llama3_8b + KIVI-2 (8 KV heads x 128 x K and V = 2,048
    values a token a layer, 4 FLOPs a quantized value): each chunk quantizes its own 256 tokens,
    256 x 2,048 = 524,288 values (2,097,152 FLOPs) in each of 32 layers. Before, the first chunk
    quantized none and the last the whole prompt's 1,048,576."""
    steps = device_step_cost("llama3_8b", "h100_sxm", recipe="kivi2")
    for chunk in ((256, 0, False), (256, 256, True)):
        priced, _ = _priced(steps, StepBatch((chunk,), ()))
        (q,) = [o for o in _ctx_ops(priced, steps) if o.name == "kivi2.quantize"]
        assert (q.dims["cols"] * q.dims["rows"], q.repeat, q.flops) == (524288, 32, 2097152.0)
        assert sorted(o.name for o in _ctx_ops(priced, steps)) == ["attention", "kivi2.quantize"]


def test_mla_chunks_expand_the_cached_latents_again_as_vllm_does():
    """deepseek_v2_lite (MLA, kv_lora_rank 512 -> 16 heads x (128 + 128) = 4,096, 27 layers): the
    prefill's kv_b_proj, 2 x S x 4,096 x 512 FLOPs a layer, is OVER_CONTEXT (workloads.ops): vLLM's
    chunked-context MLA prefill (vllm/v1/attention/backends/mla/common.py, "Chunked Prefill") expands the
    new tokens' latents and every cached chunk's latents again on each chunk, so a chunk of 256 after 256
    cached runs it over 512 tokens: 2 x 512 x 4,096 x 512 = 2,147,483,648 a layer; the first chunk
    1,073,741,824; the two chunks 3,221,225,472, above the whole 512-token prompt's 2,147,483,648 (a
    session-16 change priced each chunk's own 256 tokens only, summing to the whole prompt's)."""
    steps = device_step_cost("deepseek_v2_lite", "h100_sxm")
    total = 0.0
    for chunk, m in (((256, 0, False), 256), ((256, 256, True), 512)):
        priced, _ = _priced(steps, StepBatch((chunk,), ()))
        (kb,) = [o for o in _ctx_ops(priced, steps) if o.name == "kv_b_proj"]
        assert (kb.dims["m"], kb.dims["n"], kb.dims["k"], kb.repeat) == (m, 4096, 512, 27)
        assert kb.flops == 2 * m * 4096 * 512
        total += kb.flops
    whole, _ = _priced(steps, StepBatch(((512, 0, True),), ()))
    (kb,) = [o for o in whole if o.name == "kv_b_proj"]
    assert kb.flops == 2147483648
    assert total == 3221225472


def test_first_chunk_of_an_unfused_prompt_carries_its_attention():
    """attention unfused, llama3_8b: the first 256-token chunk's own scores and PV, 2 x 256 x 256 x 128
    FLOPs each per head (32 heads, 32 layers: 536,870,912 a layer), were left off (no attention cost at
    all on that chunk); the chunk after cached context, refused until session 17, runs its 256 queries over
    all 512 keys: 2 x 32 x 256 x 512 x 128 = 1,073,741,824 FLOPs a layer (tests/test_s17_serve_defects.py)."""
    steps = device_step_cost("llama3_8b", "h100_sxm", attention="unfused")
    priced, _ = _priced(steps, StepBatch(((256, 0, False),), ()))
    got = {o.name: o for o in _ctx_ops(priced, steps)}
    assert sorted(got) == ["attn_pv", "attn_scores", "attn_softmax"]
    assert got["attn_scores"].flops == got["attn_pv"].flops == 2 * 32 * 256 * 256 * 128 == 536870912
    priced, _ = _priced(steps, StepBatch(((256, 256, True),), ()))
    got = {o.name: o for o in _ctx_ops(priced, steps)}
    assert sorted(got) == ["attn_pv", "attn_scores", "attn_softmax"]
    assert got["attn_scores"].flops == got["attn_pv"].flops == 2 * 32 * 256 * 512 * 128 == 1073741824


def test_serve_and_the_step_cost_api_refuse_chunked_attention_in_one_message(tmp_path):
    """One refusal (steptime.refuse_chunked_attention): serve refuses the model outright, the step-cost API
    only a step it cannot price; the same words after the caller's name (before: two messages, the
    step-cost one without 'got ... tokens' and without the way out)."""
    import re
    from cosim.serving import serve
    from workloads.io import InputError
    p = _tiny(tmp_path, "chunked")  # one chunked-attention test model (tests/test_s15_fixrev.py)
    with pytest.raises(InputError) as a:
        serve(str(p), "h100_sxm", requests=2, qps=1.0, prompt_len=32, output_len=4)
    with pytest.raises(InputError) as b:
        device_step_cost(str(p), "h100_sxm").step_cost(StepBatch((), (60, 70)))
    sa, sb = str(a.value), str(b.value)
    assert sa.startswith("serve: model 'tiny_chunked': attention_chunk (HF attention_chunk_size): got 64 tokens on "
                         "4 of 4 layers; expected no chunked-attention layers")
    assert sb.startswith("step cost: model 'tiny_chunked': attention_chunk (HF attention_chunk_size): got 64 tokens "
                         "on 4 of 4 layers (this step: decode KV lengths [60, 70], prefill chunks (new, cached) [])")
    strip = lambda s: re.sub(r" \(this step: [^;]*\)", "", s.split(": ", 1)[1])
    assert strip(sa) == strip(sb)


def test_fit_rule_reads_serves_default_memory_fraction(monkeypatch):
    """plan / generate's fit note names serve's default memory_fraction from the value ServeConfig uses (it
    was typed as text: '0.9')."""
    from cosim.serving import config
    from cosim.serving.kv_memory import fit_rule
    from hwmodels.spec import load_hw
    assert config.ServeConfig.memory_fraction == config.DEFAULT_MEMORY_FRACTION == 0.9
    hw = load_hw("h100_sxm")
    assert fit_rule(hw).endswith("`cosim serve` uses memory_fraction 0.9 of it by default")
    monkeypatch.setattr(config, "DEFAULT_MEMORY_FRACTION", 0.85)
    assert fit_rule(hw).endswith("`cosim serve` uses memory_fraction 0.85 of it by default")


def test_decode_run_window_side_is_straddles_window_over_the_runs_kv():
    """engine._one_window_side asks steptime.straddles_window (one rule) over the KV lengths the run's k
    steps price, context .. context + k - 1. Window 64, k = 5 steps: contexts 58 and 60 price 58..64, all
    within the window: one run (it restated the rule with context + k <= 64, one step short, and went step
    by step); context 60 with k = 6 reaches 65: step by step; past the window: one run."""
    from types import SimpleNamespace as NS
    from cosim.serving.engine import Replica
    rep = NS(steps=NS(decode_window=64))
    reqs = lambda ctxs, left: [NS(context=c, output_len=10, generated=10 - left) for c in ctxs]
    assert Replica._one_window_side(rep, reqs((58, 60), 5))
    assert not Replica._one_window_side(rep, reqs((58, 60), 6))
    assert Replica._one_window_side(rep, reqs((65, 300), 6))
    assert not Replica._one_window_side(rep, reqs((64, 300), 6))
    assert Replica._one_window_side(NS(steps=NS()), reqs((1, 10 ** 6), 6))  # no window: always one run


def test_a_split_prompt_says_how_its_non_attention_context_work_is_priced():
    """Never silent: a prompt split into chunks prices its non-attention context ops as the engine runs them;
    the run's notes say how, naming each op (a whole prompt, or a model without such ops, adds no note)."""
    steps = device_step_cost("deepseek_v2_lite", "h100_sxm")
    steps.step_cost(StepBatch(((512, 0, True),), ()))
    assert not any("chunked prefill" in n for n in steps.notes)
    steps.step_cost(StepBatch(((256, 256, True),), ()))
    (note,) = [n for n in steps.notes if n.startswith("chunked prefill: ")]
    assert note == ("chunked prefill: kv_b_proj: over every token so far: priced at cached + new tokens on every "
                    "chunk (the cached ones again each chunk)")
    plain = device_step_cost("llama3_8b", "h100_sxm")
    plain.step_cost(StepBatch(((256, 256, True),), ()))
    assert not any("chunked prefill" in n for n in plain.notes)
