"""Decoder-only LM forward pass (Llama family, optionally Mixtral-style MoE) on a real
checkpoint, layer by layer over the whole teacher-forced sequence.

Protocol: tokens [0, prefill) are the prompt: their attention reads the freshly
computed K/V, as prefill kernels do, and the cache is filled from them. Tokens
[prefill, N) are decode steps: their attention reads the KV cache as the recipe stores
it (a KV number format, or a cache policy that quantizes, evicts or compresses).
Processing layer by layer is exact for teacher forcing because every cache decision is
causal: step t of layer l depends only on positions <= t of layer l.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cosim.functional.kvstore import kv_quantizer  # the one KV quantizer (the twins use it too)
from cosim.functional.metrics import sqnr_db
from cosim.functional.rope import apply_rope, rope_tables
from cosim.functional.softmax import softmax
from workloads.formats import get_format

from ..checkpoint import Checkpoint
from .attention import (PolicyStats, causal_attention, policy_attention, scaled_decode_attention,
                        streaming_attention, v_tail_delta)
from .numerics import HIGH_PRECISION, KV_FORMAT_COMPOSABLE, CallScaled, Numerics, token_coupled

__all__ = ["DecoderLM", "ForwardResult", "PassState"]

_LAYER_MATS = ("q", "k", "v", "o", "mlp_gate", "mlp_up", "mlp_down")
_MOE_MATS = ("q", "k", "v", "o", "router", "experts_gate", "experts_up", "experts_down")


@dataclass
class ForwardResult:
    logits: np.ndarray  # (len(positions), vocab) float32
    positions: np.ndarray  # the positions whose next-token logits these are
    hidden: list = field(default_factory=list)  # per layer: residual stream at `positions` (collect=True)
    weight_sqnr_db: list = field(default_factory=list)  # per layer: SQNR of its stored weights
    mass_kept: float = float("nan")  # mean exact attention mass on what decode steps read (KV policies)
    tokens_read: float = float("nan")  # mean tokens a decode step's attention reads per KV head
    notes: tuple = ()


@dataclass
class PassState:
    """What one forward pass derives from its own input, held by the pass, never by the model, so no run sees
    another's (DecoderLM.start_pass makes one; forward makes its own unless given one to fill):
    `prefill`: rows [0, prefill) are one prefill call, later rows one decode step each (the activation
    quantizer's call boundaries, Numerics.act); None: the whole input is one call.
    `W` / `source`: the model's stored matrices (and their sources before quantization), with those a
    prompt-calibrated recipe rebuilt in this pass replaced (Palu/MLA K/V, QMoE and merged experts).
    `alive`: layer -> the experts expert pruning left routable. `weight_sqnr_db`: per layer, of `W`."""
    prefill: int | None
    W: dict
    source: dict
    alive: dict = field(default_factory=dict)
    weight_sqnr_db: list = field(default_factory=list)


def rms_norm(x: np.ndarray, w: np.ndarray, eps: float) -> np.ndarray:
    var = np.mean(np.square(x, dtype=np.float32), axis=-1, keepdims=True)
    return (x / np.sqrt(var + np.float32(eps))) * w


def silu(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-x))


class DecoderLM:
    """Weights are stored (quantized) once at construction; `forward` runs a sequence.
    `weight_sqnr=False`: the per-layer SQNR of the stored weights is not computed (its
    list stays empty): a caller that reports no per-layer figures (`cosim run`) skips
    two float64 copies of every matrix, ~0.5 s for SmolLM2-135M."""

    def __init__(self, ck: Checkpoint, numerics: Numerics | None = None, weight_sqnr: bool = True):
        if not ck.config.is_decoder:
            raise ValueError(f"{ck.path}: {ck.config.arch} is an encoder; use EncoderLM")
        self.ck, self.c, self.num = ck, ck.config, numerics or Numerics()
        self.W: dict[str, np.ndarray] = {}
        self.source: dict[str, np.ndarray] = {}  # weights a structural recipe rebuilt, before quantization
        self.weight_sqnr_db: list[float] = []
        self.score_weights = weight_sqnr
        self._sqnr: dict[str, float] = {}  # per stored matrix, cleared when a recipe rebuilds it
        self.calibrated_moe = [r for r in self.num.structure if r.method in ("moe_prune", "qmoe")]
        self.notes = _short_group_notes(self.c, self.num) + self._check_structure()
        self.lowrank = [r for r in self.num.structure if r.method in ("palu", "mla")]
        self.mats = _MOE_MATS if self.c.experts else _LAYER_MATS
        for i in range(self.c.layers):
            raw = {m: ck.tensor(f"layers.{i}.{m}") for m in self.mats}
            rebuilt = self._restructure(raw)
            for m in self.mats:
                name = f"layers.{i}.{m}"
                if m in rebuilt:
                    self.source[name] = rebuilt[m]
                self.W[name] = self._store(rebuilt.get(m, raw[m]), m)
            if weight_sqnr:
                self.weight_sqnr_db.append(self._weight_sqnr(i))
        self.tied = ck.config.tied_embeddings  # one stored tensor serves the embeddings and the head
        head = ck.tensors.get("lm_head", ck.tensor("embed"))
        self.head = self.num.weight(head) if self.num.quantize_head else head
        # the embedding table: quantized with the head when the caller asked for both (--quantize-head, a trace's
        # `weights:` stores both tables in that format), or when the checkpoint ties it to the head (one tensor)
        if self.num.quantize_head and self.tied:
            self.embed = self.head
        elif self.num.quantize_head and self.num.quantize_embed:
            self.embed = self.num.weight(ck.tensor("embed"))
        else:
            self.embed = ck.tensor("embed")
        if self.num.quantize_head:
            wf = self.num.weight_recipe.name if self.num.weight_recipe is not None else self.num.weights
            self.notes += (f"LM head quantized to {wf} (its input in {self.num.acts}); " +
                           ("the checkpoint ties it to the token embeddings (one stored tensor), so the embedding "
                            "lookup reads the same quantized tensor" if self.tied else
                            "token embeddings (a separate tensor) quantized too, as a trace with `weights:` stores "
                            "them" if self.num.quantize_embed else
                            "token embeddings (a separate tensor) kept at baseline precision"),)

    def _check_structure(self) -> tuple:
        from workloads.io import InputError
        from .structural import MOE_METHODS
        notes = []
        for r in self.num.structure:
            if r.method in MOE_METHODS and not self.c.experts:
                raise InputError(f"{self.ck.path}: recipe part {r.name} ({r.method}) compresses routed experts; "
                                 f"this checkpoint ({self.c.arch}) has dense MLPs; use a Mixtral-style MoE checkpoint")
            if r.method == "moe_prune":
                notes.append(f"{r.name}: experts kept per layer by the real router's top-{self.c.experts_per_token} "
                             f"usage on the prompt tokens (the scored tokens are not used to choose them)"
                             + ("; skip_rate (dynamic skipping) not modelled" if r.params.get("skip_rate") else ""))
            if r.method == "resmoe":
                notes.append(f"{r.name}: applied to the checkpoint's own experts of every layer")
            if r.method == "qmoe":
                from cosim.functional.compression.gptq import QMOE_DAMP
                notes.append(f"{r.name}: ternary GPTQ (damping {QMOE_DAMP:g}) of every expert on the prompt tokens the real "
                             f"router sends it; an expert with none is rounded to nearest")
        return tuple(notes)

    def _weight_sqnr(self, i: int, W: dict | None = None) -> float:
        """Mean SQNR of layer i's stored weights (`W`: a pass's, default the model's) against the
        checkpoint's (inf: unchanged); the model's own matrices' figures are kept, so a pass whose
        recipe rebuilds two matrices computes two."""
        W = self.W if W is None else W
        sq = []
        for m in self.mats:
            name = f"layers.{i}.{m}"
            raw, stored = self.ck.tensor(name), W[name]
            if stored is raw:
                continue
            if stored is self.W[name]:
                if name not in self._sqnr:
                    self._sqnr[name] = sqnr_db(raw, stored)
                sq.append(self._sqnr[name])
            else:  # rebuilt in this pass only
                sq.append(sqnr_db(raw, stored))
        return float(np.mean(sq)) if sq else float("inf")

    def _low_rank_layer(self, i: int, calib: np.ndarray, st: PassState) -> tuple:
        """Palu / MLA conversion of layer i's K/V projections, whitened by the layer's real
        inputs on the prompt rows (calibrated as the method would be, scored after it), into
        the pass's matrices `st` (the model's stay as loaded)."""
        from .structural import low_rank_kv
        p, notes = f"layers.{i}.", ()
        for r in self.lowrank:
            wk, wv, n = low_rank_kv(r, st.source.get(p + "k", self.ck.tensor(p + "k")),
                                    st.source.get(p + "v", self.ck.tensor(p + "v")), self.c.kv_heads,
                                    self.c.head_dim, calib)
            st.source[p + "k"], st.source[p + "v"] = wk, wv
            notes += tuple(n)
        st.W[p + "k"], st.W[p + "v"] = self._store(st.source[p + "k"], "k"), self._store(st.source[p + "v"], "v")
        if self.score_weights:
            st.weight_sqnr_db[i] = self._weight_sqnr(i, st.W)
        return notes

    def _restructure(self, raw: dict) -> dict:
        """Weights of one layer rebuilt by the recipe's weight-only structural parts."""
        from .structural import compress_experts
        out = {}
        for r in self.num.structure:
            if r.method == "resmoe":
                stacks = compress_experts(r, raw["router"], out.get("experts_gate", raw["experts_gate"]),
                                          out.get("experts_up", raw["experts_up"]),
                                          out.get("experts_down", raw["experts_down"]), self.c.experts_per_token)
                out["experts_gate"], out["experts_up"], out["experts_down"] = stacks
        return out

    def _store(self, w: np.ndarray, kind: str) -> np.ndarray:
        if kind == "router":
            return w  # routers are tiny and kept in high precision by every MoE quantizer we model
        if w.ndim == 3:
            return np.stack([self.num.weight(e) for e in w])
        return self.num.weight(w)

    # -- pieces -------------------------------------------------------------------------
    def linear(self, x: np.ndarray, name: str, bias: str | None = None, xq: np.ndarray | None = None,
               st: PassState | None = None) -> np.ndarray:
        """`xq`: x already through the activation quantizer (GEMMs sharing an input,
        q/k/v and gate/up, quantize it once: the same numbers, a third of the work). `st`: the
        pass (its matrices and prompt rows); None: the model's matrices, x one call."""
        W, source = (self.W, self.source) if st is None else (st.W, st.source)
        w = W[name]
        if self.num.exact:
            from cosim.functional import matmul
            w_src = source[name] if name in source else self.ck.tensor(name)
            y = matmul(x, w_src.T, self.num.acts, self.num.weights, mode="exact")
        else:
            y = (self.num.act(x, prompt=None if st is None else st.prefill) if xq is None else xq) @ w.T
        if bias is not None and bias in self.ck.tensors:
            y = y + self.ck.tensors[bias]
        return y

    def mlp(self, x: np.ndarray, i: int, st: PassState | None = None) -> np.ndarray:
        """Layer i's MLP; `st`: the pass (its matrices, routable experts and prompt rows), None: the model's."""
        p = f"layers.{i}."
        prefill = None if st is None else st.prefill
        if not self.c.experts:
            xq = None if self.num.exact else self.num.act(x, prompt=prefill)
            a = silu(self.linear(x, p + "mlp_gate", xq=xq, st=st)) * self.linear(x, p + "mlp_up", xq=xq, st=st)
            return self.linear(a, p + "mlp_down", st=st)
        W, alive = (self.W, {}) if st is None else (st.W, st.alive)
        logits = x @ W[p + "router"].T
        if i in alive:  # pruned experts are out of the routing
            logits = np.where(alive[i][None, :], logits, -np.inf)
        experts = {m: W[p + m] for m in ("experts_gate", "experts_up", "experts_down")}
        k = self.c.experts_per_token
        top = np.argsort(-logits, axis=1)[:, :k]
        sel = np.take_along_axis(logits, top, axis=1)
        gate = softmax(sel, axis=1)  # Mixtral: softmax over the chosen experts' logits
        out = np.zeros_like(x)
        xq = self.num.act(x, prompt=prefill)
        for e in range(self.c.experts):
            rows, slot = np.nonzero(top == e)
            if rows.size == 0:
                continue
            xe = xq[rows]
            a = silu(xe @ experts["experts_gate"][e].T) * (xe @ experts["experts_up"][e].T)
            y = self.num.act(a, prompt=None if prefill is None else rows < prefill) @ experts["experts_down"][e].T
            np.add.at(out, rows, y * gate[rows, slot][:, None])
        return out

    def _calibrate_moe(self, i: int, calib: np.ndarray, st: PassState) -> tuple:
        """Expert pruning / QMoE of layer i from its real MLP inputs on the prompt rows;
        the rebuilt experts are re-stored in the weight format, in the pass's matrices `st`."""
        from .structural import calibrate_experts
        p, names, stats = f"layers.{i}.", ("experts_gate", "experts_up", "experts_down"), []
        for r in self.calibrated_moe:
            src = [st.source.get(p + m, self.ck.tensor(p + m)) for m in names]
            alive, *stacks, stat = calibrate_experts(r, self.ck.tensor(p + "router"), *src,
                                                     self.c.experts_per_token, calib)
            if alive is not None:
                st.alive[i] = alive
            for m, w, old in zip(names, stacks, src):
                if w is not old:  # pruning without merge keeps the experts: nothing to re-store
                    st.source[p + m] = w
                    st.W[p + m] = self._store(w, m)
            stats.append(stat)
        if self.score_weights:
            st.weight_sqnr_db[i] = self._weight_sqnr(i, st.W)
        return stats

    def _kv_policy_factory(self):
        if self.num.kv_policy is not None:
            return self.num.kv_policy
        r = self.num.kv_recipe
        if r is None:
            return None
        from cosim.functional.compression.twin import check_head_dim
        check_head_dim(r, self.c.head_dim)
        if r.method == "kvquant":
            # KVQuant quantizes keys before RoPE: the policy un-rotates the real post-RoPE
            # keys with the checkpoint's own theta (rotate-half layout, as here) and re-rotates
            from cosim.functional.compression.kv import KVQuantPolicy
            p = r.params
            theta = self.c.rope_theta if p.get("pre_rope_keys", True) else None
            return lambda: KVQuantPolicy(p["bits"], p["outlier_fraction"], p["first_few_fp16"], rope_theta=theta,
                                         pre_rope=theta is not None)
        if r.method == "head_projection" and r.params.get("rope_reconstruct"):
            # Eigen Attention on a RoPE model: pre-RoPE key latents, rebuilt and rotated each step (as priced)
            from cosim.functional.compression.lowrank import LowRankPolicy
            p, theta = r.params, self.c.rope_theta
            return lambda: LowRankPolicy(p["key_rank_ratio"], p["value_rank_ratio"], rope_theta=theta)
        from cosim.functional.compression.twin import kv_policy
        return lambda: kv_policy(r, None)

    def attention(self, q, k, v, prefill: int, stats: PolicyStats, rope=None) -> np.ndarray:
        """Prompt rows: one prefill kernel, its operands quantized once over the prompt (Q, K
        along head_dim, V along tokens over V[:prefill] -- a short last block when prefill is
        not a multiple of the block -- P along keys). Decode rows: step t quantizes q[t],
        K[:t+1], V[:t+1] and its P row (attention.decode_attention; scaled_decode_attention for
        formats with one scale per call, the same numbers), so no operand blocked
        or scaled along the token axis sees a later token."""
        N = q.shape[0]
        num = self.num
        r = num.kv_recipe
        if r is not None and r.method == "streaming_llm" and num.kv_policy is None:
            return self._streaming(q, k, v, prefill, stats, rope)
        quantized = num.attention_acts and num.acts not in HIGH_PRECISION
        op = num.attn_operand
        quant_p = op if quantized else None
        out = np.empty_like(q)
        if quantized:
            out[:prefill] = causal_attention(op(q[:prefill]), op(k[:prefill]), op(v[:prefill], axis=0),
                                             range(0, prefill), quant_p)
        else:
            out[:prefill] = causal_attention(q, k, v, range(0, prefill))
        if prefill == N:
            return out
        factory = self._kv_policy_factory()
        kc, vc = kv_cache_view(k, v, num.kv, prefill, num.kv_values, num.kv_scale, num.kv_channel_sort)
        if factory is not None:
            # a KV format with a token-selection method stores the kept tokens (Numerics refuses it beside a
            # method with its own storage); selection reads the stored keys, as a kernel over that cache does
            out[prefill:] = policy_attention(q, kc, vc, prefill, factory, stats, k_exact=k)
            return out
        rows = range(prefill, N)
        B = num.token_block if quantized else None
        if B:
            # blocks along head_dim (q, K) lie within one token: one pass is causal; V's blocks along tokens
            # are too, but for the block each decode row is still filling: v_tail_delta re-quantizes it
            vq = op(vc, axis=0)
            out[prefill:] = causal_attention(op(q), op(kc), vq, rows, quant_p,
                                             v_tail=(v_tail_delta(vc, vq, rows, op, B), B))
        elif quantized and token_coupled(num.acts):  # one scale over the call (NVFP4, bare FP8, intN): step by step
            # (decode_attention's numbers; what the steps share is quantized once)
            out[prefill:] = scaled_decode_attention(q, kc, vc, rows, CallScaled(num.acts))
        else:  # an elementwise acts format (bf16, fp16) quantizes each value alone: one pass over all rows is causal
            out[prefill:] = causal_attention(op(q), op(kc), op(vc, axis=0), range(prefill, N), quant_p)
        return out

    def _streaming(self, q, k, v, prefill, stats, rope):
        """StreamingLLM (attention.streaming_attention), the prompt windowed too. `rope` = (k_pre, cos, sin):
        with pos_shift the cache holds pre-RoPE keys, so a KV format stores those (as the priced trace's
        rope_cached_keys re-rotates them each step); without, it stores the post-RoPE keys."""
        num, p = self.num, self.num.kv_recipe.params
        k_pre, cos, sin = rope
        shift = bool(p["pos_shift"])
        k_src = k_pre if shift else k
        kc, vc = kv_cache_view(k_src, v, num.kv, prefill, num.kv_values, num.kv_scale, num.kv_channel_sort)
        if shift and kc is not k_src:  # the stored pre-RoPE keys, rotated at their original positions
            k_read = apply_rope(kc, cos[:kc.shape[0]], sin[:kc.shape[0]])
        else:
            k_read = k if shift else kc
        return streaming_attention(q, k_read, vc, kc if shift else None, cos, sin, p["sink_tokens"],
                                   p["recent_tokens"], shift, prefill, stats, k_exact=k)

    # -- the pass -----------------------------------------------------------------------
    def start_pass(self, prefill: int | None = None) -> PassState:
        """A fresh pass over the model's matrices as loaded (nothing calibrated by an earlier run)."""
        return PassState(prefill, dict(self.W), dict(self.source), {}, list(self.weight_sqnr_db))

    def forward(self, ids: np.ndarray, prefill: int, positions: np.ndarray | None = None,
                collect_hidden: bool = False, state: PassState | None = None,
                embed: np.ndarray | None = None) -> ForwardResult:
        """`state`: a pass of `start_pass(prefill)` to fill (its calibrated matrices and routing stay
        inspectable); by default a fresh one: every call starts from the model as loaded. `embed`: the
        token-embedding table this pass looks the ids up in (cosim.accuracy's --spread passes a perturbed
        copy); by default the model's own, which is never replaced."""
        c = self.c
        ids = np.asarray(ids, dtype=np.int64)
        N = ids.size
        if not 1 <= prefill <= N:
            raise ValueError(f"prefill must be in [1, {N}], got {prefill}")
        if N > c.max_positions:
            raise ValueError(f"{N} tokens exceed the checkpoint's context of {c.max_positions}")
        positions = np.arange(prefill, N - 1) if positions is None else np.asarray(positions)
        cos, sin = rope_tables(N, c.head_dim, c.rope_theta)
        st = self.start_pass(prefill) if state is None else state
        if st.prefill != prefill:
            raise ValueError(f"forward: state is a pass with prefill {st.prefill}; expected one of "
                             f"start_pass({prefill})")
        table = self.embed if embed is None else embed
        if table.shape != self.embed.shape:
            raise ValueError(f"forward: embed: got a table of shape {table.shape}; expected the model's "
                             f"{self.embed.shape}")
        h = table[ids].astype(np.float32)
        stats, hidden, lr_notes, moe_stats = PolicyStats(), [], (), []
        for i in range(c.layers):
            p = f"layers.{i}."
            x = rms_norm(h, self.ck.tensor(p + "attn_norm"), c.norm_eps)
            if self.lowrank:
                notes_i = self._low_rank_layer(i, x[:prefill], st)
                lr_notes = lr_notes or notes_i  # layer 0's notes speak for every layer
            xq = None if self.num.exact else self.num.act(x, prompt=prefill)
            q = self.linear(x, p + "q", p + "q_bias", xq, st).reshape(N, c.heads, c.head_dim)
            k = self.linear(x, p + "k", p + "k_bias", xq, st).reshape(N, c.kv_heads, c.head_dim)
            v = self.linear(x, p + "v", p + "v_bias", xq, st).reshape(N, c.kv_heads, c.head_dim)
            k_pre = k
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
            a = self.attention(q, k, v, prefill, stats, (k_pre, cos, sin)).reshape(N, c.heads * c.head_dim)
            h = h + self.linear(a, p + "o", st=st)
            xm = rms_norm(h, self.ck.tensor(p + "mlp_norm"), c.norm_eps)
            if self.calibrated_moe:
                moe_stats.append(self._calibrate_moe(i, xm[:prefill], st))
            h = h + self.mlp(xm, i, st)
            if collect_hidden:
                hidden.append(h[positions].copy())
        hf = rms_norm(h[positions], self.ck.tensor("final_norm"), c.norm_eps)
        logits = np.empty((positions.size, self.head.shape[0]), dtype=np.float32)
        for b0 in range(0, positions.size, 256):
            xb = hf[b0:b0 + 256]
            xq = self.num.act(xb, prompt=positions[b0:b0 + 256] < prefill) if self.num.quantize_head else xb
            logits[b0:b0 + 256] = xq @ self.head.T
        notes = self.num.notes + self.notes + lr_notes + _moe_notes(moe_stats)
        if self.num.kv_recipe is not None and self.num.attention_acts and self.num.acts != "fp32":
            streaming = self.num.kv_recipe.method == "streaming_llm" and self.num.kv_policy is None
            notes = notes + (("StreamingLLM's windowed attention (prompt and decode rows) runs in float64; acts "
                              "format not applied to Q.K/P.V" if streaming else
                              "decode attention through a KV policy reads its view in float64; acts format not "
                              "applied to Q.K/P.V there"),)
        return ForwardResult(logits, positions, hidden, list(st.weight_sqnr_db),
                             stats.mass_kept if stats.steps else float("nan"),
                             stats.tokens_read if stats.steps else float("nan"), notes)


