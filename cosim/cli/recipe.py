"""`cosim recipe SPEC`: what a compression recipe changes, next to the uncompressed
baseline (FLOPs, bytes, footprint, KV tokens kept vs read, latency on a device), and
optionally what it costs in accuracy (its functional twin)."""

from __future__ import annotations

from cosim.cli._common import DEFAULT_BATCH, DEFAULT_SEQ, PHASE_HELP, PHASES, SEQ_HELP, si

TWIN_STEPS = 32  # decode steps of a KV twin when --steps is not given


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
    p.add_argument("--checkpoint", default=None,
                   help="safetensors file (HF layout) the weight, MoE and Palu twins read (with --accuracy; refused "
                        "for a twin that reads none: the KV twins draw synthetic tensors)")
    # the twin options default to None so that one given without --accuracy (or to a twin that ignores it) is
    # refused, never silently dropped; the defaults are applied in run
    p.add_argument("--prompt", type=int, default=None,
                   help="synthetic prompt length of the KV twins (with --accuracy; default: --seq, the context "
                        "priced above, so the twin keeps and reads what the table prices)")
    p.add_argument("--steps", type=int, default=None,
                   help=f"decode steps the KV twins evaluate (with --accuracy; default {TWIN_STEPS})")
    p.add_argument("--seed", type=int, default=None,
                   help="random seed of the synthetic tensors (with --accuracy; default 0)")
    p.add_argument("--compute-fallback", action="store_true",
                   help="run ops whose format the hardware lacks at the next wider format's peak")
    p.set_defaults(func=run)


def run(args) -> int:
    from workloads.builder import build_trace
    from workloads.compression import load_recipe
    from workloads.models import load_model

    recipe = load_recipe(args.spec)
    model = load_model(args.model)
    twin_notes = _twin_options(args, recipe)  # before any work: a refused option is the only output
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
        for note in twin_notes:
            print(f"note: {note}")
        for name, metrics in res.items():  # every part, NaN and skipped ones with their status
            shown = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                              for k, v in metrics.items() if k not in ("method", "per_tensor_sqnr_db", "status"))
            print(f"  {name}: {shown}; status: {metrics.get('status', 'ok')}")
    return 0


def _twin_options(args, recipe) -> list:
    """Check --checkpoint / --prompt / --steps / --seed against --accuracy and the recipe's twins, fill in
    their defaults (--prompt: --seq) and return the notes the accuracy block prints."""
    from pathlib import Path

    from cosim.functional.compression.twin import KV_TWINS, MOE_METHODS, WEIGHT_METHODS
    from workloads.io import InputError

    given = {"--checkpoint": args.checkpoint, "--prompt": args.prompt, "--steps": args.steps, "--seed": args.seed}
    if not args.accuracy:
        for flag, v in given.items():
            if v is not None:
                raise InputError(f"{flag}: got {v!r}, which this run ignores: it applies only to the accuracy "
                                 f"twin; expected --accuracy with it, or no {flag}")
        return []
    parts = recipe.parts or (recipe,)
    notes = []
    if args.checkpoint is not None:
        ck = Path(args.checkpoint).expanduser()
        if not ck.exists():  # checked for every recipe, as the weight twins' loader does, before any work
            raise InputError(f"--checkpoint: {args.checkpoint}: no such checkpoint file or directory; expected a "
                             f".safetensors file or a folder of them (Hugging Face layout)")
        readers = ("palu",) + WEIGHT_METHODS + MOE_METHODS
        unused = [p.name for p in parts if p.method not in readers]
        if len(unused) == len(parts):
            raise InputError(f"--checkpoint: {args.checkpoint}: recipe {recipe.name}'s twin reads no checkpoint "
                             f"(it runs on synthetic tensors); expected a weight, MoE or Palu recipe, or no "
                             f"--checkpoint")
        from cosim.functional.checkpoint.lazy import LazySafetensors
        try:
            LazySafetensors(ck)  # headers only: an empty folder or a file that is not safetensors fails now
        except InputError as e:
            raise InputError(f"--checkpoint: {e}") from None
        if unused:
            notes.append(f"--checkpoint {args.checkpoint} is read by the weight/MoE/Palu twins only; "
                         f"{', '.join(unused)} ran on synthetic tensors")
    kv = [p.name for p in parts if p.method in KV_TWINS]
    for flag in ("--prompt", "--steps"):
        if given[flag] is not None and not kv:
            raise InputError(f"{flag}: got {given[flag]!r}, which this run ignores: recipe {recipe.name} has no KV "
                             f"twin (only those run a prompt and decode steps); expected a KV recipe, or no {flag}")
    if args.prompt is None:
        args.prompt = args.seq  # the twin keeps and reads what the table above prices
    elif args.prompt != args.seq and kv:
        notes.append(f"the KV twin ({', '.join(kv)}) ran a {args.prompt}-token prompt (--prompt {args.prompt}), not "
                     f"the {args.seq}-token context priced above (--seq {args.seq}): its tokens_read and errors are "
                     f"for {args.prompt} tokens")
    args.steps = TWIN_STEPS if args.steps is None else args.steps
    args.seed = 0 if args.seed is None else args.seed
    return notes
