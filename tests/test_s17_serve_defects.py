"""Session 17 (helper serve17): known defects of the serving step model, each with the number it pins."""

import pytest

from cosim.serving import serve
from cosim.serving.steptime import StepBatch, device_step_cost

KIVI_NOTE = "chunked prefill: kivi2.quantize: per token: each chunk prices its own tokens' share"
# 2 requests of 1,000 prompt tokens: the chunked scheduler's 512-token budget splits each prompt in two
RUN = dict(requests=2, qps=1.0, prompt_len=1000, output_len=2)


def _chunk_notes(notes):
    return [n for n in notes if n.startswith("chunked prefill: ")]


def test_a_shared_step_model_notes_only_what_each_run_priced_chunked():
    """One step model serves three runs. Run 1 (chunked, 512-token budget) splits each 1,000-token prompt into
    512 + 488: kivi2's per-token quantize is priced chunked and the run says so. Run 2 (continuous) prefills
    both prompts whole: no chunk priced, no chunk note (before session 17 _chunk_ops wrote the note into the
    shared model when it computed a price, so run 2 carried run 1's note). Run 3 (chunked again) finds every
    chunk price in the cache and still says so (the note follows what the run priced, not what it computed)."""
    steps = device_step_cost("llama3_8b", "h100_sxm", recipe="kivi2")
    r1 = serve("llama3_8b", "h100_sxm", step_model=steps, scheduler="chunked", recipe="kivi2", **RUN)
    assert _chunk_notes(r1.notes) == [KIVI_NOTE]
    r2 = serve("llama3_8b", "h100_sxm", step_model=steps, scheduler="continuous", recipe="kivi2", **RUN)
    assert _chunk_notes(r2.notes) == []
    keys = set(steps._cache)  # just before run 3
    r3 = serve("llama3_8b", "h100_sxm", step_model=steps, scheduler="chunked", recipe="kivi2", **RUN)
    assert _chunk_notes(r3.notes) == [KIVI_NOTE]
    # run 3's chunks came from the cache: run 2 added only its whole-prompt components
    assert all(k in keys for k in [("pctx", 512, 0, False), ("pctx", 488, 512, True)])
    assert [k for k in set(steps._cache) - keys if k[0] == "pctx"] == []  # run 3 priced no chunk anew
    assert r3.requests["ttft_s"].tolist() == r1.requests["ttft_s"].tolist()


def test_a_cached_chunk_price_still_notes_the_chunk_in_a_new_run():
    """At the step-cost API: begin_run starts a run's record; a chunk priced from the cache in the new run
    notes its rule (deepseek_v2_lite: MLA's kv_b_proj over every token so far), a whole prompt notes nothing."""
    steps = device_step_cost("deepseek_v2_lite", "h100_sxm")
    chunk = StepBatch(((256, 256, True),), ())
    steps.step_cost(chunk)
    steps.begin_run()
    assert _chunk_notes(steps.notes) == []
    steps.step_cost(StepBatch(((512, 0, True),), ()))
    assert _chunk_notes(steps.notes) == []
    hits = len(steps._cache)
    steps.step_cost(chunk)
    assert len(steps._cache) == hits  # priced from the cache
    assert _chunk_notes(steps.notes) == ["chunked prefill: kv_b_proj: over every token so far: priced at cached "
                                         "+ new tokens on every chunk (the cached ones again each chunk)"]


def _token_ops(steps, batch):
    """The token-wise ops (head excluded) step_cost prices for `batch` on a fresh cache, and the step cost."""
    import dataclasses
    steps = dataclasses.replace(steps, _cache={}, _ctx_ops={}, _btab=None)
    got, price = [], steps._price
    steps._price = lambda ops: (got.extend(ops := list(ops)), price(ops))[1]
    cost = steps.step_cost(batch)
    return [o for o in got if o.name in steps.token_names and o.group != "head"], cost


def _flops(ops):
    return sum(o.flops * o.repeat for o in ops)


