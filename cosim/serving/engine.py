"""The serving engine on simpy: requests arrive, replicas run scheduler steps, each
step's time comes from a StepCostModel (cost models through a cache), KV memory is
paged, and every request's timestamps are recorded."""

from __future__ import annotations

from collections import deque
from itertools import count

import numpy as np
import simpy

from cosim.serving.kv_memory import PagedKV
from cosim.serving.scheduler import Plan, StaticBatchCounts, get_policy
from cosim.serving.steptime import StepBatch, StepCost, straddles_window

__all__ = ["Request", "Replica", "Engine"]

# the most decode steps one fast-path run prices at once (a longer run is split: each run re-checks
# the window side, the KV room and the running set)
MAX_RUN_STEPS = 1024


def _run_length(reqs) -> int:
    """Steps of a decode run: until the first of `reqs` finishes, at most MAX_RUN_STEPS."""
    return min(min(r.output_len - r.generated for r in reqs), MAX_RUN_STEPS)


class Request:
    __slots__ = ("rid", "arrival_s", "prompt_len", "output_len", "prefilled", "prefill_target", "generated",
                 "state", "admit_seq", "first_sched_s", "first_token_s", "finish_s", "preemptions", "replica",
                 "decode_replica")

    def __init__(self, spec):
        self.rid, self.arrival_s = spec.rid, spec.arrival_s
        self.prompt_len, self.output_len = spec.prompt_len, spec.output_len
        self.prefilled, self.prefill_target, self.generated = 0, spec.prompt_len, 0
        self.state, self.admit_seq = "waiting", -1
        self.first_sched_s = self.first_token_s = self.finish_s = None
        self.preemptions, self.replica, self.decode_replica = 0, "", ""

    @property
    def context(self) -> int:
        """Tokens in the KV cache once the last emitted token is written."""
        return self.prompt_len + self.generated

    @property
    def prefill_done(self) -> bool:
        return self.prefilled >= self.prefill_target


