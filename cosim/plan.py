"""The layout planner: every TP x PP x EP x DP layout of a model on a system, priced and ranked.

For each layout that shards the model exactly (workloads.parallel.check_layout), the planner
builds one device's trace, prices it on the system (compute on the device model, collectives
on the links) and reads the pipeline step from cosim.parallel_timing. Layouts whose fullest
device exceeds its memory stay in the table with ``fits = False`` and are never ranked.

Objectives (one number per layout, the first column of the ranking):
- latency: the step time — time per output token in decode, time to first token in prefill;
- throughput: tokens per second of the whole layout (all replicas);
- cost: device-seconds per token (devices x step / tokens per step), i.e. what the layout
  costs in accelerator time; multiply by a price per device-hour for money.

Micro-batches are a searched dimension of pipelined layouts: more micro-batches shrink the
bubble, (p-1)/(m+p-1), but each is a smaller batch that re-reads its stage's weights and runs
at lower efficiency, and a synchronous step is (m + p - 1) x the slowest stage's micro-batch
time. For pp > 1 every m dividing the replica's batch up to ``max_microbatches`` (default 4 x pp)
is priced; the layout keeps its best m for the objective, and the row's note lists what was tried.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

from cosim.energy_scope import energy_scope_label, is_dynamic_only
from cosim.humanize import si
from cosim.parallel_timing import layout_step
from cosim.simulate import simulate
from hwmodels.system import SystemSpec, load_system
from workloads.builder import build_trace
from workloads.io import InputError
from workloads.models import load_model
from workloads.ops import COLLECTIVE_KINDS
from workloads.parallel import Layout, check_layout

__all__ = ["plan", "PlanRow", "PlanResult", "enumerate_layouts", "microbatch_options", "OBJECTIVES", "plan_figure",
           "plot_plan"]

OBJECTIVES = {"latency": ("step_latency_s", min), "throughput": ("tokens_per_s", max),
              "cost": ("device_s_per_token", min)}


@dataclass(frozen=True)
class PlanRow:
    layout: str
    tp: int
    pp: int
    ep: int
    dp: int
    sp: bool
    microbatches: int
    devices: int
    fits: bool
    memory_per_device_bytes: float
    capacity_bytes: float
    step_latency_s: float = math.nan
    tokens_per_s: float = math.nan
    device_s_per_token: float = math.nan
    comm_share: float = math.nan  # collectives' share of one micro-batch's path
    bubble_fraction: float = 0.0
    energy_per_token_j: float = math.nan
    note: str = ""
    level: str = ""  # the level that priced it (e.g. roofline where the device has no calibration)
    # "dynamic + static", "dynamic only (no static power in <file>)" or "unknown (energy n/a for this point)"
    energy_scope: str = ""
    # what the level's numbers rest on, simulate's priced_from joined by "; " (a sweep row's `provenance`):
    # e.g. gb200_nvl72's b200 calibration transferred from h100_sxm, CROSS-ARCHITECTURE (issue 11)
    provenance: str = ""
    # the attention backend(s) the level priced (simulate's inputs: the calibration's default, as plan takes no
    # profile); "" where the level prices one attention whatever the library
    attention_backend: str = ""


@dataclass
class PlanResult:
    model: str
    system: str
    phase: str
    batch: int
    seq: int
    objective: str
    level: str
    rows: list = field(default_factory=list)  # ranked fitting rows first, then fits=False rows
    skipped: list = field(default_factory=list)  # (layout, why it cannot shard this model)
    notes: list = field(default_factory=list)  # run-wide (e.g. the checkpoint's declared weights format)
    # what the priced layouts' numbers rest on, each of simulate's priced_from texts once (the header's line)
    priced_from: tuple = ()
    weights: str = ""  # the weights format priced: given, else the checkpoint's declared one, else bf16

    @property
    def level_used(self) -> str:
        """The level(s) that priced the rows (`level` is the one requested), e.g. 'analytical+roofline'."""
        from hwmodels.levels import summarize_levels
        return summarize_levels(lv for r in self.rows for lv in r.level.split("+") if lv)

    @property
    def best(self) -> PlanRow | None:
        return self.rows[0] if self.rows and self.rows[0].fits else None

    def to_frame(self):
        import pandas as pd
        return pd.DataFrame([asdict(r) for r in self.rows])


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def microbatch_options(batch: int, dp: int, pp: int, fixed: int | None = None, cap: int | None = None) -> list[int]:
    """Micro-batch counts to price for one (dp, pp): 1 without pipelining; `fixed` when given;
    else every divisor of the replica's batch up to `cap` (default 4 x pp)."""
    if pp == 1 or batch % dp:
        return [1]
    if fixed is not None:
        return [fixed]
    cap = 4 * pp if cap is None else cap
    return [m for m in _divisors(batch // dp) if m <= cap]


def enumerate_layouts(model, devices: int, batch: int, sp_options=(False,), microbatches: int | None = None,
                      max_microbatches: int | None = None, routing="uniform"):
    """(valid layouts, skipped (label, reason)) on at most `devices` devices; a pipelined
    layout appears once per micro-batch count searched."""
    valid, skipped = [], []
    E = model.moe.num_experts if model.moe else 1
    for tp in _divisors(devices):
        for pp in _divisors(devices // tp):
            for dp in _divisors(devices // (tp * pp)):
                eps = [1] + ([e for e in _divisors(E) if e > 1 and e % tp == 0 and (tp * dp) % e == 0]
                             if model.moe else [])
                for ep in eps:
                    for sp in sp_options:
                        if sp and tp == 1:
                            continue
                        for mb in microbatch_options(batch, dp, pp, microbatches, max_microbatches):
                            L = Layout(tp=tp, pp=pp, ep=ep, dp=dp, sp=sp, microbatches=mb,
                                       routing=routing if ep > 1 else "uniform")
                            try:
                                check_layout(L, model, batch)
                            except InputError as e:
                                skipped.append((L.label(), str(e)))
                                continue
                            valid.append(L)
    return valid, skipped


def _row(model, system, L: Layout, phase, batch, seq, level, fmt, compute_fallback=False,
         priced_from: dict | None = None) -> PlanRow:
    """One layout priced; `priced_from` (an ordered set) gathers its report's provenance texts."""
    trace = build_trace(model, phase=phase, batch=batch, seq=seq, parallel=L, **fmt)
    rep = simulate(trace, system, level=level, compute_fallback=compute_fallback)
    if priced_from is not None:
        priced_from.update(dict.fromkeys(rep.meta["priced_from"]))
    par = rep.meta["parallel"]
    st = layout_step(rep)  # the step of all replicas; system energy = tp x dp x micro-batch traces
    step, tokens, energy = st["step_latency_s"], st["tokens"], st["energy_j"]
    comm = sum(r["latency_s"] for r in rep.rows if r["kind"] in COLLECTIVE_KINDS)
    mem = rep.memory_bytes
    return PlanRow(L.label(), L.tp, L.pp, L.ep, L.dp, L.sp, L.microbatches, L.devices, rep.fits_in_memory, mem,
                   rep.capacity_bytes, step, tokens / step, L.devices * step / tokens,
                   comm / rep.total_latency_s, par["bubble_fraction"], energy / tokens,
                   "; ".join(rep.notes[:2]) if rep.notes else "", rep.level,
                   energy_scope_label(rep.meta.get("energy_scope", ""), energy / tokens),
                   "; ".join(rep.meta["priced_from"]), rep.meta["inputs"]["attention_backend"] or "")


def plan(model, system, phase: str = "decode", batch: int = 1, seq: int = 2048, objective: str = "latency",
         level: str = "roofline", weights: str | None = None, acts: str = "bf16", kv: str = "bf16",
         recipe: str | None = None, sp: bool | None = False, max_devices: int | None = None,
         microbatches: int | None = None, max_microbatches: int | None = None, routing="uniform",
         allow_beyond_max_context: bool = False, compute_fallback: bool = False) -> PlanResult:
    """Rank every exact layout of `model` on `system` by `objective` (see module docstring).
    ``compute_fallback`` runs ops whose format the device lacks at the next wider format's peak (noted).
    ``sp=None`` tries both with and without sequence parallelism; ``microbatches=None`` searches
    the micro-batch count of pipelined layouts (an int fixes it); ``routing`` is the expert routing
    EP layouts are priced under (workloads.routing: the busiest device sets the MoE step)."""
    if objective not in OBJECTIVES:
        raise InputError(f"plan: objective: got {objective!r}; expected one of {', '.join(OBJECTIVES)}")
    model = load_model(model)
    system = system if isinstance(system, SystemSpec) else load_system(system)
    devices = system.devices if max_devices is None else max_devices
    if not 1 <= devices <= system.devices:
        raise InputError(f"plan: max_devices: got {max_devices!r}; expected 1 .. {system.devices} ({system.name})")
    if microbatches is not None and microbatches < 1:
        raise InputError(f"plan: microbatches: got {microbatches!r}; expected a positive integer (or None to search)")
    if max_microbatches is not None and max_microbatches < 1:  # a cap of 0 dropped every pipelined layout
        raise InputError(f"plan: max_microbatches (CLI --max-microbatches): got {max_microbatches!r}; expected a "
                         f"positive integer (or none given: 4 x pp)")
    if microbatches is not None and max_microbatches is not None:  # a fixed count searches nothing: the cap is moot
        over = f", and {microbatches} exceeds the cap" if microbatches > max_microbatches else ""
        raise InputError(f"plan: max_microbatches (CLI --max-microbatches): got {max_microbatches}, which this run "
                         f"ignores (microbatches, CLI --microbatches, is fixed at {microbatches}: nothing is "
                         f"searched{over}); it applies only to a searched count (--microbatches auto): drop one")
    from workloads.routing import parse_routing
    if not model.moe and routing != "uniform":  # the routing is priced on EP layouts' experts only
        raise InputError(f"plan: routing (CLI --routing): got {routing!r}, which this run ignores ({model.name} has "
                         f"no experts); it applies only to a mixture-of-experts model's expert-parallel layouts: "
                         f"drop it or change the model")
    routing = parse_routing(routing, model.moe.num_experts if model.moe else None, "plan: routing")
    layouts, skipped = enumerate_layouts(model, devices, batch, (False, True) if sp is None else (sp,),
                                         microbatches, max_microbatches, routing)
    fmt = {"weights": weights, "acts": acts, "kv": kv, "recipe": recipe,
           "allow_beyond_max_context": allow_beyond_max_context}
    key, pick = OBJECTIVES[objective]
    sign = 1 if pick is min else -1
    prov: dict = {}
    rows = _best_microbatches([_row(model, system, L, phase, batch, seq, level, fmt, compute_fallback, prov)
                               for L in layouts], key, sign)
    fit = sorted((r for r in rows if r.fits), key=lambda r: (sign * getattr(r, key), r.devices))
    nofit = sorted((r for r in rows if not r.fits), key=lambda r: r.memory_per_device_bytes)
    from workloads.builder import declared_weights_note
    resolved, wnote = declared_weights_note(model, weights)
    notes = [wnote] if wnote else []
    if routing != "uniform" and not any(L.ep > 1 for L in layouts):  # said, as the run priced no routing
        notes.append(f"routing {routing}: no expert-parallel layout (ep > 1) was searched on {devices} device(s), so "
                     f"it changed nothing (each device holds every expert)")
    # the run-wide format note a row's trace carries (activations narrower than its GEMMs), said once
    one = build_trace(model, phase=phase, batch=1, seq=seq, **fmt).meta.get("notes", ())
    notes += [n for n in one if n.startswith(f"acts {acts}:")]
    from cosim.serving.kv_memory import fit_rule
    notes.append(fit_rule(system.device, footprint="a layout's per-device footprint"))
    lacking = [f for f in dict.fromkeys((weights, acts)) if f and not system.device.supports(f)]
    if compute_fallback and lacking:  # the table has no per-op rows: say once which formats ran wider
        notes.append("compute fallback: " + ", ".join(f"{f} computed at the {system.device.fallback_format(f)} peak"
                                                       for f in lacking) + f" ({system.device.name} has no unit for it)")
    return PlanResult(model.name, system.name, phase, batch, seq, objective, level, fit + nofit, skipped, notes,
                      tuple(prov), resolved)


def _best_microbatches(rows: list, key: str, sign: int) -> list:
    """One row per layout: the micro-batch count best for the objective among those that fit
    (or the smallest footprint when none fits), with the counts tried in its note."""
    groups: dict = {}
    for r in rows:
        groups.setdefault((r.tp, r.pp, r.ep, r.dp, r.sp), []).append(r)
    out = []
    for g in groups.values():
        if len(g) == 1:
            out.append(g[0])
            continue
        fit = [r for r in g if r.fits]
        best = (min(fit, key=lambda r: sign * getattr(r, key)) if fit
                else min(g, key=lambda r: r.memory_per_device_bytes))
        tried = ", ".join(f"{r.microbatches}: {si(r.step_latency_s, 's')}" for r in sorted(g, key=lambda r: r.microbatches))
        note = f"micro-batches searched (m: step) {tried}; best m = {best.microbatches}"
        out.append(replace(best, note="; ".join(x for x in (note, best.note) if x)))
    return out


def plan_figure(result: PlanResult):
    """Horizontal bars of the objective per layout, each fitting bar labelled with its energy per
    token ("energy n/a" where the level gives none); layouts that do not fit are grey with their footprint. Where any plotted row's energy is
    dynamic only (a device file without static power), the x-axis label says so, naming the file."""
    from cosim.plots import pyplot
    plt = pyplot()

    key, _ = OBJECTIVES[result.objective]
    rows = result.rows[:30]
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(rows) + 1.5))
    vals = [getattr(r, key) if r.fits else 0.0 for r in rows]
    colors = ["tab:blue" if r.fits else "lightgrey" for r in rows]
    ax.barh([r.layout for r in rows][::-1], vals[::-1], color=colors[::-1])
    for i, r in enumerate(rows[::-1]):
        if not r.fits:
            ax.text(0, i, f"  does not fit ({r.memory_per_device_bytes / 1e9:.0f} GB > "
                          f"{r.capacity_bytes / 1e9:.0f} GB)", va="center", fontsize=7)
        else:  # every fitting bar has a label: the axis promises "bar labels: energy per token"
            x = getattr(r, key) if math.isfinite(getattr(r, key)) else 0.0
            label = f" {si(r.energy_per_token_j, 'J')}/token" if math.isfinite(r.energy_per_token_j) else " energy n/a"
            ax.text(x, i, label, va="center", fontsize=7)
    top = max((v for v in vals if math.isfinite(v)), default=0.0)
    if top > 0:
        ax.set_xlim(0, 1.3 * top)  # room for the energy labels beside the longest bar
    scopes = sorted({r.energy_scope for r in rows if r.fits and is_dynamic_only(r.energy_scope)})
    ax.set_xlabel(key + ("; bar labels: energy per token" if any(r.fits for r in rows) else "")
                  + (f", {'; '.join(scopes)}" if scopes else ""), fontsize=8)
    ax.set_title(f"{result.model} {result.phase} b={result.batch} s={result.seq} on {result.system} "
                 f"({result.objective}, {_level_text(result)})", fontsize=9)
    fig.tight_layout()
    return fig


def _level_text(result: PlanResult) -> str:
    """The level that priced the bars, and the one requested where they differ (never the request alone)."""
    used = result.level_used if result.rows else result.level
    return used if used == result.level else f"{used}; requested {result.level}"


def plot_plan(result: PlanResult, path) -> None:
    """Write plan_figure(result) to `path` (.png, .svg or .pdf)."""
    from cosim.plots import pyplot
    fig = plan_figure(result)
    fig.savefig(path, dpi=120)
    pyplot().close(fig)
