"""The options of one serving run, validated up front (errors name the field)."""

from __future__ import annotations

from dataclasses import dataclass, fields

from hwmodels.units import parse_quantity
from workloads.io import InputError

DEFAULT_MEMORY_FRACTION = 0.9  # vLLM's gpu_memory_utilization default; fit_rule's note reads it from here

__all__ = ["ServeConfig", "SpecDecode", "Offload", "HostOverhead"]


def _bad(fld, v, expected):
    raise InputError(f"serve: {fld}: got {v!r}; expected {expected}")


def _pos_int(fld, v, allow_none=False):
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        _bad(fld, v, "a positive integer")
    return v


def _mapping(fld, d, cls, expected):
    """d as keyword arguments of the option dataclass cls: a mapping of its fields only."""
    if not isinstance(d, dict):
        _bad(fld, d, expected)
    known = {f.name for f in fields(cls)}
    for k in d:
        if k not in known:
            _bad(f"{fld}.{k}", k, f"one of {', '.join(sorted(known))}")
    return dict(d)


def _time(fld, v):
    if isinstance(v, str):
        try:
            v = parse_quantity(v, "time", "serve", fld)
        except Exception:
            _bad(fld, v, "a time such as '20 us'")
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0 or v == float("inf"):
        _bad(fld, v, "a non-negative time in seconds")
    return float(v)


def _pos_num(fld, v, allow_none=False):
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0 or v != v or v == float("inf"):
        _bad(fld, v, "a positive number")
    return float(v)


@dataclass(frozen=True)
class SpecDecode:
    """Speculative decoding: `draft_len` tokens drafted per step, each accepted with
    probability `acceptance` (independently, so a step emits 1 + accepted-prefix tokens).
    The draft is another model (`draft_model`), or the target itself with quantized
    weights/KV (`draft_weights`, `draft_kv`: QuantSpec-style self-speculation)."""
    draft_len: int = 4
    acceptance: float = 0.7
    draft_model: str | None = None
    draft_weights: str | None = None
    draft_kv: str | None = None

    @classmethod
    def parse(cls, d):
        if d is None or isinstance(d, cls):
            return d
        s = cls(**_mapping("speculative", d, cls, "a mapping with draft_len, acceptance and draft_model or draft_weights"))
        _pos_int("speculative.draft_len", s.draft_len)
        a = s.acceptance
        if isinstance(a, bool) or not isinstance(a, (int, float)) or not 0 <= a < 1:
            _bad("speculative.acceptance", a, "a probability in [0, 1)")
        if not (s.draft_model or s.draft_weights or s.draft_kv):
            _bad("speculative.draft_model", None, "a draft model name, or draft_weights/draft_kv for self-speculation")
        return s


@dataclass(frozen=True)
class Offload:
    """KV offload to host memory (ShadowKV / InstInfer style): KV blocks that do not fit
    on the device live in `host_capacity` bytes of host memory; every decode step reads
    `fetch_fraction` of a sequence's host-resident KV over the host link."""
    host_capacity: float = 256 * 2**30
    fetch_fraction: float = 1.0

    @classmethod
    def parse(cls, d):
        if d is None or isinstance(d, cls):
            return d
        d = _mapping("offload", d, cls, "a mapping with host_capacity and fetch_fraction")
        cap = d.get("host_capacity", cls.host_capacity)
        if isinstance(cap, str):
            try:
                cap = parse_quantity(cap, "bytes", "serve", "offload.host_capacity")
            except Exception:
                _bad("offload.host_capacity", cap, "a size such as '256 GiB'")
        cap = _pos_num("offload.host_capacity", cap)
        ff = d.get("fetch_fraction", 1.0)
        if isinstance(ff, bool) or not isinstance(ff, (int, float)) or not 0 <= ff <= 1:
            _bad("offload.fetch_fraction", ff, "a fraction in [0, 1]")
        return cls(cap, float(ff))