def _moe_notes(per_layer: list) -> tuple:
    """What calibrated MoE compression did, summed over layers (e.g. QMoE's resulting
    zero fraction, experts left uncalibrated, experts kept)."""
    flat = [st for layer in per_layer for st in layer]
    if not flat:
        return ()
    out = []
    if any("zero_fraction" in st for st in flat):
        z = [st["zero_fraction"] for st in flat if "zero_fraction" in st]
        cold = sum(st["experts_without_calibration"] for st in flat if "zero_fraction" in st)
        out.append(f"qmoe: mean ternary zero fraction {np.mean(z):.3f}; {cold} expert-layer(s) had no prompt "
                   f"token routed to them and were rounded to nearest")
    kept = [st["experts_kept"] for st in flat if "experts_kept" in st]
    if kept:
        out.append(f"expert pruning: {min(kept)}-{max(kept)} experts kept per layer")
    return tuple(out)


def _short_group_notes(c, num) -> tuple:
    """Block and group formats whose block does not divide the axis they block along end
    in a short block (quantize_operand / the functional core treat it as zero-padded, as
    group kernels do): weights and activations along each GEMM's reduction length, a KV
    cache along head_dim. A block longer than the whole axis acts as a block of the axis
    (int4_g128 on head_dim 64 is int4_g64): said so too, never silently. Attention's
    operands under `acts` get their own note (_attention_block_note)."""
    from workloads.formats import get_format
    out = []
    cases = [("weights", num.weights, {c.hidden, c.intermediate, c.heads * c.head_dim}),
             ("acts", num.acts, {c.hidden, c.intermediate, c.heads * c.head_dim})]
    if (num.kv_recipe is None or num.kv_recipe.method in KV_FORMAT_COMPOSABLE) and num.kv_policy is None:
        cases += [("kv", num.kv, {c.head_dim})] + ([("kv values", num.kv_values, {c.head_dim})]
                                                   if num.kv_values != num.kv else [])
    for what, fmt, lengths in cases:
        if fmt in ("fp32", "baseline"):
            continue
        f = get_format(fmt)
        if not f.block_size:
            continue
        word = "group" if f.family == "int_group" else "block"
        axis = "head_dim" if what.startswith("kv") else "reduction length(s)"
        short = sorted(n for n in lengths if n % f.block_size)
        if short:
            longer = [n for n in short if n < f.block_size]
            out.append(f"{what} {fmt}: {axis} {short} are not a multiple of the {word} of {f.block_size}; the last "
                       f"{word} of each row is short (zero-padded)"
                       + (f"; {longer} are shorter than one {word}, so each row there is one zero-padded {word} "
                          f"(the {word} effectively shrinks to the row)" if longer else ""))
    note = _attention_block_note(c.head_dim, num)
    return tuple(out) + ((note,) if note else ())


