"""Declarative field tables for input files, and one checker that reads them.

A table maps a key to a `Field`: its type (strict: `true` is not an integer, the string
"false" is not a boolean, 1.5 is not a layer count), its range, whether it is required,
and for a mapping the table of its own keys. `check` walks a document against a table,
refuses unknown keys at every depth with a did-you-mean, and collects every problem
(file, dotted field, bad value quoted to a bounded length, what was expected) so a user
fixes a file in one pass, the way hwmodels/spec.py reports hardware files.

Tables here: model YAML (with its moe/mla sections), the Hugging Face config.json fields
the importer reads, and the nested raw sections of hardware files (accelerator, fpga)
that the cycle and FPGA models read. Cross-field rules (heads divide hidden, kv_heads
divide heads, MoE and MLA consistency) are `check_model_fields` below.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from workloads.io import InputError
from workloads.yamlsafe import hint, short_repr

__all__ = ["Field", "check", "validate", "hint", "MODEL_FIELDS", "MOE_FIELDS", "MLA_FIELDS",
           "HF_FIELDS", "ACCELERATOR_FIELDS", "FPGA_FIELDS", "check_model_fields", "NORMS", "MAX_DIM",
           "check_profile"]

MAX_DIM = 10_000_000  # no real model dimension comes near; larger values are typos
MAX_CONTEXT = 1 << 27  # 134M positions: above any published context window
NORMS = ("rmsnorm", "layernorm")


@dataclass(frozen=True)
class Field:
    kind: str  # int | num | bool | str | map | list | any | qty (text with a unit, or a number)
    required: bool = False
    lo: float | None = None  # inclusive bounds for int/num
    hi: float | None = None
    nullable: bool = False
    choices: tuple = ()
    sub: dict | None = None  # table of a "map" field's keys (None: keys not checked)
    expected: str = ""  # overrides the generated description


def _describe(f: Field) -> str:
    if f.expected:
        return f.expected
    base = {"int": "an integer", "num": "a number", "bool": "true or false (a YAML/JSON boolean)",
            "str": "text", "map": "a mapping", "list": "a list", "any": "a value",
            "qty": "a quantity with its unit (e.g. '8 MiB', '100 ns')"}[f.kind]
    if f.choices:
        base = f"one of {', '.join(map(str, f.choices))}"
    if f.lo is not None and f.hi is not None:
        base += f" >= {_num(f.lo)} and at most {_num(f.hi)}"
    elif f.lo is not None:
        base += f" >= {_num(f.lo)}"
    if f.nullable:
        base += " (or null)"
    return base


def _num(x) -> str:
    return f"{int(x):,}" if float(x).is_integer() else f"{x:g}"


def _type_ok(f: Field, v) -> bool:
    if f.kind == "int":
        return isinstance(v, int) and not isinstance(v, bool)
    if f.kind == "num":
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    if f.kind == "bool":
        return isinstance(v, bool)
    if f.kind == "str":
        return isinstance(v, str)
    if f.kind == "map":
        return isinstance(v, dict)
    if f.kind == "list":
        return isinstance(v, list)
    if f.kind == "qty":
        return (isinstance(v, str) and v.strip() != "") or (isinstance(v, (int, float)) and not isinstance(v, bool))
    return True


def check(doc: Any, table: dict, src: str, prefix: str = "", errors: list | None = None) -> list:
    """Every problem of `doc` against `table` as messages (empty: valid). Keys named in
    the table are checked; other keys are refused with a did-you-mean."""
    errors = [] if errors is None else errors

    def err(fld, value, expected):
        where = f"{src}: {prefix}{fld}" if (prefix or fld) else src
        shown = "missing" if value is None else short_repr(value)
        errors.append(f"{where}: got {shown}; expected {expected}")

    if not isinstance(doc, dict):
        err("", doc, "a mapping")
        return errors
    for k in doc:
        if k not in table:
            err(str(k) if isinstance(k, str) else short_repr(k), k,
                f"a known field{hint(k, table)}: {', '.join(table)}")
    for k, f in table.items():
        v = doc.get(k)
        if v is None:
            if f.required or (k in doc and not f.nullable):  # an explicit null is not a default
                err(k, None if k not in doc else "null", _describe(f))
            continue
        if not _type_ok(f, v):
            err(k, v, _describe(f))
            continue
        if f.choices and v not in f.choices:
            err(k, v, _describe(f) + hint(v, f.choices))
        elif f.kind in ("int", "num") and ((f.lo is not None and v < f.lo) or (f.hi is not None and v > f.hi)):
            err(k, v, _describe(f))
        elif f.kind == "map" and f.sub is not None:
            check(v, f.sub, src, f"{prefix}{k}.", errors)
    return errors


def validate(doc: Any, table: dict, src: str, prefix: str = "", error: type = InputError) -> None:
    """Raise one error listing every problem (one line each)."""
    problems = check(doc, table, src, prefix)
    if len(problems) == 1:
        raise error(problems[0])
    if problems:
        raise error(f"{src}: {len(problems)} problems:\n  " + "\n  ".join(problems))


# ---------------------------------------------------------------------------- model files

def _dim(required=False, lo=1, nullable=False, expected=""):
    return Field("int", required=required, lo=lo, hi=MAX_DIM, nullable=nullable, expected=expected)


MOE_FIELDS = {
    "num_experts": _dim(True, lo=1),
    "top_k": _dim(True, lo=1, expected="an integer >= 1 (experts per token), at most num_experts"),
    "expert_intermediate": _dim(True, lo=1, expected="a positive integer (each routed expert's MLP width)"),
    "shared_experts": _dim(lo=0),
    "shared_intermediate": _dim(lo=0),
    "first_dense_layers": _dim(lo=0, expected="an integer >= 0, below the layer count"),
    "shared_expert_gate": Field("bool"),
    "layer_ids": Field("list", nullable=True, expected="a list of the MoE layers' indices (0-based, increasing, "
                                                      "below layers), or null for every layer from first_dense_layers on"),
}
MLA_FIELDS = {
    "kv_lora_rank": _dim(True),
    "qk_nope_head_dim": _dim(True, lo=0),
    "qk_rope_head_dim": _dim(True),
    "v_head_dim": _dim(True),
    "q_lora_rank": _dim(nullable=True),
}
MODEL_FIELDS = {
    "name": Field("str"),
    "hidden": _dim(True),
    "layers": Field("int", required=True, lo=1, hi=100_000),
    "heads": _dim(True),
    "kv_heads": _dim(expected="a positive integer dividing heads (omit for full multi-head attention)"),
    "intermediate": _dim(True, lo=0, expected="an integer >= 0 (0 only for MoE models without dense layers)"),
    "vocab": _dim(True),
    "head_dim": _dim(lo=0, expected="an integer >= 0 (0: hidden / heads)"),
    "tie_embeddings": Field("bool"),
    "gated_mlp": Field("bool"),
    "norm": Field("str", choices=NORMS),
    "qkv_bias": Field("bool"),
    "sliding_window": Field("int", lo=1, hi=MAX_CONTEXT, nullable=True,
                            expected="a positive number of tokens, or null for full attention"),
    "max_context": Field("int", lo=1, hi=MAX_CONTEXT, nullable=True,
                         expected="the longest context the model supports (positions), or null"),
    "moe": Field("map", nullable=True, sub=MOE_FIELDS),
    "mla": Field("map", nullable=True, sub=MLA_FIELDS),
    "source": Field("str"),
}


def check_model_fields(d: dict, src: str) -> list:
    """Cross-field rules of a model (after the table check): each returned message names
    the field, the value and the rule."""
    out = []

    def err(fld, value, expected):
        out.append(f"{src}: {fld}: got {short_repr(value)}; expected {expected}")

    hidden, heads = d["hidden"], d["heads"]
    kv = d.get("kv_heads") or heads
    if heads % kv:
        err("kv_heads", kv, f"a divisor of heads ({heads}): each KV head serves a whole group of query heads")
    mla = d.get("mla")
    if not d.get("head_dim") and not mla and hidden % heads:
        err("heads", heads, f"a divisor of hidden ({hidden}), or an explicit head_dim "
                            f"(hidden / heads = {hidden / heads:.4g} is not a whole head width)")
    moe = d.get("moe")
    if moe:
        if moe["top_k"] > moe["num_experts"]:
            err("moe.top_k", moe["top_k"], f"at most num_experts ({moe['num_experts']})")
        fd = moe.get("first_dense_layers") or 0
        if fd >= d["layers"]:
            err("moe.first_dense_layers", fd, f"fewer than layers ({d['layers']}): otherwise no layer is MoE")
        if fd and not d["intermediate"]:
            err("intermediate", d["intermediate"], f"the dense MLP width of the first {fd} dense layer(s) "
                                                   f"(a positive integer)")
        if bool(moe.get("shared_experts")) != bool(moe.get("shared_intermediate")):
            err("moe.shared_intermediate", moe.get("shared_intermediate"),
                "a positive width exactly when shared_experts > 0 (and 0 when there are none)")
        if moe.get("shared_expert_gate") and not moe.get("shared_intermediate"):
            err("moe.shared_expert_gate", True, "false when there is no shared expert to gate")
        ids = moe.get("layer_ids")
        if ids is not None:
            ok = all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < d["layers"] for i in ids)
            if not ids or not ok or list(ids) != sorted(set(ids)):
                err("moe.layer_ids", ids, f"a non-empty increasing list of distinct layer indices in 0..{d['layers'] - 1}")
            elif fd:
                err("moe.first_dense_layers", fd, "0 (or absent) with moe.layer_ids, which names every MoE layer")
            elif len(ids) < d["layers"] and not d["intermediate"]:
                err("intermediate", d["intermediate"], f"the dense MLP width of the {d['layers'] - len(ids)} layer(s) "
                                                       f"moe.layer_ids leaves dense (a positive integer)")
    elif not d["intermediate"]:
        err("intermediate", d["intermediate"], "a positive MLP width (0 would drop the MLP of a dense model)")
    if d.get("sliding_window") and d.get("max_context") and d["sliding_window"] > d["max_context"]:
        err("sliding_window", d["sliding_window"], f"at most max_context ({d['max_context']})")
    return out


# ---------------------------------------------------------------------------- Hugging Face config.json
# The fields the importer reads, with their types; every other key of a config.json is
# ignored (HF configs carry dozens of training-only keys), but a read key of the wrong
# type is an error, never coerced ("false" is not true, 0 KV heads is not "all heads").
_TINY = math.ulp(0.0)  # an inclusive lower bound meaning "> 0" (0 caps / scalings divide by zero in HF)


def _positive(what: str) -> Field:
    return Field("num", lo=_TINY, nullable=True, expected=f"a positive number ({what}), or null for none")


HF_FIELDS = {
    "hidden_size": _dim(True), "num_hidden_layers": Field("int", required=True, lo=1, hi=100_000),
    "num_attention_heads": _dim(True), "vocab_size": _dim(True),
    "num_key_value_heads": _dim(nullable=True), "intermediate_size": _dim(lo=0, nullable=True),
    "head_dim": _dim(nullable=True), "max_position_embeddings": Field("int", lo=1, hi=MAX_CONTEXT, nullable=True),
    "tie_word_embeddings": Field("bool", nullable=True), "attention_bias": Field("bool", nullable=True),
    "use_sliding_window": Field("bool", nullable=True),
    "sliding_window": Field("int", lo=1, hi=MAX_CONTEXT, nullable=True),
    "num_local_experts": _dim(lo=0, nullable=True), "num_experts": _dim(lo=0, nullable=True),
    "n_routed_experts": _dim(lo=0, nullable=True), "n_shared_experts": _dim(lo=0, nullable=True),
    "num_experts_per_tok": _dim(nullable=True), "moe_intermediate_size": _dim(nullable=True),
    "shared_expert_intermediate_size": _dim(lo=0, nullable=True), "first_k_dense_replace": _dim(lo=0, nullable=True),
    "kv_lora_rank": _dim(nullable=True), "q_lora_rank": _dim(nullable=True),
    "qk_nope_head_dim": _dim(lo=0, nullable=True), "qk_rope_head_dim": _dim(nullable=True),
    "v_head_dim": _dim(nullable=True), "model_type": Field("str", nullable=True),
    "_name_or_path": Field("str", nullable=True), "text_config": Field("map", nullable=True),
    "sliding_window_pattern": _dim(nullable=True), "_sliding_window_pattern": _dim(nullable=True),
    # Llama-4 (llama4_text) and Qwen-MoE layer plans
    "attention_chunk_size": Field("int", lo=1, hi=MAX_CONTEXT, nullable=True),
    "intermediate_size_mlp": _dim(nullable=True), "interleave_moe_layer_step": _dim(nullable=True),
    "moe_layers": Field("list", nullable=True), "no_rope_layers": Field("list", nullable=True),
    "no_rope_layer_interval": _dim(nullable=True), "use_qk_norm": Field("bool", nullable=True),
    "decoder_sparse_step": _dim(nullable=True), "mlp_only_layers": Field("list", nullable=True),
    # read by the importer's per-type rules (workloads.models): typed here so a wrong type is one named
    # error, never a traceback from float() / int() or a string taken as true
    "hidden_act": Field("str", nullable=True, expected="an activation name (text), e.g. silu"),
    "hidden_activation": Field("str", nullable=True, expected="an activation name (text), e.g. gelu_pytorch_tanh"),
    "mlp_bias": Field("bool", nullable=True), "use_bidirectional_attention": Field("bool", nullable=True),
    "attn_logit_softcapping": _positive("the tanh cap of the attention scores"),
    "final_logit_softcapping": _positive("the tanh cap of the final logits"),
    "max_window_layers": _dim(lo=0, nullable=True, expected="an integer >= 0 (layers from this index on slide), "
                                                            "or null"),
    "num_nextn_predict_layers": _dim(lo=0, nullable=True, expected="an integer >= 0 (multi-token-prediction "
                                                                   "modules), or null"),
    "layer_types": Field("list", nullable=True), "topk_method": Field("str", nullable=True),
    "rope_scaling": Field("map", nullable=True, expected="a mapping with rope_type (or type) and its factor, or null"),
    # Granite's scalings: GraniteConfig multiplies by them, so null is not 1.0
    **{k: Field("num", lo=_TINY, expected="a positive number (GraniteConfig scales by it)")
       for k in ("embedding_multiplier", "residual_multiplier", "logits_scaling")},
}


def check_hf_fields(cfg: dict, src: str, prefix: str = "") -> list:
    """Type/range problems of the config.json keys the importer reads (others ignored);
    `prefix` ("text_config.") names where a multimodal file nests them."""
    present = {k: v for k, v in cfg.items() if k in HF_FIELDS}
    table = {k: f for k, f in HF_FIELDS.items()}
    return check(present, table, src, prefix)


# ---------------------------------------------------------------------------- hardware raw sections

_ANY = Field("any")
_FORMAT_MAP = Field("map", sub=None, expected="a mapping of format name -> value")
_COUNT = Field("int", lo=1, hi=MAX_DIM)  # a count of PEs / arrays / lanes (12.5, 0 and -4 are typos)
# the values, not only the keys, are checked at load (hwmodels.spec), before any level prices the spec:
# the dataflow's choices and the formats' registry are checked there too (hwmodels.accel.parse_accelerator)
ACCELERATOR_FIELDS = {
    "arrays": _COUNT, "rows": _COUNT, "cols": _COUNT, "dataflow": Field("str"), "dram_latency": Field("qty"),
    "fold_overlap": Field("bool"), "stream_tiling": Field("bool"),
    "pe": Field("map", sub={"formats": Field("list"), "lanes": _COUNT, "pack_narrow": Field("bool"),
                            "rates": _FORMAT_MAP}),
    "vector": Field("map", sub={"lanes": _COUNT, "flops_per_lane": Field("num", lo=0)}),
    "sram": Field("map", sub={"ifmap": Field("qty"), "filter": Field("qty"), "ofmap": Field("qty")}),
    "technology": Field("map", sub={"node_nm": Field("num", lo=1, hi=1000), "vdd": Field("num", lo=0.1, hi=5)}),
}
FPGA_FIELDS = {
    "resources": Field("map", sub={k: _ANY for k in ("dsp", "dsp_type", "lut", "ff", "bram36", "uram")}),
    "budget": Field("map", sub={k: _ANY for k in ("dsp", "lut", "memory")}),
    "engine": _ANY, "dataflow": _ANY, "dram_latency": _ANY, "device": _ANY,
    "fold_overlap": Field("bool"),
    "pe": Field("map", sub={"formats": _ANY}),
    "array": Field("map", sub={"rows": _ANY, "cols": _ANY, "arrays": _ANY}),
    "vector": Field("map", sub={"lanes": _COUNT}),
    "technology": Field("map", sub={"node_nm": Field("num", lo=1, hi=1000)}),
    "aie": Field("map", sub={"tiles": _COUNT, "macs_per_tile": _FORMAT_MAP, "data_memory": Field("qty"),
                             "vector_lanes": _COUNT}),
}


# ---------------------------------------------------------------------------- implementation profiles

def check_profile(value, src: str, fld: str = "profile") -> list:
    """Problems of an implementation-profile field (experiments, sweep axes): null (the plain
    trace, no profile) or a name of workloads.profiles.PROFILES, optionally "+<backend>"
    (e.g. "engine+fa2"). One message naming the file, the field, the value and the choices."""
    from workloads.profiles import ATTENTION, PROFILES

    if value is None:
        return []
    expected = (f"one of {', '.join(PROFILES)}, optionally +<attention backend> "
                f"({', '.join(ATTENTION)}), e.g. engine+fa2; or null for no profile")
    if not isinstance(value, str) or not value:
        return [f"{src}: {fld}: got {short_repr(value)}; expected {expected}"]
    name, plus, att = value.partition("+")
    if name not in PROFILES:
        return [f"{src}: {fld}: got {short_repr(value)}; expected {expected}{hint(name, PROFILES)}"]
    if plus and att not in ATTENTION:
        return [f"{src}: {fld}: got {short_repr(value)}; expected the attention backend after '+' to be one of "
                f"{', '.join(ATTENTION)}{hint(att, ATTENTION)}"]
    return []
