"""What a serving run reports: per-request table, percentiles, throughput, goodput under
SLOs, energy per token, KV utilisation over time."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["ServeResult", "request_table", "summarize", "PCTS"]

PCTS = (50, 90, 99)


def request_table(requests):
    import pandas as pd

    rows = []
    for r in requests:
        ttft = r.first_token_s - r.arrival_s
        tpot = (r.finish_s - r.first_token_s) / (r.output_len - 1) if r.output_len > 1 else 0.0
        rows.append((r.rid, r.arrival_s, r.first_sched_s - r.arrival_s, ttft, tpot, r.finish_s - r.arrival_s,
                     r.prompt_len, r.output_len, r.preemptions, r.replica, r.decode_replica or r.replica))
    return pd.DataFrame(rows, columns=["rid", "arrival_s", "queueing_s", "ttft_s", "tpot_s", "e2e_s",
                                       "prompt_len", "output_len", "preemptions", "replica", "decode_replica"])


def summarize(df, energy_j: float, slo_ttft_s, slo_tpot_s) -> dict:
    """Latency percentiles and rates of one run. Two time bases, both reported:

    - the makespan, first arrival -> last finish: `throughput_req_s`, `throughput_tok_s`,
      `goodput_req_s` (vLLM benchmark_serving's duration). It includes the drain after the
      last arrival, when no load is offered, so it reads below what the system sustains.
    - windows between the first and the last event of one kind, which leave out both the
      ramp-up before the first finish and the drain after the last arrival:
      `goodput_window_req_s` = requests arriving in [first arrival, last arrival) that meet
      both SLOs / `arrival_window_s` (the SLO-meeting part of the offered load: N arrivals
      every d seconds, all meeting the SLOs, give (N - 1) / ((N - 1) d) = 1 / d);
      `throughput_window_req_s` / `throughput_window_tok_s` = requests (their output tokens)
      finishing in [first finish, last finish) / `departure_window_s` (the service rate once
      running: the offered rate below saturation, the capacity above it).
      A window of zero length (one request, or all at one instant) gives NaN, and its
      `*_window_s` says 0.
    """
    arrival = df["arrival_s"].to_numpy(dtype=float)
    finish = arrival + df["e2e_s"].to_numpy(dtype=float)
    start, end, last = arrival.min(), finish.max(), arrival.max()
    makespan = end - start
    window, first_done = last - start, finish.min()
    departures = end - first_done
    out_len = df["output_len"].to_numpy()
    out = {"requests": len(df), "makespan_s": float(makespan), "arrival_window_s": float(window),
           "departure_window_s": float(departures),
           "throughput_req_s": float(len(df) / makespan) if makespan > 0 else float("nan"),
           "throughput_tok_s": float(out_len.sum() / makespan) if makespan > 0 else float("nan"),
           "energy_j": energy_j, "energy_per_token_j": energy_j / out_len.sum(),
           "preemptions": int(df["preemptions"].sum())}
    for col in ("ttft_s", "tpot_s", "e2e_s", "queueing_s"):
        v = df[col].to_numpy()
        out[f"{col[:-2]}_mean_s"] = float(v.mean())
        for p in PCTS:
            out[f"{col[:-2]}_p{p}_s"] = float(np.percentile(v, p))
    ok = np.ones(len(df), dtype=bool)
    if slo_ttft_s is not None:
        ok &= df["ttft_s"].to_numpy() <= slo_ttft_s
    if slo_tpot_s is not None:
        ok &= df["tpot_s"].to_numpy() <= slo_tpot_s
    out["slo_attainment"] = float(ok.mean())
    out["goodput_req_s"] = float(ok.sum() / makespan) if makespan > 0 else float("nan")
    # half-open windows: N evenly spaced events are N - 1 gaps, so the last event is left out
    nan = float("nan")
    out["goodput_window_req_s"] = float((ok & (arrival < last)).sum() / window) if window > 0 else nan
    done = finish < end
    out["throughput_window_req_s"] = float(done.sum() / departures) if departures > 0 else nan
    out["throughput_window_tok_s"] = float(out_len[done].sum() / departures) if departures > 0 else nan
    return out


@dataclass
class ServeResult:
    """`summary` keys (`summarize`): rates over the makespan (`throughput_req_s`, `throughput_tok_s`,
    `goodput_req_s`, over `makespan_s`), goodput over the arrival window (`goodput_window_req_s`, over
    `arrival_window_s`) and throughput over the departure window (`throughput_window_req_s`,
    `throughput_window_tok_s`, over `departure_window_s`); latency percentiles; energy."""
    config: object
    requests: object  # pandas DataFrame, one row per request
    summary: dict
    timeline: object  # pandas DataFrame, one row per engine step
    capacity: dict  # replica -> KVCapacity
    notes: tuple = ()
    wall_s: float = 0.0
    steps_priced: int = 0
    extra: dict = field(default_factory=dict)

    def format(self) -> str:
        s, c = self.summary, self.config
        lines = [f"serve {getattr(c.model, 'name', c.model)} on {getattr(c.hw, 'name', c.hw)} — scheduler "
                 f"{c.scheduler}, level {c.level}"
                 + (f" requested; steps priced at {s['level_used']}" if s.get("level_used", c.level) != c.level else "")
                 + f", {s['requests']} requests"
                 + (f", qps {c.qps}" if c.trace is None else f", trace {c.trace}")]
        for name, cap in self.capacity.items():
            lines.append(f"KV capacity [{name}]: {cap.blocks} blocks x {cap.block_size} = {cap.tokens:,} tokens "
                         f"at {cap.bytes_per_token:,.0f} B/token ({cap.source})")
        lines.append(f"{'':10}{'mean':>10}{'p50':>10}{'p90':>10}{'p99':>10}")
        for k in ("ttft", "tpot", "e2e", "queueing"):
            lines.append(f"{k:<10}" + "".join(f"{s[f'{k}_{p}_s'] * 1e3:>8.1f}ms" for p in ("mean", "p50", "p90", "p99")))
        lines.append(f"over the makespan ({s['makespan_s']:.2f} s, first arrival to last finish): throughput "
                     f"{s['throughput_req_s']:.2f} req/s, {s['throughput_tok_s']:,.0f} output tok/s; goodput "
                     f"{s['goodput_req_s']:.2f} req/s (SLO attainment {100 * s['slo_attainment']:.1f} %)")
        if "arrival_window_s" in s:
            w = (f"{s['goodput_window_req_s']:.2f} req/s over the {s['arrival_window_s']:.2f} s from first to last "
                 f"arrival" if s["arrival_window_s"] > 0 else "n/a (every request arrived at one instant)")
            d = (f"{s['throughput_window_req_s']:.2f} req/s, {s['throughput_window_tok_s']:,.0f} output tok/s over "
                 f"the {s['departure_window_s']:.2f} s from first to last finish" if s["departure_window_s"] > 0
                 else "n/a (every request finished at one instant)")
            lines.append(f"steady state (no ramp-up, no drain): goodput {w}; throughput {d}")
        lines.append(f"energy {s['energy_per_token_j'] * 1e3:.1f} mJ/output token (busy steps only); "
                     f"preemptions {s['preemptions']}; simulated in {self.wall_s:.2f} s")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)