def _attention_block_note(head_dim: int, num) -> str:
    """What an activation block that does not divide head_dim does in attention (empty when
    it divides it, or attention's operands are not quantized). Q.K^T reduces over head_dim
    within one head: Q and K are blocked along head_dim of each (token, head) row, never
    across heads (the heads are separate dot products), so a longer block is one zero-padded
    block per row -- as a dot-product unit with that K-block pads a shorter reduction -- and
    stores one scale per head_dim elements, not per block. P.V reduces over the keys: P is
    blocked along the keys and V along the tokens, so head_dim does not bound its blocks."""
    from workloads.formats import get_format
    if not num.attention_acts or num.acts in HIGH_PRECISION:
        return ""
    f = get_format(num.acts)
    B = f.block_size
    if not B or head_dim % B == 0:
        return ""
    word = "group" if f.family == "int_group" else "block"
    if head_dim < B:
        clipped = f.with_block_size(head_dim).bits_per_element
        what = (f"head_dim {head_dim} is shorter than one {word} of {B}, so each (token, head) row is one zero-padded "
                f"{word} (the {word} is clipped to head_dim, never spanning heads: one scale per {head_dim} elements, "
                f"{clipped:g} bits/element where the format's {B}-element {word} is {f.bits_per_element:g})")
    else:
        what = (f"head_dim {head_dim} is not a multiple of the {word} of {B}, so the last {word} of each (token, head) "
                f"row is short (zero-padded; {word}s never span heads)")
    return (f"acts {num.acts} in attention: Q.K reduces over head_dim, and Q and K are {word}ed per head along it: "
            f"{what}; P.V reduces over the keys (P {word}ed along the keys, V along the tokens, from key 0), so "
            f"head_dim does not limit its {word}s")


