"""`cosim roofline` / `cosim simulate`: one trace on one piece of hardware."""

from __future__ import annotations


from cosim.cli._common import add_workload_args, si
from hwmodels.level_registry import LEVELS


def register(sub) -> None:
    for name, level, text in (("roofline", "roofline", "roofline report of one model on one device"),
                              ("simulate", "roofline", "simulate a model on a device at a chosen level")):
        p = sub.add_parser(name, help=text, description=text)
        add_workload_args(p)
        p.add_argument("--level", choices=LEVELS, default=level,
                       help="model level: roofline (speed of light), analytical (calibrated GPU model), "
                            "cycle (systolic/FPGA); a level that cannot answer falls back with a note")
        p.add_argument("--profile", default=None,
                       help="implementation profile: eager, hf_eager, engine, engine_gemm, optionally "
                            "+<attention backend> (default, fa2, cudnn, unfused), e.g. engine+fa2")
        p.add_argument("--out", help="write the per-op table (.csv) or the full report (.json)")
        p.add_argument("--plot", help="write a roofline plot (.png or .svg)")
        p.add_argument("--top", type=int, default=10, help="ops shown in the table")
        p.add_argument("--parallel", help="a layout on a system given as --hw, e.g. tp=8,pp=2,ep=8,dp=1,sp=true")
        p.set_defaults(func=run)


def run(args) -> int:
    import cosim
    from cosim.cli._paths import check_output_file, ensure_parent

    if args.out:
        check_output_file(args.out, "--out", (".csv", ".json"))
    if args.plot:
        check_output_file(args.plot, "--plot", (".png", ".svg", ".pdf"))

    from cosim.cli.plan import parse_parallel_flag
    from cosim.simulate import _resolve
    from hwmodels.system import SystemSpec

    target = _resolve(args.hw)  # a device, or a system (cosim/configs/systems) for parallel layouts
    hw = target.device if isinstance(target, SystemSpec) else target
    parallel = parse_parallel_flag(args.parallel) if args.parallel else ({} if hw is not target else None)
    trace = cosim.build_trace(args.model, phase=args.phase, batch=args.batch, seq=args.seq,
                              weights=args.weights, acts=args.acts, kv=args.kv, recipe=args.recipe,
                              attention=args.attention, parallel=parallel, profile=getattr(args, "profile", None),
                              allow_beyond_max_context=args.allow_beyond_max_context, prompt_len=args.prompt_len)
    rep = cosim.simulate(trace, target, level=args.level, compute_fallback=args.compute_fallback)
    print(format_report(rep, args.top))
    if args.out:
        rep.save(ensure_parent(args.out, "--out"))  # the folder is made only now, when the report is written
        print(f"wrote {args.out}")
    if args.plot:
        from cosim.plots import roofline_plot
        roofline_plot(rep, hw, ensure_parent(args.plot, "--plot"))
        print(f"wrote {args.plot}")
    return 0


def _implementation_line(rep) -> str:
    """The profile that built the trace, and the attention backend that priced it where the profile left it to
    the calibration's default; with no profile, that the trace is a plain HF model's kernels (every number moves)."""
    backends = sorted({r["attention_backend"] for r in rep.rows if r.get("attention_backend")})
    if rep.meta.get("implementation"):
        line = "implementation: " + rep.meta["implementation"]
        if backends and "attention default" in line:  # name the backend the calibration's default chose
            line += f" (attention priced as {', '.join(backends)}, the calibration's default)"
        return line
    hint = "" if rep.meta.get("parallel") else "; a profile, e.g. engine, chooses another"  # refused with a layout
    line = ("implementation: none given: a plain Hugging Face model's kernels (as profile eager: nothing fused, "
            f"CUDA graphs off{hint})")
    if backends:  # the calibration's default prices attention: say which
        line += (f"; attention backend: {', '.join(backends)} (the calibration's default; --profile "
                 f"<profile>+fa2|cudnn|unfused to choose)")
    return line


