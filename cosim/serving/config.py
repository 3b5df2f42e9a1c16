"""The options of one serving run, validated up front (errors name the field)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from hwmodels.units import parse_quantity
from workloads.io import InputError

__all__ = ["ServeConfig", "SpecDecode", "Offload"]


def _bad(fld, v, expected):
    raise InputError(f"serve: {fld}: got {v!r}; expected {expected}")


def _pos_int(fld, v, allow_none=False):
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        _bad(fld, v, "a positive integer")
    return v


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
        if not isinstance(d, dict):
            _bad("speculative", d, "a mapping with draft_len, acceptance and draft_model or draft_weights")
        known = {f.name for f in fields(cls)}
        for k in d:
            if k not in known:
                _bad(f"speculative.{k}", k, f"one of {', '.join(sorted(known))}")
        s = cls(**d)
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
        if not isinstance(d, dict):
            _bad("offload", d, "a mapping with host_capacity and fetch_fraction")
        for k in d:
            if k not in ("host_capacity", "fetch_fraction"):
                _bad(f"offload.{k}", k, "host_capacity or fetch_fraction")
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


SCHEDULERS = ("static", "continuous", "chunked", "disaggregated")


@dataclass(frozen=True)
class ServeConfig:
    model: object
    hw: object
    level: str = "roofline"
    weights: str = "bf16"
    acts: str = "bf16"
    kv: str = "bf16"
    recipe: str | None = None
    attention: str = "fused"
    # the requests
    qps: float | None = None
    requests: int | None = None  # default: every row of a trace, else 1000 synthetic requests
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
    max_batched_tokens: int | None = None  # default: 512 for chunked (Sarathi-Serve), else 8192
    block_size: int = 16  # vLLM default
    memory_fraction: float = 0.9  # vLLM gpu_memory_utilization default
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
            if self.qps is None or isinstance(self.qps, bool) or not isinstance(self.qps, (int, float)) \
                    or not self.qps > 0:
                _bad("qps", self.qps, "a positive number of requests per second")
            if self.requests is None:
                object.__setattr__(self, "requests", 1000)
            _pos_int("requests", self.requests)
        elif self.requests is not None:
            _pos_int("requests", self.requests)
        for f in ("max_num_seqs", "block_size", "replicas", "prefill_replicas", "decode_replicas"):
            _pos_int(f, getattr(self, f))
        for f in ("max_batched_tokens", "kv_capacity_tokens", "context_window", "prompt_len", "output_len"):
            _pos_int(f, getattr(self, f), allow_none=True)
        for f in ("slo_ttft_s", "slo_tpot_s"):
            _pos_num(f, getattr(self, f), allow_none=True)
        mf = self.memory_fraction
        if isinstance(mf, bool) or not isinstance(mf, (int, float)) or not 0 < mf <= 1:
            _bad("memory_fraction", mf, "a fraction in (0, 1]")
        object.__setattr__(self, "speculative", SpecDecode.parse(self.speculative))
        object.__setattr__(self, "offload", Offload.parse(self.offload))

    @property
    def token_budget(self) -> int:
        if self.max_batched_tokens is not None:
            return self.max_batched_tokens
        return 512 if self.scheduler == "chunked" else 8192

    @classmethod
    def from_dict(cls, d: dict, source: str = "serve") -> "ServeConfig":
        known = {f.name for f in fields(cls)}
        for k in d:
            if k not in known:
                raise InputError(f"{source}: {k}: unknown serve field; expected one of {', '.join(sorted(known))}")
        return cls(**d)
