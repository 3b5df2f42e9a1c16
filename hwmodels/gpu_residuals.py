"""Measured-residual correction of the analytical GPU model (issue 11, rounds 9 and 10).

The fitted analytical terms price a kernel smoothly in its shape; the kernel library's tile and dispatch choices
make the measured time wobble around that curve, and a shape's error is close to its measured neighbours' errors.
The calibration therefore stores, per op class, the log-residual log(measured / analytical) of every reliable fit
row, and prices an op as the analytical time times exp(weighted mean residual of its K nearest fit rows), nearest
in log2 shape space among rows of the same class, kind and shape names. Which classes are corrected, and with what
K, was chosen on the fit rows (leave one fit suite out: validation/model_selection/s19_residual_candidates.txt; round
11, s20_residual_candidates.txt, chose the attention classes' rules). Round 11 adds two rule forms for attention:
`by_alignment` compares only fit rows whose KV length has the op's row alignment (a row of kv_len 16-bit elements
starts on a multiple of 2 x gcd(kv_len, 8) bytes; Hugging Face eager attention's score GEMMs and passes lose their
16-byte vector loads on unaligned rows, and how much depends on that alignment), and `k: all` takes the plain mean
residual of every comparable fit row (one number per kind and alignment class).

An op with no such neighbours (another kind, a batched GEMM, a sliding-window attention, a stored format no fit row
of its class has, a shape outside the fit rows' range, fewer than K rows) keeps the analytical price and says why
(`ResidualTable.correction` returns the reason). A GPU whose calibration is transferred from a sibling carries no
table: the selection did not test residuals across GPUs.
"""

from __future__ import annotations

import csv
import math
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hwmodels.gpu_params import ATTN_BACKENDS
from hwmodels.spec_data import HardwareError

# the shape features of each op family: what the fit rows vary (microbench); every feature must be a positive number
FEATURES = {"gemm": ("m", "n", "k"),
            "attention": ("batch", "heads", "kv_heads", "q_len", "kv_len", "head_dim"),
            "elementwise": ("rows", "cols")}
ROPE_KINDS = ("rope", "rope_fused")  # rope rows also vary the number of rotated tensors
DEFAULTS = {"tensors": 2}  # a rope op without the field rotates q and k: hwmodels.gpu prices it so
TABLE_FIELDS = ("cls", "kind", "features", "log_residual")
WEIGHT_OFFSET = 0.25  # inverse-distance weights 1 / (d + 0.25): an exact match weighs 4x a row one octave away
# the measurement classes a rule may name (hwmodels.gpu.residual_class's names: a typo would never be looked up)
CLASSES = (("gemm_bf16", "gemm_fp8")
           + tuple(f"attention_{ph}{b}" for ph in ("prefill", "decode") for b in ("",) + tuple(f"_{x}" for x in
                                                                                           ATTN_BACKENDS))
           + ("elementwise",))
RULE_KEYS = ("k", "shrink", "by_alignment")
KV_ALIGN_MAX = 8  # elements: 8 x 2 bytes = the 16-byte vector load (the alignment classes are 1, 2, 4, 8)
BLOCK_KEYS = ("table", "rows", "selection", "classes")  # what cosim calibrate writes in residual_correction
LOADER_KEYS = ("path", "calibration")  # added by the hardware loader only (hwmodels.spec._merge_calibration)
CACHE_SIZE = 65536  # lookups remembered per table file version (least recently used dropped first)


@dataclass(frozen=True)
class ClassRule:
    k: int | None  # neighbours averaged (inverse-distance weights); None: the plain mean of every comparable row
    shrink: bool  # correction x exp(-distance to the nearest row): far shapes fall back to the analytical price
    by_alignment: bool = False  # attention: compare only rows whose kv_len has the op's row alignment

    def __post_init__(self):
        if self.k is not None and (isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1):
            raise ValueError(f"ClassRule.k: got {self.k!r}; expected a positive integer or None (every row)")


