"""Files and plots of a serving run: per-request table, step timeline, summary, latency
CDFs, KV-memory timeline, and the throughput-latency curve of a QPS sweep."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cosim import jsonio

__all__ = ["OUTPUT_FILES", "write_outputs", "request_inputs", "requests_csv_frame", "latency_cdf_plot", "memory_timeline_plot", "throughput_latency_plot", "qps_sweep"]


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def latency_cdf_plot(results: dict, path) -> Path:
    """CDFs of TTFT and TPOT, one line per labelled run."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for label, res in results.items():
        for ax, col in zip(axes, ("ttft_s", "tpot_s")):
            v = res.requests[col].to_numpy(dtype=float) * 1e3
            v = np.sort(v[v == v])  # a one-token request has no TPOT (NaN): not a point of the CDF
            ax.plot(v, np.arange(1, v.size + 1) / v.size, label=label)
    for ax, name in zip(axes, ("TTFT (ms)", "TPOT (ms)")):
        ax.set_xlabel(name)
        ax.set_ylabel("fraction of requests")
        ax.set_xscale("log")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def memory_timeline_plot(res, path) -> Path:
    plt = _plt()
    tl = res.timeline
    fig, ax = plt.subplots(figsize=(10, 3.5))
    for name, g in tl.groupby("replica"):
        ax.plot(g["time_s"], 100 * g["kv_used"] / g["kv_capacity"].clip(lower=1), label=f"{name} KV used %", lw=0.8)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("KV blocks in use (%)")
    ax2 = ax.twinx()
    ax2.plot(tl["time_s"], tl["running"], color="gray", lw=0.5, alpha=0.6, label="running requests")
    ax2.set_ylabel("running requests")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def qps_sweep(model, hw, qps_values, **options):
    """Summaries of one configuration at several request rates (a pandas DataFrame)."""
    import pandas as pd
    from cosim.serving import serve

    rows = []
    for q in qps_values:
        s = serve(model, hw, qps=q, **options).summary
        rows.append({"qps": q, **s})
    return pd.DataFrame(rows)


def throughput_latency_plot(frames: dict, path, metric: str = "tpot_p99_s") -> Path:
    """Throughput (output tok/s) against a latency percentile, one curve per label."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, df in frames.items():
        ax.plot(df["throughput_tok_s"], df[metric] * 1e3, marker="o", label=label)
    ax.set_xlabel("throughput (output tokens/s)")
    ax.set_ylabel(metric.replace("_s", "").replace("_", " ") + " (ms)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


# the request table's own per-request columns that share a name with a ServeConfig field: the stream's
# setting stays in summary.json `config`, the request's own lengths are these columns
_PER_REQUEST = ("prompt_len", "output_len")


def request_inputs(config, priced_formats: dict | None = None) -> dict:
    """The run's options (ServeConfig.record(), summary.json's `config`) as one value per column for
    requests.csv: every field but those the request rows hold themselves (_PER_REQUEST); `weights` unset
    (None) as the format the steps were priced in (`priced_formats`, ServeResult.priced_formats: the step
    model's own; left empty where it gives none, a given step model); a nested record (parallel, host,
    speculative, offload) as compact JSON text; None as an empty field."""
    out = {}
    for k, v in config.record().items():
        if k in _PER_REQUEST:
            continue
        if k == "weights" and v is None:  # unset: the format the steps were priced in
            v = (priced_formats or {}).get("weights")
        if isinstance(v, (dict, list, tuple)):
            v = jsonio.dumps(v, sort_keys=True, separators=(",", ":"))
        out[k] = v
    return out


def requests_csv_frame(res):
    """requests.csv: the per-request table, then the run's options as constant columns (request_inputs),
    so the tables of many runs concatenate into one (`pandas.concat` of `read_csv`s) and group by any option;
    `level` is the level requested, `level_used`, `provenance` and `attention_backend` what priced the steps (a
    sweep row's columns): a device the level cannot do is priced by the roofline, and the row says so (issue 11)."""
    df = res.requests.copy()
    used = {k: res.summary.get(k) for k in ("level_used", "provenance", "attention_backend")}
    if "draft_attention_backend" in res.summary:  # a column only with a draft
        used["draft_attention_backend"] = res.summary["draft_attention_backend"]
    for k, v in {**request_inputs(res.config, res.priced_formats), **used}.items():
        if k in df.columns:  # never silently shadow a per-request column
            raise ValueError(f"requests.csv: option {k!r} clashes with a per-request column")
        df[k] = [v] * len(df)
    return df


# the files write_outputs writes, in its order (what `cosim serve` and `cosim run` guard and clean up)
OUTPUT_FILES = ("requests.csv", "timeline.csv", "summary.json", "latency_cdf.png", "kv_timeline.png")


def write_outputs(res, out_dir) -> list[Path]:
    """Write OUTPUT_FILES into `out_dir`; returns their paths, in that order."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    requests, timeline, summary, cdf, kv = paths = [out / n for n in OUTPUT_FILES]
    requests_csv_frame(res).to_csv(requests, index=False)
    res.timeline.to_csv(timeline, index=False)
    # `config`: what produced it (ServeConfig.record: model, hw, rate or trace, scheduler, formats, SLOs, ...)
    summary.write_text(jsonio.dumps({"config": res.config.record(), "summary": res.summary, "notes": list(res.notes),
                                     "kv_capacity": {k: {"blocks": v.blocks, "block_size": v.block_size,
                                                         "bytes_per_token": v.bytes_per_token, "source": v.source}
                                                     for k, v in res.capacity.items()}}, indent=2))
    latency_cdf_plot({res.config.scheduler: res}, cdf)
    memory_timeline_plot(res, kv)
    return paths
