"""Serving's KV charge under a recipe compressing the prompt alone, read from its decode trace where the line through
its kept prompt is not what it stores, and a windowed model's layers paged per token (session 39)."""

import pytest
from hypothesis import given, settings, strategies as st

import cosim
from cosim.serving.kv_memory import StoredTokens, bytes_per_token
from cosim.serving.steptime import Workload

TOKEN = 32 * 8 * 128 * 2 * 2  # Llama-3-8B's and Mistral-7B's bf16 K and V bytes a token: 131,072


def _charge(model, recipe, n, prompt=None):
    """(tokens of plain KV charged, tokens of plain KV its decode trace holds) at `n` tokens after `prompt`."""
    w = Workload(cosim.load_model(model), recipe=recipe)
    unit = bytes_per_token(w)
    held = w.trace("decode", 1, n, prompt_len=prompt).meta["footprint"]["kv_cache"]
    return StoredTokens(w, unit, 16)(n, prompt) * unit / TOKEN, held / TOKEN


@pytest.mark.parametrize("recipe, n, prompt, was", [
    ("snapkv+streaming_llm", 5000, 2000, 4032),  # 1,024 kept + 3,008 generated, where StreamingLLM keeps 4 + 2,000
    ("snapkv+streaming_llm", 8000, 500, 8000),
    ("snapkv+h2o", 12000, 8000, 1821),  # under: H2O keeps 20 % of the context, not of a 1-token prompt's span
])
def test_a_part_evicting_generated_tokens_is_charged_what_it_stores(recipe, n, prompt, was):
    charged, held = _charge("llama3_8b", recipe, n, prompt)
    assert 0 <= charged - held < 1 and held != was  # within the capacity's unit (less than a token) of its rounding


def test_the_line_is_kept_where_it_is_what_the_recipe_stores():
    def holds(recipe):
        w = Workload(cosim.load_model("llama3_8b"), recipe=recipe)
        return StoredTokens(w, bytes_per_token(w), 16).line_holds
    assert holds("snapkv") and holds("fastkv")
    assert not any(map(holds, ("snapkv+streaming_llm", "fastkv+razor_attention", "rocketkv", "snapkv+kivi2")))


def test_a_windowed_model_is_charged_every_token_its_recipe_keeps_paged_per_token():
    """Mistral-7B's 4,096-token window: the engine pages its layers per token (window_note), so a request holds what
    the recipe keeps. The charge was each token's share of a plain cache capped at the window: StreamingLLM's 2,004
    tokens at 12,000 were 2,004 / 4,096 of 12,000 tokens (5,887), SnapKV's 1,024 + 4,000 after 8,000 were 6,000."""
    assert _charge("mistral_7b", "streaming_llm", 12000) == (2004, 2004)
    charged, held = _charge("mistral_7b", "snapkv", 12000, 8000)
    assert (charged, held) == (1024 + 4000, 4096)  # the window caps what attention reads, not what is paged


def test_the_serve_note_says_which_rule_charged_the_generated_tokens():
    from cosim.serving import serve
    notes = serve("llama3_8b", "h100_sxm", qps=5, requests=3, prompt_len=2000, output_len=50,
                  recipe="snapkv+streaming_llm").notes
    assert any("past its prompt a request is charged the recipe's decode trace at its prompt and context" in n
               for n in notes)
    notes = serve("llama3_8b", "h100_sxm", qps=5, requests=3, prompt_len=2000, output_len=50, recipe="snapkv").notes
    assert any("past its prompt each generated token is added at the rate the recipe stores a token it keeps "
               "(131,072 B/token" in n and "checked at 4 prompt and generation lengths" in n for n in notes)


@settings(max_examples=15, deadline=None)
@given(recipe=st.sampled_from(["snapkv+streaming_llm", "fastkv+razor_attention", "snapkv+h2o", "h2o+snapkv",
                               "rocketkv+streaming_llm", "rocketkv", "snapkv", "fastkv"]),
       prompt=st.integers(64, 4000), generated=st.integers(1, 4000))
def test_a_prompt_only_recipes_charge_never_falls_below_what_it_stores(recipe, prompt, generated):
    """Within 4,096 tokens a prompt is read exactly and the generated tokens to the block: over by at most the 16
    tokens a block rounds up (with RocketKV's chunk summaries, 1.5 tokens' worth a token) and one unit of
    rounding."""
    n = prompt + generated
    w = Workload(cosim.load_model("llama3_8b"), recipe=recipe)
    unit = bytes_per_token(w)
    held = w.trace("decode", 1, n, prompt_len=prompt).meta["footprint"]["kv_cache"]
    over = StoredTokens(w, unit, 16)(n, prompt) * unit - held
    assert 0 <= over <= 24 * TOKEN + unit
