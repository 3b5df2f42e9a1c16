"""The typed experiment configuration: a frozen dataclass tree.

`cosim.experiment.experiment_from_dict` validates a YAML mapping (every error names the
file, the field, the bad value and what was expected) and builds an `ExperimentConfig`;
the runner reads typed attributes (`exp.hw.name`, `exp.accuracy.tokens`) instead of
passing dicts around. `to_dict()` gives back the plain mapping, key for key the format
that sweeps hash and store (so a sweep's hash and its saved configs do not change).

Mappings inside (hardware overrides, a parallel layout, serving options) are held as
tuples of (key, value) pairs so that the tree is immutable; `*_dict()` methods give
fresh dicts to the code that takes keyword mappings.
"""

from __future__ import annotations

import copy
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

__all__ = ["HwRef", "AccuracyConfig", "ExperimentConfig", "CONFIG_FIELDS", "config_defaults"]


def _pairs(mapping) -> tuple:
    """A mapping as a tuple of (key, deep-copied value) pairs, in its order."""
    return tuple((k, copy.deepcopy(v)) for k, v in (mapping or {}).items())


@dataclass(frozen=True)
class HwRef:
    """The device: a bundled name or an absolute path, and dotted-path overrides
    (``memory.hbm.bandwidth: 4 TB/s``) as written (units are parsed by the loader)."""
    name: str
    overrides: tuple = ()  # ((dotted path, value), ...)

    def overrides_dict(self) -> dict:
        return {k: copy.deepcopy(v) for k, v in self.overrides}

    def to_dict(self) -> dict:
        return {"name": self.name, "overrides": self.overrides_dict()}


@dataclass(frozen=True)
class AccuracyConfig:
    """The functional accuracy check: per-op SQNR on sampled layers/rows/tokens, and
    optionally a real checkpoint run end to end on text (perplexity delta, KL, top-1)."""
    source: str = "synthetic"  # or an absolute path to .safetensors weights
    layers: int = 2
    rows: int = 128
    tokens: int = 8
    seed: int = 0
    checkpoint: str | None = None  # bundled checkpoint name or absolute path
    text: str | None = None
    prefill: int | None = None

    @property
    def weights_path(self) -> str | None:
        """The weights file/directory of the per-op check; None for synthetic tensors."""
        return None if self.source == "synthetic" else self.source

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ExperimentConfig:
    """A validated, fully-resolved experiment (paths absolute, defaults filled)."""
    model: str  # bundled name or absolute path
    hw: HwRef
    name: str = "experiment"
    phase: str = "decode"
    batch: int = 1
    seq: int = 2048
    weights: str = "bf16"
    acts: str = "bf16"
    kv: str = "bf16"
    recipe: str | None = None
    attention: str = "fused"
    profile: str | None = None  # implementation profile (workloads/profiles.py), e.g. engine+cudnn
    level: str = "roofline"
    compute_fallback: bool = False
    accuracy: AccuracyConfig | None = None
    output: str | None = None
    system: str | None = None
    parallel: tuple | None = None  # ((axis, ranks), ...) e.g. (("tp", 8),)
    serve: tuple | None = None  # ((ServeConfig field, value), ...)
    allow_beyond_max_context: bool = False  # in the mapping only when true (store keys unchanged)
    prompt_len: int | None = None  # a decode step's prompt share of seq; in the mapping only when set (keys unchanged)
    source: str = field(default="<experiment>", compare=False)
    base_dir: Path = field(default_factory=Path.cwd, compare=False)
    # the file named no `weights`: the format is its model's declared one (config.json quantization_config),
    # so a sweep point with another model takes that model's (cosim.dse.runner); not a config field
    weights_from_model: bool = field(default=False, compare=False)

    @classmethod
    def from_dict(cls, cfg: dict, source: str = "<experiment>", base_dir: Path | None = None,
                  weights_from_model: bool = False) -> "ExperimentConfig":
        """From an already validated mapping (see cosim.experiment.experiment_from_dict)."""
        kw = {k: cfg[k] for k in CONFIG_FIELDS if k in cfg}
        kw["hw"] = HwRef(cfg["hw"]["name"], _pairs(cfg["hw"].get("overrides")))
        kw["accuracy"] = None if cfg.get("accuracy") is None else AccuracyConfig(**cfg["accuracy"])
        kw["parallel"] = None if cfg.get("parallel") is None else _pairs(cfg["parallel"])
        kw["serve"] = None if cfg.get("serve") is None else _pairs(cfg["serve"])
        kw["allow_beyond_max_context"] = bool(cfg.get("allow_beyond_max_context", False))
        kw["prompt_len"] = cfg.get("prompt_len")
        return cls(**kw, source=source, base_dir=Path(base_dir) if base_dir else Path.cwd(),
                   weights_from_model=weights_from_model)

    def parallel_dict(self) -> dict:
        return {k: copy.deepcopy(v) for k, v in self.parallel or ()}

    @property
    def layout(self):
        """The parallel layout as `workloads.parallel.Layout` (None without one)."""
        if self.parallel is None:
            return None
        from workloads.parallel import parse_layout
        return parse_layout(self.parallel_dict(), source=f"{self.source}: parallel")

    def serve_dict(self) -> dict:
        return {k: copy.deepcopy(v) for k, v in self.serve or ()}

    def to_dict(self) -> dict:
        """The plain mapping (the format sweeps hash and store): every config field, hw as
        {name, overrides}, accuracy as a mapping or None, parallel/serve as mappings or None."""
        d = {}
        for k in CONFIG_FIELDS:
            v = getattr(self, k)
            if k == "hw":
                v = v.to_dict()
            elif k == "accuracy":
                v = None if v is None else v.to_dict()
            elif k == "parallel":
                v = None if v is None else self.parallel_dict()
            elif k == "serve":
                v = None if v is None else self.serve_dict()
            d[k] = v
        if self.allow_beyond_max_context:
            d["allow_beyond_max_context"] = True
        if self.prompt_len is not None:
            d["prompt_len"] = self.prompt_len
        return d

    @property
    def config(self) -> dict:
        """The plain mapping (`to_dict()`), for code that reads experiments as dicts."""
        return self.to_dict()


# the configuration fields in file order (source and base_dir say where it came from)
CONFIG_FIELDS = ("name", "model", "phase", "batch", "seq", "weights", "acts", "kv", "recipe", "attention",
                 "profile", "hw", "level", "compute_fallback", "accuracy", "output", "system", "parallel", "serve")


def config_defaults() -> dict:
    """Every config field with its default (None for the required model and hw), in file order."""
    dflt = {f.name: (f.default if f.default is not MISSING else None) for f in fields(ExperimentConfig)}
    return {k: dflt[k] for k in CONFIG_FIELDS}
