"""Accuracy of a trace's compressed layers, measured on their actual shapes.

For every GEMM of the trace that reads a weight, the functional core
(`cosim.functional.quantize`) runs the real narrow-precision arithmetic on a row sample
of the layer and compares it with an fp32 reference:

    y_ref = X @ W.T             (the unquantized float32 tensors)
    y_q   = Q_a(X) @ Q_w(W).T   (operands quantized to the op's formats along k)
    SQNR  = 10 log10(sum y_ref^2 / sum (y_ref - y_q)^2)   [dB]

Both products are float32 GEMMs and the sums are taken in float64: the products'
rounding (~1e-7 x sqrt(k) of an output, i.e. ~-120 dB) is far below any format's error
(bf16 is ~-50 dB), and an operand its format leaves unchanged gives the identical
product, so SQNR stays +inf there (tests/test_layer_accuracy_draws.py checks both
against a float64 reference).

W is a sample of `rows` output channels (all k inputs, so every MX/BFP block is whole)
of layer `l` for each of `layers` evenly spaced layers; X is `tokens` activation rows.
Weights come from a safetensors checkpoint when one is given (Hugging Face names,
``model.layers.{l}.self_attn.q_proj.weight`` …), otherwise they are synthetic with the
structure that makes LLM quantization hard (documented in `synthetic_weight`).

Every attention op's figure is the KV-cache twin's (`_kv_attention`): the cache as the
trace stores it (`kv_store`: its K/V formats, fp32 scales per KV head for a bare
FP8/FP6/FP4 cache, the recipe's KV method) run through ONE policy
(cosim.functional.compression.twin.kv_store_twin, the real-checkpoint path's KV
quantizer) over a decode run on a synthetic KV head fitted to real K/V/Q statistics:
SQNR = -20 log10(attention-output relative error). `kv: fp8_e4m3` and `recipe: fp8_kv`
store the same bytes and give the same figure; fp8 + H2O is fp8 with H2O keeping the
stored tokens. (Until session 17 a plain `kv:` format was scored here on other data --
Gaussian queries against keys with a 30x outlier channel, 1024 positions -- and a
kv_format recipe by the twin: one cache, two figures 22 dB apart.)
"""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from cosim.functional.checkpoint.lazy import LazySafetensors
from cosim.functional.metrics import sqnr_db  # the one definition (float64, inf when identical)
from workloads.io import InputError
from workloads.ops import Op

__all__ = ["AccuracyResult", "trace_accuracy", "synthetic_weight", "synthetic_activations",
           "sqnr_db", "HF_WEIGHT_NAMES"]

# Hugging Face tensor names of the trace's weight GEMMs ({l} = layer index).
HF_WEIGHT_NAMES = {
    "q_proj": "model.layers.{l}.self_attn.q_proj.weight",
    "k_proj": "model.layers.{l}.self_attn.k_proj.weight",
    "v_proj": "model.layers.{l}.self_attn.v_proj.weight",
    "o_proj": "model.layers.{l}.self_attn.o_proj.weight",
    "gate_proj": "model.layers.{l}.mlp.gate_proj.weight",
    "up_proj": "model.layers.{l}.mlp.up_proj.weight",
    "down_proj": "model.layers.{l}.mlp.down_proj.weight",
    "lm_head": "lm_head.weight",
}

# Formats the reference itself is held in: quantizing to them is the identity here.
_EXACT = {"fp32", "tf32_as_fp32"}


def _quantize(x: np.ndarray, fmt: str, granularity: str = "tensor", head_axis: int | None = None):
    """Dequantized operand and a label of the scale it was stored with: a bare
    FP8/FP6/FP4 operand gets an fp32 amax/max_normal scale (per tensor for weights and
    activations, per KV head for caches), as serving engines store them; block formats
    use their own scales."""
    if fmt in _EXACT:
        return x.astype(np.float32), "none (reference precision)"
    try:
        from cosim.functional.scaled import scaled_quantize
    except ImportError:
        raise InputError("accuracy: the functional core (cosim.functional.quantize) is not available in "
                         "this installation; run without accuracy (accuracy: false / --no-accuracy)") from None
    with _KERNELS:
        y, info = scaled_quantize(x, fmt, granularity, head_axis=head_axis, axis=-1)
    return y, info.label


# One numba kernel call at a time: ops are sampled on two threads (trace_accuracy), and
# numba's fallback "workqueue" threading layer aborts on concurrent parallel launches.
_KERNELS = threading.Lock()


