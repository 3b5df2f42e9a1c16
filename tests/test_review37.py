"""Session 37's new-user review of the CLI: a second KV storage part re-laid the first's codes as K and V
(kivi2+fp8_kv: 4.30 GB of KV at batch 8 x 8,192 tokens on Llama-3-8B, above bf16's 2.15 GB); a narrow --kv format
beside a method storing the cache its own way was dropped silently; a recipe's other notes (H2O's score state) were
computed and never printed."""

import pytest

import cosim
from workloads.builder import build_trace
from workloads.io import InputError


@pytest.mark.parametrize("recipe, second, first", [("kivi2+fp8_kv", "fp8_kv", "kivi2"),
                                                   ("fp8_kv+kivi2", "kivi2", "fp8_kv"),
                                                   ("kivi2+kivi4", "kivi4", "kivi2")])
def test_a_second_kv_storage_is_refused_naming_both_parts(recipe, second, first):
    with pytest.raises(InputError) as e:
        build_trace("llama3_8b", "decode", 8, 8192, recipe=recipe)
    msg = str(e.value)
    assert f"{second}.yaml: method" in msg and f"no second KV storage: part {first} already stores" in msg


def test_a_kv_format_still_composes_with_token_selection():
    t = build_trace("llama3_8b", "decode", 1, 8192, recipe="h2o+fp8_kv")
    # H2O keeps 2 x int(0.1 x 8,192) = 1,638 tokens, stored in fp8 (1 B a value) plus the per-head scales
    assert t.meta["kv_state"]["capacity"] == 1638
    assert t.meta["footprint"]["kv_cache"] == pytest.approx(1638 * 131_072 / 2, rel=0.01)


def test_a_narrow_kv_flag_beside_a_storage_method_is_said():
    rep = cosim.simulate(build_trace("llama3_8b", "decode", 1, 4096, kv="mxfp4", recipe="fp8_kv"), "h100_sxm")
    assert any(n.startswith("recipe fp8_kv: kv mxfp4 given beside fp8_kv, which stores the cache in its own "
                            "representation") for n in rep.notes)
    plain = cosim.simulate(build_trace("llama3_8b", "decode", 1, 4096, recipe="fp8_kv"), "h100_sxm")
    assert not any("given beside" in n for n in plain.notes)


def test_every_note_a_recipe_gives_reaches_the_report():
    rep = cosim.simulate(build_trace("llama3_8b", "decode", 1, 4096, recipe="h2o"), "h100_sxm")
    # 32 layers x 32 heads x 818 kept tokens x 4 B
    assert any(n.startswith("recipe h2o: H2O's accumulated fp32 scores (32 layers x 32 heads x 818 kept tokens x 4 B "
                            "= 3,350,528 B per sequence)") for n in rep.notes)


def test_generate_says_what_the_recipe_did_in_each_phase():
    """StreamingLLM (4 sinks + 2,000 recent) keeps a 1,900-token prompt whole and evicts from 2,005 tokens on: only
    the prefill's "nothing evicted" was printed."""
    from cosim.serving.generate import generate
    g = generate("llama3_8b", "h100_sxm", 1900, 256, recipe="streaming_llm")
    assert "prefill: recipe streaming_llm: all 1,900 cached tokens fit its budget of 2,004: nothing evicted, cache " \
           "unchanged" in g.notes
    assert "last decode step (2,155 tokens): recipe streaming_llm: keeps 2,004 of its 2,155 tokens" in g.notes
    assert g.footprint["kv_cache"] == 2004 * 131_072
