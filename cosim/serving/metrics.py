"""What a serving run reports: per-request table, percentiles, throughput, goodput under
SLOs, energy per token, KV utilisation over time."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["ServeResult", "request_table", "summarize", "PCTS", "MIN_WINDOW_S", "has_window", "completed_between"]

PCTS = (50, 90, 99)


def request_table(requests):
    import pandas as pd

    rows = []
    for r in requests:
        ttft = r.first_token_s - r.arrival_s
        # TPOT: the time between output tokens, undefined with one output token (NaN, never 0: summarize
        # leaves such requests out of the TPOT statistics, as vLLM benchmark_serving does)
        tpot = (r.finish_s - r.first_token_s) / (r.output_len - 1) if r.output_len > 1 else float("nan")
        rows.append((r.rid, r.arrival_s, r.first_sched_s - r.arrival_s, ttft, tpot, r.finish_s - r.arrival_s,
                     r.prompt_len, r.output_len, r.preemptions, r.replica, r.decode_replica or r.replica))
    return pd.DataFrame(rows, columns=["rid", "arrival_s", "queueing_s", "ttft_s", "tpot_s", "e2e_s",
                                       "prompt_len", "output_len", "preemptions", "replica", "decode_replica"])


def tokens_between(timeline, a: float, b: float) -> float:
    """Output tokens emitted at step ends in (a, b]: a step's tokens are made during the step, so
    a window opening at a step end leaves that step out and one closing at a step end holds it.
    A timeline row is one step (its tokens at its end, `time_s`) or a fast-path run of `steps`
    decode steps from `start_s` to `time_s`, taken as equally long, each emitting tokens / steps
    at its end."""
    e = timeline["time_s"].to_numpy(dtype=float)
    s = timeline["start_s"].to_numpy(dtype=float)
    n = timeline["steps"].to_numpy(dtype=float)
    tok = timeline["tokens"].to_numpy(dtype=float)
    d = (e - s) / n  # a step's length in the row
    # step ends e - m d, m = 0 .. n-1, in (a, b]: (e - b) / d <= m < (e - a) / d
    with np.errstate(divide="ignore", invalid="ignore"):
        hi = np.where(d > 0, np.ceil((e - a) / d) - 1, np.where(e > a, n - 1, -1))
        lo = np.where(d > 0, np.ceil((e - b) / d), np.where(e <= b, 0, n))
    count = np.clip(np.minimum(hi, n - 1) - np.maximum(lo, 0) + 1, 0, None)
    return float((tok * count / n).sum())


MIN_WINDOW_S = 1e-9  # shortest window a rate is taken over (s)


def has_window(seconds: float) -> bool:
    """Whether a rate can be taken over a window this long: at least MIN_WINDOW_S (1 ns, far below
    any step); a shorter one would only count float round-off, or overflow. NaN is no window."""
    return bool(seconds >= MIN_WINDOW_S)


def summarize(df, energy_j: float, slo_ttft_s, slo_tpot_s, timeline=None) -> dict:
    """Latency percentiles and rates of one run, on two time bases, both reported:

    - the makespan, first arrival -> last finish: `throughput_req_s`, `throughput_tok_s`,
      `goodput_req_s` (vLLM benchmark_serving's duration). It holds the ramp-up before the
      first finish and the drain after the last arrival, when no load is offered, so it
      reads below what the system sustains.
    - windows that leave out the drain (and, for throughput, the ramp-up):
      `goodput_window_req_s` = requests arriving in [first arrival, last arrival) that meet
      both SLOs / `arrival_window_s`: the SLO-meeting part of the offered load (N arrivals d
      seconds apart, all meeting the SLOs, read (N - 1) / ((N - 1) d) = 1 / d). The window is
      fixed by the arrivals alone, so configurations fed the same requests differ only by
      their SLO misses. `throughput_window_req_s` = requests' worth of output completed in the
      steady window (first finish, last finish at or before the last arrival] / `steady_window_s`
      (`completed_between`: each request counts the share of its output tokens emitted in the
      window), and `throughput_window_tok_s` = output tokens emitted at step ends in it (from the
      step `timeline`) / steady_window_s: load is offered and the first request has gone through.
      Evenly spaced identical requests read their spacing exactly: the offered rate 1 / d below
      saturation (N arrivals d apart, service s, whatever s / d) and the capacity above it. A
      count of whole finishes in the window did so only for one finish at a time: finishes that
      come in bursts (a continuous batch admitted together finishes together) put the window's
      ends at two bursts, so it held all but the first finish of the first burst plus every
      later burst, about one burst more than the periods it spans (session 14 audit: bursts of
      256 every 8.6 s read 43.6 req/s for a capacity of 29.8). Counting output progress has
      no such fencepost: a burst half inside the window counts half. (Closing at the last
      arrival instead counted ceil(((N-1) d - s) / d) finishes over (N-1) d - s: 3 arrivals 1 s
      apart, 0.5 s service read 1.33 req/s.) A window shorter than MIN_WINDOW_S (`has_window`)
      gives NaN (and the run a note): a rate over it would only count float round-off, or overflow.
    """
    arrival = df["arrival_s"].to_numpy(dtype=float)
    finish = arrival + df["e2e_s"].to_numpy(dtype=float)
    start, end = arrival.min(), finish.max()
    makespan = end - start
    a, last_arrival = finish.min(), arrival.max()
    by_last = finish[finish <= last_arrival]
    b = by_last.max() if len(by_last) else a  # the steady window (a, b]: first finish -> last finish by the last arrival
    window, arrivals = b - a, last_arrival - start
    out_len = df["output_len"].to_numpy()
    nan = float("nan")
    out = {"requests": len(df), "makespan_s": float(makespan),
           "arrival_window_s": float(arrivals),
           "steady_start_s": float(a), "steady_end_s": float(b), "steady_window_s": float(window),
           "throughput_req_s": float(len(df) / makespan) if makespan > 0 else nan,
           "throughput_tok_s": float(out_len.sum() / makespan) if makespan > 0 else nan,
           "energy_j": energy_j, "energy_per_token_j": energy_j / out_len.sum(),
           "preemptions": int(df["preemptions"].sum())}
    timed = out_len > 1  # TPOT is defined for a request with a second output token only
    out["tpot_requests"], out["tpot_excluded"] = int(timed.sum()), int((~timed).sum())
    for col in ("ttft_s", "tpot_s", "e2e_s", "queueing_s"):
        v = df[col].to_numpy(dtype=float)
        if col == "tpot_s":
            v = v[timed]
        out[f"{col[:-2]}_mean_s"] = float(v.mean()) if v.size else nan
        for p in PCTS:
            out[f"{col[:-2]}_p{p}_s"] = float(np.percentile(v, p)) if v.size else nan
    if slo_ttft_s is None and slo_tpot_s is None:  # no SLO: goodput and attainment are undefined, not 100 %
        out["slo_attainment"] = out["goodput_req_s"] = out["goodput_window_req_s"] = nan
    else:
        ok = np.ones(len(df), dtype=bool)
        if slo_ttft_s is not None:
            ok &= df["ttft_s"].to_numpy() <= slo_ttft_s
        if slo_tpot_s is not None:  # a one-token request has no TPOT to miss (vLLM benchmark_serving: its 0 passes)
            ok &= ~timed | (df["tpot_s"].to_numpy(dtype=float) <= slo_tpot_s)
        out["slo_attainment"] = float(ok.mean())
        out["goodput_req_s"] = float(ok.sum() / makespan) if makespan > 0 else nan
        out["goodput_window_req_s"] = (float((ok & (arrival < last_arrival)).sum() / arrivals)
                                       if has_window(arrivals) else nan)
    first = arrival + df["ttft_s"].to_numpy(dtype=float)
    return _windows(out, (first, finish, out_len), a, b, window, timeline)


def tpot_excluded_text(s) -> str:
    """Why the TPOT row counts fewer requests than the run: one-token outputs have no TPOT."""
    return (f"{s['tpot_excluded']} of {s['requests']} requests with one output token excluded: no TPOT"
            + (" - none left" if not s["tpot_requests"] else ""))


NO_SLO_NOTE = ("no SLO given (slo_ttft_s / slo_tpot_s; CLI --slo-ttft / --slo-tpot): goodput_req_s, "
               "goodput_window_req_s and slo_attainment are NaN (null in JSON); throughput_* counts every request")


def completed_between(first, finish, out_len, a: float, b: float) -> float:
    """Requests' worth of output made in (a, b]: each request counts (its output tokens emitted
    in (a, b]) / output_len, its first token at `first` and the others evenly spaced to `finish`
    (token k at first + k (finish - first) / (output_len - 1), its mean TPOT). Whole requests in
    the window count 1, so over the whole run it is the request count; a request whose tokens
    straddle an end counts the share inside."""
    finish = np.asarray(finish, dtype=float)
    first = np.minimum(np.asarray(first, dtype=float), finish)  # a frame may give a TTFT past the e2e
    n = np.asarray(out_len, dtype=float)
    tpot = np.where(n > 1, (finish - first) / np.maximum(n - 1, 1), 0.0)

    def made_by(t):  # tokens emitted at or before t (token k at first + k tpot, k = 0 .. n - 1); a token
        # within 1e-9 of a spacing of t is at t (round-off must not split time-shifted twin requests differently)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # a huge k (tiny tpot) is clipped to n
            k = np.where(tpot > 0, np.floor((t - first) / tpot + 1e-9) + 1, n)
        return np.where(t >= finish, n, np.where(t < first, 0.0, np.clip(k, 1, n)))
    return float(((made_by(b) - made_by(a)) / n).sum())


def _windows(out, req, a, b, window, timeline) -> dict:
    """The steady-window throughput figures of `summarize`; req = (first token, finish, output
    tokens) of each request."""
    nan = float("nan")
    if has_window(window):
        out["throughput_window_req_s"] = float(completed_between(*req, a, b) / window)
        out["throughput_window_tok_s"] = float(tokens_between(timeline, a, b) / window) if timeline is not None else nan
    else:
        out["throughput_window_req_s"] = out["throughput_window_tok_s"] = nan
    return out


@dataclass
class ServeResult:
    """`summary` keys (`summarize`): rates over the makespan (`throughput_req_s`, `throughput_tok_s`,
    `goodput_req_s`, over `makespan_s`), goodput over the arrivals (`goodput_window_req_s`, over
    `arrival_window_s`), throughput over the steady window (first finish, last finish at or before
    the last arrival] (`throughput_window_req_s`: requests' worth of output made in it,
    `completed_between`; `throughput_window_tok_s`), over `steady_window_s`, from
    `steady_start_s` to `steady_end_s`); latency percentiles; energy. `timeline` has the output
    tokens each step emitted."""
    config: object
    requests: object  # pandas DataFrame, one row per request
    summary: dict
    timeline: object  # pandas DataFrame, one row per engine step
    capacity: dict  # replica -> KVCapacity
    notes: tuple = ()
    wall_s: float = 0.0
    steps_priced: int = 0
    extra: dict = field(default_factory=dict)
    # the number formats the device step model priced (DeviceStepCost.formats); {} for a given step_model
    priced_formats: dict = field(default_factory=dict)
    # what the priced steps rest on, each text once (simulate's priced_from): summary["provenance"] joins them
    priced_from: tuple = ()

    @property
    def level_used(self) -> str:
        """The level(s) whose models priced the steps (config.level is only the one requested)."""
        return self.summary.get("level_used", "")

    @property
    def provenance(self) -> str:
        """What the priced steps rest on, one text (the provenance column of requests.csv and of sweep rows)."""
        return self.summary.get("provenance", "")

    def format(self) -> str:
        s, c = self.summary, self.config
        slo = s["slo_attainment"] == s["slo_attainment"]  # NaN: no SLO given (summarize)
        lines = [f"serve {getattr(c.model, 'name', c.model)} on {getattr(c.hw, 'name', c.hw)} — scheduler "
                 f"{c.scheduler}, level {c.level}"
                 + (f" requested; steps priced at {s['level_used']}" if s.get("level_used", c.level) != c.level else "")
                 + f", {s['requests']} requests"
                 + (f", qps {c.qps}" if c.trace is None else f", trace {c.trace}")]
        from cosim.report import priced_from_line
        lines += [ln for ln in (priced_from_line(self.priced_from),) if ln]
        from workloads.profiles import backend_chosen_by
        if s.get("attention_backend"):  # as simulate's header: which backend priced attention, and who chose it
            lines.append(f"attention backend: {s['attention_backend']} ({backend_chosen_by(c.profile)})")
        if s.get("draft_attention_backend"):  # the draft is priced without the profile (serving._draft)
            lines.append(f"draft attention backend: {s['draft_attention_backend']} ({backend_chosen_by(None)}; "
                         f"the draft is priced without a profile)")
        for name, cap in self.capacity.items():
            lines.append(f"KV capacity [{name}]: {cap.blocks} blocks x {cap.block_size} = {cap.tokens:,} tokens "
                         f"at {cap.bytes_per_token:,.0f} B/token ({cap.source})")
        lines.append(f"{'':10}{'mean':>10}{'p50':>10}{'p90':>10}{'p99':>10}")
        for k in ("ttft", "tpot", "e2e", "queueing"):
            lines.append(f"{k:<10}" + "".join(f"{s[f'{k}_{p}_s'] * 1e3:>8.1f}ms" if s[f"{k}_{p}_s"] == s[f"{k}_{p}_s"]
                                              else f"{'n/a':>10}" for p in ("mean", "p50", "p90", "p99"))
                         + (f"  ({tpot_excluded_text(s)})" if k == "tpot" and s.get("tpot_excluded") else ""))
        lines.append(f"over the makespan ({s['makespan_s']:.2f} s, first arrival to last finish): throughput "
                     f"{s['throughput_req_s']:.2f} req/s, {s['throughput_tok_s']:,.0f} output tok/s; "
                     + (f"goodput {s['goodput_req_s']:.2f} req/s (SLO attainment {100 * s['slo_attainment']:.1f} %)"
                        if slo else "goodput n/a (no SLO given)"))
        if "steady_window_s" in s:
            g = ("goodput n/a (no SLO given)" if not slo else
                 f"goodput {s['goodput_window_req_s']:.2f} req/s over the {s['arrival_window_s']:.2f} s from first "
                 f"to last arrival" if has_window(s["arrival_window_s"]) else "goodput n/a (one arrival instant)")
            t = (f"throughput {s['throughput_window_req_s']:.2f} req/s, {s['throughput_window_tok_s']:,.0f} output "
                 f"tok/s over (first finish {s['steady_start_s']:.2f} s, last finish by the last arrival "
                 f"{s['steady_end_s']:.2f} s]" if has_window(s["steady_window_s"])
                 else "throughput n/a (no second finish by the last arrival)")
            lines.append(f"without the drain: {g}; {t}")
        lines.append(f"energy {s['energy_per_token_j'] * 1e3:.1f} mJ/output token (busy steps only"
                     + (f"; {s['energy_scope']}" if s.get("energy_scope") else "") + "); "
                     f"preemptions {s['preemptions']}; simulated in {self.wall_s:.2f} s")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)
