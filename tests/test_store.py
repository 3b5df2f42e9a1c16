"""Results store: stable keys, torn-line tolerance, append-only resume."""

import json

from hypothesis import given, settings, strategies as st

from cosim.sweep.store import ResultStore, config_key, read_records


def test_config_key_is_stable_and_order_independent():
    a = {"model": "llama3_8b", "hw": {"name": "h100_sxm", "overrides": {"memory.hbm.bandwidth": 4e12}}}
    b = {"hw": {"overrides": {"memory.hbm.bandwidth": 4000000000000}, "name": "h100_sxm"}, "model": "llama3_8b"}
    assert config_key(a, "0.1.0") == config_key(b, "0.1.0")
    assert config_key(a, "0.1.0") != config_key(a, "0.2.0")  # a new cosim version recomputes
    c = {**a, "hw": {"name": "h100_sxm", "overrides": {"memory.hbm.bandwidth": 4.1e12}}}
    assert config_key(a, "0.1.0") != config_key(c, "0.1.0")
    assert len(config_key(a, "x")) == 24


def _rec(i):
    return {"key": f"k{i}", "metrics": {"latency_s": 0.1 * i + 1e-17, "sqnr_db": float("nan")}, "status": "ok"}


def test_torn_last_line_is_dropped_then_truncated_before_appending(tmp_path):
    p = tmp_path / "r.jsonl"
    with ResultStore(p) as s:
        assert s.append([_rec(0), _rec(1)]) == 2
    whole = p.read_bytes()
    p.write_bytes(whole + b'{"key": "k2", "metr')  # a SIGKILL mid-write
    assert [r["key"] for r in read_records(p)] == ["k0", "k1"]
    with ResultStore(p) as s:
        assert s.done == {"k0", "k1"}
        assert p.read_bytes() == whole  # the torn tail is gone before anything is appended
        assert s.append([_rec(1), _rec(2)]) == 1  # k1 is already there: never written twice
    recs = read_records(p)
    assert [r["key"] for r in recs] == ["k0", "k1", "k2"]
    assert recs[1]["metrics"]["latency_s"] == 0.1 + 1e-17  # floats round-trip exactly


def test_damage_in_the_middle_is_an_error_not_silently_skipped(tmp_path):
    p = tmp_path / "r.jsonl"
    p.write_text(json.dumps(_rec(0)) + "\nnot json\n" + json.dumps(_rec(1)) + "\n")
    try:
        read_records(p)
    except ValueError as e:
        assert "line 2" in str(e)
    else:
        raise AssertionError("a damaged middle line must be reported")


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 6), cut=st.integers(0, 10_000))
def test_any_truncation_leaves_exactly_the_complete_records(tmp_path_factory, n, cut):
    p = tmp_path_factory.mktemp("s") / "r.jsonl"
    with ResultStore(p) as s:
        s.append([_rec(i) for i in range(n)])
    data = p.read_bytes()
    cut = cut % (len(data) + 1)
    p.write_bytes(data[:cut])
    complete = data[:cut].count(b"\n")
    assert [r["key"] for r in read_records(p)] == [f"k{i}" for i in range(complete)]
    with ResultStore(p) as s:
        s.append([_rec(i) for i in range(n)])
    assert [r["key"] for r in read_records(p)] == [f"k{i}" for i in range(n)]
