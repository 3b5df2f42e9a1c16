"""Functional core: the real narrow-precision arithmetic, as numba kernels.

quantize(x, fmt, ...)           -> dequantized float32, same shape
encode(x, fmt, ...) -> QTensor  bit-packed codes + scales; decode(q) -> float32
matmul(a, b, fmt_a, ...)        fast (dequantize + BLAS) or exact (MX dot-product unit)
metrics                         sqnr_db, rel_fro_error, max_abs_error, cosine_similarity,
                                kl_divergence_softmax, qsnr_gaussian
"""

from .quantize import quantize

__all__ = ["quantize"]
