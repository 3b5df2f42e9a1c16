"""Requests over time: Poisson or gamma (bursty) arrivals, or a trace file.

A trace file is CSV with columns ``arrival_s,prompt_len,output_len`` (one request a
row, arrival times in seconds, finite; whole token counts; absolute timestamps are served from
the first arrival, ABSOLUTE_FROM_S). Lengths for synthetic arrivals are fixed
numbers, or drawn (with replacement) from a trace file's rows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workloads.io import InputError, warn_shadowed

__all__ = ["RequestSpec", "load_trace", "bundled_trace", "make_requests", "sharegpt_like_lengths", "lengths_note",
           "order_note",
           "TRACE_COLUMNS"]

TRACE_COLUMNS = ("arrival_s", "prompt_len", "output_len")


@dataclass(frozen=True)
class RequestSpec:
    rid: int
    arrival_s: float
    prompt_len: int
    output_len: int
    row: int | None = None  # its line in the trace file (header = 1); None for a synthetic request


def bundled_trace(name: str) -> Path | None:
    """A bundled trace by name, or by the docs-style path (cosim/)configs/traces/<name>.csv
    that resolves from any directory, as resolve_bundled does for the YAML kinds."""
    from workloads.io import bundled_dir
    parts = Path(name).parts
    parts = parts[1:] if parts[:1] == ("cosim",) else parts
    if len(parts) == 3 and parts[:2] == ("configs", "traces") and parts[2].endswith(".csv"):
        name = parts[2][:-4]
    p = bundled_dir("traces") / f"{name}.csv"
    return p if p.is_file() else None


# From this first arrival up a trace's times are absolute timestamps (epoch seconds, or nanoseconds written as
# seconds): float64 resolves no better than 1 ns there (2^-30 s at 2^22 s, about 48.5 days), and a run's times
# sum many step costs on top, so a 1e18 epoch gave every latency 0.0 ms. Such a trace is served from its first
# arrival (rebased, said in a note). Below it a trace keeps its own times: rebasing would move the times the run
# reports (requests.csv arrival_s, the timeline, steady_start_s / steady_end_s), though no latency or rate.
ABSOLUTE_FROM_S = 2.0 ** 22


def _rebased_arrivals(path):
    """The arrivals minus the first, computed exactly from the file's text (Decimal): the float64 values cannot
    tell 1700000000000000000 from ...001 apart; pandas reads a wide integer column exactly but not a wide decimal."""
    import pandas as pd
    from decimal import Decimal

    text = pd.read_csv(path, usecols=["arrival_s"], dtype=str)["arrival_s"].str.strip()
    exact = [Decimal(t) for t in text]
    first = min(exact)
    return np.array([float(d - first) for d in exact]), first


def _check_column(path, df, c, col):
    """One error for the first bad value of column c: NaN or text, inf, negative, a count below 1 or a
    fractional count (int() truncated 100.7 to 100, silently)."""
    vals = col.to_numpy(dtype=float)
    finite = np.isfinite(vals)  # NaN (text, empty) and +-inf: an inf arrival stalled the engine
    bad = ~finite | (vals < 0)
    if c != "arrival_s":
        bad |= (vals < 1) | (finite & (np.floor(np.where(finite, vals, 0)) != vals))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        v = df[c].iloc[i]
        v = v.item() if isinstance(v, np.generic) else v  # a plain number, not np.int64(-3)
        raise InputError(f"{path}: row {i + 2}: {c}: got {v!r}; expected "
                         + ("a finite time >= 0 in seconds" if c == "arrival_s"
                            else "a positive token count, a whole number (an integer >= 1)"))


def load_trace(path_or_name, source_field: str = "trace", notes: list | None = None) -> list[RequestSpec]:
    """Requests from a CSV trace (a path, or a bundled name such as sharegpt_synth). `notes`: a list that gets
    what the loader changed (arrivals rebased to the first, for absolute timestamps)."""
    import pandas as pd

    # the rule of every loader (workloads.io.resolve_bundled): a bare bundled name is the bundled
    # trace even when a same-named file sits in the working directory (./name reads that one); a
    # docs-style path is the bundled file only where no such file exists
    text = str(path_or_name)
    path, bundled = Path(text), bundled_trace(text)
    bare = "/" not in text and os.sep not in text and not text.endswith(".csv")
    if bundled is not None and (bare or not path.is_file()):
        if bare:
            warn_shadowed(text, bundled, "trace")  # a same-named local file is not read: said (workloads.io)
        path = bundled
    if not path.is_file():
        raise InputError(f"{source_field}: no such trace file {str(path_or_name)!r}; expected a CSV with "
                         f"columns {', '.join(TRACE_COLUMNS)} or a bundled trace name (sharegpt_synth)")
    try:
        df = pd.read_csv(path)
    except Exception as e:  # pandas raises several parser errors; the message is what matters
        raise InputError(f"{path}: not a readable CSV trace ({e})") from None
    missing = [c for c in TRACE_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}; expected columns "
                         f"{', '.join(TRACE_COLUMNS)} (found {', '.join(map(str, df.columns))})")
    for c in TRACE_COLUMNS:
        _check_column(path, df, c, pd.to_numeric(df[c], errors="coerce"))
    arrivals = df["arrival_s"].to_numpy(dtype=float)
    if len(df) and arrivals.min() >= ABSOLUTE_FROM_S:
        arrivals, first = _rebased_arrivals(path)
        if notes is not None:
            notes.append(f"trace {path_or_name}: arrivals rebased to the first (arrival_s {first} in the file, at or "
                         f"beyond {ABSOLUTE_FROM_S:,.0f} s: an absolute timestamp, which float64 cannot resolve to "
                         f"1 ns); requests.csv arrival_s, the timeline and steady_start_s/steady_end_s count from "
                         f"it; latencies and rates do not change")
    # sorted on the exact (rebased) times: the file's floats tie 1700000000000000001 with ...000
    order = np.argsort(arrivals, kind="stable")
    a = arrivals[order]
    p, o = (df[c].to_numpy()[order] for c in TRACE_COLUMNS[1:])
    return [RequestSpec(i, float(a[i]), int(p[i]), int(o[i]), int(order[i]) + 2) for i in range(len(a))]


def order_note(specs, trace) -> str | None:
    """A trace whose rows are not in arrival order is served in arrival order (a stable sort): say so."""
    moved = [r for i, r in enumerate(specs) if r.row is not None and r.row != i + 2]
    if not moved:
        return None
    return (f"trace {trace}: rows not in arrival order; served sorted by arrival_s (stable), {len(moved)} of "
            f"{len(specs)} requests moved (request {moved[0].rid} is file row {moved[0].row}); requests.csv "
            f"numbers them in arrival order")


def _check_rate(qps, requests):
    if isinstance(qps, bool) or not isinstance(qps, (int, float)) or not np.isfinite(qps) or qps <= 0:
        raise InputError(f"serve: qps: got {qps!r}; expected a positive number of requests per second")
    if isinstance(requests, bool) or not isinstance(requests, int) or requests < 1:
        raise InputError(f"serve: requests: got {requests!r}; expected a positive integer")


def arrival_times(n: int, qps: float, process: str, cv: float, rng) -> np.ndarray:
    """n arrival times at mean rate qps. gamma: inter-arrival gaps with coefficient of
    variation cv (cv = 1 is Poisson; cv > 1 is bursty)."""
    if process == "poisson":
        gaps = rng.exponential(1.0 / qps, n)
    elif process == "gamma":
        if not (isinstance(cv, (int, float)) and cv > 0):
            raise InputError(f"serve: burstiness: got {cv!r}; expected a positive coefficient of variation")
        shape = 1.0 / cv ** 2
        gaps = rng.gamma(shape, 1.0 / (qps * shape), n)
    else:
        raise InputError(f"serve: arrival: got {process!r}; expected poisson, gamma or trace")
    return np.cumsum(gaps) - gaps[0]


def sharegpt_like_lengths(n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Prompt and output lengths with ShareGPT's means (vLLM paper, Kwon et al. SOSP 2023,
    Fig. 11a: mean input 161 tokens, mean output 338) as lognormals with sigma 1.0 (an
    assumption: a long right tail like the dataset's), clipped to [4, 4096]."""
    sigma = 1.0
    mu_p, mu_o = np.log(161.0) - sigma ** 2 / 2, np.log(338.0) - sigma ** 2 / 2
    p = np.clip(np.round(rng.lognormal(mu_p, sigma, n)), 4, 4096).astype(int)
    o = np.clip(np.round(rng.lognormal(mu_o, sigma, n)), 4, 4096).astype(int)
    return p, o


