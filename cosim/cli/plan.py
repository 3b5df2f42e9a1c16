"""`cosim plan`: rank the parallel layouts of a model on a multi-device system."""

from __future__ import annotations

from cosim.cli._common import si


def register(sub) -> None:
    text = "rank tensor/pipeline/expert/data-parallel layouts of a model on a system"
    p = sub.add_parser("plan", help=text, description=text)
    p.add_argument("--model", required=True, help="bundled model name or a YAML/config.json path")
    p.add_argument("--system", required=True, help="bundled system (see `cosim list systems`) or a YAML path")
    p.add_argument("--phase", choices=("prefill", "decode"), default="decode",
                   help="prefill: the whole prompt in one pass; decode: one new token per sequence")
    p.add_argument("--batch", type=int, default=1, help="sequences in the global batch")
    p.add_argument("--seq", type=int, default=2048, help="prompt length (prefill) or context length (decode)")
    p.add_argument("--allow-beyond-max-context", action="store_true",
                   help="price a --seq beyond the model's maximum context (refused otherwise; the report notes it)")
    p.add_argument("--objective", choices=("latency", "throughput", "cost"), default="latency",
                   help="rank by step latency, tokens/s, or tokens/s per device")
    p.add_argument("--level", choices=("roofline", "analytical"), default="roofline",
                   help="cost model for compute and collectives")
    p.add_argument("--weights", default=None, help="weight number format (default: the format a "
                                                         "config.json quantization_config declares, else bf16)")
    p.add_argument("--acts", default="bf16", help="activation number format")
    p.add_argument("--kv", default="bf16", help="KV-cache number format")
    p.add_argument("--recipe", default=None, help="compression recipe(s), e.g. kivi2")
    p.add_argument("--compute-fallback", action="store_true",
                   help="run ops whose format the hardware lacks at the next wider format's peak (reported)")
    p.add_argument("--sp", choices=("off", "on", "both"), default="off", help="sequence parallelism")
    p.add_argument("--max-devices", type=int, default=None, help="use at most this many devices")
    p.add_argument("--microbatches", default="auto",
                   help="micro-batches of pipelined layouts: 'auto' searches them (default), or a number fixes it")
    p.add_argument("--max-microbatches", type=int, default=None,
                   help="largest micro-batch count searched (default 4 x pp); refused with a fixed --microbatches")
    p.add_argument("--routing", default="uniform",
                   help="expert routing for EP layouts: uniform (default), sampled, or zipf:<s>; refused on a model "
                        "without experts")
    p.add_argument("--top", type=int, default=15, help="rows shown")
    p.add_argument("--out", help="write the whole table (.csv or .json)")
    p.add_argument("--plot", help="write a bar chart of the objective per layout, each bar labelled with its energy "
                                        "per token (.png, .svg or .pdf)")
    p.set_defaults(func=run)


def run(args) -> int:
    from cosim.cli._paths import check_output_file, ensure_parent
    from cosim.plan import plan, plot_plan

    # before the search, as roofline does: a bad extension or path is one error line, a missing folder made
    if args.out:
        check_output_file(args.out, "--out", (".csv", ".json"))
    if args.plot:
        check_output_file(args.plot, "--plot", (".png", ".svg", ".pdf"))
    res = plan(args.model, args.system, phase=args.phase, batch=args.batch, seq=args.seq,
               objective=args.objective, level=args.level, weights=args.weights, acts=args.acts, kv=args.kv,
               recipe=args.recipe, sp={"off": False, "on": True, "both": None}[args.sp],
               max_devices=args.max_devices, microbatches=_microbatches(args.microbatches),
               max_microbatches=args.max_microbatches, routing=args.routing,
               allow_beyond_max_context=args.allow_beyond_max_context, compute_fallback=args.compute_fallback)
    print(format_plan(res, args.top))
    if args.out:
        _write_table(res, args, ensure_parent(args.out, "--out"))  # the folder is made only now
        print(f"wrote {args.out}")
    if args.plot:
        plot_plan(res, ensure_parent(args.plot, "--plot"))
        print(f"wrote {args.plot}")
    return 0


def plan_inputs(res, args) -> dict:
    """What a written table was made from: the model, system and workload the layouts were searched for (as
    simulate's report names its inputs), so a file read later says which run it is."""
    return {"model": res.model, "system": res.system, "phase": res.phase, "batch": res.batch, "seq": res.seq,
            "objective": res.objective, "level_requested": res.level, "weights": res.weights, "acts": args.acts,
            "kv": args.kv, "recipe": args.recipe, "sp_searched": args.sp, "max_devices": args.max_devices,
            "microbatches_searched": args.microbatches, "max_microbatches": args.max_microbatches,
            "routing": args.routing,
            "allow_beyond_max_context": args.allow_beyond_max_context, "compute_fallback": args.compute_fallback}


