"""Pipeline timing of a sharded trace: per-stage time, bubble and step latency.

A parallel trace (workloads.parallel) lists one micro-batch's path through every pipeline
stage. Stage s runs its share of the per-layer ops (layers_s / layers of each), the
embedding (stage 0), the head (last stage) and one point-to-point send (all but the last).
A synchronous step of m micro-batches on p stages takes (m + p - 1) x the slowest stage
(GPipe schedule); (p - 1) x that stage is the bubble. Decode sequences wait for their
step, so the step is also each sequence's time per output token.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["PipelineTiming", "pipeline_timing", "layout_step", "device_static_power_w",
           "system_energy_formula"]


@dataclass(frozen=True)
class PipelineTiming:
    """One synchronous pipeline step (GPipe schedule) of a sharded trace, in seconds."""
    stage_latency_s: list  # one micro-batch's time on each stage
    slowest_stage_s: float
    step_latency_s: float  # (microbatches + stages - 1) x the slowest stage
    bubble_s: float  # (stages - 1) x the slowest stage
    bubble_fraction: float
    microbatches: int

    def to_dict(self) -> dict:
        return asdict(self)


def pipeline_timing(rows: list, parallel: dict) -> PipelineTiming:
    """Stage latencies and step figures from report rows (latency_s totals over repeat)."""
    layers = parallel["stage_layers"]
    p, m = len(layers), int(parallel.get("microbatches", 1))
    total_layers = sum(layers)
    stage = [0.0] * p
    for r in rows:
        lat, g = r["latency_s"], r.get("group", "")
        if g == "embed":
            stage[0] += lat
        elif g == "head":
            stage[-1] += lat
        elif g == "pp":
            for s in range(p - 1):
                stage[s] += lat / (p - 1)
        else:  # per-layer work, split by each stage's share of the layers
            for s in range(p):
                stage[s] += lat * layers[s] / total_layers
    slowest = max(stage)
    step = (m + p - 1) * slowest
    return PipelineTiming(stage_latency_s=stage, slowest_stage_s=slowest, step_latency_s=step,
                          bubble_s=(p - 1) * slowest, bubble_fraction=(p - 1) / (m + p - 1), microbatches=m)


def layout_step(rep) -> dict:
    """The whole layout's step from a parallel report (one device's trace): latency (the
    pipeline step), tokens of the global batch, and the system's energy — every tp x dp
    shard walks all stages once per micro-batch, so the trace's energy counts
    tp x dp x micro-batches times, and every device draws static power for the whole step:
    the device-seconds the traces do not cover (a pipeline's idle stages, its bubble) add
    static power x that time. What `cosim plan`, sweeps and `cosim simulate` report."""
    par = rep.meta["parallel"]
    step = par["step_latency_s"]
    tokens = par["global_batch"] * (rep.seq if rep.phase == "prefill" else 1)
    copies = par["microbatches"] * par["tp"] * par["dp"]
    idle_s = max(0.0, par["devices"] * step - copies * rep.total_latency_s)
    idle_j = par.get("static_power_w", 0.0) * idle_s
    energy = rep.total_energy_j * copies + idle_j
    return {"step_latency_s": step, "tokens": tokens, "tokens_per_s": tokens / step, "energy_j": energy,
            "energy_per_token_j": energy / tokens, "idle_static_energy_j": idle_j, "idle_device_s": idle_s,
            "trace_energy_j": rep.total_energy_j, "trace_copies": copies}


def system_energy_formula(rep, st: dict) -> str:
    """The caption of the system energy per step, with both its parts as numbers:
    tp x dp x micro-batches copies of the trace's energy + the idle devices' static energy
    (device-seconds not covered by a trace x static power). `st` is `layout_step(rep)`."""
    from cosim.humanize import si

    par = rep.meta["parallel"]
    text = (f"{st['trace_copies']} x {si(st['trace_energy_j'], 'J')} (tp {par['tp']} x dp {par['dp']} x "
            f"{par['microbatches']} micro-batch traces) + idle static {si(st['idle_static_energy_j'], 'J')} "
            f"({st['idle_device_s']:.4g} idle device-s x {par.get('static_power_w', 0.0):.4g} W)")
    scope = rep.meta.get("energy_scope")
    return text + (f"; {scope}: idle static unknown, not counted" if scope else "")


def device_static_power_w(ops, costs, hw) -> float:
    """The static power (W) a priced trace carries, one rule for `simulate` (a parallel report's
    `meta.parallel.static_power_w`, which layout_step charges the idle devices) and the serving step
    (cosim.serving.steptime: the replica's devices beyond the trace's copies): the static J over the
    seconds of its device ops that report a static term, each x its repeat (collectives left out, as
    their static term is this power again: hwmodels.collectives.with_static_power; NaN terms, unknown
    static power, dropped); else the device file's `energy.static_power` (hwmodels.energy.static_power_w);
    0 W where it gives none (the report's energies are then dynamic only and say so). Idle devices of a
    layout draw it for the time they wait (layout_step; cosim.serving.steptime)."""
    from hwmodels.energy import static_power_w
    from workloads.ops import COLLECTIVE_KINDS
    parts = ((c.energy_breakdown["static"] * o.repeat, c.latency_s * o.repeat) for o, c in zip(ops, costs)
             if "static" in c.energy_breakdown and o.kind not in COLLECTIVE_KINDS)
    return float(static_power_w([(e, t) for e, t in parts if e == e], hw) or 0.0)
