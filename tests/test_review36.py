"""Session 36: a one-token prefill is a prompt's (or a prompt's part's), not a decode step: recipes tell a decode
step's attention by its phase (workloads.compression.common.is_decode_step), not by its single query."""

import os
import re

import pytest

import cosim
from workloads.compression.common import is_decode_step
from workloads.ops import Op

RECIPES = sorted(n[:-5] for n in os.listdir(os.path.join(os.path.dirname(cosim.__file__), "configs", "recipes"))
                 if n.endswith(".yaml"))


def _op_names(trace) -> set:
    return {re.sub(r"\(.*?\)", "", o.name) for o in trace.ops}  # a recipe's parameters out of its ops' names


@pytest.mark.parametrize("model", ["llama3_8b", "deepseek_v2_lite"])
def test_every_recipe_builds_a_one_token_prefill_with_the_ops_of_a_longer_one(model):
    """q_len 1 read as decode gave a 1-token prefill H2O's per-step score accumulation and argmin, MLA's absorbed
    q/o projections, Palu's and EigenAttention's per-step reconstruction, MiniCache's restore: a 1-token chunk of a
    served prompt was priced as a decode step. Each recipe that builds prefills of 1 and 3 tokens builds the same
    ops."""
    compared = 0
    for recipe in RECIPES:
        try:
            one, three = (cosim.build_trace(model, "prefill", 1, s, recipe=recipe) for s in (1, 3))
        except Exception as e:  # a recipe this model or length refuses (MLA on an MLA model, H2O's ratios)
            assert type(e).__name__ in ("RecipeError", "NoTokenKept", "InputError"), (recipe, e)
            continue
        assert _op_names(one) == _op_names(three), recipe
        compared += 1
    assert compared >= 20


def test_a_one_token_chunk_of_an_h2o_prompt_is_priced_with_the_prompts_ops():
    """A serving chunk of 1 token after 2,047 cached ones: the part-of-prompt trace (every token kept) carries H2O's
    column sums of the prompt's scores, not the decode step's score accumulation and argmin."""
    from cosim.serving.steptime import DeviceStepCost, Workload
    from workloads.models import load_model
    w = Workload(load_model("llama3_8b"), recipe="h2o")
    part = w.prompt_part(1)
    assert {"h2o.column_sums", "h2o.select", "h2o.gather"} <= _op_names(part)
    assert not {"h2o.score_accumulate", "h2o.evict_argmin"} & _op_names(part)
    steps = DeviceStepCost(w, cosim.load_hw("h100_sxm"))
    # the chunk's one query over all 2,048 keys, 32 heads, 32 layers; the decode step's ops were added to these
    assert [(o.name, o.dims, o.repeat) for o in steps._chunk_ops(1, 2047, last=False)] == [
        ("attn_scores", {"b": 32, "m": 1, "n": 2048, "k": 128}, 32),
        ("attn_softmax", {"rows": 32, "cols": 2048}, 32),
        ("attn_pv", {"b": 32, "m": 1, "n": 128, "k": 2048}, 32),
        ("h2o.column_sums", {"rows": 32, "cols": 2048}, 32)]


def test_an_op_without_a_phase_is_read_by_its_single_query():
    att = dict(batch=1, heads=8, kv_heads=8, head_dim=64, kv_len=16)
    assert is_decode_step(Op("a", "attention", {**att, "q_len": 1}, (), ()))
    assert not is_decode_step(Op("a", "attention", {**att, "q_len": 4}, (), ()))
    assert not is_decode_step(Op("a", "attention", {**att, "q_len": 1}, (), (), phase="prefill"))
    assert is_decode_step(Op("a", "attention", {**att, "q_len": 1}, (), (), phase="decode"))