def _write_table(res, args, path) -> None:
    """CSV: one row per layout, the run's inputs as columns (blank where unset: the default); JSON: the report header
    (schema, version, commit), the inputs, the run's notes and skipped layouts, then the rows."""
    from cosim import jsonio
    from cosim.report import json_header

    df = res.to_frame()
    inputs = plan_inputs(res, args)  # named apart from a row's own sp / microbatches (the layout's)
    if str(path).lower().endswith(".csv"):
        for k, v in inputs.items():
            df[k] = "" if v is None else v
        df.to_csv(path, index=False)
        return
    head = {**json_header(), "rows_are": "rows: one per layout searched, ranked (fitting layouts first)"}
    with open(path, "w") as f:  # .json (check_output_file allowed no other)
        jsonio.dump({**head, "inputs": inputs, "notes": list(res.notes),
                     "skipped": [list(s) for s in res.skipped], "rows": df.to_dict(orient="records")}, f, indent=1)
        f.write("\n")


def _microbatches(text: str) -> int | None:
    from workloads.io import InputError

    if text == "auto":
        return None
    if not text.isdigit() or int(text) < 1:
        raise InputError(f"--microbatches: got {text!r}; expected 'auto' or a positive integer")
    return int(text)


def parse_parallel_flag(text: str) -> dict:
    """'tp=8,pp=2,sp=true,routing=zipf:1' -> {"tp": 8, "pp": 2, "sp": True, "routing": "zipf:1"}
    (checked by workloads.parallel)."""
    from workloads.io import InputError

    out = {}
    for part in (p for p in text.split(",") if p.strip()):
        key, eq, val = part.partition("=")
        if not eq:
            raise InputError(f"--parallel: got {part!r}; expected key=value pairs such as tp=8,pp=2")
        key, val = key.strip(), val.strip().lower()
        if key in out:  # the last would win silently
            raise InputError(f"--parallel: {key}: given twice in {text!r}; expected each key once")
        if key == "routing":  # uniform | sampled | zipf:<s> (checked by workloads.routing)
            out[key] = val
        elif val in ("true", "false"):
            out[key] = val == "true"
        elif val.isdigit():
            out[key] = int(val)
        else:
            raise InputError(f"--parallel: {key}: got {val!r}; expected a positive integer (or true/false for sp)")
    return out


def format_plan(res, top: int = 15) -> str:
    used = sorted({r.level for r in res.rows if r.level and r.level != res.level})
    ran = f"level {res.level}" + (f" requested; priced at {', '.join(used)} (column `level` in --out)" if used else "")
    lines = [f"{res.model} {res.phase} batch {res.batch} seq {res.seq} on {res.system} — objective "
             f"{res.objective}, {ran}"]
    from cosim.report import priced_from_line
    # what that level rests on (column `provenance` in --out), as simulate's header: a transfer, a fallback
    lines += [ln for ln in (priced_from_line(getattr(res, "priced_from", ())),) if ln]
    backends = sorted({b for r in res.rows for b in r.attention_backend.split(", ") if b})
    if backends:  # plan takes no profile: the calibration's default chose it (column `attention_backend` in --out)
        lines.append(f"attention backend: {', '.join(backends)} (the calibration's default)")
    lines.append("")
    hdr = (f"{'#':>3} {'layout':<22}{'dev':>4} {'fits':<5}{'mem/dev':>10} {'step':>10} {'tok/s':>10} "
           f"{'dev-s/tok':>10} {'comm':>6} {'bubble':>7}")
    lines += [hdr, "-" * len(hdr)]
    for i, r in enumerate(res.rows[:top], 1):
        rank = str(i) if r.fits else "-"
        lines.append(f"{rank:>3} {r.layout:<22}{r.devices:>4} {str(r.fits):<5}{si(r.memory_per_device_bytes, 'B'):>10} "
                     f"{si(r.step_latency_s, 's'):>10} {r.tokens_per_s:>10,.0f} {r.device_s_per_token:>10.3g} "
                     f"{100 * r.comm_share:>5.1f}% {100 * r.bubble_fraction:>6.1f}%")
    if len(res.rows) > top:
        lines.append(f"    ({len(res.rows) - top} more layouts; --top or --out for all)")
    lines.append("")
    best = res.best
    lines.append(f"best: {best.layout} ({res.objective})" if best else "best: none — no layout fits in memory")
    if res.skipped:
        lines.append(f"skipped {len(res.skipped)} layouts that cannot shard {res.model} exactly, e.g. "
                     f"{res.skipped[0][0]}: {res.skipped[0][1]}")
    lines += [f"note: {n}" for n in getattr(res, "notes", ())]
    return "\n".join(lines)
