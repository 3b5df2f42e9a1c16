"""Functional core: the real narrow-precision arithmetic, as numba kernels.

    import numpy as np, cosim.functional as F
    x = np.random.default_rng(0).standard_normal((4096, 4096)).astype(np.float32)
    y = F.quantize(x, "mxfp4")                    # dequantized float32, same shape
    y = F.quantize(x, "mxfp4", compat="microxcaling", rounding="nearest")  # reference bit-for-bit
    q = F.encode(x, "mxfp4"); q.nbytes            # 8912896 = 4.25 bits/element, really packed
    F.decode(q); q.save("w.npz"); F.QTensor.load("w.npz")
    c = F.matmul(a, b, "mxfp8_e4m3", mode="exact", accum="fp32")   # MX dot-product unit
    F.sqnr_db(x, y), F.qsnr_gaussian("mx9")

quantize(x, fmt, ...)            -> dequantized float32 for every registered format
encode(x, fmt, ...) -> QTensor   bit-packed codes + scales; decode(q) -> float32
matmul(a, b, fmt_a, ...)         fast (dequantize + BLAS) or exact (integer block products)
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
