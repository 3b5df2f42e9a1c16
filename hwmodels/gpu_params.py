"""The analytical GPU model's parameter table and its fitted-parameter container, apart
from the model code so the calibration loader and the model import it without a cycle."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PARAMS", "GpuParams", "SWITCH_PARAMS", "ATTN_BACKENDS", "ATTN_BACKEND_KEYS", "ATTN_BLOCKS", "OPTIONAL_PARAMS",
           "STREAM_SPEEDUP_MAX", "UNFUSED_KEYS", "EW_KINDS", "EW_ALIAS", "ROW_KINDS", "KERNELS", "TILES", "SPLITK_MIN_K", "FA2_BQ",
           "FA2_DEC_BM", "BANDWIDTH_PARAMS", "WARP_SOFTMAX_MAX_COLS", "EW_WARP_KEYS", "EW_ROW_KEYS", "SPLITK_WS_BYTES",
           "SOFTMAX_PATH_KEYS", "FA2_SPLIT_BQ", "FA2_SLOTS_PER_SM", "SKV_PARTIAL_BYTES"]

# ---------------------------------------------------------------------------- parameters

# name -> (unit kind for hwmodels.units or None for dimensionless, what it means); written
# as a table (name, unit kind or "-", what it means), parsed below
_PARAM_TABLE = """
gemm.mma_eff.bf16          -                bf16 tensor-core efficiency inside a full tile (fraction of datasheet peak)
gemm.mma_eff.fp8_e4m3      -                fp8 e4m3 tensor-core efficiency inside a full tile (torch._scaled_mm)
gemm.tile_c                -                extra time per MAC of a BM x BN tile = tile_c * (1/BM + 1/BN)
gemm.bw                    bandwidth        achievable HBM bandwidth of GEMM operand streaming
gemm.floor                 time             shortest GEMM kernel (launch, pipeline fill, DRAM latency)
gemm.overlap_p             -                p-norm exponent combining compute and memory time
attn.eff                   -                flash prefill tensor-core efficiency (fraction of bf16 peak) per score block
attn.cta_overhead          time             per-CTA fixed time of flash prefill (Q load, O write, softmax epilogue)
attn.floor                 time             shortest attention kernel
attn.tail                  -                fraction of the longest CTA that outlasts the average SM (last-wave tail)
attn.dec_floor             time             shortest decode-attention kernel
attn.dec_bw                bandwidth        achievable KV-streaming bandwidth of decode attention
attn.cta_bw_split          bandwidth        per-CTA KV streaming rate of the split-KV decode kernel
attn.cta_bw_nosplit        bandwidth        per-CTA KV streaming rate when one CTA streams a whole head
attn.combine               time             split-KV combine kernel time
ew.bw                      bandwidth        achievable streaming bandwidth of elementwise kernels
ew.overlap_p               -                p-norm exponent combining the floor and the streaming time
graph.gap                  time             GPU time per tiny kernel replayed in a CUDA graph (in-stream floor)
launch.overlap             time             per-kernel launch latency an isolated, event-timed kernel pays and a kernel inside a stream/graph hides behind its predecessor
eager.cpu_per_kernel       time             host time per kernel launch of eager PyTorch model code
energy.static              power            board power when idle (static + uncore)
energy.per_byte            energy_per_byte  energy per HBM byte moved (J/B, whole-chip)
energy.per_flop.bf16       energy_per_flop  energy per bf16 tensor FLOP (whole-chip)
energy.per_flop.fp8_e4m3   energy_per_flop  energy per fp8 tensor FLOP (whole-chip)
energy.per_flop.attention  energy_per_flop  energy per attention FLOP (tensor + softmax)
energy.per_kv_byte         energy_per_byte  energy per KV-cache byte streamed by decode attention
energy.power_cap           power            board power limit (NVML)
"""
PARAMS = {name: (None if kind == "-" else kind, what)
          for name, kind, what in (line.split(None, 2) for line in _PARAM_TABLE.strip().splitlines())}

# Attention backends. "fa2" (FlashAttention-2) uses the attn.* parameters above; other fused
# backends have their own set (same formulas, own fitted values, own block shape), optional in
# a calibration file: a backend a calibration did not measure is never priced silently with
# another's numbers (estimate raises, naming the backends it has). "unfused" (Hugging Face
# eager attention) needs no parameters: it is priced as its separate kernels.
ATTN_BACKENDS = ("fa2", "cudnn", "unfused")
ATTN_BACKEND_KEYS = ("eff", "cta_overhead", "floor", "tail", "dec_floor", "dec_bw", "cta_bw_split",
                     "cta_bw_nosplit", "combine")
ATTN_BLOCKS = {"cudnn": (128, 128)}  # cuDNN's sm90 flash forward (wgmma) kernel, FA3-class
OPTIONAL_PARAMS = {f"attn_cudnn.{k}": (PARAMS[f"attn.{k}"][0], f"cuDNN attention: {PARAMS[f'attn.{k}'][1]}")
                   for k in ATTN_BACKEND_KEYS}
# unfused attention: its kernels are priced by the GEMM / elementwise models, but two of them
# are not the kernels those models were fitted on: repeat_kv's expand().reshape() is a strided
# gather (no vectorised loads), and the score passes stream (bh*q, kv) matrices with a
# broadcast mask and fp32 output. One traffic multiplier each, fitted on the unfused rows.
UNFUSED_KEYS = ("unfused.gather_mult", "unfused.score_mult")
OPTIONAL_PARAMS.update({
    "unfused.gather_mult": (None, "unfused attention: time multiplier of the repeat_kv strided copies"),
    "unfused.score_mult": (None, "unfused attention: time multiplier of the scale/mask/softmax/cast passes"),
    "unfused.unaligned_mult": (None, "unfused attention, KV length no multiple of 8: time multiplier of the "
                                     "score GEMMs and passes"),
})

# Elementwise kinds with their own fitted floor and traffic multiplier (ew.<kind>.floor,
# ew.<kind>.mult); kinds we could not measure borrow the nearest kernel and say so.
EW_KINDS = ("copy", "add", "rmsnorm", "softmax", "silu_mul", "rope", "embedding")
EW_ALIAS = {"mul": "add", "gelu": "add", "layernorm": "rmsnorm", "quantize": "add", "dequantize": "add",
            "topk": "softmax", "gelu_mul": "silu_mul", "softcap": "add",
            # engine-fused kernels (one streaming pass each; not measured here): see workloads/profiles.py
            "add_rmsnorm": "rmsnorm", "rope_fused": "add"}
ROW_KINDS = ("rmsnorm", "softmax")  # one CTA reduces one row: a long row is a long serial chain
for _k in EW_KINDS:
    PARAMS[f"ew.{_k}.floor"] = ("time", f"shortest {_k} kernel(s) (per tensor for rope)")
    PARAMS[f"ew.{_k}.mult"] = (None, f"{_k}: bytes moved / compulsory bytes")
for _k in ROW_KINDS:
    PARAMS[f"ew.{_k}.floor_per_col"] = ("time", f"{_k}: extra floor per element of the reduced row")

# Row-reduction kernels, optional in a calibration (fitted when its suite identifies them;
# docs/gpu-validation.md, model selection on the validation split carved from the fit rows):
# - PyTorch runs softmax over rows of <= WARP_SOFTMAX_MAX_COLS elements with a warp-per-row kernel (the row stays
#   in registers), longer rows with one CTA per row through shared memory: its own floor and
#   traffic multiplier;
# - a CTA-per-row kernel pays a serial cost per row (block-wide max/sum reductions and their
#   barriers) that bytes do not capture: seconds per row at full occupancy of the measured chip.
WARP_SOFTMAX_MAX_COLS = 2048  # bf16 rows of <= 4 KiB (session 4: the 2048-wide rows take the warp kernel's floor)
EW_WARP_KEYS = ("ew.softmax_warp.floor", "ew.softmax_warp.mult")
EW_ROW_KEYS = tuple(f"ew.{k}.per_row" for k in ROW_KINDS)
OPTIONAL_PARAMS.update({
    "ew.softmax_warp.floor": ("time", "shortest warp-per-row softmax kernel (rows <= WARP_SOFTMAX_MAX_COLS elements)"),
    "ew.softmax_warp.mult": (None, "warp-per-row softmax: bytes moved / compulsory bytes"),
    **{k: ("time", f"{k.split('.')[1]}: serial time per reduced row (CTA-per-row kernel), whole chip")
       for k in EW_ROW_KEYS},
})

# Session-4 terms (issue 11; each optional, used only where a calibration fitted it, chosen on the
# validation split carved from the fit rows: validation/model_selection/s4_candidates.txt):
# - row waves: a CTA-per-row reduction (PyTorch's block softmax, F.rms_norm) runs
#   ceil(rows / (SMs x resident CTAs per SM)) waves; each row is a serial chain of ceil(cols /
#   (threads x 8)) vectorised iterations plus block-wide reductions: wave time = row_lat +
#   row_lat_iter x iterations. Threads per CTA follow ATen's SoftMax_getBlockSize (cols / 8
#   bf16 elements per 16-byte load, a multiple of 32, at most 1024); resident CTAs per SM are
#   register-limited, ROW_REGS registers per thread of 65,536 per SM. The kernel's time is the
#   larger of its streaming time and its waves;
# - the warp-per-row softmax's floor grows with the row length (`ew.softmax_warp.floor_per_col`);
# - FlashAttention-2's decode kernel without split-KV, with more CTAs than SMs (several CTAs
#   per SM), streams the KV cache at its own bandwidth `attn.dec_bw_multi`;
# - the engine-fused kernels (fused residual add + RMSNorm, fused RoPE of q and k) have their
#   own floor and traffic multiplier when measured (FUSED_EW_KINDS); otherwise they borrow the
#   rmsnorm / add kernel's parameters and say so on the row.
ROW_REGS = 40
ATTN_OPTIONAL_KEYS = ("dec_bw_multi", "soft_c", "dec_cta_lat", "combine_split", "ragged", "ragged_wave", "dec_qhead_ctas",
                      "dec_fill")
ROW_THREADS_MAX = 1024
FUSED_EW_KINDS = ("add_rmsnorm", "rope_fused")
EW_ROW_WAVE_KEYS = tuple(f"ew.{k}.{x}" for k in ROW_KINDS for x in ("row_lat", "row_lat_iter"))
OPTIONAL_PARAMS.update({
    **{f"ew.{k}.row_lat": ("time", f"{k}: time of one wave of rows of one vectorised iteration (CTA-per-row)")
       for k in ROW_KINDS},
    **{f"ew.{k}.row_lat_iter": ("time", f"{k}: extra wave time per further vectorised iteration over a row")
       for k in ROW_KINDS},
    "ew.softmax_warp.floor_per_col": ("time", "warp-per-row softmax: extra floor per element of the row"),
    "attn.dec_bw_multi": ("bandwidth", "decode without split-KV, more CTAs than SMs: KV streaming bandwidth"),
    "attn_cudnn.dec_bw_multi": ("bandwidth", "cuDNN decode, more CTAs than SMs: KV streaming bandwidth"),
    "attn.split_sms_x": (None, "FlashAttention-2 decode: SM multiple its split-KV heuristic is called with "
                               "(structure: 2 in flash_api.cpp; absent = 1, the session-4 form)"),
    "attn.soft_c": (None, "prefill: softmax time of a score block, in units of a d = 128 block's MMA time per column"),
    "attn_cudnn.soft_c": (None, "cuDNN prefill: softmax time of a score block, as attn.soft_c"),
    **{f"ew.{k}.floor": ("time", f"shortest {k} kernel (engine-fused; measured as Triton, vLLM semantics)")
       for k in FUSED_EW_KINDS},
    **{f"ew.{k}.mult": (None, f"{k}: bytes moved / compulsory bytes (engine-fused kernel)") for k in FUSED_EW_KINDS},
})

# Kernel launches per op in the measured PyTorch implementation (structure, read off
# torch.profiler traces in validation/logs/h100_e2e_kernel_profiles.txt).
KERNELS = {"copy": 1, "add": 1, "rmsnorm": 1, "softmax": 1, "silu_mul": 2, "embedding": 1, "rope": 5,
           "add_rmsnorm": 1, "rope_fused": 1}

# Tile candidates (BM, BN) of Hopper GEMM kernels (cuBLAS nvjet names in the profiles:
# 256x128, 192x192, 128x128, 128x64/64x128 and narrow-N tiles for skinny M).
TILES = ((256, 128), (128, 256), (128, 128), (128, 64), (64, 128), (64, 64))
SPLITK_MIN_K = 512  # split-K chunks are at least this deep (keeps the MMA pipeline full)
FA2_BQ = 128  # flash-attention-2 forward query block
FA2_DEC_BM = 64  # split-KV kernel query block
# Session-6 terms (issue 11; chosen on the validation split carved from the fit rows:
# validation/model_selection/s6_candidates.txt, before held-out suite 4 was measured):
# - FlashAttention-2's split-KV heuristic is called with twice the SM count ("We multiply number
#   of SMs by 2 to hard-code the fact that we're using 128 threads per block", flash_api.cpp,
#   set_params_splitkv; PyTorch's vendored copy is the same): a decode launch of 106..211 CTAs on
#   132 SMs is split, not streamed one CTA per head (session-5 model: +40..60 % at 140-192 CTAs).
# Candidate terms the selections rejected (the diagonal-block cost, FA2's forward split-KV, cuDNN as
# Lean Attention, on-chip softmax re-reads, an SM share of the decode bandwidth) are not in the model
# since session 8: each selection script and its record (validation/model_selection/) is a frozen
# record of the commit that wrote it, where the term's code still is.
FA2_SPLIT_SMS_X = 2  # recorded as attn.split_sms_x by a calibration whose validation split chose it
# - wave cap: a flash prefill of C CTAs (batch x heads x query blocks) on S SMs, scheduled
#   greedily, never takes longer than ceil(C / S) waves of its longest CTA; the session-4 form
#   (work / S + tail x longest CTA) overshoots when C <= S or the CTAs are equal (non-causal);
# - `attn.soft_c`: the softmax of a score block (exp, row max/sum on the CUDA cores) costs the
#   same whatever the head dim, so a d = 64 block runs at a lower fraction of the MMA peak
#   (cuDNN d 64 causal prefill: -22 % with one efficiency for all head dims). FA2's own `attn.soft_c` since
#   session 12 (issue 11 round 7, validation/model_selection/s12_fa2_candidates.txt: H200 FA2 prefill train rows
#   d 64 -6.1 %, d 128 +1.8 % without it; validation median 5.1 -> 3.7); the H100's split kept FA2 without it.
ATTN_WAVE_CAP = True
# - unaligned unfused attention: Hugging Face eager attention over a KV length that is no
#   multiple of UNFUSED_ALIGN elements (16 bytes of bf16) runs its score GEMMs and score passes
#   `unfused.unaligned_mult` times slower (no 16-byte vector / TMA loads on rows of odd stride;
#   fit suite 4: -20 % median at such lengths with the session-4 model, 0 % at aligned ones).
UNFUSED_ALIGN = 8
# Session-7 terms (issue 11; library dispatch rules in hwmodels/gpu_library.py, each chosen on the
# validation split carved from the fit rows: validation/model_selection/s7_candidates.txt, before
# held-out suite 5 was measured). UNFUSED_MQA_VIEW: eager MQA attention copies inside matmul, not
# in repeat_kv (structure, no parameter; the selection script switches it to score the old form).
UNFUSED_MQA_VIEW = True
OPTIONAL_PARAMS.update({
    "gemm.tile_set": (None, "GEMM tile candidates: 0/absent = TILES, 1 = TILES + cuBLAS's 192 x 192 tile, 2 = the "
                            "nvjet menus of gpu_library.NVJET_MENUS in place of TILES (structure recorded by a "
                            "calibration whose validation rows chose it)"),
    "unfused.transpose_mult": (None, "unfused MQA attention (batch > 1): time multiplier of the transposing "
                                     "copy of K^T that torch.matmul makes"),
    "ew.softmax.multipass": (None, "block softmax whose row is not cached in shared memory (>= 24,512 bf16 "
                                   "elements or no multiple of 8): time multiplier of its stream and waves"),
    "ew.embedding.small_idx": ("time", "embedding of <= 16 rows (index_select small-index kernel): time per row"),
})
# Session-7 second-round terms (fit suite 6; each optional, chosen on the validation split carved
# from the fit rows: validation/model_selection/s7b_candidates.txt, before held-out suite 6).
OPTIONAL_PARAMS.update({
    "attn.dec_cta_lat": ("time", "FA2 decode: fixed time of a CTA (Q load, output normalise and write) per wave"),
    "attn_cudnn.dec_cta_lat": ("time", "cuDNN decode: fixed time of a CTA per wave"),
    "unfused.softmax_mult": (None, "unfused attention: time multiplier of the score softmax (bf16 in, fp32 out) "
                                   "on its own, instead of the score passes' shared one"),
})
# Session-8 term (fit suite 7; validation/model_selection/s8_candidates.txt, before held-out suite 7):
# chosen for FA2 on the H200; cuDNN's (same formula) was scored and not chosen.
OPTIONAL_PARAMS.update({
    "attn.combine_split": ("time", "FA2 split-KV decode: combine-kernel time per split (its loop over the splits)"),
    "attn_cudnn.combine_split": ("time", "cuDNN split decode: reduction time per split"),
})

# Session-8 second-round candidates (fit suite 8; validation/model_selection/s8b_candidates.txt, before
# held-out suite 8): split-K's fp32 workspace reduction, FA2's uneven causal prefill.
SPLITK_WS_BYTES = 4  # cuBLAS split-K partial tiles are fp32 (the accumulator type)
OPTIONAL_PARAMS.update({
    "gemm.splitk_ws": (None, "split-K reduction through the fp32 workspace priced (structure recorded by a "
                             "calibration whose validation split chose it: 1)"),
    "attn_cudnn.dec_qhead_ctas": (None, "cuDNN decode: one CTA per query head (the query group not packed; "
                                        "structure recorded by a calibration whose validation split chose it: 1)"),
    "attn.ragged": ("time", "FA2 causal prefill of a length no multiple of 128: fixed time of the uneven kernel"),
    "attn.ragged_wave": ("time", "FA2 uneven causal prefill, one wave filling more than half the SMs: extra "
                                 "time at a full wave (in proportion to the fill above half)"),
})
# Structure switches: exactly 0 (off) or 1 (on); the calibration parser refuses any other value
# (session 9: a 2 or a 0.5 used to count as "on").
SWITCH_PARAMS = ("gemm.splitk_ws", "attn_cudnn.dec_qhead_ctas", "gemm.stream_k")

# Session-9 candidates (issue 11 round 4; each optional, scored on the validation split carved from the
# fit rows: validation/model_selection/s9_candidates.txt, before held-out suite 10):
# - GEMM stream-K (hwmodels.gpu_library.streamk_time): besides split-K, a tile's MAC iterations spread
#   evenly over the SMs (CUTLASS / cuBLAS Hopper stream-K scheduling), its partial tiles fixed up
#   through the fp32 workspace;
# - decode KV pipeline fill: decode time over the bytes streamed at full bandwidth rises from about 7 us
#   at one 128-row KV block to about 11-12 us at four and stays there (cuDNN decode fit rows, splits
#   or not): a time per KV block of DEC_FILL_ROWS rows of the first DEC_FILL_BLOCKS (a measured
#   regularity, not derived from the library's source), none at an empty KV cache. Every fit and
#   held-out cuDNN decode row has head dim 128 (DEC_FILL_VALIDATED_HEAD_DIM): other head dims are
#   priced with the same 128-row blocks, unvalidated, and say so in the row's notes;
# Chosen (s9_candidates.txt): stream-K on the H200 (not the H100: a tie), the fill for cuDNN decode.
# Rejected and removed: the unaligned device-to-device memcpy's fixed time (validation p90 14.1 -> 13.3
# with one more parameter, within the rule's 2 points) and split-K's fixed reduction time (again).
DEC_FILL_BLOCKS = 4
DEC_FILL_ROWS = 128  # KV rows per block of the fill (the fit rows' regularity, at head dim 128)
DEC_FILL_VALIDATED_HEAD_DIM = 128  # the only head dim of the rows the fill was fitted and scored on
OPTIONAL_PARAMS.update({
    "gemm.stream_k": (None, "GEMM stream-K scheduling among the library's choices (structure recorded by a "
                            "calibration whose validation split chose it: 1)"),
    "attn.dec_fill": ("time", "decode: KV pipeline fill, time per DEC_FILL_ROWS-row KV block beyond the first, "
                              "up to DEC_FILL_BLOCKS (validated at head dim 128 only)"),
    "attn_cudnn.dec_fill": ("time", "cuDNN decode: KV pipeline fill, time per DEC_FILL_ROWS-row KV block beyond the "
                                    "first, up to DEC_FILL_BLOCKS (validated at head dim 128 only)"),
})
# Session 10 (issue 11 round 5; chosen on the validation split carved from the fit rows:
# validation/model_selection/s10_candidates.txt, before held-out suite 11). Unfused (Hugging Face eager)
# attention's multipliers were shared by its prefill and its decode; on the fit rows the unaligned-KV rows
# of decode (q_len 1) ran 6.5 % slower than priced (median, signed), aligned decode 1.1 %, while prefill's
# aligned rows ran 11.7 % slower and its unaligned ones 1.0 % faster: one unaligned multiplier could not
# serve both shapes of score matrix ((bh, 1, kv) rows against (bh, q, kv) matrices). Decode takes its own
# (validation p90 16.1 -> 13.4; a fitted regularity per phase, not derived from PyTorch's kernels).
# Rejected and removed: decode's own score-pass multiplier (15.9 alone; with both 13.4, one more parameter).
OPTIONAL_PARAMS.update({
    "unfused.dec_unaligned_mult": (None, "unfused decode attention (q_len 1), KV length no multiple of 8: its own "
                                         "time multiplier instead of unfused.unaligned_mult"),
})

# Session 11 (issue 11 round 6; validation/model_selection/s11_gemm_candidates.txt, chosen before held-out
# suite 12): fp8 GEMMs never take stream-K (gemm.fp8_no_stream_k). On the H200 train rows, fp8 GEMMs of few
# tiles and deep K ran up to as slowly as bf16's of the same shape (225 x 1152 x 32256: fp8 40.5 us, bf16
# 33.7 us, priced 22.3 us with stream-K): fp8 gains less than bf16 from spreading K over the SMs. Chosen
# (validation p90 13.4 -> 13.2; fp8 5.3 / 14.1 -> 4.9 / 14.0) over fp8 split-K and stream-K slices at least
# 6144 deep and fp8's own overlap exponent (E, both: 12.6, two more parameters, within the rule's 2 points),
# which were removed. A measured regularity of cuBLASLt's fp8 dispatch on the H200, not read off the library.
SWITCH_PARAMS = SWITCH_PARAMS + ("gemm.fp8_no_stream_k",)
OPTIONAL_PARAMS.update({
    "gemm.fp8_no_stream_k": (None, "fp8 GEMMs never take stream-K (structure recorded by a calibration whose "
                                   "validation split chose it: 1)"),
})

# Round 13 (session 21; validation/model_selection/s24_ew_dispatch.txt, chosen on the fit rows of both GPUs, leave one
# fit suite out, before heldout18 was measured): three elementwise terms read off what PyTorch dispatches.
# - Block softmax by kernel path (hwmodels.gpu_library.softmax_path): 1,024-thread CTAs, one resident per SM (at
#   1,024 threads a CTA may use at most 64 registers a thread; two would need <= 32), waves = ceil(rows / SMs), each
#   wave `ew.softmax.<path>_lat` + `ew.softmax.<path>_col` x cols for the register, shared-memory and global-memory
#   (multi-pass) kernels; the multi-pass factor applies to the global-memory path only. Replaces the session-4 row
#   waves (ew.softmax.row_lat / row_lat_iter) where a calibration has it. The register and shared-memory kernels
#   still read and write each byte once, so their stream at ew.bw is a floor under the waves (session 22): on both
#   calibrated GPUs it stays below the waves on every measured and heldout18 row (at most 0.52x on the H200, 0.67x
#   on the H100), so no calibrated price moves, but a lower bandwidth (a what-if sweep, a family transfer) binds.
# - RMSNorm re-read: the stream time x (1 + `ew.rmsnorm.reread` x s), s = clip(log2(cols / `ew.rmsnorm.reread_cols`),
#   0, 1): the effective bandwidth falls ~0.69x from narrow to wide rows on both GPUs, as if the row's second read
#   missed the cache once the rows in flight outgrow it (the mechanism is inferred from timings, not profiled).
# - A copy whose tensor (compulsory bytes / 2: the mean of its input and output) is larger than
#   2 MiB and not a multiple of 4 KiB (gpu_library.copy_unaligned) pays `ew.copy.unaligned` once (measured: ~2.3 us
#   over its 4 KiB-multiple neighbours on both GPUs; the mechanism is not established; the threshold is the
#   exploration's, validation/model_selection/ew_exploration_s20.md, fixed, not fitted).
SOFTMAX_PATH_KEYS = tuple(f"ew.softmax.{p}_{x}" for p in ("reg", "smem", "gmem") for x in ("lat", "col"))
OPTIONAL_PARAMS.update({
    **{f"ew.softmax.{p}_lat": ("time", f"block softmax, {name} kernel: wave time of one 1,024-thread CTA per SM "
                                       "at zero row length")
       for p, name in (("reg", "register"), ("smem", "shared-memory"), ("gmem", "global-memory"))},
    **{f"ew.softmax.{p}_col": ("time", f"block softmax, {name} kernel: wave time per element of the row")
       for p, name in (("reg", "register"), ("smem", "shared-memory"), ("gmem", "global-memory"))},
    "ew.rmsnorm.reread": (None, "RMSNorm: extra stream fraction of wide rows (a second read of the row)"),
    "ew.rmsnorm.reread_cols": (None, "RMSNorm: row width (elements) above which the re-read ramps in over one octave"),
    "ew.copy.unaligned": ("time", "copy of a tensor > 2 MiB whose size is no multiple of 4 KiB: extra time"),
})
# Round 14 (session 23; validation/model_selection/s25_graph_terms.txt, chosen on the H100's fit CUDA-graph decode rows,
# leave one model out; the H200's rows kept the round-13 form): inside a stream or CUDA graph a kernel runs a fraction
# `launch.stream_speedup` faster than event-timed alone after the L2 read flush, besides hiding `launch.overlap`.
# Measured on the H100 fit run's profile: wide GEMVs run 3 - 4.5 us faster inside the step than alone, growing with
# their length, against 1.9 us of launch overlap. The mechanism is not established (the flush's 1 GiB read leaving the
# DRAM or TLB state colder is a hypothesis, not profiled). Absent: 0 (the round-13 form). It prices in-workload times
# only: an event-timed kernel sequence (Hugging Face eager attention's isolated price) keeps its round-13 composition.
STREAM_SPEEDUP_MAX = 0.5  # a calibration's fraction must lie in [0, 0.5): more would be no in-stream effect but an error
OPTIONAL_PARAMS.update({
    "launch.stream_speedup": (None, "fraction by which a kernel inside a stream or CUDA graph runs faster than "
                                    "event-timed alone after the L2 read flush (fitted with launch.overlap)"),
})
# Round 18 (session 26; validation/model_selection/s33_fa2_kernels.txt, chosen on the H100's FA2 prefill fit rows, the
# validation split carved from them; the H200 took it in round 19, s35_h200_fa2_kernels.txt): FA2 prefill priced as
# the kernel PyTorch's FlashAttention-2 runs (`attn.prefill_kernels` = 1), from fit-shape records of the H100
# (validation/diagnostics/h100_kernel_profile.txt, h100_fa2_uneven_probe.txt):
# - where FA2's dispatch rule splits (mha_fwd -> set_params_splitkv: num_splits_heuristic over 64-row query blocks
#   and 2 x SMs), the split-KV kernel (FA2_SPLIT_BQ-row query blocks, fa2_split_block_n keys, one CTA per query block
#   and KV slice) and its combine kernel, which reads the splits' fp32 partial outputs (`attn.skv_combine` +
#   bytes / `attn.skv_combine_bw`);
# - the uneven-length terms (`attn.ragged`, `attn.ragged_wave`) only where the one-pass kernel's longest CTA
#   iterates more KV blocks than its masking steps (ceil(Bq / Bk) + 1): after the L2 flush that kernel runs 8 - 15 us
#   longer at uneven lengths, 3 us when every block it visits is a masking step, the split kernel 0.3 - 1.8 us;
# - the CTAs scheduled greedily in the grid's dispatch order (query block fastest) onto FA2_SLOTS_PER_SM slots per SM
#   (128 threads x 255 registers: two CTAs fit an SM's 65,536 registers), each at half an SM's rate, one CTA per SM
#   alone when the launch has no more CTAs than SMs; `attn.cta_overhead` once per wave of slots; `attn.tail` unused.
# Validated at head dims 64 and 128 only (every fit and probe shape); other head dims are priced with the same blocks
# and slots, unvalidated, and say so in the row's notes (FA2 runs other blocks above 128, one CTA per SM from 192).
# Within the masking steps the probe still showed some uneven cost (3.0 us at d 64, 10 single-wave shapes; 1.6 us on
# one multi-wave shape; 6.1 us on the one d 128 shape): the form prices none there (s33 chose it so).
FA2_SPLIT_BQ = 64  # flash_fwd_splitkv_kernel's query block (run_mha_fwd_splitkv_dispatch)
FA2_SLOTS_PER_SM = 2
SKV_PARTIAL_BYTES = 4  # the split kernel's partial outputs and their LSE are fp32 (flash_api.cpp out_accum)
SWITCH_PARAMS = SWITCH_PARAMS + ("attn.prefill_kernels",)
OPTIONAL_PARAMS.update({
    "attn.prefill_kernels": (None, "FA2 prefill priced as the kernel FlashAttention-2 runs: split-KV + combine where "
                                   "its rule splits, uneven terms past the masking steps, greedy two-slot schedule "
                                   "(structure recorded by a calibration whose validation split chose it: 1)"),
    "attn.skv_combine": ("time", "FA2 split-KV prefill: fixed time of the combine kernel"),
    "attn.skv_combine_bw": ("bandwidth", "FA2 split-KV prefill: rate at which the combine kernel reads the fp32 "
                                         "partial outputs"),
})

@dataclass(frozen=True)
class GpuParams:
    values: dict  # PARAMS name -> SI float
    sm_count: int
    l2_bytes: float
    provenance: str  # "calibrated:<device>, <date>, <software>"
    reference_bandwidth: float | None = None  # datasheet main-memory B/s of the calibrated spec
    attention_default: str = "fa2"  # the backend PyTorch's SDPA picked on the measured device
    residuals: object = None  # hwmodels.gpu_residuals.ResidualTable: measured-residual correction, or None

    def __getitem__(self, key):
        return self.values[key]


# fitted achieved bandwidths; a spec whose datasheet bandwidth differs from the calibrated
# one (a sweep's "what if HBM were 4.8 TB/s?") scales them by the ratio: the achieved
# fraction of the datasheet bandwidth is what the calibration measured
BANDWIDTH_PARAMS = ("gemm.bw", "attn.dec_bw", "attn.cta_bw_split", "attn.cta_bw_nosplit", "ew.bw", "attn.dec_bw_multi",
                    "attn.skv_combine_bw")


def unknown_param_errors(params, src: str) -> list[str]:
    """Names inside `analytical.params` that are no parameter of PARAMS / OPTIONAL_PARAMS
    (a typo such as `gemm.bww` was read as "absent" and silently ignored), each as one
    message naming the file, the field, its value and the names valid at that depth."""
    from workloads.schema import hint
    from workloads.yamlsafe import short_repr

    known = tuple(PARAMS) + tuple(OPTIONAL_PARAMS)
    errors: list[str] = []

    def walk(node, prefix: str) -> None:
        children = sorted({k[len(prefix):].split(".")[0] for k in known if k.startswith(prefix)})
        for key, value in node.items():
            name = f"{prefix}{key}"
            if key not in children:
                errors.append(f"{src}: analytical.params.{name}: got {short_repr(value)}; expected a parameter of "
                              f"hwmodels.gpu.PARAMS{hint(key, children)}; known here: {', '.join(children)}")
            elif isinstance(value, dict) and name not in known:
                walk(value, f"{name}.")

    if isinstance(params, dict):
        walk(params, "")
    return errors
