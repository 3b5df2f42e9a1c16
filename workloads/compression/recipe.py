"""Compression recipes: a named method with its parameters, and how to load and compose them.

A recipe file (cosim/configs/recipes/<name>.yaml) says which method, with which parameters
(paper/code defaults), and where they come from:

    name: kivi2
    method: kivi
    citation: "Liu et al., KIVI, ICML 2024, arXiv:2402.02750; jy-yuan/KIVI@876b4d2"
    parameters: {k_bits: 2, v_bits: 2, group_size: 32, residual_length: 128}

Every method registers a parameter schema (`Param`: default, type, check, what it
must be); loading fills defaults and validates each value, and errors name the recipe
file, the field and the bad value. Checks that need the model (a group size dividing
the head dimension) run in `apply` and name the same file and field.

`load_recipe("mxfp4_weights+kivi2+h2o")` composes recipes left to right.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping

from workloads.io import InputError, bundled_names, doc_kind, load_yaml_file, resolve_bundled
from workloads.io import require as _require
# the method registry lives in its own module: method modules register into it without
# importing this loader (which imports them), so there is no import cycle
from workloads.compression.registry import (METHODS, Method, Param, RecipeError, bits, fraction,  # noqa: F401
                                            non_negative, open_fraction, positive, reads_prompt_budget,
                                            register_method)

__all__ = ["Recipe", "RecipeError", "Param", "Method", "register_method", "load_recipe",
           "list_recipes", "list_methods", "apply_recipe", "recipe_from_dict", "recipe_part_names",
           "prompt_only_parts", "prompt_only_note", "prompt_budget_note"]


def require(ok, source, field, value, expected):
    _require(ok, source, field, value, expected, error=RecipeError)


MAX_PARAM = 1 << 40  # bound on any numeric recipe parameter (tokens, bits, ranks ...)


def _ensure_methods_loaded() -> None:
    # The method modules register themselves (into workloads.compression.registry) on import.
    from workloads.compression import eviction, kv_quant, lowrank, moe, propagation, weights  # noqa: F401


def list_methods() -> list[str]:
    _ensure_methods_loaded()
    return sorted(METHODS)


@dataclass(frozen=True)
class Recipe:
    name: str
    method: str  # a registered method, or "compose" when `parts` is set
    params: Mapping[str, Any] = field(default_factory=dict)
    citation: str = ""
    source: str = ""  # the recipe file (for error messages)
    parts: tuple["Recipe", ...] = ()
    # the methods of the composite this part is applied in (set by the composite's apply): a part whose rule depends
    # on its company reads them (H2O keeps the context rule beside a part compressing the prompt alone)
    beside: tuple[str, ...] = ()

    def fail(self, fld: str, value: Any, expected: str) -> None:
        """Raise a RecipeError naming this recipe's file and `fld`."""
        raise RecipeError(f"{self.source or self.name}: {fld}: got {value!r}; expected {expected}")

    def require(self, ok: bool, fld: str, value: Any, expected: str) -> None:
        if not ok:
            self.fail(fld, value, expected)

    def apply(self, trace, model):
        """Rewrite `trace` (built for `model`) the way this compression changes the work."""
        if self.parts:
            methods = tuple(p.method for p in self.parts)
            for part in self.parts:
                trace = replace(part, beside=methods).apply(trace, model)
            return trace
        _ensure_methods_loaded()
        from workloads.compression.common import (fuse_unfused_attention, mixed_kv_layers, record_effects,
                                                  snapshot, unfuse_attention)
        before = snapshot(trace)
        if METHODS[self.method].stores_kv:
            _refuse_second_storage(trace, self)
        work, unfused = fuse_unfused_attention(trace)
        out = METHODS[self.method].apply(work, model, self)
        if out.meta.get("kv_state") != trace.meta.get("kv_state"):  # the method resized the KV cache
            refusal = mixed_kv_layers(model)
            if refusal:
                raise RecipeError(f"recipe {self.name!r} ({self.source or 'method ' + self.method}) on model "
                                  f"{getattr(model, 'name', model)!r}: {refusal}")
        if unfused:
            out = unfuse_attention(out)
        return record_effects(out, self, before)


def _refuse_second_storage(trace, recipe) -> None:
    """One clear refusal where an earlier part already stores the KV cache in its own representation (the
    real-checkpoint accuracy path refuses the pair too), before the method's own checks read that part's codes as K
    and V (kivi2+fp8_kv priced 4.30 GB of KV, above bf16's 2.15 GB; kivi2+kivi4 was refused for a head dimension
    of 8)."""
    prior = [name for name, e in (trace.meta.get("recipe_effects") or {}).items()
             if isinstance(e, dict) and getattr(METHODS.get(e.get("method")), "stores_kv", False)]
    recipe.require(not prior, "method", recipe.method,
                   f"no second KV storage: part {', '.join(prior)} already stores the KV cache in its own "
                   f"representation, and {recipe.name} would re-lay its codes and scales as K and V; give one of "
                   f"them (a KV number format composes with the token-selection methods: StreamingLLM, H2O, SnapKV, "
                   f"RocketKV)")


