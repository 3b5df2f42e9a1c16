"""Functional core: the real narrow-precision arithmetic, as numba kernels.

quantize(x, fmt, ...)            -> dequantized float32, same shape (every registered format)
encode(x, fmt, ...) -> QTensor   bit-packed codes + scales; decode(q) -> float32; q.save / QTensor.load
matmul(a, b, fmt_a, ...)         fast (dequantize + BLAS) or exact (MX dot-product unit emulation)
metrics                          sqnr_db, rel_fro_error, max_abs_error, cosine_similarity,
                                 kl_divergence_softmax, qsnr_gaussian
"""

from .matmul import matmul
from .metrics import (cosine_similarity, kl_divergence_softmax, max_abs_error, qsnr_gaussian, rel_fro_error,
                      sqnr_db)
from .qtensor import QTensor, decode, encode
from .quantize import quantize

__all__ = ["quantize", "encode", "decode", "QTensor", "matmul", "sqnr_db", "rel_fro_error", "max_abs_error",
           "cosine_similarity", "kl_divergence_softmax", "qsnr_gaussian"]
