"""One full-model estimate, side by side in one process: cosim (`build_trace` +
`simulate`, roofline) against LLM-Viewer's `ModelAnalyzer.analyze()`, llm-analysis'
`LLMAnalysis.inference()` and GenZ's `prefill_moddeling` / `decode_moddeling`.

    python benchmarks/peers_speed.py [--llm-viewer DIR] [--genz PATH] [--rounds 7]

Peers:
- LLM-Viewer (github hahnyuan/LLM-Viewer) is not on PyPI: the script imports it from
  --llm-viewer (default $LLM_VIEWER_DIR, else ~/.cache/cosim/llm-viewer), cloning it there with git if absent. Its
  module imports `transformers` at the top for Hugging Face configs we do not use (the
  model shape is passed in directly); when transformers is not installed a stub module
  stands in for those three names, and the output says so.
- llm-analysis: `pip install llm-analysis` (its transformers pin is optional: it only
  fetches HF configs; the bundled configs are used here).
- GenZ: `pip install genz-llm` (heavy plotting deps; optional, --genz adds a path).
A peer that cannot be imported is listed as missing, never silently dropped.

Method: each configuration is timed over a fixed list of 8 workloads (batch 1..8,
context near the nominal one) so no answer is reused from a previous call; every tool
gets the same list; rounds alternate the tools and the best round counts (robust to
other load on the machine). One `analyze()` / `inference()` call answers prefill AND
decode; cosim answers one phase per call, so the table gives both ratios: per call,
and cosim's two calls (prefill + decode) against one peer call.
FLOP and byte totals of the nominal workload are printed beside each other (each
tool's own conventions: LLM-Viewer counts a multiply-add as 2 OPs and softmax/norm
OPs; llm-analysis reports FLOPs and weight + KV-cache memory, not traffic).

Writes benchmarks/results/peers_speed.{json,md}. Goal (issue 14): cosim >= 2x faster per
evaluation than the fastest peer.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import logging
import os
import platform
import subprocess
import sys
import time
import types
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# (label, cosim model, LLM-Viewer shape, llm-analysis config, GenZ model, weight bits)
MODELS = [
    ("Llama-2-7B bf16", "llama2_7b", dict(hidden_size=4096, num_attention_heads=32, num_key_value_heads=32,
                                          intermediate_size=11008, num_hidden_layers=32, vocab_size=32000),
     "NousResearch_Llama-2-7b-hf", "llama2_7b", 16),
    # 70B with 4-bit weights: 140 GB of bf16 weights do not fit one H100 and llm-analysis refuses it
    ("Llama-2-70B int4 weights", "llama2_70b", dict(hidden_size=8192, num_attention_heads=64, num_key_value_heads=8,
                                                    intermediate_size=28672, num_hidden_layers=80, vocab_size=32000),
     "upstage_Llama-2-70b-instruct-v2", "llama2_70b", 4),
]
BATCH, SEQ = 1, 2048  # the nominal workload whose totals are printed
WORKLOADS = [(b, SEQ + 16 * b) for b in range(1, 9)]  # what the timing loops evaluate


def _per_call(fn) -> float:
    t0 = time.perf_counter()
    for b, s in WORKLOADS:
        fn(b, s)
    return (time.perf_counter() - t0) / len(WORKLOADS)


def _interleaved(fns: dict, rounds: int) -> tuple[dict, dict]:
    """Rounds that run every tool back to back (so each round's load hits all alike):
    best per-call time of each tool, and the median over rounds of each tool's time
    divided by the first tool's (cosim) in the same round."""
    times = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            times[k].append(_per_call(fn))
    first = next(iter(fns))
    best = {k: min(v) for k, v in times.items()}
    # the ratio of best-of-rounds times (timeit's estimator: load only ever adds time);
    # the median same-round ratio is kept beside it in the result file
    ratio = {k: best[k] / best[first] for k in times}
    median = {k: sorted(a / c for a, c in zip(v, times[first]))[rounds // 2] for k, v in times.items()}
    return best, ratio, median


# ---------------------------------------------------------------------------- cosim
def cosim_tool():
    import cosim

    def run(model, wbits, phase, b, s):
        w = "bf16" if wbits == 16 else "int4"
        return cosim.simulate(cosim.build_trace(model, phase, b, s, weights=w), "h100_sxm")

    def totals(model, wbits, phase):
        r = run(model, wbits, phase, BATCH, SEQ)
        return r.total_flops, r.total_bytes
    return run, totals


# ---------------------------------------------------------------------------- peers
def llm_viewer_tool(path: Path, notes: list):
    if not (path / "model_analyzer.py").is_file():
        try:
            subprocess.run(["git", "clone", "-q", "--depth", "1", "https://github.com/hahnyuan/LLM-Viewer", str(path)],
                           check=True, timeout=120, capture_output=True)
        except (OSError, subprocess.SubprocessError) as e:
            raise ImportError(f"LLM-Viewer not at {path} and git clone failed ({type(e).__name__})") from None
    try:
        import transformers  # noqa: F401
    except ImportError:
        stub = types.ModuleType("transformers")
        stub.AutoTokenizer = stub.AutoConfig = stub.AutoModelForCausalLM = None
        sys.modules["transformers"] = stub
        notes.append("LLM-Viewer: transformers not installed; a stub stands in for the HF loaders it imports "
                     "but this benchmark does not call (model shapes are passed in)")
    sys.path.insert(0, str(path))
    ma = importlib.import_module("model_analyzer")
    # its top-level configs/ package is not importable beside other packages: load the Llama one by file
    spec = importlib.util.spec_from_file_location("llm_viewer_configs_llama", path / "configs" / "Llama.py")
    llama = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(llama)
    rev = subprocess.run(["git", "-C", str(path), "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True).stdout.strip()
    analyzers = {}

    def analyzer(shape):
        key = tuple(sorted(shape.items()))
        if key not in analyzers:
            a = ma.ModelAnalyzer.__new__(ma.ModelAnalyzer)  # skips the HF config download
            a.model_id, a.hardware, a.config = "llama", "nvidia_H100_SXM", llama
            a.model_params = types.SimpleNamespace(**shape)
            a.results = None
            analyzers[key] = a
        return analyzers[key]

    def run(shape, wbits, b, s):
        return analyzer(shape).analyze(seqlen=s, batchsize=b, w_bit=wbits, a_bit=16, kv_bit=16)

    def totals(shape, wbits, phase):
        r = run(shape, wbits, BATCH, SEQ)["total_results"][phase]
        return r["OPs"], r["memory_access"]
    return run, totals, f"LLM-Viewer @{rev}"


def llm_analysis_tool():
    from llm_analysis import analysis as A
    from llm_analysis.config import (ParallelismConfig, get_dtype_config_by_name, get_gpu_config_by_name,
                                     get_model_config_by_name)
    A.logger.setLevel(logging.ERROR)
    objs = {}

    def analysis(cfg, wbits):
        if (cfg, wbits) not in objs:
            objs[(cfg, wbits)] = A.LLMAnalysis(get_model_config_by_name(cfg), get_gpu_config_by_name("h100-sxm-80gb"),
                                               get_dtype_config_by_name(f"w{wbits}a16e16"), ParallelismConfig())
        return objs[(cfg, wbits)]

    def run(cfg, wbits, b, s):
        return analysis(cfg, wbits).inference(batch_size_per_gpu=b, seq_len=s, num_tokens_to_generate=1)

    def totals(cfg, wbits, phase):
        r = run(cfg, wbits, BATCH, SEQ)
        mem = r["weight_memory_per_gpu"] + r["kv_cache_memory_per_gpu"]
        return r[f"{phase}_num_flops_fwd_total"], mem
    from importlib.metadata import version
    return run, totals, f"llm-analysis {version('llm-analysis')}"


def genz_tool(extra_path: str | None):
    if extra_path:
        sys.path.append(extra_path)
    warnings.filterwarnings("ignore")
    from GenZ import decode_moddeling, prefill_moddeling

    def run(model, wbits, phase, b, s):
        bits = "bf16" if wbits == 16 else "int4"
        if phase == "decode":  # Bb: GenZ's beam count (default 4); one sequence per batch entry here
            return decode_moddeling(model=model, batch_size=b, input_tokens=s, output_tokens=1, Bb=1,
                                    system_name="H100_GPU", bits=bits)
        return prefill_moddeling(model=model, batch_size=b, input_tokens=s, system_name="H100_GPU", bits=bits)

    def totals(model, wbits, phase):
        df = run(model, wbits, phase, BATCH, SEQ)["model_df"]
        flops = data = 0.0
        times = 1  # rows between "Repeat" and "End Repeat" stand for every layer
        for _, r in df.iterrows():
            if r["Op Type"] == "Repeat":
                times = int(r["Dimension"])
            elif r["Op Type"] == "EndRepeat":
                times = 1
            else:
                flops += float(r["Num ops (MFLOP)"]) * 1e6 * times
                data += float(r["Total Data (MB)"]) * 1e6 * times
        return flops, data
    from importlib.metadata import version
    return run, totals, f"GenZ (genz-llm {version('genz-llm')})"


# ---------------------------------------------------------------------------- main
def measure(args) -> dict:
    notes, missing = [], {}
    c_run, c_tot = cosim_tool()
    peers = {}
    print("importing peers (LLM-Viewer, llm-analysis, GenZ) ...", flush=True)
    try:
        peers["llm_viewer"] = llm_viewer_tool(Path(args.llm_viewer), notes)
    except Exception as e:  # noqa: BLE001 - reported in the table
        missing["LLM-Viewer"] = f"{type(e).__name__}: {e}"
    try:
        peers["llm_analysis"] = llm_analysis_tool()
    except Exception as e:  # noqa: BLE001
        missing["llm-analysis"] = f"{type(e).__name__}: {e}"
    if not args.no_genz:
        try:
            peers["genz"] = genz_tool(args.genz)
        except Exception as e:  # noqa: BLE001
            missing["GenZ"] = f"{type(e).__name__}: {e}"
    rows = []
    for label, cm, shape, la_cfg, gz_model, wbits in MODELS:
        peer_arg = {"llm_viewer": shape, "llm_analysis": la_cfg, "genz": gz_model}
        for phase in ("decode", "prefill"):
            other = "prefill" if phase == "decode" else "decode"
            fns = {"cosim": lambda b, s, phase=phase: c_run(cm, wbits, phase, b, s).total_latency_s,
                   "cosim_both": lambda b, s, phase=phase, other=other: (c_run(cm, wbits, phase, b, s).total_latency_s,
                                                                         c_run(cm, wbits, other, b, s).total_latency_s)}
            for name, (run, _, _) in peers.items():  # one call answers both phases (GenZ: one per phase)
                if name != "genz":
                    fns[name] = lambda b, s, run=run, a=peer_arg[name]: run(a, wbits, b, s)
            for fn in fns.values():
                fn(BATCH, SEQ)  # warm: templates traced, files parsed, peers' modules loaded
            best, ratio, median = _interleaved(fns, args.rounds)
            fl, by = c_tot(cm, wbits, phase)
            row = {"config": label, "phase": phase, "batch": BATCH, "seq": SEQ, "cosim_us": best["cosim"] * 1e6,
                   "cosim_both_phases_us": best["cosim_both"] * 1e6, "cosim_flops": fl, "cosim_bytes": by}
            for name, (run, tot, _) in peers.items():
                if name == "genz":
                    run(peer_arg[name], wbits, phase, BATCH, SEQ)
                    best_g = float("inf")
                    for _ in range(max(1, args.rounds // 3)):  # ~0.2 s a call: 2 workloads a round
                        t0 = time.perf_counter()
                        for b, s in WORKLOADS[:2]:
                            run(peer_arg[name], wbits, phase, b, s)
                        best_g = min(best_g, (time.perf_counter() - t0) / 2)
                    row["genz_us"] = best_g * 1e6
                    row["genz_ratio"] = row["genz_us"] / row["cosim_us"]
                else:
                    row[f"{name}_us"] = best[name] * 1e6
                    row[f"{name}_ratio"] = ratio[name]  # best-of-rounds speed-up of cosim
                    row[f"{name}_ratio_median_round"] = median[name]
                    row[f"{name}_ratio_both"] = ratio[name] / ratio["cosim_both"]
                pf, pb = tot(peer_arg[name], wbits, phase)
                row[f"{name}_flops"], row[f"{name}_bytes"] = pf, pb
            rows.append(row)
    return {"rows": rows, "peers": {k: v[2] for k, v in peers.items()}, "missing": missing, "notes": notes}


def table(res: dict) -> str:
    peers = list(res["peers"])
    names = {"llm_viewer": "LLM-Viewer", "llm_analysis": "llm-analysis", "genz": "GenZ"}
    head = ["config", "phase", "cosim us/call"] + [f"{names[p]} us/call" for p in peers] + \
           ["fastest peer", "cosim speed-up per call (best of rounds, interleaved)",
            "cosim prefill+decode vs one peer call"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in res["rows"]:
        pt = {p: r[f"{p}_us"] for p in peers}
        fast = min(pt, key=pt.get) if pt else None
        cells = [r["config"], r["phase"], f"{r['cosim_us']:.1f}"] + [f"{pt[p]:,.1f}" for p in peers]
        if fast:
            cells += [names[fast], f"**{r[fast + '_ratio']:.2f}x**",
                      f"{r[fast + '_ratio_both']:.2f}x" if fast != "genz" else "n/a"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "FLOP and byte totals of the nominal workload (batch 1, 2048 tokens; each tool's conventions):", "",
              "| config | phase | cosim FLOP | cosim bytes | " + " | ".join(f"{names[p]} FLOP | {names[p]} bytes"
                                                                    for p in peers) + " |",
              "|" + "---|" * (4 + 2 * len(peers))]
    for r in res["rows"]:
        lines.append(f"| {r['config']} | {r['phase']} | {r['cosim_flops']:.4g} | {r['cosim_bytes']:.4g} | " +
                     " | ".join(f"{r[p + '_flops']:.4g} | {r[p + '_bytes']:.4g}" for p in peers) + " |")
    if "llm_analysis" in peers:
        lines.append("\nllm-analysis bytes = weight + KV-cache memory (it reports no traffic).")
    for k, v in res["missing"].items():
        lines.append(f"\n{k}: not measured ({v})")
    for n in res["notes"]:
        lines.append(f"\n{n}")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llm-viewer", default=os.environ.get("LLM_VIEWER_DIR",
                                                          os.path.expanduser("~/.cache/cosim/llm-viewer")), help="LLM-Viewer checkout (cloned there if absent)")
    ap.add_argument("--genz", default=None, help="extra sys.path entry holding GenZ (pip install --target ...)")
    ap.add_argument("--no-genz", action="store_true")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "peers_speed"))
    args = ap.parse_args(argv)
    res = measure(args)
    text = table(res)
    print(text)
    machine = f"{platform.machine()} ({os.cpu_count()} cpus), Python {platform.python_version()}"
    head = (f"# peers_speed\n\nOne full-model roofline estimate per call, same process, same workloads "
            f"(batch 1..8, ~2K context), H100-SXM; best of {args.rounds} rounds. Peers: "
            f"{', '.join(res['peers'].values())}. {machine}, {time.strftime('%Y-%m-%d')}.\n\n")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out + ".md").write_text(head + text + "\n")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    Path(args.out + ".json").write_text(json.dumps({"benchmark": "peers_speed", "machine": machine,
                                                    "load_average": load,
                                                    "date": time.strftime("%Y-%m-%d"), "goal_speedup": 2.0,
                                                    **res}, indent=1, default=str))
    print(f"wrote {args.out}.json and .md")


if __name__ == "__main__":
    main()
