"""Our memory pipeline vs SCALE-Sim's USER- and CALC-mode columns (golden set).

For every golden row we run `hwmodels.pipeline.simulate_gemm` with SCALE-Sim's memory
setup (one DRAM port per operand at the row's bandwidth, read latency 1 cycle, 1-byte
words, its SRAM sizes double buffered, no fold overlap) and compare:

* stall cycles (USER rows): ours excludes the initial fill, which SCALE-Sim books at
  negative cycles outside "Total Cycles";
* DRAM reads per operand and ofmap writes (USER and CALC rows).

Writes benchmarks/results/pipeline_vs_scalesim.{json,md,png}. Usage:
    PYTHONPATH=. python benchmarks/pipeline_vs_scalesim.py [--limit N]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import time
from pathlib import Path

import numpy as np

from hwmodels.pipeline import PipelineConfig, simulate_gemm
from hwmodels.systolic import conv_to_gemm

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / ".." / "shared" / "golden" / "scalesim" / "cases.csv"
OUT = ROOT / "benchmarks" / "results"


def run_row(r: dict) -> dict:
    i = lambda k: int(r[k])  # noqa: E731
    if r["layer_type"] == "gemm":
        m, n, k = i("gemm_m"), i("gemm_n"), i("gemm_k")
    else:
        m, n, k, _, _ = conv_to_gemm(i("ifmap_h"), i("ifmap_w"), i("filter_h"), i("filter_w"), i("channels"),
                                     i("num_filters"), i("stride_h"), i("stride_w"), compat="scalesim")
    user = r["bw_mode"] == "USER"
    bw = float(r["dram_bw_words_per_cycle"]) if user else math.inf
    sram = {"ifmap": i("ifmap_sram_kb") * 1024, "filter": i("filter_sram_kb") * 1024,
            "ofmap": i("ofmap_sram_kb") * 1024}
    cfg = PipelineConfig(i("array_rows"), i("array_cols"), r["dataflow"], sram_bytes=sram, bandwidth=bw,
                         latency=1 if user else 0, ports="per_operand")
    t0 = time.perf_counter()
    res = simulate_gemm(m, n, k, cfg, keep_timeline=True)
    wall = time.perf_counter() - t0
    # the array's wait for fold 0's operands = SCALE-Sim's prefetch before cycle 0
    first = next((t for t in res.timeline if t[0] == "array"), None)
    first_wait = first[2] - first[1] if first and first[1] == 0 and first[3].startswith("stall") else 0.0
    foot_a = i("ifmap_h") * i("ifmap_w") * i("channels")  # distinct ifmap words (conv windows overlap)
    return {"case_id": r["case_id"], "mode": r["bw_mode"], "stall_ours": res.stall_cycles - first_wait,
            "stall_scalesim": float(r["stall_cycles"]), "read_bytes_ours": res.dram_read_bytes,
            "ifmap_reads_scalesim": float(r["dram_ifmap_reads"]), "filter_reads_scalesim": float(r["dram_filter_reads"]),
            "ofmap_writes_scalesim": float(r["dram_ofmap_writes"]), "write_bytes_ours": res.dram_write_bytes,
            "footprint": m * k + k * n, "distinct_footprint": foot_a + k * n, "ofmap_footprint": m * n, "compute": res.compute_cycles, "wall_s": wall,
            "sim_wall_s": float(r["sim_wall_s"])}


def summarise(rows: list[dict]) -> dict:
    out = {}
    for mode in ("USER", "CALC"):
        rs = [r for r in rows if r["mode"] == mode]
        if not rs:
            continue
        theirs_reads = np.array([r["ifmap_reads_scalesim"] + r["filter_reads_scalesim"] for r in rs])
        ours_reads = np.array([r["read_bytes_ours"] for r in rs])
        foot = np.array([r["footprint"] for r in rs], dtype=float)
        s = {"rows": len(rs),
             "reads_ratio_scalesim_over_footprint_median": float(np.median(theirs_reads / foot)),
             "reads_ratio_scalesim_over_footprint_max": float(np.max(theirs_reads / foot)),
             "reads_ratio_ours_over_footprint_median": float(np.median(ours_reads / foot)),
             "reads_ratio_ours_over_footprint_max": float(np.max(ours_reads / foot)),
             "reads_equal_rows": int(np.sum(np.isclose(ours_reads, theirs_reads, rtol=0.02)))}
        if mode == "USER":
            so = np.array([r["stall_ours"] for r in rs])
            st = np.array([r["stall_scalesim"] for r in rs])
            comp = np.array([r["compute"] for r in rs], dtype=float)
            s.update({
                "both_zero_stall": int(np.sum((so == 0) & (st == 0))),
                "only_scalesim_stalls": int(np.sum((so == 0) & (st > 0))),
                "only_ours_stalls": int(np.sum((so > 0) & (st == 0))),
                "both_stall": int(np.sum((so > 0) & (st > 0))),
                "stall_share_ours_mean": float(np.mean(so / (comp + so))),
                "stall_share_scalesim_mean": float(np.mean(st / (comp + st))),
                "rank_correlation": float(np.corrcoef(np.argsort(np.argsort(so)), np.argsort(np.argsort(st)))[0, 1]),
            })
        out[mode] = s
    out["wall_s_ours_total"] = float(sum(r["wall_s"] for r in rows))
    out["wall_s_scalesim_total"] = float(sum(r["sim_wall_s"] for r in rows))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=0, help="only the first N golden rows")
    args = ap.parse_args(argv)
    if not GOLDEN.is_file():
        print(f"golden set not found at {GOLDEN}")
        return 1
    with GOLDEN.open() as f:
        rows = list(csv.DictReader(f))
    if args.limit:
        rows = rows[:args.limit]
    res = [run_row(r) for r in rows]
    summ = summarise(res)
    OUT.mkdir(parents=True, exist_ok=True)
    keys = list(res[0]) if res else []
    compact = {"summary": summ, "columns": keys, "rows": [[r[k] for k in keys] for r in res]}
    (OUT / "pipeline_vs_scalesim.json").write_text(json.dumps(compact, separators=(",", ":")))
    lines = ["| mode | metric | value |", "|---|---|---|"]
    for mode in ("USER", "CALC"):
        for k, v in summ.get(mode, {}).items():
            lines.append(f"| {mode} | {k} | {v:.4g} |" if isinstance(v, float) else f"| {mode} | {k} | {v} |")
    lines.append(f"| all | pipeline wall time (s), ours | {summ['wall_s_ours_total']:.3g} |")
    lines.append(f"| all | SCALE-Sim wall time (s), recorded | {summ['wall_s_scalesim_total']:.4g} |")
    (OUT / "pipeline_vs_scalesim.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        user = [r for r in res if r["mode"] == "USER"]
        fig, ax = plt.subplots(1, 2, figsize=(10, 4))
        ax[0].scatter([r["stall_scalesim"] + 1 for r in user], [r["stall_ours"] + 1 for r in user], s=6)
        ax[0].set(xscale="log", yscale="log", xlabel="SCALE-Sim stall cycles + 1", ylabel="ours + 1",
                  title="USER-mode stalls")
        ax[1].scatter([(r["ifmap_reads_scalesim"] + r["filter_reads_scalesim"]) / r["footprint"] for r in res],
                      [r["read_bytes_ours"] / r["footprint"] for r in res], s=6,
                      c=["tab:blue" if r["mode"] == "USER" else "tab:orange" for r in res])
        ax[1].set(xscale="log", yscale="log", xlabel="SCALE-Sim DRAM reads / footprint",
                  ylabel="ours / footprint", title="DRAM reads (blue USER, orange CALC)")
        fig.tight_layout()
        fig.savefig(OUT / "pipeline_vs_scalesim.png", dpi=110)
    except ImportError:
        pass
    # one Gantt chart: a 33x33x33 GEMM on 8x8, ws, 16 KB SRAMs, 16 B/cycle shared channel
    from hwmodels.pipeline import gantt_png
    cfg = PipelineConfig(8, 8, "ws", sram_bytes={"ifmap": 512, "filter": 512, "ofmap": 512}, bandwidth=4.0,
                         latency=20)
    gantt_png(simulate_gemm(33, 33, 33, cfg), str(OUT / "pipeline_gantt_example.png"),
              "33x33x33 on 8x8 ws, 512 B buffers, 4 B/cycle shared DRAM, 20-cycle latency")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
