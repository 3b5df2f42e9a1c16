"""Serving simulation: requests over time on a device (or a pool of them).

    res = cosim.serve("llama3_8b", "h100_sxm", qps=5, requests=2000, scheduler="chunked")
    res.summary["ttft_p99_s"], res.requests (per-request table), res.timeline (KV over time)

Modules, one job each: arrivals (requests), kv_memory (paged KV), scheduler (policies),
steptime (the step-cost model over the existing cost models), engine (simpy), metrics.
"""

from __future__ import annotations

import time

import numpy as np

from cosim.eager_host import calibrated_cpu_per_kernel
from cosim.serving.arrivals import lengths_note, make_requests, order_note
from cosim.serving.config import HostOverhead, ServeConfig
from cosim.serving.host import host_for
from cosim.serving.engine import Engine, Replica
from cosim.serving.generate import GenerationResult, generate
from cosim.serving.kv_memory import (KVMemoryError, PagedKV, StoredTokens, fit_rule, kv_capacity, ref_context,
                                      window_note)
from cosim.serving.metrics import NO_SLO_NOTE, ServeResult, has_window, request_table, summarize
from cosim.serving.steptime import (DeviceStepCost, StepBatch, StepCost, StepCostModel, Workload,
                                   refuse_chunked_attention)
from hwmodels.spec import HardwareSpec, load_hw
from hwmodels.system import SystemSpec, list_systems, load_system
from workloads.parallel import parse_layout
from workloads.builder import declared_weights_note
from workloads.compression.recipe import prompt_budget_note, prompt_only_note
from workloads.io import InputError
from workloads.models import load_model

__all__ = ["serve", "generate", "ServeConfig", "HostOverhead", "ServeResult", "GenerationResult", "StepBatch", "StepCost",
           "StepCostModel", "DeviceStepCost", "Workload"]


def _link(hw, name, fld):
    bw = hw.interconnect.get(name)
    if not bw:
        raise InputError(f"serve: {fld}: {hw.name} declares no interconnect {name!r} "
                         f"(it has {', '.join(hw.interconnect) or 'none'}); name one of its links")
    return bw


def _refuse_device_for_layout(cfg) -> None:
    """A TP/PP layout given one device (--hw h100_sxm --tp 2) was refused as 'expected a bundled system
    name': say that the layout needs a system, and name the systems built of that device."""
    hw = cfg.hw
    if isinstance(hw, str) and hw not in list_systems():
        try:
            hw = load_hw(hw)
        except Exception:  # not a device either (a system YAML path, a typo): load_system says why
            return
    if not isinstance(hw, HardwareSpec):
        return
    systems = []
    for name in list_systems():
        try:
            if load_system(name).device.name == hw.name:
                systems.append(name)
        except Exception:  # pragma: no cover - a bundled system that does not load is its own test's failure
            continue
    label = ", ".join(f"{k}={v}" for k, v in dict(cfg.parallel).items()) if isinstance(cfg.parallel, dict) \
        else str(cfg.parallel)
    raise InputError(f"serve: parallel: got {label} with hw {hw.name!r}, a single device; expected a system for a "
                     f"TP/PP layout (CLI: --tp/--pp need --hw naming a system), "
                     + (f"e.g. {' or '.join(systems)} (built of {hw.name})" if systems else
                        f"a system YAML (no bundled system is built of {hw.name})")
                     + f"; bundled systems: {', '.join(list_systems())}")


def _device(cfg):
    """(device spec, system or None): a parallel layout runs on a system's devices."""
    if cfg.parallel is None:
        if isinstance(cfg.hw, SystemSpec) or (isinstance(cfg.hw, str) and cfg.hw in list_systems()):
            name = getattr(cfg.hw, "name", cfg.hw)
            raise InputError(f"serve: parallel: hw {name!r} is a system; give the replica's layout "
                             f"(parallel={{'tp': 2}}, CLI --tp/--pp) or name one device")
        return (cfg.hw if isinstance(cfg.hw, HardwareSpec) else load_hw(cfg.hw)), None
    _refuse_device_for_layout(cfg)
    system = cfg.hw if isinstance(cfg.hw, SystemSpec) else load_system(cfg.hw)
    layout = parse_layout(cfg.parallel, "serve: parallel")
    if layout.dp != 1 or layout.microbatches != 1 or layout.ep != 1:
        raise InputError(f"serve: parallel: got {cfg.parallel!r}; a serving replica is one TP x PP group "
                         f"(dp, ep and microbatches stay 1: use `replicas` for data parallelism)")
    if layout.devices > system.devices:
        raise InputError(f"serve: parallel: layout {layout.label()} needs {layout.devices} devices; system "
                         f"{system.name} has {system.devices}")
    return system.device, system