def test_fastkv_decode_tokens_in_a_mixed_step_run_every_layer():
    """llama3_8b + fastkv (TSP at layer 15 of 32, rate 0.2): a step prefilling one 100-token prompt beside 4
    decoding sequences. Layers 0-14 run 100 + 4 = 104 tokens; layers 15-31 (17) run the prompt's
    ceil(0.2 x 100) = 20 selected tokens plus the 4 decode tokens, 24 (before session 17: ceil(0.2 x 104) =
    21, three decode tokens skipping 17 layers). The token-wise FLOPs are then exactly those of the prompt
    prefilled alone plus the 4 decode tokens alone; a q_proj GEMM is 2 x 4,096 x 4,096 FLOPs a token, so
    q_proj alone carries 2 x 4,096^2 x (15 x 104 + 17 x 24) = 66,035,122,176."""
    steps = device_step_cost("llama3_8b", "h100_sxm", recipe="fastkv")
    mixed, cost = _token_ops(steps, StepBatch(((100, 0, True),), (1024,) * 4))
    assert sorted((o.repeat, o.dims["m"]) for o in mixed if o.name == "q_proj") == [(15, 104), (17, 24)]
    assert _flops(o for o in mixed if o.name == "q_proj") == 2 * 4096 ** 2 * (15 * 104 + 17 * 24) == 66035122176
    prompt, _ = _token_ops(steps, StepBatch(((100, 0, True),), ()))
    decode, _ = _token_ops(steps, StepBatch((), (1024,) * 4))
    assert sorted((o.repeat, o.dims["m"]) for o in prompt if o.name == "q_proj") == [(15, 100), (17, 20)]
    assert _flops(mixed) == _flops(prompt) + _flops(decode)
    # the weights are read once for the step: cheaper than the two steps apart, dearer than a 104-token prompt
    alone = [steps.step_cost(b).latency_s for b in (StepBatch(((100, 0, True),), ()), StepBatch((), (1024,) * 4))]
    assert cost.latency_s < sum(alone)
    # a step without decode tokens, or without TSP, is priced as before (one trace of the step's tokens)
    plain = device_step_cost("llama3_8b", "h100_sxm")
    ops, _ = _token_ops(plain, StepBatch(((100, 0, True),), (1024,) * 4))
    assert [(o.repeat, o.dims["m"]) for o in ops if o.name == "q_proj"] == [(32, 104)]


@pytest.mark.parametrize("recipe, square", [
    ("h2o", ["attn_scores", "attn_softmax", "attn_pv", "h2o.column_sums"]),
    ("mikv", ["attn_scores", "attn_softmax", "attn_pv"]),
])
def test_unfused_attention_after_cached_context_is_priced_from_the_shapes(recipe, square):
    """H2O and MiKV prefill with the unfused attention (they need the scores). A chunk of c = 512 tokens after
    ctx = 1,024 cached runs it over its 512 queries and all 1,536 keys (before session 17: refused). The score
    GEMM, a layer: b = 32 heads, m = 512, n = 1,536, k = 128: 2 x 32 x 512 x 1,536 x 128 = 6,442,450,944
    FLOPs; bytes q 512 x 32 x 128 x 2 = 4,194,304 + K 1,536 x 8 x 128 x 2 = 3,145,728 + scores 32 x 512 x
    1,536 x 2 = 50,331,648: 57,671,680 B. The softmax runs 32 x 512 = 16,384 rows of 1,536; H2O's column sums
    add those rows into the 1,536 keys' accumulators (a prompt's column sums are sums over its queries)."""
    steps = device_step_cost("llama3_8b", "h100_sxm", recipe=recipe)
    ops = {o.name: o for o in steps._chunk_ops(512, 1024, False)}
    s = ops["attn_scores"]
    assert (s.repeat, s.dims["b"], s.dims["m"], s.dims["n"], s.dims["k"]) == (32, 32, 512, 1536, 128)
    assert s.flops == 2 * 32 * 512 * 1536 * 128 == 6442450944
    assert s.bytes == 4194304 + 3145728 + 50331648 == 57671680
    assert (ops["attn_softmax"].dims["rows"], ops["attn_softmax"].dims["cols"]) == (16384, 1536)
    assert (ops["attn_pv"].dims["m"], ops["attn_pv"].dims["k"]) == (512, 1536)
    if recipe == "h2o":
        assert (ops["h2o.column_sums"].dims["rows"], ops["h2o.column_sums"].dims["cols"]) == (16384, 1536)
    # a first chunk is the c-token trace's square, as before
    first = {o.name: o for o in steps._chunk_ops(512, 0, False)}
    assert (first["attn_scores"].dims["m"], first["attn_scores"].dims["n"]) == (512, 512)
    steps.step_cost(StepBatch(((512, 1024, True),), ()))
    (note,) = [n for n in steps.notes if "unfused attention" in n]
    assert note.startswith(f"chunked prefill: {', '.join(square)}: unfused attention: the chunk's c queries over")


