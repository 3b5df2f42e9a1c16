"""Experiments: one YAML names a workload, a machine, a model level and an accuracy
check; `run_experiment` returns a `Report` carrying latency, energy, area (where the
hardware has an area model) AND the accuracy of every compressed op.

Schema (every field but `model` and `hw` has a default; unknown fields are errors)::

    name: quickstart
    model: llama3_8b              # bundled name or path (YAML / HF config.json)
    phase: decode                 # prefill | decode
    batch: 1
    seq: 4096                     # at most the model's max_context, unless:
    allow_beyond_max_context: false   # true: price a longer context anyway (a note on every row)
    prompt_len: null              # decode: how many of seq's tokens were the prompt (null: all); a recipe
                                  #   compressing the prompt alone (snapkv, fastkv) keeps the rest whole
    weights: mxfp4                # number formats (workloads.formats names)
    acts: bf16
    kv: bf16
    recipe: null                  # compression recipe(s), e.g. kivi2
    attention: fused              # fused | unfused
    profile: null                 # implementation profile: eager | hf_eager | engine | engine_gemm
                                  #   (optionally +fa2 / +cudnn / +unfused / +default), workloads/profiles.py
    hw: h100_sxm                  # or {name: h100_sxm, overrides: {memory.hbm.bandwidth: 4 TB/s}}
    level: roofline               # roofline | analytical | cycle
    compute_fallback: false
    accuracy:                     # or `accuracy: false`
      source: synthetic           # or a .safetensors file / directory of them
      layers: 2                   # layers sampled per op (evenly spaced)
      rows: 128                   # output channels sampled per weight matrix
      tokens: 8                   # activation rows (with `checkpoint`: text tokens, default 256)
      seed: 0
      checkpoint: smollm2_135m    # optional: a real checkpoint run end to end on real text
      text: null                  #   (cosim.accuracy): perplexity delta, KL, top-1 agreement
      prefill: null               #   prompt tokens before teacher-forced decode (default tokens/2)
    output: reports/quickstart    # where `cosim run` writes report.{csv,json,html}; relative to the current
                                  #   directory (input paths above are relative to this file)
    serve:                        # optional: a serving run (cosim.serving.ServeConfig fields)
      qps: 5
      requests: 2000
      scheduler: chunked

`load_experiment` validates everything (file, field, value, expectation) before any
work starts; `resolve_experiment` gives the fully-resolved dict that sweeps hash.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from pathlib import Path

from cosim.experiment_config import AccuracyConfig, ExperimentConfig, HwRef, config_defaults  # noqa: F401
from hwmodels.level_registry import LEVELS  # noqa: F401  (one list of levels; re-exported)
from workloads.context import OPT_IN, context_note
from workloads.io import InputError, bundled_names, copy_tree, doc_kind, fail, load_yaml_file, resolve_bundled

__all__ = ["Experiment", "ExperimentConfig", "HwRef", "AccuracyConfig", "load_experiment", "experiment_from_dict",
           "run_experiment", "resolve_experiment", "experiment_path", "list_experiments", "DEFAULTS",
           "ACCURACY_DEFAULTS"]

PHASES = ("prefill", "decode")

# one source of truth for fields and defaults: the typed config (cosim.experiment_config)
DEFAULTS = config_defaults()
ACCURACY_DEFAULTS = AccuracyConfig().to_dict()
CHECKPOINT_TOKENS = 256  # default text tokens when an experiment names a checkpoint
# below this many scored predictions a checkpoint's perplexity is warned about next to the figure (a stated
# reporting threshold, not a measured one; _tokens_for says how many text tokens reach it)
FEW_PREDICTIONS = 32


def _tokens_for(predictions: int, acc, scored: int) -> int:
    """Text tokens that score `predictions`: with a given prefill each further token adds one prediction;
    with the default (half the window, evaluate_accuracy) a window of 2 (n + 1) tokens scores n."""
    if acc.prefill is not None:
        return acc.tokens + max(0, predictions - scored)
    return 2 * predictions + 2


# a validated experiment is an ExperimentConfig (typed, frozen; `.config` / `to_dict()` give
# the plain mapping); the name Experiment stays for callers
Experiment = ExperimentConfig


# ---------------------------------------------------------------------------- loading

def list_experiments() -> list[str]:
    return bundled_names("experiments")


def experiment_path(name_or_path) -> Path:
    """A bare name (``quickstart``) is a bundled file (package cosim.configs.experiments); a
    path is the user's own."""
    p = resolve_bundled("experiments", name_or_path, "experiment")
    if not p.is_file():
        raise InputError(f"{p}: no such experiment file")
    return p


def load_experiment(name_or_path) -> Experiment:
    path = experiment_path(name_or_path)
    doc = load_yaml_file(path, "experiment")
    return experiment_from_dict(doc, source=str(path), base_dir=path.parent)