def _workload(cfg, model, layout_items):
    return Workload(model, cfg.weights, cfg.acts, cfg.kv, cfg.recipe, cfg.attention, cfg.profile, layout_items)


def _step_model(cfg, w, hw, system):
    """The device (or system) step-cost model, wrapped with the host model when one applies."""
    refuse_chunked_attention(w.model, "serve: model")
    steps = DeviceStepCost(w, hw, cfg.level, cfg.bucket, cfg.compute_fallback, system=system)
    why = steps.unchunkable if cfg.scheduler == "chunked" else None
    if why:  # refused before any step: the chunked scheduler splits any prompt its step budget cuts
        raise InputError(f"serve: recipe: got {cfg.recipe!r} with scheduler 'chunked' (CLI --scheduler chunked): "
                         f"{why}; expected an unchunked scheduler (continuous, static or disaggregated) or another "
                         f"recipe")
    if system is not None:
        L = parse_layout(cfg.parallel)
        steps.add_notes(f"parallel {L.label()} on {system.name}: each step is one device's sharded trace with its "
                        f"collectives priced on the system's links; KV capacity per device; energy: the replica's "
                        f"{L.tp * L.pp} devices ({L.tp} tensor-parallel copies of the trace"
                        + (f", plus the static power of the {L.tp * (L.pp - 1)} device(s) of the other stages, idle "
                           f"while one stage works; pipeline stages run one after another within a step, no "
                           f"overlap of micro-batches across stages)" if L.pp > 1 else ")"))
    host, cpu = cfg.host, calibrated_cpu_per_kernel(hw, cfg.level)  # hw: the device (a system's too)
    if host is None and cfg.profile and cpu is not None:
        from workloads.profiles import get_profile
        p = get_profile(cfg.profile)
        host = HostOverhead(prefill_graphs=False, decode_graphs=p.cuda_graphs, source=f"profile {p.name}")
    elif host is None and cfg.profile:  # as simulate: a device without the calibrated figure prices no host time
        where = (f"roofline (level analytical requested: {hw.name} has no calibration)" if cfg.level == "analytical"
                 else cfg.level)
        steps.add_notes(f"profile {cfg.profile}: kernels priced at level {where}; host launch time not priced (it "
                        f"needs level analytical's calibrated eager.cpu_per_kernel, or a `host` setting)")
    elif host is None and cpu is not None:
        # never silent: what a step is without a profile or host setting on a calibrated GPU
        steps.add_notes("no profile and no host setting: each step is a plain Hugging Face model's kernels (profile "
                        "eager's) priced as GPU time alone, without host launch or per-step time (--profile eager adds "
                        "its host launch time; --profile engine prices a serving engine's kernels, decode in CUDA "
                        "graphs, with host time; or a `host` setting)")
    return host_for(steps, host, hw, cfg.level) if host is not None else steps


def _beyond_context_note(cfg, model, specs) -> str | None:
    """A given context_window past the model's max_context is the serving run's opt-in (simulate, generate and
    plan need --allow-beyond-max-context): said, as their note says it (workloads.context.context_note)."""
    limit, window = model.max_context, cfg.context_window
    if not limit or window is None or window <= limit:
        return None
    ends = [r.prompt_len + r.output_len - 1 for r in specs]  # a request's largest step: _check_requests
    past = sum(e > limit for e in ends)
    head = (f"context_window {window:,} (given) is beyond {model.name}'s maximum context of {limit:,} positions "
            f"(max_context, from {model.source or 'its file'})")
    if not past:
        return f"{head}; no request reaches past it (the longest holds {max(ends, default=0):,} positions)"
    return (f"{head}; {past:,} of {len(specs):,} requests reach past it (the longest holds {max(ends):,} positions), "
            f"priced on request (context_window); the model was not trained there")


