"""Functional twins of the MoE recipes: relative error of the MoE layer output.

Routing is top-k over softmax router logits, gate weights renormalised over the chosen
experts (Mixtral); experts are SwiGLU (silu(x·Wg) ⊙ (x·Wu))·Wd.
"""

from __future__ import annotations

import numpy as np

from cosim.functional.compression.gptq import gptq
from cosim.functional.compression.metrics import softmax
from cosim.functional.compression.synthetic import MoELayer

__all__ = ["moe_forward", "prune_experts", "resmoe_compress", "qmoe_ternary", "expert_usage"]


def _silu(x):
    return x / (1.0 + np.exp(-x))


def moe_forward(layer: MoELayer, x: np.ndarray, alive: np.ndarray | None = None, top_k: float | None = None) -> np.ndarray:
    """y for tokens x (T, D). `alive` masks pruned experts out of the routing."""
    logits = x.astype(np.float64) @ layer.router
    if alive is not None:
        logits = np.where(alive[None, :], logits, -np.inf)
    k = layer.top_k if top_k is None else int(top_k)
    top = np.argsort(-logits, axis=1)[:, :k]
    gates = softmax(np.take_along_axis(logits, top, axis=1), axis=1)
    y = np.zeros((x.shape[0], layer.down.shape[2]))
    for e in np.unique(top):
        rows, slot = np.nonzero(top == e)
        h = _silu(x[rows] @ layer.gate[e]) * (x[rows] @ layer.up[e])
        y[rows] += gates[rows, slot][:, None] * (h @ layer.down[e])
    return y


def expert_usage(layer: MoELayer, x: np.ndarray) -> np.ndarray:
    logits = x @ layer.router
    top = np.argsort(-logits, axis=1)[:, :layer.top_k]
    return np.bincount(top.ravel(), minlength=layer.num_experts)


def prune_experts(layer: MoELayer, calib: np.ndarray, keep_fraction=0.75, merge=False, **_) -> tuple[MoELayer, np.ndarray]:
    """Keep the most used experts on calibration tokens; with `merge`, each dropped
    expert is averaged (usage-weighted) into the kept expert whose weights are closest."""
    E = layer.num_experts
    keep_n = max(layer.top_k, int(round(E * keep_fraction)))
    usage = expert_usage(layer, calib).astype(float)
    kept = np.sort(np.argsort(-usage, kind="stable")[:keep_n])
    alive = np.zeros(E, bool)
    alive[kept] = True
    if not merge:
        return layer, alive
    gate, up, down = layer.gate.copy(), layer.up.copy(), layer.down.copy()
    weight = usage + 1.0
    acc = {int(e): [weight[e], [gate[e] * weight[e], up[e] * weight[e], down[e] * weight[e]]] for e in kept}
    flat = np.concatenate([layer.gate.reshape(E, -1), layer.up.reshape(E, -1)], axis=1)
    for e in np.nonzero(~alive)[0]:
        tgt = int(kept[np.argmin([np.linalg.norm(flat[e] - flat[j]) for j in kept])])
        acc[tgt][0] += weight[e]
        for i, W in enumerate((gate[e], up[e], down[e])):
            acc[tgt][1][i] = acc[tgt][1][i] + W * weight[e]
    for e, (wsum, parts) in acc.items():
        gate[e], up[e], down[e] = (p / wsum for p in parts)
    return MoELayer(layer.router, gate, up, down, layer.top_k), alive