def test_h2o_serves_under_the_chunked_scheduler():
    """A 1,000-token prompt under the 512-token budget: chunks 512 + 488 (the second after 512 cached), where
    the run was refused before session 17; the prompt's chunked scores are 512 x 512 + 488 x 1,000 pairs a
    head, fewer than the unchunked unfused square's 1,000 x 1,000 (keys after a chunk are not there yet)."""
    r = serve("llama3_8b", "h100_sxm", scheduler="chunked", recipe="h2o", **RUN)
    assert r.summary["requests"] == 2
    assert any("unfused attention: the chunk's c queries" in n for n in r.notes)
    steps = device_step_cost("llama3_8b", "h100_sxm", recipe="h2o")
    pairs = lambda ops: sum(o.dims["m"] * o.dims["n"] for o in ops if o.name == "attn_scores")
    assert pairs(steps._chunk_ops(512, 0, False)) + pairs(steps._chunk_ops(488, 512, True)) == 512 * 512 + 488 * 1000
    assert pairs(steps._chunk_ops(1000, 0, True)) == 1000 * 1000


import math  # noqa: E402

from hypothesis import example, given, settings, strategies as st  # noqa: E402


def _act_bytes(ops):
    """Bytes of the ops' activations (every tensor but the weights, which a step reads once whatever its
    tokens), with their repeats."""
    return sum(v * o.repeat for o in ops for k, v in o.bytes_by_role().items() if k != "weight")


@pytest.mark.parametrize("model", ["llama3_8b", "mixtral_8x7b"])
@settings(max_examples=15, deadline=None)
@given(p=st.integers(1, 5000), d=st.integers(1, 96))
@example(p=35, d=1)  # 0.2 x 35 = 7.000000000000001 in floating point: the recipe propagates 8
@example(p=1, d=96)
@example(p=100, d=4)
def test_fastkv_mixed_step_is_the_prompt_alone_plus_the_decodes_alone(model, p, d):
    """Any p prompt tokens beside d decode tokens (exact shapes): the layers after tsp_layer run
    ceil(0.2 x p) + d tokens, and the step's token-wise FLOPs and activation bytes are the prompt's alone plus
    the decodes' alone. On a MoE model (mixtral_8x7b, top_k 2) the routed-expert ops run 2 token-expert pairs
    a token there too: before session 17 the expert activation after tsp_layer kept the rows of the trace's
    whole prompt (the step check, _check_tsp_rows, then refuses it by name)."""
    steps = _FASTKV[model]
    mixed, _ = _token_ops(steps, StepBatch(((p, 0, True),), (1024,) * d))
    n = max(1, math.ceil(0.2 * p)) + d  # the recipe's count of propagated prompt tokens, + d
    after = {o.dims["m"] for o in mixed if o.name == "q_proj" and o.dims.get("tsp_after")}
    assert after == {n}
    if model == "mixtral_8x7b":
        assert {o.dims["rows"] for o in mixed if o.name == "expert_act" and o.dims.get("tsp_after")} == {2 * n}
    prompt, _ = _token_ops(steps, StepBatch(((p, 0, True),), ()))
    decode, _ = _token_ops(steps, StepBatch((), (1024,) * d))
    assert _flops(mixed) == _flops(prompt) + _flops(decode)
    assert _act_bytes(mixed) == pytest.approx(_act_bytes(prompt) + _act_bytes(decode), rel=1e-12)


_FASTKV = {m: device_step_cost(m, "h100_sxm", recipe="fastkv") for m in ("llama3_8b", "mixtral_8x7b")}


