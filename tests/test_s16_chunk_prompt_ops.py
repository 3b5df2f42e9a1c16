"""Session 16 (helper h16e): a prompt prefilled in chunks prices each non-attention context op as the engine
runs it, by the flag the recipe (or builder) sets where it builds the op (workloads.ops.PER_PROMPT /
OVER_CONTEXT); FastKV under chunked prefill is refused in one message."""

import dataclasses

import pytest

from cosim.serving.steptime import StepBatch, device_step_cost
from workloads.io import InputError
from workloads.ops import OVER_CONTEXT, PER_PROMPT

CHUNKS = tuple((512, 512 * i, i == 7) for i in range(8))  # a 4,096-token prompt as 8 x 512


def _priced(steps, batch):
    """The context ops step_cost prices for `batch` on a fresh cache, and the cost."""
    steps = dataclasses.replace(steps, _cache={}, _ctx_ops={}, _btab=None)
    priced, price = [], steps._price
    steps._price = lambda ops: (priced.extend(ops := list(ops)), price(ops))[1]
    cost = steps.step_cost(batch)
    return [o for o in priced if o.name not in steps.token_names], cost


def _named(ops, name):
    return [o for o in ops if o.name == name]


def test_zipcache_probe_runs_once_over_the_whole_prompt_on_its_last_chunk():
    """llama3_8b + zipcache, 4,096 tokens as 8 x 512: the probe (zipcache_probe_counts(4096, 0.1) = 205 recent +
    204 random = 409 queries over all 4,096 keys, 32 heads x 128 dims) is 2 x 32 x 409 x 4,096 x 128 =
    13,723,762,688 FLOPs a layer, x 32 layers = 439,160,406,016, on the completing chunk only; the other seven
    carry none. Before, each chunk probed its own 512 tokens (51 queries over 512 keys): 5.476e10 in all, 8x
    too little (the probe grows as S^2)."""
    steps = device_step_cost("llama3_8b", "h100_sxm", recipe="zipcache")
    whole, _ = _priced(steps, StepBatch(((4096, 0, True),), ()))
    (w,) = _named(whole, "zipcache.probe_scores")
    assert (w.dims["m"], w.dims["n"], w.dims["b"], w.repeat) == (409, 4096, 32, 32)
    assert w.flops * w.repeat == 2 * 32 * 409 * 4096 * 128 * 32 == 439160406016
    total = 0.0
    for chunk in CHUNKS:
        ops, _ = _priced(steps, StepBatch((chunk,), ()))
        probes = _named(ops, "zipcache.probe_scores")
        assert len(probes) == (1 if chunk[2] else 0)
        total += sum(o.flops * o.repeat for o in probes)
        # its hi/lo quantize needs the saliency: also once, on the last chunk, over the 4,096 x 2,048 values
        assert [o.dims["cols"] for o in _named(ops, "zipcache.quantize")] == ([4096 * 2048] if chunk[2] else [])
    assert total == 439160406016


def test_snapkv_gathers_its_budget_once():
    """snapkv (capacity 1,024) gathers the kept 1,024 tokens once, K and V of 8 KV heads x 128 dims in bf16,
    read and written: 2 x 1,024 x 2,048 x 2 B = 8,388,608 B a layer, x 32 = 268,435,456 B, as the whole
    prompt's; before, each 512-token chunk gathered its own min(512, 1,024) tokens: 1,073,741,824 B."""
    steps = device_step_cost("llama3_8b", "h100_sxm", recipe="snapkv")
    (w,) = _named(_priced(steps, StepBatch(((4096, 0, True),), ()))[0], "snapkv.gather")
    assert w.bytes * w.repeat == 2 * 1024 * 2048 * 2 * 32 == 268435456
    got = [sum(o.bytes * o.repeat for o in _named(_priced(steps, StepBatch((c,), ()))[0], "snapkv.gather"))
           for c in CHUNKS]
    assert got == [0.0] * 7 + [268435456.0]


