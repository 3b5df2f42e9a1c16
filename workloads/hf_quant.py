"""A Hugging Face config.json's ``quantization_config``: the weight format its checkpoint stores.

A quantized checkpoint's weights take fewer bytes than its ``torch_dtype`` says (DeepSeek-V3:
FP8 E4M3 in 128 x 128 blocks, half of bf16). The importer keeps that format on the ModelSpec
(`weights_format`), and build_trace uses it when the caller names no weights format. A method
whose bytes we cannot state is refused with the field, the value and what is supported; it is
never priced as bf16 without a word.

Modelled (the declared format for every weight matrix but the embedding table, which no
method quantizes, and the lm_head, which stays unquantized unless the config says otherwise:
both keep the checkpoint's ``torch_dtype``, see `unquantized_formats`):
- ``quant_method: fp8`` -> ``fp8_<fmt>_b<R>x<C>`` with ``weight_block_size: [R, C]`` (fp32
  scale per block), or per-tensor ``fp8_<fmt>`` without a block size;
- ``gptq`` / ``awq`` with ``bits`` in 2..8 and ``group_size`` > 0 -> ``int<bits>_g<group>``
  (fp16 scale per group), ``_zp`` with a zero point (GPTQ ``sym: false``; AWQ ``zero_point``);
  GPTQ ``sym: true`` and AWQ ``zero_point: false`` -> ``_symz``: symmetric, but their stored qzeros
  counted (bits per group); GPTQ's g_idx (an int32 per input channel) counted in the weights footprint;
- ``compressed-tensors`` with one weight scheme: int groups as above, float8 with a block
  strategy as fp8 above, a per-tensor float8 scale, or NVFP4 (float 4-bit, tensor_group of 16);
- ``mxfp4`` (gpt-oss) -> ``mxfp4`` on the MoE experts only, as transformers converts them; attention,
  router, embedding and lm_head in ``torch_dtype`` (`mxfp4_unconverted`, `mxfp4_experts_only`).
"""

from __future__ import annotations

import re

from workloads.hf_layers import hf_experts
from workloads.io import InputError

__all__ = ["declared_weights", "unquantized_formats", "ignored", "ignore_note", "table_dtype", "mxfp4_unconverted",
           "mxfp4_experts_only",
           "SUPPORTED", "G_IDX_BITS"]

# GPTQ's g_idx: one int32 group index per input channel of every quantized Linear, created and loaded
# whatever desc_act says (vLLM vllm/model_executor/layers/quantization/gptq.py,
# GPTQLinearMethod.create_weights: g_idx of input_size_per_partition int32; AutoGPTQ / GPTQModel
# QuantLinear register it as a buffer of in_features int32). Without desc_act it is i // group_size.
G_IDX_BITS = 32

SUPPORTED = ("fp8 (e4m3/e5m2, weight_block_size or per-tensor), gptq and awq (bits 2..8, group_size > 0), "
             "compressed-tensors (int groups, float8 block or per-tensor, nvfp4), mxfp4 (MoE experts only)")


def _bad(src: str, field: str, value, expected: str):
    raise InputError(f"{src}: quantization_config.{field}: got {value!r}; expected {expected} "
                     f"(modelled: {SUPPORTED})")


def _int_group(src, field_prefix, bits, group, zero_point, stored_zero=False) -> str:
    if isinstance(bits, bool) or not isinstance(bits, int) or not 2 <= bits <= 8:
        _bad(src, f"{field_prefix}bits", bits, "an integer 2..8")
    if isinstance(group, bool) or not isinstance(group, int) or group <= 0:
        _bad(src, f"{field_prefix}group_size", group,
             "a positive group size (per-channel scales, group_size -1, are not modelled)")
    return f"int{bits}_g{group}" + ("_zp" if zero_point else "_symz" if stored_zero else "")


def _fp8(src, fmt, block, field_prefix="") -> str:
    if fmt not in ("e4m3", "e5m2"):
        _bad(src, f"{field_prefix}fmt", fmt, "e4m3 or e5m2")
    if block is None:
        return f"fp8_{fmt}"
    if (not isinstance(block, (list, tuple)) or len(block) != 2
            or any(isinstance(b, bool) or not isinstance(b, int) or b <= 0 for b in block)):
        _bad(src, f"{field_prefix}weight_block_size", block, "[rows, cols] of positive integers")
    return f"fp8_{fmt}_b{block[0]}x{block[1]}"


