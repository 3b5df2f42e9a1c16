"""Whole generation of one batch of requests: prefill, then output_len - 1 decode steps
with the KV cache growing by one token per step.

Token 1 comes out of the prefill (TTFT = prefill time); decode step j (1 .. N-1) runs with
prompt_len + j tokens of context (the builder's decode convention: the new token's K/V
included), prompt_len of them the prompt (a recipe compressing the prompt alone, SnapKV or
FastKV, keeps the j generated tokens whole; RocketKV and H2O set their budgets from the prompt:
build_trace's prompt_len). Decode steps are priced without one trace per token: the ops that
do not depend on the context (projections, MLP, head) are priced once; the context ops
(attention, cache-reading recipe ops) are priced at every step —

- roofline: their FLOPs and bytes are affine in the context length, so they are built at
  the first and last step, checked at the midpoint, interpolated for every step and
  evaluated in one vectorised roofline call (`hwmodels.roofline.evaluate`), exact;
- where they are not affine (a sliding window or an eviction budget reached inside the
  range), and at the analytical / cycle levels, each step's context ops are priced
  individually; the result's `notes` say which path ran.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from cosim.eager_host import GENERATION_GPU_TIME_NOTE, GPU_TIME_NOTE
from cosim.report import MemoryFit
from cosim.serving.steptime import Workload, DeviceStepCost, phase_named
from cosim.simulate import simulate
from hwmodels import roofline
from hwmodels.estimate import ops_as_priced
from hwmodels.spec import HardwareSpec, load_hw
from workloads.compression.recipe import prompt_only_note
from workloads.context import context_note
from workloads.io import InputError
from workloads.models import load_model

__all__ = ["generate", "GenerationResult", "GenerateInputs"]


@dataclass(frozen=True)
class GenerateInputs:
    """What produced a generation result besides model, hardware, level and shape (saved with it): the number
    formats as priced (weights None resolves to the checkpoint's declared format), recipe, attention, the
    implementation profile (None: a plain HF model's kernels, as profile eager)."""
    weights: str
    acts: str
    kv: str
    recipe: str | None
    attention: str
    compute_fallback: bool
    profile: str | None = None
    implementation: str | None = None  # the profile as the trace names it (workloads.profiles.ImplProfile.describe)
    # the attention backend(s) that priced the prefill and decode (a profile's, or the calibration's default; None:
    # the level prices one attention whatever the library), as simulate's meta["inputs"]; `attention` is the trace's
    # form
    attention_backend: str | None = None


@dataclass(frozen=True)
class GenerationResult(MemoryFit):
    model: str
    hw: str
    level: str
    batch: int
    prompt_len: int
    output_len: int
    ttft_s: float  # prefill of the whole batch: time to the first token
    prefill_energy_j: float
    decode_times_s: np.ndarray = field(repr=False)  # per decode step (output_len - 1 of them)
    decode_energy_j: np.ndarray = field(repr=False)
    notes: tuple = ()
    # bytes: weights, KV cache at the largest step (batch x (prompt + output - 1) tokens) and the larger of the
    # prefill pass's and a decode step's activations — the largest each part reaches, so their sum bounds the
    # peak from above (the prefill's activations and the final KV are never live together)
    footprint: dict = field(default_factory=dict)
    capacity_bytes: float = float("inf")  # the device's main memory
    energy_scope: str = ""  # "dynamic only (no static power in <file>)" when the device gives none
    inputs: GenerateInputs | None = None
    level_requested: str = ""  # `level` is the level(s) that priced it: roofline where the device has no calibration
    # what the prefill's and decode steps' numbers rest on, each text once (simulate's priced_from; issue 11)
    priced_from: tuple = ()

    @property
    def provenance(self) -> str:
        """priced_from as one text: the `provenance` of generate's files, as a sweep row's."""
        return "; ".join(self.priced_from)

    @property
    def tpot_s(self) -> float:
        """Mean time per output token after the first; NaN (null in JSON) when output_len == 1: no
        token follows the first, so there is no time per output token (it read 0 until session 14)."""
        return float(self.decode_times_s.mean()) if self.decode_times_s.size else float("nan")

    @property
    def total_s(self) -> float:
        return self.ttft_s + float(self.decode_times_s.sum())

    @property
    def energy_j(self) -> float:
        return self.prefill_energy_j + float(self.decode_energy_j.sum())

    @property
    def tokens_per_s(self) -> float:
        return self.batch * self.output_len / self.total_s

    @property
    def energy_per_token_j(self) -> float:
        return self.energy_j / (self.batch * self.output_len)

    def summary(self) -> dict:
        return {"model": self.model, "hw": self.hw, "level": self.level, "level_requested": self.level_requested,
                "provenance": self.provenance, "batch": self.batch,
                "prompt_len": self.prompt_len, "output_len": self.output_len, "ttft_s": self.ttft_s,
                "tpot_s": self.tpot_s, "total_s": self.total_s, "energy_j": self.energy_j,
                "tokens_per_s": self.tokens_per_s, "energy_per_token_j": self.energy_per_token_j,
                "footprint_bytes": dict(self.footprint), "memory_bytes": self.memory_bytes,
                "capacity_bytes": self.capacity_bytes, "fits_in_memory": self.fits_in_memory,
                "inputs": asdict(self.inputs) if self.inputs else None, "notes": list(self.notes)}


def _positive(name, v):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise InputError(f"generate: {name}: got {v!r}; expected a positive integer")
    return int(v)


def _prefill_notes(pre, model, prompt_len: int, beyond: str | None) -> list:
    """The prefill pass's notes, its GPU-time note said of the whole generation; the largest step's beyond-context
    note (`beyond`) covers the prompt's own (one note, not 32,768 then 32,775)."""
    return [GENERATION_GPU_TIME_NOTE if n == GPU_TIME_NOTE else n for n in pre.notes
            if not (beyond and n == context_note(model, prompt_len, True))]


def _recipe_notes_by_phase(pre_notes: list, prefill, last_decode) -> list:
    """A recipe's notes say what it did to the trace they came from: with decode steps, the prefill's are labelled so,
    and the last decode step's follow (StreamingLLM kept a 1,900-token prompt whole, "nothing evicted", while its
    decode steps past 2,004 tokens evict: only the prefill's note was printed)."""
    if last_decode is None:
        return pre_notes
    from cosim.simulate import recipe_notes
    said = set(recipe_notes(prefill.meta))
    out = [f"prefill: {n}" if n in said else n for n in pre_notes]
    kept = [f"recipe {name}: keeps {int(e['kept_tokens']):,} of its {last_decode.seq:,} tokens"
            for name, e in (last_decode.meta.get("recipe_effects") or {}).items()
            if isinstance(e, dict) and e.get("kept_tokens") is not None and int(e["kept_tokens"]) < last_decode.seq
            and not any(k.startswith("note") and "keeps " in str(v) for k, v in e.items())]  # its own note says it
    out += [f"last decode step ({last_decode.seq:,} tokens): {n}" for n in [*kept, *recipe_notes(last_decode.meta)]]
    return out


def _memory_notes(footprint: dict, hw: HardwareSpec) -> list:
    from cosim.serving.kv_memory import fit_rule
    capacity, mem = hw.main_memory.capacity_bytes, sum(footprint.values())
    notes = [fit_rule(hw)]
    if mem > capacity:  # priced anyway, as roofline/simulate do; the line and the note say so
        notes.append(f"does not fit: {mem / 1e9:,.2f} GB (weights {footprint['weights'] / 1e9:,.2f} + KV "
                     f"{footprint['kv_cache'] / 1e9:,.2f} + activations {footprint['activations'] / 1e9:,.2f}) "
                     f"on {hw.name}'s {capacity / 1e9:,.2f} GB; the times assume it did")
    return notes


def generate(model, hw, prompt_len: int, output_len: int, batch: int = 1, level: str = "roofline",
             weights: str | None = None, acts: str = "bf16", kv: str = "bf16", recipe: str | None = None,
             attention: str = "fused", compute_fallback: bool = False,
             allow_beyond_max_context: bool = False, profile: str | None = None) -> GenerationResult:
    """Prefill of `batch` prompts of `prompt_len` tokens, then output_len - 1 decode steps. The largest step
    holds prompt_len + output_len - 1 tokens of KV; beyond the model's max_context it is refused unless
    `allow_beyond_max_context` (then a note says so). The result carries the memory footprint and whether
    it fits the device (a note when it does not: the times assume it did). `profile`: the kernels a software
    stack launches (workloads.profiles: eager, hf_eager, engine, engine_gemm, optionally +<attention backend>)."""
    prompt_len, output_len, batch = (_positive(n, v) for n, v in
                                     (("prompt_len", prompt_len), ("output_len", output_len), ("batch", batch)))
    model = load_model(model)
    last = prompt_len + output_len - 1  # KV of the last step, its new token included (the last token is never fed)
    if model.max_context and last > model.max_context and not allow_beyond_max_context:  # build_trace's and serve's rule
        fld = "prompt_len" if prompt_len > model.max_context else "output_len"
        raise InputError(f"generate: {fld}: prompt {prompt_len} + output {output_len} tokens put the largest step "
                         f"at {last} tokens of KV (prompt + output - 1: the last output token is never fed back); "
                         f"expected at most {model.max_context}, {model.name}'s maximum context (max_context, from "
                         f"{model.source or 'its file'}); to price it anyway (a long-context study) pass "
                         f"--allow-beyond-max-context (Python: allow_beyond_max_context=True)")
    # the note the trace builder carries for such a context (workloads.context; None within the maximum)
    beyond = context_note(model, last, True, "generate", "prompt_len + output_len - 1")
    if isinstance(hw, str):
        from hwmodels.system import list_systems
        if hw in list_systems():  # a bundled system, not a device: say where multi-device runs live
            raise InputError(f"generate: hw: {hw!r} is a system; generate runs one device (a bundled "
                             f"hardware name or YAML); for a TP/PP replica on a system use `cosim serve --hw "
                             f"{hw} --tp N` or `cosim simulate --hw {hw} --parallel tp=N`")
    hw = hw if isinstance(hw, HardwareSpec) else load_hw(hw)
    w = Workload(model, weights, acts, kv, recipe, attention, profile)
    pre_trace = w.trace("prefill", batch, prompt_len)
    pre = simulate(pre_trace, hw, level, compute_fallback)
    steps = DeviceStepCost(w, hw, level, 0.0, compute_fallback)
    const = steps.token_cost(batch, prefill=False) + steps.head_cost(batch)
    seqs = prompt_len + np.arange(1, output_len)
    pre_notes = _prefill_notes(pre, model, prompt_len, beyond)
    last = w.trace("decode", batch, int(seqs[-1]), prompt_len=prompt_len) if seqs.size else None
    pre_notes = _recipe_notes_by_phase(pre_notes, pre_trace, last)
    notes = [*pre_notes, *([beyond] if beyond else [])]
    if seqs.size == 0:
        lat = en = np.zeros(0)
    else:
        got = _affine_roofline(steps, batch, seqs, prompt_len) if level == "roofline" else None
        if got is None:
            before, steps.levels_used = steps.levels_used, {}
            lat, en = _per_step(steps, batch, seqs, prompt_len)
            used = ", ".join(steps.levels_used) or level  # what priced them, not what was asked
            steps.levels_used = {**before, **steps.levels_used}
            notes.append(f"decode context ops priced step by step ({seqs.size} steps, level {used}"
                         + (f"; requested {level}" if used != level else "") + ")")
        else:
            lat, en = got
            notes.append("decode context ops evaluated in one vectorised roofline call (affine in KV length)")
    notes += list(steps.notes)
    notes += [n for n in (prompt_only_note(recipe, "the decode steps' prices and the KV footprint"),)
              if n and seqs.size]
    notes = phase_named(notes, [n for n in pre_notes if n != GENERATION_GPU_TIME_NOTE], list(steps.notes))
    if output_len == 1:
        notes.append("output_len 1: no decode step, so TPOT is undefined (tpot_s NaN, null in JSON)")
    footprint = _footprint(pre.footprint, last.meta["footprint"] if last is not None else None)
    capacity = hw.main_memory.capacity_bytes
    notes += _memory_notes(footprint, hw)
    # the level(s) that priced it, prefill and decode steps (roofline where the device cannot do `level`), and
    # what they rest on: never the requested level alone (issue 11)
    from hwmodels.levels import summarize_levels
    used = summarize_levels(pre.level.split("+") + list(steps.levels_used))
    prov = tuple(dict.fromkeys([*pre.meta["priced_from"], *steps.provenance_used]))
    return GenerationResult(model.name, hw.name, used, batch, prompt_len, output_len, pre.total_latency_s,
                            pre.total_energy_j, lat + const.latency_s, en + const.energy_j,
                            tuple(dict.fromkeys(notes)), footprint, capacity, hw.energy_scope,
                            GenerateInputs(**{k: pre.meta["formats"][k] for k in ("weights", "acts", "kv")},
                                           recipe=recipe, attention=attention, compute_fallback=compute_fallback,
                                           profile=pre.meta["inputs"]["profile"],
                                           implementation=pre.meta.get("implementation"),
                                           attention_backend=_backends(pre, steps)),
                            level_requested=level, priced_from=prov)


def _backends(pre, steps) -> str | None:
    """The attention backend(s) the prefill and the decode steps were priced with (None: the level prices one
    attention whatever the library)."""
    got = [b.strip() for b in (pre.meta["inputs"].get("attention_backend") or "").split(",") if b.strip()]
    return ", ".join(sorted({*got, *steps.backends_used})) or None


def _footprint(prefill: dict, last_decode: dict | None) -> dict:
    """Weights; KV at the largest step (the last decode, else the prefill); the larger activations."""
    parts = [prefill] + ([last_decode] if last_decode else [])
    return {"weights": float(prefill["weights"]), "kv_cache": float(max(p["kv_cache"] for p in parts)),
            "activations": float(max(p["activations"] for p in parts))}


def _context_ops(steps: DeviceStepCost, batch: int, seq: int, prompt_len: int):
    """A decode step's context ops at `seq` tokens, `prompt_len` of them the prompt (a prompt-only recipe keeps the
    generated ones whole: build_trace)."""
    return [o for o in steps.workload.trace("decode", batch, int(seq), prompt_len=prompt_len).ops
            if steps.is_context_op(o.name)]


def _per_step(steps: DeviceStepCost, batch: int, seqs, prompt_len: int):
    lat, en = np.empty(seqs.size), np.empty(seqs.size)
    for i, s in enumerate(seqs):
        c = steps._price(_context_ops(steps, batch, s, prompt_len))
        lat[i], en[i] = c.latency_s, c.energy_j
    return lat, en


_FIELDS = ("repeat", "flops", "bytes", "mnk", "elem_bytes")


def _probe_points(s0: int, s1: int) -> list[int]:
    """Interior steps that expose non-affine context costs: the midpoint and offsets
    that are not multiples of the group sizes recipes use (a KIVI residual window of 128
    makes the cost a sawtooth that a midpoint alone could miss)."""
    pts = {(s0 + s1) // 2, s0 + 1, s0 + 7, s0 + 37, s0 + 101, s1 - 1, s1 - 53, (s0 + 3 * s1) // 4 + 13}
    return sorted(p for p in pts if s0 < p < s1)


def _affine_roofline(steps: DeviceStepCost, batch: int, seqs, prompt_len: int):
    """Context-op costs at every step from tables at the two ends, or None when the
    tables at the probe points show they are not affine in the context length."""
    s0, s1 = int(seqs[0]), int(seqs[-1])
    # a profile's eager attention is priced as its kernels, as estimate_ops prices it step by step
    table = lambda s: roofline.op_table(ops_as_priced(_context_ops(steps, batch, s, prompt_len), steps.hw,
                                                      "roofline")[0],
                                        steps.hw, steps.compute_fallback)
    a, b = table(s0), table(s1)
    if a.names != b.names or a.fmt != b.fmt or not a.names:
        return None
    span = max(1, s1 - s0)
    for p in _probe_points(s0, s1):
        m = table(p)
        if m.names != a.names or m.fmt != a.fmt:
            return None
        for f in _FIELDS:
            va, vb = getattr(a, f), getattr(b, f)
            if not np.allclose(va + (vb - va) * (p - s0) / span, getattr(m, f), rtol=1e-12, atol=0):
                return None
    frac = (seqs - s0) / span
    cols = {f: getattr(a, f)[None, :] + (getattr(b, f) - getattr(a, f))[None, :] * frac[:, None]
            for f in _FIELDS}  # (steps, ops)
    n_steps, n_ops = cols["flops"].shape
    flat = roofline.OpTable(names=a.names * n_steps, kinds=a.kinds * n_steps, repeat=cols["repeat"].ravel(),
                            flops=cols["flops"].ravel(), bytes=cols["bytes"].ravel(), mnk=cols["mnk"].ravel(),
                            elem_bytes=cols["elem_bytes"].ravel(), fmt=a.fmt * n_steps, notes=a.notes)
    r = roofline.evaluate(flat, roofline.hw_table(steps.hw))
    rep = cols["repeat"]
    lat = (r["latency_s"][0].reshape(n_steps, n_ops) * rep).sum(axis=1)
    en = (r["energy_j"][0].reshape(n_steps, n_ops) * rep).sum(axis=1)
    return lat, en