def list_recipes() -> list[str]:
    return bundled_names("recipes")


def load_recipe(spec: "str | Path | Recipe") -> Recipe:
    """A bundled name (``kivi2``), a path to a recipe YAML, or names joined by ``+``
    (composed left to right). Any part may override parameters inline:
    ``kivi2(group_size=64,residual_length=64)+h2o(budget=512)`` (what a sweep varies)."""
    if isinstance(spec, Recipe):
        return spec
    text = str(spec).strip()
    if not text:
        raise RecipeError("recipe: got ''; expected a bundled recipe name, a path, or names joined by '+'")
    from workloads.io import check_name
    check_name(text, "recipe")
    if Path(text).exists() and text not in bundled_names("recipes"):  # a bare bundled name is bundled
        return _load_one(text)
    pieces = _split_top(text, "+")
    if any(not p.strip() for p in pieces):
        raise RecipeError(f"recipe {text!r}: an empty name in the composition; expected names joined by '+'")
    if len(pieces) > 1:
        parts = tuple(_load_part(p.strip()) for p in pieces)
        return Recipe(name="+".join(p.name for p in parts), method="compose", parts=parts,
                      source=text)
    return _load_part(text)


def recipe_part_names(text: str) -> list[str]:
    """The recipe names a recipe spec is made of, overrides dropped: ``kivi2(group_size=64)+h2o`` ->
    ``['kivi2', 'h2o']`` (split as `load_recipe` splits it)."""
    return [p.split("(", 1)[0].strip() for p in _split_top(str(text), "+")]


def prompt_only_parts(spec) -> list[str]:
    """Names of the recipe's parts that compress the prompt alone (SnapKV, FastKV: Method.prompt_only): a decode
    step's price and cache then depend on how many of its context tokens were the prompt (build_trace's
    prompt_len), which a caller that knows it (generate, serve) passes. [] for no recipe or none such."""
    if not spec:
        return []
    r = load_recipe(spec)
    return [p.name for p in (r.parts or (r,)) if getattr(METHODS.get(p.method), "prompt_only", False)]


def prompt_only_note(spec, where: str) -> str | None:
    """Never silent: the rule a caller that knows each request's prompt applies to a prompt-only recipe (`where`
    names what it prices), None when the recipe has no such part."""
    names = prompt_only_parts(spec)
    if not names:
        return None
    return (f"recipe {', '.join(names)}: compresses the prompt alone (its reference code appends generated tokens "
            f"whole, leaving them to any later part of the recipe): {where} read each request's prompt length, not "
            f"its context alone")


def prompt_budget_note(spec, where: str) -> str | None:
    """Never silent: a caller reading each decode step's context as its prompt (serving) prices a part that sets its
    budget from the prompt (H2O: Method.budget_from_prompt) with a budget that grows with the generated tokens; None
    where no such part is priced so (after a part compressing the prompt alone the context is that part's rule)."""
    if not spec:
        return None
    r = load_recipe(spec)
    parts = r.parts or (r,)
    names = [p.name for p in parts if reads_prompt_budget(p.method, tuple(q.method for q in parts))]
    if not names:
        return None
    return (f"recipe {', '.join(names)}: its reference sets its budget once from the prompt; {where} read each "
            f"decode step's context as its prompt, so its budget grows by its share of the generated tokens (cosim "
            f"generate and --prompt-len read the prompt)")


def _split_top(text: str, sep: str) -> list[str]:
    """Split on `sep` outside parentheses."""
    out, depth, cur = [], 0, ""
    for ch in text:
        depth += (ch == "(") - (ch == ")")
        if ch == sep and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return out