def test_kivi_still_quantizes_every_chunk_for_its_own_tokens():
    """kivi2's quantize is per-token work: each 512-token chunk quantizes its own 512 x 2,048 = 1,048,576 values
    a layer (32 layers), the eight summing to the whole prompt's 4,096 x 2,048."""
    steps = device_step_cost("llama3_8b", "h100_sxm", recipe="kivi2")
    cols = []
    for chunk in CHUNKS:
        (q,) = _named(_priced(steps, StepBatch((chunk,), ()))[0], "kivi2.quantize")
        assert q.repeat == 32 and not q.dims.get(PER_PROMPT)
        cols.append(q.dims["cols"])
    assert cols == [1048576] * 8 and sum(cols) == 4096 * 2048


def test_zipcache_ttft_chunked_is_back_near_the_unchunked_one():
    """One 8,000-token prompt, zipcache, roofline on h100_sxm: chunked TTFT within 1 % of continuous
    (161.02 vs 161.34 ms); with the probe spread over 16 chunks it was 146.23 ms, 9.4 % below."""
    from cosim.serving import serve
    ttft = {s: serve("llama3_8b", "h100_sxm", requests=1, qps=1.0, prompt_len=8000, output_len=2, scheduler=s,
                     recipe="zipcache").requests["ttft_s"].iloc[0] for s in ("continuous", "chunked")}
    assert ttft["continuous"] == pytest.approx(0.16134, rel=1e-3)
    assert ttft["chunked"] == pytest.approx(ttft["continuous"], rel=0.01)


def test_the_notes_name_each_op_and_how_a_chunk_prices_it():
    """Never silent: a split prompt's notes name the ops per rule (once a prompt / per token)."""
    zc = device_step_cost("llama3_8b", "h100_sxm", recipe="zipcache")
    zc.step_cost(StepBatch(((512, 512, False),), ()))
    assert ("chunked prefill: zipcache.quantize, zipcache.probe_scores, zipcache.probe_softmax: once a prompt: "
            "priced at the whole prompt's length on the chunk that completes it, none on the others") in zc.notes
    kv = device_step_cost("llama3_8b", "h100_sxm", recipe="kivi2")
    kv.step_cost(StepBatch(((512, 0, True),), ()))
    assert not any(n.startswith("chunked prefill") for n in kv.notes)  # a whole prompt: nothing to say
    kv.step_cost(StepBatch(((512, 512, True),), ()))
    assert "chunked prefill: kivi2.quantize: per token: each chunk prices its own tokens' share" in kv.notes


@pytest.mark.parametrize("recipe, once", [
    ("snapkv", {"window_scores", "window_softmax", "vote_sum", "pool", "select", "gather"}),
    ("rocketkv", {"window_scores", "window_softmax", "vote_sum", "pool", "select", "gather", "summary_build"}),
    ("fastkv", {"window_scores", "window_softmax", "vote_sum", "pool", "select", "gather", "tsp_scores",
                "tsp_gather"}),
    ("h2o", {"select", "gather"}),
    ("zipcache", {"probe_scores", "probe_softmax", "quantize"}),
    ("mikv", {"quantize"}),
    ("gear2", {"prompt_svd", "outlier_select", "quantize"}),
    ("kivi2", set()), ("kvquant3", set()), ("fp8_kv", set()), ("streaming_llm", set()), ("minicache", set()),
])
def test_which_recipe_ops_are_once_a_prompt(recipe, once):
    """The recipes mark their once-a-prompt prefill work where they build it (one source); per-token work
    (a KIVI / KVQuant / FP8 quantize of the new KV, MiniCache's merge) is unmarked."""
    from workloads.builder import build_trace
    t = build_trace("llama3_8b", phase="prefill", batch=1, seq=4096, recipe=recipe)
    assert {o.name.split(".", 1)[1] for o in t.ops if o.dims.get(PER_PROMPT)} == once


