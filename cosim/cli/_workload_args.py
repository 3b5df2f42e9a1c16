"""The workload options `cosim generate` and `cosim serve` share (one definition, one help)."""

from __future__ import annotations

LEVELS = ("roofline", "analytical", "cycle")


def add_workload_args(p, hw_help: str = "bundled hardware name or a YAML path", acts: bool = False) -> None:
    """--model, --hw, --level and the number formats / recipe of what is run."""
    p.add_argument("--model", required=True, help="bundled model name or a YAML/config.json path")
    p.add_argument("--hw", required=True, help=hw_help)
    p.add_argument("--level", choices=LEVELS, default="roofline", help="cost-model level pricing every step")
    p.add_argument("--weights", default=None, help="weight number format (default: the format a "
                                                         "config.json quantization_config declares, else bf16)")
    if acts:
        p.add_argument("--acts", default="bf16", help="activation number format")
    p.add_argument("--kv", default="bf16", help="KV-cache number format (sets bytes per token, so KV capacity)")
    p.add_argument("--recipe", default=None, help="compression recipe(s), e.g. kivi2")
