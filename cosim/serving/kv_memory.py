"""Paged KV memory (vLLM's PagedAttention block manager, reduced to counting).

Capacity in blocks = (device memory - weights - peak activations) / (block_size x bytes
per token). Bytes per token come from the trace builder's footprint with the workload's
KV format and recipe (a KIVI-2 cache stores ~2.x bits a value instead of 16, so the same
memory holds more tokens). An optional host tier (KV offload) adds blocks that live in
host memory across the host link.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from functools import cached_property

from cosim.serving import config
from workloads.io import InputError

__all__ = ["PagedKV", "KVCapacity", "kv_capacity", "bytes_per_token", "window_note", "fit_rule", "ref_context",
           "StoredTokens"]

_REF_CONTEXT = 4096  # context at which a recipe's cache bytes/token are read (KIVI keeps a
                     # 128-token full-precision residual, so short contexts cost more per token)


def ref_context(model) -> int:
    """The context bytes_per_token reads the cache at: 4,096 tokens, or the sliding window / attention
    chunk where shorter, so that every layer still holds every token (a 128-token window read at 4,096
    tokens spread its 128 cached tokens over 4,096: gpt-oss-20b 25,344 B/token for 49,152 B paged per
    token, optimistic for sequences shorter than 4,096)."""
    ctx = _REF_CONTEXT
    if getattr(model, "window_layers", 0):
        ctx = min(ctx, int(model.sliding_window))
    if getattr(model, "chunk_layers", 0):
        ctx = min(ctx, int(model.attention_chunk))
    return ctx


def bytes_per_token(workload, context: int | None = None) -> float:
    """KV bytes one token occupies on the device under this workload's format and recipe, every layer
    paged per token (context None: ref_context of the model)."""
    context = ref_context(workload.model) if context is None else context
    tr = workload.trace("decode", 1, context)
    return tr.meta["footprint"]["kv_cache"] / context


EXACT_UP_TO, GRID_PER_DOUBLING = 4096, 128  # StoredTokens reads contexts beyond 4,096 tokens ~0.8 % apart
# (prompt, generated tokens) at which a prompt-only recipe's line is checked (StoredTokens.line_holds): a short
# generation, one past a 4,096-token budget or window, and one longer than its prompt
LINE_PROBES = ((1000, 1), (4096, 100), (4096, 4096), (16384, 16384))
APPENDED_SPAN = 1024  # tokens over which a prompt-only recipe's rate for generated tokens is read (8 of KIVI's groups)


def _grid_step(n: int) -> int:
    """StoredTokens' read spacing at `n` tokens: every block up to EXACT_UP_TO, then GRID_PER_DOUBLING a doubling."""
    return 1 if n <= EXACT_UP_TO else (1 << (n.bit_length() - 1)) // GRID_PER_DOUBLING


