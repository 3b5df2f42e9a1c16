"""Event-driven memory pipeline of one systolic array (simpy).

DMA engines move each fold's operand tiles from DRAM into double-buffered SRAM (ifmap /
filter halves), the array computes a fold once all its operands have arrived, and a
write-back engine drains outputs (and spilled partial sums) from the ofmap buffer. The
DRAM is either one shared channel (``ports="shared"``, the hardware default: reads and
writes contend) or one port per operand (``ports="per_operand"``, SCALE-Sim's model);
``sram_bandwidth`` limits how fast the SRAM banks can feed the array (a fold that needs
more bytes than its cycles allow is stretched; counted as "sram_port" stall).

Which tiles move follows the fold order of `hwmodels.systolic` (column folds outer, row
folds inner) and the same reuse rules as `hwmodels.systolic.dram_traffic` (an operand
stays on chip when the part the inner loop revisits fits in half its buffer), so the
simulated traffic equals the closed form's and, with unlimited bandwidth and zero
latency, the simulated cycles equal the closed-form compute cycles exactly.

Results: total cycles, stall cycles by cause (the operand the array waited for last, or
a full ofmap buffer), DRAM bytes, achieved bandwidth and a timeline (`gantt_png`).
"""

from __future__ import annotations

import math
import dataclasses
from dataclasses import dataclass, field

from hwmodels.accel import PSUM_BYTES, check_tile_buffers
from hwmodels.systolic import SystolicError, _ceil, fold_geometry, gemm_cycles

__all__ = ["PipelineConfig", "PipelineResult", "simulate_gemm", "gantt_png", "fold_plan", "check_fits"]


@dataclass(frozen=True)
class PipelineConfig:
    rows: int
    cols: int
    dataflow: str = "ws"
    sram_bytes: dict = field(default_factory=lambda: {"ifmap": 2**20, "filter": 2**20, "ofmap": 2**20})
    bandwidth: float = math.inf  # bytes per cycle (per port when ports="per_operand")
    latency: float = 0.0  # cycles from request to data
    ports: str = "shared"  # shared | per_operand
    sram_bandwidth: float = math.inf  # bytes per cycle the SRAM banks/ports can feed the array
    elem_bytes: dict = field(default_factory=lambda: {"ifmap": 1.0, "filter": 1.0, "ofmap": 1.0})
    overlap: bool = False  # folds back to back (double-buffered stationary registers)
    double_buffered: bool = True


def check_fits(cfg: PipelineConfig, where: str = "sram") -> None:
    """The buffers must hold at least one tile edge per half, as the cycle level requires
    (hwmodels.accel.tile_buffer_need, the one rule): R elements of the ifmap, one R x C filter
    tile, C elements of the ofmap (x2 when double buffered), in the configured element sizes."""
    check_tile_buffers(cfg.sram_bytes, cfg.rows, cfg.cols, cfg.elem_bytes, lambda name: f"{where} ({name})",
                       2 if cfg.double_buffered else 1)