@dataclass(frozen=True)
class HostOverhead:
    """Host time a software stack adds per step (cosim.serving.host): which steps replay a
    CUDA graph, the host time per eager kernel launch (None: the device calibration's
    eager.cpu_per_kernel) and a fixed host time per prefill / decode step."""
    prefill_graphs: bool = False
    decode_graphs: bool = True
    cpu_per_kernel_s: float | None = None
    prefill_step_s: float = 0.0
    decode_step_s: float = 0.0
    new_shape_s: float = 0.0  # extra host time of an eager prefill of a token count not run before
    warm_lengths: tuple = ()  # prefill token counts already run (warm) when the stream starts
    source: str = "given"

    @classmethod
    def parse(cls, d):
        if d is None or isinstance(d, cls):
            return d
        v = _mapping("host", d, cls, "a mapping with prefill_graphs, decode_graphs, cpu_per_kernel_s, "
                                     "prefill_step_s, decode_step_s")
        for k in ("prefill_graphs", "decode_graphs"):
            if k in v and not isinstance(v[k], bool):
                _bad(f"host.{k}", v[k], "true or false")
        for k in ("prefill_step_s", "decode_step_s", "new_shape_s", "cpu_per_kernel_s"):
            if v.get(k) is not None:
                v[k] = _time(f"host.{k}", v[k])
        if "warm_lengths" in v:
            w = v["warm_lengths"]
            if not isinstance(w, (list, tuple)) or any(isinstance(x, bool) or not isinstance(x, int) or x < 1
                                                       for x in w):
                _bad("host.warm_lengths", w, "a list of positive token counts")
            v["warm_lengths"] = tuple(w)
        return cls(**v)


SCHEDULERS = ("static", "continuous", "chunked", "disaggregated")


# options that only some runs use: (field, CLI flag, whether this run uses it, what would use it). A field set
# (not at its default) where the run does not use it is refused: it would change nothing, silently.
_CONDITIONAL = (
    ("qps", "--qps", lambda c: c.trace is None, "a synthetic stream; the trace file's arrival_s sets the arrivals"),
    ("arrival", "--arrival", lambda c: c.trace is None, "a synthetic stream; the trace file's arrival_s sets the "
                                                        "arrivals"),
    ("burstiness", "--burstiness", lambda c: c.trace is None and c.arrival == "gamma",
     "the gamma arrival process (arrival: gamma, CLI --arrival gamma) without a trace"),
    ("prompt_len", "--prompt-len", lambda c: c.trace is None and c.lengths_from is None,
     "a synthetic stream without lengths_from (a trace or lengths_from file gives each request's lengths)"),
    ("output_len", "--output-len", lambda c: c.trace is None and c.lengths_from is None,
     "a synthetic stream without lengths_from (a trace or lengths_from file gives each request's lengths)"),
    ("lengths_from", "--lengths-from", lambda c: c.trace is None,
     "a synthetic stream; the trace file gives each request's lengths"),
    ("prefill_replicas", "--prefill-replicas", lambda c: c.scheduler == "disaggregated",
     "scheduler disaggregated (CLI --scheduler disaggregated)"),
    ("decode_replicas", "--decode-replicas", lambda c: c.scheduler == "disaggregated",
     "scheduler disaggregated (CLI --scheduler disaggregated)"),
)


def _check_applicable(cfg) -> None:
    """One error for the first option set (away from its default) that this run would ignore."""
    defaults = {f.name: f.default for f in fields(cfg)}
    for name, flag, used, needs in _CONDITIONAL:
        v = getattr(cfg, name)
        if v != defaults[name] and not used(cfg):
            why = (f"trace {cfg.trace!r} is given" if cfg.trace is not None
                   else f"lengths_from {cfg.lengths_from!r} is given" if name in ("prompt_len", "output_len")
                   else f"arrival is {cfg.arrival!r}" if name == "burstiness"
                   else f"scheduler is {cfg.scheduler!r}")
            raise InputError(f"serve: {name} (CLI {flag}): got {v!r}, which this run ignores ({why}); it applies "
                             f"only to {needs}: drop it or change the run")


