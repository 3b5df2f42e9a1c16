"""`cosim systolic`: one GEMM / conv layer on a systolic array, or an accelerator's area.

    cosim systolic gemm 1 4096 4096 --array 128x128 --dataflow os --compat scalesim
    cosim systolic conv 32 32 7 7 3 16 --stride 2 --array 8x8
    cosim systolic area mx_systolic_128
    cosim systolic pipeline 64 64 64 --array 8x8 --bandwidth 4 --gantt g.png
"""

from __future__ import annotations

import sys

from workloads.io import InputError


def register(sub) -> None:
    p = sub.add_parser("systolic", help="systolic-array cycles of one layer, or an accelerator's area",
                       description=__doc__.splitlines()[0])
    p.add_argument("what", choices=("gemm", "conv", "area", "pipeline"),
                   help="gemm/conv: cycles of one layer; pipeline: a GEMM through the simpy memory pipeline; "
                        "area: an accelerator's area breakdown")
    p.add_argument("args", nargs="+", help="gemm/pipeline: M N K; conv: IH IW FH FW C NF; area: hardware name")
    # defaults are None here and filled in _options: an option the subcommand does not read is refused
    p.add_argument("--array", default=None, help="gemm/conv/pipeline: rows x cols, e.g. 32x32 (default 128x128)")
    p.add_argument("--dataflow", default=None, help="gemm/conv/pipeline: os | ws | is (default os)")
    p.add_argument("--compat", choices=("scalesim",), default=None,
                   help="gemm/conv: SCALE-Sim 3.0.0 counting conventions")
    p.add_argument("--overlap", action="store_true", default=None,
                   help="gemm/conv/pipeline: double-buffered stationary registers (folds back to back)")
    p.add_argument("--stride", type=int, default=None, help="conv: filter stride (default 1)")
    p.add_argument("--bandwidth", type=float, default=None, help="pipeline: DRAM bytes per cycle (default unlimited)")
    p.add_argument("--latency", type=float, default=None, help="pipeline: DRAM latency, cycles (default 0)")
    p.add_argument("--sram", type=float, default=None,
                   help="pipeline: bytes per buffer (ifmap, filter, ofmap; default 1 MiB)")
    p.add_argument("--sram-bandwidth", type=float, default=None,
                   help="pipeline: bytes per cycle the SRAM ports can feed the array (default unlimited)")
    p.add_argument("--gantt", help="pipeline: write a Gantt chart (.png)")
    p.set_defaults(func=run)


# the options each subcommand reads, with their defaults
OPTIONS = {"array": "128x128", "dataflow": "os", "compat": None, "overlap": False, "stride": 1,
           "bandwidth": float("inf"), "latency": 0.0, "sram": float(2 ** 20), "sram_bandwidth": float("inf"),
           "gantt": None}
USED = {"gemm": ("array", "dataflow", "compat", "overlap"),
        "conv": ("array", "dataflow", "compat", "overlap", "stride"),
        "pipeline": ("array", "dataflow", "overlap", "bandwidth", "latency", "sram", "sram_bandwidth", "gantt"),
        "area": ()}


def _options(args) -> None:
    """Refuse an option the subcommand does not read (it would be silently ignored), then fill the
    defaults of the rest."""
    for name, default in OPTIONS.items():
        v = getattr(args, name)
        if v is not None and name not in USED[args.what]:
            users = [w for w, used in USED.items() if name in used]
            raise InputError(f"cosim systolic {args.what}: --{name.replace('_', '-')} {v}: not read by "
                             f"{args.what} (it applies to {' / '.join(users)}); drop it")
        if v is None:
            setattr(args, name, default)


def _array(text: str) -> tuple[int, int]:
    try:
        r, c = (int(x) for x in text.lower().split("x"))
        return r, c
    except ValueError:
        raise InputError(f"--array: got {text!r}; expected ROWSxCOLS such as 128x128") from None


def _ints(args, n, what):
    if len(args) != n:
        raise InputError(f"cosim systolic {what}: got {len(args)} numbers {args}; expected {n}")
    try:
        return [int(a) for a in args]
    except ValueError:
        raise InputError(f"cosim systolic {what}: got {args}; expected {n} integers") from None


