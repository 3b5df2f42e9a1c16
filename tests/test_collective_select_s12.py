"""Session 12: the ring LL line chosen on the seen single-node 8 x H100 tables (validation/published/
collective_selection_session12.md; cosim.calibrate.collective_select_s12)."""

import json
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from cosim.calibrate.collective_holdout_s4b import S11_RING_LL, session11_system
from cosim.calibrate.collective_select_s12 import (FITTED, MACHINES, Row, choose, ll_line, loto, seen_rows, summarise,
                                                   yaml_ll)
from cosim.calibrate.protocol_crossovers import nccl_ring_ll_busbw
from hwmodels.collectives import collective_cost
from hwmodels.system import load_system

ROOT = Path(__file__).resolve().parents[1]
H100 = load_system("dgx_h100")


def _us(S, n=8, system=H100):
    c = collective_cost("allreduce", S, n, 1, system, "analytical")
    return c.time_s * 1e6, c.algorithm


def test_nccl_ll_bandwidth_is_the_printed_tuner_row_times_the_bus_factor():
    assert nccl_ring_ll_busbw() == pytest.approx(94.0e9 * 2 * 3 / 4) == pytest.approx(141e9)


def test_the_ring_ll_line_by_hand():
    # 3.6 us base + 14 steps x 0.9119 us + 2 (7/8) S / (0.3133 x 450 GB/s)
    for S in (1 << 10, 512 << 10, 1 << 20):
        t, alg = _us(S)
        assert alg == "ring/ll"
        assert t == pytest.approx(3.6 + 14 * 0.9119 + 1.75 * S / (0.3133 * 450e9) * 1e6, rel=1e-9)
    assert _us(512 << 10)[0] == pytest.approx(22.87, abs=0.01)   # published pool0-01806: 20.66 us (+10.7 %)
    assert _us(1 << 20)[0] == pytest.approx(29.38, abs=0.01)     # 27.37 us (+7.3 %); was ring/ll128 33.28 us
    assert _us(1 << 10)[0] == pytest.approx(16.38, abs=0.01)     # the 1 KB point the latency reproduces
    # 2 MB: LL128 (3.6 + 14 x 1.712 + 1.75 S / (0.7138 x 450 GB/s) = 38.99 us) beats LL (42.40 us)
    t, alg = _us(2 << 20)
    assert alg == "ring/ll128" and t == pytest.approx(3.6 + 14 * 1.712 + 1.75 * (2 << 20) / (0.7138 * 450e9) * 1e6)
    # the session-3..11 line, kept for the historical scorers
    assert _us(1 << 20, system=session11_system("dgx_h100")) == (pytest.approx(33.28, abs=0.01), "ring/ll128")
    assert S11_RING_LL == {"bw": 0.2312, "latency_s": 0.9116e-6, "fixed_s": 0.0}


def test_the_bundled_files_carry_the_chosen_line():
    target = yaml_ll(ll_line("C1", H100))
    assert target == {"bw": 0.3133, "latency": "0.9119 us"}
    for name in ("dgx_h100", "dgx_h200"):
        assert load_system(name).collectives["efficiency"]["intra_node"]["ring"]["ll"] == target


def test_candidates_c3_is_nccls_own_line():
    c3 = ll_line("C3", H100)
    # NCCL: base 6.6 us + 2 (n-1) x 0.6 us; the link already carries 3.6 us of base latency
    assert c3["latency_s"] == pytest.approx(0.6e-6) and c3["fixed_s"] == pytest.approx(3.0e-6)
    assert c3["bw"] == pytest.approx(141 / 450)


def test_committed_selection_is_this_trees_score():
    res = summarise(loto())
    rec = json.loads((ROOT / "benchmarks" / "results" / "collective_select_s12.json").read_text())
    assert rec["chosen"] == choose(res)[0] == "C1"
    for c, r in res.items():
        assert rec["summary"][c]["pooled_within"] == r["pooled_within"] and rec["summary"][c]["S"] == pytest.approx(r["S"])
    assert (res["C0"]["pooled_within"], res["C1"]["pooled_within"], res["C0"]["points"]) == (203, 205, 235)
    assert res["C1"]["per"]["dgxc_pool0_01806"]["within"] == 20 and res["C0"]["per"]["dgxc_pool0_01806"]["within"] == 18


def test_seen_rows_are_the_rules_ten_tables():
    rows = seen_rows()
    assert set(r.machine for r in rows) == set(MACHINES)
    assert all(1 << 10 <= r.size <= 1 << 30 for r in rows)
    assert min(r.size for r in rows if r.machine == "vidur_h100_dgx") == 1 << 20  # session 3: 1 MB up


def _res(within: dict, points: int = 10, p90: float = 0.1) -> dict:
    per = {m: {"within": w, "points": points, "f": w / points, "median": 0.0, "p90": p90} for m, w in within.items()}
    return {"S": sum(p["f"] for p in per.values()) / len(per), "worst_f": min(p["f"] for p in per.values()),
            "pooled_within": sum(within.values()), "points": points * len(per), "worst_p90": p90, "per": per}


def test_choice_rule_margin_no_table_loses_and_ties_to_fewer_parameters():
    c0 = _res({"a": 5, "b": 5})
    # one table loses a row: out, whatever the gain elsewhere
    assert choose({"C0": c0, "C1": _res({"a": 4, "b": 9})})[0] is None
    # a gain of 1 row: below the 2-row margin
    assert choose({"C0": c0, "C1": _res({"a": 6, "b": 5})})[0] is None
    # C1 and C3 both qualify and tie on S (within 1 point): C3 has fewer fitted parameters
    got, why = choose({"C0": c0, "C1": _res({"a": 7, "b": 5}), "C3": _res({"a": 6, "b": 6})})
    assert FITTED["C3"] < FITTED["C1"] and got == "C3" and why["C1"].startswith("qualifies")
    # a clear S lead wins over fewer parameters
    assert choose({"C0": c0, "C1": _res({"a": 9, "b": 9}), "C3": _res({"a": 7, "b": 5})})[0] == "C1"


@settings(max_examples=30, deadline=None)
@given(bw=st.floats(0.1, 0.9), lat=st.floats(0.2e-6, 3e-6))
def test_c2_least_squares_recovers_an_exact_line(bw, lat):
    f, B, base = 1.75, 450e9, 3.6e-6
    train = [Row("x", "x", S, "one_process_per_gpu", "", base + 14 * lat + f * S / (B * bw))
             for S in (1 << 10, 64 << 10, 256 << 10, 1 << 20)]
    got = ll_line("C2", H100, train)
    assert got["bw"] == pytest.approx(bw, rel=1e-6) and got["latency_s"] == pytest.approx(lat, rel=1e-6)