def _check_draft_model(target, draft) -> None:
    """A draft model proposes tokens the target verifies: both must share a tokenizer, and a draft is meant to be
    the cheaper of the two. A vocabulary-size mismatch (Llama-3 128,256 vs Qwen2.5 152,064) is refused: those
    token ids mean nothing to the target (an equal size does not prove the same tokenizer, e.g. Llama-2 and
    Mistral, both 32,000). A draft with more parameters than its target costs more per drafted token than the
    target's own step, and only failed as a KV capacity shortfall: refused, naming both counts."""
    if draft.vocab != target.vocab:
        raise InputError(f"serve: speculative.draft_model (CLI --draft-model): got {draft.name!r} with a vocabulary "
                         f"of {draft.vocab:,} tokens; expected a draft sharing target {target.name}'s tokenizer, "
                         f"its vocabulary of {target.vocab:,} tokens (speculative decoding verifies the draft's "
                         f"token ids with the target)")
    if draft.params > target.params:
        raise InputError(f"serve: speculative.draft_model (CLI --draft-model): got {draft.name!r} with "
                         f"{draft.params / 1e9:,.2f} B parameters; expected a draft no larger than target "
                         f"{target.name} ({target.params / 1e9:,.2f} B parameters): a larger draft costs more per "
                         f"drafted token than the target's own decode step")


def _draft(cfg, workload, hw, system):
    """The draft runs on one device; on a multi-device replica the others draw static power meanwhile."""
    s = cfg.speculative
    if s is None:
        return None, None
    dm = load_model(s.draft_model) if s.draft_model else None
    w = Workload(dm if dm is not None else workload.model,
                 s.draft_weights or workload.weights, workload.acts, s.draft_kv or workload.kv, None,
                 workload.attention)
    refuse_chunked_attention(w.model, "serve: speculative.draft_model")  # a draft it cannot price at all: first
    if dm is not None:
        _check_draft_model(workload.model, dm)
    devices = parse_layout(cfg.parallel).devices if system is not None else None
    return w, DeviceStepCost(w, hw, cfg.level, cfg.bucket, cfg.compute_fallback, replica_devices=devices)


def _check_stream(w, specs) -> None:
    """The stream holds requests, and none has a prompt the recipe cannot compress (H2O's ratios keeping no token
    of it): refused before the run, naming the request, not from inside it; the kept tokens grow with the prompt,
    so the shortest one tells."""
    from workloads.compression.eviction import NoTokenKept
    if not specs:
        raise InputError("serve: trace: the trace holds no requests")
    if not w.recipe:  # nothing to compress: no trace to build
        return
    shortest = min(specs, key=lambda r: r.prompt_len)
    try:
        w.trace("prefill", 1, shortest.prompt_len)
    except NoTokenKept as e:
        raise InputError(f"serve: prompt_len: request {shortest.rid} has a {shortest.prompt_len}-token prompt, "
                         f"which recipe {w.recipe!r} cannot compress: {e}") from None


def _stored_tokens(w, cap, specs) -> tuple:
    """(StoredTokens or None, its note): what a request's context occupies of the capacity where the recipe stores
    contexts at different rates, read at the run's shortest prompt and its shortest and longest request; None where
    each is within 1 % of the unit (StoredTokens.moves), said where the recipe changes the cache at all."""
    if not w.recipe:
        return None, None
    stored = StoredTokens(w, cap.bytes_per_token, cap.block_size)
    ends = [r.prompt_len + r.output_len - 1 for r in specs]
    prompts = [r.prompt_len for r in specs]
    # a prompt-only recipe (SnapKV) stores a context as its prompt sets it: the ends are prompts plus whole tokens
    if stored.moves([min(prompts), max(prompts)] + ([] if stored.prompt_only else [min(ends), max(ends)])):
        return stored, stored.note(prompts if stored.prompt_only else ends)
    if abs(stored.plain_bpt - stored.unit) <= 1e-9 * stored.unit:  # a weights-only recipe: nothing to say
        return None, None
    return None, (f"KV capacity: recipe {w.recipe} stores this run's contexts within 1 % of its rate at "
                  f"{ref_context(w.model):,} tokens ({stored.unit:,.0f} B/token): a request is charged one token of "
                  f"capacity a token")