def test_over_context_ops_are_the_latent_expansions():
    """MLA's kv_b_proj (native, and the mla recipe's) and Palu's K/V reconstruction run over every cached token
    each time; nothing else in these traces does."""
    from workloads.builder import build_trace
    marked = lambda t: sorted(o.name for o in t.ops if o.dims.get(OVER_CONTEXT))
    assert marked(build_trace("deepseek_v2_lite", phase="prefill", batch=1, seq=512)) == ["kv_b_proj"]
    assert marked(build_trace("llama3_8b", phase="prefill", batch=1, seq=512, recipe="mla")) == ["kv_b_proj"]
    assert marked(build_trace("llama3_8b", phase="prefill", batch=1, seq=512, recipe="palu")) == [
        "palu.k_reconstruct", "palu.v_reconstruct"]
    assert marked(build_trace("deepseek_v2_lite", phase="decode", batch=1, seq=512)) == []


def test_fastkv_with_chunked_prefill_is_refused_in_one_message():
    """FastKV's token-selective propagation runs the layers after tsp_layer on the tokens a whole-prompt
    selection picks: a chunk has no share of that. serve refuses it up front naming recipe and scheduler
    (it crashed with OpError 'attention: q_len 512 exceeds kv_len 205'); the step-cost API refuses a split
    prompt's chunk; a whole prompt, and an unchunked run, are priced."""
    from cosim.serving import serve
    with pytest.raises(InputError, match=r"^serve: recipe: got 'fastkv' with scheduler 'chunked' \(CLI --scheduler "
                                         r"chunked\): recipe 'fastkv' propagates only .*expected an unchunked "
                                         r"scheduler \(continuous, static or disaggregated\) or another recipe$"):
        serve("llama3_8b", "h100_sxm", requests=2, qps=1.0, prompt_len=2048, output_len=4, scheduler="chunked",
              recipe="fastkv")
    steps = device_step_cost("llama3_8b", "h100_sxm", recipe="fastkv")
    for chunk in ((512, 0, False), (512, 512, True)):
        with pytest.raises(InputError, match="a prompt split into chunks"):
            steps.step_cost(StepBatch((chunk,), ()))
    assert steps.step_cost(StepBatch(((2048, 0, True),), ())).latency_s > 0
    r = serve("llama3_8b", "h100_sxm", requests=2, qps=1.0, prompt_len=2048, output_len=4, recipe="fastkv")
    assert len(r.requests) == 2


def test_a_collective_summing_a_once_a_prompt_op_runs_once_a_prompt_too():
    """Under TP the head-summed partial scores of FastKV's TSP selection are all-reduced: the collective runs
    when its op runs, so it carries the op's PER_PROMPT flag (priced on the completing chunk with it)."""
    from workloads.builder import build_trace
    t = build_trace("llama3_8b", phase="prefill", batch=1, seq=4096, recipe="fastkv", parallel={"tp": 2})
    (ar,) = [o for o in t.ops if o.name == "fastkv.tsp_scores_allreduce"]
    assert ar.kind == "allreduce" and ar.dims[PER_PROMPT] is True


def test_rocketkv_selects_once_though_a_chunk_fits_its_budget():
    """rocketkv (token budget 1,024) emits its selection only for a prompt above the budget, so no chunk's
    own 512-token trace holds it: the 2,048-token prompt's SnapKV++ selection (cr 2, alpha 0.2 + 0.06 = 0.26,
    capacity int(2048 / 2^0.26) = int(2048 / 1.1975) = 1,710, minus the 256-token reserve: 1,454 kept) comes
    once, on the completing chunk, and never on the three before it, whose (ctx + c)-token traces hold it."""
    steps = device_step_cost("llama3_8b", "h100_sxm", recipe="rocketkv")
    chunks = tuple((512, 512 * i, i == 3) for i in range(4))
    gathers = [[o.dims["rows"] for o in _priced(steps, StepBatch((c,), ()))[0] if o.name == "rocketkv.gather"]
               for c in chunks]
    assert gathers == [[], [], [], [1454]]
