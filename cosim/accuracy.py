"""Accuracy on a real checkpoint: perplexity, KL divergence and top-1 agreement of a
compressed model against the unquantized one on real text, plus per-layer SQNR.

    res = evaluate_accuracy("smollm2_135m", tokens=512, weights="mxfp4", acts="mxfp8_e4m3", recipe="kivi2")
    res.perplexity, res.baseline_perplexity, res.kl, res.top1_agreement, res.to_dict()

Protocol (decoders): the first `prefill` tokens of the text are the prompt (default
half the window); the rest are teacher-forced decode steps whose attention reads the
KV cache as the recipe stores it. Metrics are over the next-token predictions made by
decode steps (positions prefill .. N-2), so every recipe — weights, activations, KV
formats, eviction — is scored on the same predictions. Encoders (BERT) have no
next-token distribution: they report the SQNR and cosine similarity of the final hidden
states and of the mean-pooled sentence embedding instead (perplexity fields are NaN,
and the notes say why).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from cosim.functional.metrics import log_softmax, sqnr_db

__all__ = ["evaluate_accuracy", "AccuracyResult", "LayerAccuracy", "default_text_path", "load_text_tokens",
           "perturb_embedding", "ulp_moves", "PERTURBATION", "next_token_scores", "perplexity"]

# --spread: the compressed model's embedding table times (1 + NOISE_REL * N(0,1)), float32: about half
# its entries move, almost all by one float32 ulp; a stand-in for any last-bit difference upstream
NOISE_REL = 2.0 ** -24
PERTURBATION = ("embedding table x (1 + 2^-24 N(0,1)) in float32, "
                "numpy default_rng(seed), seeds 1..N; the baseline is not perturbed")

DEFAULT_TEXT = "us_founding_documents.txt"


@dataclass
class LayerAccuracy:
    layer: int
    weight_sqnr_db: float  # the layer's stored weights vs the baseline's (mean over its matrices)
    hidden_sqnr_db: float  # residual stream after the layer vs the baseline run's (errors accumulate)


@dataclass
class AccuracyResult:
    checkpoint: str
    checkpoint_format: str
    baseline_note: str  # what "unquantized" means here (e.g. a Q4_1 GGUF dequantized)
    numerics: str  # weights=..., acts=..., kv=..., recipes
    weights: str
    acts: str
    kv: str
    recipe: str | None
    text: str
    window: int  # tokens run through the model
    prefill: int  # of which prompt
    tokens: int  # predictions scored
    baseline_perplexity: float
    perplexity: float
    perplexity_delta: float
    kl: float  # mean KL(p_baseline || p_compressed) per scored token, nats
    top1_agreement: float
    mass_kept: float  # eviction recipes: mean exact attention mass on the tokens decode steps read
    tokens_read: float  # mean KV tokens a decode step reads (per KV head)
    hidden_sqnr_db: float  # final hidden state vs baseline
    embedding_cosine: float = float("nan")  # encoders: mean-pooled sentence embedding cosine
    layers: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    elapsed_s: float = 0.0
    provenance: str = "checkpoint"
    quantized_tensors: str = ""  # which weights the run quantized, e.g. "linear layers; embedding table and LM head kept"
    # --spread N: min/max of perplexity, KL and top-1 over the run and N reruns under ~1-ulp input noise
    # (perturb_embedding); None when not asked
    spread: dict | None = None
    # the notes (also in `notes`) saying the recipe did nothing at this run's length (its residual window or
    # budget covered every token, _residual_window_notes): the figures beside them are the baseline's (or the
    # other formats'); a report shows them next to the perplexity
    did_not_act: list = field(default_factory=list)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["layers"] = [asdict(x) if not isinstance(x, dict) else x for x in self.layers]
        return d


def default_text_path() -> Path:
    from workloads.io import bundled_dir
    return bundled_dir("text") / DEFAULT_TEXT


def _residual_window_notes(recipe, window: int, prefill: int | None = None, tokens_option: str = "--tokens") -> list:
    """A KV recipe whose budget or full-precision window covers every token a scored step reads did nothing
    in this run: the figures are the baseline's up to round-off. Said for every KV method that can be idle
    (KIVI's residual window, GEAR's streaming buffer, SnapKV's capacity, H2O's budget, StreamingLLM's sinks +
    window, RocketKV's token budget); never silent. The largest cache a scored step reads holds window - 1
    tokens (the last token is only a target); `prefill` defaults to half the window, as evaluate_accuracy's.
    `tokens_option`: where the caller sets the run's token count, named in the advice to run more."""
    if not recipe:
        return []
    from workloads.compression import load_recipe
    r = load_recipe(recipe)
    P = window // 2 if prefill is None else prefill
    ctx = window - 1
    out = []
    for part in (r.parts or (r,)):
        m, p = part.method, part.params
        res = p.get("residual_length") if m == "kivi" else None
        if isinstance(res, int) and window <= res:
            out.append(f"recipe {part.name}: its full-precision residual window (residual_length {res}) holds all "
                       f"{window} tokens of this run, so no KV entry was quantized and the figures are the "
                       f"baseline's up to round-off; run more than {res} tokens ({tokens_option}) to measure it")
            continue
        cover = None
        if m == "gear" and p["streaming_gap"] > ctx:
            cover = f"its fp16 streaming buffer (streaming_gap {p['streaming_gap']}) > context {ctx}: no chunk compressed"
        elif m == "snapkv" and p["capacity"] >= P:
            cover = f"capacity {p['capacity']} >= prompt {P} (SnapKV compresses the prompt only)"
        elif m == "h2o":
            from workloads.compression.eviction import h2o_kept_tokens
            C = h2o_kept_tokens(p["heavy_ratio"], p["recent_ratio"], p["budget"], P, part.name)  # the twin's count
            if C >= ctx:
                cover = f"capacity {C} >= context {ctx}"
        elif m == "streaming_llm" and p["sink_tokens"] + p["recent_tokens"] >= ctx:
            cover = (f"capacity {p['sink_tokens'] + p['recent_tokens']} (sink_tokens + recent_tokens) >= "
                     f"context {ctx}")
        elif m == "rocketkv" and p["token_budget"] >= window:  # rocketkv_budget's `applies` over the run (the twin's)
            cover = f"capacity {p['token_budget']} (token_budget) >= context {window}"
        if cover:
            out.append(f"recipe {part.name} did not act at this length ({cover}): every token was kept as "
                       f"computed, so the figures are the baseline's up to round-off (or the KV format's alone); "
                       f"run more tokens ({tokens_option}) to measure it")
    return out


def _with_ablation(num, kv_policy):
    """Numerics with an ablation's cache policy; it defines the whole KV cache, so a KV format or recipe beside
    it would be dropped: refused."""
    import dataclasses
    from workloads.io import InputError
    if num.kv_recipe is not None or any(f not in ("fp32", "baseline") for f in (num.kv, num.kv_values)):
        raise InputError(f"accuracy: kv_policy: an ablation policy defines the whole KV cache; got it with "
                         f"kv={num.kv_label}" + (f" and recipe part {num.kv_recipe.name}" if num.kv_recipe else "")
                         + "; expected kv fp32 and no KV recipe beside it")
    return dataclasses.replace(num, kv_policy=kv_policy)


def load_text_tokens(ck, text_path: str | Path | None, tokens: int,
                     tokens_option: str = "--tokens") -> tuple[np.ndarray, str]:
    """The first `tokens` token ids of the text; `tokens_option`: where the caller set `tokens` (named when
    the text is too short: `--tokens`, or `cosim run`'s file field)."""
    from workloads.io import InputError
    path = Path(text_path) if text_path else default_text_path()
    if not path.is_file():
        raise InputError(f"{path}: no such text file (--text expects a UTF-8 text file)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None
    ids = ck.encode(text)
    if ids.size < tokens:
        raise InputError(f"{path}: holds {ids.size} tokens for this tokenizer; {tokens_option} asked for {tokens} "
                         f"(give a longer text or fewer tokens)")
    return ids[:tokens], (path.name if not text_path else str(path))


@lru_cache(maxsize=4)
def _checkpoint(spec: str):
    from cosim.functional.checkpoint import load_checkpoint
    return load_checkpoint(spec)


@lru_cache(maxsize=8)
def _baseline_run(spec: str, ids_key: bytes, prefill: int):
    """The unquantized run, shared by every configuration evaluated on the same tokens."""
    from cosim.functional.lm import DecoderLM, Numerics
    ck = _checkpoint(spec)
    ids = np.frombuffer(ids_key, dtype=np.int64)
    return DecoderLM(ck, Numerics()).forward(ids, prefill, collect_hidden=True)


def warm_baseline(checkpoint: str = "smollm2_135m", text: str | Path | None = None, tokens: int = 512,
                  prefill: int | None = None) -> None:
    """Load the checkpoint and run the unquantized pass into the caches evaluate_accuracy
    reads (nothing is quantized: no numba kernel runs). A second process does this while
    the first compiles the kernels both need (cosim.second_process). Bad input is left
    to evaluate_accuracy, which raises it with its own message."""
    try:
        ck = _checkpoint(str(checkpoint))
        if not ck.config.is_decoder:
            return
        ids, _ = load_text_tokens(ck, text, tokens)
        P = ids.size // 2 if prefill is None else prefill  # evaluate_accuracy's default prefill
        if 1 <= P <= ids.size - 2:
            _baseline_run(str(checkpoint), ids.tobytes(), P)
    except Exception:
        return


def check_weights_against_recipe(weights: str, recipe) -> None:
    """--weights with a recipe that sets the linear layers' weights itself (weight_format's format, OCS's split
    weights in its format, SpQR's own codes): the recipe's storage replaced the flag's on every layer, silently.
    Refused before any work, for every caller (cosim accuracy, cosim run, sweeps). Pricing applies the same rule: cosim simulate prices the recipe's storage on the
    linear layers (workloads.compression.weights: apply_spqr stores codes, apply_ocs its format) and the flag's
    only on the tensors the recipe leaves: the embedding table and head, kept at baseline here."""
    if not recipe or weights in ("fp32", "baseline"):
        return
    from workloads.compression import load_recipe
    from workloads.io import InputError
    r = load_recipe(recipe)
    for part in (r.parts or (r,)):
        if part.method in ("weight_format", "ocs"):
            fmt = part.params.get("format")
            if fmt and fmt != weights:
                raise InputError(f"accuracy: --weights: got {weights!r} with --recipe {recipe!r}, whose part "
                                 f"{part.name}{' (ocs)' if part.method == 'ocs' else ''} sets every linear layer's weights to {fmt}, so "
                                 f"--weights would be dropped; expected one of them (drop --weights, or pass "
                                 f"--weights {fmt})")
        elif part.method == "spqr":
            raise InputError(f"accuracy: --weights: got {weights!r} with --recipe {recipe!r}, whose part "
                             f"{part.name} (spqr) stores every linear layer's weights as its own "
                             f"{part.params.get('bits')}-bit group codes, so --weights would be dropped; expected "
                             f"no --weights with it (the recipe sets the weight format)")


def evaluate_accuracy(checkpoint: str = "smollm2_135m", text: str | Path | None = None, tokens: int = 512,
                      prefill: int | None = None, weights: str = "fp32", acts: str = "fp32", kv: str = "fp32",
                      recipe: str | None = None, exact: bool = False, quantize_head: bool = False,
                      kv_policy=None, per_layer: bool = True, spread: int = 0,
                      tokens_option: str = "--tokens") -> AccuracyResult:
    """Run the baseline and the compressed model on the same tokens and compare.
    `per_layer=False` (decoders): `layers` is left empty and the per-layer weight SQNR is
    not computed (`cosim run` reports none); every other field is the same. `tokens_option`: where
    the caller sets `tokens` (a did-not-act note advises raising it there; `cosim run`: the file's field).
    `spread` = N > 0 (decoders): the compressed model is run N more times with ~1-ulp noise
    on its embedding table (PERTURBATION) and `spread` holds min/max of perplexity, KL and
    top-1 over all N + 1 runs: quantized activations amplify last-bit differences, so a
    difference between configurations smaller than this spread is not resolved."""
    from workloads.io import InputError
    from cosim.functional.lm import Numerics
    check_weights_against_recipe(weights, recipe)

    if isinstance(spread, bool) or not isinstance(spread, int) or spread < 0:
        raise InputError(f"accuracy: spread: got {spread!r}; expected an integer >= 0 (perturbed reruns)")
    if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 3:
        raise InputError(f"accuracy: tokens: got {tokens!r}; expected an integer >= 3")
    t0 = time.perf_counter()
    ck = _checkpoint(str(checkpoint))
    if tokens > ck.config.max_positions:
        raise InputError(f"accuracy: tokens: got {tokens}; {checkpoint} has a context of {ck.config.max_positions}")
    num = Numerics.from_options(weights, acts, kv, recipe, exact, quantize_head)
    if kv_policy is not None:  # an ablation given as a policy factory (benchmarks/real_accuracy_table.py)
        num = _with_ablation(num, kv_policy)
    ids, text_name = load_text_tokens(ck, text, tokens, tokens_option)
    common = dict(checkpoint=str(checkpoint), checkpoint_format=ck.file_format, baseline_note=ck.baseline_note,
                  numerics=num.describe(), weights=num.weights, acts=num.acts, kv=num.kv_label, recipe=recipe,
                  text=text_name, window=int(ids.size))
    if not ck.config.is_decoder:
        if spread:
            raise InputError(f"accuracy: spread: got {spread}; {checkpoint} is an encoder checkpoint and --spread "
                             f"(perturbed reruns) is implemented for decoder checkpoints only; expected 0 (no --spread)")
        return _encoder_accuracy(ck, num, ids, common, t0)
    P = ids.size // 2 if prefill is None else prefill
    if not 1 <= P <= ids.size - 2:
        raise InputError(f"accuracy: prefill: got {P}; expected 1 .. tokens - 2 = {ids.size - 2}")
    base = _baseline_run(str(checkpoint), ids.tobytes(), P)
    model = None
    if num.is_baseline:
        out = base
    else:
        from cosim.functional.lm import DecoderLM
        model = DecoderLM(ck, num, weight_sqnr=per_layer)
        out = model.forward(ids, P, collect_hidden=True)
    target = ids[out.positions + 1]
    lp_ref, lp = log_softmax(base.logits, axis=1), log_softmax(out.logits, axis=1)
    score = next_token_scores(lp_ref, lp, target)
    ppl_ref = perplexity(lp_ref, target)
    spread_d = _spread(ck, num, model, ids, P, lp_ref, lp, target, spread) if spread else None
    layers = [LayerAccuracy(i, w, sqnr_db(hr, hq)) for i, (w, hr, hq) in
              enumerate(zip(out.weight_sqnr_db, base.hidden, out.hidden))] if per_layer else []
    if per_layer:
        final_hidden = layers[-1].hidden_sqnr_db if layers else math.nan
    else:  # the same figure, for the last layer only
        final_hidden = sqnr_db(base.hidden[-1], out.hidden[-1]) if base.hidden else math.nan
    # the forward pass repeats the numerics' own notes: each line once, in order
    notes = list(dict.fromkeys(list(num.notes) + list(out.notes) + [ck.baseline_note]))
    if not num.quantize_head:
        notes.append("embeddings and LM head kept at baseline precision (as weight-quantization recipes do; "
                     "--quantize-head or a recipe's include_lm_head quantizes them)")
    idle = _residual_window_notes(recipe, int(ids.size), P, tokens_option)
    notes += idle
    from cosim.functional.lm.numerics import token_coupled
    if not spread and token_coupled(num.acts):
        notes.append(f"activations {num.acts} are block- or dynamically scaled on the GEMM (and attention) operands: "
                     f"such runs move under last-bit input noise by more than small differences between "
                     f"configurations (benchmarks/results/acts_noise_spread.md); --spread N measures this run's")
    return AccuracyResult(**common, prefill=P, tokens=int(target.size), baseline_perplexity=ppl_ref,
                          perplexity=score["perplexity"], perplexity_delta=score["perplexity"] - ppl_ref,
                          kl=score["kl"], top1_agreement=score["top1"],
                          mass_kept=out.mass_kept, tokens_read=out.tokens_read,
                          hidden_sqnr_db=final_hidden, layers=layers,
                          notes=notes, elapsed_s=time.perf_counter() - t0,
                          quantized_tensors=_quantized_scope(num, ck), spread=spread_d, did_not_act=idle)


def _quantized_scope(num, ck) -> str:
    """Which weights a decoder run quantized (AccuracyResult.quantized_tensors)."""
    tied = ck.config.tied_embeddings  # one stored tensor serves the embeddings and the head
    return ("linear layers, embedding table and LM head" if num.quantize_head and (num.quantize_embed or tied) else
            "linear layers and LM head (embedding table kept at baseline precision)" if num.quantize_head else
            "linear layers (embedding table and LM head kept at baseline precision)")


def _spread(ck, num, model, ids, P, lp_ref, lp, target, n: int) -> dict:
    """min/max of perplexity, KL and top-1 over this run and n reruns of the compressed
    model with a perturbed embedding table (seeds 1..n), each given to its forward pass (the model and
    the cached checkpoint it reads are left as loaded, whatever happens midway)."""
    if model is None:
        from cosim.functional.lm import DecoderLM
        model = DecoderLM(ck, num, weight_sqnr=False)
    runs = [next_token_scores(lp_ref, lp, target)]
    clean = model.embed
    moved = np.zeros(3)
    for seed in range(1, n + 1):  # the perturbed table is the pass's argument: the model is never changed
        noisy = perturb_embedding(clean, seed)
        moved += ulp_moves(clean, noisy)
        runs.append(next_token_scores(lp_ref, log_softmax(model.forward(ids, P, embed=noisy).logits, axis=1), target))
    m = moved / n
    measured = (f"; on this checkpoint's table {100 * m[0]:.0f} % of entries moved ({100 * m[1]:.0f} % by one ulp, "
                f"{100 * m[2]:.0f} % by two or more; measured, mean over the {n} seed(s))")
    return {"runs": len(runs), "perturbation": PERTURBATION + measured,
            **{k: [min(r[k] for r in runs), max(r[k] for r in runs)] for k in ("perplexity", "kl", "top1")}}


def perturb_embedding(embed: np.ndarray, seed: int) -> np.ndarray:
    """`embed` x (1 + 2^-24 N(0,1)) in float32 (PERTURBATION), from numpy default_rng(seed)."""
    e = np.asarray(embed, np.float32)
    return (e * (1 + np.random.default_rng(seed).standard_normal(e.shape) * NOISE_REL)).astype(np.float32)


def ulp_moves(clean: np.ndarray, perturbed: np.ndarray) -> np.ndarray:
    """Fractions of float32 entries that moved, moved by exactly one ulp, and by two or more
    (distance between the bit patterns; the perturbation never flips a sign)."""
    a = np.asarray(clean, np.float32).view(np.int32).astype(np.int64)
    b = np.asarray(perturbed, np.float32).view(np.int32).astype(np.int64)
    d = np.abs(a - b)
    return np.array([np.mean(d > 0), np.mean(d == 1), np.mean(d >= 2)]) if d.size else np.zeros(3)


def perplexity(lp: np.ndarray, target: np.ndarray) -> float:
    """exp of the mean negative log-probability (`lp`: log-softmax rows) of the target tokens."""
    return math.exp(float(-lp[np.arange(target.size), target].mean()))


def next_token_scores(lp_ref: np.ndarray, lp: np.ndarray, target: np.ndarray) -> dict:
    """Perplexity of `lp` on the targets, mean KL(p_ref || p) per prediction (nats, clipped at 0: round-off) and
    top-1 agreement with the reference, from log-softmax rows: every accuracy figure of a decoder run (also
    benchmarks/acts_noise_spread.py's)."""
    return {"perplexity": perplexity(lp, target),
            "kl": max(float(np.mean(np.sum(np.exp(lp_ref) * (lp_ref - lp), axis=1))), 0.0),
            "top1": float(np.mean(lp.argmax(1) == lp_ref.argmax(1)))}


def _encoder_accuracy(ck, num, ids, common, t0) -> AccuracyResult:
    """Sentences of <= 126 tokens wrapped in [CLS]/[SEP]; compare final hidden states."""
    from cosim.functional.lm import EncoderLM
    tok = ck.tokenizer
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    chunk = min(126, ck.config.max_positions - 2)
    base_m, q_m = EncoderLM(ck), EncoderLM(ck, num)
    hs_ref, hs, emb_cos, per_layer = [], [], [], None
    for s in range(0, ids.size, chunk):
        seq = np.concatenate([[cls], ids[s:s + chunk], [sep]])
        href, lref = base_m.forward(seq, collect_hidden=True)
        hq, lq = q_m.forward(seq, collect_hidden=True)
        hs_ref.append(href)
        hs.append(hq)
        a, b = href.mean(0), hq.mean(0)
        emb_cos.append(float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))))
        pairs = list(zip(lref, lq))
        per_layer = pairs if per_layer is None else [(np.concatenate([x, u]), np.concatenate([y, w]))
                                                     for (x, y), (u, w) in zip(per_layer, pairs)]
    layers = [LayerAccuracy(i, w, sqnr_db(r, q)) for i, (w, (r, q)) in enumerate(zip(q_m.weight_sqnr_db, per_layer))]
    nan = float("nan")
    notes = list(num.notes) + [ck.baseline_note, "encoder checkpoint: no next-token distribution, so perplexity, "
                                                 "KL and top-1 are NaN; compare hidden_sqnr_db and embedding_cosine"]
    return AccuracyResult(**common, prefill=0, tokens=int(ids.size), baseline_perplexity=nan, perplexity=nan,
                          perplexity_delta=nan, kl=nan, top1_agreement=nan, mass_kept=nan, tokens_read=nan,
                          hidden_sqnr_db=sqnr_db(np.concatenate(hs_ref), np.concatenate(hs)),
                          embedding_cosine=float(np.mean(emb_cos)), layers=layers, notes=notes,
                          elapsed_s=time.perf_counter() - t0)