def kv_alignment(kv_len) -> np.ndarray | int:
    """The row alignment class of a KV length, in elements: the largest power of two up to 8 dividing it."""
    n = np.asarray(kv_len).astype(np.int64)
    return np.minimum(KV_ALIGN_MAX, n & -n)


@dataclass(frozen=True)
class Correction:
    factor: float  # multiplies the analytical isolated time


@dataclass
class ResidualTable:
    rules: dict  # measurement class -> ClassRule
    groups: dict  # (class, kind, feature names) -> (X: (n, f) log2 features, r: (n,) log residuals)
    source: str  # the table file read (bundled tables as cosim/configs/..., others resolved)
    # lookups, shared by every table read from one file version; at most CACHE_SIZE, least recently used dropped
    _cache: OrderedDict = field(default_factory=OrderedDict, repr=False)

    def correction(self, cls: str, kind: str, dims: dict, formats=()) -> Correction | str:
        """The correction of one op, or the reason it has none. `formats`: the op's compute format and the formats
        it stores its weights or KV cache in, scale tensors aside (hwmodels.gpu.stored_formats)."""
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
            if len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return hit

    def _lookup(self, cls, kind, names, x, rule):
        group = self.groups.get((cls, kind, names))
        what = f"{cls} {kind}"
        if group is not None and rule.by_alignment:
            if "kv_len" not in names:
                return f"{what}: by_alignment needs a kv_len shape field"
            i = names.index("kv_len")
            a = int(kv_alignment(int(round(x[i]))))
            same = kv_alignment(np.rint(np.exp2(group[0][:, i]))) == a
            group, what = (group[0][same], group[1][same]), f"{what} (kv_len aligned to {a})"
        need = rule.k or 1
        if group is None or len(group[1]) < need:
            n = 0 if group is None else len(group[1])
            return f"{n} measured {what} rows (the correction needs {need})"
        X, r = group
        q = np.log2(x)
        # the correction interpolates between measured shapes, never extrapolates: a shape outside the fit rows'
        # range in any dimension keeps the analytical price (a review finding: far shapes were corrected at full K)
        outside = [n for n, v, lo, hi in zip(names, q, X.min(axis=0), X.max(axis=0)) if not lo - 1e-9 <= v <= hi + 1e-9]
        if outside:
            return f"{', '.join(outside)} outside the measured {what} rows' range"
        d = np.sqrt(((X - q) ** 2).sum(axis=1))
        o = np.argsort(d, kind="stable")[:rule.k]
        if rule.k is None:  # every comparable row, equally weighted
            c = float(r.mean())
        else:
            w = 1.0 / (d[o] + WEIGHT_OFFSET)
            c = float((r[o] * w).sum() / w.sum())
        if rule.shrink:
            c *= float(np.exp(-d[o[0]]))
        return Correction(factor=float(np.exp(c)))


# the formats each class's fit rows compute in and store (microbench: bf16 F.linear, fp8 _scaled_mm with fp8 weights,
# attention on a bf16 KV cache); elementwise rows are bf16 too but carry no stored operand
MEASURED_FORMATS = {"gemm_bf16": ("bf16",), "gemm_fp8": ("fp8_e4m3",), "attention": ("bf16",)}


def unmeasured_structure(cls: str, dims: dict, formats=()) -> str:
    """A structure no fit row has (its residuals would not be its neighbours'), or ''."""
    measured = MEASURED_FORMATS.get("attention" if cls.startswith("attention") else cls)
    odd = sorted(set(formats) - set(measured)) if measured else []
    if odd:
        return f"{'/'.join(odd)} operands (every {cls} fit row computes in and stores {'/'.join(measured)})"
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
            # 12 significant digits: a shape size is written exactly (its alignment class must survive the round trip)
            w.writerow([cls, kind, ";".join(f"{k}={v:.12g}" for k, v in feats.items()), f"{r:.5f}"])
            n += 1
    return n


