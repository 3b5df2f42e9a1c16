"""Tokens/s of the quantized real-checkpoint forward pass, side by side with the same model
emulated by Microsoft's MX library (microxcaling, PyTorch CPU), plus the wall time of the
issue's accuracy job (evaluate_accuracy over 2,048 tokens, mxfp4 weights, mxfp8 acts).

    git clone https://github.com/microsoft/microxcaling ../microxcaling   # not vendored
    PYTHONPATH=. python benchmarks/real_forward_speed.py --microxcaling ../microxcaling
        [--tokens 2048] [--extra-tokens 256] [--repeats 2] [--ref-repeats 1] [--no-evaluate]

Both sides run SmolLM2-135M-Instruct (the bundled Q4_1 GGUF, dequantized to float32) over
the same tokens of cosim/configs/text/us_founding_documents.txt, one dense causal pass, logits
for every position, 2 threads each (torch.set_num_threads(2); numba and OpenBLAS on the
machine's 2 cores). What each side quantizes is listed in benchmarks/mx_reference.py and
is the same work: every decoder GEMM's weight and activation operand along its reduction
dimension in 32-element MX blocks, and Q·Kᵀ / P·V operands in the activation format.
cosim stores quantized weights once at construction; the reference is given its weights
quantized once too (mx.Linear then skips per-call weight quantization), so neither side
is timed quantizing weights. Times are the median of the repeats, the two sides timed
alternately (A B A B) after a warm-up pass on 64 tokens (numba compiled, torch warmed).
Agreement: mean KL(p_ref || p_cosim) and top-1 agreement of the final logits, in cosim's
default numerics (OCP: exact exponents, ties to even) and with cosim switched to
microxcaling's conventions (rounding="nearest", compat="microxcaling": ties away, float32
log2 exponents), where only float32 summation order should differ. Writes
benchmarks/results/real_forward_speed.json and .md.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from cosim.functional.metrics import log_softmax  # noqa: E402  (after the path set-up)

# (weights, acts, which token window: "main" = --tokens, "extra" = --extra-tokens)
CONFIGS = [("mxfp4", "mxfp8_e4m3", "main"), ("mxfp8_e4m3", "mxfp8_e4m3", "extra"), ("mx6", "mx6", "extra")]
GOAL_RATIO, GOAL_EVAL_S = 5.0, 30.0
WARM_TOKENS = 64


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def _gemm_gflops() -> float:
    """Machine-speed probe taken next to each measurement: best of 3 numpy 1024^3 sgemm."""
    a = np.random.default_rng(0).standard_normal((1024, 1024)).astype(np.float32)
    best = min(_timed(lambda: a @ a)[0] for _ in range(3))
    return 2 * 1024 ** 3 / best / 1e9


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _repeat(fn, n: int):
    ts, out = [], None
    for _ in range(n):
        dt, out = _timed(fn)
        ts.append(dt)
    return ts, out


def agreement(ref: np.ndarray, ours: np.ndarray) -> tuple[float, float]:
    """Mean KL(p_ref || p_ours) in nats and top-1 agreement, in row chunks (float64)."""
    kl = []
    for r0 in range(0, ref.shape[0], 256):
        a, b = log_softmax(ref[r0:r0 + 256], axis=1), log_softmax(ours[r0:r0 + 256], axis=1)
        kl.append(np.sum(np.exp(a) * (a - b), axis=1))
    return float(np.mean(np.concatenate(kl))), float(np.mean(ref.argmax(1) == ours.argmax(1)))


@contextmanager
def microxcaling_rounding():
    """cosim's quantizers with the reference's conventions (ties away from zero, its
    float32 log2 exponent extraction) for the formats microxcaling implements."""
    import cosim.functional as F
    import cosim.functional.scaled as S  # the forward pass reaches the quantizer through scaled.quantize
    orig = F.quantize
    F.quantize = S.quantize = functools.partial(orig, rounding="nearest", compat="microxcaling")
    try:
        yield
    finally:
        F.quantize = S.quantize = orig


def build_ours(ck, weights, acts):
    from cosim.functional.lm import DecoderLM, Numerics
    build_s, model = _timed(lambda: DecoderLM(ck, Numerics.from_options(weights=weights, acts=acts)))
    model.forward(np.arange(WARM_TOKENS), prefill=WARM_TOKENS, positions=np.arange(WARM_TOKENS))  # numba warm
    n_ids = lambda ids: model.forward(ids, prefill=ids.size, positions=np.arange(ids.size)).logits  # noqa: E731
    return build_s, n_ids


def build_ref(mx, hf, weights, acts):
    """-> (build_s, forward, swap); call swap.restore() when done."""
    import torch
    from mx_reference import MXSwap
    build_s, swap = _timed(lambda: MXSwap(mx, hf, weights, acts, prequantize=True))

    def fwd(ids):
        with torch.no_grad():
            return hf(torch.tensor(ids[None]), use_cache=False).logits[0].numpy()
    fwd(np.arange(WARM_TOKENS))
    return build_s, fwd, swap


def _mx_label(path: str) -> str:
    """The reference as a checkout name and commit, not a machine path (results are committed)."""
    p = Path(path)
    try:
        commit = subprocess.run(["git", "-C", str(p), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "commit not recorded (no .git in the checkout)"
    return f"{p.name} checkout, {commit}"


def gemm_floor(cfg, vocab: int):
    """The float32 GEMMs every implementation of this pass must run, whatever its
    quantizer: q/k/v/o/gate/up/down of every layer and the LM head over all N positions,
    as numpy matmuls on random operands of the same shapes (attention left out, so the
    floor is low and ref_time / floor an upper bound on any speed-up over the reference)."""
    rng = np.random.default_rng(0)
    h, f, qd, kvd = cfg.hidden, cfg.intermediate, cfg.heads * cfg.head_dim, cfg.kv_heads * cfg.head_dim
    shapes = [(h, qd + 2 * kvd), (qd, h), (h, 2 * f), (f, h)]
    mats = {s: rng.standard_normal(s).astype(np.float32) for s in shapes + [(h, vocab)]}

    def run(ids):
        n = ids.size
        acts = {k: rng.standard_normal((n, k)).astype(np.float32) for k in {s[0] for s in mats}}
        for _ in range(cfg.layers):
            for s in shapes:
                acts[s[0]] @ mats[s]
        return acts[h] @ mats[(h, vocab)]
    return run


def interleaved(fns: dict, ids, repeats: dict) -> tuple[dict, dict]:
    """Time the sides alternately (A B A B ...) so a change in the shared machine's load
    falls on both; -> ({side: times}, {side: last logits})."""
    times, logits = {k: [] for k in fns}, {}
    for i in range(max(repeats.values())):
        for k, fn in fns.items():
            if i < repeats[k]:
                dt, logits[k] = _timed(lambda: fn(ids))
                times[k].append(dt)
    return times, logits


def evaluate_child(tokens: int) -> dict:
    """The issue's job in a fresh process (numba's on-disk cache warm from this run):
    wall time of the whole evaluate_accuracy call, checkpoint load included."""
    code = ("import json,time;t0=time.perf_counter();from cosim.accuracy import evaluate_accuracy;"
            f"r=evaluate_accuracy('smollm2_135m',tokens={tokens},weights='mxfp4',acts='mxfp8_e4m3');"
            "print(json.dumps({'wall_s':time.perf_counter()-t0,'elapsed_s':r.elapsed_s,"
            "'perplexity':r.perplexity,'baseline_perplexity':r.baseline_perplexity,'kl':r.kl,"
            "'top1_agreement':r.top1_agreement,'tokens_scored':r.tokens}))")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    if p.returncode:
        return {"error": p.stderr.strip().splitlines()[-1] if p.stderr.strip() else f"rc {p.returncode}"}
    return json.loads(p.stdout.strip().splitlines()[-1])


def one_config(ck, mx, hf, ids, weights, acts, args) -> dict:
    from mx_reference import MX_ELEM
    row = {"weights": weights, "acts": acts, "tokens": int(ids.size), "load_before": _load(),
           "gemm_gflops_before": _gemm_gflops()}
    ob, ofwd = build_ours(ck, weights, acts)
    fns, reps, swap = {"cosim": ofwd, "floor": gemm_floor(ck.config, ck.config.vocab)}, \
        {"cosim": args.repeats, "floor": args.repeats}, None
    ref_ok = mx is not None and weights in MX_ELEM and acts in MX_ELEM
    if mx is None:
        row["reference"] = "not run: " + args.mx_why
    elif not ref_ok:
        row["reference"] = f"not run: microxcaling has no {weights if weights not in MX_ELEM else acts} " \
                           f"(it implements MX v1.0 FP8/FP6/FP4/INT8 elements, not shared-microexponent MX4/6/9)"
    else:
        rb, fns["reference"], swap = build_ref(mx, hf, weights, acts)
        reps["reference"] = args.ref_repeats
    try:
        times, logits = interleaved(fns, ids, reps)
    finally:
        if swap is not None:
            swap.restore()
    ours = {"build_s": ob, "times_s": times["cosim"], "median_s": statistics.median(times["cosim"])}
    row["cosim"], row["cosim_tokens_per_s"] = ours, ids.size / ours["median_s"]
    row["gemm_floor_s"] = statistics.median(times["floor"])
    if ref_ok:
        ref = {"build_s": rb, "times_s": times["reference"], "median_s": statistics.median(times["reference"])}
        row["reference"], row["reference_tokens_per_s"] = ref, ids.size / ref["median_s"]
        row["speedup"] = ref["median_s"] / ours["median_s"]
        row["speedup_bound"] = ref["median_s"] / row["gemm_floor_s"]
        row["kl_ref_vs_cosim"], row["top1_ref_vs_cosim"] = agreement(logits["reference"], logits["cosim"])
        with microxcaling_rounding():
            _, compat_fwd = build_ours(ck, weights, acts)
            compat_logits = compat_fwd(ids)
        row["kl_ref_vs_cosim_compat"], row["top1_ref_vs_cosim_compat"] = agreement(logits["reference"], compat_logits)
    row["load_after"], row["gemm_gflops_after"] = _load(), _gemm_gflops()
    print(f"  {weights}/{acts} x{ids.size}: cosim {ours['median_s']:.1f} s"
          + (f", microxcaling {row['reference']['median_s']:.1f} s, {row['speedup']:.1f}x" if "speedup" in row else
             f"; reference {row['reference']}"), flush=True)
    return row


def _fmt(x, spec=".1f") -> str:
    return "-" if x is None else format(x, spec)


def markdown(res: dict) -> str:
    lines = [f"# Real-checkpoint forward pass speed (SmolLM2-135M, {res['cpus']} CPUs, 2 threads each side)", "",
             f"cosim: numpy {res['numpy']} + numba {res['numba']}; reference: microxcaling ({res['microxcaling']}) "
             f"on torch {res['torch']} CPU + transformers {res['transformers']}. Machine load "
             f"(1/5/15-min) at start {res['load_start']}, end {res.get('load_end', 'not reached')}: the machine is shared, so "
             "absolute times are inflated; the ratio is measured side by side.", "",
             "| weights | acts | tokens | cosim s (n) | cosim tok/s | microxcaling s (n) | microxcaling tok/s | "
             "speedup | goal | GEMM floor s | bound | KL ref‖cosim (OCP) | top-1 | KL ref‖cosim (compat) | top-1 (compat) | load | "
             "sgemm GFLOP/s |", "|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---|---:|"]
    for r in res["rows"]:
        ref = r["reference"] if isinstance(r["reference"], dict) else None
        sp = r.get("speedup")
        goal = "-" if sp is None else (f">= {GOAL_RATIO:g}x ({'met' if sp >= GOAL_RATIO else 'MISSED'})")
        lines.append(
            f"| {r['weights']} | {r['acts']} | {r['tokens']} | {r['cosim']['median_s']:.1f} ({len(r['cosim']['times_s'])}) "
            f"| {r['cosim_tokens_per_s']:.1f} | "
            + (f"{ref['median_s']:.1f} ({len(ref['times_s'])}) | {r['reference_tokens_per_s']:.2f} | {sp:.1f}x | {goal} | "
               f"{_fmt(r.get('gemm_floor_s'), '.2f')} | {_fmt(r.get('speedup_bound'))}x | "
               f"{r['kl_ref_vs_cosim']:.3g} | {r['top1_ref_vs_cosim']:.3f} | {r['kl_ref_vs_cosim_compat']:.3g} | "
               f"{r['top1_ref_vs_cosim_compat']:.3f}" if ref else f"{r['reference']} | - | - | - | - | - | - | - | - | -")
            + f" | {r['load_before']} | {r['gemm_gflops_before']:.0f} |")
    ev = res.get("evaluate")
    if ev:
        lines += ["", f"evaluate_accuracy('smollm2_135m', tokens={res['tokens']}, weights='mxfp4', acts='mxfp8_e4m3') "
                      "in a fresh process (baseline + quantized forward, checkpoint load included): "
                  + (f"**{ev['wall_s']:.1f} s** wall (goal < {GOAL_EVAL_S:g} s: "
                     f"{'met' if ev['wall_s'] < GOAL_EVAL_S else 'MISSED'}); perplexity {ev['perplexity']:.2f} vs "
                     f"baseline {ev['baseline_perplexity']:.2f}, KL {ev['kl']:.3f}, top-1 {ev['top1_agreement']:.3f} "
                     f"over {ev['tokens_scored']} scored tokens; load {ev['load_before']} -> {ev['load_after']}, "
                     f"sgemm {ev['gemm_gflops_before']:.0f} GFLOP/s."
                     if "wall_s" in ev else f"failed: {ev['error']}")]
    lines += ["", "Notes:"] + [f"- {n}" for n in res["notes"]]
    return "\n".join(lines) + "\n"


NOTES = [
    "Same work both sides: q/k/v/o/gate/up/down weights (along in_features) and their inputs (along the "
    "reduction dim) in the listed MX formats, 32-element blocks, E8M0 scale; Q·Kᵀ (Q and K along head_dim) and "
    "P·V (P along keys, V along tokens) operands in the activation format; embeddings, norms, RoPE, SiLU, softmax "
    "and the tied LM head in float32; logits for every position.",
    "Differences in how: cosim quantizes K/V once per KV head and P only on the causal row blocks it computes "
    "(256-row blocks, masked tail skipped); transformers' eager attention repeats K/V to all 9 query heads and "
    "microxcaling quantizes the full N x N score matrix: the reference does that extra work by construction.",
    "Weights are quantized once on both sides (cosim at DecoderLM construction; the reference gets "
    "pre-quantized weights and w_elem_format=None so mx.Linear does not re-quantize them per call); "
    "build times are in the JSON, not in the forward times.",
    "KL ref‖cosim (OCP): cosim's default numerics (exact exponent extraction, ties to even) vs microxcaling "
    "(float32 log2 exponents, ties away from zero); (compat): cosim run with rounding='nearest', "
    "compat='microxcaling', the reference's conventions, so the residual is float32 summation order.",
    "Baseline weights are the Q4_1 GGUF dequantized (both sides load the same file).",
    "GEMM floor: the float32 matmuls of the linear layers and the LM head alone (same shapes, random operands, "
    "numpy, timed interleaved in the same run); bound = reference time / floor is the largest speed-up any "
    "implementation doing those GEMMs in float32 BLAS could reach: where it is below the goal, the goal cannot "
    "be met on this machine without changing the arithmetic.",
    "KL ref‖cosim: with the reference's rounding conventions (compat) the two emulations still differ by a few "
    "tenths of a nat per token; that residual is not explained yet (float32 summation order can flip MX "
    "rounding decisions, which then propagate through 30 layers of 4-/8-bit operands; unverified).",
]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--microxcaling", default=os.environ.get("MICROXCALING_PATH"),
                    help="microxcaling checkout (folder holding mx/); default $MICROXCALING_PATH")
    ap.add_argument("--tokens", type=int, default=2048)
    ap.add_argument("--extra-tokens", type=int, default=256, help="window of the non-headline formats")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--ref-repeats", type=int, default=1)
    ap.add_argument("--no-evaluate", action="store_true")
    ap.add_argument("--from-json", action="store_true", help="re-render the .md from the stored .json and exit")
    args = ap.parse_args(argv)
    if args.from_json:
        md = markdown(json.loads((RESULTS / "real_forward_speed.json").read_text()))
        (RESULTS / "real_forward_speed.md").write_text(md)
        print(md)
        return 0
    import numba
    from cosim.accuracy import _checkpoint, load_text_tokens
    from cosim.functional.checkpoint.assets import bundled_checkpoint_path
    from mx_reference import import_mx, load_hf_model
    res = {"tokens": args.tokens, "cpus": os.cpu_count(), "numpy": np.__version__, "numba": numba.__version__,
           "python": platform.python_version(), "load_start": _load(), "notes": list(NOTES),
           "torch": "-", "transformers": "-", "microxcaling": "-"}
    ck = _checkpoint("smollm2_135m")
    ids, _ = load_text_tokens(ck, None, max(args.tokens, args.extra_tokens))
    mx, args.mx_why = import_mx(args.microxcaling)
    hf = None
    if mx is not None:
        import torch
        import transformers
        torch.set_num_threads(2)
        res.update(torch=torch.__version__, transformers=transformers.__version__, microxcaling=_mx_label(args.microxcaling))
        tok, hf = load_hf_model(bundled_checkpoint_path("smollm2_135m")[0])
        text = (ROOT / "cosim" / "configs" / "text" / "us_founding_documents.txt").read_text(encoding="utf-8")
        same = np.array_equal(np.asarray(tok(text, add_special_tokens=False)["input_ids"][:ids.size]), ids)
        res["notes"].append(f"token ids from cosim's tokenizer and transformers' GGUF tokenizer identical: {same}")
    else:
        res["notes"].append(f"microxcaling NOT RUN ({args.mx_why}); only cosim's side is reported")
        print(f"microxcaling not run: {args.mx_why}", flush=True)
    res["rows"] = []
    RESULTS.mkdir(exist_ok=True)
    for w, a, win in CONFIGS:  # the JSON is rewritten after each row: a long run killed midway keeps its rows
        res["rows"].append(one_config(ck, mx, hf, ids[:args.tokens if win == "main" else args.extra_tokens], w, a, args))
        (RESULTS / "real_forward_speed.json").write_text(json.dumps(res, indent=2) + "\n")
    if not args.no_evaluate:
        ev = {"load_before": _load(), "gemm_gflops_before": _gemm_gflops()}
        ev.update(evaluate_child(args.tokens))
        ev["load_after"] = _load()
        res["evaluate"] = ev
    res["load_end"] = _load()
    (RESULTS / "real_forward_speed.json").write_text(json.dumps(res, indent=2) + "\n")
    md = markdown(res)
    (RESULTS / "real_forward_speed.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