def _compressed_tensors(qc: dict, src: str) -> str:
    groups = qc.get("config_groups")
    if not isinstance(groups, dict) or not groups:
        _bad(src, "config_groups", groups, "a mapping of at least one quantization scheme")
    schemes = {repr(g.get("weights")) if isinstance(g, dict) else repr(g) for g in groups.values()}
    if len(schemes) != 1:
        _bad(src, "config_groups", sorted(groups), "one weight scheme for every group (mixed schemes are not modelled)")
    name, g = next(iter(groups.items()))
    w = g.get("weights") if isinstance(g, dict) else None
    pre = f"config_groups.{name}.weights."
    if not isinstance(w, dict):
        _bad(src, f"config_groups.{name}.weights", w, "a mapping with num_bits, type and strategy")
    kind, bits, strategy = w.get("type"), w.get("num_bits"), w.get("strategy")
    if kind == "int" and strategy == "group":
        return _int_group(src, pre, bits, w.get("group_size"), w.get("symmetric") is False)
    if kind == "float" and bits == 8 and strategy in ("block", "tensor"):
        return _fp8(src, "e4m3", w.get("block_structure") if strategy == "block" else None, pre)
    if kind == "float" and bits == 4 and strategy == "tensor_group" and w.get("group_size") == 16:
        return "nvfp4"  # llm-compressor's NVFP4 scheme: FP4 E2M1, E4M3 scale per 16, fp32 per tensor
    _bad(src, pre + "strategy", {"type": kind, "num_bits": bits, "strategy": strategy},
         "int with strategy group, float 8-bit with strategy block or tensor, or float 4-bit tensor_group of 16 "
         "(NVFP4)")


def declared_weights(qc, src: str) -> tuple[str, str]:
    """(format name, how it was read) for a config.json's quantization_config."""
    if not isinstance(qc, dict):
        _bad(src, "", qc, "a JSON object")
    method = qc.get("quant_method")
    if method == "fp8":
        name = _fp8(src, qc.get("fmt", "e4m3"), qc.get("weight_block_size"))
    elif method == "gptq":
        # GPTQ stores its int32-packed qzeros (bits per group per output column) even when sym is
        # true (workloads.formats._int_group): symmetric values at the _zp format's bytes (_symz)
        name = _int_group(src, "", qc.get("bits"), qc.get("group_size"), qc.get("sym") is False, True)
    elif method == "awq":
        # AWQ's layout stores qzeros too when zero_point is false (vLLM awq.py, AWQLinearMethod.create_weights
        # allocates qweight, qzeros and scales with no zero_point branch): _symz, as GPTQ sym: true
        name = _int_group(src, "", qc.get("bits"), qc.get("group_size"), qc.get("zero_point", True) is not False,
                          True)
    elif method == "compressed-tensors":
        name = _compressed_tensors(qc, src)
    elif method == "mxfp4":
        # transformers' Mxfp4Config (gpt-oss): FP4 E2M1 blocks of 32 with an E8M0 scale (OCP MX), on the
        # MoE experts only (mxfp4_unconverted)
        name = "mxfp4"
    else:
        _bad(src, "quant_method", method, "one of fp8, gptq, awq, compressed-tensors, mxfp4")
    return name, f"config.json quantization_config: {method}"


_DTYPES = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}


def table_dtype(cfg: dict, src: str, outer: dict | None = None) -> tuple[str, str]:
    """(format, how it was found) of the checkpoint's unquantized tables: ``torch_dtype`` (or ``dtype``) of
    the text config, else of the top level (a multimodal config), else bf16 assumed and said so."""
    for where in (cfg, outer or {}):
        raw = where.get("torch_dtype") or where.get("dtype")
        if raw is not None:
            if raw not in _DTYPES:
                raise InputError(f"{src}: torch_dtype: got {raw!r}; expected one of {', '.join(_DTYPES)} (the dtype "
                                 f"of a quantized checkpoint's unquantized embedding and lm_head)")
            return _DTYPES[raw], "torch_dtype"
    return "bf16", "no torch_dtype: unquantized tables bf16 assumed"


def unquantized_formats(qc: dict, dtype: str, src: str = "config.json",
                        layers: int | None = None) -> tuple[str, str | None]:
    """(embedding format, lm_head format or None when the lm_head is quantized like the rest).
    The embedding is a lookup table, never a quantized Linear; the lm_head is left out by
    AWQ, by transformers' fp8 quantizer (modules_to_not_convert) and by GPTQ unless its
    ``lm_head: true``; compressed-tensors quantizes it unless an ``ignore`` entry matches it
    (`ignored`); MXFP4 never does: transformers converts only the MoE experts (`mxfp4_unconverted`).
    `dtype`: table_dtype's; `layers`: the model's decoder layer count (needed for MXFP4)."""
    method = qc.get("quant_method")
    if method == "mxfp4":
        mxfp4_unconverted(qc, src, layers)  # its modules_to_not_convert checked: none may keep the experts unconverted
    quantized_head = ((method == "gptq" and qc.get("lm_head") is True)
                      or (method == "compressed-tensors" and not ignored(qc, src)[0]))
    return dtype, (None if quantized_head else dtype)


