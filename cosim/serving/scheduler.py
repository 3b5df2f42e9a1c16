"""Scheduling policies: which requests run in the next step, and how much of each.

A policy is anything with a `name` and `plan(replica) -> Plan | None` (None: nothing
to run until a request arrives). One registry (`POLICIES`) maps names to classes:

- static: a batch of up to `max_num_seqs` requests is prefilled together (one step, no
  per-step token budget unless `max_batched_tokens` is given) and decoded until its last
  request finishes; nothing joins mid-batch. KV for prompt + output is reserved at
  admission (what a static-batching server must do).
- continuous: vLLM/Orca iteration-level scheduling. Waiting prompts are prefilled as
  soon as KV blocks and the `max_batched_tokens` budget allow (prefill-only steps take
  priority, as in vLLM's default scheduler); otherwise every running sequence decodes.
- chunked: Sarathi-Serve. Each step has a token budget; running decodes go first, then
  prompt chunks fill what is left, so decodes never stall behind a long prompt.
- prefill / decode: the two pools of a disaggregated deployment (DistServe,
  Splitwise): the prefill pool runs prompt batches and hands each request (with its KV
  moved over the link) to the decode pool, which only decodes.

Memory pressure: when a decoding sequence cannot grow its KV, the most recently admitted
running request is preempted, by recompute (its blocks freed, its prompt + generated
tokens prefilled again later) or by swap (its blocks copied to host over the host link
and back when memory frees), as in vLLM.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["Plan", "Policy", "POLICIES", "StaticBatchCounts", "get_policy"]


@dataclass
class Plan:
    prefill: list = field(default_factory=list)  # (request, new tokens)
    decode: list = field(default_factory=list)  # requests decoding this step
    swap_bytes: float = 0.0  # KV moved over the host link this step (swap in/out)

    def __bool__(self):
        return bool(self.prefill or self.decode)


@dataclass
class StaticBatchCounts:
    """A replica's static batches (Static.plan): how many were prefilled, and per cause that cut one
    below max_num_seqs while requests waited ("kv", "max_batched_tokens", "max_prefill_seqs"): (batches
    so cut, the smallest of them). The run's note reads them (cosim.serving._batch_limit_notes)."""
    batches: int = 0
    limits: dict = field(default_factory=dict)

    def add(self, size: int, cause: str) -> None:
        self.batches += 1
        if cause:
            n, smallest = self.limits.get(cause, (0, size))
            self.limits[cause] = (n + 1, min(smallest, size))


class Policy(Protocol):
    name: str

    def plan(self, replica) -> Plan | None: ...


def _reserve_decodes(rep, reqs, plan: Plan) -> list:
    """Grow KV of each decoding request by the tokens this step may write; preempt the
    latest-admitted running requests when memory runs out. Returns who still decodes."""
    out = []
    extra = rep.tokens_per_decode
    for r in reqs:  # `running` is kept in admission order
        if r.state != "running":
            continue  # preempted earlier in this loop
        while not rep.kv.grow(r.rid, r.context + extra, r.prefill_target):
            victim = max((x for x in rep.running if x.state == "running"), key=lambda x: x.admit_seq)
            plan.swap_bytes += rep.preempt(victim)
            if victim is r:
                break
        if r.state == "running":
            out.append(r)
    return out


def _swap_in(rep, plan: Plan) -> None:
    while rep.swapped and rep.kv.can_hold(rep.swapped[0].rid, rep.swapped[0].context + rep.tokens_per_decode,
                                          rep.swapped[0].prefill_target):
        r = rep.swapped.popleft()
        rep.kv.grow(r.rid, r.context, r.prefill_target)
        plan.swap_bytes += rep.kv.stored_tokens(r.context, r.prefill_target) * rep.bytes_per_token
        rep.admit(r)


def _admit_prompts(rep, budget: int, chunked: bool, plan: Plan) -> int:
    """Admit waiting prompts (FIFO) while KV blocks, the sequence cap and the token
    budget allow; returns the budget left."""
    cap = rep.cfg.max_prefill_seqs or float("inf")
    while rep.waiting and budget > 0 and len(rep.running) < rep.max_num_seqs and len(plan.prefill) < cap:
        r = rep.waiting[0]
        need = r.prefill_target
        if not chunked and need > budget:
            break
        if not rep.kv.can_hold(r.rid, need + rep.reserve_tokens(r), need):
            break
        rep.waiting.popleft()
        rep.kv.grow(r.rid, need + rep.reserve_tokens(r), need)
        rep.admit(r)
        c = min(need, budget)
        plan.prefill.append((r, c))
        budget -= c
    return budget


