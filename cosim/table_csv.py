"""Rows of dicts -> CSV text, byte for byte what `pandas.DataFrame(rows, columns=cols)
.to_csv(index=False)` writes, without importing pandas (~0.3-0.6 s of `cosim run`).

pandas picks one dtype per column and prints by it; this repeats that choice for the
value types a report row holds: a column of ints only prints them as ints; ints and
floats, or numbers with missing values (None / NaN), make a float column (ints print
as `128.0`, missing as an empty field); bools alone print True/False; any column with
text (or bools mixed with numbers or missing values) is an object column, each value
printed with str() and missing ones empty. Floats print as numpy's shortest repr, which
is Python's repr. Any other value type (a numpy float32, a list, a dict, ...) returns
None: the caller then uses pandas. tests/test_table_csv.py compares with pandas.
"""

from __future__ import annotations

import csv
import io
import numbers

__all__ = ["rows_to_csv"]


def _kind(v) -> str | None:
    if v is None:
        return "na"
    if isinstance(v, bool):
        return "bool"
    if type(v) is int or (isinstance(v, numbers.Integral) and type(v).__module__ == "numpy"):
        return "int"
    if type(v) is float or type(v).__name__ == "float64":
        return "na" if v != v else "float"
    if isinstance(v, str):
        return "str"
    return None


def _column(values: list) -> list | None:
    kinds = [_kind(v) for v in values]
    if None in kinds:
        return None
    present = set(kinds) - {"na"}
    if present and present <= {"int"} and "na" not in kinds:
        return [str(int(v)) for v in values]
    if present <= {"int", "float"} and present:  # a float64 column
        return ["" if k == "na" else repr(float(v)) for v, k in zip(values, kinds)]
    if present == {"bool"} and "na" not in kinds:
        return [str(bool(v)) for v in values]
    return ["" if k == "na" else str(v) for v, k in zip(values, kinds)]


def rows_to_csv(rows: list, columns: list) -> str | None:
    """CSV text of `rows` (dicts; a missing key is a missing value) over `columns`, or
    None where a value's type is not one this module prints exactly as pandas does."""
    if not rows:
        return None  # pandas' empty-frame output is left to pandas
    cols = []
    for c in columns:
        out = _column([r.get(c) for r in rows])
        if out is None:
            return None
        cols.append(out)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    w.writerows(zip(*cols))
    return buf.getvalue()
