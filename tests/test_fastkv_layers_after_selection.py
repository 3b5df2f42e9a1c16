"""The layers after FastKV's token-selection layer run the propagated tokens only (session 19; left open by
sessions 17 and 18): their expert-parallel imbalance is that of the tokens they route, and a MoE model's dense and
expert layers are split at the selection layer by where they are, not by a share of the layer count."""

import math

import pytest

from workloads.builder import build_trace
from workloads.compression import load_recipe

# mixtral_8x7b (8 experts, top 2, 32 layers) + fastkv (tsp_layer 15, tsp_rate 0.2): a 1,000-token prompt
# propagates ceil(0.2 x 1000) = 200 tokens through layers 15-31. tp 2, ep 2, sampled routing.
LAYOUT = {"tp": 2, "ep": 2, "routing": "sampled"}


def _gamma(N, k=2, E=8, ep=2):
    """Sampled routing by hand (workloads.routing): 1 + E[max of ep normals] sd / mean of a device's rows, the
    group's N tokens x k choices; E[max of 2 standard normals] = 1/sqrt(pi)."""
    mu = N * k / ep
    sd = math.sqrt(N * k * (1 / ep) * (1 - 1 / ep) * (E - k) / (E - 1))
    return 1 + sd / math.sqrt(math.pi) / mu


def _ops(trace, name):
    return sorted(((o.repeat, bool(o.dims.get("tsp_after")), o) for o in trace.ops if o.name == name),
                  key=lambda x: x[1])


def test_ep_imbalance_after_the_selection_layer_is_that_of_the_propagated_tokens():
    """The EP group routes 1000 x 2 / 2 = 1,000 tokens up to layer 14 (gamma 1.01168) and 200 after (gamma
    1.02612). The busiest device's expert rows after the selection: ceil(200 x 2 / 2 x 1.02612) = 206 (before
    session 19: ceil(200 x 1.01168) = 203, the whole prompt's gamma); its dispatch all-to-all rows alike (its
    own ceil(200 / 2) = 100 tokens x 2 choices x gamma)."""
    t = build_trace("mixtral_8x7b", "prefill", 1, 1000, recipe="fastkv", parallel=LAYOUT)
    par = t.meta["parallel"]
    assert par["ep_imbalance"] == pytest.approx(_gamma(1000), rel=1e-6) == pytest.approx(1.011680, abs=1e-6)
    assert par["ep_imbalance_after_selection"] == pytest.approx(_gamma(200), rel=1e-6)
    assert _gamma(200) == pytest.approx(1.026117, abs=1e-6)
    assert "1.026 x in the layers after the token-selection layer" in par["routing_note"]
    (r0, a0, before), (r1, a1, after) = _ops(t, "expert_up_proj")
    assert (r0, a0, before.dims["m"]) == (15, False, math.ceil(1000 * _gamma(1000))) == (15, False, 1012)
    assert (r1, a1, after.dims["m"]) == (17, True, math.ceil(200 * _gamma(200))) == (17, True, 206)
    (_, _, d0), (_, _, d1) = _ops(t, "moe_dispatch_alltoall")
    assert (d0.dims["rows"], d1.dims["rows"]) == (1012, 206)


def test_uniform_routing_and_no_recipe_are_unchanged():
    t = build_trace("mixtral_8x7b", "prefill", 1, 1000, recipe="fastkv", parallel={"tp": 2, "ep": 2})
    assert t.meta["parallel"]["ep_imbalance"] == t.meta["parallel"]["ep_imbalance_after_selection"] == 1.0
    plain = build_trace("mixtral_8x7b", "prefill", 1, 1000, parallel=LAYOUT)
    assert "ep_imbalance_after_selection" not in plain.meta["parallel"]
    assert [o.dims["m"] for o in plain.ops if o.name == "expert_up_proj"] == [1012]


@pytest.mark.parametrize("tsp_layer,dense_after,moe_after", [(0, 1, 26), (1, 0, 26), (15, 0, 12)])
def test_dense_and_expert_layers_split_where_they_are(tsp_layer, dense_after, moe_after):
    """deepseek_v2_lite: 27 layers, layer 0 a dense MLP, layers 1-26 MoE (6 of 64 experts a token). A 1,000-token
    prompt propagates 200 tokens from tsp_layer on. tsp_layer 1: all 26 MoE layers run 200 tokens (1,200 expert
    rows); before session 19 round(26 x 26/27) = 25 did, one ran the whole prompt (6,000 rows). tsp_layer 0: the
    dense layer 0 runs 200 tokens too (it ran 1,000: a one-layer op was never split). tsp_layer 15 (the bundled
    recipe): 12 MoE layers after, as before."""
    r = load_recipe(f"fastkv(tsp_layer={tsp_layer})")
    t = build_trace("deepseek_v2_lite", "prefill", 1, 1000, recipe=r)
    up = {(o.repeat, o.dims["m"]) for o in t.ops if o.name == "up_proj"}
    assert up == ({(1, 200)} if dense_after else {(1, 1000)})
    experts = {(o.repeat, o.dims["m"]) for o in t.ops if o.name == "expert_up_proj"}
    assert experts == {(moe_after, 200 * 6)} | ({(26 - moe_after, 1000 * 6)} if moe_after < 26 else set())
    # every layer's attention still splits by layer: 27 - tsp_layer after
    assert {o.repeat for o in t.ops if o.name == "q_proj" and o.dims.get("tsp_after")} == {27 - tsp_layer}