def _check_requests(specs, cfg, caps, model, stored=None):
    """Every request can run: its positions fit the context window, a non-chunked scheduler can
    prefill its prompt in one step, and its KV fits a replica. The window is the rule the trace
    builder applies (workloads.context): a step holds at most `window` tokens of KV, the new
    ones included. A request's largest step is its last decode, which feeds output token
    output_len - 1 and holds prompt + output - 1 tokens (the last token is sampled, never fed
    back); with one output token it is the prefill, prompt tokens. So prompt + output - 1 <=
    window, as `cosim roofline --phase decode --seq max_context` (the new token at position
    max_context - 1) is the last decode step both accept."""
    window, where = cfg.context_window, "context_window"
    if window is None and model.max_context:  # the model's own limit unless one is given
        window, where = model.max_context, f"{model.name}'s max_context (set context_window to change it)"
    budget = token_budget(cfg, specs) if cfg.scheduler != "chunked" else None  # chunked prefill splits a prompt
    for r in specs:
        total = r.prompt_len + r.output_len
        if window and total - 1 > window:
            fld = "prompt_len" if r.prompt_len > window else "output_len"
            raise InputError(f"serve: {fld}: request {r.rid} has prompt {r.prompt_len} + output {r.output_len} = "
                             f"{total} tokens, so its largest step holds {total - 1} tokens of KV (prompt + output - "
                             f"1: the last output token is never fed back); expected at most {window} ({where})")
        if budget is not None and r.prompt_len > budget:
            raise InputError(f"serve: max_batched_tokens: got {budget} (the token budget of a step); expected at "
                             f"least request {r.rid}'s prompt of {r.prompt_len} tokens, which scheduler "
                             f"{cfg.scheduler} prefills in one step; raise max_batched_tokens or use scheduler "
                             f"chunked")
        for name, (cap, host_blocks) in caps.items():
            room = (cap.blocks + host_blocks) * cap.block_size
            draft = cfg.speculative.draft_len if cfg.speculative else 0
            held = stored(total + draft, r.prompt_len) if stored else total
            if held > room:
                of = f" ({held:,} of the capacity's at recipe {cfg.recipe}'s rate)" if stored else ""
                raise InputError(f"serve: kv capacity: request {r.rid} needs {total:,} tokens of KV{of} but "
                                 f"replica {name} holds {room:,} ({cap.source}); use a smaller request, more "
                                 f"memory, {'a recipe storing less' if cfg.recipe else 'a compressed KV recipe'} or "
                                 f"offload")


def _level_used(steps, draft) -> str:
    """The level(s) whose models priced the steps, read off the priced components (a device the
    level cannot do, or an op it hands on, is priced by the roofline); 'given' for a step model
    that does not say."""
    from hwmodels.levels import summarize_levels
    levels = {}
    for m in (getattr(steps, "inner", steps), draft):
        levels.update(getattr(m, "levels_used", None) or {})
    if not levels:
        return "given" if not isinstance(getattr(steps, "inner", steps), DeviceStepCost) else "none"
    return summarize_levels(levels)


def _provenance(steps, draft) -> tuple:
    """What the priced components' numbers rest on (their cost models' OpCost.provenance, in order of first
    use: a calibration, a transfer from a sibling GPU, fallback:uncalibrated...), as simulate's priced_from;
    for a step model that does not say, its type, given."""
    prov: dict = {}
    for m in (getattr(steps, "inner", steps), draft):
        prov.update(getattr(m, "provenance_used", None) or {})
    if not prov and not isinstance(getattr(steps, "inner", steps), DeviceStepCost):
        return (f"given: step model {type(getattr(steps, 'inner', steps)).__name__} (its own numbers)",)
    return tuple(prov)


def _attention_backends(step_model) -> list:
    """The attention backends a step model priced (DeviceStepCost.backends_used), sorted as simulate's; none for a
    given step model."""
    return sorted(getattr(step_model, "backends_used", None) or ())