_A_DECODER_LINEAR = "model.layers.0.mlp.down_proj"  # an entry matching this reaches past the lm_head


def _matches(entry: str, name: str, src: str, i: int) -> bool:
    """compressed-tensors' rule (compressed_tensors.utils.match_name; vLLM's
    compressed_tensors/utils.py `_is_equal_or_regex_match`): the exact module name, or
    ``re.match`` (anchored at the start only) of the pattern after ``re:``."""
    if not entry.startswith("re:"):
        return entry == name
    try:
        return re.match(entry[3:], name) is not None
    except re.error as e:
        raise InputError(f"{src}: quantization_config.ignore[{i}]: got {entry!r}; expected a module name or "
                         f"'re:' and a Python regular expression ({e})") from None


def ignored(qc: dict, src: str) -> tuple[list[str], list[str]]:
    """compressed-tensors ``ignore``: (the entries that match the lm_head, the entries that
    name other modules, which cosim prices in the declared format)."""
    entries = qc.get("ignore") or []
    if qc.get("quant_method") != "compressed-tensors":
        return [], []
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        _bad(src, "ignore", entries, "a list of module names or 're:' patterns")
    head = [e for i, e in enumerate(entries) if _matches(e, "lm_head", src, i)]
    other = [e for i, e in enumerate(entries) if e not in head or _matches(e, _A_DECODER_LINEAR, src, i)]
    return head, other


