"""The README speed table, regenerated from benchmarks/results/*.json.

    python benchmarks/speed_table.py            # -> benchmarks/results/speed_table.md

Every figure is a ratio measured in ONE run against the named peer or numpy baseline
(its result file says how): no absolute time from one run is divided by one from
another. A benchmark whose file is missing is listed as "not run"; a ratio whose
reference was not timed in the same run (SCALE-Sim recorded times) is marked so.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def _load(name: str):
    p = RESULTS / f"{name}.json"
    return json.loads(p.read_text()) if p.is_file() else None


def _x(v: float) -> str:
    return f"{v:,.0f}x" if v >= 100 else f"{v:,.2f}x"


def peers_rows(d) -> list:
    names = {"llm_viewer": "LLM-Viewer", "llm_analysis": "llm-analysis", "genz": "GenZ"}
    out = []
    for r in d["rows"]:
        peers = {p: r[f"{p}_us"] for p in d["peers"] if f"{p}_us" in r}
        if not peers:
            continue
        fast = min(peers, key=peers.get)
        both = f"; prefill+decode vs one call {_x(r[fast + '_ratio_both'])}" if f"{fast}_ratio_both" in r else ""
        out.append((f"one full-model estimate, {r['config']} {r['phase']} (roofline)",
                    f"fastest peer: {names[fast]} ({d['peers'][fast]})", _x(r[f"{fast}_ratio"]),
                    f"cosim {r['cosim_us']:.0f} us vs {peers[fast]:.0f} us per call{both}", "peers_speed"))
    return out


def workload_rows(d) -> list:
    rows = d["rows"]
    pp = next((r for r in rows if r["path"].startswith("point by point")), None)
    cyc = next((r for r in rows if r["path"].startswith("cycle level, Llama-3-8B decode, one call")), None)
    out = []
    for r in rows:
        ref = cyc if r["path"].startswith("cycle") else pp
        if r is pp or r is cyc or not ref:
            continue
        what = "cycle-level model call per array config" if ref is cyc else "point-by-point build_trace + simulate"
        same = f"; identical to the per-point path: {r['identical_to_per_point']}" if "identical_to_per_point" in r else ""
        out.append((f"{r['path']} ({r['configs']:,} configs)", what, _x(r["vs_point_by_point"]),
                    f"{r['configs_per_s']:,.0f} vs {ref['configs_per_s']:,.0f} configs/s{same}",
                    "workload_sweep_speed"))
    return out


def startup_rows(d) -> list:
    """Fresh-process wall times next to `python -c 'import numpy'` timed in the same run."""
    rows = d["rows"]
    floor = next((r for r in rows if "floor" in r["what"]), None)
    if floor is None:
        return []
    return [(r["what"], "python -c 'import numpy' (same run)", f"{r['seconds'] / floor['seconds']:.1f}x the floor",
             f"{r['seconds']:.1f} s vs {floor['seconds']:.2f} s; goal < {r['goal_s']:g} s "
             f"({'met' if r['seconds'] < r['goal_s'] else 'NOT met'} at load {d['load_average']:.1f})",
             "startup_speed") for r in rows if r is not floor and r.get("goal_s")]


def functional_rows(d) -> list:
    out = []
    q = [r for r in d["quantize"] if r.get("goal", "-") != "-"]
    policies = (("fraction_fresh_vs_copy", "fresh output", "numpy x.copy() of the same array (both allocate)"),
                ("fraction_reused_vs_copyto", "reused output (out=)",
                 "numpy memcpy (np.copyto) into a preallocated array (both reuse)"))
    for key, what, peer in (policies if q and policies[0][0] in q[0] else ()):
        worst = min(q, key=lambda r: r[key])
        med = statistics.median(r[key] for r in q)
        out.append((f"quantize -> dequantize, {len(q)} MX/BFP formats, {what}", peer, f"{100 * med:.0f}% (median)",
                    f"worst {worst['format']} {100 * worst[key]:.0f}%", "functional_speed"))
    if q and policies[0][0] not in q[0] and "fraction_of_memcpy" in q[0]:  # a result from before the two policies
        worst = min(q, key=lambda r: r["fraction_of_memcpy"])
        med = statistics.median(r["fraction_of_memcpy"] for r in q)
        out.append((f"quantize -> dequantize, {len(q)} MX/BFP formats (older result: fresh output vs a preallocated "
                    f"copy)", "numpy memcpy (np.copyto)", f"{100 * med:.0f}% (median)",
                    f"worst {worst['format']} {100 * worst['fraction_of_memcpy']:.0f}%", "functional_speed"))
    for g in d["gemm"]:
        if "fraction_of_numpy" not in g:
            continue
        out.append((f"MX GEMM {g['shape'][0]}^3 {g['format']} {g['mode']}",
                    "numpy float32 matmul of the dequantized operands", f"{100 * g['fraction_of_numpy']:.0f}%",
                    f"{g['GMACs']:.2f} vs {g['numpy_f32_GMACs']:.2f} GMAC/s", "functional_speed"))
    return out


def systolic_rows(d) -> list:
    s = d["summary"]
    same = s.get("same_run")
    label = "SCALE-Sim 3.0.0, same run" if same else "SCALE-Sim 3.0.0, RECORDED times (not same run)"
    pts = s.get("same_run_points") if same else s["grid_points"]
    return [(f"systolic cycle count per layer ({pts} layers x arrays x dataflows)", label,
             f"{_x(s['speedup_median'])} (median)",
             f"min {_x(s['speedup_min'])}, max {_x(s['speedup_max'])}; cycles identical: {s['all_match_golden']}",
             "systolic_speed")]


def serving_rows(d) -> list:
    """cosim's serving simulator against Vidur on the same 10,000-request trace, per scheduler."""
    out = []
    for sched in sorted({r["scheduler"] for r in d["rows"]}):
        rs = {r["simulator"]: r for r in d["rows"] if r["scheduler"] == sched}
        vid = rs["vidur"]
        for name in sorted(k for k in rs if k != "vidur"):
            r = rs[name]
            out.append((f"serving, {d['requests']:,} requests, {sched} scheduler ({name})", "Vidur, same trace",
                        _x(vid["wall_s"] / r["wall_s"]),
                        f"{r['wall_s']:.1f} s vs {vid['wall_s']:.1f} s (goal: 10x and < 10 s); load "
                        f"{r['load_1m']:.1f}", "serving_vs_vidur"))
    return out