def token_budget(cfg, specs) -> int:
    """Tokens a step may prefill: max_batched_tokens when given; for the static scheduler
    max_num_seqs x the longest prompt (it prefills a whole batch in one step, as HF generate runs
    a padded batch: the batch is bounded by max_num_seqs and the KV, not by a step budget); else
    512 chunked (Sarathi-Serve's), 8192 otherwise. The one rule: every replica takes its budget from here."""
    if cfg.max_batched_tokens is not None:
        return cfg.max_batched_tokens
    if cfg.scheduler == "static":
        return cfg.max_num_seqs * max(r.prompt_len for r in specs)
    return 512 if cfg.scheduler == "chunked" else 8192


def _static_budget_text(cfg, specs) -> str:
    return f"max_num_seqs {cfg.max_num_seqs} x the longest prompt {max(r.prompt_len for r in specs):,}"


_CAUSES = {"kv": "the KV cache (prompt + output reserved per request)",
           "max_batched_tokens": "the step token budget max_batched_tokens",
           "max_prefill_seqs": "max_prefill_seqs"}


def _batch_limit_notes(cfg, replicas, budget) -> list:
    """Never silent: static batches cut below max_num_seqs while requests waited, per cause."""
    batches = sum(r.static_batches.batches for r in replicas)
    merged: dict = {}
    for rep in replicas:
        for cause, (n, smallest) in rep.static_batches.limits.items():
            m = merged.get(cause, (0, smallest))
            merged[cause] = (m[0] + n, min(m[1], smallest))
    return [f"static batches: {n} of {batches} stopped below max_num_seqs ({cfg.max_num_seqs}) with requests waiting, "
            f"by {_CAUSES[cause]}" + (f" = {budget:,} tokens" if cause == "max_batched_tokens" else "")
            + f" (smallest such batch {smallest})" for cause, (n, smallest) in merged.items()]


def _nan_figure_notes(cfg, summary, df) -> list:
    """Never silent: why a summary figure is NaN (no SLO, no steady window, no arrival window)."""
    notes = []
    if summary.get("tpot_excluded"):
        notes.append(f"TPOT is undefined for the {summary['tpot_excluded']} of {summary['requests']} requests with "
                     f"one output token (NaN in requests.csv): the TPOT mean and percentiles are over the other "
                     f"{summary['tpot_requests']} (vLLM benchmark_serving's rule: output_len > 1), and such a request "
                     f"meets any TPOT SLO")
    if not has_window(summary["steady_window_s"]):  # the steady throughput figures are NaN: say why
        last = summary["arrival_window_s"] + float(df["arrival_s"].min())
        notes.append(f"no steady window: no request finished after the first ({summary['steady_start_s']:.3f} s) and "
                     f"by the last arrival ({last:.3f} s); throughput_window_* are NaN (more requests give one)")
    if cfg.slo_ttft_s is None and cfg.slo_tpot_s is None:
        notes.append(NO_SLO_NOTE)
    if not has_window(summary["arrival_window_s"]):
        notes.append("no arrival window: every request arrived at once, so goodput_window_req_s is NaN "
                     "(goodput_req_s over the makespan is the rate of such a batch)")
    return notes


