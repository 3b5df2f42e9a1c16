"""Reports: per-op rows and totals of one simulated trace."""

from __future__ import annotations

import json
import math

from cosim import jsonio
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Report", "priced_from_line"]

COLUMNS = ["op", "kind", "phase", "group", "repeat", "compute_fmt", "flops", "bytes", "intensity",
           "bound", "latency_s", "energy_j", "utilization", "share", "provenance", "level"]
# What priced the report, as constant columns after the per-op ones in its CSV (the JSON's totals carry the
# same): CSVs of many runs concatenate into one tidy table. The rows' own `phase` and `level` are per op
# (the level that priced each op); the level asked for is `level_requested`.
# `batch` is the user's (a parallel layout's global) batch; `trace_batch` the sequences the per-op rows price (one
# device's micro-batch in a parallel run, else the batch).
INPUT_COLUMNS = ["model", "hw", "level_requested", "batch", "trace_batch", "seq", "prompt_len", "weights", "acts", "kv",
                 "recipe", "attention", "profile", "parallel", "compute_fallback", "overlap"]


# report.json layout; raised when a key changes meaning or goes (keys are only ever added). 2 (session 17): a
# parallel run's totals.batch, tokens_per_s and energy_per_token_j are the whole layout's (were one device's trace)
SCHEMA_VERSION = 2
ROWS_ARE = ("per-op totals over each op's repeat: an op repeated over 32 layers reports 32 layers' FLOPs, bytes, "
            "latency and energy (do not multiply by repeat again)")


def json_header() -> dict:
    """What every report JSON (cosim run, roofline --out, generate --out) starts with: its schema version, the
    cosim package version, the git commit of the code that wrote it (calibrate's git_state: "unknown: <why>"
    outside a checkout) and what a row's values are."""
    from cosim.version import __version__
    return {"schema_version": SCHEMA_VERSION, "cosim_version": __version__, "git_commit": git_commit(),
            "rows_are": ROWS_ARE}


def priced_from_line(provenance) -> str:
    """The header line that names what priced a result (issue 11: no silent fallback), the same in simulate,
    serve, generate and plan: the first three provenance texts, then how many more; '' for none."""
    prov = list(dict.fromkeys(p for p in provenance if p))
    if not prov:
        return ""
    return "priced from: " + "; ".join(prov[:3]) + (f" (+{len(prov) - 3} more)" if len(prov) > 3 else "")


def git_commit() -> str:
    """The git commit of this checkout's code, with " (modified tracked files)" when tracked files differ from
    it, or "unknown: <why>" outside a checkout (calibrate's git_state); looked up once per process. The one
    commit label of cosim's outputs: report JSON headers and the benchmarks' result files."""
    if _GIT:
        return _GIT[0]
    from cosim.calibrate.microbench import git_state
    st = git_state(src_dir=str(Path(__file__).parent), probe="report.py")
    commit = st["git_commit"] + (" (modified tracked files)" if st.get("git_dirty") else "")
    _GIT.append(commit)
    return commit


_GIT: list = []  # one look per process


def _column_total(key: str) -> property:
    """A Report property: the sum of one per-op column (a float)."""
    return property(lambda self: float(sum(self._column(key))), doc=f"sum of the per-op {key} column")


class MemoryFit:
    """`footprint` (part -> bytes) against `capacity_bytes`: what a result that reports memory fit shares."""

    footprint: dict
    capacity_bytes: float

    @property
    def memory_bytes(self) -> float:
        return float(sum(self.footprint.values()))

    @property
    def fits_in_memory(self) -> bool:
        return self.memory_bytes <= self.capacity_bytes


