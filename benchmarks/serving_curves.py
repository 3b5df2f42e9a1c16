"""Throughput-latency curves and latency CDFs of cosim's serving engine: Llama-3-8B on one
H100-SXM (roofline level), ShareGPT-like lengths, continuous batching vs Sarathi chunked
prefill vs 1+1 disaggregation, QPS swept. Writes benchmarks/results/serving_curves.{md,png}
and serving_cdf.png."""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cosim.serving import serve  # noqa: E402
from cosim.serving.output import latency_cdf_plot, qps_sweep, throughput_latency_plot  # noqa: E402

OUT = ROOT / "benchmarks" / "results"
QPS = (2, 5, 10, 15, 20, 25)


def main():
    base = dict(requests=2000, lengths_from="sharegpt_synth", slo_ttft_s=0.5, slo_tpot_s=0.05)
    t = time.perf_counter()
    frames = {name: qps_sweep("llama3_8b", "h100_sxm", QPS, scheduler=name, **base)
              for name in ("continuous", "chunked", "disaggregated")}
    wall = time.perf_counter() - t
    throughput_latency_plot(frames, OUT / "serving_curves.png", "tpot_p99_s")
    throughput_latency_plot(frames, OUT / "serving_curves_ttft.png", "ttft_p99_s")
    cdf = {f"{s} @ 15 qps": serve("llama3_8b", "h100_sxm", qps=15, scheduler=s, **base)
           for s in ("continuous", "chunked")}
    latency_cdf_plot(cdf, OUT / "serving_cdf.png")
    lines = [f"Llama-3-8B, H100-SXM, roofline; 2000 requests, ShareGPT-like lengths; SLO TTFT<=0.5 s, "
             f"TPOT<=50 ms; {sum(len(f) for f in frames.values())} runs in {wall:.1f} s", "",
             "| scheduler | qps | tok/s | TTFT p50 ms | TTFT p99 ms | TPOT p50 ms | TPOT p99 ms | goodput req/s |",
             "|---|---|---|---|---|---|---|---|"]
    for name, df in frames.items():
        for r in df.itertuples():
            lines.append(f"| {name} | {r.qps} | {r.throughput_tok_s:,.0f} | {1e3 * r.ttft_p50_s:.1f} | "
                         f"{1e3 * r.ttft_p99_s:.1f} | {1e3 * r.tpot_p50_s:.2f} | {1e3 * r.tpot_p99_s:.2f} | "
                         f"{r.goodput_req_s:.2f} |")
    (OUT / "serving_curves.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