class Replica:
    """One device (or one system, through its StepCostModel) with its own queue and KV."""

    def __init__(self, engine, name, role, steps, kv: PagedKV, cfg, bytes_per_token, max_batched_tokens: int,
                 draft=None):
        """max_batched_tokens: the step token budget (cosim.serving.token_budget: it depends on the
        requests for the static scheduler, so the caller passes it)."""
        self.engine, self.name, self.role = engine, name, role
        self.policy = get_policy({"both": cfg.scheduler, "prefill": "prefill", "decode": "decode"}[role])
        self.steps, self.draft, self.kv, self.cfg = steps, draft, kv, cfg
        self.bytes_per_token = bytes_per_token
        self.max_num_seqs, self.max_batched_tokens = cfg.max_num_seqs, max_batched_tokens
        self.spec = cfg.speculative
        self.tokens_per_decode = 1 + (self.spec.draft_len if self.spec else 0)
        self.waiting, self.swapped, self.running = deque(), deque(), []
        self.wake = None
        self._admits = count()
        self.energy_j = self.busy_s = 0.0
        self.n_steps = 0
        self.static_batches = StaticBatchCounts()  # the static policy's batches and why some were cut short

    # ---- bookkeeping used by the policies -------------------------------------
    def reserve_tokens(self, r) -> int:
        """KV tokens reserved at admission beyond the prompt: static batching holds the
        whole output; iteration-level schedulers grow the cache step by step."""
        return r.output_len if self.policy.name == "static" else 0

    def admit(self, r) -> None:
        r.state, r.admit_seq = "running", next(self._admits)
        if r.first_sched_s is None:
            r.first_sched_s = self.engine.env.now
        self.running.append(r)

    def preempt(self, r) -> float:
        """Preempt r; returns bytes moved to host (swap) for the step to pay for."""
        self.running.remove(r)
        r.preemptions += 1
        moved = 0.0
        if self.cfg.preemption == "swap" and r.prefill_done:
            moved = self.kv.stored_tokens(r.context, r.prefill_target) * self.bytes_per_token
            self.kv.release(r.rid)
            r.state = "swapped"
            self.swapped.append(r)
        else:
            self.kv.release(r.rid)
            r.prefill_target, r.prefilled, r.state = r.context, 0, "waiting"
            self.waiting.appendleft(r)
        return moved

    def notify(self) -> None:
        if self.wake is not None and not self.wake.triggered:
            self.wake.succeed()

    # ---- one step -------------------------------------------------------------------
    def price(self, plan: Plan) -> StepCost:
        prefill = tuple((c, r.prefilled, r.prefilled + c >= r.prefill_target) for r, c in plan.prefill)
        kvs = tuple(r.context + self.tokens_per_decode - 1 for r in plan.decode)
        prompts = tuple(r.prefill_target for r in plan.decode)  # what its last prefill wrote (a recompute's too)
        cost = self.steps.step_cost(StepBatch(prefill, kvs, self.tokens_per_decode, prompts))
        if self.draft is not None:
            if kvs:
                d = self.draft.step_cost(StepBatch((), tuple(r.context for r in plan.decode), 1, prompts))
                cost = cost + StepCost(d.latency_s * self.spec.draft_len, d.energy_j * self.spec.draft_len)
            if prefill:
                cost = cost + self.draft.step_cost(StepBatch(prefill, (), 1))
        link = self.engine.host_bw
        moved = plan.swap_bytes
        if self.cfg.offload and plan.decode:
            moved += (sum(self.kv.host_tokens(r.rid) for r in plan.decode) * self.bytes_per_token
                      * self.cfg.offload.fetch_fraction)
        if moved:  # the step waits for the transfer: the replica's static power meanwhile (a given model: time only)
            stall = getattr(self.steps, "stall_cost", None)  # the device model's (a host wrapper delegates)
            cost = cost + (stall(moved / link) if stall else StepCost(moved / link, 0.0))
        return cost

    def apply(self, plan: Plan, now: float) -> int:
        """Advance the plan's requests; returns the output tokens the step emitted."""
        eng, tokens = self.engine, 0
        for r, c in plan.prefill:
            r.prefilled += c
            if r.prefilled >= r.prefill_target:
                tokens += self._emit(r, 1, now)
                if self.role == "prefill" and r.state == "running":
                    self.running.remove(r)
                    r.state = "transfer"
                    eng.env.process(eng.hand_over(self, r))
        for r in plan.decode:
            if r.state == "running":
                tokens += self._emit(r, eng.emitted(self), now)
        return tokens

    def _emit(self, r, n, now) -> int:
        """r emits up to n tokens at `now`; returns how many it did (at most to its output length)."""
        if r.first_token_s is None:
            r.first_token_s = now
        before = r.generated
        r.generated = min(r.output_len, r.generated + n)
        if r.generated >= r.output_len:
            r.finish_s, r.state = now, "done"
            self.running.remove(r)
            self.kv.release(r.rid)
            self.engine.done += 1
        return r.generated - before

    # ---- fast path: runs of identical decode-only steps ---------------------------
    def _can_skip(self, plan) -> bool:
        """A decode-only step of every running request, with nothing that a step
        boundary could change but an arrival or a finish: the next steps are the same
        plan with every KV one token longer, so they are priced and applied together."""
        return (not plan.prefill and not plan.swap_bytes and self.spec is None and self.role == "both"
                and not self.cfg.offload and len(plan.decode) == len(self.running)
                and hasattr(self.steps, "decode_run") and self._one_window_side(plan.decode))

    def _one_window_side(self, reqs) -> bool:
        """A decode run prices the mean KV: exact where no step of it straddles a windowed layer's window
        (steptime.straddles_window over the KV lengths its k steps price, r.context .. r.context + k - 1
        a request); else the steps go one by one."""
        k = _run_length(reqs)
        lengths = [r.context for r in reqs]
        if getattr(self.steps, "prompt_only", False):  # priced at each one's kept tokens (steptime._decode_lengths)
            lengths = self.steps.decode_lengths(lengths, [r.prefill_target for r in reqs])
        lo, hi = min(lengths), max(lengths) + k - 1
        return not straddles_window((lo, hi), getattr(self.steps, "decode_window", None))

    def _decode_run(self, plan):
        env, reqs = self.engine.env, plan.decode
        k = _run_length(reqs)
        # KV growth for k steps must fit without preemption, else go step by step
        bs, blocks = self.kv.block_size, self.kv.blocks_for
        # each request needs at most ceil(k / bs) + 1 new blocks where a token is a token of capacity (no recipe
        # storing a context at another rate, PagedKV.stored): skip the exact count when that fits
        fits = self.kv.stored is None and self.kv.free >= len(reqs) * (k // bs + 2)
        need = 0 if fits else sum(max(0, blocks(r.context + k, r.prefill_target)
                                         - blocks(r.context + 1, r.prefill_target)) for r in reqs)
        while k > 1 and need > self.kv.free:
            k //= 2
            need = sum(max(0, blocks(r.context + k, r.prefill_target) - blocks(r.context + 1, r.prefill_target))
                       for r in reqs)
        # the prompts only where the step model prices by them (a given step model's decode_run takes three arguments)
        prompts = {"prompts": tuple(r.prefill_target for r in reqs)} if getattr(self.steps, "prompt_only", False) \
            else {}
        lat, en = self.steps.decode_run(len(reqs), sum(r.context for r in reqs), k, **prompts)
        t_next = self.engine.next_arrival() if not self.waiting else float("inf")
        # step boundaries, summed left to right exactly as a step-by-step loop would
        ends = np.cumsum(np.concatenate(([env.now], lat)))[1:]
        # the arrival is seen at the first step boundary at or after it (ends never decrease)
        n = min(int(np.searchsorted(ends, t_next, side="left")) + 1, len(lat))
        t, t_start = float(ends[n - 1]), env.now
        for r in reqs:  # `need` counted these blocks (a charge never falls as the context grows: StoredTokens._peak)
            if not self.kv.grow(r.rid, r.context + n, r.prefill_target):
                raise RuntimeError(f"serving engine: a decode run of {n} steps found no KV block for request {r.rid} "
                                   f"after counting {need} free; please report this")
        yield env.timeout(t - env.now)
        self.energy_j += sum(en[:n].tolist())
        self.busy_s += sum(lat[:n].tolist())
        self.n_steps += n
        tokens = sum(self._emit(r, n, env.now) for r in list(reqs))
        self.engine.record(self, env.now, 0, len(reqs), tokens, t_start, n)

    def loop(self):
        env = self.engine.env
        while True:
            plan = self.policy.plan(self)
            if plan is None:
                self.wake = env.event()
                yield self.wake
                self.wake = None
                continue
            if self._can_skip(plan):
                yield from self._decode_run(plan)
                continue
            cost, t_start = self.price(plan), env.now
            yield env.timeout(cost.latency_s)
            self.energy_j += cost.energy_j
            self.busy_s += cost.latency_s
            self.n_steps += 1
            tokens = self.apply(plan, env.now)
            self.engine.record(self, env.now, len(plan.prefill), len(plan.decode), tokens, t_start, 1)


class Engine:
    def __init__(self, cfg, specs, make_replicas, host_bw, kv_link_bw, rng):
        self.cfg, self.env, self.rng = cfg, simpy.Environment(), rng
        self.requests = [Request(s) for s in specs]
        self.host_bw, self.kv_link_bw = host_bw, kv_link_bw
        self.done = 0
        self._next = 0
        self.timeline = {k: [] for k in ("time_s", "replica", "kv_used", "kv_capacity", "kv_host_used",
                                         "running", "waiting", "prefills", "decodes", "tokens", "start_s",
                                         "steps")}
        self.replicas = make_replicas(self)
        self.entry = [r for r in self.replicas if r.role in ("both", "prefill")]
        self.decoders = [r for r in self.replicas if r.role == "decode"]

    def emitted(self, rep) -> int:
        """Tokens one decoding sequence emits this step: 1, or with speculation 1 + the
        accepted prefix of the draft (each draft token accepted with probability a)."""
        s = rep.spec
        if s is None:
            return 1
        # accepted prefix length ~ truncated geometric: P(>= i) = a^i, i <= draft_len
        u = self.rng.random()
        acc = 0 if s.acceptance <= 0 else min(s.draft_len, int(np.floor(np.log(max(u, 1e-300)) / np.log(s.acceptance))))
        return 1 + acc

    def hand_over(self, src, r):
        """Disaggregation: move r's KV (prompt + first token) over the KV link, then queue
        it on the least-loaded decode replica."""
        yield self.env.timeout(src.kv.stored_tokens(r.context, r.prefill_target) * src.bytes_per_token
                               / self.kv_link_bw)
        src.kv.release(r.rid)
        src.notify()
        dst = min(self.decoders, key=lambda d: len(d.waiting) + len(d.running))
        r.state, r.decode_replica = "waiting", dst.name
        dst.waiting.append(r)
        dst.notify()

    def next_arrival(self) -> float:
        return self.requests[self._next].arrival_s if self._next < len(self.requests) else float("inf")

    def arrivals(self):
        env = self.env
        for i, r in enumerate(self.requests):
            self._next = i
            if r.arrival_s > env.now:
                yield env.timeout(r.arrival_s - env.now)
            rep = min(self.entry, key=lambda d: len(d.waiting) + len(d.running))
            r.replica = rep.name
            rep.waiting.append(r)
            rep.notify()
        self._next = len(self.requests)

    def record(self, rep, now, n_pre, n_dec, tokens=0, start=None, steps=1):
        """One row per step, or per fast-path run of `steps` equal-shaped decode steps from `start` to
        `now`; `tokens`: output tokens emitted (at each step's end)."""
        t = self.timeline
        t["time_s"].append(now)
        t["replica"].append(rep.name)
        t["kv_used"].append(rep.kv.used)
        t["kv_capacity"].append(rep.kv.capacity)
        t["kv_host_used"].append(rep.kv.host_used)
        t["running"].append(len(rep.running))
        t["waiting"].append(len(rep.waiting))
        t["prefills"].append(n_pre)
        t["decodes"].append(n_dec)
        t["tokens"].append(tokens)
        t["start_s"].append(now if start is None else start)
        t["steps"].append(steps)

    def run(self):
        for rep in self.replicas:
            self.env.process(rep.loop())
        self.env.process(self.arrivals())
        n = len(self.requests)
        # the run ends when every request is done (replicas idle forever afterwards)
        while self.done < n:
            if self.env.peek() == float("inf"):  # nothing scheduled: the run is stuck
                stuck = [r for r in self.requests if r.state != "done"]
                raise RuntimeError(f"serving engine stalled with {len(stuck)} requests unfinished "
                                   f"(first: rid {stuck[0].rid}, state {stuck[0].state})")
            self.env.step()
        return self
