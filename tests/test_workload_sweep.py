"""Workload axes in a sweep (issue 14): model x weight format x batch x random hardware,
priced through the traced templates and `evaluate_totals`, equal the per-point path
(`cosim.simulate` of that point's trace on that point's spec) exactly."""

from __future__ import annotations

import math

import numpy as np

import cosim
from cosim.dse import sweep
from cosim.dse.evaluate import variant_spec
from cosim.dse.runner import _groups

FIELDS = {"hw.memory.hbm.bandwidth": {"low": "1 TB/s", "high": "10 TB/s", "log": True},
          "hw.compute.bf16": {"low": "200 TFLOP/s", "high": "2400 TFLOP/s", "log": True},
          "hw.memory.l2.capacity": {"low": "10 MB", "high": "100 MB"}}


def _spec(out, workers=1, samples=25):
    return {"name": "wl", "base": {"model": "llama3_8b", "phase": "decode", "batch": 8, "seq": 4096,
                                   "weights": "mxfp4", "acts": "bf16", "hw": "h100_sxm", "level": "roofline"},
            "axes": [{"grid": {"model": ["llama3_8b", "mistral_7b"], "weights": ["bf16", "mxfp4"],
                               "batch": [1, 32]}},
                     {"random": {"samples": samples, "seed": 3, "fields": FIELDS}}],
            "output": str(out), "workers": workers, "batch_size": 64}


def test_workload_sweep_equals_point_by_point(tmp_path):
    df = sweep(_spec(tmp_path / "o"), quiet=True, write=False)
    assert len(df) == 2 * 2 * 2 * 25 and (df["status"] == "ok").all()
    base = cosim.load_hw("h100_sxm")
    for _, r in df.iterrows():
        hw = variant_spec(base, {k[3:]: float(r[k]) for k in FIELDS})
        rep = cosim.simulate(cosim.build_trace(r["model"], "decode", int(r["batch"]), 4096, weights=r["weights"]), hw)
        assert r["latency_s"] == rep.total_latency_s  # exactly: the same sums in the same order
        assert r["energy_j"] == rep.total_energy_j
        assert r["memory_bytes"] == rep.memory_bytes
        assert math.isclose(r["tokens_per_s"], rep.tokens_per_s, rel_tol=1e-15)


def test_resume_reads_back_the_same_table(tmp_path):
    df1 = sweep(_spec(tmp_path / "o", samples=10), quiet=True, write=False)
    df2 = sweep(_spec(tmp_path / "o", samples=10), quiet=True, write=False)  # all stored: read back
    assert df1.drop(columns=["error"]).equals(df2.drop(columns=["error"]))


def test_groups_in_first_appearance_order():
    cols = {"model": ["b", "a", "b", "a", "c"], "batch": [1, 1, 1, 2, 1]}
    g = _groups(cols, ["model", "batch"], 5)
    assert [t for t, _ in g] == [("b", 1), ("a", 1), ("a", 2), ("c", 1)]
    assert [list(r) for _, r in g] == [[0, 2], [1], [3], [4]]


def test_row_keys_are_stable_and_distinct():
    import hashlib

    from cosim.dse.store import row_keys
    v = np.array([[1.0, 2.0], [1.0, 2.0000000000000004], [2.0, 1.0], [0.0, -0.0]])
    k1 = row_keys(hashlib.sha256(b"a"), v)
    assert k1 == row_keys(hashlib.sha256(b"a"), v.copy())  # stable
    assert len(set(k1)) == 4 and all(len(k) == 24 for k in k1)  # one ulp, order, sign of zero
    assert set(k1).isdisjoint(row_keys(hashlib.sha256(b"b"), v))  # the shared config matters


def test_table_columns_have_the_dtypes_the_dataframe_constructor_infers():
    """The column builders (per-record inference + take, keys from one pyarrow buffer) give
    the frame pandas builds from the object arrays, values and dtypes — except that a column
    of numbers only is numeric (int64 here), not object (a numeric axis sorts as numbers)."""
    import pandas as pd

    from cosim.dse.runner import _Const, _concat, _key_column
    parts = [_Const("mxfp4", 2), _Const(None, 1), _Const(7, 2)]
    ref = pd.Series(np.array(["mxfp4", "mxfp4", None, 7, 7], dtype=object))
    assert pd.Series(_concat(parts)).equals(ref)
    for vals in (["a", "b"], [1, 2], [None, None], ["x", None], [[1, 2], "y"]):
        parts = [_Const(v, 3) for v in vals]
        expanded = np.empty(6, dtype=object)
        expanded[:] = [v for v in vals for _ in range(3)]
        got, want = pd.Series(_concat(parts)), pd.Series(expanded)
        if vals == [1, 2]:
            want = want.astype(np.int64)
        assert got.dtype == want.dtype and got.astype(str).tolist() == want.astype(str).tolist()
    keys = [["a" * 24, "b" * 24], ["c" * 24]]
    assert pd.Series(_key_column(keys)).equals(pd.Series(np.array(["a" * 24, "b" * 24, "c" * 24], dtype=object)))
    odd = [["a" * 24], ["short"]]  # a key of another length: built from the objects
    assert pd.Series(_key_column(odd)).tolist() == ["a" * 24, "short"]


def test_a_smaller_sweep_on_a_shared_store_returns_only_its_rows(tmp_path):
    store = tmp_path / "shared.jsonl"
    big = sweep({**_spec(tmp_path / "big", samples=6), "store": str(store)}, quiet=True, write=False)
    small_spec = _spec(tmp_path / "small", samples=6)
    small_spec["axes"][0]["grid"]["model"] = ["mistral_7b"]
    small = sweep({**small_spec, "store": str(store)}, quiet=True, write=False)  # all read back, filtered
    assert len(small) == len(big) // 2 and set(small["model"]) == {"mistral_7b"}
    want = big[big["model"] == "mistral_7b"]
    assert small["latency_s"].tolist() == want["latency_s"].tolist() and small["key"].tolist() == want["key"].tolist()
