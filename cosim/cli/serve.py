"""`cosim serve`: a request stream on a device, over time (TTFT, TPOT, throughput)."""

from __future__ import annotations

from cosim.cli._workload_args import add_workload_args


def register(sub) -> None:
    text = "simulate serving a request stream: continuous batching, chunked prefill, disaggregation"
    p = sub.add_parser("serve", help=text, description=text,
                       epilog="example:\n  cosim serve --model llama3_8b --hw h100_sxm --qps 5 --requests 2000 "
                              "--level roofline --scheduler chunked --slo-ttft 0.5 --slo-tpot 0.05")
    add_workload_args(p, hw_help="bundled hardware name or a YAML path; with --tp/--pp a system "
                                 "(cosim/configs/systems, e.g. dgx_h100)")
    p.add_argument("--profile", help="implementation profile (eager, hf_eager, engine, engine_gemm): the kernels "
                                     "the serving stack launches; at level analytical also its host launch time")
    p.add_argument("--tp", type=int, help="tensor-parallel devices per replica (--hw names a system)")
    p.add_argument("--pp", type=int, help="pipeline stages per replica (--hw names a system)")
    p.add_argument("--qps", type=float, help="mean request rate (requests/s)")
    p.add_argument("--requests", type=int, help="number of requests (default 1000; with --trace, all its rows, or its "
                                                "first N in arrival order, at most its rows)")
    p.add_argument("--arrival", choices=("poisson", "gamma"), default="poisson", help="arrival process (gamma: bursty)")
    p.add_argument("--burstiness", type=float, help="gamma inter-arrival CV (>1 bursty; default 1); with --arrival gamma")
    p.add_argument("--trace", help="CSV trace (arrival_s,prompt_len,output_len) or bundled name, e.g. sharegpt_synth")
    p.add_argument("--lengths-from", help="draw prompt/output lengths from this trace's rows")
    p.add_argument("--prompt-len", type=int, help="fixed prompt length (default: ShareGPT-like lengths)")
    p.add_argument("--output-len", type=int, help="fixed output length (default: ShareGPT-like lengths)")
    p.add_argument("--scheduler", choices=("static", "continuous", "chunked", "disaggregated"), default="continuous", help="batching policy")
    p.add_argument("--max-num-seqs", type=int, default=256, help="running sequences per replica (vLLM default)")
    p.add_argument("--max-batched-tokens", type=int,
                   help="token budget per step (default 512 chunked, 8192 continuous / disaggregated, "
                        "max-num-seqs x the longest prompt static)")
    p.add_argument("--max-prefill-seqs", type=int, help="prompts prefilled per step (default: as the budget allows)")
    p.add_argument("--context-window", type=int,
                   help="positions a request may use: prompt + output - 1 <= this (the last output token is "
                        "never fed back; default: the model's max context; beyond it is priced with a note)")
    p.add_argument("--block-size", type=int, default=16, help="tokens per KV block")
    p.add_argument("--kv-capacity-tokens", type=int, help="fix the KV capacity instead of deriving it (at least one "
                                                         "--block-size block; with a KV recipe, in tokens at the "
                                                         "recipe's rate at 4,096 tokens, the run's B/token)")
    p.add_argument("--preemption", choices=("recompute", "swap"), default="recompute", help="what happens to a preempted request")
    p.add_argument("--replicas", type=int, default=1, help="independent devices behind a least-loaded router")
    p.add_argument("--prefill-replicas", type=int, help="prefill pool size (default 1); with --scheduler disaggregated")
    p.add_argument("--decode-replicas", type=int, help="decode pool size (default 1); with --scheduler disaggregated")
    p.add_argument("--draft-model", help="speculative decoding with this draft model (the target's vocabulary size, "
                                         "no more parameters than the target)")
    p.add_argument("--draft-weights", help="self-speculation (QuantSpec-style): draft = target with these weights")
    p.add_argument("--draft-len", type=int, help="tokens drafted per speculative step (default 4); with --draft-model "
                                                 "or --draft-weights")
    p.add_argument("--acceptance", type=float, help="probability each drafted token is accepted (default 0.7); "
                                                    "with --draft-model or --draft-weights")
    p.add_argument("--compute-fallback", action="store_true",
                   help="run ops whose format the hardware lacks at the next wider format's peak (reported)")
    p.add_argument("--offload", default=None, help="KV offload host capacity, e.g. '256 GiB'")
    p.add_argument("--slo-ttft", type=float, help="TTFT SLO in seconds (goodput)")
    p.add_argument("--slo-tpot", type=float, help="TPOT SLO in seconds (goodput)")
    p.add_argument("--seed", type=int, default=0, help="seed of arrivals, lengths and acceptance draws")
    p.add_argument("--out", help="directory for requests.csv, timeline.csv, summary.json and plots (refused "
                                 "when it holds those files from an earlier run, unless --force)")
    p.add_argument("--force", action="store_true", help="overwrite an earlier run's files in --out")
    p.set_defaults(func=run)


def options_from_args(a) -> dict:
    from workloads.io import InputError

    spec = None
    if a.draft_model or a.draft_weights:
        spec = {"draft_len": 4 if a.draft_len is None else a.draft_len,
                "acceptance": 0.7 if a.acceptance is None else a.acceptance, "draft_model": a.draft_model,
                "draft_weights": a.draft_weights}
    else:  # only speculative decoding drafts tokens: a draft option alone would change nothing, silently
        for flag, v in (("--draft-len", a.draft_len), ("--acceptance", a.acceptance)):
            if v is not None:
                raise InputError(f"serve: {flag}: got {v!r}, which this run ignores (no draft); it applies only to "
                                 f"speculative decoding: give --draft-model NAME (or --draft-weights FMT)")
    par = {k: v for k, v in (("tp", a.tp), ("pp", a.pp)) if v is not None} or None
    # options left at None take ServeConfig's defaults (which it refuses only where a run would ignore them)
    given = {k: v for k, v in (("burstiness", a.burstiness), ("prefill_replicas", a.prefill_replicas),
                               ("decode_replicas", a.decode_replicas)) if v is not None}
    return dict(level=a.level, weights=a.weights, kv=a.kv, recipe=a.recipe, profile=a.profile, parallel=par,
                max_prefill_seqs=a.max_prefill_seqs, context_window=a.context_window, qps=a.qps, requests=a.requests,
                arrival=a.arrival, trace=a.trace, lengths_from=a.lengths_from,
                prompt_len=a.prompt_len, output_len=a.output_len, scheduler=a.scheduler,
                max_num_seqs=a.max_num_seqs, max_batched_tokens=a.max_batched_tokens, block_size=a.block_size,
                kv_capacity_tokens=a.kv_capacity_tokens, preemption=a.preemption, replicas=a.replicas,
                speculative=spec, compute_fallback=a.compute_fallback, **given,
                offload={"host_capacity": a.offload} if a.offload else None, slo_ttft_s=a.slo_ttft,
                slo_tpot_s=a.slo_tpot, seed=a.seed)


def run(args) -> int:
    from cosim.serving import serve
    from cosim.serving.output import OUTPUT_FILES, write_outputs

    if args.out:  # before the simulation: a file there failed only after the whole run
        from cosim.cli._paths import check_no_overwrite, check_output_dir
        check_output_dir(args.out, "--out")
        # every run writes all of OUTPUT_FILES: none is left stale by a later run
        check_no_overwrite(args.out, OUTPUT_FILES, "--out", args.force)
    res = serve(args.model, args.hw, **options_from_args(args))
    print(res.format())
    if args.out:
        for path in write_outputs(res, args.out):
            print(f"wrote {path}")
    return 0
