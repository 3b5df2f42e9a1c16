"""`cosim recipe SPEC`: what a compression recipe changes, next to the uncompressed
baseline (FLOPs, bytes, footprint, KV tokens kept vs read, latency on a device), and
optionally what it costs in accuracy (its functional twin)."""

from __future__ import annotations

from cosim.cli._common import DEFAULT_BATCH, DEFAULT_SEQ, PHASE_HELP, PHASES, SEQ_HELP, si


def register(sub) -> None:
    p = sub.add_parser("recipe", help="show a compression recipe's effect on a trace (and its accuracy twin)")
    p.add_argument("spec", help="recipe name, path, or names joined by '+' (see `cosim list recipes`)")
    p.add_argument("--model", default="llama3_8b", help="bundled model name or a YAML/config.json path")
    p.add_argument("--hw", default=None, help="also price both traces on this hardware (roofline)")
    p.add_argument("--phase", choices=PHASES, default="decode", help=PHASE_HELP)
    p.add_argument("--batch", type=int, default=DEFAULT_BATCH, help="sequences in the batch")
    p.add_argument("--seq", type=int, default=DEFAULT_SEQ, help=SEQ_HELP)
    p.add_argument("--allow-beyond-max-context", action="store_true",
                   help="price a --seq beyond the model's maximum context (refused otherwise; the report notes it)")
    p.add_argument("--accuracy", action="store_true", help="run the recipe's functional twin")
    p.add_argument("--checkpoint", default=None, help="safetensors file for the weight twins (HF layout)")
    p.add_argument("--prompt", type=int, default=4096, help="synthetic prompt length for the KV twins")
    p.add_argument("--steps", type=int, default=32, help="decode steps the KV twins evaluate")
    p.add_argument("--seed", type=int, default=0, help="random seed of the synthetic tensors")
    p.add_argument("--compute-fallback", action="store_true",
                   help="run ops whose format the hardware lacks at the next wider format's peak")
    p.set_defaults(func=run)


def run(args) -> int:
    from workloads.builder import build_trace
    from workloads.compression import load_recipe
    from workloads.models import load_model

    recipe = load_recipe(args.spec)
    model = load_model(args.model)
    ctx = {"allow_beyond_max_context": args.allow_beyond_max_context}
    base = build_trace(model, phase=args.phase, batch=args.batch, seq=args.seq, **ctx)
    comp = build_trace(model, phase=args.phase, batch=args.batch, seq=args.seq, recipe=recipe, **ctx)
    from cosim.compare import compare_traces
    # priced before anything is printed: a refusal (a format the --hw lacks) is the only output, not a
    # header over nothing
    rows = compare_traces(base, comp, args.hw, compute_fallback=args.compute_fallback)
    for part in recipe.parts or (recipe,):
        params = ", ".join(f"{k}={v}" for k, v in part.params.items())
        print(f"{part.name}: method {part.method} ({params})\n    {part.citation}")
    print(f"\n{model.name}, {args.phase}, batch {args.batch}, seq {args.seq}")
    width = max(14, len(recipe.name) + 2)
    print(f"{'':<24}{'baseline':>12}{recipe.name:>{width}}{'baseline/recipe':>17}")
    for r in rows:
        print(f"{r.quantity:<24}{si(r.baseline, r.unit):>12}{si(r.compressed, r.unit):>{width}}{r.ratio:>16.2f}x")
    print("(baseline/recipe > 1: the recipe needs less; < 1: more, e.g. FLOPs a method adds)")
    st = comp.meta.get("kv_state")
    if st:
        if args.phase == "decode":
            print(f"KV tokens per sequence and layer: context {st['context']}, kept {st['capacity']:g}, "
                  f"read per step {st['read']:g}")
        else:  # a prefill attends over the whole prompt; what it leaves in the cache is what counts
            print(f"KV tokens per sequence and layer: prompt {st['context']}, kept in the cache after prefill "
                  f"{st['capacity']:g}")
    added = [o.name for o in comp.ops if o.name not in {b.name for b in base.ops}]
    if added:
        print(f"ops added: {', '.join(dict.fromkeys(added))}")
    from cosim.simulate import recipe_notes
    for note in recipe_notes(comp.meta):
        print(f"note: {note}")
    if args.accuracy:
        from cosim.functional.compression.twin import run_twin
        res = run_twin(recipe, model=model, checkpoint=args.checkpoint, seed=args.seed, prompt=args.prompt,
                       steps=args.steps)
        print("\naccuracy (functional twin):")
        for name, metrics in res.items():  # every part, NaN and skipped ones with their status
            shown = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                              for k, v in metrics.items() if k not in ("method", "per_tensor_sqnr_db", "status"))
            print(f"  {name}: {shown}; status: {metrics.get('status', 'ok')}")
    return 0