@dataclass(frozen=True)
class ServeConfig:
    model: object
    hw: object
    level: str = "roofline"
    weights: str | None = None  # None: the checkpoint's declared format, else bf16 (build_trace)
    acts: str = "bf16"
    kv: str = "bf16"
    recipe: str | None = None
    attention: str = "fused"
    profile: str | None = None  # implementation profile (workloads.profiles), e.g. engine, eager
    host: HostOverhead | None = None  # host time per step (cosim.serving.host); default from `profile`
    # a multi-device replica: `hw` names a system (cosim/configs/systems) and `parallel` its layout
    parallel: dict | None = None  # {"tp": 2, "pp": 1}
    # the requests
    qps: float | None = None
    # default: every row of a trace (N: its first N in arrival order, at most its rows), else 1000 synthetic requests
    requests: int | None = None
    arrival: str = "poisson"  # poisson | gamma (bursty); a `trace` file replaces both
    burstiness: float = 1.0  # gamma inter-arrival coefficient of variation
    trace: str | None = None
    prompt_len: int | None = None
    output_len: int | None = None
    lengths_from: str | None = None
    seed: int = 0
    context_window: int | None = None
    # the engine
    scheduler: str = "continuous"
    max_num_seqs: int = 256  # vLLM default
    # default: 512 chunked (Sarathi-Serve); static max_num_seqs x the longest prompt (serving.token_budget); else 8192
    max_batched_tokens: int | None = None
    max_prefill_seqs: int | None = None  # prompts per prefill step (1: one prompt a step, like HF/TGI loops)
    block_size: int = 16  # vLLM default
    memory_fraction: float = DEFAULT_MEMORY_FRACTION
    kv_capacity_tokens: int | None = None  # fix the KV capacity instead of deriving it
    preemption: str = "recompute"  # recompute | swap
    host_link: str = "pcie"  # interconnect entry of the hardware spec used for swap and offload
    replicas: int = 1
    prefill_replicas: int = 1
    decode_replicas: int = 1
    kv_link: str = "nvlink"  # interconnect entry carrying KV from prefill to decode pool
    speculative: SpecDecode | None = None
    offload: Offload | None = None
    slo_ttft_s: float | None = None
    slo_tpot_s: float | None = None
    bucket: float = 0.02
    compute_fallback: bool = False

    def __post_init__(self):
        if self.scheduler not in SCHEDULERS:
            _bad("scheduler", self.scheduler, f"one of {', '.join(SCHEDULERS)}")
        if self.preemption not in ("recompute", "swap"):
            _bad("preemption", self.preemption, "recompute or swap")
        if self.trace is None:
            if self.qps is None:  # neither a rate nor a trace: say what to give, not "got None"
                raise InputError("serve: qps: missing; expected a positive number of requests per second "
                                 "(CLI --qps, e.g. --qps 5) or a request trace (--trace FILE)")
            if isinstance(self.qps, bool) or not isinstance(self.qps, (int, float)) \
                    or not self.qps > 0:
                _bad("qps", self.qps, "a positive number of requests per second")
            if self.requests is None:
                object.__setattr__(self, "requests", 1000)
            _pos_int("requests", self.requests)
        elif self.requests is not None:
            _pos_int("requests", self.requests)
        for f in ("max_num_seqs", "block_size", "replicas", "prefill_replicas", "decode_replicas"):
            _pos_int(f, getattr(self, f))
        for f in ("max_batched_tokens", "max_prefill_seqs", "kv_capacity_tokens", "context_window", "prompt_len",
                  "output_len"):
            _pos_int(f, getattr(self, f), allow_none=True)
        for f in ("slo_ttft_s", "slo_tpot_s"):
            _pos_num(f, getattr(self, f), allow_none=True)
        kvt = self.kv_capacity_tokens
        if kvt is not None and kvt < self.block_size:  # KV is held in whole blocks: this would hold none
            raise InputError(f"serve: kv_capacity_tokens (CLI --kv-capacity-tokens): got {kvt}; expected at least one "
                             f"KV block, block_size {self.block_size} tokens (KV is held in whole blocks, so {kvt} "
                             f"tokens hold none)")
        mf = self.memory_fraction
        if isinstance(mf, bool) or not isinstance(mf, (int, float)) or not 0 < mf <= 1:
            _bad("memory_fraction", mf, "a fraction in (0, 1]")
        object.__setattr__(self, "speculative", SpecDecode.parse(self.speculative))
        object.__setattr__(self, "offload", Offload.parse(self.offload))
        object.__setattr__(self, "host", HostOverhead.parse(self.host))
        if self.parallel is not None and not isinstance(self.parallel, dict):
            _bad("parallel", self.parallel, "a mapping such as {tp: 2, pp: 1}")
        _check_applicable(self)
        if self.parallel and self.profile:  # the trace builder cannot shard a profiled trace yet
            _bad("profile", self.profile, f"no profile with a parallel layout {self.parallel} (not supported yet: "
                                          f"CLI --profile with --tp/--pp; drop one of them)")

    def record(self) -> dict:
        """The run's options as saved with its results (summary.json `config`): every field, the model and
        hardware by name, the nested option records (speculative, offload, host) as mappings."""
        from dataclasses import asdict, is_dataclass
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name in ("model", "hw") and not isinstance(v, str):
                v = getattr(v, "name", str(v))
            elif is_dataclass(v):
                v = asdict(v)
            out[f.name] = v
        return out

    @classmethod
    def from_dict(cls, d: dict, source: str = "serve") -> "ServeConfig":
        known = {f.name for f in fields(cls)}
        for k in d:
            if k not in known:
                raise InputError(f"{source}: {k}: unknown serve field; expected one of {', '.join(sorted(known))}")
        return cls(**d)
