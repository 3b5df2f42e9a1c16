"""Session 18 (cleanup): the chunked-prefill rule is written once (steptime._chunk_rule, read through
DeviceStepCost._chunk_plan) and both the priced ops (_chunk_ops) and the run's notes (_chunk_notes) follow it."""

import pytest

from cosim.serving.steptime import device_step_cost


def _note_of(notes):
    """op name -> the note line naming it (each name in exactly one line)."""
    out = {}
    for line in notes:
        names = line.removeprefix("chunked prefill: ").split(": ")[0].split(", ")
        for n in names:
            assert n not in out, (n, line)
            out[n] = line
    return out


def test_palu_reconstruct_priced_once_over_the_context():
    """llama3_8b + palu, a 256-token chunk after 256 cached (bucketed ctx + c = 512): Palu's K/V reconstruct
    GEMMs are OVER_CONTEXT, each priced once at the whole 512 tokens: b 2 (KV groups of 4 heads), m 512,
    n = 4 heads x 128 = 512, k = the group's rank (128 for K, 384 for V): 2 x 2 x 512 x 512 x 128 = 134,217,728 and
    x 384 = 402,653,184 FLOPs a layer. Before session 18 the op rule and the note rule were two copies: the ops
    also took them as unfused-attention score-matrix ops (their output is 512 x 512 when the prompt is 512
    tokens) and priced each twice, once more with m = 256, while the note said 'over every token so far'."""
    st = device_step_cost("llama3_8b", "h100_sxm", recipe="palu")
    ops = [o for o in st._chunk_ops(256, 256, True) if o.kind != "attention"]
    assert [(o.name, o.dims["m"], o.flops) for o in ops] == [("palu.k_reconstruct", 512, 134217728.0),
                                                           ("palu.v_reconstruct", 512, 402653184.0)]
    st._chunked = {512: None}
    assert st._chunk_notes() == ("chunked prefill: palu.k_reconstruct, palu.v_reconstruct: over every token so "
                                 "far: priced at cached + new tokens on every chunk (the cached ones again each "
                                 "chunk)",)


@pytest.mark.parametrize("model,recipe", [("llama3_8b", "palu"), ("llama3_8b", "h2o"), ("llama3_8b", "kivi2"),
                                          ("llama3_8b", "zipcache"), ("llama3_8b", "mikv"), ("llama3_8b", "gear2"),
                                          ("deepseek_v2_lite", None)])
def test_notes_name_each_priced_op_by_the_rule_it_was_priced_by(model, recipe):
    """A later chunk (256 new after 256 cached) and a first one (512 of a longer prompt): every non-attention op
    priced appears once, and the note naming it states the rule its price followed (its m / rows / cols read
    off the op: the whole prompt's for once-a-prompt and over-context ops, the chunk's c query rows over all keys
    for the unfused attention, the chunk's own tokens otherwise)."""
    st = device_step_cost(model, "h100_sxm", recipe=recipe)
    for c, ctx, last in [(256, 256, True), (512, 0, False)]:
        ops = [o for o in st._chunk_ops(c, ctx, last) if o.kind != "attention"]
        assert len({o.name for o in ops}) == len(ops)  # no op priced twice
        st._chunked = {ctx + c: None}
        note = _note_of(st._chunk_notes())
        for o in ops:
            line = note[o.name]
            if "once a prompt" in line:
                assert last and o.dims.get("per_prompt"), o.name
            elif "over every token so far" in line:
                assert o.dims.get("over_context"), o.name
            elif "unfused attention" in line and ctx:
                assert any(tuple(t.shape[-2:]) == (c, ctx + c) for t in o.inputs + o.outputs), o.name
            else:
                assert "per token" in line or "unfused attention" in line, line
        if not last:
            assert not any(o.dims.get("per_prompt") for o in ops)