def _load_part(text: str) -> Recipe:
    if not text.endswith(")") or "(" not in text:
        return _load_one(text)
    import yaml
    base_name, args = text[:-1].split("(", 1)
    base = _load_one(base_name.strip())
    overrides = {}
    for item in filter(None, (a.strip() for a in _split_top(args, ","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise RecipeError(f"recipe {text!r}: override {item!r}: expected key=value")
        try:
            overrides[key.strip()] = yaml.safe_load(value.strip())
        except yaml.YAMLError:
            raise RecipeError(f"recipe {text!r}: override {item!r}: value is not a plain scalar") from None
    data = {"name": text.replace(" ", ""), "method": base.method, "citation": base.citation,
            "parameters": {**base.params, **overrides}}
    return recipe_from_dict(data, f"{base.source} (overridden by {text!r})")


def _load_one(text: str) -> Recipe:
    path = Path(text)
    if path.suffix.lower() in (".yaml", ".yml") or (path.exists() and text not in bundled_names("recipes")):
        path = path if path.exists() else resolve_bundled("recipes", path, "recipe", RecipeError)
        return _from_file(path)
    return _from_file(resolve_bundled("recipes", text, "recipe", RecipeError))


_LOADED: dict = {}  # (file, mtime, size) -> Recipe: a serving run builds thousands of traces of one recipe


def _from_file(path: Path) -> Recipe:
    """The recipe in `path`, parsed once while the file is unchanged (a Recipe is immutable: parts and beside are
    set by copies, dataclasses.replace)."""
    try:
        st = path.stat()
    except OSError:  # load_yaml_file says what is missing, naming the file
        return recipe_from_dict(load_yaml_file(path, what="recipe"), str(path))
    key = (str(path), st.st_mtime_ns, st.st_size)
    hit = _LOADED.get(key)
    if hit is None:
        hit = _LOADED[key] = recipe_from_dict(load_yaml_file(path, what="recipe"), str(path))
    return hit


def recipe_from_dict(data: Any, source: str = "<recipe>") -> Recipe:
    """Validate a recipe mapping (from YAML) and fill in the method's defaults."""
    _ensure_methods_loaded()
    require(isinstance(data, dict), source, "", doc_kind(data), "a mapping with name, method, parameters, citation")
    allowed = {"name", "method", "parameters", "citation", "description"}
    for key in data:
        if key not in allowed:  # the hint only for a bad key: a serving run loads a recipe per trace
            close = difflib.get_close_matches(str(key), sorted(allowed), n=1, cutoff=0.6)
            require(False, source, str(key), key, f"one of {sorted(allowed)}"
                    + (f" (did you mean {close[0]!r}?)" if close else ""))
    name = data.get("name", Path(source).stem)
    require(isinstance(name, str) and name and "+" not in name, source, "name", name,
            "a non-empty name without '+'")
    method = data.get("method")
    if not isinstance(method, str) or method not in METHODS:
        close = difflib.get_close_matches(str(method), list(METHODS), n=3, cutoff=0.4)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        require(False, source, "method", method, f"one of {sorted(METHODS)}{hint}")
    citation = data.get("citation", "")
    require(isinstance(citation, str) and citation.strip(), source, "citation", citation,
            "a non-empty string naming the paper (and code) the defaults come from")
    given = data.get("parameters")
    given = {} if given is None else given  # an explicit 0, '' or [] is a mistake, not "no parameters"
    require(isinstance(given, dict), source, "parameters", given, "a mapping of parameter -> value")
    schema = METHODS[method].params
    params: dict[str, Any] = {}
    for key in given:
        require(key in schema, source, f"parameters.{key}", key,
                f"a parameter of method {method!r}: {sorted(schema)}")
    for key, spec in schema.items():
        value = given.get(key, spec.default)
        params[key] = _check_param(value, spec, source, f"parameters.{key}")
    recipe = Recipe(name=name, method=method, params=params, citation=citation.strip(), source=source)
    if METHODS[method].validate is not None:
        METHODS[method].validate(recipe)
    return recipe


def _check_param(value, spec: Param, source: str, fld: str):
    kinds = spec.kind if isinstance(spec.kind, tuple) else (spec.kind,)
    if value is None and type(None) in kinds:
        return None
    if float in kinds and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    ok_type = any(isinstance(value, k) and not (k in (int, float) and isinstance(value, bool))
                  for k in kinds if k is not type(None))
    words = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
    names = " or ".join(words.get(k, k.__name__) for k in kinds if k is not type(None))
    require(ok_type, source, fld, value, names + (f" ({spec.expected})" if spec.expected else ""))
    if isinstance(value, (int, float)) and not isinstance(value, bool):  # 10**20 tokens is a typo, not a setting
        require(abs(value) <= MAX_PARAM, source, fld, value, f"at most {MAX_PARAM:,} in magnitude")
    if spec.choices:
        require(value in spec.choices, source, fld, value, f"one of {list(spec.choices)}")
    if spec.check is not None:
        require(bool(spec.check(value)), source, fld, value, spec.expected or "a valid value")
    return value


def apply_recipe(trace, spec, model):
    """What `build_trace(recipe=...)` calls: load `spec` (name, path, 'a+b', Recipe,
    or None/'' for no recipe) and apply it to `trace`."""
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        return trace
    recipe = load_recipe(spec)
    out = recipe.apply(trace, model)
    prior = trace.recipe
    name = recipe.name if not prior else f"{prior}+{recipe.name}"
    return out.replace_ops(out.ops, recipe=name)