def real_forward_rows(d, src="real_forward_speed") -> list:
    """The real-checkpoint forward pass against microxcaling (same operands quantized), with
    the float32 GEMM floor that bounds any speed-up."""
    out = []
    for r in d["rows"]:
        if "speedup" not in r:
            continue
        bound = f"; bound from the GEMM floor {r['speedup_bound']:.1f}x" if r.get("speedup_bound") else ""
        out.append((f"real-checkpoint forward, SmolLM2-135M, {r['tokens']} tokens, {r['weights']} weights + "
                    f"{r['acts']} acts", "transformers + microxcaling (torch CPU), same operands quantized",
                    _x(r["speedup"]), f"{r['cosim']['median_s']:.1f} s vs {r['reference']['median_s']:.1f} s "
                    f"(goal 5x){bound}; load {r['load_before']}", src))
    return out


SOURCES = [("peers_speed", peers_rows), ("workload_sweep_speed", workload_rows),
           ("functional_speed", functional_rows), ("systolic_speed", systolic_rows), ("startup_speed", startup_rows),
           ("serving_vs_vidur", serving_rows), ("real_forward_speed", real_forward_rows),
           ("real_forward_speed_512", lambda d: real_forward_rows(d, "real_forward_speed_512"))]


def build() -> str:
    lines = ["| what | measured against (same run) | cosim speed-up / share | detail | source |",
             "|---|---|---|---|---|"]
    missing = []
    for name, fn in SOURCES:
        d = _load(name)
        if d is None:
            missing.append(name)
            continue
        try:
            rows = fn(d)
        except (KeyError, TypeError, ValueError) as e:  # an older result file without same-run ratios
            missing.append(f"{name} (no same-run ratios in its result file: {type(e).__name__} {e}; re-run it)")
            continue
        for what, ref, ratio, detail, src in rows:
            lines.append(f"| {what} | {ref} | **{ratio}** | {detail} | benchmarks/results/{src}.json |")
    loads = []
    for name, _ in SOURCES:
        d = _load(name) or {}
        la = d.get("load_average", (d.get("info") or {}).get("load_average"))
        if la is not None:
            loads.append(f"{name} {la:.1f}")
    if loads:
        lines += ["", "Load average (1 min) on the 2-core machine when each benchmark finished: " + ", ".join(loads)
                  + " — ratios are same-run, absolute rates are depressed by that load."]
    if missing:
        lines += ["", "Not run (no result file): " + ", ".join(missing)]
    lines += ["", "Regenerate: `python benchmarks/speed_table.py` after the benchmarks above "
                  "(`benchmarks/peers_speed.py`, `workload_sweep_speed.py`, `functional_speed.py`, "
                  "`systolic_speed.py`, `startup_speed.py`, `serving_vs_vidur.py`, `real_forward_speed.py`), then "
                  "`python benchmarks/readme_sync.py`. Machine load at run time is recorded in each result file."]
    return "\n".join(lines) + "\n"


def main() -> int:
    text = build()
    out = RESULTS / "speed_table.md"
    out.write_text(text)
    print(text)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
