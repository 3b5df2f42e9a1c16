"""Results store: stable keys, torn-line tolerance, append-only resume, exact floats."""

import json

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from cosim.dse.store import ResultStore, config_key, expand, read_records


def _cfg(bw):
    return {"model": "llama3_8b", "batch": 1, "hw": {"name": "h100_sxm", "overrides": {"memory.hbm.bandwidth": bw}}}


def test_config_key_is_stable_and_order_independent():
    a = _cfg(4e12)
    b = {"hw": {"overrides": {"memory.hbm.bandwidth": 4000000000000}, "name": "h100_sxm"}, "batch": 1,
         "model": "llama3_8b"}
    assert config_key(a, "0.1.0") == config_key(b, "0.1.0")  # dict order and int/float spelling don't matter
    assert config_key(a, "0.1.0") != config_key(a, "0.2.0")  # a new cosim version recomputes
    assert config_key(a, "0.1.0") != config_key(_cfg(4e12 * (1 + 2 ** -52)), "0.1.0")  # one ulp is another config
    assert config_key(a, "0.1.0") != config_key({**a, "batch": 2}, "0.1.0")
    assert len(config_key(a, "x")) == 24


def _batch(keys, lat):
    n = len(keys)
    return {"version": "t", "config": {"model": "m", "hw": {"name": "h", "overrides": {}}},
            "fields": ["memory.hbm.bandwidth"], "values": np.arange(n, dtype=float).reshape(n, 1) * 1e12,
            "keys": list(keys), "index": list(range(n)), "point": {},
            "metrics": {"latency_s": np.asarray(lat, dtype=float), "memory_bytes": 5.0}, "status": "ok", "error": None}


def _keys(path):
    return [k for r in read_records(path) for k in r["keys"]]


def test_torn_last_line_is_dropped_then_truncated_before_appending(tmp_path):
    p = tmp_path / "r.jsonl"
    with ResultStore(p) as s:
        assert s.append(_batch(["a", "b"], [0.1 + 1e-17, 1 / 3])) == 2
    whole = p.read_bytes()
    p.write_bytes(whole + b'{"version": "t", "keys": ["c"')  # a SIGKILL mid-write
    assert _keys(p) == ["a", "b"]
    with ResultStore(p) as s:
        assert s.done == {"a", "b"}
        assert p.read_bytes() == whole  # the torn tail is gone before anything is appended
        assert s.append(_batch(["b", "c"], [7.0, 8.0])) == 1  # b is stored already: never written twice
    assert _keys(p) == ["a", "b", "c"]
    pts = [x for r in read_records(p) for x in expand(r)]
    assert pts[0]["metrics"]["latency_s"] == 0.1 + 1e-17 and pts[1]["metrics"]["latency_s"] == 1 / 3  # exact
    assert pts[2]["key"] == "c" and pts[2]["metrics"]["latency_s"] == 8.0 and pts[2]["metrics"]["memory_bytes"] == 5.0
    assert pts[1]["config"]["hw"]["overrides"] == {"memory.hbm.bandwidth": 1e12}


def test_damage_in_the_middle_is_reported_with_its_line_and_skipped(tmp_path):
    from cosim.dse.store import StoreWarning
    p = tmp_path / "r.jsonl"
    with ResultStore(p) as s:
        s.append(_batch(["a"], [1.0]))
    one = p.read_bytes()
    p.write_bytes(one + b"not json\n" + b"{}\n" + one)  # damage, an empty record, a duplicate
    with pytest.warns(StoreWarning) as w:
        assert _keys(p) == ["a"]
    msgs = [str(x.message) for x in w]
    assert any("line 2" in m for m in msgs) and any("line 3" in m for m in msgs)
    with pytest.warns(StoreWarning):
        with ResultStore(p) as s:  # a resume does not crash on them
            assert s.append(_batch(["a", "b"], [1.0, 2.0])) == 1


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 5), cut=st.integers(0, 100_000))
def test_any_truncation_leaves_exactly_the_complete_lines(tmp_path_factory, n, cut):
    p = tmp_path_factory.mktemp("s") / "r.jsonl"
    with ResultStore(p) as s:
        for i in range(n):
            s.append(_batch([f"k{i}a", f"k{i}b"], [i, i + 0.5]))
    data = p.read_bytes()
    cut = cut % (len(data) + 1)
    p.write_bytes(data[:cut])
    complete = data[:cut].count(b"\n")
    assert _keys(p) == [f"k{i}{s}" for i in range(complete) for s in "ab"]
    with ResultStore(p) as s:
        for i in range(n):
            s.append(_batch([f"k{i}a", f"k{i}b"], [i, i + 0.5]))
    assert _keys(p) == [f"k{i}{s}" for i in range(n) for s in "ab"]
    json.loads(p.read_bytes().splitlines()[-1])  # the file ends on a whole record
