"""Which kernel the library picks (issue 11, session 7): dispatch rules of ATen, cuBLAS and
FlashAttention-2 that change a kernel's cost at shape boundaries, read off their sources, each
used by hwmodels.gpu only where a calibration carries the parameter the rule prices (chosen on
the validation split carved from the fit rows: validation/model_selection/s7_candidates.txt).

- Softmax (ATen SoftMax.cu, host_softmax): a row longer than the warp-per-row limit runs one CTA
  per row; the CTA keeps the row in shared memory (cunn_SoftMaxForwardSmem) only when the row
  has fewer than (sharedMemPerBlock - reduction scratch) / sizeof(elem) elements AND a multiple
  of ILP = 16 / sizeof(elem) elements; otherwise (cunn_SoftMaxForward) it reads the row from
  global memory once per pass (max, sum of exponentials, normalised write): `softmax_multipass`.
- Softmax, round 13 (session 21; validation/model_selection/s24_ew_dispatch.txt): the forward block kernel
  (SoftMaxForward_getBlockSize) always has min(cols, 1,024) threads, i.e. 1,024 for every row it gets, and host_softmax
  picks one of three kernels: cunn_SoftMaxForwardReg while ceil(cols / 1,024) < 10 (the row held in registers, read
  once, any alignment), else cunn_SoftMaxForwardSmem under the shared-memory condition above, else
  cunn_SoftMaxForward, the multi-pass global-memory kernel: `softmax_path`. Only the last re-reads the row, so a
  calibration with per-path waves applies its multi-pass factor to that path alone.
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
  (nvjet_sm90_tst_192x192 in validation/logs), which the session-4 tile list lacked: `tiles` (tile set 1); since round
  22 (session 32) the H100 calibration chooses from the nvjet menus instead (`NVJET_MENUS`, tile set 2: 960 16-bit
  entries, 816 distinct, and 320 fp8 ones; a repeated tile is a later equal and never the pick).
- FlashAttention-2 prefill, round 18 (session 26; validation/model_selection/s33_fa2_kernels.txt): PyTorch's mha_fwd
  runs flash_fwd_splitkv_kernel whenever set_params_splitkv's heuristic splits (checked against the H100's fit-shape
  kernel profile, validation/diagnostics/h100_kernel_profile.txt): the key block it uses is `fa2_split_block_n`; a
  kernel's CTAs leave the block scheduler in grid order and take the first free slot: `greedy_makespan`.
"""

from __future__ import annotations

import heapq
from functools import lru_cache

import numpy as np

