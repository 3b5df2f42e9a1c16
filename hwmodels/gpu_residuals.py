"""Measured-residual correction of the analytical GPU model (issue 11, round 9).

The fitted analytical terms price a kernel smoothly in its shape; the kernel library's tile and dispatch choices
make the measured time wobble around that curve, and a shape's error is close to its measured neighbours' errors.
The calibration therefore stores, per op class, the log-residual log(measured / analytical) of every reliable fit
row, and prices an op as the analytical time times exp(weighted mean residual of its K nearest fit rows), nearest
in log2 shape space among rows of the same class, kind and shape names. Which classes are corrected, and with what
K, was chosen on the fit rows (leave one fit suite out: validation/model_selection/s18_residual_candidates.txt).

An op with no such neighbours (another kind, a batched GEMM, a sliding-window attention, fewer than K rows) keeps
the analytical price and says so (`why_not`). A GPU whose calibration is transferred from a sibling carries no
table: the selection did not test residuals across GPUs.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hwmodels.spec import HardwareError

# the shape features of each op family: what the fit rows vary (microbench); every feature must be a positive number
FEATURES = {"gemm": ("m", "n", "k"),
            "attention": ("batch", "heads", "kv_heads", "q_len", "kv_len", "head_dim"),
            "elementwise": ("rows", "cols")}
ROPE_KINDS = ("rope", "rope_fused")  # rope rows also vary the number of rotated tensors
DEFAULTS = {"tensors": 2}  # a rope op without the field rotates q and k: hwmodels.gpu prices it so
TABLE_FIELDS = ("cls", "kind", "features", "log_residual")
WEIGHT_OFFSET = 0.25  # inverse-distance weights 1 / (d + 0.25): an exact match weighs 4x a row one octave away


@dataclass(frozen=True)
class ClassRule:
    k: int  # neighbours averaged
    shrink: bool  # correction x exp(-distance to the nearest row): far shapes fall back to the analytical price


@dataclass(frozen=True)
class Correction:
    factor: float  # multiplies the analytical isolated time
    neighbours: int
    nearest_octaves: float  # log2 distance to the nearest fit row


@dataclass
class ResidualTable:
    rules: dict  # measurement class -> ClassRule
    groups: dict  # (class, kind, feature names) -> (X: (n, f) log2 features, r: (n,) log residuals)
    source: str
    _cache: dict = field(default_factory=dict, repr=False)  # shared by every table read from one file version

    def correction(self, cls: str, kind: str, dims: dict, formats=()) -> Correction | str:
        """The correction of one op, or the reason it has none. `formats`: the formats the op stores its weights or
        KV cache in (a quantized one has no measured neighbour)."""
        rule = self.rules.get(cls)
        if rule is None:
            return f"class {cls} is not corrected (the selection kept the analytical price)"
        odd = unmeasured_structure(cls, dims, formats)
        if odd:
            return odd
        names = feature_names(kind, cls)
        x = features_of(dims, names)
        if x is None:
            return f"shape fields {', '.join(names)} not all positive numbers"
        key = (cls, kind, names, tuple(x), rule)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = self._lookup(cls, kind, names, x, rule)
        return hit

    def _lookup(self, cls, kind, names, x, rule):
        group = self.groups.get((cls, kind, names))
        if group is None or len(group[1]) < rule.k:
            n = 0 if group is None else len(group[1])
            return f"{n} measured {cls} {kind} rows (the correction needs {rule.k})"
        X, r = group
        q = np.log2(x)
        # the correction interpolates between measured shapes, never extrapolates: a shape outside the fit rows'
        # range in any dimension keeps the analytical price (a review finding: far shapes were corrected at full K)
        outside = [n for n, v, lo, hi in zip(names, q, X.min(axis=0), X.max(axis=0)) if not lo - 1e-9 <= v <= hi + 1e-9]
        if outside:
            return f"{', '.join(outside)} outside the measured {cls} {kind} rows' range"
        d = np.sqrt(((X - q) ** 2).sum(axis=1))
        o = np.argsort(d, kind="stable")[:rule.k]
        w = 1.0 / (d[o] + WEIGHT_OFFSET)
        c = float((r[o] * w).sum() / w.sum())
        if rule.shrink:
            c *= float(np.exp(-d[o[0]]))
        return Correction(factor=float(np.exp(c)), neighbours=int(rule.k), nearest_octaves=float(d[o[0]]))


MEASURED_FORMATS = ("bf16", "fp16", "fp8_e4m3")  # what the fit rows' GEMMs and KV caches store


def unmeasured_structure(cls: str, dims: dict, formats=()) -> str:
    """A structure no fit row has (its residuals would not be its neighbours'), or ''."""
    odd = sorted(set(formats) - set(MEASURED_FORMATS))
    if odd:
        return f"stored {'/'.join(odd)} (every fit row stores bf16 or fp8)"
    if cls.startswith("gemm"):
        if int(dims.get("b", 1) or 1) != 1:
            return "batched GEMM (every fit row is one GEMM)"
        if dims.get("experts"):
            return "MoE expert GEMM (every fit row is one dense GEMM)"
    if cls.startswith("attention"):
        if int(dims.get("window", 0) or 0):
            return "sliding-window attention (no fit row has a window)"
        if "v_head_dim" in dims and dims["v_head_dim"] != dims.get("head_dim"):
            return "value head dim differs from the key's (no fit row has one)"
        if cls.startswith("attention_prefill") and dims.get("q_len") != dims.get("kv_len"):
            return "prefill with q_len != kv_len (every fit prefill row attends to its own tokens only)"
    return ""


def feature_names(kind: str, cls: str) -> tuple:
    if cls.startswith("gemm"):
        return FEATURES["gemm"]
    if cls.startswith("attention"):
        return FEATURES["attention"]
    return FEATURES["elementwise"] + (("tensors",) if kind in ROPE_KINDS else ())


def features_of(dims: dict, names) -> tuple | None:
    vals = []
    for n in names:
        v = dims.get(n, DEFAULTS.get(n))
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
            return None
        vals.append(float(v))
    return tuple(vals)


def write_table(path: Path, rows) -> int:
    """rows: (class, kind, {feature: value}, log residual). The table a calibration names (a CSV beside it)."""
    n = 0
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(TABLE_FIELDS)
        for cls, kind, feats, r in rows:
            w.writerow([cls, kind, ";".join(f"{k}={v:g}" for k, v in feats.items()), f"{r:.5f}"])
            n += 1
    return n


def _parse_rules(raw, src):
    if not isinstance(raw, dict) or not raw:
        raise HardwareError(f"{src}: analytical.residual_correction.classes: got {raw!r}; expected a mapping "
                            f"class -> {{k: <neighbours>, shrink: true|false}}")
    rules = {}
    for cls, spec in raw.items():
        field_ = f"analytical.residual_correction.classes.{cls}"
        k = spec.get("k") if isinstance(spec, dict) else None
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise HardwareError(f"{src}: {field_}.k: got {k!r}; expected a positive integer (neighbours averaged)")
        shrink = spec.get("shrink", False)
        if not isinstance(shrink, bool):
            raise HardwareError(f"{src}: {field_}.shrink: got {shrink!r}; expected true or false")
        rules[cls] = ClassRule(k=k, shrink=shrink)
    return rules


def load(sec: dict, src: str) -> ResidualTable:
    """`analytical.residual_correction` ({table: <csv beside the calibration>, classes: {...}}, the table's path
    resolved by the hardware loader into `path`) -> ResidualTable; every problem names the file and field."""
    if not isinstance(sec, dict):
        raise HardwareError(f"{src}: analytical.residual_correction: got {sec!r}; expected a mapping with table "
                            f"and classes")
    rules = _parse_rules(sec.get("classes"), src)
    table = sec.get("table")
    # the loader's resolved path; else beside the calibration file read directly (src names it); else as given
    tries = [sec.get("path"), str(Path(src).parent / table) if isinstance(table, str) and Path(src).is_file()
             else None, table]
    path = next((t for t in tries if isinstance(t, str) and Path(t).is_file()), None)
    if path is None:
        raise HardwareError(f"{src}: analytical.residual_correction.table: got {sec.get('table')!r}; expected a "
                            f"CSV file beside the calibration (written by `cosim calibrate`)")
    return _read_table(path, rules)


_TABLES: dict = {}  # (path, mtime, size) -> (groups, lookup cache): read once per file version


def _read_table(path: str, rules: dict) -> ResidualTable:
    st = Path(path).stat()
    key = (str(Path(path).resolve()), st.st_mtime_ns, st.st_size)
    if key not in _TABLES:
        acc: dict = {}
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            if tuple(reader.fieldnames or ()) != TABLE_FIELDS:
                raise HardwareError(f"{path}: header: got {reader.fieldnames}; expected {list(TABLE_FIELDS)}")
            for line, row in enumerate(reader, start=2):
                try:
                    feats = dict(item.split("=") for item in row["features"].split(";"))
                    names = tuple(feats)
                    x = [np.log2(float(feats[n])) for n in names]
                    r = float(row["log_residual"])
                except (ValueError, KeyError, AttributeError) as e:
                    raise HardwareError(f"{path}: line {line}: features / log_residual: got {row!r}; expected "
                                        f"name=value;... and a number ({e})") from None
                acc.setdefault((row["cls"], row["kind"], names), ([], []))
                acc[(row["cls"], row["kind"], names)][0].append(x)
                acc[(row["cls"], row["kind"], names)][1].append(r)
        _TABLES[key] = ({k: (np.array(X, dtype=float), np.array(r, dtype=float)) for k, (X, r) in acc.items()}, {})
    groups, cache = _TABLES[key]
    return ResidualTable(rules=rules, groups=groups, source=Path(path).name, _cache=cache)
