"""The analytical GPU model's parameters: their table (name -> unit kind, meaning) and the
calibrated parameter set. Kept apart from the model code (hwmodels.gpu) so the
calibration reader (hwmodels.gpu_calibration) depends on the data, not on the model."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PARAMS", "EW_KINDS", "EW_ALIAS", "ROW_KINDS", "GpuParams", "BANDWIDTH_PARAMS"]


# name -> (unit kind for hwmodels.units or None for dimensionless, what it means)
PARAMS = {
    "gemm.mma_eff.bf16": (None, "bf16 tensor-core efficiency inside a full tile (fraction of datasheet peak)"),
    "gemm.mma_eff.fp8_e4m3": (None, "fp8 e4m3 tensor-core efficiency inside a full tile (torch._scaled_mm)"),
    "gemm.tile_c": (None, "extra time per MAC of a BM x BN tile = tile_c * (1/BM + 1/BN)"),
    "gemm.bw": ("bandwidth", "achievable HBM bandwidth of GEMM operand streaming"),
    "gemm.floor": ("time", "shortest GEMM kernel (launch, pipeline fill, DRAM latency)"),
    "gemm.overlap_p": (None, "p-norm exponent combining compute and memory time"),
    "attn.eff": (None, "flash prefill tensor-core efficiency (fraction of bf16 peak) per score block"),
    "attn.cta_overhead": ("time", "per-CTA fixed time of flash prefill (Q load, O write, softmax epilogue)"),
    "attn.floor": ("time", "shortest attention kernel"),
    "attn.tail": (None, "fraction of the longest CTA that outlasts the average SM (last-wave tail)"),
    "attn.dec_floor": ("time", "shortest decode-attention kernel"),
    "attn.dec_bw": ("bandwidth", "achievable KV-streaming bandwidth of decode attention"),
    "attn.cta_bw_split": ("bandwidth", "per-CTA KV streaming rate of the split-KV decode kernel"),
    "attn.cta_bw_nosplit": ("bandwidth", "per-CTA KV streaming rate when one CTA streams a whole head"),
    "attn.combine": ("time", "split-KV combine kernel time"),
    "ew.bw": ("bandwidth", "achievable streaming bandwidth of elementwise kernels"),
    "ew.overlap_p": (None, "p-norm exponent combining the floor and the streaming time"),
    "graph.gap": ("time", "GPU time per tiny kernel replayed in a CUDA graph (in-stream floor)"),
    "launch.overlap": ("time", "per-kernel launch latency an isolated, event-timed kernel pays and a "
                               "kernel inside a stream/graph hides behind its predecessor"),
    "eager.cpu_per_kernel": ("time", "host time per kernel launch of eager PyTorch model code"),
    "energy.static": ("power", "board power when idle (static + uncore)"),
    "energy.per_byte": ("energy_per_byte", "energy per HBM byte moved (J/B, whole-chip)"),
    "energy.per_flop.bf16": ("energy_per_flop", "energy per bf16 tensor FLOP (whole-chip)"),
    "energy.per_flop.fp8_e4m3": ("energy_per_flop", "energy per fp8 tensor FLOP (whole-chip)"),
    "energy.per_flop.attention": ("energy_per_flop", "energy per attention FLOP (tensor + softmax)"),
    "energy.per_kv_byte": ("energy_per_byte", "energy per KV-cache byte streamed by decode attention"),
    "energy.power_cap": ("power", "board power limit (NVML)"),
}

# Elementwise kinds with their own fitted floor and traffic multiplier (ew.<kind>.floor,
# ew.<kind>.mult); kinds we could not measure borrow the nearest kernel and say so.
EW_KINDS = ("copy", "add", "rmsnorm", "softmax", "silu_mul", "rope", "embedding")
EW_ALIAS = {"mul": "add", "gelu": "add", "layernorm": "rmsnorm", "quantize": "add", "dequantize": "add",
            "topk": "softmax"}
ROW_KINDS = ("rmsnorm", "softmax")  # one CTA reduces one row: a long row is a long serial chain
for _k in EW_KINDS:
    PARAMS[f"ew.{_k}.floor"] = ("time", f"shortest {_k} kernel(s) (per tensor for rope)")
    PARAMS[f"ew.{_k}.mult"] = (None, f"{_k}: bytes moved / compulsory bytes")
for _k in ROW_KINDS:
    PARAMS[f"ew.{_k}.floor_per_col"] = ("time", f"{_k}: extra floor per element of the reduced row")


@dataclass(frozen=True)
class GpuParams:
    values: dict  # PARAMS name -> SI float
    sm_count: int
    l2_bytes: float
    provenance: str  # "calibrated:<device>, <date>, <software>"
    reference_bandwidth: float | None = None  # datasheet main-memory B/s of the calibrated spec

    def __getitem__(self, key):
        return self.values[key]


# fitted achieved bandwidths; a spec whose datasheet bandwidth differs from the calibrated
# one (a sweep's "what if HBM were 4.8 TB/s?") scales them by the ratio: the achieved
# fraction of the datasheet bandwidth is what the calibration measured
BANDWIDTH_PARAMS = ("gemm.bw", "attn.dec_bw", "attn.cta_bw_split", "attn.cta_bw_nosplit", "ew.bw")
