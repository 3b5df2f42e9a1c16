"""Held-out suite 4 (issue 11, session 6): every shape drawn at random, with a fixed seed, from
the ranges of the acceptance classes (rules and the case lists' digests:
validation/heldout4_rules.md). Standard library only: microbench.py imports it on the
measurement machine, where the cosim package is not installed.

Distributions (log-uniform: exp(U(log a, log b)), rounded):
- GEMM (bf16 and fp8, 120 cases): M log-uniform in [1, 8192]; N and K multiples of 128,
  log-uniform in [1024, 32768], N x K <= 2^28 (a 512 MiB bf16 weight at most);
- prefill (40 cases): KV heads in {1, 2, 4, 8, 16, 32}, query group in {1, 2, 4, 5, 6, 8},
  8 <= heads <= 64; head dim 64 (p 0.3) or 128; length log-uniform in [256, 16384]; batch 1..4
  with batch x length <= 24576; causal with p 0.85;
- decode (80 cases): the same head layouts (d 128), batch log-uniform in [1, 128], context
  log-uniform in [128, 32768], KV cache <= 8 GB;
- elementwise (140 cases): kind uniform over copy, add, rmsnorm, softmax, silu_mul,
  embedding, add_rmsnorm, rope_fused; hidden widths 256 x U{4..64}, silu_mul widths
  256 x U{16..128}, softmax rows log-uniform in [256, 262144]; main-input bytes log-uniform
  in [64 KiB, 1 GiB] (embedding and rope_fused: <= 256 MiB);
- end to end (Qwen2.5-7B and Llama-2-13B shapes): 10 decode points, batch log-uniform in
  [1, 64] x context log-uniform in [128, 8192]; 6 prefill points, batch 1..3 x length
  log-uniform in [256, 4096].
"""

from __future__ import annotations

import math
import random

__all__ = ["HELDOUT4_SEED", "HELDOUT4", "heldout4_attention_cases", "heldout4_elementwise_cases",
           "E2E_DECODE4", "E2E_PREFILL4"]

HELDOUT4_SEED = 20261204_4


def _logu(rng, a, b):
    return math.exp(rng.uniform(math.log(a), math.log(b)))


def _gemm_cases(rng, n_cases=120):
    cases = []
    while len(cases) < n_cases:
        m = max(1, int(round(_logu(rng, 1, 8192))))
        n, k = (128 * max(8, int(round(_logu(rng, 8, 256)))) for _ in range(2))
        if n * k <= 2 ** 28:
            cases.append((m, n, k))
    return sorted(cases, key=lambda c: (c[1], c[2], c[0]))  # one weight allocation per (N, K)


def _layout(rng, d=None):
    while True:
        kvh, g = rng.choice((1, 2, 4, 8, 16, 32)), rng.choice((1, 2, 4, 5, 6, 8))
        if 8 <= kvh * g <= 64:
            return kvh * g, kvh, d or (64 if rng.random() < 0.3 else 128)


def _attention(rng):
    cases = []
    while len(cases) < 40:
        h, kvh, d = _layout(rng)
        L, b = int(round(_logu(rng, 256, 16384))), rng.randint(1, 4)
        if b * L <= 24576:
            cases.append(("prefill", b, h, kvh, d, L, L, rng.random() < 0.85))
    while len(cases) < 120:
        h, kvh, d = _layout(rng, 128)
        b, ctx = int(round(_logu(rng, 1, 128))), int(round(_logu(rng, 128, 32768)))
        if 2 * b * kvh * ctx * 128 * 2 <= 8e9:
            cases.append(("decode", b, h, kvh, 128, 1, ctx, False))
    return cases


EW4_KINDS = ("copy", "add", "rmsnorm", "softmax", "silu_mul", "embedding", "add_rmsnorm", "rope_fused")


def _elementwise(rng, n_cases=140):
    cases = []
    for _ in range(n_cases):
        kind = rng.choice(EW4_KINDS)
        small = kind in ("embedding", "rope_fused")
        sz = 2 * int(_logu(rng, 2 ** 16, 2 ** 28 if small else 2 ** 30) / 2)
        if kind == "softmax":
            cols = int(round(_logu(rng, 256, 262144)))
        elif kind == "silu_mul":
            cols = 256 * rng.randint(16, 128)
        elif kind == "rope_fused":
            h, kvh, d = _layout(rng)
            cols = (h, kvh, d)
        else:
            cols = 256 * rng.randint(4, 64)
        cases.append((kind, cols, sz))
    return cases


def _e2e(rng):
    dec = [(int(round(_logu(rng, 1, 64))), int(round(_logu(rng, 128, 8192)))) for _ in range(10)]
    pre = [(rng.randint(1, 3), int(round(_logu(rng, 256, 4096)))) for _ in range(6)]
    return dec, pre


def _draw(seed=HELDOUT4_SEED):
    """Every case list, drawn in one fixed order from one generator (so each list is fixed by
    the seed alone)."""
    rng = random.Random(seed)
    gemm = _gemm_cases(rng)
    attn = _attention(rng)
    ew = _elementwise(rng)
    dec, pre = _e2e(rng)
    return gemm, attn, ew, dec, pre


_GEMM4, _ATTN4, _EW4, E2E_DECODE4, E2E_PREFILL4 = _draw()
# microbench.section_gemm crosses gemm_nk x gemm_m; heldout4 lists its (M, N, K) triples instead
HELDOUT4 = {"gemm_mnk": _GEMM4, "gemm_nk": [], "gemm_m": [], "gemm_square": []}


def heldout4_attention_cases():
    return list(_ATTN4)


def heldout4_elementwise_cases():
    return list(_EW4)