# ---------------------------------------------------------------------------- synthetic tensors

# The precision the GEMM samples' activations are drawn in (synthetic_activations). The
# GEMM weights' precision is the dtype of the array fitted_weight_rows returns. The SQNR
# provenance names the draws (_draw_note); the attention figure's KV head is the twin's
# (kv_store_twin: KV_SOURCE).
GEMM_ACT_DRAW = np.float32


def _gaussian(rng: np.random.Generator, shape, dtype) -> np.ndarray:
    """N(0, 1) entries drawn in `dtype` (float64: numpy's `normal`, the stream of earlier
    sessions; float32: `standard_normal(dtype=float32)`); any other dtype is refused
    rather than silently drawn in one of them."""
    dt = np.dtype(dtype)
    if dt == np.float64:
        return rng.normal(0.0, 1.0, size=shape)
    if dt == np.float32:
        return rng.standard_normal(shape, dtype=np.float32)
    raise ValueError(f"synthetic draw dtype {dt.name}: expected float32 or float64")


def _draw_note(by_layer: list) -> str:
    """The synthetic draws behind the GEMM rows (popping their private `_w_draw` and
    `_x_draw` keys): no weight clause where every weight came from the checkpoint, the
    ops named where only some were drawn; "" when nothing was drawn."""
    gemm = [(r["op"], r.pop("_w_draw", None)) for r in by_layer if "_x_draw" in r]  # None: checkpoint rows
    x = {r.pop("_x_draw", None) for r in by_layer} - {None}
    drawn = [(op, dt) for op, dt in gemm if dt is not None]
    parts = []
    if drawn:
        dts = "/".join(sorted({dt for _, dt in drawn}))
        ops = list(dict.fromkeys(op for op, _ in drawn))
        parts.append(f"GEMM weights in {dts}" if len(drawn) == len(gemm) else
                     f"GEMM weights of {', '.join(ops)} in {dts} (the rest from the checkpoint)")
    if x:
        parts.append(f"GEMM activations in {'/'.join(sorted(x))}")
    return "synthetic draws: " + ", ".join(parts) if parts else ""


