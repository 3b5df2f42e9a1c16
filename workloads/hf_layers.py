"""Per-layer plans of Hugging Face configs whose layers differ: which layers run the experts
and which the dense MLP (Llama-4's interleave_moe_layer_step / moe_layers, Qwen-MoE's
decoder_sparse_step / mlp_only_layers), which attend to a chunk and which apply RoPE
(Llama-4's attention_chunk_size, no_rope_layers, layer_types), and the parameter count of
Llama-4's vision tower (left out of the text model, said in a note).

Each rule is the one of the transformers class named beside it; a config that leaves a
field the count depends on to a class default it cannot be checked against is refused
(workloads.io.require: file, field, value, expected), never priced with a guess.
"""

from __future__ import annotations

from workloads.io import require

__all__ = ["hf_experts", "ignored_moe_keys", "EXPERT_KEY", "qwen_moe_layer_ids", "llama4_plan", "llama4_vision_params"]


# the key each MoE class reads its routed-expert count from (MixtralConfig, GptOssConfig, Llama4TextConfig:
# num_local_experts; Qwen2MoeConfig / Qwen3MoeConfig: num_experts; DeepseekV2/V3Config: n_routed_experts).
# Every other modelled type is dense: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM ... read none of
# these keys, so a stray num_local_experts there changes nothing in transformers (said in a note, not priced)
EXPERT_KEY = {"mixtral": "num_local_experts", "gpt_oss": "num_local_experts", "llama4_text": "num_local_experts",
              "qwen2_moe": "num_experts", "qwen3_moe": "num_experts",
              "deepseek_v2": "n_routed_experts", "deepseek_v3": "n_routed_experts"}
# every key of an MoE layer plan that a dense class ignores (the note names those present)
MOE_KEYS = ("num_local_experts", "num_experts", "n_routed_experts", "num_experts_per_tok", "n_shared_experts",
            "moe_intermediate_size", "shared_expert_intermediate_size", "first_k_dense_replace")


def hf_experts(cfg: dict):
    """The routed-expert count of an HF config under the one key its model_type's class reads
    (EXPERT_KEY); None for a dense type whatever expert keys it carries. The one reading the
    importer's checks, counts and notes share."""
    key = EXPERT_KEY.get(cfg.get("model_type"))
    return cfg.get(key) if key else None


def ignored_moe_keys(cfg: dict) -> list:
    """The expert keys a dense model_type's class never reads (set, not 0 or null): ignored as
    transformers ignores them, and named in an import note."""
    if cfg.get("model_type") in EXPERT_KEY:
        return []
    return [k for k in MOE_KEYS if cfg.get(k)]  # 0 / null: nothing to ignore


def _int_list(v, src: str, fld: str, expected: str) -> list:
    require(isinstance(v, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in v), src, fld, v,
            expected)
    return v


def qwen_moe_layer_ids(cfg: dict, layers: int, src: str, pre: str):
    """Qwen2-MoE / Qwen3-MoE (Qwen2MoeDecoderLayer / Qwen3MoeDecoderLayer): layer i runs the
    experts when i is not in mlp_only_layers and (i + 1) % decoder_sparse_step == 0, else a
    dense MLP intermediate_size wide. None: every layer is MoE (the default plan)."""
    step = cfg.get("decoder_sparse_step") or 1
    only = cfg.get("mlp_only_layers") or []
    _int_list(only, src, pre + "mlp_only_layers", f"a list of layer indices in 0..{layers - 1}")
    require(all(0 <= i < layers for i in only), src, pre + "mlp_only_layers", only,
            f"layer indices in 0..{layers - 1} (num_hidden_layers {layers})")
    if step == 1 and not only:
        return None
    ids = [i for i in range(layers) if i not in only and (i + 1) % step == 0]
    require(bool(ids), src, pre + ("mlp_only_layers" if only else "decoder_sparse_step"), only or step,
            f"a plan leaving at least one MoE layer of the {layers} (otherwise the model is dense: give it as one)")
    return ids


