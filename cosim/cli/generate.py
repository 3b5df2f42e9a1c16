"""`cosim generate`: one batch of requests, prefill then every decode step."""

from __future__ import annotations

from cosim import jsonio

from cosim.cli._common import si
from cosim.cli._workload_args import add_workload_args


def register(sub) -> None:
    text = "whole-generation time of one batch: TTFT, TPOT, per-token decode times, energy"
    p = sub.add_parser("generate", help=text, description=text,
                       epilog="example:\n  cosim generate --model llama3_8b --hw h100_sxm --prompt-len 1024 "
                              "--output-len 256 --batch 8 --recipe kivi2")
    add_workload_args(p, acts=True)
    p.add_argument("--prompt-len", type=int, default=1024, help="prompt tokens per sequence")
    p.add_argument("--output-len", type=int, default=256, help="generated tokens per sequence (the first from prefill)")
    p.add_argument("--batch", type=int, default=1, help="sequences generated together")
    p.add_argument("--allow-beyond-max-context", action="store_true",
                   help="price a prompt + output beyond the model's maximum context (refused otherwise; a note says so)")
    p.add_argument("--compute-fallback", action="store_true",
                   help="run ops whose format the hardware lacks at the next wider format's peak (reported)")
    p.add_argument("--profile", default=None,
                   help="implementation profile: eager, hf_eager, engine, engine_gemm, optionally "
                        "+<attention backend> (default, fa2, cudnn, unfused), e.g. engine+fa2 (default: a plain "
                        "Hugging Face model's kernels, as eager)")
    p.add_argument("--out", help="write the per-step decode times (.csv) or the summary, memory and steps (.json)")
    p.set_defaults(func=run)


def run(args) -> int:
    from cosim.cli._paths import check_output_file, ensure_parent
    from cosim.serving.generate import generate

    if args.out:  # before any pricing: a bad path fails in a second, not after the run
        check_output_file(args.out, "--out", (".csv", ".json"))
    g = generate(args.model, args.hw, args.prompt_len, args.output_len, args.batch, level=args.level,
                 weights=args.weights, acts=args.acts, kv=args.kv, recipe=args.recipe,
                 compute_fallback=args.compute_fallback, allow_beyond_max_context=args.allow_beyond_max_context,
                 profile=args.profile)
    print(f"{g.model} on {g.hw} — batch {g.batch}, prompt {g.prompt_len}, output {g.output_len}, level {g.level}"
          + (f" (requested {args.level}: fell back)" if g.level != args.level else "")
          + (f", recipe {args.recipe}" if args.recipe else ""))
    from cosim.report import priced_from_line
    if g.priced_from:  # what the level that ran rests on: a calibration, a transfer, a fallback (issue 11)
        print(priced_from_line(g.priced_from))
    impl = g.inputs.implementation if g.inputs else None
    print("implementation: " + (impl or "none given: a plain Hugging Face model's kernels (as profile eager: nothing "
                                         "fused, CUDA graphs off; --profile, e.g. engine, chooses another)"))
    if g.inputs and g.inputs.attention_backend:  # as simulate's and serve's headers: the backend, who chose it
        from workloads.profiles import backend_chosen_by
        print(f"attention backend: {g.inputs.attention_backend} ({backend_chosen_by(g.inputs.profile)})")
    d = g.decode_times_s
    print(f"TTFT {si(g.ttft_s, 's')}   TPOT "
          + (f"{si(g.tpot_s, 's')} (mean)" if d.size else "n/a (output length 1: no token after the first)")
          + (f", first {si(d[0], 's')}, last {si(d[-1], 's')}" if d.size else ""))
    print(f"total {si(g.total_s, 's')}, {g.tokens_per_s:,.1f} tokens/s, energy {si(g.energy_j, 'J')} "
          f"({si(g.energy_per_token_j, 'J')}/token)" + (f", {g.energy_scope}" if g.energy_scope else ""))
    fp = g.footprint  # the same line as roofline/simulate: priced either way, "DOES NOT FIT" when it does not
    print("memory: " + ", ".join(f"{k} {si(v, 'B')}" for k, v in fp.items())
          + f" = {si(g.memory_bytes, 'B')} of {si(g.capacity_bytes, 'B')} "
          + ("(fits)" if g.fits_in_memory else "(DOES NOT FIT)"))
    for n in g.notes:
        print(f"note: {n}")
    if args.out:
        write_out(g, str(ensure_parent(args.out, "--out")))  # the folder is made only now
        print(f"wrote {args.out}")
    return 0


def write_out(g, path: str) -> None:
    """.csv: one row per decode step, with what produced it (model, hw, level, shape and the inputs record) as
    constant columns; .json: the summary (memory, inputs and notes included) and those steps."""
    from dataclasses import asdict

    import pandas as pd
    d = g.decode_times_s
    steps = pd.DataFrame({"step": range(1, d.size + 1), "context_len": [g.prompt_len + i for i in range(1, d.size + 1)],
                          "latency_s": d, "energy_j": g.decode_energy_j})
    if not path.lower().endswith(".json"):
        made_by = {"model": g.model, "hw": g.hw, "level": g.level, "level_requested": g.level_requested,
                   "provenance": g.provenance, "batch": g.batch, "prompt_len": g.prompt_len,
                   "output_len": g.output_len, **(asdict(g.inputs) if g.inputs else {})}
        for k, v in made_by.items():
            steps[k] = "" if v is None else v
    if path.lower().endswith(".json"):
        with open(path, "w") as f:
            from cosim.report import json_header
            head = {**json_header(), "rows_are": "decode_steps: one row per decode step (that step's latency and "
                                                "energy, not cumulative)"}
            jsonio.dump({**head, **g.summary(), "decode_steps": steps.to_dict(orient="records")}, f, indent=1)
            f.write("\n")
    else:
        steps.to_csv(path, index=False)