def _modules(cfg: dict) -> list[tuple[str, str]]:
    """(module name, what cosim does with it) for the names an ``ignore`` entry is tested against:
    the decoder Linears cosim prices in the declared format (first and last layer; the attention,
    MLP, MoE expert and shared-expert projections of the HF names vLLM loads, MLA's when the config
    has a latent), the MoE router (priced in the declared format too, Limits), the embedding."""
    last = max(int(cfg.get("num_hidden_layers") or 1) - 1, 0)
    moe = bool(hf_experts(cfg))
    attn = ["q_proj", "o_proj"] + (["q_a_proj", "q_b_proj", "kv_a_proj_with_mqa", "kv_b_proj"]
                                   if cfg.get("kv_lora_rank") else ["k_proj", "v_proj"])
    mlp = ["mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]
    if moe:
        mlp += [f"{p}.{w}" for p in ("mlp.experts.0", "mlp.shared_experts", "mlp.shared_expert")
                for w in ("gate_proj", "up_proj", "down_proj")]
        mlp += [f"block_sparse_moe.experts.0.{w}" for w in ("w1", "w2", "w3")]
    out = [(f"model.layers.{i}.self_attn.{a}", "linear") for i in sorted({0, last}) for a in attn]
    out += [(f"model.layers.{i}.{m}", "linear") for i in sorted({0, last}) for m in mlp]
    if moe:
        out += [(f"model.layers.{last}.{g}", "router") for g in ("mlp.gate", "block_sparse_moe.gate")]
    return out + [("model.embed_tokens", "embedding")]


def ignore_note(qc: dict, src: str, fmt: str, cfg: dict | None = None) -> str:
    """What a compressed-tensors ``ignore`` list left unquantized, for the weights note ('' if nothing).
    An entry beside the lm_head is said by what it reaches among the modelled modules (`_modules` of
    the text config `cfg`): decoder Linears or the MoE router, still priced as `fmt`; the embedding,
    already unquantized; or no modelled module at all (a vision tower, a name of another model)."""
    head, _ = ignored(qc, src)
    parts = [f"ignore leaves the lm_head unquantized ({', '.join(map(repr, head))})"] if head else []
    mods = _modules(cfg or {})
    said = []
    for i, e in enumerate(qc.get("ignore") or []):
        kinds = {k for name, k in mods if _matches(e, name, src, i)}
        if e in head and not kinds - {"embedding"}:
            continue  # an lm_head entry (and the embedding, unquantized anyway): said above
        if "linear" in kinds or "router" in kinds:
            what = " and ".join(w for k, w in (("linear", "decoder Linears"), ("router", "the MoE router")) if k in kinds)
            said.append(f"{e!r} ({what}: not modelled as unquantized, priced as {fmt})")
        elif "embedding" in kinds:
            said.append(f"{e!r} (the embedding: already unquantized)")
        else:
            said.append(f"{e!r} (matches no modelled module)")
    if said:
        parts.append(f"ignore also names {', '.join(said)}")
    return "".join(f"; {p}" for p in parts)


# What transformers' MXFP4 quantizer converts (huggingface/transformers src/transformers/integrations/mxfp4.py,
# _replace_with_mxfp4_linear: only a module of class GptOssExperts becomes Mxfp4GptOssExperts, and
# quantizers/quantizer_mxfp4.py, Mxfp4HfQuantizer.param_needs_quantization: only that module's gate_up_proj /
# down_proj, biases excluded; later versions quantize the expert projections of any MoE the same way and "everything
# else stays dense"): the MoE expert weights, nothing else. The attention projections, the router, the
# embedding and the lm_head (modules_to_not_convert defaults to ["lm_head"] there) stay in torch_dtype whether
# or not a config's modules_to_not_convert names them; an entry there only matters if it reaches the experts.
_MXFP4_EXPERTS = "model.layers.{}.mlp.experts"  # the module path transformers tests an entry against (gpt-oss), per layer


def mxfp4_unconverted(qc: dict, src: str, layers: int) -> set[str]:
    """What an MXFP4 quantization_config keeps in torch_dtype: {"attention", "router", "embedding",
    "lm_head"}, always (transformers converts the MoE experts alone, see above), whatever
    ``modules_to_not_convert`` says. An entry of it that reaches the experts of any of the model's `layers`
    decoder layers or a module above them, by transformers' rule (integrations/mxfp4.py should_convert_module:
    ``re.match(entry + "\\.", name)`` or ``re.match(entry, name)``), is refused by name: those experts would
    stay in torch_dtype while cosim priced them MXFP4 (one format holds every expert weight). Before session 17
    only layer 0's experts were tested, so an entry such as "model.layers.1" (a prefix match: layers 1 and
    10-19) passed."""
    if not isinstance(layers, int) or isinstance(layers, bool) or layers < 1:
        raise ValueError(f"mxfp4_unconverted: layers must be the model's positive layer count, got {layers!r}")
    entries = qc.get("modules_to_not_convert") or []
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        _bad(src, "modules_to_not_convert", entries, "a list of module names")
    # transformers walks the module tree and stops at the first module an entry matches: a layer's experts stay
    # unconverted when an entry matches them or any module above them
    paths = {}  # module path -> the layer whose experts it holds (None: above every layer)
    for i in range(layers):
        parts = _MXFP4_EXPERTS.format(i).split(".")
        for j in range(1, len(parts) + 1):
            paths[".".join(parts[:j])] = i if j > 2 else None
    for e in entries:
        try:
            hit = sorted({i for p, i in paths.items() if re.match(f"{e}\\.", p) or re.match(e, p)},
                         key=lambda i: -1 if i is None else i)
        except re.error as err:
            _bad(src, "modules_to_not_convert", e, f"a module name or pattern transformers can match ({err})")
        if hit:
            reached = ("every layer's" if None in hit or len(hit) == layers else
                       f"layer{'s' if len(hit) > 1 else ''} {_ranges(hit)}'s")
            _bad(src, "modules_to_not_convert", e, f"entries that leave the MoE experts "
                 f"({_MXFP4_EXPERTS.format('<i>')}, i < {layers}) converted: this entry keeps {reached} experts "
                 f"unconverted, in torch_dtype, while cosim prices every expert MXFP4 (transformers' MXFP4 quantizer "
                 f"converts only the experts; give the weights format instead)")
    return {"attention", "router", "embedding", "lm_head"}


def _ranges(ids: list[int]) -> str:
    """Sorted layer indices as ranges: [1, 10, 11, 12] -> "1, 10-12"."""
    out, start = [], None
    for k, i in enumerate(ids):
        if start is None:
            start = i
        if k + 1 == len(ids) or ids[k + 1] != i + 1:
            out.append(f"{start}" if start == i else f"{start}-{i}")
            start = None
    return ", ".join(out)


def mxfp4_experts_only(moe: dict | None, layers: int, src: str) -> None:
    """Refuse an MXFP4 checkpoint whose model has weights transformers leaves dense that the trace would price
    as MXFP4 (one declared format holds every decoder weight but the attention and router, attn_format): no
    MoE experts at all (nothing converted), shared experts, or dense-MLP layers."""
    what = ("no MoE experts (transformers converts only expert weights: nothing would be MXFP4)" if not moe else
            f"{moe['shared_experts']} shared expert(s)" if moe.get("shared_experts") else
            f"{moe['first_dense_layers']} dense-MLP layer(s) (first_k_dense_replace)" if moe.get("first_dense_layers")
            else f"{layers - len(moe['layer_ids'])} dense-MLP layer(s)" if moe.get("layer_ids") is not None
            and len(moe["layer_ids"]) < layers else None)
    if what:
        _bad(src, "quant_method", "mxfp4", f"a model whose MLP weights are all MoE experts: transformers' MXFP4 "
             f"quantizer converts only the experts and keeps every other weight in torch_dtype; this model has "
             f"{what}, which cosim would price as MXFP4 (one format holds every MLP weight)")