def _capacity(cfg, w, hw, model, specs, budget, draft_w):
    """(KV capacity, the notes on memory, what a request's context occupies of it: _stored_tokens) of one replica:
    the engine's memory rule, the static scheduler's whole-batch budget, a checkpoint's declared weights, a draft
    model's weights."""
    try:
        cap = kv_capacity(w, hw, cfg.block_size, budget, cfg.kv_capacity_tokens, cfg.memory_fraction,
                          longest_prompt=max((r.prompt_len for r in specs), default=0))
    except KVMemoryError as e:  # the static budget's activations may be why; another refusal is said as it is
        if cfg.scheduler != "static" or cfg.max_batched_tokens is not None:
            raise
        raise InputError(f"{e} (scheduler static prefills a whole batch in one step: {_static_budget_text(cfg, specs)}; "
                         f"lower max_num_seqs or give max_batched_tokens)") from None
    notes = window_note(model)
    if cfg.kv_capacity_tokens is None:
        notes.append(fit_rule(hw, cfg.memory_fraction))
    if cfg.scheduler == "static":
        notes.append(f"static batches: up to max_num_seqs ({cfg.max_num_seqs}) requests whose prompt + output KV fits, "
                     f"prefilled in one step; step token budget {budget:,} ("
                     + ("max_batched_tokens, given" if cfg.max_batched_tokens is not None
                        else _static_budget_text(cfg, specs)) + "), its activations reserved in the KV capacity")
    wnote = declared_weights_note(model, cfg.weights)[1]  # a checkpoint's declared format: used or overridden
    if wnote:
        notes.append(wnote)
    if draft_w is not None and cfg.speculative.draft_model and cfg.kv_capacity_tokens is None:
        dw = draft_w.trace("decode", 1, 1).meta["footprint"]["weights"]
        cap = cap.__class__(max(0, cap.blocks - int(dw // (cap.block_size * cap.bytes_per_token))), cap.block_size,
                            cap.bytes_per_token, cap.memory_bytes, cap.weights_bytes + dw, cap.activations_bytes,
                            cap.source + f" - draft weights {dw / 2**30:.2f} GiB")
        notes.append("speculative: the draft model's own KV cache is not counted against capacity")
    stored, note = _stored_tokens(w, cap, specs)
    notes += [note] if note else []
    notes += [n for n in (prompt_only_note(w.recipe, "the decode steps' prices and each request's KV charge"),
                          prompt_budget_note(w.recipe, "the decode steps' prices and each request's KV charge")) if n]
    return cap, notes, stored


def _transfer_notes(cfg, steps) -> list:
    """What link transfers cost: a swap / offload stall the replica's static power, a hand-over time only."""
    notes = []
    if cfg.preemption == "swap" or cfg.offload:
        charged = ("the replica's static power over the stall" if hasattr(getattr(steps, "inner", steps), "stall_cost")
                   else "no energy (the given step model prices no stall)")
        notes.append(f"KV swap / offload transfers stall the step (bytes / {cfg.host_link} bandwidth, not overlapped "
                     f"with compute) and are charged {charged}; no link energy per byte (the hardware spec's "
                     f"interconnect entries give a bandwidth only)")
    if cfg.scheduler == "disaggregated":
        notes.append("KV hand-over (prefill -> decode replica) costs time only: it runs beside the replicas' steps, "
                     "and energy counts busy steps only; no link energy per byte (the spec gives a bandwidth only)")
    return notes


def serve(model, hw, step_model: StepCostModel | None = None, **options) -> ServeResult:
    """Simulate serving a request stream; options are `ServeConfig` fields.

    `step_model` replaces the device's step-cost model: anything with `step_cost(StepBatch)
    -> StepCost` and `notes` (a multi-device system, or step times fitted to measurements).
    Its energy is the whole replica's per step (not multiplied by a layout's tp). KV capacity
    still comes from `hw` and the workload."""
    t0 = time.perf_counter()
    cfg = ServeConfig(model=model, hw=hw, **options)
    model = load_model(cfg.model)
    hw, system = _device(cfg)
    w = _workload(cfg, model, tuple(sorted(cfg.parallel.items())) if cfg.parallel else None)
    steps = step_model if step_model is not None else _step_model(cfg, w, hw, system)
    if not isinstance(steps, StepCostModel):
        raise InputError(f"serve: step_model: got {type(steps).__name__}; expected an object with "
                         f"step_cost(StepBatch) -> StepCost and notes")
    draft_w, draft = _draft(cfg, w, hw, system)
    trace_notes: list = []  # a trace's rebased arrivals, its first N rows: said after the lengths
    specs = make_requests(cfg.requests, cfg.qps, cfg.arrival, cfg.burstiness, cfg.prompt_len, cfg.output_len,
                          cfg.lengths_from, cfg.trace, cfg.seed, notes=trace_notes)
    _check_stream(w, specs)
    budget = token_budget(cfg, specs)
    cap, notes, stored = _capacity(cfg, w, hw, model, specs, budget, draft_w)
    host_bw = _link(hw, cfg.host_link, "host_link") if (cfg.offload or cfg.preemption == "swap") else float("inf")
    kv_bw = _link(hw, cfg.kv_link, "kv_link") if cfg.scheduler == "disaggregated" else float("inf")
    host_blocks = int(cfg.offload.host_capacity // (cap.block_size * cap.bytes_per_token)) if cfg.offload else 0
    if cfg.scheduler == "disaggregated":
        layout = [("prefill", f"prefill{i}") for i in range(cfg.prefill_replicas)] + \
                 [("decode", f"decode{i}") for i in range(cfg.decode_replicas)]
    else:
        layout = [("both", f"replica{i}") for i in range(cfg.replicas)]
    notes.append(lengths_note(specs, cfg.prompt_len, cfg.output_len, cfg.lengths_from, cfg.trace))
    notes += trace_notes + [n for n in (order_note(specs, cfg.trace), _beyond_context_note(cfg, model, specs)) if n]
    _check_requests(specs, cfg, {name: (cap, host_blocks) for _, name in layout}, model, stored)

    def make(engine):
        return [Replica(engine, name, role, steps, PagedKV(cap.blocks, cap.block_size, host_blocks, stored), cfg,
                        cap.bytes_per_token, budget, draft) for role, name in layout]

    for m in (getattr(steps, "inner", steps), draft):  # the notes say what this run priced (a shared step model)
        if callable(getattr(m, "begin_run", None)):
            m.begin_run()
    eng = Engine(cfg, specs, make, host_bw, kv_bw, np.random.default_rng(cfg.seed + 1)).run()
    import pandas as pd

    df = request_table(eng.requests)
    # a step's energy is its replica's (DeviceStepCost: tp copies of the sharded trace plus the idle
    # stages' static power, as plan and sweeps count a layout); a given step_model's is taken as it is
    energy = sum(r.energy_j for r in eng.replicas)
    timeline = pd.DataFrame(eng.timeline)
    summary = summarize(df, energy, cfg.slo_ttft_s, cfg.slo_tpot_s, timeline)
    summary["steps"] = sum(r.n_steps for r in eng.replicas)
    summary["level_used"] = _level_used(steps, draft)
    # one text, as a sweep row's `provenance` column: requests.csv and summary.json carry it (issue 11)
    priced_from = _provenance(steps, draft)
    summary["provenance"] = "; ".join(priced_from)
    # the backend(s) that priced attention (None: the level prices one attention whatever the library), as
    # simulate's inputs.attention_backend: a requests.csv and sweep-row column (issue 11)
    summary["attention_backend"] = ", ".join(_attention_backends(getattr(steps, "inner", steps))) or None
    if draft is not None:  # the draft's own: it is priced without the profile (_draft), so never credited to it
        summary["draft_attention_backend"] = ", ".join(_attention_backends(draft)) or None
    if step_model is None:  # the label plan and sweeps give (energy_scope_label): full, dynamic only, or unknown
        from cosim.energy_scope import energy_scope_label
        summary["energy_scope"] = energy_scope_label(hw.energy_scope, energy)
        if hw.energy_scope:  # no static power in the device file: never a silent 0 W
            from cosim.simulate import static_energy_note
            notes += static_energy_note(hw)
    notes += list(steps.notes) + (list(draft.notes) if draft else [])
    n_priced = len(getattr(getattr(steps, "inner", steps), "_cache", ()))
    notes.append(f"step costs: {summary['level_used']} model, {n_priced} distinct step components priced"
                 + (f" (shapes bucketed at {cfg.bucket:.0%})" if cfg.bucket else " (exact shapes)")
                 if step_model is None else f"step costs: {type(steps).__name__} (given; its energy is taken "
                                            f"as the replica's, unscaled)")
    notes += _transfer_notes(cfg, steps)
    notes += _batch_limit_notes(cfg, eng.replicas, budget)
    notes += _nan_figure_notes(cfg, summary, df)
    return ServeResult(cfg, df, summary, timeline, {name: cap for _, name in layout},
                       tuple(dict.fromkeys(notes)), time.perf_counter() - t0, n_priced,
                       priced_formats=dict(getattr(getattr(steps, "inner", steps), "formats", None) or {}),
                       priced_from=priced_from)
