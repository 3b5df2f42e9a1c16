"""cosim.table_csv writes what pandas' to_csv writes, for every mix of value types a
report column can hold (or declines, and pandas writes it)."""

import math

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from cosim.table_csv import rows_to_csv

_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=6),
                    st.sampled_from(["a,b", 'say "hi"', "two\nlines", "", " ", "nan", "None"]),
                    st.floats(-1e20, 1e20).map(np.float64), st.integers(-1000, 1000).map(np.int64))


def _pandas(rows, cols):
    return pd.DataFrame(rows, columns=cols).to_csv(index=False)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(_VALUES, min_size=3, max_size=3), min_size=1, max_size=6), st.data())
def test_same_text_as_pandas(table, data):
    cols = ["a", "b", "c"]
    rows = []
    for vals in table:
        keep = data.draw(st.lists(st.booleans(), min_size=3, max_size=3))  # a missing key is a missing value
        rows.append({c: v for c, v, k in zip(cols, vals, keep) if k})
    got = rows_to_csv(rows, cols)
    if any(isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 2 ** 63 for r in rows for v in r.values()):
        return  # pandas' own handling of ints beyond int64 varies by version; not a report value
    assert got == _pandas(rows, cols)


def test_hand_checked_columns():
    rows = [{"op": "q", "repeat": 32, "sqnr_db": 18.5, "ok": True, "rows": 128},
            {"op": "a,b", "repeat": 1, "sqnr_db": math.nan, "ok": False}]
    text = rows_to_csv(rows, ["op", "repeat", "sqnr_db", "ok", "rows"])
    # ints stay ints; a missing value makes `rows` a float column, printed 128.0 and empty
    assert text == 'op,repeat,sqnr_db,ok,rows\nq,32,18.5,True,128.0\n"a,b",1,,False,\n'
    assert text == _pandas(rows, ["op", "repeat", "sqnr_db", "ok", "rows"])


def test_other_value_types_are_left_to_pandas():
    assert rows_to_csv([{"a": np.float32(0.1)}], ["a"]) is None
    assert rows_to_csv([{"a": [1, 2]}], ["a"]) is None
    assert rows_to_csv([], ["a"]) is None


def test_quickstart_sized_report_csv_matches_pandas():
    from cosim.experiment import load_experiment, run_experiment
    rep = run_experiment(load_experiment("quickstart"), accuracy=False)
    rep.rows[0]["sqnr_db"] = math.nan  # accuracy columns as `cosim run` adds them
    rep.rows[1]["accuracy_status"] = "ok"
    assert rep.to_csv() == _frame_with_inputs(rep).to_csv(index=False)


def _frame_with_inputs(rep):
    """What pandas writes for the report's CSV: its frame, then the inputs as constant columns."""
    df = rep.to_frame()
    for k, v in rep.inputs().items():
        df[k] = [v] * len(df)
    return df


def _small_report(lazy: bool):
    """Two ops with extra keys: rows of dicts (row 1 has a; row 2 has b, then a) or, with
    `lazy`, columns (z_extra before the standard ones, b last)."""
    from cosim.report import COLUMNS, Report

    base = {k: None for k in COLUMNS}
    r1 = {**base, "op": "q_proj", "latency_s": 1.0e-6, "energy_j": 2.0, "flops": 8, "bytes": 4, "a": 1.5}
    r2 = {**base, "op": "o_proj", "latency_s": 3.0e-6, "energy_j": 1.0, "flops": 8, "bytes": 4, "b": "x", "a": 2.5}
    fields = dict(model="m", hw="h", level="roofline", phase="decode", batch=1, seq=1, footprint={},
                  capacity_bytes=1.0)
    if not lazy:
        return Report(rows=[r1, r2], **fields)
    cols = {k: [r1.get(k), r2.get(k)] for k in ["op", "z_extra", *COLUMNS[1:], "b"]}
    eager = {k: cols[k] for k in ("latency_s", "energy_j", "flops", "bytes")}
    return Report.from_columns(eager, lambda: cols, **fields)


def test_report_csv_and_frame_share_one_column_order():
    """to_csv and to_frame write COLUMNS, then the extra keys in the order first seen: rows
    of dicts (a before b: row 1 has a) and columns (z_extra, then b, as the columns come)."""
    from cosim.report import COLUMNS, INPUT_COLUMNS

    for lazy, extras in [(False, ["a", "b"]), (True, ["z_extra", "b"])]:
        rep = _small_report(lazy)
        header = rep.to_csv().splitlines()[0].split(",")
        assert header == COLUMNS + extras + INPUT_COLUMNS
        assert COLUMNS + extras == list(rep.to_frame().columns)  # the frame: the per-op columns only
        assert rep.to_csv() == _frame_with_inputs(_small_report(lazy)).to_csv(index=False)