def _up(n: int) -> int:
    """`n` rounded up to StoredTokens' read grid (itself up to 4,096 tokens)."""
    step = _grid_step(n)
    return -(-n // step) * step


class StoredTokens:
    """How many of the capacity's tokens (its unit: `unit_bpt` bytes, the workload's KV bytes per token at
    ref_context) one request's KV occupies at `tokens` of context, under a recipe whose stored bytes per token move
    with the context: an eviction budget (SnapKV, StreamingLLM) keeps a short context whole and caps a long one,
    KIVI's full-precision residual dominates a short one. Read at the request's own context from the recipe's decode
    trace there (the context's tokens as one prompt; a recipe compressing the prompt alone, SnapKV or FastKV, is
    read at the request's prompt and its generated tokens: _after_prompt), as a share of the plain format's trace
    at the same context, both of the model without its windows, so that sliding-window layers stay paged per token
    (window_note). One trace pair per block-rounded context, kept. Before session 36 every request was charged the
    ratio at ref_context: SnapKV's 4x at 4,096 tokens admitted 512-token requests that it leaves uncompressed at 4x
    what fits."""

    def __init__(self, workload, unit_bpt: float, block_size: int):
        import dataclasses
        self.workload, self.unit, self.block_size = workload, float(unit_bpt), int(block_size)
        model = workload.model
        # the engine pages a windowed (chunked) layer per token like a full one (window_note), so a request holds
        # every token its recipe keeps in every layer: read as a model without windows stores it (read as each
        # token's share of a plain cache capped at the window, StreamingLLM's 2,004 tokens of 12,000 on Mistral-7B
        # were charged 5,887)
        if model.window_layers or model.chunk_layers:
            model = dataclasses.replace(model, sliding_window=None, attention_chunk=None)
        self.charged = dataclasses.replace(workload, model=model)
        self.plain = dataclasses.replace(self.charged, recipe=None)
        self.plain_bpt = bytes_per_token(self.plain)
        self.prompt_only = workload.prompt_only  # its charge reads the request's prompt too (__call__)
        self._memo: dict = {}
        self._rates: dict = {}
        self._plain: dict = {}  # the plain format's KV bytes per context read (a prompt does not change them)
        self._walk: tuple = ([], [])  # _peak's read points in order, and the most bytes held up to each

    def __call__(self, tokens: int, prompt: int | None = None) -> int:
        """`prompt`: how many of the `tokens` its (last) prefill wrote; read only where the recipe compresses the
        prompt alone (SnapKV, FastKV keep generated tokens whole): _after_prompt."""
        n = -(-int(tokens) // self.block_size) * self.block_size  # what the blocks hold: whole blocks
        if n <= 0:
            return 0
        if prompt is not None and self.prompt_only and int(tokens) > int(prompt):
            key = (n, int(prompt))
            hit = self._memo.get(key)
            if hit is None:
                held = max(self._peak(-(-int(prompt) // self.block_size) * self.block_size),
                           self._after_prompt(int(prompt), n))
                hit = self._memo[key] = max(int(math.ceil(held / self.unit - 1e-9)), 1)
            return hit
        hit = self._memo.get(n)
        if hit is None:
            hit = self._memo[n] = max(int(math.ceil(self._peak(n) / self.unit - 1e-9)), 1)
        return hit

    def _after_prompt(self, prompt: int, n: int) -> float:
        """Bytes a request of a `prompt`-token prompt holds at `n` > prompt tokens under a recipe compressing the
        prompt alone: the kept prompt plus each generated token at the rate the recipe stores one it keeps (_line)
        where that is what the recipe stores (line_holds: SnapKV, FastKV alone or with a KV format); else read
        (_read)."""
        return self._line(prompt, n) if self.line_holds else self._read(prompt, n)

    def _line(self, prompt: int, n: int) -> float:
        return self._grid_held(prompt) + (n - prompt) * self.appended_rate

    def _read(self, prompt: int, n: int) -> float:
        """The recipe's decode trace at `n` tokens given its `prompt` (build_trace's prompt_len), the prompt and the
        generated tokens each rounded up to the grid (_up: exact to 4,096 tokens, then ~0.8 % apart), so a long
        run builds hundreds of traces, not one per block. Rounded up, it bounds a cache that grows with either
        length (a budget; RocketKV's steps); a quantized part's fp16 residual (snapkv+kivi2) is read to within its
        swing between grid points."""
        p = _up(prompt)
        m = p + _up(n - prompt)
        return self.bytes_per_context_token(m, p) * m

    @cached_property
    def line_holds(self) -> bool:
        """Whether the line through the kept prompt at appended_rate (_line, one trace a prompt) is what the recipe
        stores: compared with its decode trace at LINE_PROBES (prompt, generated) pairs, within 1e-6. Not where a
        part evicts generated tokens too (StreamingLLM, RazorAttention, H2O beside SnapKV: the line charged
        snapkv+streaming_llm 2.0-3.3x what it stores at 3,000-6,000 generated tokens on Llama-3-8B, snapkv+h2o 0.76x,
        under, at 8,000 + 4,000), nor for RocketKV (its cache is sized for its reserve before the first step and
        keeps chunk summaries of every token), nor for a quantized part's fp16 residual: those are read (_read),
        which a run pays for in traces (snapkv+streaming_llm, 1,000 ShareGPT-like requests: 8,151 reads, ~9 s in all
        with a recipe parsed once a file and a tensor's bytes once)."""
        for prompt, generated in LINE_PROBES:
            n = prompt + generated
            read = self.bytes_per_context_token(n, prompt) * n
            if abs(self._line(prompt, n) - read) > 1e-6 * read:
                return False
        return True

    @cached_property
    def appended_rate(self) -> float:
        """Bytes a generated token adds under a recipe compressing the prompt alone: its rate over APPENDED_SPAN
        tokens after a 1-token prompt (build_trace's prompt_len), where it keeps every token (of the model without
        its windows: self.charged)."""
        return self.bytes_per_context_token(APPENDED_SPAN, 1)

    def _peak(self, n: int) -> float:
        """The most bytes the request held at any context up to `n`: blocks are never given back while it runs, and
        a cache can shrink as it grows (KIVI quantizes its fp16 residual every 128 tokens: Llama-3-8B holds more at
        240 tokens than at 256), so a charge read at n alone let a request's peak pass the up-front check and the
        static reservation. The read points (every block to 4,096 tokens, then the grid) are walked in order once."""
        points, peaks = self._walk
        while not points or points[-1] < n:
            nxt = (points[-1] if points else 0) + self.block_size
            step = _grid_step(nxt)
            nxt = -(-nxt // step) * step  # the next read point: the next block, or grid point past 4,096 tokens
            if nxt > n:
                break
            points.append(nxt)
            peaks.append(max(peaks[-1] if peaks else 0.0, self._grid_held(nxt)))
        i = bisect.bisect_right(points, n) - 1
        return max(peaks[i] if i >= 0 else 0.0, self._held(n))

    def _held(self, n: int) -> float:
        """KV bytes a request holds at `n` tokens: exact up to 4,096 tokens; beyond, the larger of the two grid
        points around n (128 a doubling, block-aligned, ~0.8 % apart), so a long-context run builds hundreds of
        traces, not one per block. The upper point bounds a cache that grows with the context (a budget capping
        the kept tokens; RocketKV's budget stepping up, Qwen2.5-7B 2,560 -> 2,816 tokens: 114 -> 181 MB); a
        cache that rises and falls within a step is read to within its swing: KIVI's fp16 residual, quantized
        group by group. Measured on Qwen2.5-7B, every block from 4,096 to 30,000 tokens, charged / stored:
        KIVI-2 0.983-1.018, GEAR-2 0.985-1.016, ZipCache and KVQuant-3 1.000-1.007, RocketKV 0.9995-1.12
        (its step)."""
        step = _grid_step(n)
        lo = n // step * step
        return self._grid_held(n) if lo == n else max(self._grid_held(lo), self._grid_held(lo + step))

    def _grid_held(self, n: int) -> float:
        return self.bytes_per_context_token(n) * n

    def bytes_per_context_token(self, n: int, prompt: int | None = None) -> float:
        """KV bytes a request holds per token of its `n`-token context (`prompt` of them its prompt's; None: all)
        under the recipe (two traces, once a length: the grid, moves and the note read the same lengths)."""
        key = n if prompt is None or prompt >= n else (n, prompt)
        rate = self._rates.get(key)
        if rate is None:
            recipe = self.charged.trace("decode", 1, n, prompt_len=prompt).meta["footprint"]["kv_cache"]
            plain = self._plain.get(n)
            if plain is None:
                plain = self._plain[n] = self.plain.trace("decode", 1, n).meta["footprint"]["kv_cache"]
            rate = self._rates[key] = self.plain_bpt * (recipe / plain if plain else 1.0)
        return rate

    def moves(self, contexts) -> bool:
        """Whether the recipe stores any of these contexts (or, compressing the prompt alone, its generated tokens:
        appended_rate) at a rate more than 1 % off the capacity's unit. A
        weights-only recipe never does; an fp8 cache's fixed per-head scales (2 kB a sequence, 0.2 % of a 16-token
        request) would, charged per context, put a request onto one more 16-token block (fp8_kv at 1,000 tokens:
        64 blocks, not 63) where `--kv fp8_e4m3` does not: such a recipe is a token of capacity a token, as the
        format is."""
        rates = [self.bytes_per_context_token(n) for n in set(contexts)]
        rates += [self.appended_rate] if self.prompt_only else []
        return any(abs(rate - self.unit) > 1e-2 * self.unit for rate in rates)

    def note(self, contexts) -> str:
        """The rule and its figures at the run's shortest and longest request (its prompts, for a recipe compressing
        the prompt alone), for the report."""
        lo, hi = min(contexts), max(contexts)
        at = ", ".join(f"{self.bytes_per_context_token(n):,.0f} B/token at {n:,} tokens"
                       for n in dict.fromkeys((lo, hi)))
        after = ("" if not self.prompt_only else
                 f"; past its prompt each generated token is added at the rate the recipe stores a token it keeps "
                 f"({self.appended_rate:,.0f} B/token: its decode trace over {APPENDED_SPAN:,} tokens after a "
                 f"1-token prompt), as that is what it stores (checked at {len(LINE_PROBES)} prompt and generation "
                 f"lengths)" if self.line_holds else
                 "; past its prompt a request is charged the recipe's decode trace at its prompt and context (the "
                 "two lengths rounded up to the grid), as a line through its kept prompt at a rate per generated "
                 "token is not what it stores (a part evicting generated tokens too, RocketKV's reserve and "
                 "chunk summaries, a quantized part's residual or scales)")
        return (f"KV capacity: recipe {self.workload.recipe} stores a request's cache at a rate its "
                f"{'prompt' if self.prompt_only else 'context'} sets (the recipe's decode trace at that "
                f"{'prompt' if self.prompt_only else 'context'}, as the step prices read it); each request is charged "
                f"that, in the capacity's {self.unit:,.0f} B/token units (the recipe's rate at "
                f"{ref_context(self.workload.model):,} tokens): {at}{after}"
                + (f"; contexts beyond {EXACT_UP_TO:,} tokens read on a grid ~0.8 % apart (within 2 % of the stored "
                   f"bytes; more at a budget's step)" if hi > EXACT_UP_TO else ""))


def window_note(model) -> list:
    """Sliding-window layers are paged per token like full layers (as vLLM's paged cache
    does; bytes_per_token is read where every layer holds every token, ref_context): say so
    where a model has them, since capacity is then pessimistic past the window."""
    n = model.window_layers if getattr(model, "sliding_window", None) else 0
    out = []
    if n:
        out.append(f"KV capacity: {model.name}'s {n} sliding-window layers (window {model.sliding_window:,} tokens) "
                   f"are paged per token like full-attention layers, so capacity is pessimistic for sequences longer "
                   f"than the window")
    c = getattr(model, "chunk_layers", 0)
    if c:  # Llama-4's chunked local attention: the same rule (bytes_per_token is read within one chunk)
        out.append(f"KV capacity: {model.name}'s {c} chunked-attention layers (chunk {model.attention_chunk:,} "
                   f"tokens) are paged per token like full-attention layers, so capacity is pessimistic for "
                   f"sequences longer than the chunk")
    return out


def fit_rule(hw, memory_fraction: float | None = None, footprint: str = "the footprint") -> str:
    """The memory rule a command applies, for its report. memory_fraction None: `plan`,
    `generate` (and `roofline` / `simulate`): `footprint` (what fits: `plan` says "a layout's
    per-device footprint") fits up to 100 % of the device's main memory; else `serve`'s: the
    engine takes that fraction (vLLM's gpu_memory_utilization) for weights, activations and KV.
    Either way the capacity is the device file's datasheet figure, not a measured device total
    (docs/serving.md, "Memory capacity")."""
    m = hw.main_memory
    cap = (f"{hw.name}'s {m.name} capacity {m.capacity_bytes / 1e9:,.4g} GB ({m.capacity_bytes / 2**30:,.2f} GiB, the "
           f"device file's datasheet figure, not a measured device total)")
    if memory_fraction is None:
        return (f"memory rule: {footprint} (weights + KV + activations) fits if it uses at most 100 % of {cap}; "
                f"`cosim serve` uses memory_fraction {config.DEFAULT_MEMORY_FRACTION:g} of it by default")
    return (f"memory: the engine uses memory_fraction {memory_fraction:g} of {cap} for weights, activations and "
            f"KV, as vLLM's gpu_memory_utilization; `cosim plan` / `generate` count a footprint as fitting up to 100 %")


@dataclass(frozen=True)
class KVCapacity:
    blocks: int
    block_size: int
    bytes_per_token: float
    memory_bytes: float
    weights_bytes: float
    activations_bytes: float
    source: str  # how the capacity was set

    @property
    def tokens(self) -> int:
        return self.blocks * self.block_size


class KVMemoryError(InputError):
    """A KV capacity the device's memory cannot hold (what a scheduler's budget can change), as opposed to a
    refusal of the workload itself."""


def kv_capacity(workload, hw, block_size: int, max_batched_tokens: int, override_tokens: int | None = None,
                memory_fraction: float = 1.0, longest_prompt: int = 0) -> KVCapacity:
    """`longest_prompt`: the longest prompt a chunk of it attends over (chunked prefill), for eager attention's
    score matrices."""
    bpt = bytes_per_token(workload)
    mem = hw.main_memory.capacity_bytes * memory_fraction
    trace = workload.prompt_part(max_batched_tokens)  # a step's budget of tokens, not a prompt
    fp = trace.meta["footprint"]
    excess, held_by = chunk_score_excess(trace, longest_prompt)
    w, act = fp["weights"], fp["activations"] + excess
    total = hw.main_memory.capacity_bytes
    share = (f"{mem / 2**30:.1f} GiB for the engine (memory_fraction {memory_fraction:g} x {total / 2**30:.1f} GiB "
             f"of {hw.main_memory.name})")
    free = mem - w - act
    if override_tokens is not None:
        if override_tokens * bpt > max(free, 0.0):  # more KV than the device holds: refused, never "(given)"
            raise KVMemoryError(f"serve: kv_capacity_tokens: got {override_tokens:,} "
                                f"({override_tokens * bpt / 1e9:,.1f} GB of KV at {bpt:,.0f} B/token); expected at "
                                f"most {max(int(free // bpt), 0):,} tokens: {hw.name} has {share}, minus weights "
                                f"{w / 2**30:.1f} GiB and activations {act / 2**30:.2f} GiB")
        blocks, src = override_tokens // block_size, f"kv_capacity_tokens={override_tokens} (given)"
    else:
        if free <= 0:
            raise KVMemoryError(f"serve: hw: {hw.name} has {share}; weights {w / 2**30:.1f} GiB + "
                                f"activations {act / 2**30:.2f} GiB leave no room for a KV cache")
        blocks = int(free // (block_size * bpt))
        src = (f"({total / 2**30:.2f} GiB x {memory_fraction:g} - weights {w / 2**30:.2f} GiB - activations "
               f"{act / 2**30:.3f} GiB at {max_batched_tokens} tokens"
               + (f", {held_by} over a {longest_prompt:,}-token prompt included" if excess > 0 else "")
               + f") / ({block_size} x {bpt:.0f} B/token)")
    return KVCapacity(blocks, block_size, bpt, mem, w, act, src)


def chunk_score_excess(trace, longest_prompt: int) -> tuple[float, str]:
    """Bytes attention's score matrices take beyond what the trace's footprint counts when a chunk of the trace's
    tokens attends over a longer prompt: chunk x prompt scores, not chunk x chunk. Eager attention (a profile's
    "unfused" backend): its peak (workloads.profiles.eager_attention_peak_bytes); the unfused algorithm in the trace
    (attention="unfused", H2O's prefill): its largest score GEMM's output, which the builder's footprint counts once
    (so does this, grown to the prompt). 0 for flash backends, which keep no score matrix. Returns (bytes, what
    holds them, for the capacity's source line)."""
    from workloads.profiles import eager_attention_peak_bytes, is_unfused_attention
    in_trace = trace.meta.get("attention") == "unfused" or trace.meta.get("recipes_applied")
    if longest_prompt <= trace.seq or not (trace.meta.get("profile") or in_trace):  # without building the ops
        return 0.0, ""
    att = [op for op in trace.ops if is_unfused_attention(op)]
    if att:
        longer = [op.with_(dims={**op.dims, "kv_len": longest_prompt}) for op in att]
        return (max(map(eager_attention_peak_bytes, longer)) - max(map(eager_attention_peak_bytes, att)),
                "eager attention's scores")
    scores = [op.outputs[0].nbytes for op in trace.ops if op.kind == "gemm" and op.name.startswith("attn_scores")]
    if not scores:
        return 0.0, ""
    longest = max(scores)  # one score matrix at n = the trace's keys (a prefill's own tokens): grown to the prompt
    return longest * (longest_prompt / trace.seq - 1.0), "the unfused algorithm's score matrix"


class PagedKV:
    """Block accounting for one device (plus an optional host tier for offload)."""

    def __init__(self, blocks: int, block_size: int, host_blocks: int = 0, stored: StoredTokens | None = None):
        """`stored`: the capacity's tokens a context occupies (a recipe's stored cache), else the context itself."""
        self.capacity, self.block_size, self.host_capacity = blocks, block_size, host_blocks
        self.stored = stored
        self.used = self.host_used = 0
        self.held: dict = {}  # rid -> (device blocks, host blocks)

    def stored_tokens(self, tokens: int, prompt: int | None = None) -> int:
        """The capacity's tokens (of bytes_per_token each) that `tokens` of context occupy, `prompt` of them its
        prompt's (None: all of them; StoredTokens)."""
        return self.stored(tokens, prompt) if self.stored is not None else tokens

    def blocks_for(self, tokens: int, prompt: int | None = None) -> int:
        return math.ceil(self.stored_tokens(tokens, prompt) / self.block_size)

    @property
    def free(self) -> int:
        return self.capacity - self.used

    def can_hold(self, rid, tokens: int, prompt: int | None = None) -> bool:
        d, h = self.held.get(rid, (0, 0))
        need = self.blocks_for(tokens, prompt) - d - h
        return need <= self.free + (self.host_capacity - self.host_used)

    def grow(self, rid, tokens: int, prompt: int | None = None) -> bool:
        """Make `rid` hold `tokens` tokens (`prompt` of them its prompt's); False (nothing changed) if memory is
        short."""
        d, h = self.held.get(rid, (0, 0))
        need = self.blocks_for(tokens, prompt) - d - h
        if need <= 0:
            return True
        on_dev = min(need, self.free)
        on_host = need - on_dev
        if on_host > self.host_capacity - self.host_used:
            return False
        self.used += on_dev
        self.host_used += on_host
        self.held[rid] = (d + on_dev, h + on_host)
        return True

    def release(self, rid) -> int:
        d, h = self.held.pop(rid, (0, 0))
        self.used -= d
        self.host_used -= h
        return d + h

    def host_tokens(self, rid) -> int:
        return self.held.get(rid, (0, 0))[1] * self.block_size