def _unknown(doc: dict, allowed, source: str, prefix: str = "") -> None:
    for k in doc:
        if k not in allowed:
            close = difflib.get_close_matches(str(k), list(allowed), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            fail(source, f"{prefix}{k}", k, f"a known field{hint}: {', '.join(allowed)}")


def _plain(v):
    """A numpy scalar as the Python number it holds (np.int64(1) -> 1), for checks and messages;
    anything else as is."""
    return v.item() if type(v).__module__ == "numpy" and hasattr(v, "item") and getattr(v, "ndim", 1) == 0 else v


def _int(v, source, fld, lo=1, hi=2 ** 40):
    """An integer field: a Python or numpy integer (never a bool, never an integral float), as an int."""
    v = _plain(v)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        fail(source, fld, v, _int_range(lo, hi))
    return v


def _int_range(lo: int, hi: int) -> str:
    """The expected range, readable: the default ceiling 2**40 (a guard, not a limit anyone meant) is not
    printed as 1,099,511,627,776."""
    if hi >= 2 ** 40:
        return "a positive integer (1 or more)" if lo == 1 else f"an integer of {lo} or more"
    return f"an integer from {lo} to {hi:,}"


def _bool(v, source, fld):
    """A true/false field: a Python or numpy bool (not 0/1), as a bool."""
    v = _plain(v)
    if not isinstance(v, bool):
        fail(source, fld, v, "true or false")
    return v


def experiment_from_dict(doc, source: str = "<experiment>", base_dir: Path | None = None,
                         check_resources: bool = True) -> ExperimentConfig:
    """Validate a mapping into an Experiment. With `check_resources`, the model, the
    hardware (with its overrides), the formats, the recipe and a checkpoint path are
    all resolved now, so a bad name fails here rather than mid-run."""
    base_dir = Path(base_dir) if base_dir else Path.cwd()
    if not isinstance(doc, dict):
        fail(source, "", doc_kind(doc), "a mapping of experiment fields")
    _unknown(doc, {**DEFAULTS, OPT_IN: False, PROMPT_LEN: None}, source)
    cfg = {**copy_tree(DEFAULTS), **copy_tree(doc)}
    _context_opt_in(cfg, source)
    _system_fields(cfg, source, base_dir)
    for req in ("model", "hw"):
        if cfg[req] in (None, ""):
            fail(source, req, None, "a bundled name or a path" + (" (see `cosim list models`)" if req == "model"
                                                                  else " (see `cosim list hw`)"))
    if not isinstance(cfg["name"], str):
        fail(source, "name", cfg["name"], "text")
    if cfg["phase"] not in PHASES:
        fail(source, "phase", cfg["phase"], f"one of {', '.join(PHASES)}")
    from workloads.builder import MAX_BATCH, MAX_SEQ
    cfg["batch"] = _int(cfg["batch"], source, "batch", hi=MAX_BATCH)
    cfg["seq"] = _int(cfg["seq"], source, "seq", hi=MAX_SEQ)
    _prompt_len_field(cfg, source)
    if cfg["level"] not in LEVELS:
        fail(source, "level", cfg["level"], f"one of {', '.join(LEVELS)}")
    if cfg["attention"] not in ("fused", "unfused"):
        fail(source, "attention", cfg["attention"], "fused or unfused")
    _profile_field(cfg, source)
    cfg["compute_fallback"] = _bool(cfg["compute_fallback"], source, "compute_fallback")
    for f in ("weights", "acts", "kv"):
        _check_format(cfg[f], source, f)
    if cfg["recipe"] is not None and not isinstance(cfg["recipe"], str):
        fail(source, "recipe", cfg["recipe"], "a recipe name such as kivi2, or null")
    cfg["hw"] = _hw_section(cfg["hw"], source, base_dir)
    cfg["model"] = _path_or_name(cfg["model"], base_dir)
    if "weights" not in doc:
        cfg["weights"] = declared_weights(cfg["model"])
    cfg["accuracy"] = _accuracy_section(cfg["accuracy"], source, base_dir)
    cfg["serve"] = _serve_section(cfg["serve"], source, base_dir)
    if cfg["output"] is not None and not isinstance(cfg["output"], str):
        fail(source, "output", cfg["output"], "a directory path")
    exp = ExperimentConfig.from_dict(cfg, source, base_dir, weights_from_model="weights" not in doc)
    if check_resources:
        _check_resources(exp)
    return exp


PROMPT_LEN = "prompt_len"
SERVE_PROMPT_LEN = ("null when `serve` is set: a serving run's requests carry their own prompts (serve: {prompt_len: "
                    "N}, as `cosim serve --prompt-len N`), and each decode step reads its own")


def _prompt_len_field(cfg: dict, source: str) -> None:
    """`prompt_len` (build_trace's): kept only when set, so the configuration keys of existing sweep stores do not
    change; a positive count of seq's tokens, with phase decode."""
    if cfg.get(PROMPT_LEN) is None:
        cfg.pop(PROMPT_LEN, None)
        return
    cfg[PROMPT_LEN] = _int(cfg[PROMPT_LEN], source, PROMPT_LEN, hi=cfg["seq"])
    if cfg.get("serve") not in (None, False):  # never silently dropped: serving's requests carry their own prompts
        fail(source, PROMPT_LEN, cfg[PROMPT_LEN], SERVE_PROMPT_LEN)
    if cfg["phase"] != "decode":
        fail(source, PROMPT_LEN, cfg[PROMPT_LEN], f"null with phase {cfg['phase']!r} (it splits a decode step's "
             f"context into prompt and generated tokens)")


def _context_opt_in(cfg: dict, source: str) -> None:
    """`allow_beyond_max_context: true` (workloads.context) is kept only when set, so the
    configuration keys of existing sweep stores do not change."""
    if OPT_IN not in cfg:
        return
    if not isinstance(cfg[OPT_IN], bool):
        fail(source, OPT_IN, cfg[OPT_IN], "true or false")
    if not cfg[OPT_IN]:
        del cfg[OPT_IN]


def _profile_field(cfg: dict, source: str) -> None:
    """`profile` (workloads/profiles.py): checked by the schema; refused where the run
    would not honour it (a parallel layout; a serving run, which takes it as `serve.profile`),
    never silently dropped."""
    from workloads.schema import check_profile
    problems = check_profile(cfg["profile"], source)
    if problems:
        raise InputError(problems[0])
    if cfg["profile"] is not None:
        for other in ("system", "parallel"):
            if cfg[other] not in (None, False):
                fail(source, "profile", cfg["profile"], f"null when `{other}` is set (a profile with {other} "
                                                        f"is not supported yet)")
        if cfg["serve"] not in (None, False):  # serving takes it as a serve option: say where, not "unsupported"
            fail(source, "profile", cfg["profile"], f"null when `serve` is set: a serving run takes its profile under "
                                                    f"`serve` (serve: {{profile: {cfg['profile']}}}, as `cosim serve "
                                                    f"--profile {cfg['profile']}`), which prices its steps with it")


# ServeConfig fields a `serve:` section may not hold: the serving run takes them from the experiment itself
# (_serving and a sweep's serving point pass them), so a second value there clashed with the top-level one
# (a TypeError traceback before session 36)
SERVE_FROM_EXPERIMENT = ("model", "hw", "level", "weights", "acts", "kv", "recipe", "attention", "compute_fallback")


def serve_fields() -> list:
    """The fields a `serve:` section (and a sweep's `serve.<field>` axis) may set, sorted."""
    from dataclasses import fields
    from cosim.serving.config import ServeConfig
    return sorted(f.name for f in fields(ServeConfig) if f.name not in SERVE_FROM_EXPERIMENT)


def serve_field_problem(key) -> str | None:
    """What is wrong with `key` as a `serve:` field (the `expected ...` of its error), None when it is one:
    an experiment field said where it belongs, an unknown one with the closest known name."""
    if key in SERVE_FROM_EXPERIMENT:
        return (f"no {key} under serve: the serving run uses the experiment's own {key} "
                f"(set `{key}:` at the top level)")
    known = serve_fields()
    if key in known:
        return None
    close = difflib.get_close_matches(str(key), known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"a serve field{hint}: {', '.join(known)}"


def _serve_path(v, source: str, fld: str, base_dir: Path):
    """serve.trace / serve.lengths_from relative to the file, as model, hw and accuracy.text are (was: to the
    current directory, so a same-named file there was read instead). A bundled trace name (sharegpt_synth) stays a
    name; a docs-style path (configs/traces/sharegpt_synth.csv) stays as written where no such file is beside the
    experiment, for load_trace's rule; any other path must exist."""
    from cosim.serving.arrivals import TRACE_COLUMNS, bundled_trace
    if not isinstance(v, (str, os.PathLike)) or not str(v):
        fail(source, f"serve.{fld}", v, f"a CSV file ({', '.join(TRACE_COLUMNS)}) or a bundled trace name "
                                        f"(sharegpt_synth)")
    text = str(v)
    bare = "/" not in text and os.sep not in text and not text.endswith(".csv")
    if bare and bundled_trace(text) is not None:
        return text
    p = Path(text).expanduser()
    p = p if p.is_absolute() else (base_dir / p).resolve()
    if p.is_file():
        return str(p)
    if bundled_trace(text) is not None:
        return text
    fail(source, f"serve.{fld}", text, f"an existing CSV file ({p} does not exist; a relative path is read from the "
                                       f"experiment file's directory) or a bundled trace name (sharegpt_synth)")


def _serve_section(v, source, base_dir: Path | None = None):
    """Serving options (cosim.serving.ServeConfig fields), checked now; None = no serving run."""
    if v in (None, False):
        return None
    if not isinstance(v, dict):
        fail(source, "serve", v, "a mapping of serving options (qps, requests, scheduler, ...)")
    for k in v:  # here, not in ServeConfig: the error names the field as serve.<k>, once, with a did-you-mean
        problem = serve_field_problem(k)
        if problem:  # an experiment field's value shown (it belongs at the top level), else the unknown name
            fail(source, f"serve.{k}", v[k] if k in SERVE_FROM_EXPERIMENT else k, problem)
    v = dict(v)
    for fld in ("trace", "lengths_from"):
        if v.get(fld) is not None:
            v[fld] = _serve_path(v[fld], source, fld, Path(base_dir) if base_dir else Path.cwd())
    from cosim.serving.config import ServeConfig
    try:
        ServeConfig(model="-", hw="-", **v)
    except InputError as e:  # ServeConfig's errors name the field (serve: qps: ...), not the file
        raise InputError(f"{source}: {e}") from None
    return dict(v)


def _system_fields(cfg: dict, source: str, base_dir: Path) -> None:
    """`system` (a multi-device system; its device becomes `hw` when hw is not given) and
    `parallel` (a layout such as {tp: 8}; needs a system to price its collectives)."""
    if cfg["parallel"] is not None:
        from workloads.parallel import parse_layout
        _layout_field(source, parse_layout, cfg["parallel"])
        cfg["parallel"] = dict(cfg["parallel"])
        if cfg["system"] is None:
            fail(source, "system", None, "a system (e.g. dgx_h100) to price a parallel layout's collectives")
    if cfg["system"] is not None:
        if not isinstance(cfg["system"], str) or not cfg["system"]:
            fail(source, "system", cfg["system"], "a bundled system name (see `cosim list systems`) or a path")
        cfg["system"] = _path_or_name(cfg["system"], base_dir)
        if cfg["hw"] in (None, ""):
            from hwmodels.system import load_system
            cfg["hw"] = load_system(cfg["system"]).device.source


def declared_weights(model) -> str:
    """A file that names no `weights` takes the format its model's checkpoint declares (a
    config.json quantization_config, workloads/hf_quant.py; the report notes it), else bf16."""
    from workloads.models import load_model
    try:
        return load_model(model).weights_format or DEFAULTS["weights"]
    except (InputError, OSError):
        return DEFAULTS["weights"]  # a bad model is refused where it is checked, naming the field


def _layout_field(source: str, check, *args):
    """Run a workloads.parallel check; its error names the file and the dotted field
    (`e.yaml: parallel.tp: got 3; ...`), as every other field of an experiment file."""
    try:
        return check(*args, source="parallel")
    except InputError as e:
        msg = str(e)
        field = re.match(r"parallel: (?!got )", msg)
        raise InputError(f"{source}: " + ("parallel." + msg[field.end():] if field else msg)) from None


def _path_or_name(v, base_dir: Path):
    """Relative paths of inputs in a file (model, hw, system, accuracy source/checkpoint/text) are
    relative to that file; bare names stay names. `output:` is not an input and stays relative to the
    current directory, like `--out` (a bundled file's `output: reports/quickstart` writes there, not into
    the package)."""
    if isinstance(v, str) and ("/" in v or v.endswith((".yaml", ".yml", ".json"))):
        p = Path(v).expanduser()
        return str(p if p.is_absolute() else (base_dir / p).resolve())
    return v


def _check_format(v, source, fld):
    from workloads.formats import get_format
    if not isinstance(v, str):
        fail(source, fld, v, "a number-format name such as bf16, mxfp4, int4_g128")
    try:
        get_format(v)
    except (ValueError, KeyError) as e:
        fail(source, fld, v, f"a registered number format ({e})")


def _hw_section(v, source, base_dir) -> dict:
    if isinstance(v, str):
        return {"name": _path_or_name(v, base_dir), "overrides": {}}
    if not isinstance(v, dict):
        fail(source, "hw", v, "a hardware name/path or {name: ..., overrides: {dotted.path: value}}")
    _unknown(v, ("name", "overrides"), source, "hw.")
    if not isinstance(v.get("name"), str):
        fail(source, "hw.name", v.get("name"), "a bundled hardware name or a path")
    ov = v.get("overrides") or {}
    if not isinstance(ov, dict):
        fail(source, "hw.overrides", ov, "a mapping of dotted paths to values, e.g. memory.hbm.bandwidth: 4 TB/s")
    return {"name": _path_or_name(v["name"], base_dir), "overrides": dict(ov)}


def _accuracy_section(v, source, base_dir):
    if v in (None, False):
        return None
    if v is True:
        v = {}
    if not isinstance(v, dict):
        fail(source, "accuracy", v, "false, true, or a mapping (source, layers, rows, tokens, seed)")
    _unknown(v, ACCURACY_DEFAULTS, source, "accuracy.")
    acc = {**ACCURACY_DEFAULTS, **v}
    if v.get("checkpoint") is not None and "tokens" not in v:
        acc["tokens"] = CHECKPOINT_TOKENS
    for f in ("layers", "rows", "tokens"):
        acc[f] = _int(acc[f], source, f"accuracy.{f}")
    acc["seed"] = _int(acc["seed"], source, "accuracy.seed", lo=0)
    if not isinstance(acc["source"], str):
        fail(source, "accuracy.source", acc["source"], "synthetic or a path to a .safetensors checkpoint")
    if acc["source"] != "synthetic":
        p = Path(acc["source"]).expanduser()
        p = p if p.is_absolute() else (base_dir / p).resolve()
        if not p.exists():
            word = str(acc["source"])
            close = (difflib.get_close_matches(word, ["synthetic", "checkpoint"], n=1, cutoff=0.6)
                     if "/" not in word and "." not in word else [])
            hint = (" (did you mean 'synthetic'? a bundled checkpoint such as smollm2_135m goes in "
                    "accuracy.checkpoint)" if close == ["synthetic"] else
                    " (a bundled checkpoint such as smollm2_135m goes in accuracy.checkpoint, not accuracy.source)"
                    if close else "")
            fail(source, "accuracy.source", acc["source"], f"synthetic, or an existing .safetensors file or "
                                                           f"directory ({p} does not exist){hint}")
        acc["source"] = str(p)
    _checkpoint_fields(acc, source, base_dir)
    return acc


def _checkpoint_fields(acc: dict, source: str, base_dir: Path) -> None:
    """accuracy.checkpoint / text / prefill: a bundled checkpoint name or a path."""
    from cosim.functional.checkpoint import BUNDLED_CHECKPOINTS
    ck = acc["checkpoint"]
    if ck is not None:
        if not isinstance(ck, str) or not ck:
            fail(source, "accuracy.checkpoint", ck, f"a bundled checkpoint ({', '.join(BUNDLED_CHECKPOINTS)}) or "
                                                    f"a path to a .gguf / .safetensors checkpoint")
        if ck not in BUNDLED_CHECKPOINTS:
            acc["checkpoint"] = _existing(ck, source, "accuracy.checkpoint", base_dir)
    if acc["text"] is not None:
        if not isinstance(acc["text"], str):
            fail(source, "accuracy.text", acc["text"], "a path to a UTF-8 text file")
        acc["text"] = _existing(acc["text"], source, "accuracy.text", base_dir)
    if acc["prefill"] is not None:
        acc["prefill"] = _int(acc["prefill"], source, "accuracy.prefill")
        if acc["prefill"] > acc["tokens"] - 2:
            fail(source, "accuracy.prefill", acc["prefill"], f"at most accuracy.tokens - 2 = {acc['tokens'] - 2}")


def _existing(v: str, source: str, fld: str, base_dir: Path) -> str:
    p = Path(v).expanduser()
    p = p if p.is_absolute() else (base_dir / p).resolve()
    if not p.exists():
        fail(source, fld, v, f"an existing file ({p} does not exist)")
    return str(p)


def _system_device_name(name) -> str | None:
    """The device of a bundled system called `name` (None when it is no system)."""
    from workloads.io import bundled_names
    if not isinstance(name, str) or name not in bundled_names("systems"):
        return None
    try:
        from hwmodels.system import load_system
        return load_system(name).device.name
    except Exception:  # noqa: BLE001 - a system that does not load: the plain hardware error stands
        return None


def _check_resources(exp: ExperimentConfig) -> None:
    from hwmodels.spec import load_hw
    from workloads.models import load_model
    try:
        model = load_model(exp.model)
    except InputError as e:
        raise InputError(f"{exp.source}: model: {e}") from None
    context_note(model, exp.seq, exp.allow_beyond_max_context, exp.source)  # refused here, not mid-run
    if exp.parallel is not None:  # a layout that cannot shard this model: refused here, naming the file
        from workloads.parallel import check_layout, parse_layout
        _layout_field(exp.source, lambda source: check_layout(parse_layout(exp.parallel_dict()), model, exp.batch,
                                                              source=source))
    try:
        load_hw(exp.hw.name, overrides=exp.hw.overrides_dict() or None)
    except InputError as e:
        dev = _system_device_name(exp.hw.name)
        if dev:  # `hw: dgx_h100`: a system where a device is expected — say which field takes it
            raise InputError(f"{exp.source}: hw: got {exp.hw.name!r}, a system (cosim list systems); expected a "
                             f"device: write `system: {exp.hw.name}` (with `hw: {dev}`, its device) to price "
                             f"the model on that system") from None
        raise InputError(f"{exp.source}: hw: {e}") from None
    if exp.system:
        _hw_is_the_systems_device(exp)
    if exp.recipe:
        check_recipe(exp.recipe, exp.source, "recipe")
    if exp.accuracy is not None:  # the functional core refuses 2-D block scales: say so now, not mid-run
        from workloads.formats import get_format
        if get_format(exp.weights).family == "fp8_block":
            fail(exp.source, "weights", exp.weights,
                 "a format the functional core quantizes for the `accuracy:` check (fp8_e4m3, mxfp8_e4m3, ...): "
                 "2-D block-scaled fp8 is priced by the cost models only" +
                 ("" if exp.weights != model.weights_format else " (it is the checkpoint's declared format: "
                  "name `weights:` or drop `accuracy:`)"))


def _hw_is_the_systems_device(exp: ExperimentConfig) -> None:
    """With `system`, the run prices the system's device (hw overrides apply to it): an `hw` naming
    another device would be ignored, so it is refused; the same device (or no `hw`) is accepted."""
    from hwmodels.spec import load_hw
    from hwmodels.system import load_system
    dev = load_system(exp.system).device
    hw = load_hw(exp.hw.name)
    same = hw == dev or (hw.source and dev.source and Path(hw.source).resolve() == Path(dev.source).resolve())
    if not same:
        raise InputError(f"{exp.source}: hw: got {hw.name!r} with system: {exp.system!r}, whose device is "
                         f"{dev.name!r}; expected hw: {dev.name} or no hw (a system run prices the system's own "
                         f"device, so this hw would be ignored)")


def check_recipe(name: str, source: str, fld: str) -> None:
    """A recipe name must load now, not halfway through a run."""
    try:
        from workloads.compression import load_recipe
    except ImportError:
        fail(source, fld, name, "no recipe: compression recipes are not available in this installation "
                                "(workloads.compression.load_recipe is missing)")
    try:
        load_recipe(name)
    except InputError as e:
        raise InputError(f"{source}: {fld}: {e}") from None


def resolve_experiment(exp: ExperimentConfig) -> dict:
    """The fully-resolved configuration: every default filled, paths absolute,
    hardware override quantities in SI floats. Two experiments that compute the same
    thing give the same dict (and so the same sweep hash)."""
    cfg = exp.to_dict()
    cfg.pop("output", None)
    cfg.pop("name", None)
    cfg["hw"]["overrides"] = {k: si_override(k, v, exp.source) for k, v in sorted(cfg["hw"]["overrides"].items())}
    return cfg


def si_override(key: str, value, source: str = "<experiment>"):
    """'4 TB/s' -> 4e12 for a hardware override whose quantity kind is known."""
    from hwmodels.units import parse_quantity
    if isinstance(value, str):
        kind = _override_kind(key)
        if kind:
            return parse_quantity(value, kind, source, f"hw.overrides.{key}", allow_zero=True)
    return value


def _override_kind(key: str):
    try:
        from hwmodels.spec import override_kind as kind_of  # the loader's own table
        return kind_of(key.split("."))
    except (ImportError, KeyError, IndexError):
        return None


# ---------------------------------------------------------------------------- running

def _min_sqnr(by_op: dict):
    """Worst op SQNR; NaN when any op has no finite figure (min() would skip or keep a
    NaN depending on its position)."""
    vals = list(by_op.values())
    if not vals:
        return None
    return math.nan if any(v != v for v in vals) else min(vals)


def run_experiment(exp, out_dir: str | Path | None = None, accuracy: bool = True, interactive: bool = False,
                   second_process: bool = False):
    """Run the experiment: trace -> performance model -> Report, plus the functional
    accuracy check when the experiment asks for one. Writes report.{csv,json,html}
    when `out_dir` is given (and report_interactive.html with `interactive`).
    `second_process`: run the real-checkpoint accuracy in a spawned child meanwhile (the
    same numbers; `cosim run` passes it — a spawned child imports the caller's __main__
    module, so only a caller whose main module is guarded may ask for it)."""
    from cosim.progress import step

    if interactive:  # an optional extra: checked before any work or file (cosim.interactive.require_plotly)
        from cosim.interactive import require_plotly
        require_plotly()
    if not isinstance(exp, ExperimentConfig):
        exp = load_experiment(exp) if isinstance(exp, (str, Path)) else experiment_from_dict(exp)
    trace, rep, hw = _experiment_performance(exp)
    rep.meta["weight_tensors"] = weight_tensor_formats(trace)
    from cosim.shadow import experiment_shadow_notes  # a bare name beside a same-named local file: said
    rep.notes = tuple(dict.fromkeys([*rep.notes, *experiment_shadow_notes(exp)]))
    _provenance(rep, exp, hw, hardware_area_mm2(trace, hw, exp.level, exp.compute_fallback))
    early = ckpt = None
    if second_process and exp.accuracy and accuracy and exp.accuracy.checkpoint and _checkpoint_beside(exp):
        from cosim.second_process import SecondProcess  # started first: its imports overlap ours
        ckpt = SecondProcess(_checkpoint_result, exp, True)
    try:
        # plots drawn while the accuracy checks run; beside a second process only once the synthetic
        # check is done: on two cores the child's forward passes are the longer path, and the plot
        # thread would take the core it needs (benchmarks/results/startup_speed_s7b_ab: 0.92x the wall)
        if out_dir is not None and exp.accuracy and accuracy and ckpt is None:
            from cosim.html_report import EarlyFigures
            early = EarlyFigures(rep, hw)
        if exp.accuracy and accuracy:
            # its first op compiles (or loads) the kernels of the experiment's formats; the child,
            # which quantizes with the same kernels, then goes on and reads them from the cache
            _synthetic_accuracy(rep, trace, exp, after_first=ckpt.go_on if ckpt is not None else None,
                                threads=1 if ckpt is not None else 2)
            if ckpt is not None:
                ckpt.go_on()
                if out_dir is not None:
                    from cosim.html_report import EarlyFigures
                    early = EarlyFigures(rep, hw)
            if early is not None:  # its figure drawn while the checkpoint check runs
                early.add_accuracy(rep)
            if exp.accuracy.checkpoint:
                where = " (in a second process, beside the functional core)" if ckpt else ""
                with step(f"accuracy on the real checkpoint {exp.accuracy.checkpoint} (a forward pass over real "
                          f"text per format){where}"):
                    _checkpoint_accuracy(rep, exp, ckpt.result() if ckpt else _checkpoint_result(exp))
    except BaseException:
        if ckpt is not None:
            ckpt.cancel()
        if early is not None:
            early.cancel()
        raise
    if exp.accuracy and not accuracy:
        _accuracy_skipped(rep)
    if exp.serve:
        _serving(rep, exp, hw, out_dir)
    if out_dir is not None:
        from cosim.html_report import write_report
        with step(f"writing report.csv, report.json and report.html (with plots) to {out_dir}"):
            write_report(rep, hw, out_dir, interactive=interactive, early=early)
    return rep


def weight_tensor_formats(trace) -> dict:
    """The stored format of each weight group the trace prices: {"linear layers": fmt, "embedding table": fmt,
    "lm_head": fmt} (several formats joined by '/'). `--weights F` stores all three in F; a weight-format recipe
    (e.g. mxfp4_weights) keeps the embedding table and lm_head at the flag's format and adds dequantize ops."""
    groups: dict = {}
    for op in trace.ops:
        w = [t.fmt for t in op.inputs if t.role == "weight"]
        if not w or op.kind not in ("gemm", "embedding"):
            continue
        g = "embedding table" if op.kind == "embedding" else ("lm_head" if op.name == "lm_head" else "linear layers")
        groups.setdefault(g, set()).update(w)
    return {g: "/".join(sorted(f)) for g, f in groups.items()}


def head_follows_weights(weights: str | None, recipe: str | None) -> bool:
    """Whether the real-checkpoint run quantizes the embedding table and LM head, as the priced trace does: yes
    when the weights' format comes from `weights:` (the trace stores every weight in it, lm_head and embedding
    included), no when a recipe sets it (weight-format recipes keep both tables wide on both sides)."""
    if not weights:
        return False
    if recipe:
        from workloads.compression import load_recipe
        r = load_recipe(recipe)
        if any(p.method == "weight_format" for p in (r.parts or (r,))):
            return False
    return True


def _experiment_performance(exp: ExperimentConfig):
    """_performance, with a format the hardware cannot compute refused in the experiment file's terms: which
    of its fields set the format and the YAML option that allows the fallback (not the Python keyword)."""
    from hwmodels.spec import UnsupportedFormatError
    from workloads.builder import ProfileConflict
    try:
        return _performance(exp)
    except ProfileConflict as e:  # the two fields of the file that clash, not build_trace's keywords
        other = "attention" if exp.attention == "unfused" else "recipe"  # H2O's prefill is the other unfused form
        raise InputError(f"{exp.source}: {other}, profile: {str(e).removeprefix('build_trace: ')}") from None
    except UnsupportedFormatError as e:  # its pieces, said in the file's terms (no install path, the YAML option)
        msg = e.message(option="`compute_fallback: true` in the file", source=_shown_source(e.source))
        raise UnsupportedFormatError(
            exp.source, f"acts: {exp.acts}, weights: {exp.weights}: an op computes in the wider of the two, which "
            f"the hardware cannot: {msg}") from None


def _shown_source(source: str) -> str:
    """A hardware file's path as an experiment's error shows it: a bundled file as cosim/configs/..., never the
    install path; anything else as given."""
    from workloads.io import bundled_root
    try:
        return (Path("cosim/configs") / Path(source).relative_to(bundled_root().resolve())).as_posix()
    except ValueError:
        return source


def _performance(exp: ExperimentConfig):
    """(trace, Report, device spec): the trace built and priced at the experiment's level,
    on its system (with its parallel layout) when it names one."""
    from cosim.simulate import simulate
    from hwmodels.spec import load_hw
    from workloads.builder import build_trace

    overrides = exp.hw.overrides_dict()
    build = dict(phase=exp.phase, batch=exp.batch, seq=exp.seq, weights=exp.weights, acts=exp.acts, kv=exp.kv,
                 recipe=exp.recipe, attention=exp.attention, allow_beyond_max_context=exp.allow_beyond_max_context,
                 prompt_len=exp.prompt_len)
    if exp.system:
        from hwmodels.system import load_system
        system = load_system(exp.system, overrides={f"device.{k}": v for k, v in overrides.items()} or None)
        trace = build_trace(exp.model, **build, parallel=exp.parallel_dict())
        rep = simulate(trace, system, level=exp.level, compute_fallback=exp.compute_fallback)
        return trace, rep, system.device
    hw = load_hw(exp.hw.name, overrides=overrides or None)
    trace = build_trace(exp.model, **build, profile=exp.profile)  # a profile is refused with a system
    return trace, simulate(trace, hw, level=exp.level, compute_fallback=exp.compute_fallback), hw


def _provenance(rep, exp: ExperimentConfig, hw, area) -> None:
    """Where every reported figure comes from, in the report's meta and per-op rows."""
    from cosim.humanize import display_source
    # each row keeps the op's `level` (a fallback says roofline) and `provenance` columns as simulate
    # writes them: one label scheme for simulate, run and sweep tables (hwmodels/cost.py)
    # the file as the user named it: their own path as given, a bundled one by its place in the package
    rep.meta["experiment"] = {"name": exp.name, "source": display_source(exp.source)}
    rep.meta["area_mm2"] = area  # one device's
    # a system: every device of it carries that silicon (area_total_mm2 = area x devices in the system)
    devices = int(rep.meta.get("devices_in_system") or 1) if exp.system else 1
    rep.meta["area_devices"] = devices if area is not None else None
    rep.meta["area_total_mm2"] = area * devices if area is not None else None
    rep.meta["provenance"] = {
        "latency_s": f"{rep.level} model on {hw.name} ({display_source(hw.source)})"
                     + (f" (requested {exp.level}: fell back)" if rep.level != exp.level else "")
                     + "; per-op level and provenance columns",
        "energy_j": energy_provenance(rep),
        "footprint": "trace builder: parameters x bits/element, KV cache per token x context, live activations",
        "area_mm2": (("cycle-level area model, one device" + (f" (x {devices} devices of {exp.system} = "
                                                               f"area_total_mm2)" if devices > 1 else ""))
                     if area is not None else "no area model for this hardware/level"),
    }


ROOFLINE_ENERGY = "FLOPs x J/FLOP + bytes per level x J/B + static power x time (hardware file, cited there)"


def energy_provenance(rep) -> str:
    """Where the energy figures come from: the level(s) that priced the ops (each row's `level`), not the level
    asked for: a request the model could not honour fell back, and a run may mix levels op by op."""
    levels = list(dict.fromkeys(str(r.get("level") or rep.level) for r in rep.rows)) or [rep.level]
    if levels == ["roofline"]:
        return ROOFLINE_ENERGY
    if len(levels) == 1:
        return f"the {levels[0]} model's energy (per-op provenance column)"
    return (f"mixed levels: ops priced by the {' / '.join(levels)} models, each op's energy from the model that "
            f"priced it (per-op level and provenance columns); roofline ops: {ROOFLINE_ENERGY}")


def _synthetic_accuracy(rep, trace, exp: ExperimentConfig, after_first=None, threads: int = 2) -> None:
    """Per-op output SQNR of the trace's formats (functional core on sampled layers, rows
    and tokens): a column per op row (NaN says why in accuracy_status) and meta. `threads`
    is 1 beside the second process, which needs the other core (the figures do not depend
    on it: each op draws from its own seeded stream)."""
    from cosim.layer_accuracy import trace_accuracy
    from cosim.progress import step
    acc = exp.accuracy
    with step(f"accuracy: functional core on {acc.layers} layers x {acc.rows} rows x {acc.tokens} "
              f"tokens per op ({acc.source} weights; a first run also compiles the numba kernels, "
              f"cached for later runs)"):
        res = trace_accuracy(trace, layers=acc.layers, rows=acc.rows, tokens=acc.tokens, seed=acc.seed,
                             checkpoint=acc.weights_path, model=exp.model, after_first=after_first,
                             threads=threads)
    if res.sample["layers"] < acc.layers:  # more layers asked than the model has: all of them, said
        rep.notes = tuple(dict.fromkeys([*rep.notes, (
            f"accuracy.layers: {acc.layers} asked; the model has {res.sample['layers']} layers, so all "
            f"{res.sample['layers']} were sampled")]))
    status = res.status_by_op or {}
    for r in rep.rows:
        r["sqnr_db"] = res.by_op.get(r["op"], math.nan)
        # every row says whether its accuracy figure exists and, if NaN, why
        r["accuracy_status"] = status.get(r["op"], "ok" if r["op"] in res.by_op else
                                          "not measured (no weight or KV operand)")
    rep.meta["accuracy"] = {"by_layer": res.by_layer, "sample": res.sample, "provenance": res.provenance,
                            "min_sqnr_db": _min_sqnr(res.by_op),
                            "status_by_op": res.status_by_op,
                            "recipe_twin": res.recipe_twin}
    rep.meta["provenance"]["sqnr_db"] = res.provenance


SKIPPED_NOTE = "accuracy skipped (--no-accuracy): the experiment's accuracy check was not run"


def _accuracy_skipped(rep) -> None:
    """The experiment asks for an accuracy check that this run skipped (--no-accuracy): a note in every output,
    and the accuracy columns kept (empty SQNR, status "skipped") so CSVs of runs with and without it line up."""
    rep.notes = tuple(dict.fromkeys([*rep.notes, SKIPPED_NOTE]))
    for r in rep.rows:
        r["sqnr_db"] = math.nan
        r["accuracy_status"] = "skipped"
    rep.meta["provenance"]["sqnr_db"] = SKIPPED_NOTE


def _serving(rep, exp: ExperimentConfig, hw, out_dir) -> None:
    """A serving run (cosim.serving) of the experiment's model and formats: summary in meta,
    its own outputs under out_dir/serve."""
    from cosim.serving import serve
    # the top-level compute_fallback opts the serving run in too, as a sweep's serving point does: the single step
    # and the stream price the same ops (before session 36 the stream was refused the fallback the file allowed)
    res = serve(exp.model, hw, level=exp.level, weights=exp.weights, acts=exp.acts, kv=exp.kv,
                recipe=exp.recipe, attention=exp.attention, compute_fallback=exp.compute_fallback,
                **exp.serve_dict())
    # `text`: what `cosim serve` prints for the run (cosim run prints it too, never only the single-step table)
    rep.meta["serve"] = {"config": res.config.record(), "summary": res.summary, "notes": list(res.notes),
                         "text": res.format()}
    if out_dir is not None:
        from cosim.serving.output import write_outputs
        paths = write_outputs(res, Path(out_dir) / "serve")
        rep.meta["serve"]["files"] = [p.name for p in paths]


def _checkpoint_beside(exp: ExperimentConfig) -> bool:
    """Run the checkpoint accuracy in a second process? When this process has not loaded
    the checkpoint yet (else its in-process caches make it fast here), and not inside a
    process that must not start children."""
    import multiprocessing as mp

    from cosim.accuracy import _checkpoint
    if os.environ.get("COSIM_ONE_PROCESS", "") not in ("", "0"):
        return False
    return _checkpoint.cache_info().currsize == 0 and not mp.current_process().daemon


def _checkpoint_result(exp: ExperimentConfig, beside: bool = False):
    """evaluate_accuracy for the experiment's checkpoint, formats and recipe. `beside` (in
    the second process): the checkpoint load and the unquantized pass first, then wait
    for the parent's functional core to have compiled the kernels, then the rest."""
    from cosim.accuracy import warm_baseline
    acc = exp.accuracy
    if beside:
        from cosim.second_process import wait_for_parent
        warm_baseline(acc.checkpoint, acc.text, acc.tokens, acc.prefill)
        wait_for_parent()
    return run_checkpoint(acc, exp.weights, exp.acts, exp.kv, exp.recipe, f"accuracy.tokens in {exp.source}")


def run_checkpoint(acc: AccuracyConfig, weights: str | None, acts: str | None, kv: str | None, recipe: str | None,
                   tokens_option: str):
    """The real-checkpoint run of `cosim run` and of a sweep's rows (cosim.dse.evaluate), one call:
    evaluate_accuracy on `acc`'s checkpoint, text, tokens and prefill in these formats and recipe, without
    per-layer figures (the report keeps none: _checkpoint_accuracy), quantizing the same tensors as the priced
    trace (with `weights:` the embedding table and LM head too: head_follows_weights); `tokens_option` is where
    the token count was set, as a few-predictions line names it ("accuracy.tokens in e.yaml")."""
    from cosim.accuracy import evaluate_accuracy
    return evaluate_accuracy(acc.checkpoint, acc.text, acc.tokens, acc.prefill, weights=weights, acts=acts, kv=kv,
                             recipe=recipe, per_layer=False, quantize_head=head_follows_weights(weights, recipe),
                             tokens_option=tokens_option)


def checkpoint_run_notes(res, acc, where: str) -> tuple[list, list, list]:
    """(few, idle, notes) of a real-checkpoint accuracy result `res` as a report shows them, the one rule of
    `cosim run` and a sweep's rows: `few` warns when fewer than FEW_PREDICTIONS predictions were scored (naming
    accuracy.tokens in `where` and the count that reaches it; `acc`: the accuracy settings, .tokens and
    .prefill); `idle` is res.did_not_act, said to come from the other quantized tensors when the weights or
    acts are narrow (the perplexity still moved); `notes` are res.notes with those lines so amended, `few`
    first."""
    idle, notes = list(res.did_not_act), list(res.notes)
    wide = ("bf16", "fp16", "fp32")
    other = [f"{k} {getattr(res, k)}" for k in ("weights", "acts") if getattr(res, k) and getattr(res, k) not in wide]
    if idle and other:  # the perplexity still moved: say what moved it, not "the baseline's"
        tail = (f" (here the figures differ from the baseline through the other quantized tensors, "
                f"{', '.join(other)}, not through recipe {res.recipe})")
        notes = [n + tail if n in idle else n for n in notes]
        idle = [n + tail for n in idle]
    few = few_predictions_warning(res.tokens, acc, "accuracy.tokens", f" in {where}")
    return few, idle, few + notes


def few_predictions_warning(scored: int, acc, option: str, where: str = "") -> list:
    """[the warning] when a checkpoint run scored fewer than FEW_PREDICTIONS predictions (its figures are an
    average over that many), else []: names the token count as set (`option` `acc.tokens` `where`, e.g.
    "accuracy.tokens 24 in e.yaml", "--tokens 16") and the count that reaches FEW_PREDICTIONS (_tokens_for)."""
    if scored >= FEW_PREDICTIONS:
        return []
    return [f"only {scored} predictions scored ({option} {acc.tokens}{where}): a perplexity over fewer than "
            f"{FEW_PREDICTIONS} tokens is dominated by which tokens they are; use {option} of "
            f"{_tokens_for(FEW_PREDICTIONS, acc, scored)} or more"]


def _checkpoint_accuracy(rep, exp: ExperimentConfig, res) -> None:
    """Perplexity delta / KL / top-1 of the experiment's formats and recipe on a real
    checkpoint (`res`: _checkpoint_result), beside latency and energy. The checkpoint may
    be a smaller model than the one priced (a proxy): the report says so."""
    acc = exp.accuracy
    d = res.to_dict()
    d.pop("layers")
    model = str(exp.model)
    d["proxy_for"] = None if Path(model).stem == Path(str(acc.checkpoint)).stem else model
    few, idle, d["notes"] = checkpoint_run_notes(res, acc, exp.source)
    d["did_not_act"] = idle
    d["warnings"] = few + idle  # shown beside the perplexity (terminal, HTML summary)
    rep.meta["accuracy"]["checkpoint"] = d
    rep.meta["provenance"]["perplexity"] = (
        f"checkpoint: {res.checkpoint} ({res.checkpoint_format}) run end to end by the functional core on "
        f"{res.tokens} predicted tokens of {res.text}; {res.baseline_note}"
        + (f"; a proxy for {model}, which is what latency and energy price" if d["proxy_for"] else ""))
    rep.meta["provenance"]["sqnr_db"] = "synthetic: " + rep.meta["provenance"]["sqnr_db"]


def hardware_area_mm2(trace, hw, level: str, compute_fallback: bool = False):
    """Silicon area (mm^2) where the level has an area model — the cycle level's
    `area_breakdown(hw)["total"]` (hwmodels.cycle) on hardware it applies to; None
    otherwise (GPUs at roofline/analytical level). `trace` and `compute_fallback` are
    kept for callers; the area does not depend on them."""
    if level != "cycle":
        return None
    from hwmodels.cycle import applicable, area_breakdown
    if not applicable(hw)[0]:
        return None
    return float(area_breakdown(hw)["total"])
