"""Recipes that change a real checkpoint's structure rather than its number formats:
low-rank K/V projections (Palu, MLA conversion) from SVDs of the checkpoint's own
weights, and MoE expert compression (pruning, ResMoE, QMoE) on its own router and
experts. Each returns new float32 weights in the checkpoint's (out, in) layout plus
notes saying what of the method is and is not modelled.
"""

from __future__ import annotations

import numpy as np

from cosim.functional.compression import moe as moe_twins
from cosim.functional.compression.lowrank import WHITENING_DAMP, grouped_low_rank, truncated_low_rank, whitening
from cosim.functional.compression.synthetic import MoELayer

__all__ = ["LOW_RANK_METHODS", "MOE_METHODS", "low_rank_kv", "whitening", "compress_experts", "calibrate_experts"]

LOW_RANK_METHODS = ("palu", "mla")
MOE_METHODS = ("moe_prune", "resmoe", "qmoe")


def low_rank_kv(recipe, wk: np.ndarray, wv: np.ndarray, kv_heads: int, head_dim: int,
                calib: np.ndarray | None = None):
    """-> (W_k', W_v', notes) for one layer; W (out, in) as stored in the checkpoint;
    `calib` (tokens, hidden): the layer's real K/V-projection inputs for whitening.

    Palu (G-LRD): each group of `head_group_size` KV heads of W_k and W_v is replaced by
    its truncated whitened SVD at rank = ratio x group width; the cache holds x·A and
    K = x·A·B before RoPE, which applying the low-rank W_k here computes.
    MLA conversion (MHA2MLA's SVD_joint initialisation): [W_k; W_v] of all KV heads share
    one latent of `kv_lora_rank`."""
    p = recipe.params
    s = whitening(calib) if calib is not None else None
    how = (f"whitened by the prompt's {len(calib)} real input rows (SVD-LLM whitening, damping {WHITENING_DAMP:g})"
           if s is not None else "plain (no calibration inputs)")
    notes = []
    if recipe.method == "palu":
        from workloads.compression.lowrank import palu_group_size
        g, why = palu_group_size(kv_heads, int(p["head_group_size"]))  # the pricing's rule and note
        if why:
            notes.append(f"palu: {why}")
        notes.append(f"palu: truncated SVD of the checkpoint's W_k/W_v per group of {g} heads, {how}; one rank "
                     f"per group (Palu's Fisher-information rank search and latent quantization not modelled)")
        return (np.ascontiguousarray(grouped_low_rank(wk.T, head_dim, g, float(p["key_rank_ratio"]), s).T),
                np.ascontiguousarray(grouped_low_rank(wv.T, head_dim, g, float(p["value_rank_ratio"]), s).T), notes)
    width = wk.shape[0] + wv.shape[0]
    rank = int(p["kv_lora_rank"])
    if rank >= width:
        notes.append(f"mla: kv_lora_rank {rank} >= K+V width {width} of this model: the conversion is "
                     f"lossless here; pass e.g. mla(kv_lora_rank={width // 4}) to compress")
        return wk, wv, notes
    joint = truncated_low_rank(np.concatenate([wk, wv], axis=0).T, rank, s).T
    notes.append(f"mla: joint rank-{rank} SVD of [W_k; W_v] ({width} rows), {how}; MHA2MLA's SVD_joint "
                 f"initialisation without its fine-tuning; keys keep RoPE on all dimensions (the decoupled "
                 f"rope_dim {p.get('rope_dim')} split, which needs fine-tuning, is not modelled)")
    return (np.ascontiguousarray(joint[:wk.shape[0]]), np.ascontiguousarray(joint[wk.shape[0]:]), notes)


def _layer(router, gate, up, down, top_k) -> MoELayer:
    """Checkpoint stacks (E, out, in) -> the twins' (in, out) layout."""
    return MoELayer(router.T, gate.transpose(0, 2, 1), up.transpose(0, 2, 1), down.transpose(0, 2, 1), top_k)


def _stacks(layer: MoELayer) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return tuple(np.ascontiguousarray(w.transpose(0, 2, 1), dtype=np.float32)
                 for w in (layer.gate, layer.up, layer.down))


def compress_experts(recipe, router, gate, up, down, top_k):
    """ResMoE on one layer's real experts (weights only) -> (gate', up', down') (E, out, in)."""
    layer = _layer(router, gate, up, down, top_k)
    return _stacks(moe_twins.resmoe_compress(layer, **dict(recipe.params)))


def calibrate_experts(recipe, router, gate, up, down, top_k, calib: np.ndarray):
    """MoE parts that need the layer's real inputs, taken on `calib` (the prompt's MLP
    inputs; the scored tokens never choose their own compression) ->
    (alive mask (E,) or None, gate', up', down', stats).
    - expert pruning ("Not All Experts are Equal"): keep the experts the real router uses
      most; merged stacks when the recipe merges;
    - QMoE: ternary GPTQ of every expert on the tokens the real router sends it."""
    layer = _layer(router, gate, up, down, top_k)
    x = np.asarray(calib, np.float64)
    if recipe.method == "qmoe":
        new, stats = moe_twins.qmoe_ternary(layer, x)
        return (None, *_stacks(new), stats)
    new, alive = moe_twins.prune_experts(layer, x, **dict(recipe.params))
    stacks = _stacks(new) if new is not layer else (gate, up, down)
    return (alive, *stacks, {"experts_kept": int(alive.sum())})
