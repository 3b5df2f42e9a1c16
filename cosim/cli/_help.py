"""Every subcommand's `--help` shows each option's default and ends with a worked
example. Subcommand modules stay as they are: `finish(subparsers)` sets the formatter and
adds the example below from EXAMPLES (a module may set its own `epilog` instead)."""

from __future__ import annotations

import argparse

__all__ = ["HelpFormatter", "EXAMPLES", "finish"]


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Defaults shown as "(default: 2048)"; flags (default False) and options without a
    default (None) say nothing, rather than "(default: None)". The epilog keeps its lines."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "%(default)" in text or "default" in text.lower() or action.default in (None, False, argparse.SUPPRESS):
            return text
        return super()._get_help_string(action)


EXAMPLES = {
    "calibrate": "cosim calibrate --fit-only --hw h100_sxm --measurements validation/h100_ops.csv "
                 "--out my_h100_calibration.yaml",
    "list": "cosim list recipes",
    "plan": "cosim plan --model llama3_70b --system dgx_h100 --phase decode --batch 64 --seq 8192 "
            "--objective latency",
    "generate": "cosim generate --model llama3_8b --hw h100_sxm --prompt-len 1024 --output-len 256 --batch 8",
    "serve": "cosim serve --model llama3_8b --hw h100_sxm --qps 5 --requests 2000 --level roofline",
    "plot": "cosim roofline --model llama3_8b --hw h100_sxm --out report.json && "
            "cosim plot report.json --out roofline.svg",
    "recipe": "cosim recipe kivi2+h2o --model llama3_8b --hw h100_sxm --seq 8192",
    "roofline": "cosim roofline --model llama3_8b --hw h100_sxm --phase decode --batch 8 --seq 4096 "
                "--weights mxfp4 --plot roofline.png --out report.json",
    "run": "cosim run quickstart --interactive",
    "simulate": "cosim simulate --model llama3_8b --hw h100_sxm --level analytical --batch 8 --seq 4096",
    "sweep": "cosim sweep cosim/configs/sweeps/hbm_vs_compute.yaml --out sweeps/hbm_vs_compute",
    "systolic": "cosim systolic gemm 512 4096 4096 --array 128x128 --dataflow ws",
    "validate": "cosim validate --hw h100_sxm --measurements validation/h100_ops.csv --plot h100_scatter.png",
}


def finish(sub) -> None:
    """Give every registered subcommand the defaults-showing formatter and its example."""
    for name, parser in sub.choices.items():
        parser.formatter_class = HelpFormatter
        if not parser.epilog and name in EXAMPLES:
            parser.epilog = f"example:\n  {EXAMPLES[name]}"