def fold_plan(m: int, n: int, k: int, cfg: PipelineConfig) -> list[dict]:
    """Per fold: cycles and the bytes to read (ifmap, filter, psum) and write (ofmap)."""
    df, R, C = cfg.dataflow, cfg.rows, cfg.cols
    share = 0.5 if cfg.double_buffered else 1.0
    cap = {k_: v * share for k_, v in cfg.sram_bytes.items()}
    eb = cfg.elem_bytes
    sr, sc, t = fold_geometry(m, n, k, R, C, df)
    rf, cf = _ceil(sr, R), _ceil(sc, C)
    g = gemm_cycles(m, n, k, R, C, df, overlap=False)
    per_fold = g.cycles_per_fold
    folds = rf * cf
    preload = 0 if df == "os" else R
    step = max(t, R)
    tail = t + R + C - 2
    plan = []
    for j in range(cf):
        for i in range(rf):
            idx = j * rf + i
            ur, uc = min(R, sr - i * R), min(C, sc - j * C)
            if cfg.overlap:
                if folds == 1:
                    cyc = preload + tail
                elif idx == 0:
                    cyc = preload + step
                elif idx == folds - 1:
                    cyc = tail
                else:
                    cyc = step
            else:
                cyc = per_fold
            rd = {"ifmap": 0.0, "filter": 0.0, "psum": 0.0}
            wr = 0.0
            if df == "os":
                a_fits = m * k * eb["ifmap"] <= cap["ifmap"]
                b_fits = k * uc * eb["filter"] <= cap["filter"]
                if j == 0 or not a_fits:
                    rd["ifmap"] = ur * k * eb["ifmap"]
                if i == 0 or not b_fits:
                    rd["filter"] = k * uc * eb["filter"]
                wr = ur * uc * eb["ofmap"]
            else:
                # ws: stationary = filter tile (K-slice x N-slice), stream = ifmap (M x K-slice)
                # is: stationary = ifmap tile (K-slice x M-slice), stream = filter (K-slice x N)
                stat, strm = ("filter", "ifmap") if df == "ws" else ("ifmap", "filter")
                other = m if df == "ws" else n  # streamed length T
                whole = (m * k if df == "ws" else k * n) * eb[strm]
                rd[stat] = ur * uc * eb[stat]
                if j == 0 or whole > cap[strm]:
                    rd[strm] = other * ur * eb[strm]
                spill = rf > 1 and other * uc * PSUM_BYTES > cap["ofmap"]
                if spill:
                    if i > 0:
                        rd["psum"] = other * uc * PSUM_BYTES
                    wr = other * uc * (eb["ofmap"] if i == rf - 1 else PSUM_BYTES)
                elif i == rf - 1:
                    wr = other * uc * eb["ofmap"]
            # array-side SRAM traffic of the fold (operands in, results out): a bank/port
            # limit stretches the fold when it cannot be fed at the array's pace
            if df == "os":
                feed = ur * k * eb["ifmap"] + k * uc * eb["filter"] + ur * uc * eb["ofmap"]
            else:
                stat, strm = ("filter", "ifmap") if df == "ws" else ("ifmap", "filter")
                other = m if df == "ws" else n
                feed = ur * uc * eb[stat] + other * ur * eb[strm] + other * uc * PSUM_BYTES
            port_cycles = feed / cfg.sram_bandwidth if not math.isinf(cfg.sram_bandwidth) else 0.0
            plan.append({"cycles": max(cyc, port_cycles), "array_cycles": cyc, "read": rd, "write": wr})
    return plan


@dataclass
class PipelineResult:
    """One GEMM through the event-driven memory pipeline (cycles of the array clock)."""
    total_cycles: float  # until the last write-back
    compute_cycles: float  # folds at the array's own pace
    compute_end: float  # the last fold's end
    stall_cycles: float  # waits of the array (operands, ofmap buffer, SRAM ports)
    stalls_by_cause: dict  # ifmap / filter / psum / ofmap / sram_port -> cycles
    drain_cycles: float  # write-backs after the last fold
    dram_read_bytes: float
    dram_write_bytes: float
    achieved_bandwidth: float  # DRAM bytes per cycle over the whole run
    folds: int
    timeline: list  # (lane, start, end, label) when kept

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def simulate_gemm(m: int, n: int, k: int, cfg: PipelineConfig, keep_timeline: bool = True) -> PipelineResult:
    """Run the pipeline for one (m x k)(k x n) GEMM; see the module docstring."""
    if cfg.ports not in ("shared", "per_operand"):
        raise SystolicError(f"pipeline: ports: got {cfg.ports!r}; expected 'shared' or 'per_operand'")
    if not cfg.bandwidth > 0:
        raise SystolicError(f"pipeline: bandwidth: got {cfg.bandwidth!r}; expected > 0 bytes/cycle")
    return _GemmPipeline(fold_plan(m, n, k, cfg), cfg, keep_timeline).run()