def kv_cache_view(k: np.ndarray, v: np.ndarray, fmt: str, prefill: int, value_fmt: str | None = None,
                  scale: str = "head", channel_sort: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """K/V as a cache stored in number formats `fmt` (keys) and `value_fmt` (values;
    None: `fmt`) holds them. Block formats (MX, NVFP4, BFP, int groups) are blocked along
    head_dim and carry their own scales; a bare narrow float gets fp32 scales of `scale`
    granularity ("head": one per KV head, "tensor": one, "none": an unscaled saturating
    cast; cosim.functional.scaled), calibrated on the prompt's K (or V) and fixed after
    prefill, so later tokens beyond it saturate, as serving engines calibrate FP8 KV
    caches. `channel_sort` (K-sort): the keys are quantized with their head_dim channels
    in ascending prompt-RMS order per KV head, then put back (kv.sorted_quantize)."""
    from cosim.functional.compression.kv import channel_order, sorted_quantize
    out = []
    for x, f in ((k, fmt), (v, value_fmt or fmt)):
        q = kv_quantizer(f, x[:prefill], scale)
        if q is None:
            out.append(x)
        elif channel_sort and x is k:
            out.append(sorted_quantize(x, channel_order(x[:prefill]), q))
        else:
            out.append(q(x))
    return out[0], out[1]