class Continuous:
    name = "continuous"

    def plan(self, rep) -> Plan | None:
        plan = Plan()
        _swap_in(rep, plan)
        if not rep.swapped:
            _admit_prompts(rep, rep.max_batched_tokens, False, plan)
        if plan.prefill:
            return plan
        plan.decode = _reserve_decodes(rep, [r for r in rep.running if r.prefill_done], plan)
        return plan if plan or plan.swap_bytes else None


class Chunked:
    name = "chunked"

    def plan(self, rep) -> Plan | None:
        plan = Plan()
        _swap_in(rep, plan)
        plan.decode = _reserve_decodes(rep, [r for r in rep.running if r.prefill_done], plan)
        budget = rep.max_batched_tokens - rep.tokens_per_decode * len(plan.decode)
        for r in sorted((r for r in rep.running if not r.prefill_done and r.state == "running"),
                        key=lambda r: r.admit_seq):
            if budget <= 0:
                break
            c = min(r.prefill_target - r.prefilled, budget)
            plan.prefill.append((r, c))
            budget -= c
        if not rep.swapped:
            _admit_prompts(rep, budget, True, plan)
        return plan if plan or plan.swap_bytes else None


def _batch_limit(rep, budget_left: int, batch: int) -> str:
    """What stopped a batch below max_num_seqs with requests still waiting (none: '')."""
    if not rep.waiting or batch >= rep.max_num_seqs:
        return ""
    if rep.cfg.max_prefill_seqs and batch >= rep.cfg.max_prefill_seqs:
        return "max_prefill_seqs"
    r = rep.waiting[0]
    return "max_batched_tokens" if r.prefill_target > budget_left else "kv"


class Static:
    """Batch at a time (HF generate-like): up to max_num_seqs waiting requests whose prompt +
    output KV fits are prefilled together in one step, then decoded until the last finishes. Its
    step budget (serving.token_budget) is max_num_seqs x the longest prompt unless
    max_batched_tokens is given; a batch cut below max_num_seqs while requests wait is counted
    per cause in `rep.static_batches` (the run's note says so)."""
    name = "static"

    def plan(self, rep) -> Plan | None:
        plan = Plan()
        if not rep.running:
            left = _admit_prompts(rep, rep.max_batched_tokens, False, plan)
            if plan.prefill:
                rep.static_batches.add(len(plan.prefill), _batch_limit(rep, left, len(plan.prefill)))
            return plan or None
        plan.decode = _reserve_decodes(rep, [r for r in rep.running if r.prefill_done], plan)
        return plan if plan or plan.swap_bytes else None


class PrefillPool(Continuous):
    """Prompt batches only; finished prompts leave for the decode pool."""
    name = "prefill"

    def plan(self, rep) -> Plan | None:
        plan = Plan()
        _admit_prompts(rep, rep.max_batched_tokens, False, plan)
        return plan or None


class DecodePool:
    """Admits handed-over requests whose KV fits, then decodes everything running."""
    name = "decode"

    def plan(self, rep) -> Plan | None:
        plan = Plan()
        _swap_in(rep, plan)
        while not rep.swapped and rep.waiting and len(rep.running) < rep.max_num_seqs:
            r = rep.waiting[0]
            if not rep.kv.grow(r.rid, r.context + rep.tokens_per_decode, r.prefill_target):
                break
            rep.waiting.popleft()
            rep.admit(r)
        plan.decode = _reserve_decodes(rep, [r for r in rep.running if r.prefill_done], plan)
        return plan if plan or plan.swap_bytes else None


POLICIES = {p.name: p for p in (Static, Continuous, Chunked, PrefillPool, DecodePool)}
USER_POLICIES = ("static", "continuous", "chunked", "disaggregated")


def get_policy(name: str):
    if name not in POLICIES:
        from workloads.io import InputError
        raise InputError(f"serve: scheduler: got {name!r}; expected one of {', '.join(USER_POLICIES)}")
    return POLICIES[name]()