class _Edited:
    """A served workload whose prefill traces `edit` rewrites (the step model's errors on a broken recipe)."""
    def __init__(self, w, edit):
        self._w, self._edit = w, edit

    def __getattr__(self, name):
        return getattr(self._w, name)

    def trace(self, phase, batch, seq, **kw):
        tr = self._w.trace(phase, batch, seq, **kw)
        return self._edit(tr) if phase == "prefill" else tr


def _with_effects(tr, edit_effect):
    import dataclasses
    fx = {k: (edit_effect(dict(e)) if isinstance(e, dict) and "tsp_tokens" in e else e)
          for k, e in tr.meta["recipe_effects"].items()}
    return dataclasses.replace(tr, meta={**tr.meta, "recipe_effects": fx})


def test_fastkv_step_model_refuses_a_missing_rate_or_count_in_one_message():
    """tsp_rate (before session 17 a bare one-value unpack: ValueError) and the search for the trace that
    propagates a step's tokens (before: AssertionError) each raise one InputError naming the recipe and the
    parameter."""
    import dataclasses

    from workloads.io import InputError
    base = device_step_cost("llama3_8b", "h100_sxm", recipe="fastkv")
    drop = lambda tr: dataclasses.replace(tr, meta={**tr.meta, "recipe_effects": {
        k: e for k, e in tr.meta["recipe_effects"].items() if not (isinstance(e, dict) and "tsp_tokens" in e)}})
    steps = dataclasses.replace(base, _cache={}, workload=_Edited(base.workload, drop))
    with pytest.raises(InputError, match=r"^serve: recipe: got 'fastkv', whose prefill trace marks ops tsp_after "
                                         r"\(token-selective propagation\) with 0 tsp_rate parameters \(none in"):
        steps.tsp_rate
    zero = lambda tr: _with_effects(tr, lambda e: {**e, "tsp_tokens": 0})
    steps = dataclasses.replace(base, _cache={}, workload=_Edited(base.workload, zero))
    with pytest.raises(InputError, match=r"^serve: recipe: got 'fastkv' with tsp_rate 0.2: no prefill trace of "
                                         r"\d+ to \d+ tokens propagates 4 tokens"):
        steps._tsp_mixed_ops(100, 4)


def test_fastkv_step_model_refuses_an_op_left_at_the_whole_prompt_after_the_selection_layer():
    """_check_tsp_rows: an op after tsp_layer whose token dimension is not the propagated count (mixtral's
    expert activation left at 200 = 100 tokens x top_k 2 rows, as before session 17, where 24 x 2 = 48 were
    due) is refused by name; the ops FastKV builds pass."""
    from workloads.io import InputError
    steps = _FASTKV["mixtral_8x7b"]
    ops = [o for o in steps._tsp_mixed_ops(100, 4) if o.dims.get("tsp_after")]
    steps._check_tsp_rows(ops, 24)
    bad = [o.with_(dims={**o.dims, "rows": 200}) if o.name == "expert_act" else o for o in ops]
    with pytest.raises(InputError, match=r"^serve: recipe: got 'fastkv': op 'expert_act' after the selection layer "
                                         r"\(tsp_after\) runs rows = 200; expected the 24 propagated tokens "
                                         r"\(rows = 24 x top_k 2 = 48\)"):
        steps._check_tsp_rows(bad, 24)


def test_two_propagation_counts_are_one_error_not_a_silent_whole_prompt():
    """The sharder took a trace whose effects record two token-selective propagation counts as having none (the
    layers after the selection layer then priced on the whole prompt, silently): one reader now refuses it."""
    from types import SimpleNamespace
    from workloads.compression.propagation import propagated_tokens
    from workloads.io import InputError
    tr = SimpleNamespace(recipe="fastkv+fastkv", meta={"recipe_effects": {"a": {"tsp_tokens": 20}, "b": {"tsp_tokens": 30}}})
    with pytest.raises(InputError, match=r"record 2 token-selective propagation counts \(20, 30\)"):
        propagated_tokens(tr)
    assert propagated_tokens(SimpleNamespace(recipe=None, meta={})) is None
