"""Traces for the compression tests.

Uses the lead's `workloads.builder.build_trace` when it is on this branch; otherwise a
small stand-in that follows the trace contract (op names, tensor roles and shapes) so
the recipe tests run on their own. Numbers the tests pin are computed from the ops'
own dims and tensors, so they hold for either builder.
"""

from __future__ import annotations

try:
    from workloads.models import MLASpec, ModelSpec, MoESpec
except ImportError:  # models.py not merged yet: the contract's fields, nothing more
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class MoESpec:
        num_experts: int
        top_k: int
        expert_intermediate: int
        shared_experts: int = 0
        shared_intermediate: int = 0
        first_dense_layers: int = 0

    @dataclass(frozen=True)
    class MLASpec:
        kv_lora_rank: int
        qk_nope_head_dim: int
        qk_rope_head_dim: int
        v_head_dim: int
        q_lora_rank: int | None = None

    @dataclass(frozen=True)
    class ModelSpec:
        name: str
        hidden: int
        layers: int
        heads: int
        kv_heads: int
        intermediate: int
        vocab: int
        head_dim: int = 0
        tie_embeddings: bool = False
        moe: MoESpec | None = None
        mla: MLASpec | None = None

        @property
        def moe_layers(self):
            return self.layers - self.moe.first_dense_layers if self.moe else 0

        @property
        def params(self):
            D, d = self.hidden, self.head_dim
            attn = D * self.heads * d * 2 + 2 * D * self.kv_heads * d
            mlp = 3 * D * self.intermediate * (self.layers - self.moe_layers)
            if self.moe:
                mlp += self.moe_layers * self.moe.num_experts * 3 * D * self.moe.expert_intermediate
            return self.layers * attn + mlp + 2 * self.vocab * D

        def kv_bytes_per_token(self, fmt="bf16"):
            from workloads.formats import get_format
            return 2 * self.layers * self.kv_heads * self.head_dim * get_format(fmt).bits_per_element / 8
from workloads.ops import Op, TensorSpec
from workloads.trace import Trace

LLAMA3_8B = ModelSpec(name="llama3_8b", hidden=4096, layers=32, heads=32, kv_heads=8, head_dim=128,
                      intermediate=14336, vocab=128256)
LLAMA2_7B = ModelSpec(name="llama2_7b", hidden=4096, layers=32, heads=32, kv_heads=32, head_dim=128,
                      intermediate=11008, vocab=32000)
MIXTRAL = ModelSpec(name="mixtral_8x7b", hidden=4096, layers=32, heads=32, kv_heads=8, head_dim=128,
                    intermediate=0, vocab=32000,
                    moe=MoESpec(num_experts=8, top_k=2, expert_intermediate=14336))
# DeepSeek-V2-Lite (HF config.json): 27 layers, hidden 2048, 16 heads, kv_lora_rank 512,
# qk_rope 64, qk_nope 128, v_head 128, 64 routed + 2 shared experts (1408 wide), top-6,
# first layer dense (10944).
DSV2_LITE = ModelSpec(name="deepseek_v2_lite", hidden=2048, layers=27, heads=16, kv_heads=16,
                      head_dim=128, intermediate=10944, vocab=102400,
                      moe=MoESpec(num_experts=64, top_k=6, expert_intermediate=1408, shared_experts=2,
                                  shared_intermediate=2816, first_dense_layers=1),
                      mla=MLASpec(kv_lora_rank=512, qk_nope_head_dim=128, qk_rope_head_dim=64,
                                  v_head_dim=128, q_lora_rank=None))


def trace_for(model: ModelSpec, phase: str = "decode", batch: int = 1, seq: int = 4096,
              weights: str = "bf16", kv: str = "bf16") -> Trace:
    try:
        from workloads.builder import build_trace
    except ImportError:
        return _stand_in(model, phase, batch, seq, weights, kv)
    return build_trace(model, phase=phase, batch=batch, seq=seq, weights=weights, acts="bf16", kv=kv)


def _gemm(name, m, n, k, w, repeat, phase, group, act="bf16"):
    return Op(name, "gemm", {"m": m, "n": n, "k": k},
              (TensorSpec(f"{name}.x", (m, k), act), TensorSpec(f"{name}.weight", (k, n), w, "weight")),
              (TensorSpec(f"{name}.y", (m, n), act),), repeat=repeat, phase=phase, group=group)


