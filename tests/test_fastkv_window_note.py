"""FastKV on an all-windowed model: the window after the selection layer is said to be an upper bound."""

from compression_helpers import LLAMA3_8B, trace_for
from workloads.compression import apply_recipe


def test_fastkv_windowed_attention_after_selection_is_said_to_be_an_upper_bound():
    # Mistral-7B: every layer windowed (4,096 tokens); FastKV at an 8,192-token prompt propagates
    # ceil(0.2 x 8,192) = 1,639 tokens from layer 15; spread over 8,192 positions, 4,096 x 1,639 / 8,192 = 819.5 of
    # them fall in a window, while the op applies the window to their own indices (all 1,639 fit): an upper bound
    from workloads.models import load_model
    m = load_model("mistral_7b")
    t = apply_recipe(trace_for(m, "prefill", seq=8192), "fastkv", m)
    after = [o for o in t.ops if o.kind == "attention" and o.dims.get("tsp_after")]
    assert [(o.repeat, o.dims["q_len"], o.dims["kv_len"]) for o in after] == [(17, 1639, 1639)]
    note = t.meta["recipe_effects"]["fastkv"]["note_window_after_selection"]
    assert "1639 propagated tokens" in note and "4096-token sliding window" in note and "about 820 of them" in note
    # a model without a window says nothing of the kind
    t8 = apply_recipe(trace_for(LLAMA3_8B, "prefill", seq=8192), "fastkv", LLAMA3_8B)
    assert "note_window_after_selection" not in t8.meta["recipe_effects"]["fastkv"]