def llama4_plan(cfg: dict, layers: int, src: str, pre: str) -> dict:
    """Llama-4 text model (Llama4TextConfig.__post_init__, Llama4TextDecoderLayer,
    Llama4TextAttention): ModelSpec fields of its layer plan.

    - MoE layers: moe_layers if given, else range(interleave_moe_layer_step - 1, layers, step)
      (Scout: step 1, all 48; Maverick: step 2, layers 1, 3, ... 47); the others run a dense
      MLP intermediate_size_mlp wide; every MoE layer has one shared expert and the routed
      experts, each intermediate_size wide.
    - RoPE: no_rope_layers[i] == 1 applies RoPE (empty or absent: layer i is NoPE when
      (i + 1) % no_rope_layer_interval == 0, interval 4 by default: 36 RoPE + 12 NoPE layers).
    - chunked attention: layer_types if given, else the RoPE layers are "chunked_attention"
      (attention_chunk_size tokens per chunk), the NoPE layers "full_attention".
    - use_qk_norm (default true): a weightless RMS norm of q and k on the RoPE layers;
      attn_temperature_tuning (default true): the NoPE layers' queries scaled per position."""
    out: dict = {}
    require("attention_chunk_size" in cfg, src, pre + "attention_chunk_size", None,
            "present for model_type llama4_text (its class default 8192 is not guessed; null: no chunked attention)")
    require(bool(cfg.get("num_local_experts")), src, pre + "num_local_experts", cfg.get("num_local_experts"),
            "a positive count, present for model_type llama4_text (every Llama-4 layer plan has experts; the class "
            "default 16 is not guessed)")
    require(cfg.get("intermediate_size") is not None, src, pre + "intermediate_size", None,
            "present for model_type llama4_text (the width of each expert and of the shared expert)")
    if cfg.get("moe_layers") is not None:
        ids = _int_list(cfg["moe_layers"], src, pre + "moe_layers", f"a list of layer indices in 0..{layers - 1}")
        require(bool(ids) and all(0 <= i < layers for i in ids) and ids == sorted(set(ids)), src, pre + "moe_layers",
                ids, f"a non-empty increasing list of distinct layer indices in 0..{layers - 1}")
    else:
        step = cfg.get("interleave_moe_layer_step") or 1
        ids = list(range(step - 1, layers, step))
        require(bool(ids), src, pre + "interleave_moe_layer_step", step,
                f"at most num_hidden_layers ({layers}): otherwise no layer is MoE")
    out["moe_layer_ids"] = ids
    if len(ids) < layers:
        require(cfg.get("intermediate_size_mlp") is not None, src, pre + "intermediate_size_mlp", None,
                f"present: {layers - len(ids)} of the {layers} layers run a dense MLP of that width (its class default "
                f"16384 is not guessed)")
        out["intermediate"] = cfg["intermediate_size_mlp"]
    else:
        out["intermediate"] = 0
    notes = []
    rope = cfg.get("no_rope_layers")
    if rope:  # HF: a list at least num_hidden_layers long; 1 = RoPE, 0 = NoPE
        _int_list(rope, src, pre + "no_rope_layers", "a list of 0/1 flags (1: the layer applies RoPE)")
        require(len(rope) >= layers and set(rope) <= {0, 1}, src, pre + "no_rope_layers", rope,
                f"a list of at least {layers} flags, each 0 (NoPE) or 1 (RoPE)")
        rope = rope[:layers]
    else:
        interval = cfg.get("no_rope_layer_interval") or 4
        rope = [int((i + 1) % interval != 0) for i in range(layers)]
        if not cfg.get("no_rope_layer_interval"):  # published configs leave it to the class: said, not silent
            notes.append(f"no_rope_layers / no_rope_layer_interval absent: transformers' default interval 4 -> "
                         f"{sum(rope)} RoPE layers, {layers - sum(rope)} NoPE layers")
    out["rope_layers"] = sum(rope)
    chunk = cfg.get("attention_chunk_size")
    lt = cfg.get("layer_types")
    if lt is not None:
        require(isinstance(lt, list) and len(lt) >= layers
                and all(t in ("chunked_attention", "full_attention") for t in lt[:layers]),
                src, pre + "layer_types", lt, f"a list of {layers} 'chunked_attention' / 'full_attention' entries "
                "(other layer kinds are not modelled for model_type llama4_text)")
        chunked = sum(t == "chunked_attention" for t in lt[:layers])
    else:
        chunked = out["rope_layers"]
    if chunk and chunked:
        out["attention_chunk"] = chunk
        out["chunked_layers"] = chunked
    qk = cfg.get("use_qk_norm", True)
    out["qk_l2norm"] = bool(qk) and out["rope_layers"] > 0
    temp = cfg.get("attn_temperature_tuning", True)  # published configs hold 4 (truthy), the class a bool
    out["attn_temperature"] = bool(temp) and out["rope_layers"] < layers
    if "attn_temperature_tuning" not in cfg and out["attn_temperature"]:
        notes.append("attn_temperature_tuning absent: transformers' default (on) -> a query temperature mul on the "
                     "NoPE layers")
    out["notes"] = notes
    return out


def llama4_vision_params(vc: dict, text_hidden: int, src: str) -> int:
    """Parameters of Llama-4's vision tower and its projector into the text model
    (Llama4VisionModel, Llama4MultiModalProjector): patch embedding C·P²·H (no bias), class
    embedding H, positional embedding ((S/P)² + 1)·H, pre/post LayerNorms 4H, per encoder layer
    q/k/v/o with biases 4(H² + H), fc1/fc2 with biases 2HI + I + H, two LayerNorms 4H; the
    pixel-shuffle adapter I·projector_input_dim + projector_output_dim² (no biases); the
    projector vision_output_dim x text hidden (no bias). Scout / Maverick (H 1408, I 5632,
    34 layers, 336 px, 14 px patches): 871,932,416."""
    keys = ("hidden_size", "intermediate_size", "num_hidden_layers", "patch_size", "image_size",
            "projector_input_dim", "projector_output_dim", "vision_output_dim")
    positive = ("hidden_size", "patch_size", "image_size", "num_channels")  # a tower needs >= 1 of each
    vc = {"num_channels": 3, **vc}  # Llama4VisionConfig's default
    for k in keys + ("num_channels",):
        v, low = vc.get(k), 1 if k in positive else 0
        require(isinstance(v, int) and not isinstance(v, bool) and v >= low, src, "vision_config." + k, v,
                ("a positive" if low else "a non-negative") + " integer (the vision tower's parameter count is "
                "said in the import note)")
    H, inter, n, P, S = (vc[k] for k in keys[:5])
    C = vc["num_channels"]
    patch = C * P * P * H + H + ((S // P) ** 2 + 1) * H + 4 * H
    layer = 4 * (H * H + H) + 2 * H * inter + inter + H + 4 * H
    adapter = inter * vc["projector_input_dim"] + vc["projector_output_dim"] ** 2
    projector = vc["vision_output_dim"] * text_hidden  # Llama4MultiModalProjector.linear_1, bias=False
    return patch + n * layer + adapter + projector