@dataclass
class Report(MemoryFit):
    """Result of `cosim.simulate`. Per-op figures in `rows` are totals over the op's
    `repeat` (an op repeated over 32 layers reports 32 layers' FLOPs, bytes, time)."""

    model: str
    hw: str
    level: str
    phase: str
    batch: int
    seq: int
    rows: list  # dicts with COLUMNS (+ extras such as accuracy metrics)
    footprint: dict  # weights / kv_cache / activations bytes
    capacity_bytes: float
    notes: tuple = ()
    recipe: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def global_batch(self) -> int:
        """The user's batch: a parallel layout's global batch, else the trace's (the per-device trace of a layout
        holds one micro-batch of one replica)."""
        return (self.meta.get("parallel") or {}).get("global_batch", self.batch)

    @classmethod
    def from_columns(cls, eager: dict, columns, **fields) -> "Report":
        """A report whose per-op rows are kept as columns and turned into row dicts only
        when `rows` is first read. `eager` holds the columns the totals need
        (latency_s, energy_j, flops, bytes: lists, one value per op); `columns()` returns
        every column (lists of equal length) and runs only for `rows` or `to_frame()`."""
        rep = object.__new__(cls)
        unknown = fields.keys() - _FIELDS
        if unknown:
            raise TypeError(f"Report.from_columns: unknown fields {sorted(unknown)}")
        rep.__dict__.update(_DEFAULTS)
        rep.__dict__.update(fields)
        if "meta" not in fields:
            rep.meta = {}
        rep._eager, rep._make_columns = eager, columns
        return rep

    def _all_columns(self) -> dict:
        cols = self.__dict__.get("_columns")
        if cols is None:
            cols = self._columns = self.__dict__["_make_columns"]()
        return cols

    def __getattr__(self, name):
        if name == "rows" and "_make_columns" in self.__dict__:
            cols = self._all_columns()
            keys = list(cols)
            self.rows = [dict(zip(keys, vals)) for vals in zip(*cols.values())]
            return self.rows
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __getstate__(self):
        # pickles and copies carry the rows, not the closure that would build them
        state = {k: v for k, v in self.__dict__.items() if not k.startswith("_")}
        state["rows"] = self.rows
        return state

    def _column(self, key: str) -> list:
        """One per-op column: from the columns while rows were never built (after that,
        from the rows, which a caller may have edited)."""
        if "rows" not in self.__dict__ and "_eager" in self.__dict__:
            return self.__dict__["_eager"][key]
        return [r[key] for r in self.rows]

    # ---- totals -----------------------------------------------------------
    total_latency_s = _column_total("latency_s")
    total_energy_j = _column_total("energy_j")
    total_flops = _column_total("flops")
    total_bytes = _column_total("bytes")

    @property
    def tokens(self) -> int:
        return self.batch * (self.seq if self.phase == "prefill" else 1)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.total_latency_s if self.total_latency_s else math.inf

    @property
    def energy_per_token_j(self) -> float:
        return self.total_energy_j / self.tokens

    def totals(self) -> dict:
        return {"model": self.model, "hw": self.hw, "level": self.level, "phase": self.phase,
                "batch": self.batch, "seq": self.seq, "recipe": self.recipe,
                "total_latency_s": self.total_latency_s, "total_energy_j": self.total_energy_j,
                "total_flops": self.total_flops, "total_bytes": self.total_bytes,
                "tokens_per_s": self.tokens_per_s, "energy_per_token_j": self.energy_per_token_j,
                "footprint_bytes": dict(self.footprint), "memory_bytes": self.memory_bytes,
                "capacity_bytes": self.capacity_bytes, "fits_in_memory": self.fits_in_memory,
                "notes": list(self.notes), **{k: v for k, v in self.meta.items() if _jsonable(v)},
                **self._layout_totals()}

    def _layout_totals(self) -> dict:
        """A parallel layout's report: `batch`, `tokens_per_s` and `energy_per_token_j` are the whole layout's (the
        user's global batch; what `cosim sweep`, `cosim plan` and the `layout:` line give), `system_*` the same
        step's, `replica_*` one data-parallel replica's (system / dp), and the per-op sums `total_*` with
        `trace_*` / `device_energy_per_token_j` one device's micro-batch trace of `trace_batch` sequences."""
        par = self.meta.get("parallel") or {}
        if "system_energy_per_token_j" not in par:
            return {}
        dp = int(par.get("dp", 1))
        return {"totals_scope": ("batch, tokens_per_s, energy_per_token_j and system_*: the whole layout's step "
                                 f"({par.get('label')}, global batch {par['global_batch']}); replica_*: one of the "
                                 f"{dp} data-parallel replicas (system / dp); total_* (sums of the per-op rows), "
                                 f"trace_tokens_per_s and device_energy_per_token_j: one device's micro-batch trace "
                                 f"of trace_batch = {self.batch} sequences"),
                "batch": par["global_batch"], "trace_batch": self.batch, "replica_batch": par["global_batch"] // dp,  # check_layout: dp x micro-batches divides it
                "tokens_per_s": par["layout_tokens_per_s"], "energy_per_token_j": par["system_energy_per_token_j"],
                "replica_tokens_per_s": par["layout_tokens_per_s"] / dp,
                "trace_tokens_per_s": self.tokens_per_s, "device_energy_per_token_j": self.energy_per_token_j,
                "system_energy_per_token_j": par["system_energy_per_token_j"],
                "system_energy_j": par["system_energy_j"], "system_tokens_per_s": par["layout_tokens_per_s"],
                "system_step_latency_s": par.get("step_latency_s")}

    # ---- export -------------------------------------------------------------
    def _lazy(self) -> bool:
        """Rows still kept as columns (`from_columns`, `rows` never read)."""
        return "rows" not in self.__dict__ and "_make_columns" in self.__dict__

    def _frame_columns(self) -> list:
        """The exported column order (to_frame, to_csv): COLUMNS, then every other key in
        the order first seen."""
        keys = list(self._all_columns()) if self._lazy() else [k for r in self.rows for k in r]
        return COLUMNS + list(dict.fromkeys(k for k in keys if k not in COLUMNS))

    def to_frame(self):
        import pandas as pd

        names = self._frame_columns()
        if self._lazy():
            cols = self._all_columns()
            return pd.DataFrame({k: list(cols[k]) if k in cols else [None] * len(cols["op"]) for k in names})
        return pd.DataFrame(self.rows, columns=names)

    def to_dict(self) -> dict:
        return {**json_header(), "totals": self.totals(), "ops": [export_row(r) for r in self.rows]}

    def to_json(self, path: str | Path | None = None) -> str:
        text = jsonio.dumps(self.to_dict(), indent=1, default=_default)  # NaN (a skipped figure) -> null
        if path:
            Path(path).write_text(text)
        return text

    def inputs(self) -> dict:
        """The run's inputs, one value each (INPUT_COLUMNS): the CSV's constant columns. None where the
        report does not know one (a report read back from JSON keeps its formats only)."""
        fm = self.meta.get("formats") or {}
        pin = self.meta.get("inputs") or {}
        par = self.meta.get("parallel") or {}
        return {"model": self.model, "hw": self.hw, "level_requested": self.meta.get("level_requested", self.level),
                "batch": self.global_batch, "trace_batch": self.batch, "seq": self.seq,
                "prompt_len": self.meta.get("prompt_len"),  # a decode step's prompt share (None: all of seq)
                "weights": fm.get("weights"), "acts": fm.get("acts"),
                "kv": fm.get("kv"), "recipe": self.recipe or None, "attention": pin.get("attention"),
                "profile": pin.get("profile"), "parallel": par.get("label"),
                "compute_fallback": pin.get("compute_fallback"), "overlap": pin.get("overlap")}

    def to_csv(self, path: str | Path | None = None) -> str:
        """The per-op rows (COLUMNS, then the other keys the rows hold), then the inputs as constant columns
        (INPUT_COLUMNS), so CSVs of many runs concatenate into one table (`pandas.concat` of `read_csv`s)."""
        inputs = self.inputs()
        names = self._frame_columns()
        clash = [k for k in inputs if k in names]
        if clash:  # a row key would be shadowed by an input column: never silently
            raise ValueError(f"report CSV: per-op column(s) {clash} clash with the input columns {INPUT_COLUMNS}")
        text = None
        if not self._lazy():  # rows of dicts: no pandas needed
            from cosim.table_csv import rows_to_csv
            # counts as the rows hold them: the CSV writer prints a column with any float as floats already
            text = rows_to_csv([{**export_row(r, floats=False), **inputs} for r in self.rows], names + INPUT_COLUMNS)
        if text is None:
            df = self.to_frame()
            if "intensity" in df:  # export_row's rule, column-wise
                df["intensity"] = df["intensity"].astype(float).replace([math.inf, -math.inf], math.nan)
            for k, v in inputs.items():
                df[k] = [v] * len(df)
            text = df.to_csv(index=False)
        if path:
            Path(path).write_text(text)
        return text

    @classmethod
    def load(cls, path: str | Path) -> "Report":
        """Read a report written by `to_json` / `save(".json")`."""
        from workloads.io import InputError

        path = Path(path)
        try:
            data = json.loads(path.read_text())
            t = data["totals"]
            # the rows price trace_batch sequences (a parallel run's device trace; older files: batch)
            return cls(model=t["model"], hw=t["hw"], level=t["level"], phase=t["phase"],
                       batch=t.get("trace_batch", t["batch"]),
                       seq=t["seq"], rows=_numbers_back(data["ops"]), footprint=t["footprint_bytes"],
                       capacity_bytes=t["capacity_bytes"], notes=tuple(t.get("notes", ())),
                       recipe=t.get("recipe", ""), meta={"formats": t.get("formats", {}),
                                                         **({"prompt_len": t["prompt_len"]} if t.get("prompt_len")
                                                            else {})})
        except FileNotFoundError:
            raise InputError(f"{path}: no such report file") from None
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise InputError(f"{path}: not a cosim report JSON ({type(e).__name__}: {e}); "
                             f"expected the output of `cosim roofline --out report.json`") from None

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        if path.suffix.lower() == ".json":
            self.to_json(path)
        elif path.suffix.lower() == ".csv":
            self.to_csv(path)
        else:
            from workloads.io import InputError
            raise InputError(f"{path}: report output must end in .csv or .json, got {path.suffix!r}")
        return path