class _GemmPipeline:
    """The simpy processes of one GEMM: a reader filling the (double-)buffered SRAM, the
    array computing fold after fold, a writer draining the ofmap buffer; all share the
    DRAM port(s)."""

    def __init__(self, plan: list, cfg: PipelineConfig, keep_timeline: bool):
        import simpy

        self.simpy, self.plan, self.cfg, self.keep = simpy, plan, cfg, keep_timeline
        env = self.env = simpy.Environment()
        if cfg.ports == "shared":
            chan = simpy.Resource(env, capacity=1)
            self.port = {name: chan for name in ("ifmap", "filter", "psum", "ofmap")}
        else:
            self.port = {name: simpy.Resource(env, capacity=1) for name in ("ifmap", "filter", "ofmap")}
            self.port["psum"] = self.port["ofmap"]
        self.timeline: list[tuple] = []
        self.ready = [env.event() for _ in plan]  # all operands of fold f in SRAM
        self.arrival: list[dict] = [dict() for _ in plan]
        n_slots = 2 if cfg.double_buffered else 1
        self.slots = simpy.Container(env, capacity=n_slots, init=n_slots)
        self.out_q = simpy.Store(env, capacity=1)  # the other half of the ofmap buffer
        self.written = [env.event() for _ in plan]  # fold f's write-back finished
        self.done = env.event()
        self.stats = {"read": 0.0, "write": 0.0, "stall": {"ifmap": 0.0, "filter": 0.0, "psum": 0.0, "ofmap": 0.0}}

    def _mark(self, lane, start, label):
        if self.keep:
            self.timeline.append((lane, start, self.env.now, label))

    def transfer(self, name, nbytes, label):
        if nbytes <= 0:
            return
        env, cfg = self.env, self.cfg
        dur = 0.0 if math.isinf(cfg.bandwidth) else nbytes / cfg.bandwidth
        with self.port[name].request() as req:
            yield req
            start = env.now
            if dur:
                yield env.timeout(dur)
            self._mark(f"dram:{name}" if cfg.ports == "per_operand" else "dram", start, label)
        if cfg.latency:
            yield env.timeout(cfg.latency)

    def fetch(self, f, name, nbytes):
        if name == "psum":  # partial sums come back only after the previous fold wrote them
            yield self.written[f - 1]
        yield from self.transfer(name, nbytes, f"{name} f{f}")
        self.arrival[f][name] = self.env.now

    def reader(self):
        for f, p in enumerate(self.plan):
            yield self.slots.get(1)
            procs = [self.env.process(self.fetch(f, name, b)) for name, b in p["read"].items() if b > 0]
            self.stats["read"] += sum(p["read"].values())
            if procs:
                yield self.simpy.AllOf(self.env, procs)
            self.ready[f].succeed()

    def writer(self):
        while True:
            f, nbytes = yield self.out_q.get()
            self.stats["write"] += nbytes
            yield from self.transfer("ofmap", nbytes, f"ofmap f{f}")
            self.written[f].succeed()

    def compute(self):
        env, stall = self.env, self.stats["stall"]
        for f, p in enumerate(self.plan):
            t0 = env.now
            yield self.ready[f]
            if env.now > t0:
                cause = max(self.arrival[f], key=self.arrival[f].get) if self.arrival[f] else "ifmap"
                stall[cause] += env.now - t0
                self._mark("array", t0, f"stall:{cause}")
            start = env.now
            yield env.timeout(p["cycles"])
            self._mark("array", start, f"fold {f}")
            yield self.slots.put(1)
            if p["write"] <= 0:
                self.written[f].succeed()
            else:
                t1 = env.now
                yield self.out_q.put((f, p["write"]))
                if env.now > t1:
                    stall["ofmap"] += env.now - t1
                    self._mark("array", t1, "stall:ofmap")
        self.done.succeed()

    def run(self) -> PipelineResult:
        env, plan, stats = self.env, self.plan, self.stats
        env.process(self.reader())
        env.process(self.writer())
        env.process(self.compute())
        env.run(until=self.done)
        compute_end = env.now
        env.run()  # drain the last write-backs
        total = env.now
        busy = sum(p["cycles"] for p in plan)
        port_stall = busy - sum(p["array_cycles"] for p in plan)  # folds slowed by SRAM ports
        moved = stats["read"] + stats["write"]
        return PipelineResult(total_cycles=total, compute_cycles=busy - port_stall, compute_end=compute_end,
                              stall_cycles=compute_end - busy + port_stall,
                              stalls_by_cause={**stats["stall"], "sram_port": port_stall},
                              drain_cycles=total - compute_end,
                              dram_read_bytes=stats["read"], dram_write_bytes=stats["write"],
                              achieved_bandwidth=moved / total if total else 0.0, folds=len(plan),
                              timeline=self.timeline)


def gantt_png(result: PipelineResult, path: str, title: str = "", max_bars: int = 4000) -> str:
    """A Gantt chart of the timeline: one lane per resource, stalls in red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tl = result.timeline[:max_bars]
    lanes = sorted({t[0] for t in tl}, key=lambda s: (s != "array", s))
    fig, ax = plt.subplots(figsize=(10, 1.8 + 0.6 * len(lanes)))
    colours = {"fold": "tab:blue", "stall": "tab:red", "ifmap": "tab:green", "filter": "tab:orange",
               "psum": "tab:purple", "ofmap": "tab:gray"}
    for lane, start, end, label in tl:
        key = label.split(":")[0].split(" ")[0]
        ax.barh(lanes.index(lane), end - start, left=start, height=0.6,
                color=colours.get(key, "tab:cyan"), edgecolor="none")
    ax.set_yticks(range(len(lanes)), lanes)
    ax.set_xlabel("cycle")
    ax.set_title(title or f"{result.folds} folds, {result.total_cycles:.0f} cycles, "
                          f"{result.stall_cycles:.0f} stall")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colours.values()]
    ax.legend(handles, list(colours), ncol=6, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.45))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