def _parse_rules(raw, src, block="analytical.residual_correction"):
    """`block`: the field path of the residual_correction block in `src` (top level in a calibration file)."""
    if not isinstance(raw, dict) or not raw:
        raise HardwareError(f"{src}: {block}.classes: got {raw!r}; expected a mapping "
                            f"class -> {{k: <neighbours>, shrink: true|false}}")
    rules = {}
    for cls, spec in raw.items():
        if cls not in CLASSES:
            raise HardwareError(f"{src}: {block}.classes: got class {cls!r}; expected one of "
                                f"{', '.join(CLASSES)}")
        field_ = f"{block}.classes.{cls}"
        if not isinstance(spec, dict):
            raise HardwareError(f"{src}: {field_}: got {spec!r}; expected a mapping {{k: <neighbours>, "
                                f"shrink: true|false}}")
        unknown = [key for key in spec if key not in RULE_KEYS]
        if unknown:
            raise HardwareError(f"{src}: {field_}: got key {unknown[0]!r}; expected only {', '.join(RULE_KEYS)}")
        k = spec.get("k")
        if k != "all" and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
            raise HardwareError(f"{src}: {field_}.k: got {k!r}; expected a positive integer (neighbours averaged) or "
                                f"'all' (the plain mean of every comparable row)")
        shrink = spec.get("shrink", False)
        if not isinstance(shrink, bool):
            raise HardwareError(f"{src}: {field_}.shrink: got {shrink!r}; expected true or false")
        by_alignment = spec.get("by_alignment", False)
        if not isinstance(by_alignment, bool) or (by_alignment and not cls.startswith("attention")):
            shown = str(by_alignment).lower() if isinstance(by_alignment, bool) else repr(by_alignment)
            raise HardwareError(f"{src}: {field_}.by_alignment: got {shown}; expected true or false, and "
                                f"true only for an attention class (the KV length's alignment)")
        rules[cls] = ClassRule(k=None if k == "all" else k, shrink=shrink, by_alignment=by_alignment)
    return rules


def load(sec: dict, src: str) -> ResidualTable:
    """`analytical.residual_correction` ({table: <csv beside the calibration>, classes: {...}}) -> ResidualTable;
    every problem names the file and field. The table is the hardware loader's resolved `path` (beside the
    calibration file it names in `calibration`), else, when `src` is the calibration file itself (parse_section
    of a file read directly), the table beside it: never a file of that name in the current directory."""
    if not isinstance(sec, dict):
        raise HardwareError(f"{src}: analytical.residual_correction: got {sec!r}; expected a mapping with table "
                            f"and classes")
    unknown = [k for k in sec if k not in BLOCK_KEYS + LOADER_KEYS]
    # a calibration file read directly (src is that file) carries no loader key: its `path` would be read from the CWD
    if unknown or ("path" in sec and "calibration" not in sec and Path(src).is_file()):
        bad = unknown[0] if unknown else "path"
        raise HardwareError(f"{src}: analytical.residual_correction: got key {bad!r}; expected only "
                            f"{', '.join(BLOCK_KEYS)} (the table's path is resolved beside the calibration)")
    # a bad rule is named in the calibration file that holds it (the hardware loader says which), at its top level
    if isinstance(sec.get("calibration"), str):
        rules = _parse_rules(sec.get("classes"), sec["calibration"], "residual_correction")
    else:
        rules = _parse_rules(sec.get("classes"), src)
    table = sec.get("table")
    field_ = "analytical.residual_correction.table"
    if not isinstance(table, str) or not table.strip():
        raise HardwareError(f"{src}: {field_}: got {table!r}; expected the name of the CSV file beside the "
                            f"calibration (written by `cosim calibrate`)")
    if isinstance(sec.get("path"), str):  # resolved by the hardware loader (hwmodels.spec._merge_calibration)
        path, cal = Path(sec["path"]), sec.get("calibration") or src
    elif Path(src).is_file():
        path, cal = Path(src).parent / table, src
    else:
        raise HardwareError(f"{src}: {field_}: got {table!r}, but {src!r} is not a calibration file the table "
                            f"could be beside (no path resolved by the hardware loader); expected a calibration "
                            f"read from its file")
    if not path.is_file():
        raise HardwareError(f"{src}: {field_}: got {table!r}; tried {path} (beside the calibration {cal}): no such "
                            f"file; expected the CSV `cosim calibrate` wrote beside the calibration")
    return _read_table(str(path), rules)