__all__ = ["SMEM_PER_BLOCK", "softmax_multipass", "SOFTMAX_PATHS", "softmax_path", "softmax_traffic", "copy_unaligned", "INDEX_SELECT_SMALL", "index_select_small", "mqa_copies",
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


SOFTMAX_BLOCK_THREADS = 1024  # SoftMaxForward_getBlockSize for every row longer than the warp kernel's
SOFTMAX_REG_MAX = 9  # cunn_SoftMaxForwardReg while ceil(cols / 1,024) < 10 (its register-count template 1..9)
SOFTMAX_PATHS = ("reg", "smem", "gmem")  # softmax_path's 0, 1, 2


def softmax_path(cols, elem_bytes: float = 2.0):
    """The block softmax's kernel per row width (vectorised over cols): 0 register, 1 shared-memory, 2 global-memory
    (multi-pass). Rows of the warp-per-row kernel never get here."""
    cols = np.asarray(cols, dtype=float)
    reg = np.ceil(cols / SOFTMAX_BLOCK_THREADS) <= SOFTMAX_REG_MAX
    return np.where(reg, 0, np.where(softmax_multipass(cols, elem_bytes), 2, 1))


SOFTMAX_GMEM_PASSES = 3  # cunn_SoftMaxForward: max, sum of exponentials, normalised write, each reading the row


def softmax_traffic(cols):
    """Bytes the block softmax moves over its compulsory bytes (a read and a write of the row): 1 for the register and
    shared-memory kernels (the row read once), (passes + 1 write) / 2 = 2 for the global-memory kernel. For energy:
    round 13's latency fit leaves ew.softmax.mult no byte count."""
    return np.where(softmax_path(cols) == 2, (SOFTMAX_GMEM_PASSES + 1) / 2.0, 1.0)


COPY_UNALIGNED_MIN_BYTES = 2 * 2 ** 20  # no extra time seen below ~2 MB a tensor (ew_exploration_s20.md; fixed)
COPY_ALIGN_BYTES = 4096


def copy_unaligned(nbytes):
    """True where a copy of `nbytes` compulsory bytes (its input and output: the tensor is half of them, as for every
    measured copy) moves a tensor > 2 MiB whose size is no multiple of 4 KiB (round 13's extra time). Vectorised."""
    tensor = np.asarray(nbytes, dtype=float) / 2.0
    return (tensor > COPY_UNALIGNED_MIN_BYTES) & (np.mod(tensor, COPY_ALIGN_BYTES) != 0)


def index_select_small(rows):
    """True where an embedding gathers few enough rows for the serial small-index kernel."""
    return np.asarray(rows, dtype=float) <= INDEX_SELECT_SMALL


def mqa_copies(batch: int, heads: int, kv_heads: int):
    """(copy K^T transposed?, copy V?) that eager MQA attention makes inside torch.matmul;
    None when the layout is not MQA (GQA copies in repeat_kv itself)."""
    if kv_heads != 1 or heads == 1:
        return None
    return (batch > 1, batch > 1)


# gemm.tile_set -> (BM, BN) candidates added to the base list; 0: the session-4 list (hwmodels.gpu_params.TILES)
TILE_SETS = {0: (), 1: ((192, 192),)}


def _either_way(tokens, weights) -> tuple:
    return tuple((t, w) for t in tokens for w in weights) + tuple((w, t) for t in tokens for w in weights)


# gemm.tile_set 2 (round 22, session 32): the tiles cuBLAS's nvjet kernels take on Hopper, in place of the base list.
# Read from kernel profiles of the H100's fit shapes: the bf16 kernels (nvjet_sm90_tst_<weight rows>x<tokens>_...,
# validation/diagnostics/gemm_choice_probe.py) and the fp8 ones (qqtst kernels, fp8_kernel_names.txt): token tiles in
# steps of 8 x the weight tiles seen, either way round (which operand is the token side follows the layout).
NVJET_MENUS = {"16bit": _either_way(range(8, 257, 8), (64, 80, 96, 112, 128, 144, 160, 168, 176, 192, 208, 256, 320,
                                                        384, 512)),
               "fp8": _either_way(range(8, 161, 8), (64, 80, 96, 112, 128, 144, 192, 256))}


def tiles(base, tile_set, fmt="bf16") -> tuple:
    """The tile candidates of a calibration for GEMMs computing in `fmt`: the base list plus those of its tile set, or
    (tile set 2) the nvjet menu of the format's operand width."""
    try:
        ts = float(tile_set or 0)
    except (TypeError, ValueError):
        ts = None
    if ts is None or not ts.is_integer() or int(ts) not in (*TILE_SETS, 2):
        raise ValueError(f"gemm.tile_set: got {tile_set!r}; expected one of {sorted([*TILE_SETS, 2])}")
    if int(ts) == 2:
        return NVJET_MENUS["fp8" if fmt.startswith("fp8") else "16bit"]
    ts = int(ts)
    return tuple(base) + TILE_SETS[ts]


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


def fa2_split_block_n(head_dim: int) -> int:
    """The key block of FlashAttention-2's split-KV kernel (flash_api.cpp set_params_splitkv's block_n)."""
    return 256 if head_dim <= 64 else (128 if head_dim <= 128 else 64)


@lru_cache(maxsize=65536)
def greedy_makespan(works: tuple, repeats: int, slots: int) -> float:
    """Greedy list schedule, in score blocks, of `repeats` copies of the CTA works `works` (one (batch, head)'s CTAs in
    the grid's dispatch order) onto `slots` identical slots, each CTA to the earliest free one: the longest slot."""
    if len(works) * repeats <= slots:
        return float(max(works))
    free = [0.0] * slots
    for _ in range(repeats):
        for w in works:
            heapq.heapreplace(free, free[0] + w)
    return max(free)
