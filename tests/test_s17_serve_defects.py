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
    n_cached = len(steps._cache)
    r2 = serve("llama3_8b", "h100_sxm", step_model=steps, scheduler="continuous", recipe="kivi2", **RUN)
    assert _chunk_notes(r2.notes) == []
    r3 = serve("llama3_8b", "h100_sxm", step_model=steps, scheduler="chunked", recipe="kivi2", **RUN)
    assert _chunk_notes(r3.notes) == [KIVI_NOTE]
    # run 3's chunks came from the cache: run 2 added only its whole-prompt components
    assert all(k in steps._cache for k in [("pctx", 512, 0, False), ("pctx", 488, 512, True)])
    assert len(steps._cache) >= n_cached
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