def export_row(r: dict, floats: bool = True) -> dict:
    """One rule for a row in every file (CSV, JSON): FLOP and byte counts are floats (an int 0 from a recipe's op
    too), and the intensity of an op that moves no off-chip bytes is not a number (FLOP per byte is undefined
    there; in memory it is inf): null in JSON, empty in CSV, "n/a" in the terminal and the page."""
    out = dict(r)
    for k, v in (r.items() if floats else ()):
        if (k in ("flops", "bytes") or k.startswith("bytes_")) and isinstance(v, int) and not isinstance(v, bool):
            out[k] = float(v)
    inten = r.get("intensity")
    if isinstance(inten, (int, float)) and math.isinf(inten):
        out["intensity"] = math.nan
    return out


def _jsonable(v) -> bool:
    return isinstance(v, (str, int, float, bool, list, dict, type(None)))


def _default(o):
    """A value json cannot write: a numpy scalar as its number (jsonio.dumps then writes a non-finite one as
    null), anything else as its text."""
    if hasattr(o, "item"):
        return o.item()
    return str(o)


_NUMERIC = ("repeat", "flops", "bytes", "intensity", "latency_s", "energy_j", "utilization", "share")


def _numbers_back(rows: list) -> list:
    """Rows read from a report JSON: null in a numeric column (a NaN figure when written, e.g. the energy of
    a device spec without energy data) back as NaN, so sums and plots read it as a number."""
    numeric = set(_NUMERIC) | {k for r in rows if isinstance(r, dict) for k, v in r.items()
                               if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return [{k: (jsonio.nan_if_null(v) if k in numeric else v) for k, v in r.items()} if isinstance(r, dict) else r
            for r in rows]


_FIELDS = frozenset(Report.__dataclass_fields__) - {"rows"}
_DEFAULTS = {"notes": (), "recipe": ""}
