"""The registry of compression methods: `register_method` records a method's trace
rewrite and parameter schema under its name. Method modules (kv_quant, eviction, lowrank,
moe, propagation, weights) import only this module; the recipe loader (recipe.py) imports
them, so the dependency runs one way."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from workloads.io import InputError

__all__ = ["Param", "Method", "METHODS", "register_method", "positive", "non_negative", "fraction",
           "open_fraction", "bits", "registered_format", "RecipeError"]


class RecipeError(InputError):
    """A bad recipe: unknown name, unknown method, or a parameter out of range (defined here,
    below the method modules, so a method can raise it; workloads.compression.recipe re-exports it)."""


@dataclass(frozen=True)
class Param:
    default: Any
    kind: type | tuple = int  # int, float, str, bool (int accepted where float is)
    check: Callable[[Any], bool] | None = None
    expected: str = ""  # what the check demands, shown in errors
    choices: tuple = ()


@dataclass(frozen=True)
class Method:
    name: str
    apply: Callable  # (trace, model, recipe) -> Trace
    params: Mapping[str, Param]
    summary: str = ""
    validate: Callable | None = None  # (recipe) -> None: cross-parameter checks at load time
    # evicts from the prompt only: its reference code appends generated tokens whole, so a decode trace built with
    # its prompt length (build_trace's prompt_len, workloads.compression.common.prompt_and_generated) keeps them
    prompt_only: bool = False
    # lays out the KV cache in its own representation (KIVI's codes, a KV number format): a second such part would
    # re-lay the first's codes and scales as K and V (Recipe.apply refuses it)
    stores_kv: bool = False
    # sets its budget once from the prompt and evicts every token to it, generated ones too (H2O's ratios): a decode
    # trace given its prompt length reads the budget there
    budget_from_prompt: bool = False


METHODS: dict[str, Method] = {}


def register_method(name: str, params: Mapping[str, Param], summary: str = "",
                    validate: Callable | None = None, prompt_only: bool = False, stores_kv: bool = False,
                    budget_from_prompt: bool = False):
    """Decorator: register `fn(trace, model, recipe) -> Trace` as method `name`;
    `validate(recipe)` runs cross-parameter checks when a recipe is loaded."""
    def deco(fn):
        METHODS[name] = Method(name=name, apply=fn, params=dict(params), summary=summary,
                                validate=validate, prompt_only=prompt_only, stores_kv=stores_kv,
                                budget_from_prompt=budget_from_prompt)
        return fn
    return deco


def reads_prompt_budget(method: str, company=()) -> bool:
    """Whether `method` sets its budget from a decode step's prompt (Method.budget_from_prompt): not beside a part
    compressing the prompt alone (`company`: the composite's methods), whose serving probes read it after a 1-token
    prompt, so there the context stays its rule."""
    return getattr(METHODS.get(method), "budget_from_prompt", False) and \
        not any(getattr(METHODS.get(m), "prompt_only", False) for m in company)


# ---- reusable parameter checks ----------------------------------------------
def positive(x) -> bool:
    return x > 0


def non_negative(x) -> bool:
    return x >= 0


def fraction(x) -> bool:
    return 0.0 <= x <= 1.0


def open_fraction(x) -> bool:
    return 0.0 < x <= 1.0


def bits(x) -> bool:
    return 1 <= x <= 16


def registered_format(name) -> bool:
    """A number-format name the registry knows (workloads.formats)."""
    from workloads.formats import FormatError, get_format
    try:
        get_format(name)
    except FormatError:
        return False
    return True