def resmoe_compress(layer: MoELayer, residual_density=0.25, residual="prune", rank_ratio=0.25, **_) -> MoELayer:
    """W_i ≈ W̄ + C(W_i − W̄): the barycenter is the mean expert (no permutation
    alignment: synthetic experts share their neuron order); C keeps the residual's
    largest-magnitude `residual_density` entries (prune) or its best rank-r
    approximation with r = rank_ratio·k·n/(k+n) (svd)."""
    def comp(W):
        bar = W.mean(axis=0, keepdims=True)
        R = W - bar
        if residual == "svd":
            k, n = W.shape[1:]
            r = max(0, int(round(rank_ratio * k * n / (k + n))))
            out = np.empty_like(W)
            for e in range(W.shape[0]):
                u, sv, vt = np.linalg.svd(R[e], full_matrices=False)
                out[e] = bar[0] + (u[:, :r] * sv[:r]) @ vt[:r]
            return out
        if residual_density <= 0:
            return np.broadcast_to(bar, W.shape).copy()
        flat = np.abs(R).reshape(R.shape[0], -1)
        keep = max(1, int(round(residual_density * flat.shape[1])))
        thr = np.partition(flat, -keep, axis=1)[:, -keep][:, None, None]
        return bar + np.where(np.abs(R) >= thr, R, 0.0)
    return MoELayer(layer.router, comp(layer.gate), comp(layer.up), comp(layer.down), layer.top_k)


def qmoe_ternary(layer: MoELayer, calib: np.ndarray | None = None) -> tuple[MoELayer, dict]:
    """QMoE: every expert's weights ternary ({row min, 0, row max} per output channel)
    by GPTQ on the calibration tokens the router sends to that expert (gate/up on the
    tokens, down on the expert's own hidden activations from its already-quantized
    gate/up, layer-sequential as GPTQ runs). An expert that gets no calibration token is
    rounded to nearest (identity Hessian), as QMoE's code does; the count is returned.
    -> (layer, {"zero_fraction", "experts_without_calibration"})."""
    E = layer.num_experts
    routed = [np.zeros((0, layer.router.shape[0]))] * E
    if calib is not None and len(calib):
        logits = np.asarray(calib, np.float64) @ layer.router
        top = np.argsort(-logits, axis=1)[:, :layer.top_k]
        routed = [np.asarray(calib, np.float64)[np.nonzero((top == e).any(axis=1))[0]] for e in range(E)]
    gate, up, down = np.empty_like(layer.gate), np.empty_like(layer.up), np.empty_like(layer.down)
    for e in range(E):
        xe = routed[e]
        gate[e] = gptq(layer.gate[e].T, xe).T  # MoELayer weights are (in, out); GPTQ takes (out, in)
        up[e] = gptq(layer.up[e].T, xe).T
        hidden = _silu(xe @ gate[e]) * (xe @ up[e])
        down[e] = gptq(layer.down[e].T, hidden).T
    stats = {"zero_fraction": float(np.mean(np.concatenate([gate.ravel(), up.ravel(), down.ravel()]) == 0)),
             "experts_without_calibration": int(sum(len(r) == 0 for r in routed))}
    return MoELayer(layer.router, gate, up, down, layer.top_k), stats


_MOE_LAYOUTS = (  # (router, expert prefix, gate, up, down) in Hugging Face checkpoints
    ("block_sparse_moe.gate.weight", "block_sparse_moe.experts.{e}.", "w1", "w3", "w2"),  # Mixtral
    ("mlp.gate.weight", "mlp.experts.{e}.", "gate_proj", "up_proj", "down_proj"),  # Qwen-MoE, DeepSeek
)


def moe_layer_from_checkpoint(ck, layer: int, top_k: int) -> MoELayer | None:
    """Layer `layer`'s router and experts from a safetensors checkpoint (HF names,
    (out, in) weights), or None when that layer has no routed experts. Only the
    tensors of this layer are read."""
    names = set(ck.names())
    base = f"model.layers.{layer}."
    for router, prefix, g, u, d in _MOE_LAYOUTS:
        if base + router not in names:
            continue
        E = ck.shape(base + router)[0]

        def stack(proj):
            return np.stack([ck.tensor(base + prefix.format(e=e) + proj + ".weight").T
                             for e in range(E)])
        return MoELayer(ck.tensor(base + router).T, stack(g), stack(u), stack(d), top_k)
    return None
