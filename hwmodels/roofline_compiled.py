"""The roofline of one traced template on one spec, compiled to straight-line Python.

`hwmodels.roofline.evaluate` prices thousands of variants in one numpy pass; for ONE
spec and ~20 ops its ~25 numpy calls cost more than the arithmetic. This module
writes the same formula, op by op, with the spec's numbers as literals, into one
Python function of the template's flat numbers (workloads.template). Same operations
in the same order on IEEE doubles as `evaluate`, so the results are bit-identical
(tests compare them on every bundled model and spec); a spec with a zero peak,
bandwidth or capacity (where numpy would return inf and Python raise) is not compiled.

Per memory level: traffic = max(compulsory bytes, 2·mnk·e / sqrt(C_inner / e)); the
innermost level has no inner memory (C = inf), so its reuse term is 0.
"""

from __future__ import annotations

import math

__all__ = ["compiled_totals"]

_CACHE: dict = {}


def compiled_totals(tmpl, table_fmt_cols, h):
    """fn(flat) -> (latency_s, energy_j, flops, bytes) lists per op (totals over repeat),
    or None when this spec cannot be compiled exactly. `h` is a one-variant HwTable,
    `table_fmt_cols` the compute-format column of each op."""
    key = (id(tmpl), id(h))
    hit = _CACHE.get(key)
    if hit is not None and hit[0] is tmpl and hit[1] is h:
        return hit[2]
    fn = _compile(tmpl, [int(c) for c in table_fmt_cols], h)
    if len(_CACHE) > 4096:
        _CACHE.clear()
    _CACHE[key] = (tmpl, h, fn)
    return fn


def _lit(x: float) -> str:
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "(-inf)"
    return repr(x)


def _compile(tmpl, cols, h):
    peaks = [float(h.peak[c]) for c in cols]
    bws = [float(b) for b in h.bandwidth]
    caps = [float(c) for c in h.inner_capacity]
    if min(peaks + bws + caps, default=1.0) <= 0 or any(math.isnan(v) for v in peaks + bws + caps):
        return None
    if len(bws) > 2:  # numpy's summation order over 3+ levels is not replicated here: use numpy
        return None
    n, levels = len(tmpl.names), len(bws)
    lines = ["def roofline(x):"]
    outs = {"lat": [], "en": [], "fl": [], "by": []}
    for i in range(n):
        rep = _lit(float(tmpl.repeat[i]))
        lines += [f"    f = x[{i}]; b = x[{n + i}]; num = (2.0 * x[{2 * n + i}]) * x[{3 * n + i}]",
                  f"    e = x[{3 * n + i}]; tc = f / {_lit(peaks[i])}"]
        trs = []
        for j in range(levels):
            if math.isinf(caps[j]):  # num / sqrt(inf) = 0 exactly: traffic = max(bytes, 0.0)
                lines.append(f"    r = num / inf")
            else:
                lines.append(f"    r = num / sqrt({_lit(caps[j])} / e)")
            lines += [f"    t{j} = b if b >= r else r",  # np.maximum: neither is ever nan here
                      f"    m{j} = t{j} / {_lit(bws[j])}"]
            trs.append(f"t{j} * {_lit(h.e_byte[j])}")
        if levels == 1:
            lines.append("    tm = m0")
        else:  # np.maximum.reduce over two levels
            lines.append("    tm = m1 if m1 > m0 else m0")
        esum = trs[0] if levels == 1 else f"({trs[0]} + {trs[1]})"  # numpy's add.reduce of two
        lines += [f"    l{i} = tc if tc >= tm else tm",
                  f"    e{i} = (f * {_lit(h.e_flop[cols[i]])} + {esum} + {_lit(h.static_w)} * l{i}) * {rep}",
                  f"    f{i} = f * {rep}; b{i} = b * {rep}"]
        outs["lat"].append(f"l{i} * {rep}")
        outs["en"].append(f"e{i}")
        outs["fl"].append(f"f{i}")
        outs["by"].append(f"b{i}")
    lines.append("    return " + ", ".join("[" + ", ".join(v) + "]" for v in outs.values()))
    src = "\n".join(lines) + "\n"
    ns = {"sqrt": math.sqrt, "inf": math.inf, "nan": math.nan}
    exec(compile(src, "<compiled roofline>", "exec"), ns)  # noqa: S102 - our own generated arithmetic
    fn = ns["roofline"]
    fn.source = src
    return fn
