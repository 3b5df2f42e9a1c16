"""Summation-order noise of quantized activations on SmolLM2-135M (docs/real-accuracy.md, "Small windows are
noisy"): `--acts mxfp8_e4m3` at 512 tokens with decode attention computed two mathematically identical ways,
the decoder's one-pass row-block path (block-local V tail, what `cosim accuracy` runs) and step by step
(attention.decode_attention: one query row at a time, the rule's definition). Same values, other BLAS
summation order; the difference between the two rows is noise, not accuracy.

    python benchmarks/attention_order.py [--tokens 512] [--acts mxfp8_e4m3]

Writes benchmarks/results/attention_order.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from cosim.report import git_commit  # noqa: E402  (one commit label for cosim's outputs)

OUT = ROOT / "benchmarks" / "results"


def _step_by_step(self, q, k, v, prefill, stats, rope=None):
    """DecoderLM.attention with the decode rows of a block-local acts format through decode_attention."""
    import cosim.functional.lm.decoder as D
    from cosim.functional.lm.attention import causal_attention, decode_attention
    num = self.num
    if num.token_block is None or prefill == q.shape[0] or self._kv_policy_factory() is not None:
        return _ONE_PASS(self, q, k, v, prefill, stats, rope)
    op = num.attn_operand
    out = np.empty_like(q)
    out[:prefill] = causal_attention(op(q[:prefill]), op(k[:prefill]), op(v[:prefill], axis=0), range(0, prefill),
                                     op)
    kc, vc = D.kv_cache_view(k, v, num.kv, prefill, num.kv_values, num.kv_scale, num.kv_channel_sort)
    out[prefill:] = decode_attention(q, kc, vc, range(prefill, q.shape[0]), op, op)
    return out


_ONE_PASS = None


def main(argv=None) -> int:
    global _ONE_PASS
    from cosim.accuracy import evaluate_accuracy
    from cosim.functional.lm.decoder import DecoderLM
    from cosim.functional.lm.numerics import Numerics
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=512)
    ap.add_argument("--acts", default="mxfp8_e4m3")
    a = ap.parse_args(argv)
    if Numerics(acts=a.acts).token_block is None:
        raise SystemExit(f"--acts {a.acts}: not a block-local format (MX, BFP, microexponents, int groups); its "
                         f"decode attention has no one-pass path to compare")
    rows = {}
    _ONE_PASS = DecoderLM.attention
    for key in ("one_pass", "step_by_step"):
        DecoderLM.attention = _ONE_PASS if key == "one_pass" else _step_by_step
        try:
            r = evaluate_accuracy(tokens=a.tokens, acts=a.acts, per_layer=False)
        finally:
            DecoderLM.attention = _ONE_PASS
        rows[key] = {"perplexity": r.perplexity, "kl": r.kl, "top1": r.top1_agreement}
        print(key, rows[key], flush=True)
    commit = git_commit()
    (OUT / "attention_order.json").write_text(json.dumps({"commit": commit, "tokens": a.tokens, "acts": a.acts,
                                                          "rows": rows}, indent=1) + "\n")
    lines = [f"SmolLM2-135M, `--acts {a.acts}`, {a.tokens} tokens (prompt half): decode attention one-pass vs step "
             f"by step (same values, other summation order); commit {commit}, benchmarks/attention_order.py.", "",
             "| decode attention | perplexity | KL | top-1 |", "|---|--:|--:|--:|"]
    for key, label in (("one_pass", "one pass (row blocks + V tail), as cosim accuracy runs"),
                       ("step_by_step", "step by step (attention.decode_attention)")):
        x = rows[key]
        lines.append(f"| {label} | {x['perplexity']:.2f} | {x['kl']:.4f} | {100 * x['top1']:.1f} % |")
    (OUT / "attention_order.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
