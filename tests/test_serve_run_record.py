"""A step model shared by two serve runs reports of each run only the cost-model notes and levels of what that run
priced (session 19; left open by sessions 17 and 18): the notes and `levels_used` lived on the step model and
accumulated over its runs, so a run carried the previous run's."""

from cosim.serving import serve
from cosim.serving.steptime import StepBatch, device_step_cost

# llama3_8b + zipcache at level analytical on h100_sxm: a decode step prices ZipCache's probe attention (a custom
# op: no analytical model, the roofline prices it) and its chunk quantize, and reads an int2/int4 cache
RUN = dict(requests=2, qps=1.0, prompt_len=300, recipe="zipcache", level="analytical")
DECODE_NOTES = ("zipcache.probe_attention: kind custom has no analytical model; roofline used",
                "zipcache.chunk_quantize: quantize not measured; modelled with the add kernel's parameters",
                "attention: int2/int4 KV cache priced as the calibrated cudnn bf16 decode kernel reading the stored "
                "format's bytes; no int2/int4-KV attention kernel is measured")


def _step_model():
    return device_step_cost("llama3_8b", "h100_sxm", level="analytical", recipe="zipcache")


def test_a_prefill_only_run_after_a_decoding_run_reports_only_its_own_notes_and_levels():
    """Run 1 decodes (output_len 3): the decode notes and the roofline's level. Run 2 on the same step model has
    output_len 1 (no decode step): before session 19 it reported level 'analytical+roofline' and run 1's three
    decode notes; now what a fresh model reports ('analytical', none of them)."""
    steps = _step_model()
    r1 = serve("llama3_8b", "h100_sxm", step_model=steps, output_len=3, **RUN)
    assert r1.summary["level_used"] == "analytical+roofline"
    assert all(n in r1.notes for n in DECODE_NOTES)
    r2 = serve("llama3_8b", "h100_sxm", step_model=steps, output_len=1, **RUN)
    fresh = serve("llama3_8b", "h100_sxm", step_model=_step_model(), output_len=1, **RUN)
    assert r2.summary["level_used"] == fresh.summary["level_used"] == "analytical"
    assert not any(n in r2.notes for n in DECODE_NOTES)
    assert r2.notes == fresh.notes


def test_a_run_served_from_the_cache_keeps_its_notes_and_levels():
    """Run 3 repeats run 1 on the warm model: every price comes from the cache (no component priced anew) and the
    run still reports run 1's notes and levels, in run 1's order."""
    steps = _step_model()
    r1 = serve("llama3_8b", "h100_sxm", step_model=steps, output_len=3, **RUN)
    serve("llama3_8b", "h100_sxm", step_model=steps, output_len=1, **RUN)
    keys = set(steps._cache)
    r3 = serve("llama3_8b", "h100_sxm", step_model=steps, output_len=3, **RUN)
    assert set(steps._cache) == keys
    assert r3.summary["level_used"] == r1.summary["level_used"]
    assert r3.notes == r1.notes


def test_begin_run_at_the_step_cost_api():
    """Within a run notes gather over its steps; begin_run empties the run's record, not the setup notes."""
    steps = _step_model()
    steps.add_notes("setup note")
    steps.step_cost(StepBatch((), (300,)))  # one decode step
    assert all(n in steps.notes for n in DECODE_NOTES) and "setup note" in steps.notes
    assert list(steps.levels_used) == ["analytical", "roofline"]
    steps.begin_run()
    assert steps.notes == ("setup note",) and steps.levels_used == {}
    steps.step_cost(StepBatch(((300, 0, True),), ()))  # a prompt
    assert not any(n in steps.notes for n in DECODE_NOTES) and list(steps.levels_used) == ["analytical"]
    steps.step_cost(StepBatch((), (300,)))  # the decode step again, from the cache
    assert all(n in steps.notes for n in DECODE_NOTES) and list(steps.levels_used) == ["analytical", "roofline"]
