"""Error metrics by hand, and QSNR of formats on Gaussian data against published values:
the "INT v.s. FP" closed forms (arXiv 2510.25602) and the shared-microexponent paper's
MX9 comparisons (Rouhani et al., ISCA 2023), as quoted in shared/docs/compression-methods.md."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cosim.functional import (cosine_similarity, kl_divergence_softmax, max_abs_error, qsnr_gaussian, quantize,
                              rel_fro_error, sqnr_db)


def test_metrics_by_hand():
    x = np.array([3.0, 4.0])
    y = np.array([3.0, 3.0])
    assert sqnr_db(x, y) == pytest.approx(10 * math.log10(25 / 1))
    assert rel_fro_error(x, y) == pytest.approx(1 / 5)
    assert max_abs_error(x, y) == 1.0
    assert cosine_similarity(x, y) == pytest.approx(21 / (5 * math.sqrt(18)))
    assert sqnr_db(x, x) == math.inf
    # KL(p || q) for p = softmax([0, 0]) = (1/2, 1/2), q = softmax([0, ln 3]) = (1/4, 3/4)
    kl = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert kl_divergence_softmax([[0.0, 0.0]], [[0.0, math.log(3)]]) == pytest.approx(kl)
    assert kl_divergence_softmax([[1.0, 2.0, 3.0]], [[1.0, 2.0, 3.0]]) == pytest.approx(0.0, abs=1e-15)
    with pytest.raises(ValueError, match="shapes differ"):
        sqnr_db(x, y[:1])


@pytest.mark.parametrize("fmt,mbits", [("fp8_e4m3", 3), ("fp8_e5m2", 2), ("bf16", 7), ("fp16", 10)])
def test_fp_qsnr_formula(fmt, mbits):
    # FP with ample range: QSNR ~= 13.80 + 6.02 M dB
    assert qsnr_gaussian(fmt) == pytest.approx(13.80 + 6.02 * mbits, abs=0.5)


@pytest.mark.parametrize("fmt,bits", [("mxint8", 8), ("mxint4", 4), ("msfp16", 8), ("msfp12", 4)])
def test_int_block_qsnr_formula(fmt, bits):
    # INT: QSNR ~= 4.78 + 6.02 b - 20 log10(rho) - 20 log10(kappa), with the block crest
    # factor kappa = amax/sigma and the power-of-two scale overhead rho = 2^(e+1)/amax,
    # combined over blocks in the power domain
    x = np.random.default_rng(0).standard_normal((64, 1024)).astype(np.float32)
    block = 32 if fmt.startswith("mx") else 16
    amax = np.abs(x.reshape(-1, block)).max(axis=1).astype(np.float64)
    rho = 2.0 ** (np.floor(np.log2(amax)) + 1) / amax
    predicted = 4.78 + 6.02 * bits - 10 * np.log10(np.mean((rho * amax) ** 2))  # sigma = 1
    assert sqnr_db(x, quantize(x, fmt)) == pytest.approx(predicted, abs=0.3)


def test_mx9_vs_fp8_and_msfp16():
    # ISCA 2023: MX9 is about 16 dB above FP8-E4M3 and about 3.6 dB above MSFP16
    kw = dict(sigma_spread=4.0, n=1 << 17)
    mx9 = qsnr_gaussian("mx9", **kw)
    assert mx9 - qsnr_gaussian("fp8_e4m3", saturate=True, **kw) == pytest.approx(16.0, abs=1.5)
    assert mx9 - qsnr_gaussian("msfp16", **kw) == pytest.approx(3.6, abs=0.6)


def test_format_ordering():
    # more bits, more SNR; MXINT8 beats MXFP8 on Gaussian blocks (INT v.s. FP: 40.35 vs 31.50 dB
    # on LLM tensors; Gaussian blocks are milder but the order holds)
    q = {f: qsnr_gaussian(f) for f in ("mxint8", "mxfp8_e4m3", "mxfp6_e2m3", "mxfp4", "nvfp4", "mx6", "mx4")}
    assert q["mxint8"] > q["mxfp8_e4m3"] + 8
    assert q["mxfp8_e4m3"] > q["mxfp4"] and q["mxfp6_e2m3"] > q["mxfp4"]
    assert q["nvfp4"] > q["mxfp4"]  # finer (E4M3) block scale over 16 elements
    assert q["mx6"] > q["mx4"] + 10