def _ew(name, kind, rows, cols, repeat, phase, group, act="bf16"):
    return Op(name, kind, {"rows": rows, "cols": cols}, (TensorSpec(f"{name}.x", (rows, cols), act),),
              (TensorSpec(f"{name}.y", (rows, cols), act),), repeat=repeat, phase=phase, group=group)


def _stand_in(model, phase, batch, seq, w, kv) -> Trace:
    assert model.mla is None, "stand-in builder covers dense and MoE GQA models"
    L, D, H, Hkv, d = model.layers, model.hidden, model.heads, model.kv_heads, model.head_dim
    q_len = seq if phase == "prefill" else 1
    kv_len = seq
    m = batch * q_len
    ops = [_ew("embed", "embedding", m, D, 1, phase, "embed"),
           _ew("attn_norm", "rmsnorm", m, D, L, phase, "attn"),
           _gemm("q_proj", m, H * d, D, w, L, phase, "attn"),
           _gemm("k_proj", m, Hkv * d, D, w, L, phase, "attn"),
           _gemm("v_proj", m, Hkv * d, D, w, L, phase, "attn"),
           _ew("rope", "rope", m, (H + Hkv) * d, L, phase, "attn"),
           Op("kv_write", "copy", {"rows": m, "cols": 2 * Hkv * d},
              (TensorSpec("k_new", (batch, q_len, Hkv, d), "bf16"), TensorSpec("v_new", (batch, q_len, Hkv, d), "bf16")),
              (TensorSpec("k_cache", (batch, q_len, Hkv, d), kv, "kv"), TensorSpec("v_cache", (batch, q_len, Hkv, d), kv, "kv")),
              repeat=L, phase=phase, group="attn"),
           Op("attention", "attention", {"batch": batch, "heads": H, "kv_heads": Hkv, "q_len": q_len,
                                         "kv_len": kv_len, "head_dim": d, "causal": True},
              (TensorSpec("q", (batch, q_len, H, d), "bf16"),
               TensorSpec("k_cache", (batch, kv_len, Hkv, d), kv, "kv"),
               TensorSpec("v_cache", (batch, kv_len, Hkv, d), kv, "kv")),
              (TensorSpec("attn_out", (batch, q_len, H, d), "bf16"),), repeat=L, phase=phase, group="attn"),
           _gemm("o_proj", m, D, H * d, w, L, phase, "attn"),
           _ew("attn_residual", "add", m, D, L, phase, "attn"),
           _ew("mlp_norm", "rmsnorm", m, D, L, phase, "mlp")]
    if model.moe:
        e = model.moe
        ml = model.moe_layers
        ops.append(Op("router", "moe_router", {"tokens": m, "experts": e.num_experts, "hidden": D},
                      (TensorSpec("router.x", (m, D), "bf16"), TensorSpec("router.weight", (D, e.num_experts), w, "weight")),
                      (TensorSpec("router.y", (m, e.num_experts), "fp32"),), repeat=ml, phase=phase, group="moe"))
        touched = min(e.num_experts, m * e.top_k)
        me = max(1, round(m * e.top_k / touched))
        F = e.expert_intermediate
        ops += [_gemm("expert_gate_proj", me, F, D, w, ml * touched, phase, "moe"),
                _gemm("expert_up_proj", me, F, D, w, ml * touched, phase, "moe"),
                _ew("expert_act", "silu_mul", me, F, ml * touched, phase, "moe"),
                _gemm("expert_down_proj", me, D, F, w, ml * touched, phase, "moe")]
    else:
        F = model.intermediate
        ops += [_gemm("gate_proj", m, F, D, w, L, phase, "mlp"), _gemm("up_proj", m, F, D, w, L, phase, "mlp"),
                _ew("act", "silu_mul", m, F, L, phase, "mlp"), _gemm("down_proj", m, D, F, w, L, phase, "mlp")]
    ops += [_ew("mlp_residual", "add", m, D, L, phase, "mlp"), _ew("final_norm", "rmsnorm", batch, D, 1, phase, "head"),
            _gemm("lm_head", batch, model.vocab, D, w, 1, phase, "head")]
    from workloads.formats import get_format
    fp = {"weights": model.params * get_format(w).bits_per_element / 8,
          "kv_cache": batch * seq * model.kv_bytes_per_token(kv),
          "activations": 2.0 * m * max(D, model.intermediate or 0) * 2}
    return Trace(ops=tuple(ops), model=model.name, phase=phase, batch=batch, seq=seq,
                 meta={"footprint": fp, "formats": {"weights": w, "kv": kv}})
