"""Step-time model: what one scheduler step costs, asked of the existing cost models.

A serving step runs a *mixed batch*: prefill chunks (c new tokens after `ctx` cached
ones) and decoding sequences (one new token each, or k+1 when speculative decoding
verifies k drafted tokens), each with its own KV length. No trace builder emits such a
batch in one piece, but every op of it already exists in the builder's traces, and every
cost model prices ops independently (latency and energy add over ops). So a step is
composed from builder ops and priced by `hwmodels.estimate.estimate_ops` at the chosen
level — this module never computes a cost itself:

- token-wise ops (projections, MLP/MoE, norms, KV write, per-token recipe work): their
  shape depends only on the number of tokens T in the step, taken from a trace of T
  tokens (decode trace batch=T, or the prefill trace of T tokens when the step holds
  prefill work; under FastKV's token-selective propagation a step's decode tokens run every
  layer beside the prompt's selected ones, DeviceStepCost._tsp_mixed_ops);
- head ops (final norm, LM head): one row per sequence that emits a token;
- context ops (attention and the recipe ops that read the cache): for the decoding
  sequences, the decode trace at their mean KV length (attention traffic and FLOPs are
  linear in batch x KV length, so the mean is exact for a linear op); for each prefill
  chunk, the prefill trace's attention at q_len=c, kv_len=ctx+c, plus the other context
  ops as the engine runs them, by the flag the recipe or builder sets on the op
  (workloads.ops): once-a-prompt work (PER_PROMPT: a prompt recipe's selection, ZipCache's
  probe, GEAR's prompt compression) at the whole prompt's length on the chunk completing it;
  work over every token so far (OVER_CONTEXT: MLA's kv_b_proj) at ctx + c on every chunk;
  per-token work (a KIVI quantize) of a c-token prefill, each chunk its own share
  (DeviceStepCost._chunk_ops).

Which ops are context ops is found, not listed: ops that change between two decode
traces differing only in context length, plus ops only the prefill trace has.

Speed: components are cached by bucketed shape. `bucket=0` prices exact shapes;
`bucket=r` rounds token counts and KV lengths above 64 to a geometric grid of relative
step r and prices at the grid point (error <= r/2 on that component, plus at most 4 tokens:
a multiple of 8 is priced at one, any other length at another).

A multi-device system plugs in through `StepCostModel`: anything with `step_cost(batch)
-> StepCost` and `notes` (a tensor/pipeline-parallel system would shard the same
composed ops and add the collectives its layout emits).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Protocol, runtime_checkable

import numpy as np

from cosim import parallel_timing
from hwmodels.collectives import estimate_system_ops
from hwmodels.estimate import LEVELS, estimate_ops
from hwmodels.gpu_params import UNFUSED_ALIGN as ALIGN  # elements: 16 bytes of bf16, a vectorised load
from hwmodels.levels import priced_level
from hwmodels.spec import HardwareSpec, load_hw
from hwmodels.system import SystemSpec
from workloads.builder import build_trace
from workloads.io import InputError
from workloads.models import ModelSpec, load_model
from workloads.ops import OVER_CONTEXT, PER_PROMPT
from workloads.parallel import parse_layout

__all__ = ["StepBatch", "StepCost", "StepCostModel", "DeviceStepCost", "Workload", "ATTENTION_KINDS",
           "refuse_chunked_attention", "straddles_window"]

ATTENTION_KINDS = frozenset({"attention"})
_REF_KV = (1024, 2048)  # two context lengths that tell context ops from token-wise ones


@dataclass(frozen=True)
class Workload:
    """What is served: model, number formats, compression recipe."""
    model: ModelSpec
    weights: str | None = None  # None: the checkpoint's declared format, else bf16 (build_trace)
    acts: str = "bf16"
    kv: str = "bf16"
    recipe: str | None = None
    attention: str = "fused"
    profile: str | None = None  # implementation profile (workloads.profiles): the kernels a stack launches
    parallel: tuple | None = None  # TP/PP layout as sorted (key, value) pairs: one device's sharded trace

    def prompt_part(self, seq: int):
        """The `seq`-token prefill trace of a part of a longer prompt (a chunk that does not complete it, a step's
        token count, a step budget's activations): H2O's ratios refuse a *prompt* they keep no token of (a 4-token
        first chunk), and a part is none: it keeps every token (keeping_every_token; H2O evicts once, after the whole
        prompt, whose trace prices the selection and gather). Otherwise the workload's own trace."""
        from workloads.compression.eviction import NoTokenKept
        try:
            return self.trace("prefill", 1, seq)
        except NoTokenKept:
            return self.every_token_kept(seq)

    def every_token_kept(self, seq: int):
        """The `seq`-token prefill trace with each H2O part keeping every token (what a refused part is priced by)."""
        from workloads.compression.eviction import keeping_every_token
        from workloads.compression.recipe import load_recipe
        return self.trace("prefill", 1, seq, keeping_every_token(load_recipe(self.recipe), seq))

    def trace(self, phase: str, batch: int, seq: int, recipe=None, prompt_len: int | None = None):
        """`recipe`: another form of the workload's (a prompt's part: prompt_part), else its own; `prompt_len`: a
        decode step's prompt tokens of its `seq` (build_trace; None: all of them)."""
        # internal pricing traces: `seq` is a step's token count or a KV length, not a user's
        # context; serve() refuses requests beyond the model's maximum context (_check_requests)
        return build_trace(self.model, phase=phase, batch=batch, seq=seq, weights=self.weights,
                           acts=self.acts, kv=self.kv, recipe=recipe or self.recipe, attention=self.attention,
                           profile=self.profile, parallel=dict(self.parallel) if self.parallel else None,
                           allow_beyond_max_context=True, prompt_len=prompt_len)

    @property
    def prompt_only(self) -> bool:
        """Whether a part of the recipe compresses the prompt alone (SnapKV, FastKV), so that a decode step's price
        and cache depend on its prompt length, not its context alone."""
        from workloads.compression.recipe import prompt_only_parts
        return bool(prompt_only_parts(self.recipe))


@dataclass(frozen=True)
class StepBatch:
    """One scheduler step. prefill: (new tokens, cached tokens before them, completes
    the prompt?) per chunk; decode_kv: KV length (new tokens included) per decoding
    sequence; tokens_per_decode: new tokens per decoding sequence (k+1 when verifying
    k drafted tokens); decode_prompt: how many of each decoding sequence's KV tokens its
    (last) prefill wrote, the rest generated (empty: all of them; only a recipe compressing
    the prompt alone, SnapKV or FastKV, prices them apart)."""
    prefill: tuple = ()
    decode_kv: tuple = ()
    tokens_per_decode: int = 1
    decode_prompt: tuple = ()

    @property
    def tokens(self) -> int:
        return sum(c for c, _, _ in self.prefill) + self.tokens_per_decode * len(self.decode_kv)

    @property
    def sequences_emitting(self) -> int:
        return len(self.decode_kv) + sum(1 for _, _, last in self.prefill if last)


@dataclass(frozen=True)
class StepCost:
    latency_s: float
    energy_j: float
    kernels: float = 0.0  # kernel launches of the step (host-overhead models need them)

    def __add__(self, other: "StepCost") -> "StepCost":
        return StepCost(self.latency_s + other.latency_s, self.energy_j + other.energy_j,
                        self.kernels + other.kernels)


ZERO = StepCost(0.0, 0.0)


@runtime_checkable
class StepCostModel(Protocol):
    """What the serving engine needs from hardware: the cost of one step."""
    notes: tuple

    def step_cost(self, batch: StepBatch) -> StepCost: ...


# the phase whose work a cached component prices, by its key's kind ("tok": its prefill flag; "head", the lm_head of
# the sequences emitting a token, serves both phases: none)
_PHASE_OF = {"pctx": "prefill", "dctx": "decode", "dfull": "decode", "dwin": "decode"}


def phase_named(notes: list, prefill: list, decode: list) -> list:
    """A note one phase gave under a heading the other phase's notes also use names its phase (an eager attention
    priced as 8 kernels in prefill and 7 in decode read as a contradiction); a note about the whole run stays as
    it is. `generate` and `serve` (DeviceStepCost.notes) label them alike."""
    head = lambda n: n.split(":", 1)[0] if ":" in n else None
    pre_heads, dec_heads = {head(n) for n in prefill} - {None}, {head(n) for n in decode} - {None}
    return [f"prefill: {n}" if n in prefill and n not in decode and head(n) in dec_heads else
            f"decode steps: {n}" if n in decode and n not in prefill and head(n) in pre_heads else n for n in notes]


@lru_cache(maxsize=1 << 16)
def bucketed(x: int, r: float) -> int:
    """x on a geometric grid of relative step r (exact up to 64 or when r == 0);
    memoised: a 10,000-request run asks for the same few thousand values a million times."""
    if r <= 0 or x <= 64:
        return int(x)
    step = math.log1p(r)
    g = max(65, int(round(math.exp(round(math.log(x) / step) * step))))
    # an aligned length stays aligned, an unaligned one unaligned: kernels, and the calibrated GPU model's classes,
    # price multiples of ALIGN (8) apart (a 4,096-token prompt bucketed to 4,093 took 20 % longer on the H100's model)
    if x % ALIGN == 0:
        return max(64 + ALIGN, ALIGN * round(g / ALIGN))  # 64: exact below, and a multiple of ALIGN
    return g + 1 if g % ALIGN == 0 else g


@dataclass
class DeviceStepCost:
    """Step costs of one workload on one device at one level, cached by bucketed shape."""
    workload: Workload
    hw: HardwareSpec
    level: str = "roofline"
    bucket: float = 0.0
    compute_fallback: bool = False
    system: SystemSpec | None = None  # set with a parallel workload: its device is `hw`
    # devices powered during a step (None: the workload layout's tp x pp, else 1). The step's energy
    # is the replica's: tp copies of the priced (one tp shard's) trace, plus the static power of the
    # device-seconds it leaves idle: (devices - tp) x the step (a pipeline's other stages; the rest
    # of the replica while a one-device draft runs)
    replica_devices: int | None = None
    _cache: dict = field(default_factory=dict, repr=False)
    _ctx_ops: dict = field(default_factory=dict, repr=False)
    _btab: np.ndarray | None = field(default=None, repr=False)
    # the recipe compresses the prompt alone (Workload.prompt_only): decode steps are priced at their prompts too
    prompt_only: bool = field(default=False, init=False, repr=False)
    _kept: dict = field(default_factory=dict, init=False, repr=False)  # prompt on the grid -> tokens it keeps
    # the notes of the pricing setup (a layout, a profile: add_notes), kept for every run; the run's notes add
    # the cost models' notes of the components it priced and the chunk rules of what it priced chunked (`notes`)
    _notes: tuple = field(default=(), init=False, repr=False)
    # per cached component (the _cache's keys): (the cost models' notes, the levels that priced it, their provenance,
    # the attention backends priced), so a run that finds the price in the cache reports them as one that computed it
    # (`_cached`)
    _priced: dict = field(default_factory=dict, init=False, repr=False)
    # the run's record (since begin_run) of the cost models' notes of what it priced, computed or cached; with
    # `levels_used` (its levels). Before session 19 both accumulated over every run of a shared step model
    _run_notes: dict = field(default_factory=dict, init=False, repr=False)
    # the run's record (since begin_run) of the phase(s), prefill or decode, whose components gave each cost-model
    # note: `notes` names the phase of a note one phase gave under a heading the other's notes share (phase_named)
    _run_phases: dict = field(default_factory=dict, init=False, repr=False)
    # components being priced now (a component's make may price others): each gathers what its pricing used
    _recording: list = field(default_factory=list, init=False, repr=False)
    # the run's record (since begin_run) of the context lengths ctx + c (bucketed) of the prefill chunks it
    # priced as part of a split prompt, whether their price was computed or found in the cache
    _chunked: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self):
        if self.level not in LEVELS:
            raise InputError(f"serve: level: got {self.level!r}; expected one of {LEVELS}")
        if not (isinstance(self.bucket, (int, float)) and 0 <= self.bucket < 1):
            raise InputError(f"serve: bucket: got {self.bucket!r}; expected a relative step in [0, 1)")
        w = self.workload
        from workloads.compression.recipe import prompt_only_parts
        self._prompt_parts = prompt_only_parts(w.recipe)
        self.prompt_only = bool(self._prompt_parts)  # a decode step's price reads its prompt too (_decode_lengths)
        self._kept_only = self.prompt_only and self._reads_kept_only()
        # the reference steps grow their cache with the context: a prompt-only recipe's are read after a 1-token
        # prompt (its budget capped both at 1,024 tokens, so the ops reading its cache looked token-wise)
        first = 1 if self.prompt_only else None
        a, b = (w.trace("decode", 1, s, prompt_len=first) for s in _REF_KV)
        self._ref_ops = a.ops  # the decode step static_power_w is read from
        # the number formats the steps are priced in (build_trace's: unset weights resolved to the
        # checkpoint's declared format, else bf16): what the run's outputs report (serving.output)
        self.formats = dict(a.meta["formats"])
        # attention is context work even where a recipe caps the cache (SnapKV's budget)
        same = {op.name for op in a.ops if op in b.ops and op.kind not in ATTENTION_KINDS}
        # a windowed layer's ops (found, not listed): they grow with the KV length up to the window W
        # and stop there (traces at W // 2, W, W + 1); they read min(S, W) keys a sequence
        self.window_names = frozenset()
        W = self.decode_window
        if W is not None and W >= 2:
            lo, at, hi = (w.trace("decode", 1, s, prompt_len=first).ops for s in (W // 2, W, W + 1))
            self.window_names = frozenset(op.name for op in at if op not in lo and op in hi)
        same -= self.window_names  # context work even where the window is below both reference lengths
        # every op not token-wise is context work, priced at the step's KV: one that only a longer context makes (a
        # recipe's selection past its budget, RocketKV's top-k at 2,048 but not 1,024) included (is_context_op)
        self.context_names = frozenset(op.name for op in (*a.ops, *b.ops) if op.name not in same)
        self.token_names = frozenset(same)
        layout = parse_layout(dict(w.parallel)) if w.parallel else None
        self.copies = layout.tp if layout else 1
        self.devices = self.replica_devices or (layout.tp * layout.pp if layout else 1)
        self.levels_used: dict = {}  # the levels whose models priced the components (ordered set)
        # what those models' numbers rest on (OpCost.provenance: a calibration, a transfer, fallback:...),
        # ordered set: every serving row says it, as simulate's priced_from does (issue 11)
        self.provenance_used: dict = {}
        # the attention backends the level priced (OpCost.details: the calibrated GPU model's fa2, cudnn, unfused...;
        # empty where the level prices one attention whatever the library), ordered set, as simulate's inputs
        self.backends_used: dict = {}
        # the analytical level parses the device calibration on every call: parse it once
        self._gpu_params = None
        if self.level == "analytical" and self.system is None:
            from hwmodels import gpu
            from hwmodels.level_registry import MODULES
            if MODULES["analytical"] == gpu.__name__ and gpu.applicable(self.hw)[0]:
                self._gpu_params = gpu.params_for(self.hw)

    # ---- pricing (the only place costs are asked for) ----------------------
    def _estimate(self, ops):
        """(costs, notes) of `ops` on this device (or system) at this level."""
        if self.system is not None:  # collectives on the system's links, the rest on its device
            return estimate_system_ops(ops, self.system, self.level, self.compute_fallback)
        if self._gpu_params is not None:  # what estimate_ops does, without re-parsing the calibration
            from hwmodels import gpu
            costs, notes = gpu.estimate_trace(ops, self.hw, self.compute_fallback, params=self._gpu_params)
            return costs, tuple(notes) + self.hw.notes  # the spec's own notes, as estimate_ops adds them
        return estimate_ops(ops, self.hw, self.level, self.compute_fallback)

    def _price(self, ops) -> StepCost:
        ops = list(ops)
        if not ops:
            return ZERO
        costs, notes = self._estimate(ops)
        self._use(notes, tuple(dict.fromkeys(priced_level(c, self.level) for c in costs)),
                  tuple(dict.fromkeys(str(c.provenance) for c in costs)),
                  tuple(dict.fromkeys(c.details["attention_backend"] for c in costs
                                      if c.details.get("attention_backend"))))
        lat = sum(c.latency_s * o.repeat for o, c in zip(ops, costs))
        energy = sum(c.energy_j * o.repeat for o, c in zip(ops, costs))
        if self.devices != 1 or self.copies != 1:  # the replica's energy (see replica_devices)
            energy = self.copies * energy + self.static_power_w * (self.devices - self.copies) * lat
        return StepCost(lat, energy, sum(c.details.get("kernels", 1) * o.repeat for o, c in zip(ops, costs)))

    def add_notes(self, *notes: str) -> None:
        """Notes of the pricing setup (a layout, a profile) and of the cost models, kept once each in order."""
        self._notes = tuple(dict.fromkeys(self._notes + notes))

    def _use(self, notes, levels, provenance=(), backends=()) -> None:
        """Record a priced component's cost-model notes, levels, provenance and attention backends in the run's
        record and in each component being priced around it."""
        for record in [(self._run_notes, self.levels_used, self.provenance_used, self.backends_used),
                       *self._recording]:
            for into, got in zip(record, (notes, levels, provenance, backends)):
                into.update(dict.fromkeys(got))

    def begin_run(self) -> None:
        """Start a run's record (serve calls it before its engine runs) of the cost models' notes and levels of
        what it prices and of what it prices chunked: a step model shared by two runs, or reused with its
        cache, says of each run only what that run priced."""
        self._chunked = {}
        self._run_notes = {}
        self._run_phases = {}
        self.levels_used = {}
        self.provenance_used = {}
        self.backends_used = {}

    @property
    def notes(self) -> tuple:
        """The notes of the pricing setup, the cost models' notes of the components the run priced, then one
        per rule by which the run's split prompts priced their non-attention context ops (`_chunk_notes`): a
        deterministic function of what this run priced (since begin_run), whether each price was computed or
        came from the cache."""
        run = list(self._run_notes)
        of = lambda phase: [n for n in run if phase in self._run_phases.get(n, ())]
        return tuple(dict.fromkeys(self._notes + tuple(phase_named(run, of("prefill"), of("decode")))
                                   + self._chunk_notes()))

    @cached_property
    def static_power_w(self) -> float:
        """One device's static power (W), one figure for the whole run: what the priced device ops of one
        decode step (batch 1 at KV 1024, the reference trace __post_init__ builds) carry, by the rule
        `simulate` uses (parallel_timing.device_static_power_w: their static J over their seconds), else
        the device file's `energy.static_power`, 0 W where it gives none. Every device op of a level
        carries the same power (the analytical level's calibrated `energy.static`, the cycle level's
        file figure; the roofline reports no static term, so the file's), so one step tells it; read
        on first use (a one-device run without stalls or host time never needs it)."""
        costs, _ = self._estimate(self._ref_ops)  # not a step of the run: its notes and levels are not the run's
        return parallel_timing.device_static_power_w(self._ref_ops, costs, self.hw)

    def stall_cost(self, seconds: float) -> StepCost:
        """A step stalled `seconds` on a transfer not hidden behind compute (a KV swap, an offloaded
        KV fetch over the host link): every device of the replica waits, powered, so the stall draws
        the replica's static power: devices x static_power_w x seconds (0 W where the device file
        gives none, every energy then dynamic only and labelled so), as a collective does
        (hwmodels.collectives.with_static_power). No link energy per byte: a device file's
        interconnect entries give a bandwidth only."""
        return StepCost(seconds, self.static_power_w * self.devices * seconds)

    def _cached(self, key, make):
        """The component's price, computed once; its notes, levels and provenance join the run's record on every
        use."""
        hit = self._cache.get(key)
        if hit is None:
            self._recording.append(({}, {}, {}, {}))
            try:
                hit = self._price(make())
            finally:
                record = self._recording.pop()
            self._cache[key] = hit
            self._priced[key] = tuple(tuple(r) for r in record)
        else:
            self._use(*self._priced[key])
        phase = ("prefill" if key[2] else "decode") if key[0] == "tok" else _PHASE_OF.get(key[0])
        if phase:
            for n in self._priced[key][0]:
                self._run_phases.setdefault(n, set()).add(phase)
        return hit

    @property
    def decode_window(self) -> int | None:
        """The sliding window of a model with windowed layers (None: none): a windowed layer's decode reads
        min(S, W) keys per sequence, not linear in S: a decode batch straddling W prices its windowed
        ops at the mean of min(S, W) (step_cost)."""
        m = self.workload.model
        return m.sliding_window if getattr(m, "window_layers", 0) else None

    # ---- components -----------------------------------------------------------
    def token_cost(self, tokens: int, prefill: bool, decode_tokens: int = 0) -> StepCost:
        """Token-wise ops of a step of `tokens` tokens (`decode_tokens` of them decoding sequences' tokens when
        the step also prefills). A recipe with token-selective propagation (FastKV, ops marked tsp_after) runs
        the layers after its selection layer on the selected prompt tokens only, never on fewer decode tokens:
        a mixed step is priced by `_tsp_mixed_ops`."""
        t = bucketed(tokens, self.bucket)
        if prefill and decode_tokens and self.tsp_rate is not None:
            d = min(bucketed(decode_tokens, self.bucket), t)
            return self._cached(("tok", t, prefill, d), lambda: self._tsp_mixed_ops(t - d, d))
        def make():
            tr = self.workload.prompt_part(t) if prefill else self.workload.trace("decode", t, _REF_KV[0])
            return [o for o in tr.ops if o.name in self.token_names and o.group != "head"]
        return self._cached(("tok", t, prefill), make)

    @cached_property
    def tsp_rate(self) -> float | None:
        """The fraction of a prompt's tokens a token-selective propagation recipe (FastKV) runs through the
        layers after its selection layer (its tsp_rate parameter, as the recipe's effects record it), or None
        when the prefill trace marks no op tsp_after."""
        tr = self.workload.trace("prefill", 1, _REF_KV[0])
        if not any(o.dims.get("tsp_after") for o in tr.ops):
            return None
        rates = {float(e["parameters"]["tsp_rate"]) for e in tr.meta.get("recipe_effects", {}).values()
                 if isinstance(e, dict) and "tsp_tokens" in e}
        return self._one_tsp(rates, "tsp_rate", "parameter")

    def _one_tsp(self, found: set, what: str, how: str):
        """The one value of a token-selective propagation recipe's `what`, or one InputError naming the recipe."""
        if len(found) != 1:
            raise InputError(f"serve: recipe: got {self.workload.recipe!r}, whose prefill trace marks ops tsp_after "
                             f"(token-selective propagation) with {len(found)} {what} {how}s "
                             f"({', '.join(map(repr, sorted(found))) or 'none'} in its recipe effects); expected "
                             f"exactly one token-selective propagation recipe (FastKV) recording one {what}")
        return next(iter(found))

    def _tsp_tokens(self, seq: int):
        """(the seq-token prefill trace, the prompt tokens its TSP propagates past the selection layer)."""
        from workloads.compression.propagation import propagated_tokens
        tr = self.workload.trace("prefill", 1, seq)
        n = propagated_tokens(tr)
        if n is None:
            self._one_tsp(set(), "tsp_tokens", "count")  # marks ops tsp_after but records no count: one error
        return tr, n

    def _tsp_mixed_ops(self, p: int, d: int):
        """Token-wise ops of a step prefilling p prompt tokens beside d decode tokens under token-selective
        propagation. The layers up to the selection layer run all p + d tokens (the (p + d)-token prefill
        trace's ops not marked tsp_after); the later layers run the prompt's selected tokens, the recipe's
        tsp_tokens(p) = ceil(rate x p), plus every decode token, whose own layers are never skipped: the
        tsp_after ops of the prefill trace that propagates exactly tsp_tokens(p) + d tokens (the trace of
        floor((tsp_tokens(p) + d - 1) / rate) + 1 tokens, the fewest that propagate as many; checked on the
        trace's own count, and on every tsp_after op's token dimension, `_check_tsp_rows`). Before session 17
        the step priced the (p + d)-token trace whole, so the later layers ran ceil(rate x (p + d)) tokens: most
        decode tokens skipped them."""
        tok = lambda o: o.name in self.token_names and o.group != "head"
        before = [o for o in self.workload.trace("prefill", 1, p + d).ops if tok(o) and not o.dims.get("tsp_after")]
        rows = (self._tsp_tokens(p)[1] if p else 0) + d
        seq = int(math.floor((rows - 1) / self.tsp_rate)) + 1
        for s in (seq, seq - 1, seq + 1):  # the float rounding of rows / rate, either side
            tr, n = self._tsp_tokens(max(1, s))
            if n == rows:
                after = [o for o in tr.ops if tok(o) and o.dims.get("tsp_after")]
                self._check_tsp_rows(after, rows)
                return before + after
        raise InputError(f"serve: recipe: got {self.workload.recipe!r} with tsp_rate {self.tsp_rate}: no prefill "
                         f"trace of {seq - 1} to {seq + 1} tokens propagates {rows} tokens past the selection layer "
                         f"(the {p}-token prompt's {rows - d} plus {d} decode tokens); expected a tsp_rate whose "
                         f"ceil(tsp_rate x tokens) reaches every count")

    def _check_tsp_rows(self, ops, rows: int) -> None:
        """Every tsp_after token op runs the `rows` propagated tokens: its token dimension (a GEMM's m, a
        router's tokens, an elementwise op's rows, an attention's q_len) is `rows`, or for a routed-expert op
        (top_k in its dims) the rows x top_k token-expert pairs (within one pair for a fractional top_k).
        Otherwise one InputError naming the recipe and the op (before session 17 FastKV on a MoE model left the
        expert activation at the full prompt's pairs). A sharded workload's ops hold one rank's token share (a
        sequence-parallel shard, an expert-parallel rank's pairs): checked where they are made instead
        (workloads.parallel runs tsp_after ops on the propagated tokens), not here."""
        if self.workload.parallel:
            return
        for o in ops:
            key = next((k for k in ("m", "tokens", "rows", "q_len") if k in o.dims), None)
            if key is None:
                continue
            got, k = float(o.dims[key]), o.dims.get("top_k")
            ok = got == rows if k is None else abs(got - rows * float(k)) <= (0 if float(k).is_integer() else 1)
            if not ok:
                want = f"{rows}" if k is None else f"{rows} x top_k {k} = {rows * float(k):g}"
                raise InputError(f"serve: recipe: got {self.workload.recipe!r}: op {o.name!r} after the selection "
                                 f"layer (tsp_after) runs {key} = {o.dims[key]}; expected the {rows} propagated "
                                 f"tokens ({key} = {want}): the recipe does not scale this op to the propagated "
                                 f"tokens")

    def head_cost(self, seqs: int) -> StepCost:
        n = bucketed(seqs, self.bucket)
        return self._cached(("head", n), lambda: [o for o in self.workload.trace("decode", n, _REF_KV[0]).ops
                                                  if o.name in self.token_names and o.group == "head"])

    def decode_context_cost(self, seqs: int, mean_kv: float, mean_prompt: float | None = None) -> StepCost:
        """Context ops of `seqs` decoding sequences at mean KV `mean_kv`, `mean_prompt` of it their prompts' (None:
        all of it; read only by a recipe compressing the prompt alone: _decode_lengths)."""
        return self._decode_context_at(bucketed(seqs, self.bucket), *self._decode_point(mean_kv, mean_prompt))

    def _decode_point(self, mean_kv: float, mean_prompt: float | None) -> tuple:
        """(KV, prompt or None) a decode step's context ops are built at, on the grid. With a prompt (a recipe
        compressing the prompt alone) the prompt and the generated tokens are each put on the grid and summed: the
        step reads the prompt's kept tokens plus every generated one, so the grid's error on the generated tokens is
        relative to them, not to the whole context (30,000 tokens after a 29,800-token prompt read 200 generated
        ones; bucketing the two lengths apart priced 592)."""
        if mean_prompt is None:
            return bucketed(max(1, int(round(mean_kv))), self.bucket), None
        prompt = bucketed(max(1, int(round(mean_prompt))), self.bucket)
        generated = max(0, int(round(mean_kv - mean_prompt)))
        generated = bucketed(generated, self.bucket) if generated else 0
        return prompt + generated, prompt  # no token generated yet still reads the prompt (RocketKV's reserve empty)

    def is_context_op(self, name: str) -> bool:
        """Whether a decode step's op is context work (priced at the step's KV lengths): any op that is not token-wise
        (the same at both reference lengths), so an op only a longer context makes is never dropped (RocketKV's
        selection ops were in neither set and went unpriced: 0.026 of a 4.53 ms step)."""
        return name not in self.token_names

    def _decode_lengths(self, batch: StepBatch) -> tuple:
        """(KV lengths, mean prompt or None) a decode batch's context ops are priced at. A recipe compressing the
        prompt alone keeps each sequence's prompt share and its generated tokens whole: where its decode step
        depends on that count alone (_reads_kept_only), each sequence is its kept tokens K(P) + (S - P), a cache
        holding them whole (a 1-token prompt), so the batch is priced at their mean as any cache is; else at the
        mean prompt and mean generated tokens (_decode_point). Without prompts, or without such a recipe: the KV
        lengths alone."""
        kv = batch.decode_kv
        if not batch.decode_prompt or not self.prompt_only:
            return kv, None
        if self._kept_only:
            return tuple(self._prompt_kept(p) + k - p for k, p in zip(kv, batch.decode_prompt)), 1.0
        return kv, sum(batch.decode_prompt) / len(batch.decode_prompt)

    def _prompt_kept(self, prompt: int) -> int:
        """Tokens the recipe's prompt-only part keeps of a `prompt`-token prompt (its kept_tokens in the decode trace
        there as one prompt: a later part's cut applies again to the kept and generated tokens, so it is not
        counted here), once a length on the grid."""
        p = bucketed(int(prompt), self.bucket)
        hit = self._kept.get(p)
        if hit is None:
            effects = self.workload.trace("decode", 1, p).meta["recipe_effects"]
            hit = self._kept[p] = int([effects[n]["kept_tokens"] for n in self._prompt_parts][-1])
        return hit

    def _reads_kept_only(self) -> bool:
        """Whether the recipe's decode step after a prompt is the step of a cache holding its kept tokens whole: its
        ops at 4,096 + 100 tokens after a 4,096-token prompt, and at 16,384 + 4,096 after 16,384, equal its ops at K
        + 100 (K + 4,096) tokens after a 1-token prompt (K: what its prompt-only part keeps of the prompt). True for
        SnapKV and FastKV, alone or with a KV format; False where another part reads the whole context (snapkv+h2o:
        H2O's budget is a share of it)."""
        w = self.workload
        for prompt, generated in ((4096, 100), (16384, 4096)):
            after = w.trace("decode", 1, prompt + generated, prompt_len=prompt)
            whole = w.trace("decode", 1, self._prompt_kept(prompt) + generated, prompt_len=1)
            if list(after.ops) != list(whole.ops):
                return False
        return True

    def decode_lengths(self, kv: tuple, prompts: tuple) -> tuple:
        """The KV lengths a decode batch of these KV lengths and prompts is priced at (_decode_lengths): what the
        engine's fast path checks a window against."""
        return self._decode_lengths(StepBatch((), tuple(kv), 1, tuple(prompts)))[0]

    def _decode_context_at(self, n: int, kv: int, prompt: int | None = None) -> StepCost:
        """Context ops of n sequences at mean KV kv (`prompt` of it prompt tokens; None: all), on the grid."""
        key = ("dctx", n, kv) if prompt is None else ("dctx", n, kv, prompt)
        return self._cached(key, lambda: [o for o in self.workload.trace("decode", n, kv, prompt_len=prompt).ops
                                          if self.is_context_op(o.name)])

    def _decode_straddle_cost(self, seqs: int, mean_kv: float, mean_window_kv: float,
                              mean_prompt: float | None = None) -> StepCost:
        """Context ops of a decode batch straddling the window W, one step's ops once each: the
        windowed layers' ops at the mean of min(S, W) (they read min(S, W) keys a sequence), the other
        context ops (full-attention layers, linear in S) at the mean of S. Both exact in keys read."""
        n = bucketed(seqs, self.bucket)
        fk, pf = self._decode_point(mean_kv, mean_prompt)
        wk, pw = self._decode_point(mean_window_kv, None if mean_prompt is None else min(mean_prompt, mean_window_kv))
        full = self._cached(("dfull", n, fk, pf), lambda: [
            o for o in self.workload.trace("decode", n, fk, prompt_len=pf).ops
            if self.is_context_op(o.name) and o.name not in self.window_names])
        win = self._cached(("dwin", n, wk, pw), lambda: [
            o for o in self.workload.trace("decode", n, wk, prompt_len=pw).ops if o.name in self.window_names])
        return full + win

    def _bucket_table(self, upto: int) -> np.ndarray:
        """bucketed(x) for every x < upto+1 as an array (decode runs gather from it)."""
        tab = self._btab
        if tab is None or tab.size <= upto:
            size = max(2 * upto, 8192)
            tab = self._btab = np.array([bucketed(x, self.bucket) for x in range(size)], dtype=np.int64)
        return tab

    def prefill_context_cost(self, new: int, cached: int, last: bool = True) -> StepCost:
        """Context ops of a prefill chunk: `new` tokens after `cached` ones; `last`: it completes the
        prompt (the chunk that carries the once-a-prompt work, see _chunk_ops)."""
        c, ctx, last = bucketed(new, self.bucket), bucketed(cached, self.bucket) if cached else 0, bool(last)
        cost = self._cached(("pctx", c, ctx, last), lambda: self._chunk_ops(c, ctx, last))
        if ctx or not last:  # a prompt split into chunks: the run's notes say how (notes), priced or cached
            self._chunked[ctx + c] = None
        return cost

    def _prefill_context_ops(self, seq: int, part: bool = False):
        """The context ops of a `seq`-token prefill trace (built once per length: chunks
        (c, ctx) with the same ctx + c share it); `part`: the tokens are a part of a longer prompt
        (Workload.prompt_part), not a whole one, which the workload's recipe may refuse."""
        from workloads.compression.eviction import NoTokenKept
        if part and (seq, "part") in self._ctx_ops:  # a length the recipe refuses as a prompt, seen before
            return self._ctx_ops[(seq, "part")]
        hit = self._ctx_ops.get(seq)
        if hit is None:  # one build per length: a part takes the prompt's own trace wherever the recipe accepts it
            try:
                trace, key = self.workload.trace("prefill", 1, seq), seq
            except NoTokenKept:
                if not part:
                    raise
                trace, key = self.workload.every_token_kept(seq), (seq, "part")
            hit = self._ctx_ops[key] = [o for o in trace.ops if o.name not in self.token_names]
        return hit

    @cached_property
    def unchunkable(self) -> str | None:
        """Why this workload's prompts cannot be prefilled in chunks (None: they can). FastKV's
        token-selective propagation (ops marked dims["tsp_after"]) lets only the tokens picked at layer
        tsp_layer, by the prompt's last queries over all of it, run the later layers: no layer after it
        can run before the whole prompt has reached it, so a chunk's work is not a share of the trace's."""
        if any(o.dims.get("tsp_after") for o in self.workload.trace("prefill", 1, _REF_KV[0]).ops):
            return (f"recipe {self.workload.recipe!r} propagates only the tokens its selection at one layer picks "
                    f"(FastKV's token-selective propagation, ops marked tsp_after): the later layers need the whole "
                    f"prompt's selection first, so a prompt cannot be prefilled in chunks")
        return None

    def _chunk_ops(self, c: int, ctx: int, last: bool = True):
        """A prefill chunk's context ops: c new tokens after ctx cached ones; `last`: it completes the
        prompt. Each op is priced as the engine runs it (the recipe marks the op where it builds it,
        workloads.ops):
        - `attention`: the (ctx + c)-token prefill trace's, restricted to the chunk's c queries (all of
          its keys);
        - PER_PROMPT (a prompt recipe's observation-window selection and gather, ZipCache's probe
          attention and hi/lo quantize, GEAR's prompt compression): run once, after the prompt's last
          token, over all of it: the (ctx + c)-token trace's op on the completing chunk (the whole
          prompt), none on the others;
        - OVER_CONTEXT (MLA's kv_b_proj, Palu's K/V reconstruction): over every token so far each time,
          as vLLM's chunked-context MLA prefill expands the cached latents again for each chunk: the
          (ctx + c)-token trace's op on every chunk;
        - every other context op (a KV recipe's per-token quantize of the new KV, the unfused
          attention's scores/softmax/PV of a first chunk): the c-token trace's, each chunk its own
          share, so a prompt's chunks sum to the whole prompt's work for an op linear in its length.
        - after cached context, the unfused attention (H2O's and MiKV's prefill, which need the scores;
          `attention="unfused"`): every op touching the (ctx + c) x (ctx + c) score matrix of the
          (ctx + c)-token trace (scores, softmax, PV, H2O's column sums) restricted to the chunk's c query
          rows over all ctx + c keys (_chunk_queries): scores c x (ctx + c), as an engine runs the unfused
          kernel over the cached and new keys; H2O's column sums of a prompt are sums over its queries, so
          the chunks accumulate the whole prompt's (a first chunk's c x c is the c-token trace's op).
        A recipe whose later layers run only the tokens a whole-prompt selection picks (FastKV) has no
        chunk share at all: refused."""
        whole = self._chunk_plan(ctx + c, part=not last)
        if (ctx or not last) and self.unchunkable:
            raise InputError(f"serve: recipe: a prompt split into chunks (this chunk: {c} new tokens after {ctx} "
                             f"cached): {self.unchunkable}; use an unchunked scheduler (continuous, static or "
                             f"disaggregated)")
        ops = [_chunk_attention(o, c) if ctx else o for o, rule in whole if rule == _ATTENTION]
        ops += [o for o, rule in whole if rule == OVER_CONTEXT or (rule == PER_PROMPT and last)]
        # the unfused attention after cached context: the chunk's c queries over all ctx + c keys
        square = {o.name for o, rule in whole if rule == _SQUARE} if ctx else set()
        ops += [_chunk_queries(o, c, ctx + c) for o, rule in whole if o.name in square]
        for o, rule in self._chunk_plan(c, part=bool(ctx) or not last):
            if rule in (_ATTENTION, OVER_CONTEXT, PER_PROMPT) or o.name in square:
                continue
            if ctx and _unfused_attention(o):  # an unfused GEMM the score-matrix rule did not find: never guessed
                raise InputError(f"serve: attention: chunked prefill after cached context: this workload's unfused "
                                 f"{o.name!r} (recipe {self.workload.recipe!r}) touches no {ctx + c} x {ctx + c} "
                                 f"score matrix in its ({ctx + c})-token prefill trace, so its share of a chunk's c "
                                 f"queries over ctx + c keys cannot be read off it; use an unchunked scheduler")
            ops.append(o)
        return ops

    def _chunk_plan(self, seq: int, part: bool = False) -> tuple:
        """(op, rule) for each context op of the `seq`-token prefill trace: the one classification of how a split
        prompt prices it (_chunk_rule), which _chunk_ops prices by and _chunk_notes reports."""
        return tuple((o, _chunk_rule(o, seq)) for o in self._prefill_context_ops(seq, part))

    def _chunk_notes(self) -> tuple:
        """Never silent: the run's notes name each non-attention context op of the chunks the run priced
        (the (ctx + c)-token traces of `_chunked`), and how a split prompt prices it (one note per rule), read
        off the same plan (_chunk_plan) _chunk_ops prices by.
        Built where the notes are read, from the run's record: a price found in the cache says the same as
        one computed, and a run that split no prompt says nothing (before session 17 _chunk_ops wrote the
        note when it computed a price, so a step model shared by two runs carried it into a run that
        priced no chunk)."""
        if not self._chunked:
            return ()
        by = {}
        for seq in self._chunked:
            for o, rule in self._chunk_plan(seq, part=True):  # the names and rules only: any form of the trace
                if rule != _ATTENTION:
                    by.setdefault(rule, []).append(o.name)
        return tuple(f"chunked prefill: {', '.join(dict.fromkeys(names))}: {_CHUNK_RULE_NOTE[rule]}"
                     for rule, names in by.items())

    # ---- the step ------------------------------------------------------------
    def step_cost(self, batch: StepBatch) -> StepCost:
        if not batch.prefill and not batch.decode_kv:
            return ZERO
        refuse_chunked_attention(self.workload.model, "step cost: model", batch)
        cost = self.token_cost(batch.tokens, prefill=bool(batch.prefill),
                               decode_tokens=batch.tokens_per_decode * len(batch.decode_kv))
        if batch.sequences_emitting:
            cost = cost + self.head_cost(batch.sequences_emitting)
        if batch.decode_kv:
            kv, prompt = self._decode_lengths(batch)
            n, w = len(kv), self.decode_window
            if straddles_window(kv, w):
                cost = cost + self._decode_straddle_cost(n, sum(kv) / n, sum(min(k, w) for k in kv) / n, prompt)
            else:
                cost = cost + self.decode_context_cost(n, sum(kv) / n, prompt)
        for c, ctx, last in batch.prefill:
            cost = cost + self.prefill_context_cost(c, ctx, last)
        return cost

    def decode_run(self, seqs: int, kv_sum: int, steps: int, prompts: tuple | None = None):
        """Latency and energy arrays of `steps` consecutive decode-only steps of the same
        `seqs` sequences, every KV growing by one token a step (the engine's fast path);
        `prompts`: their prompt lengths (StepBatch.decode_prompt; None: read as all KV).
        Equal to calling step_cost once per step: the per-step mean KV is computed as
        step_cost does (one correctly rounded division, round half to even), each distinct
        bucketed KV is priced once through the same cache, then gathered."""
        const = self.token_cost(seqs, prefill=False) + self.head_cost(seqs)
        mean_prompt = None
        if prompts and self.prompt_only:  # as _decode_lengths: kept tokens after a 1-token prompt, or the means
            if self._kept_only:
                kv_sum, mean_prompt = kv_sum + sum(self._prompt_kept(p) - p for p in prompts), 1.0
            else:
                mean_prompt = sum(prompts) / seqs
        mean = (kv_sum + np.arange(steps, dtype=np.int64) * seqs) / seqs  # exact: ints < 2**53
        if mean_prompt is None:
            kv = np.maximum(1, np.rint(mean).astype(np.int64))
        else:  # the generated tokens on the grid (_decode_point), the same float difference step_cost rounds
            kv = np.maximum(0, np.rint(mean - mean_prompt).astype(np.int64))
        kv = self._bucket_table(int(kv[-1]))[kv]  # kv grows with the step: the last is the largest
        # kv is non-decreasing, so its distinct values start where it changes (no sort needed)
        start = np.empty(steps, dtype=bool)
        start[0] = True
        np.not_equal(kv[1:], kv[:-1], out=start[1:])
        n = bucketed(seqs, self.bucket)
        if mean_prompt is None:
            comps = [self._decode_context_at(n, k) for k in kv[start].tolist()]
        else:
            p = bucketed(max(1, int(round(mean_prompt))), self.bucket)  # as _decode_point
            comps = [self._decode_context_at(n, p + g, p) for g in kv[start].tolist()]
        if len(comps) == 1:  # one bucket covers the run
            return (np.full(steps, const.latency_s + comps[0].latency_s),
                    np.full(steps, const.energy_j + comps[0].energy_j))
        inv = np.cumsum(start) - 1
        lat = const.latency_s + np.array([c.latency_s for c in comps])[inv]
        en = const.energy_j + np.array([c.energy_j for c in comps])[inv]
        return lat, en


def refuse_chunked_attention(model, where: str, batch: StepBatch | None = None) -> None:
    """The one refusal of chunked-attention layers (Llama-4's HF attention_chunk_size) where serving
    cannot price them. The step model prices decode attention at the batch's mean KV length and a
    prefill chunk against the whole context, while a chunked layer reads (S - 1) % C + 1 keys a
    sequence (a sawtooth, not linear in S) and a query after cached context sees only its own chunk.
    batch None (a serving run, whose steps mix KV lengths and chunk prompts): any such model is
    refused; a batch (the step-cost API): only a step it cannot price exactly, decode KV lengths that
    differ or a prefill chunk after cached context (one KV length and whole prompts, what `generate`
    asks, are exact). `where` names the caller and role ("serve: model")."""
    n = getattr(model, "chunk_layers", 0)
    if not n:
        return
    if batch is not None and len(set(batch.decode_kv)) <= 1 and not any(ctx for _, ctx, _ in batch.prefill):
        return
    step = "" if batch is None else (f" (this step: decode KV lengths {sorted(set(batch.decode_kv))[:4]}, prefill "
                                     f"chunks (new, cached) {[(c, x) for c, x, _ in batch.prefill][:4]})")
    raise InputError(f"{where} {model.name!r}: attention_chunk (HF attention_chunk_size): got "
                     f"{model.attention_chunk:,} tokens on {n} of {model.layers} layers{step}; expected no "
                     f"chunked-attention layers, or (the step-cost API) one decode KV length and prefills without "
                     f"cached context: serving prices decode attention at the batch's mean KV length and prefill "
                     f"chunks against the whole context, while a chunked layer reads (S - 1) % C + 1 keys per "
                     f"sequence and a chunk after cached context sees only its own attention chunk; `cosim "
                     f"simulate` / `generate` price one sequence exactly")


def straddles_window(kv: tuple, window: int | None) -> bool:
    """Whether decoding sequences at KV lengths `kv` lie on both sides of a windowed layer's window:
    then the batch's mean S would price min(mean S, W) keys a sequence on a windowed layer, more than
    the mean of min(S, W) it reads; on one side the mean S prices every layer exactly."""
    return bool(kv) and window is not None and min(kv) <= window < max(kv)


def _unfused_attention(op) -> bool:
    """An op of the unfused attention (the builder's attn_scores / attn_pv GEMMs over the keys)."""
    return op.kind == "gemm" and op.group == "attn" and op.name.startswith("attn_")


_ATTENTION, _SQUARE = "attention", "square"  # rules of _chunk_rule beside PER_PROMPT, OVER_CONTEXT and "" (per token)
_CHUNK_RULE_NOTE = {
    PER_PROMPT: "once a prompt: priced at the whole prompt's length on the chunk that completes it, none on the others",
    OVER_CONTEXT: "over every token so far: priced at cached + new tokens on every chunk (the cached ones again each "
                  "chunk)",
    _SQUARE: "unfused attention: the chunk's c queries over the cached and new ctx + c keys (scores c x (ctx + c)), "
             "each chunk once; H2O's column sums accumulate over the chunks",
    "": "per token: each chunk prices its own tokens' share"}


def _chunk_rule(op, seq: int) -> str:
    """How a split prompt prices a context op of its seq-token prefill trace (DeviceStepCost._chunk_ops): the
    attention kernel (_ATTENTION), once a prompt (PER_PROMPT), over every token so far (OVER_CONTEXT), the unfused
    attention's score-matrix ops (_SQUARE, after cached context) or each chunk its own tokens' share (""). An op
    marked both PER_PROMPT and OVER_CONTEXT has no one rule: refused by name."""
    if op.kind in ATTENTION_KINDS:
        return _ATTENTION
    if op.dims.get(PER_PROMPT) and op.dims.get(OVER_CONTEXT):
        raise InputError(f"serve: chunked prefill: op {op.name!r} is marked both {PER_PROMPT} and {OVER_CONTEXT}; "
                         f"expected at most one (once a prompt, or over every token so far)")
    if op.dims.get(PER_PROMPT):
        return PER_PROMPT
    if op.dims.get(OVER_CONTEXT):
        return OVER_CONTEXT
    return _SQUARE if _score_matrix_op(op, seq) else ""


def _score_matrix_op(op, S: int) -> bool:
    """An op of the unfused attention of an S-token prefill trace: it reads or writes an activation whose
    last two axes are the S x S score (or probability) matrix (the builder's attn_scores, attn_softmax,
    attn_pv; H2O's column sums)."""
    return op.kind not in ATTENTION_KINDS and any(
        t.role == "activation" and len(t.shape) >= 3 and tuple(t.shape[-2:]) == (S, S) for t in op.inputs + op.outputs)


def _chunk_queries(op, c: int, S: int):
    """An unfused-attention op of the S-token prefill trace restricted to its last c query rows, all S keys
    kept: the score matrix (..., S, S) -> (..., c, S), q and the output (batch, S, heads, d) -> (batch, c, heads,
    d), a GEMM's m (the query rows) S -> c, an elementwise op's rows (batch x heads x S) -> (batch x heads x c);
    the K/V cache and H2O's per-key accumulators (S keys) unchanged."""
    dims = dict(op.dims)
    if op.kind == "gemm" and dims.get("m") == S:
        dims["m"] = c
    if "rows" in dims:
        if dims["rows"] % S:
            raise InputError(f"serve: attention: unfused {op.name!r} has {dims['rows']} rows, not a multiple of its "
                             f"{S} queries; its share of a chunk's {c} queries is not read off it")
        dims["rows"] = dims["rows"] // S * c

    def resize(t):
        if t.role != "activation":
            return t
        if len(t.shape) >= 3 and tuple(t.shape[-2:]) == (S, S):
            return t.__class__(t.name, tuple(t.shape[:-2]) + (c, S), t.fmt, t.role, t.density)
        if len(t.shape) == 4 and t.shape[1] == S:  # (batch, q_len, heads, d): q and the output
            return t.__class__(t.name, (t.shape[0], c) + tuple(t.shape[2:]), t.fmt, t.role, t.density)
        return t
    return op.with_(dims=dims, inputs=tuple(resize(t) for t in op.inputs), outputs=tuple(resize(t) for t in op.outputs))


def _chunk_attention(op, c: int):
    """The prefill attention op restricted to the last c queries (kv_len unchanged)."""
    dims = {**op.dims, "q_len": c}
    def resize(t):
        if t.role == "activation" and len(t.shape) == 4:  # (batch, q_len, heads, d): q and the output
            return t.__class__(t.name, (t.shape[0], c) + tuple(t.shape[2:]), t.fmt, t.role, t.density)
        return t
    return op.with_(dims=dims, inputs=tuple(resize(t) for t in op.inputs),
                    outputs=tuple(resize(t) for t in op.outputs))


def device_step_cost(model, hw, level="roofline", weights=None, acts="bf16", kv="bf16", recipe=None,
                     attention="fused", bucket=0.0, compute_fallback=False) -> DeviceStepCost:
    model = load_model(model)
    hw = hw if isinstance(hw, HardwareSpec) else load_hw(hw)
    return DeviceStepCost(Workload(model, weights, acts, kv, recipe, attention), hw, level, bucket, compute_fallback)
