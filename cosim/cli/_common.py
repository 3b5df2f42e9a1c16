"""Shared CLI helpers: the workload/hardware flags and human-readable numbers."""

from __future__ import annotations

from cosim.humanize import si  # noqa: F401  (one formatter for the CLI and the reports)


# one default per option across every command (the experiment file's defaults too)
DEFAULT_SEQ = 2048
DEFAULT_BATCH = 1
PHASES = ("prefill", "decode")
PHASE_HELP = ("prefill: the whole prompt of --seq tokens in one pass; decode: one new token per sequence "
              "with --seq tokens of context in the KV cache")
SEQ_HELP = "prompt length (prefill) or context length (decode), in tokens"
ATTENTION_HELP = ("fused: one attention kernel (FlashAttention-style, scores stay on chip); unfused: QK^T, "
                  "softmax and PV as separate ops with the score matrix in memory")


def add_workload_args(p) -> None:
    p.add_argument("--model", required=True, help="bundled model name (see `cosim list models`) or a YAML/config.json path")
    p.add_argument("--hw", required=True, help="bundled hardware name (see `cosim list hw`) or a YAML path")
    p.add_argument("--phase", choices=PHASES, default="decode", help=PHASE_HELP)
    p.add_argument("--batch", type=int, default=DEFAULT_BATCH, help="sequences in the batch")
    p.add_argument("--seq", type=int, default=DEFAULT_SEQ, help=SEQ_HELP)
    p.add_argument("--prompt-len", type=int, default=None,
                   help="decode: how many of the --seq context tokens were the prompt, the rest generated (default: "
                        "all of them); a recipe compressing the prompt alone (snapkv, fastkv) keeps generated tokens "
                        "whole")
    p.add_argument("--weights", default=None, help="weight number format (e.g. mxfp4, int4_g128) (default: "
                                                         "what a config.json quantization_config declares, else bf16)")
    p.add_argument("--acts", default="bf16", help="activation number format")
    p.add_argument("--kv", default="bf16", help="KV-cache number format")
    p.add_argument("--recipe", default=None, help="compression recipe(s), e.g. kivi2 or mxfp4_weights+h2o")
    p.add_argument("--attention", choices=("fused", "unfused"), default="fused", help=ATTENTION_HELP)
    p.add_argument("--allow-beyond-max-context", action="store_true",
                   help="price a --seq beyond the model's maximum context (refused otherwise; the report notes it)")
    p.add_argument("--compute-fallback", action="store_true",
                   help="run ops whose format the hardware lacks at the next wider format's peak (reported)")