def lengths_note(specs, prompt_len=None, output_len=None, lengths_from=None, trace=None) -> str:
    """Where a run's request lengths came from, with the drawn means: every latency depends on them."""
    p = float(np.mean([r.prompt_len for r in specs]))
    o = float(np.mean([r.output_len for r in specs]))
    if trace is not None or lengths_from is not None:
        src = f"from {trace if trace is not None else lengths_from}"
    elif prompt_len is not None and output_len is not None:
        return f"request lengths: fixed (prompt {prompt_len}, output {output_len} tokens)"
    else:
        src = ("ShareGPT-like lognormal draw (means 161 / 338 tokens, vLLM paper; set --prompt-len / "
               "--output-len / --lengths-from / --trace)" + (f"; prompt fixed at {prompt_len}" if prompt_len else "")
               + (f"; output fixed at {output_len}" if output_len else ""))
    return f"request lengths: {src}: prompt mean {p:,.0f}, output mean {o:,.0f} tokens over {len(specs)} requests"


def _lengths(value, n, rng, fld):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"serve: {fld}: got {value!r}; expected a positive integer token count")
    return np.full(n, int(value))


def make_requests(requests: int, qps: float, arrival: str = "poisson", burstiness: float = 1.0,
                  prompt_len=None, output_len=None, lengths_from=None, trace=None,
                  seed: int = 0, notes: list | None = None) -> list[RequestSpec]:
    """The request list of one run. With `trace`, arrivals and lengths come from the file
    (the first `requests` rows in arrival order; more than it holds is refused). Otherwise arrivals are synthetic at
    `qps`, and lengths are fixed (`prompt_len`, `output_len`), drawn from `lengths_from` (a trace file), or
    ShareGPT-like by default. `notes`: a list that gets what was changed or cut (load_trace's, the first N)."""
    if trace is not None:
        rows = load_trace(trace, notes=notes)
        if isinstance(requests, int) and not isinstance(requests, bool) and requests >= 1:
            if rows and requests > len(rows):  # was silently the trace's rows (an empty trace: _check_stream says)
                raise InputError(f"serve: requests (CLI --requests): got {requests:,}; expected at most the "
                                 f"{len(rows):,} requests of trace {trace} (its rows), or no requests to replay "
                                 f"them all")
            if requests < len(rows) and notes is not None:
                notes.append(f"trace {trace}: the first {requests:,} of its {len(rows):,} requests in arrival "
                             f"order served (requests {requests:,}; CLI --requests)")
            rows = rows[:requests]
        return rows
    _check_rate(qps, requests)
    rng = np.random.default_rng(seed)
    t = arrival_times(requests, float(qps), arrival, burstiness, rng)
    if lengths_from is not None:
        rows = load_trace(lengths_from, "lengths_from")
        pick = rng.integers(0, len(rows), requests)
        p = np.array([rows[i].prompt_len for i in pick])
        o = np.array([rows[i].output_len for i in pick])
    else:
        p_def, o_def = sharegpt_like_lengths(requests, rng)
        p = p_def if prompt_len is None else _lengths(prompt_len, requests, rng, "prompt_len")
        o = o_def if output_len is None else _lengths(output_len, requests, rng, "output_len")
    return [RequestSpec(i, float(t[i]), int(p[i]), int(o[i])) for i in range(requests)]