def run(args) -> int:
    try:
        return _run(args)
    except InputError as e:  # HardwareError included
        print(f"error: {e}", file=sys.stderr)
        return 2


def _run(args) -> int:
    _options(args)
    if args.what == "area":
        from hwmodels.cycle import FPGA_AREA_NOTE, area_breakdown
        from hwmodels.spec import load_hw

        if len(args.args) != 1:
            raise InputError(f"cosim systolic area: got {args.args}; expected one hardware name")
        hw = load_hw(args.args[0])
        area = area_breakdown(hw)
        for k, v in area.items():
            print(f"{k:<12}{v:10.2f} mm2")
        print(f"note: area of one device ({hw.name})" + (f"; {FPGA_AREA_NOTE}" if hw.kind == "fpga" else ""))
        return 0
    rows, cols = _array(args.array)
    if args.what == "pipeline":
        from hwmodels.pipeline import PipelineConfig, check_fits, gantt_png, simulate_gemm

        m, n, k = _ints(args.args, 3, "pipeline")
        cfg = PipelineConfig(rows, cols, args.dataflow, bandwidth=args.bandwidth, latency=args.latency,
                             sram_bytes={"ifmap": args.sram, "filter": args.sram, "ofmap": args.sram},
                             overlap=args.overlap, sram_bandwidth=args.sram_bandwidth)
        check_fits(cfg, "--sram")
        r = simulate_gemm(m, n, k, cfg, keep_timeline=bool(args.gantt))
        for key, label in PIPELINE_FIELDS:
            print(f"{label:<32}{getattr(r, key)}")
        eb = cfg.elem_bytes
        print(f"{'element_bytes':<32}ifmap {eb['ifmap']:g} B, filter {eb['filter']:g} B, ofmap {eb['ofmap']:g} B "
              f"(the DRAM bytes and bandwidth above assume these element sizes)")
        if args.gantt:
            print(f"wrote {gantt_png(r, args.gantt)}")
        return 0
    from hwmodels.systolic import conv_cycles, gemm_cycles

    if args.what == "gemm":
        m, n, k = _ints(args.args, 3, "gemm")
        out = gemm_cycles(m, n, k, rows, cols, args.dataflow, args.compat, overlap=args.overlap)
    else:
        ih, iw, fh, fw, c, nf = _ints(args.args, 6, "conv")
        out = conv_cycles(ih, iw, fh, fw, c, nf, args.stride, rows=rows, cols=cols, dataflow=args.dataflow,
                          compat=args.compat, overlap=args.overlap)
    for key, label in LAYER_FIELDS:
        print(f"{label:<28}{getattr(out, key)}")
    return 0


# printed name -> value: units in the names; one convention, percent (0-100) for every ratio; SRAM
# traffic counts operand elements (words; SCALE-Sim counts them as bytes of 1-byte elements)
LAYER_FIELDS = (("m", "m"), ("n", "n"), ("k", "k"), ("folds", "folds"), ("cycles_per_fold", "cycles_per_fold"),
                ("compute_cycles", "compute_cycles"), ("mapping_efficiency", "mapping_efficiency_pct"),
                ("compute_utilization", "compute_utilization_pct"), ("overall_utilization", "overall_utilization_pct"),
                ("ifmap_sram_reads", "ifmap_sram_reads_elements"), ("filter_sram_reads", "filter_sram_reads_elements"),
                ("ofmap_sram_writes", "ofmap_sram_writes_elements"), ("ofmap_sram_reads", "ofmap_sram_reads_elements"))
PIPELINE_FIELDS = (("total_cycles", "total_cycles"), ("compute_cycles", "compute_cycles"),
                   ("stall_cycles", "stall_cycles"), ("stalls_by_cause", "stall_cycles_by_cause"),
                   ("dram_read_bytes", "dram_read_bytes"), ("dram_write_bytes", "dram_write_bytes"),
                   ("achieved_bandwidth", "achieved_bandwidth_B_per_cycle"))