def shown_path(path) -> str:
    """A table's path as provenance names it: a bundled one relative to the project (cosim/configs/...), which
    reads the same on every checkout; any other resolved."""
    from workloads.io import InputError, bundled_root

    p = Path(path).resolve()
    try:
        return (Path("cosim") / "configs" / p.relative_to(bundled_root().resolve())).as_posix()
    except (ValueError, InputError):  # outside the bundle, or no bundle installed: the resolved path
        return str(p)


_TABLES: OrderedDict = OrderedDict()  # (path, mtime, size) -> (groups, lookup cache): read once per file version
_TABLE_VERSIONS = 16  # file versions kept (a rewritten table is a new version; the oldest is dropped)


def _bad(path, line, field_, value, expected):
    return HardwareError(f"{path}: line {line}: {field_}: got {value!r}; expected {expected}")


def _parse_row(path, line, row) -> tuple:
    """(feature names, log2 features, log residual) of one table row; every bad value named."""
    feats = {}
    for item in (row.get("features") or "").split(";"):
        name, eq, value = item.partition("=")
        if not eq or not name or name in feats:
            raise _bad(path, line, "features", row.get("features"), "name=value;... with each name once")
        try:
            v = float(value)
        except ValueError:
            v = None
        if v is None or not math.isfinite(v) or not v > 0:
            raise _bad(path, line, f"features.{name}", value, "a positive finite number (a shape size)")
        feats[name] = v
    try:
        r = float(row.get("log_residual"))
    except (TypeError, ValueError):
        r = None
    if r is None or not math.isfinite(r):
        raise _bad(path, line, "log_residual", row.get("log_residual"), "a finite number (log(measured / analytical))")
    return tuple(feats), [float(np.log2(v)) for v in feats.values()], r


def _as_arrays(acc: dict) -> dict:
    return {k: (np.array(X, dtype=float), np.array(r, dtype=float)) for k, (X, r) in acc.items()}


def groups_of(rows) -> dict:
    """A table's groups from rows (class, kind, {feature: value}, log residual), as write_table takes them: model
    selection builds leave-one-suite-out tables in memory with the lookup the model uses."""
    acc: dict = {}
    for cls, kind, feats, r in rows:
        X, res = acc.setdefault((cls, kind, tuple(feats)), ([], []))
        X.append([float(np.log2(v)) for v in feats.values()])
        res.append(float(r))
    return _as_arrays(acc)


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
                names, x, r = _parse_row(path, line, row)
                if row["cls"] not in CLASSES:
                    raise _bad(path, line, "cls", row["cls"], f"one of {', '.join(CLASSES)}")
                if names != feature_names(row["kind"], row["cls"]):
                    raise _bad(path, line, "features", row["features"],
                               f"the {row['cls']} {row['kind']} shape fields {', '.join(feature_names(row['kind'], row['cls']))}")
                acc.setdefault((row["cls"], row["kind"], names), ([], []))
                acc[(row["cls"], row["kind"], names)][0].append(x)
                acc[(row["cls"], row["kind"], names)][1].append(r)
        _TABLES[key] = (_as_arrays(acc), OrderedDict())
        while len(_TABLES) > _TABLE_VERSIONS:
            _TABLES.popitem(last=False)
    groups, cache = _TABLES[key]
    return ResidualTable(rules=rules, groups=groups, source=shown_path(path), _cache=cache)