def synthetic_weight(rows: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """(rows, k) float32 weight sample with the statistics of real LLM linear layers,
    fitted to SmolLM2-135M (cosim.functional.compression.synthetic.fitted_weight_rows,
    the float32 draw of `fitted_weights`' model: log-normal per-input and per-output
    channel scales, Student-t entries of the measured kurtosis; docs/synthetic-vs-real.md
    shows the model ranks the bundled weight formats as real weights do). The earlier
    model here (Student-t df 5, 0.5 % of input channels 8x) overstated int4-group error
    by ~6 dB. Until session 7 the entries were drawn in float64 (fitted_weights) and
    transposed: the same distribution, other values (docs/speed.md)."""
    from cosim.functional.compression.synthetic import fitted_weight_rows
    return fitted_weight_rows(rows, k, rng)  # float32: _draw_note names the array's dtype


def synthetic_activations(tokens: int, k: int, rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
    """(tokens, k) float32 activations: Gaussian with log-normal per-channel scale and
    a few outlier channels (0.1% of k, at least one) 30x larger, the systematic outlier
    features LLM.int8() (Dettmers et al. 2022) found in every large transformer. Drawn in
    that order — entries N(0, 1), the channel scales exp(N(0, 0.5)), the outlier channels.
    `dtype` is the precision the entries are drawn in: float32 for the GEMM samples (the
    Llama-3-8B quickstart draws ~22M of them; float64 until session 7: other values, same
    distribution); float64 draws the same distribution from numpy's `normal` stream."""
    x = _gaussian(rng, (tokens, k), dtype)  # any dtype but float32/float64 is refused
    x *= np.exp(rng.normal(0.0, 0.5, size=(1, k))).astype(x.dtype, copy=False)
    hot = rng.choice(k, size=max(1, k // 1000), replace=False)
    x[:, hot] *= 30.0
    return x.astype(np.float32, copy=False)


# ---------------------------------------------------------------------------- checkpoints

# ---------------------------------------------------------------------------- per-op accuracy

def _status(y_q: np.ndarray) -> dict:
    """"ok", or why the SQNR is NaN: a row with a NaN figure says so, never vanishes."""
    bad = int(np.size(y_q) - np.count_nonzero(np.isfinite(y_q)))
    if bad == 0:
        return {"status": "ok"}
    return {"status": f"nan: {bad} of {np.size(y_q)} quantized outputs are NaN/Inf (an operand overflowed "
                      f"its format or held NaN)"}


def _op_status(recs: list, value: float) -> str:
    bad = [r["status"] for r in recs if r.get("status", "ok") != "ok"]
    if bad:
        return bad[0]
    if value != value:
        return "nan: no finite SQNR"
    return "ok"


@dataclass
class AccuracyResult:
    by_op: dict  # op name -> aggregate SQNR (dB) over the sampled layers
    by_layer: list  # dicts: op, layer, sqnr_db, weight_sqnr_db, rows, tokens, k, formats, source
    sample: dict  # layers, rows, tokens actually used
    provenance: str
    recipe_twin: dict | None = None  # the recipe's own functional twin (cosim.functional.compression), raw
    status_by_op: dict | None = None  # op name -> "ok" or "nan: <why>" (a NaN figure always carries its reason)

    def to_dict(self) -> dict:
        return asdict(self)


def _check_names(ckpt, trace) -> None:
    """A checkpoint that holds none of the trace's weight tensors under Hugging Face
    Llama-style names would silently fall back to synthetic weights everywhere: refuse
    it, naming the file and the names looked for. (A checkpoint missing only some ops,
    e.g. a tied lm_head, falls back per op and says so in the row's `source`.)"""
    ops = [op.name for op in trace.ops if op.name in HF_WEIGHT_NAMES]
    expected = [HF_WEIGHT_NAMES[o].format(l=0) for o in ops]
    if expected and not any(n in ckpt for n in expected):
        have = ckpt.names()
        raise InputError(f"{ckpt.paths[0]}: none of the expected tensors {', '.join(expected[:4])}"
                         f"{', ...' if len(expected) > 4 else ''} (Hugging Face Llama-style names) is in this "
                         f"checkpoint; it has {len(have)} tensors named e.g. {', '.join(have[:4]) or 'nothing'}")


def _layers(n_layers: int, want: int) -> list[int]:
    """`want` layers spread evenly over 0..n_layers-1 (first and last included)."""
    want = max(1, min(want, n_layers))
    return sorted({round(i * (n_layers - 1) / max(1, want - 1)) for i in range(want)})


def _weight_input(op: Op):
    for t in op.inputs:
        if t.role == "weight":
            return t
    return None


def _act_input(op: Op):
    for t in op.inputs:
        if t.role == "activation":
            return t
    return None


def trace_accuracy(trace, layers: int = 2, rows: int = 256, tokens: int = 16, seed: int = 0,
                   checkpoint: str | Path | None = None, n_layers: int | None = None,
                   model=None, after_first=None, threads: int = 2) -> AccuracyResult:
    """SQNR of every weight GEMM and attention op of `trace` (see module docstring).

    The attention ops' figure is the KV-cache twin's (`_kv_attention`: the cache as the
    trace stores it, whatever spelled its format, with the recipe's KV method — KIVI's
    per-channel keys and fp16 residual window, eviction policies, low-rank KV…),
    converted from its relative attention-output error: SQNR = -20 log10(rel_error); the
    recipe's parts are also run one by one (`recipe_twin`, raw). `model` (name or
    ModelSpec) feeds the twin's shapes.
    `after_first()` is called once the first sampled op is done (its weight and activation
    formats' numba kernels are compiled by then: cosim run's second process waits for it).
    `threads`: how many ops are sampled at once (1 while a second process needs the other core).
    BLAS runs on one thread throughout: its thread count moved the last bits of a figure
    (quickstart's attention SQNR: ...346 on one thread, ...343 on two), and one is also
    faster where the sampling threads already take the cores (quickstart on 2 cores: 0.60 s
    against 0.71-0.82 s; cosim.blas_threads)."""
    from cosim.blas_threads import one_blas_thread
    with one_blas_thread():
        return _trace_accuracy(trace, layers, rows, tokens, seed, checkpoint, n_layers, model, after_first,
                               threads)


def _trace_accuracy(trace, layers, rows, tokens, seed, checkpoint, n_layers, model, after_first,
                    threads) -> AccuracyResult:
    ckpt = LazySafetensors(checkpoint) if checkpoint else None
    n_layers = n_layers or max((op.repeat for op in trace.ops), default=1)
    if ckpt is not None:
        _check_names(ckpt, trace)
    by_layer, by_op, status = [], {}, {}
    used_rows = used_tokens = used_kv = 0
    jobs = [(op_i, op) for op_i, op in enumerate(trace.ops)
            if op.kind == "gemm" and _weight_input(op) is not None and "b" not in op.dims]

    def sample(job):
        op_i, op = job
        return _gemm_accuracy(op, op_i, trace, layers, rows, tokens, seed, ckpt, n_layers)
    # each (op, layer) draws from its own seeded stream, so ops can be sampled in any
    # order: two threads (numpy's generators and BLAS release the GIL; most of the time is
    # drawing the synthetic tensors); checkpoint rows are read on one
    ex = ThreadPoolExecutor(max_workers=threads) if ckpt is None and len(jobs) > 1 and threads > 1 else None
    results = ex.map(sample, jobs) if ex is not None else map(sample, jobs)  # in order, as each is done
    try:
        done = [(job, next(results)) for job in jobs[:1]]
        if after_first is not None:
            after_first()
        done += list(zip(jobs[1:], results))
    finally:
        if ex is not None:
            ex.shutdown(wait=True, cancel_futures=True)
    for (op_i, op), recs in done:
        if not recs:
            continue
        sig = sum(r.pop("_sig") for r in recs)
        noise = sum(r.pop("_noise") for r in recs)
        by_op[op.name] = math.inf if noise == 0 else (10 * math.log10(sig / noise) if noise == noise else math.nan)
        status[op.name] = _op_status(recs, by_op[op.name])
        by_layer += recs
        used_rows = max(used_rows, max(r["rows"] for r in recs))
        used_tokens = max(used_tokens, max(r["tokens"] for r in recs))
    src = f"checkpoint {Path(checkpoint).name}" if ckpt else "synthetic (weights fitted to SmolLM2-135M statistics)"
    twin = _recipe_twin(trace, model, checkpoint, seed)
    kv = _kv_attention(trace, model, seed)
    twin_note = ""
    if kv is not None:
        rel = kv["attn_rel_error"]
        db = math.inf if rel == 0 else (-20.0 * math.log10(rel) if rel == rel else math.nan)
        used_kv = kv["prompt"]
        for name in kv["ops"]:
            by_op[name] = db
            status[name] = "ok" if db == db else f"nan: KV twin {kv['worst']} gave a NaN attention error"
            by_layer.append({"op": name, "layer": 0, "sqnr_db": db, "weight_sqnr_db": None, "rows": kv["prompt"],
                             "tokens": kv["steps"], "k": None, "weight_fmt": kv["key"], "act_fmt": kv["value"],
                             "source": f"KV twin {kv['worst']}", "scale": kv.get("kv_scale", ""),
                             "status": status[name], **({"note": kv["note"]} if kv["note"] else {})})
        twin_note = (f"; attention: KV-cache twin (cosim.functional.compression.twin.kv_store_twin) of the cache as "
                     f"the trace stores it, {kv['worst']}: one synthetic KV head fitted to SmolLM2-135M K/V/Q "
                     f"statistics, {kv['prompt']}-token prompt + {kv['steps']} decode steps, seed {seed} (not the "
                     f"layers/rows/tokens sample), attention-output relative error {rel:.4g}"
                     + (f" ({kv['note']})" if kv["note"] else ""))
    draws = _draw_note(by_layer)  # the draws behind the GEMM figures
    draws = f"{draws}; " if draws else ""
    return AccuracyResult(by_op=by_op, by_layer=by_layer, recipe_twin=twin, status_by_op=status,
                          sample={"layers": len(_layers(n_layers, layers)), "rows": used_rows,
                                  "tokens": used_tokens, "kv_positions": used_kv, "seed": seed},
                          provenance=f"functional:{src}; {draws}SQNR of the op output vs fp32, pooled over the sampled "
                                     f"layers (summed signal / summed noise; per layer in by_layer), "
                                     f"{len(_layers(n_layers, layers))} layers x <= {rows} rows x {tokens} tokens"
                                     + twin_note)


TWIN_PROMPT, TWIN_STEPS = 4096, 8  # the KV twins' decode run: min(prompt, 4096)-token prompt, 8 decode steps


def twin_prompt(trace) -> int:
    """The KV twins' prompt: the trace's prompt (a decode step's prompt_len, else its seq), at most TWIN_PROMPT; a
    recipe compressing the prompt alone evicts from that (its seq read 4,096 prompt tokens where 1,024 were)."""
    return min(int(trace.meta.get("prompt_len") or trace.seq), TWIN_PROMPT)


def _recipe_twin(trace, model, checkpoint, seed):
    """The recipe's functional twin part by part (cosim.functional.compression.twin.run_twin:
    each part's own cost, reported raw as `recipe_twin`); None without a recipe or without
    the twin library. The attention figure is `_kv_attention`'s, never a part's alone."""
    if not trace.recipe:
        return None
    try:
        from cosim.functional.compression.twin import run_twin
    except ImportError:
        return None
    return run_twin(trace.recipe, model=model or trace.model, checkpoint=checkpoint, seed=seed,
                    prompt=twin_prompt(trace), steps=TWIN_STEPS)


def kv_store(trace) -> tuple[dict, list]:
    """What the trace's KV cache stores, as priced: ({"key", "value": the formats of the attention's
    k_cache / v_cache (an MLA latent: k_cache for both), "scale", "channel_sort": a kv_format part's, else the
    default a plain `kv:` format runs with on the real path too, an fp32 scale per KV head (Numerics.kv_scale)},
    the recipe's KV method parts other than kv_format). `kv: fp8_e4m3` and `recipe: fp8_kv` give the same store."""
    from cosim.functional.compression.twin import KV_TWINS
    fmts = {}
    for op in trace.ops:
        if op.kind == "attention":
            for t in op.inputs:
                if t.role == "kv" and t.name in ("k_cache", "v_cache"):
                    fmts.setdefault(t.name, t.fmt)
    parts = ()
    if trace.recipe:
        from workloads.compression import load_recipe
        r = load_recipe(trace.recipe)
        parts = r.parts or (r,)
    from cosim.functional.kvstore import KV_FORMAT_COMPOSABLE
    fmt_parts = [p for p in parts if p.method == "kv_format"]
    methods = [p for p in parts if p.method in KV_TWINS and p.method != "kv_format"]
    from workloads.compression.kv_quant import kv_format_store
    fp = kv_format_store(fmt_parts[-1].params if fmt_parts else {})  # no kv_format part: the registered defaults
    key = fmts.get("k_cache", "bf16")
    store = {"key": key, "value": fmts.get("v_cache", key), "scale": fp["scale"], "channel_sort": fp["channel_sort"]}
    base = (trace.meta or {}).get("formats", {}).get("kv")
    if base and any(p.method not in KV_FORMAT_COMPOSABLE for p in methods):
        # a method with its own storage replaced k_cache/v_cache by its codes (KIVI's int2): the format the
        # trace was built with is what stores its full-precision parts
        store.update(key=base, value=base)
    return store, methods


def _kv_model(trace, model):
    """The model whose KV head the twin draws: `model` (a name or ModelSpec) when given, else the
    trace's bundled model by name, else (a model given to build_trace as a spec and not here) the
    shapes the twin needs read off the trace's attention op: head_dim and the GQA group
    heads / kv_heads. An MLA cache (one latent, no v_cache) needs the spec itself: refused by name."""
    if model is not None:
        return model
    from workloads.models import load_model
    try:
        return load_model(trace.model)
    except InputError:
        pass
    from types import SimpleNamespace
    att = next(op for op in trace.ops if op.kind == "attention")
    if not any(t.name == "v_cache" for t in att.inputs):
        raise InputError(f"accuracy: trace of model {trace.model!r} stores one latent KV cache (MLA) and "
                         f"{trace.model!r} is not a bundled model name; pass model= (its ModelSpec) to "
                         f"trace_accuracy so the KV twin draws its latent")
    d = att.dims
    return SimpleNamespace(name=trace.model, head_dim=int(d["head_dim"]), heads=int(d["heads"]),
                           kv_heads=int(d["kv_heads"]), mla=None)


def _kv_attention(trace, model, seed):
    """The attention ops' figure: the KV cache as the trace stores it (`kv_store`), through ONE
    twin (twin.kv_store_twin) whether the format came from `kv:` or a kv_format part, composed
    with the recipe's KV method; worst method first when a recipe has several. None without an
    attention op that reads a KV cache, or without the twin library."""
    att = [op.name for op in trace.ops if op.kind == "attention" and any(t.role == "kv" for t in op.inputs)]
    if not att:
        return None
    try:
        from cosim.functional.compression.twin import kv_store_twin
    except ImportError:
        return None
    store, methods = kv_store(trace)
    prompt = twin_prompt(trace)
    model = _kv_model(trace, model)
    runs, unscored = {}, []
    for m in (methods or [None]):
        res = kv_store_twin(store, m, model=model, seed=seed, prompt=prompt, steps=TWIN_STEPS)
        if res.get("attn_rel_error") is not None:
            runs[res["method"]] = res
        else:  # a method that leaves this cache as it is (MLA on an MLA model): said, and the store alone is scored
            unscored.append(f"{res.get('method', m)}: {res.get('note') or 'no attention figure'}")
    if not runs and methods:
        res = kv_store_twin(store, None, model=model, seed=seed, prompt=prompt, steps=TWIN_STEPS)
        if res.get("attn_rel_error") is not None:
            runs[res["method"]] = res
    if not runs:  # never a silently missing figure: the attention ops carry NaN and the reason
        return {"ops": list(dict.fromkeys(att)), "attn_rel_error": math.nan, "worst": "none",
                "note": "; ".join(unscored) or "no KV twin gave an attention figure", "prompt": prompt,
                "steps": TWIN_STEPS, "kv_scale": "", "key": store["key"], "value": store["value"]}
    # a NaN error is the worst of all (max() alone would pick by comparison order)
    worst = max(runs, key=lambda k: (math.isnan(runs[k]["attn_rel_error"]), runs[k]["attn_rel_error"]))
    unsimulated = [r["kv_format_not_simulated"] for r in runs.values() if r.get("kv_format_not_simulated")]
    return {"ops": list(dict.fromkeys(att)), "attn_rel_error": runs[worst]["attn_rel_error"], "worst": worst,
            "note": "; ".join(unsimulated + [f"not scored by its own twin: {u}" for u in unscored]),
            "prompt": prompt, "steps": TWIN_STEPS, "kv_scale": runs[worst].get("kv_scale", ""),
            "key": store["key"], "value": store["value"]}


def _gemm_accuracy(op, op_i, trace, layers, rows, tokens, seed, ckpt, n_layers):
    d = op.dims
    k, n = int(d["k"]), int(d["n"])
    w_t, a_t = _weight_input(op), _act_input(op)
    a_fmt = a_t.fmt if a_t is not None else op.compute_fmt
    layer_ids = _layers(op.repeat, layers) if op.repeat > 1 else [0]
    recs = []
    for layer in layer_ids:
        # one stream per (op, layer): results do not depend on which other ops are sampled
        rng = np.random.default_rng([seed, op_i, layer])
        r = min(rows, n)
        idx = np.sort(rng.choice(n, size=r, replace=False))
        source, w_draw = "synthetic", None
        w = None
        if ckpt is not None:
            name = HF_WEIGHT_NAMES.get(op.name, "").format(l=layer)
            if name in ckpt:
                shape = ckpt.shape(name)
                if shape != (n, k):
                    raise InputError(f"{ckpt.paths[0]}: tensor {name}: shape {shape}; the trace's "
                                     f"{op.name} expects (out={n}, in={k}); is it the same model?")
                w = ckpt.rows(name, idx)
                source = "checkpoint"
        if w is None:
            w = synthetic_weight(r, k, rng)
            w_draw = w.dtype.name  # what _draw_note says: the dtype actually drawn
        x = synthetic_activations(tokens, k, rng, dtype=GEMM_ACT_DRAW)
        y_ref = (x @ w.T).astype(np.float64)  # float32 GEMMs, float64 sums (module docstring)
        wq, w_scale = _quantize(w, w_t.fmt)
        xq, x_scale = _quantize(x, a_fmt)
        y_q = (np.asarray(xq, dtype=np.float32) @ np.asarray(wq, dtype=np.float32).T).astype(np.float64)
        sig = float(np.sum(y_ref ** 2))
        noise = float(np.sum((y_ref - y_q) ** 2))
        recs.append({"op": op.name, "layer": layer, "sqnr_db": sqnr_db(y_ref, y_q),
                     "weight_sqnr_db": sqnr_db(w, wq), "rows": r, "tokens": tokens, "k": k,
                     "weight_fmt": w_t.fmt, "act_fmt": a_fmt, "source": source,
                     "scale": f"W: {w_scale}; X: {x_scale}", **_status(y_q),
                     "_sig": sig, "_noise": noise, "_w_draw": w_draw,
                     "_x_draw": np.dtype(GEMM_ACT_DRAW).name})
    return recs
