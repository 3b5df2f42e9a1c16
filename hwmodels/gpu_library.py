"""Which kernel the library picks (issue 11, session 7): dispatch rules of ATen, cuBLAS and
FlashAttention-2 that change a kernel's cost at shape boundaries, read off their sources, each
used by hwmodels.gpu only where a calibration carries the parameter the rule prices (chosen on
the validation split carved from the fit rows: validation/model_selection/s7_candidates.txt).

- Softmax (ATen SoftMax.cu, host_softmax): a row longer than the warp-per-row limit runs one CTA
  per row; the CTA keeps the row in shared memory (cunn_SoftMaxForwardSmem) only when the row
  has fewer than (sharedMemPerBlock - reduction scratch) / sizeof(elem) elements AND a multiple
  of ILP = 16 / sizeof(elem) elements; otherwise (cunn_SoftMaxForward) it reads the row from
  global memory once per pass (max, sum of exponentials, normalised write): `softmax_multipass`.
- Embedding (ATen index_select, Indexing.cu): 16 or fewer indices take indexSelectSmallIndex,
  whose threads walk the indices one after another (a dependent index load, then the row copy,
  per index); more indices take indexSelectLargeIndex, parallel over all elements:
  `index_select_small`.
- Hugging Face eager attention with one KV head (MQA): repeat_kv's expand().reshape() of a
  (b, 1, kv, d) tensor is a view (stride 0 over heads), so no copy is made there; torch.matmul
  then folds (b, h) into one batch dimension, which a stride-0 head axis cannot be viewed as
  when b > 1: it clones the broadcast operand, K^T as a transposing copy ((kv, d) rows written
  as (d, kv)) and V as a plain broadcast copy; at b = 1 the fold is a view and nothing is
  copied (checked with torch.profiler: aten::clone/copy_ inside matmul only when b > 1):
  `mqa_copies`.
- cuBLAS tiles: the profiled Hopper kernels include a 192 x 192 cooperative tile
  (nvjet_sm90_tst_192x192 in validation/logs), which the session-4 tile list lacked: `tiles`.
"""

from __future__ import annotations

import numpy as np

from hwmodels.gpu_params import WARP_SOFTMAX_MAX_COLS

__all__ = ["SMEM_PER_BLOCK", "softmax_multipass", "SOFTMAX_REG_MAX_PER_THREAD", "softmax_reg", "FP8_SPLITK_MAX_M",
           "SPLITK_NEVER_K", "fp8_no_split", "INDEX_SELECT_SMALL", "index_select_small", "mqa_copies",
           "TILE_SETS", "tiles", "streamk_time"]

SMEM_PER_BLOCK = 49152  # cudaDeviceProp.sharedMemPerBlock (48 KiB without the opt-in carve-out)
_REDUCE_SCRATCH = 1024 // 32 * 4  # block of 1024 threads: one fp32 per warp for the block reductions
INDEX_SELECT_SMALL = 16  # Indexing.cu: numIndices <= 16 -> indexSelectSmallIndex


def softmax_multipass(cols, elem_bytes: float = 2.0):
    """True where a block-per-row softmax over rows of `cols` elements cannot cache the row in
    shared memory (vectorised over cols). Rows of the warp-per-row kernel never get here."""
    cols = np.asarray(cols, dtype=float)
    ilp = 16.0 / elem_bytes
    fits = cols < (SMEM_PER_BLOCK - _REDUCE_SCRATCH) / elem_bytes
    return ~(fits & (np.mod(cols, ilp) == 0))


# Session-16 candidates (issue 11 round 9; validation/model_selection/s16_candidates.py). Facts from the kernel
# dispatch profile of the fit suites on an H100 (validation/logs/kdp_h100/SUMMARY.md; the same SMs, clocks and
# PyTorch / cuBLASLt as the H200 fit; on the H200 a hypothesis, its dispatch is not profiled):
# - softmax rows of 2,049-9,216 elements run ATen's cunn_SoftMaxForwardReg (1024-thread block, the row held in
#   registers, ceil(cols / 1024) < 10 elements per thread: SoftMax.cu potential_register_count), one pass at any
#   alignment, at the lowest bytes per second of the block kernels (0.90-1.30 TB/s against 1.49-1.86);
# - cuBLASLt splits an fp8 GEMM's K only at m <= 128 (torch's m, tokens; max split m seen 110) and no GEMM at
#   k <= 2048.
SOFTMAX_REG_MAX_PER_THREAD = 9  # SoftMax.cu: potential_register_count < 10 with a 1024-thread block
FP8_SPLITK_MAX_M = 128
SPLITK_NEVER_K = 2048


def softmax_reg(cols):
    """True where a block-per-row softmax (rows longer than the warp kernel's WARP_SOFTMAX_MAX_COLS) keeps its row
    in registers: at most SOFTMAX_REG_MAX_PER_THREAD elements per thread of a 1024-thread block (vectorised)."""
    cols = np.asarray(cols, dtype=float)
    return (cols > WARP_SOFTMAX_MAX_COLS) & (np.ceil(cols / 1024.0) <= SOFTMAX_REG_MAX_PER_THREAD)


def fp8_no_split(m, k):
    """True where cuBLASLt's fp8 dispatch (H100 profile) never splits K: m > FP8_SPLITK_MAX_M or
    k <= SPLITK_NEVER_K (vectorised)."""
    return (np.asarray(m, dtype=float) > FP8_SPLITK_MAX_M) | (np.asarray(k, dtype=float) <= SPLITK_NEVER_K)


def index_select_small(rows):
    """True where an embedding gathers few enough rows for the serial small-index kernel."""
    return np.asarray(rows, dtype=float) <= INDEX_SELECT_SMALL


def mqa_copies(batch: int, heads: int, kv_heads: int):
    """(copy K^T transposed?, copy V?) that eager MQA attention makes inside torch.matmul;
    None when the layout is not MQA (GQA copies in repeat_kv itself)."""
    if kv_heads != 1 or heads == 1:
        return None
    return (batch > 1, batch > 1)


# gemm.tile_set -> (BM, BN) candidates; 0: the session-4 list (hwmodels.gpu_params.TILES)
TILE_SETS = {1: ((192, 192),)}


def tiles(base, tile_set) -> tuple:
    """The tile candidates of a calibration: the base list plus those of its tile set."""
    return tuple(base) + TILE_SETS.get(int(tile_set or 0), ())


def streamk_time(bm, bn, tiles, k, sms, rate, bw, ws_bytes, min_k):
    """Stream-K (session-9 candidate; CUTLASS's StreamK tile scheduler, which cuBLAS's Hopper kernels
    offer): the tiles' MAC iterations (tiles x K) are divided evenly over the SMs instead of in whole
    tiles per wave, so a last partial wave costs its share, not a whole tile's time; an SM whose share
    ends inside a tile writes its fp32 partial tile to the workspace and the tile's owner reads it back
    (at most one partial tile per SM: 2 x SMs x BM x BN x ws_bytes at the GEMM bandwidth). Returns
    (MAC time, fix-up time, eligible): eligible where the tiles do not fill whole waves and each SM's
    share is at least `min_k` deep. Vectorised over tiles and k."""
    share = tiles * k / sms  # K-iterations' depth per SM
    t = 2.0 * bm * bn * share / rate
    fix = 2.0 * sms * bm * bn * ws_bytes / bw
    ok = (np.mod(tiles, sms) != 0) & (share >= min_k)
    return t, np.where(ok, fix, 0.0), ok