def format_report(rep, top: int = 10) -> str:
    req = rep.meta.get("level_requested", rep.level)
    ran = f"level {rep.level}" + (f" (requested {req}: fell back)" if req != rep.level else "")
    batch = f"batch {rep.global_batch}"  # the user's batch, as report.json's totals.batch
    if rep.global_batch != rep.batch:
        batch += f" ({rep.batch} per device trace)"
    prompt = f" ({rep.meta['prompt_len']:,} of them the prompt)" if rep.meta.get("prompt_len") else ""
    lines = [f"{rep.model} on {rep.hw} — {rep.phase}, {batch}, seq {rep.seq}{prompt}, {ran}"
             + (f", recipe {rep.recipe}" if rep.recipe else "")]
    from cosim.report import priced_from_line
    lines += [ln for ln in (priced_from_line(rep.meta.get("priced_from") or ()),) if ln]
    lines.append(_implementation_line(rep))
    if rep.meta.get("eager_host"):  # the total is GPU time: what eager PyTorch's host launches make of it
        from cosim.eager_host import EagerHostStep
        lines.append("eager launch: " + EagerHostStep(**rep.meta["eager_host"]).describe())
    fm = rep.meta.get("formats", {})
    if fm:
        detail = rep.meta.get("format_detail") or {}  # which stored tensors a recipe keeps in which format
        lines.append("formats: " + ", ".join(f"{k}={detail.get(k, v)}" for k, v in fm.items()))
    par = rep.meta.get("parallel") or {}
    if par.get("label"):  # one device's share of a parallel layout: say which, and how routing was taken
        lines.append(f"parallel: {par['label']} ({par.get('devices', '?')} devices), one device's trace"
                     + (f"; {par['routing_note']}" if par.get("routing_note") else ""))
    lines.append("")
    hdr = f"{'op':<18}{'kind':<11}{'x':>4}  {'FLOPs':>10}  {'bytes':>10}  {'FLOP/B':>8}  {'bound':<8}{'time':>10}  {'share':>6}  {'energy':>9}"
    lines += [hdr, "-" * len(hdr)]
    from cosim.report import export_row
    rows = sorted(rep.rows, key=lambda r: -r["latency_s"])
    for r in rows[:top]:
        inten = export_row(r, floats=False)["intensity"]  # the files' rule: no off-chip bytes, NaN (n/a here)
        inten = "n/a" if inten != inten else f"{inten:.3g}"
        lines.append(f"{r['op'][:17]:<18}{r['kind'][:10]:<11}{r['repeat']:>4}  {si(r['flops']):>10}  "
                     f"{si(r['bytes'], 'B'):>10}  {inten:>8}  {r['bound']:<8}{si(r['latency_s'], 's'):>10}  "
                     f"{100 * r['share']:>5.1f}%  {si(r['energy_j'], 'J'):>9}")
    if len(rows) > top:
        rest = rows[top:]
        # empty cells of the op rows' widths, so time, share and energy sit under their headings
        lines.append(f"{'(' + str(len(rest)) + ' more ops)':<18}{'':<11}{'':>4}  {'':>10}  {'':>10}  {'':>8}  {'':<8}"
                     f"{si(sum(r['latency_s'] for r in rest), 's'):>10}  {100 * sum(r['share'] for r in rest):>5.1f}%  "
                     # summed as the total line sums: an op without an energy figure makes it n/a
                     f"{si(sum(r['energy_j'] for r in rest), 'J'):>9}")
    lines.append("")
    scope = f", {rep.meta['energy_scope']}" if rep.meta.get("energy_scope") else ""
    if par.get("step_latency_s"):  # one device's trace, not the system: no tokens/s or J/token a reader could take
        stages = len(par.get("stage_layers") or [1])
        lines.append(f"trace total (one device's trace: one tp shard, one micro-batch of {rep.batch} through "
                     f"{'all ' + str(stages) + ' stages' if stages > 1 else 'the model'}; not the system, see "
                     f"layout:): {si(rep.total_latency_s, 's')}, {si(rep.total_flops, 'FLOP')}, "
                     f"{si(rep.total_bytes, 'B')} moved, energy {si(rep.total_energy_j, 'J')}{scope}")
    else:
        lines.append(f"total: {si(rep.total_latency_s, 's')} per pass, {rep.tokens_per_s:,.1f} tokens/s, "
                     f"{si(rep.total_flops, 'FLOP')}, {si(rep.total_bytes, 'B')} moved, "
                     f"energy {si(rep.total_energy_j, 'J')} ({si(rep.energy_per_token_j, 'J')}/token){scope}")
    fp = rep.footprint
    lines.append("memory: " + ", ".join(f"{k} {si(v, 'B')}" for k, v in fp.items())
                 + f" = {si(rep.memory_bytes, 'B')} of {si(rep.capacity_bytes, 'B')} "
                 + ("(fits)" if rep.fits_in_memory else "(DOES NOT FIT)"))
    if par.get("step_latency_s"):  # the rows and totals above are one device's trace: give the layout's step
        from cosim.parallel_timing import layout_step, system_energy_formula
        st = layout_step(rep)
        lines.append(f"layout: step {si(st['step_latency_s'], 's')} for batch {par['global_batch']} "
                     f"({par['microbatches']} micro-batch{'es' if par['microbatches'] > 1 else ''}, bubble "
                     f"{100 * par['bubble_fraction']:.1f}%), {st['tokens_per_s']:,.1f} tokens/s; system energy "
                     f"{si(st['energy_j'], 'J')} per step ({si(st['energy_per_token_j'], 'J')}/token) = "
                     f"{system_energy_formula(rep, st)}")
    for n in rep.notes:
        lines.append(f"note: {n}")
    return "\n".join(lines)