def test_a_budget_recipe_charges_a_short_request_its_whole_uncompressed_cache():
    """SnapKV (budget 1,024) stores 4,096 tokens as 1,024: 32,768 B/token, the capacity's unit (Llama-3-8B bf16
    131,072 B/token / 4). A 1,000-token context it leaves whole holds 1,008 (63 blocks) x 131,072 B = 4,032 units;
    a 4,096- or 8,000-token one its 1,024 kept tokens = 4,096 units. Before session 36 each request was charged the
    4,096-token rate: a 1,000-token request took 63 blocks for 252 blocks' bytes."""
    from cosim.serving.kv_memory import PagedKV, StoredTokens, bytes_per_token
    from cosim.serving.steptime import Workload
    w = Workload(cosim.load_model("llama3_8b"), recipe="snapkv")
    unit = bytes_per_token(w)
    stored = StoredTokens(w, unit, 16)
    assert (unit, stored(1000), stored(1024), stored(4096), stored(8000)) == (32768, 4032, 4096, 4096, 4096)
    kv = PagedKV(1000, 16, stored=stored)
    assert kv.grow("a", 1000) and kv.used == 252 and kv.stored_tokens(1000) * unit == 1008 * 131072
    assert kv.grow("a", 8000) and kv.used == 256  # the cache stops growing at the budget
    assert PagedKV(1000, 16).blocks_for(1000) == 63  # no recipe: a token of context is a token of capacity


def test_serving_with_a_budget_recipe_admits_short_requests_as_the_plain_cache_does(tmp_path):
    """Static batches of 64 + 960 tokens: SnapKV keeps all 1,024, so it admits what a bf16 cache admits (its capacity
    in blocks is 4x, each request 4x the blocks), and the run says how requests are charged."""
    from cosim.serving import serve
    p = tmp_path / "t.csv"
    p.write_text("arrival_s,prompt_len,output_len\n" + "0.0,64,960\n" * 150)
    admitted = {}
    for recipe in (None, "snapkv"):
        res = serve("llama3_8b", "h100_sxm", trace=str(p), recipe=recipe, scheduler="static", memory_fraction=0.25,
                    max_batched_tokens=16384, max_num_seqs=1000)
        admitted[recipe] = int(res.timeline["prefills"].iloc[0])
        per_request = 64 if recipe is None else 256
        assert admitted[recipe] == res.capacity["replica0"].blocks // per_request
    assert admitted["snapkv"] == pytest.approx(admitted[None], abs=2)  # activations differ slightly
    assert any("recipe snapkv stores a request's cache at a rate its prompt sets" in n and
               "131,072 B/token at 64 tokens" in n and "each generated token is added" in n for n in res.notes)


def test_a_recipe_that_leaves_the_cache_alone_builds_no_trace_per_context():
    from cosim.serving.kv_memory import StoredTokens, bytes_per_token
    from cosim.serving.steptime import Workload
    w = Workload(cosim.load_model("llama3_8b"), recipe="mxfp4_weights")
    assert not StoredTokens(w, bytes_per_token(w), 16).moves([7, 1000, 5000])


def test_serving_a_profile_on_an_uncalibrated_gpu_falls_back_as_simulate_does():
    """mi300x has no calibration: level analytical prices its steps at the roofline. With a profile, serve refused
    (the host model wanted the calibration's eager.cpu_per_kernel); now it runs without host time, and says so."""
    from cosim.serving import serve
    res = serve("llama3_8b", "mi300x", level="analytical", profile="engine", qps=5, requests=4, prompt_len=64,
                output_len=4)
    assert res.summary["requests"] == 4
    assert any("profile engine: kernels priced at level roofline (level analytical requested: mi300x has no "
               "calibration); host launch time not priced" in n for n in res.notes)


@pytest.mark.parametrize("recipe, budget", [("snapkv", 1024), ("streaming_llm", 2004), ("h2o(budget=4096)", 4096)])
def test_an_eviction_recipe_that_keeps_every_token_says_so_and_prices_nothing_extra(recipe, budget):
    """A 512-token prompt within the budget: nothing evicted. SnapKV's reference update_kv returns such a prompt
    whole, so its observation-window vote is not priced either (it was: 6 ops of a vote that never runs)."""
    plain = cosim.build_trace("llama3_8b", "prefill", 1, 512)
    for phase in ("prefill", "decode"):
        t = cosim.build_trace("llama3_8b", phase, 1, 512, recipe=recipe)
        effects = next(iter(t.meta["recipe_effects"].values()))
        assert effects["note"] == (f"all 512 cached tokens fit its budget of {budget:,}: nothing evicted, cache "
                                   f"unchanged")
    snap = cosim.build_trace("llama3_8b", "prefill", 1, 512, recipe="snapkv")
    assert [o.name for o in snap.ops] == [o.name for o in plain.ops]
    long = cosim.build_trace("llama3_8b", "prefill", 1, 8192, recipe="snapkv")
    assert "note" not in long.meta["recipe_effects"]["snapkv"] and any(o.name == "snapkv.select" for o in long.ops)


