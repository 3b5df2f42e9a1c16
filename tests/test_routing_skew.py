"""Expert-routing skew under EP (issue 12): the busiest device sets the MoE step. Mixtral at EP 8."""

import math

import pytest

import cosim
from cosim.cli import main
from workloads.io import InputError
from workloads.routing import device_shares, ep_imbalance, expected_max_normal


def _mixtral(routing, phase="decode", batch=64, seq=4096):
    tr = cosim.build_trace("mixtral_8x7b", phase=phase, batch=batch, seq=seq,
                           parallel={"tp": 8, "ep": 8, "routing": routing})
    return tr, {o.name: o for o in tr.ops}


def test_expected_max_of_normals():
    assert expected_max_normal(2) == pytest.approx(1 / math.sqrt(math.pi), abs=1e-6)
    assert expected_max_normal(8) == pytest.approx(1.4236, abs=1e-4)


@pytest.mark.parametrize("routing, gamma, rows", [
    ("uniform", 1.0, 16),                       # 64 tokens x top-2 / 8 devices
    ("sampled", 1 + 1.4236 * math.sqrt(12) / 16, 21),  # mu 16, sigma^2 = 64 x 2 x 1/8 x 7/8 x 6/7 = 12
    ("zipf:1", 8 / sum(1 / r for r in range(1, 9)), 48),  # hottest expert 1 / H_8 = 0.368 of the pairs
    ([1, 1, 1, 1, 1, 1, 1, 3], 8 * 3 / 10, 39),  # one expert with 3x the load: 0.3 of the pairs
])
def test_mixtral_ep8_busiest_device_by_hand(routing, gamma, rows):
    tr, ops = _mixtral(routing)
    assert tr.meta["parallel"]["ep_imbalance"] == pytest.approx(gamma, rel=1e-4)
    assert ops["expert_up_proj"].dims["m"] == rows == math.ceil(16 * gamma - 1e-9)
    # the busiest device also receives gamma x the mean all-to-all rows
    assert ops["moe_dispatch_alltoall"].dims["rows"] == ops["moe_combine_alltoall"].dims["rows"] == rows
    assert ("busiest" in tr.meta["parallel"]["routing_note"]) == (routing != "uniform")


def test_skew_slows_the_moe_step_most_in_prefill():
    lat = {}
    for r in ("uniform", "sampled", "zipf:1"):
        tr, _ = _mixtral(r, phase="prefill", batch=8, seq=2048)
        lat[r] = cosim.simulate(tr, "dgx_h100").meta["parallel"]["step_latency_s"]
    assert lat["uniform"] < lat["sampled"] < lat["zipf:1"]
    # 16,384 prompt tokens leave little statistical imbalance: gamma = 1 + 1.4236 sqrt(12 x 256) / 4096
    tr, _ = _mixtral("sampled", phase="prefill", batch=8, seq=2048)
    assert tr.meta["parallel"]["ep_imbalance"] == pytest.approx(1 + 1.4236 * math.sqrt(12 * 256) / 4096, rel=1e-4)


def test_contiguous_placement_and_zipf_zero_is_uniform():
    assert device_shares([4, 1, 1, 1, 1, 1, 1, 2], 8, 4) == pytest.approx([5 / 12, 2 / 12, 2 / 12, 3 / 12])
    assert ep_imbalance("zipf:0", 8, 2, 8, 64) == pytest.approx(1.0)
    assert ep_imbalance("zipf:1", 8, 2, 1, 64) == 1.0


def test_tp_split_experts_ignore_routing_and_say_so():
    tr = cosim.build_trace("mixtral_8x7b", phase="decode", batch=8, seq=1024, parallel={"tp": 8, "routing": "zipf:1"})
    assert tr.meta["parallel"]["ep_imbalance"] == 1.0 and "ignored" in tr.meta["parallel"]["routing_note"]


@pytest.mark.parametrize("bad, words", [("zipf:-1", "s >= 0"), ("hot", "expected 'uniform'"),
                                        ([1, 2, 3], "one per expert"), ([1, -1, 1, 1, 1, 1, 1, 1], "non-negative")])
def test_bad_routing_is_one_clear_error(bad, words):
    with pytest.raises(InputError, match=words):
        _mixtral(bad)


def test_cli_routing_flag(capsys):
    assert main(["simulate", "--model", "mixtral_8x7b", "--hw", "dgx_h100", "--parallel", "tp=8,ep=8,routing=zipf:1",
                 "--batch", "8", "--seq", "1024"]) == 0
    assert main(["simulate", "--model", "mixtral_8x7b", "--hw", "dgx_h100", "--parallel", "tp=8,ep=8,routing=hot",
                 "--batch", "8", "--seq", "1024"]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "routing" in err


def test_planner_prices_ep_layouts_under_skew():
    from cosim.plan import plan
    uni = plan("mixtral_8x7b", "dgx_h100", phase="prefill", batch=8, seq=2048)
    hot = plan("mixtral_8x7b", "dgx_h100", phase="prefill", batch=8, seq=2048, routing="zipf:1")
    assert uni.best.ep > 1                      # balanced experts: EP wins
    assert hot.best.ep == 1                     # a hot expert block makes EP lose to TP-split experts
    ep_uni = {(r.tp, r.ep, r.dp): r.step_latency_s for r in uni.rows if r.ep > 1 and r.pp == 1}
    ep_hot = {(r.tp, r.ep, r.dp): r.step_latency_s for r in hot.rows if r.ep > 1 and r.pp == 1}
    assert all(ep_hot[k] > ep_uni[k] for k in ep_uni)
    assert all(r.layout.endswith("-zipf1") for r in hot.rows if r.ep > 1)