def test_long_contexts_are_read_on_a_grid_within_two_percent_of_what_is_stored():
    """Beyond 4,096 tokens StoredTokens reads the recipe's cache on a grid (128 points a doubling) and charges the
    larger of the two points around a context, and the most held at any context before: KIVI-2's cache (its fp16
    residual quantized group by group) is charged within 2 % of the most it held up to each block from 4,096 to
    12,000 tokens; SnapKV's capped cache exactly."""
    from cosim.serving.kv_memory import StoredTokens, bytes_per_token
    from cosim.serving.steptime import Workload
    for recipe, lo, hi in (("kivi2", 0.98, 1.02), ("snapkv", 1.0, 1.0)):
        w = Workload(cosim.load_model("qwen2_5_7b"), recipe=recipe)
        stored = StoredTokens(w, bytes_per_token(w), 16)
        peak = 0.0
        for n in range(16, 12000, 16):
            peak = max(peak, stored.bytes_per_context_token(n) * n / stored.unit)
            if n >= 4096:
                assert lo * peak - 1e-9 <= stored(n) <= hi * peak + 1, (recipe, n)
        assert len(stored._walk[0]) < 450  # read points: every block to 4,096 tokens (256), then the grid; not 750


def test_a_request_is_charged_the_most_its_cache_held_so_far():
    """KIVI-2 quantizes its fp16 residual every 128 tokens: Llama-3-8B's cache at 240 tokens is 712 of the capacity's
    tokens (26,240 B each), at 256 only 500. Blocks are not given back while a request runs, so the charge keeps the
    peak: a 200 + 56 request needs 712 (it was checked at 256 tokens, 500, passed a 512-token capacity and stalled the
    engine)."""
    from cosim.serving import serve
    from cosim.serving.kv_memory import StoredTokens, bytes_per_token
    from cosim.serving.steptime import Workload
    from workloads.io import InputError
    w = Workload(cosim.load_model("llama3_8b"), recipe="kivi2")
    stored = StoredTokens(w, bytes_per_token(w), 16)
    assert (stored(0), stored(256), stored(240), stored(256)) == (0, 712, 712, 712)
    assert round(stored.bytes_per_context_token(256) * 256 / stored.unit) == 500
    charges = [stored(n) for n in range(16, 6000, 16)]
    assert charges == sorted(charges)
    with pytest.raises(InputError, match=r"request 0 needs 256 tokens of KV \(712 of the capacity's at recipe kivi2's "
                                         r"rate\) but replica replica0 holds 512 .* a recipe storing less or offload"):
        serve("llama3_8b", "h100_sxm", qps=1, requests=2, prompt_len=200, output_len=56, recipe="kivi2",
              kv_capacity_tokens=512)


def test_an_fp8_cache_recipe_is_charged_a_token_a_token_as_the_format_is():
    """fp8_kv's per-head scales (2 kB a sequence) are within 1 % of its 4,096-token rate at these lengths: a 16 + 16
    request fits a 32-token capacity, as with kv fp8_e4m3 and no recipe (it was refused: 33 of the capacity's)."""
    from cosim.serving import serve
    for opts in (dict(recipe="fp8_kv"), dict(kv="fp8_e4m3")):
        res = serve("llama3_8b", "h100_sxm", qps=1, requests=2, prompt_len=16, output_len=16, kv_capacity_tokens=32,
                    **opts)
        assert res.summary["requests"] == 2
        assert not any("stores a request's cache at a rate its context sets" in n for n in res.notes)
        within = [n for n in res.notes if "within 1 % of its rate at 4,096 tokens" in n]
        assert len(within) == (1 if "recipe" in opts else 0)  # the recipe's charge said; the plain format's is

