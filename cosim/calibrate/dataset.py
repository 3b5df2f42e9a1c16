"""Measurement CSVs (written by microbench.py) -> ops the models can estimate.

Each row of ``ops.csv`` carries its kind, format and dims as JSON, so the op is rebuilt
exactly (tensor shapes and formats follow workloads.builder's conventions). The split
into fit and held-out rows is by *suite*: the default suite (run 1) is fitted; the
held-out suite (run 2, ``--variant heldout``) has different shapes throughout: other
models' N/K (Qwen2.5-7B, Llama-2-13B, 70B), non-power-of-two M, square, sequence and
tensor sizes, other head configurations (28/4, 40/40) and contexts; its rows are
never seen by the fit.

A device's measured runs are kept once, as the raw microbench folders (<dir>/raw_<run>/ops.csv), and
listed in a run manifest, <dir>/<prefix>_runs.csv (columns run, suite; one line per run, in merge
order). ``load_ops`` reads a manifest as the merged table: every raw row of every listed run, in order,
with ``suite`` and ``run`` prepended (what ``merge_run`` used to append to <prefix>_ops.csv, byte for
byte: ``write_merged`` writes it out). A flat <prefix>_ops.csv (H100) is read as before.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

from cosim import jsonio
from workloads.io import InputError
from workloads.ops import Op, TensorSpec

__all__ = ["SUITES", "refuse_retired", "HELDOUT_SPLITS", "backend_of", "carve_validation", "merge_run", "merged_rows", "manifest_runs", "check_new_run", "run_files", "load_env", "write_merged", "is_manifest", "sibling", "Measurement", "load_ops", "load_energy", "load_e2e", "op_from_row", "op_class", "split_of",
           "reliable", "positive_time", "MAX_SPREAD"]

# A row whose repeats spread by more than half its median, (p90 - p10) / median > 0.5, was
# not timing the kernel alone: with the 256 MB flush (~85 us) a Python-heavy launch (the
# SDPA backend context manager) sometimes reached the GPU after the flush had finished, so
# the events timed host time as well (decode attention of 12 us read 37-90 us; the same
# shapes in the repeat run were tight). Such rows are excluded from fits and scores, and
# counted in every report. microbench.py now reads a 1 GiB flush and enters the SDPA
# context outside the timed launch.
MAX_SPREAD = 0.5


@dataclass(frozen=True)
class Measurement:
    op: Op
    cls: str  # gemm_bf16 | gemm_fp8 | attention_prefill[_<backend>] | attention_decode[_<backend>] | elementwise | launch
    time_s: float
    split: str  # fit | test | other
    suite: str
    impl: str
    row: dict
    reliable: bool = True


MANIFEST_FIELDS = ["run", "suite"]
# the columns every ops row is read by (p10_s/p90_s: the repeat-spread filter, `reliable`, judges every row by them;
# a CSV without them would silently score host-bound rows)
OPS_REQUIRED = ("kind", "median_s", "p10_s", "p90_s")


def is_manifest(path) -> bool:
    """A run manifest (<prefix>_runs.csv, or _runs inside the name as sibling() reads it: <prefix>_runs_v2.csv)
    rather than a flat merged ops CSV (<prefix>_ops.csv, <prefix>_ops_v2.csv); _ops wins where both appear,
    as in sibling()."""
    p = Path(path)
    if p.name.endswith("_ops.csv") or p.name.endswith("_runs.csv"):
        return p.name.endswith("_runs.csv")
    return p.suffix == ".csv" and "_runs" in p.stem and "_ops" not in p.stem


def sibling(path, what: str, ext: str = "csv") -> Path:
    """<prefix>_<what>.<ext> beside a <prefix>_ops.csv or <prefix>_runs.csv (the energy, e2e and env
    files of the same runs); a name with _ops inside (<prefix>_ops_v2.csv) gives <prefix>_<what>_v2.<ext>.
    A name with neither _ops nor _runs has no siblings: refused (its sibling would be itself)."""
    p = Path(path)
    for tail in ("_ops.csv", "_runs.csv"):
        if p.name.endswith(tail):
            return p.with_name(p.name[: -len(tail)] + f"_{what}.{ext}")
    for mid in ("_ops", "_runs"):
        if mid in p.stem:
            head, _, rest = p.stem.rpartition(mid)
            return p.with_name(f"{head}_{what}{rest}.{ext}")
    raise InputError(f"{p}: measurements file name: got {p.name!r}; expected <prefix>_ops.csv (flat ops CSV) or "
                     f"<prefix>_runs.csv (run manifest), whose energy/e2e/env files are <prefix>_<what>.csv/.json")


def manifest_runs(path) -> list[tuple[str, str, Path]]:
    """(run, suite, raw ops.csv) of every line of a run manifest, in order. Every line has exactly the two
    fields run, suite; the suite is a key of SUITES (an unknown one would be fitted by split_of)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: measurements: no such file; expected a run manifest (columns run, suite)")
    with open(p, newline="") as f:
        lines = list(csv.reader(f))
    head, lines = (lines[0] if lines else None), lines[1:]
    if head != MANIFEST_FIELDS:
        raise InputError(f"{p}: header: got {head}; expected {MANIFEST_FIELDS}")
    if not lines:
        raise InputError(f"{p}: runs: empty; expected at least one run line")
    out, seen = [], set()
    for i, line in enumerate(lines):
        if len(line) != len(MANIFEST_FIELDS):
            raise InputError(f"{p}: line {i + 2}: got {len(line)} fields {line}; expected 2 (run, suite)")
        run, suite = (x.strip() for x in line)
        if not run or not suite or run in seen:
            raise InputError(f"{p}: line {i + 2}: got run={run!r}, suite={suite!r}; expected a new run name and "
                             f"its suite")
        if suite not in SUITES:
            raise InputError(f"{p}: line {i + 2}: suite: got {suite!r}; expected one of {list(SUITES)} "
                             f"(cosim.calibrate.dataset.SUITES)")
        seen.add(run)
        raw = p.parent / f"raw_{run}" / "ops.csv"
        if not raw.is_file():
            raise InputError(f"{p}: line {i + 2}: run {run!r}: {raw}: no such file; expected the run's microbench "
                             f"output folder raw_{run}/ beside the manifest")
        out.append((run, suite, raw))
    return out


def refuse_retired(suite: str, where: str) -> None:
    """A retired held-out suite (microbench.RETIRED_SUITES) is never measured: one error naming it and what to
    measure instead."""
    from cosim.calibrate.microbench import RETIRED_SUITES

    if suite in RETIRED_SUITES:
        raise InputError(f"{where}: got {suite!r}, retired unmeasured: {RETIRED_SUITES[suite]}; expected a suite "
                         f"that tests the committed model")


def check_new_run(manifest, run: str, suite: str) -> Path:
    """Refuse, before anything is measured or written, a run that would overwrite or duplicate one: its name
    already listed in the manifest, its raw folder <manifest dir>/raw_<run>/ already there, or a suite not in
    SUITES. Returns that raw folder (where the run is to be measured)."""
    p = Path(manifest)
    if suite not in SUITES:
        raise InputError(f"{p}: suite: got {suite!r}; expected one of {list(SUITES)}")
    refuse_retired(suite, f"{p}: suite")
    if p.is_file() and run in {r for r, _, _ in manifest_runs(p)}:
        raise InputError(f"{p}: run: got {run!r}, already listed; expected a new run name (--run-name)")
    raw = p.parent / f"raw_{run}"
    if raw.exists():
        raise InputError(f"{p}: run: got {run!r}, but {raw}/ already exists; expected a new run name (--run-name) "
                         f"whose raw folder is not there yet (measuring would overwrite it)")
    return raw


def _header_diff(have: list, want: list) -> str:
    """The columns that differ between two headers, named (not a fixed slice)."""
    extra, missing = [c for c in have if c not in want], [c for c in want if c not in have]
    if extra or missing:
        return f"extra columns {extra}, missing columns {missing}"
    first = next(i for i, (a, b) in enumerate(zip(have, want)) if a != b)
    return f"same columns in another order, from column {first + 1}: got {have[first:first + 4]}, expected " \
           f"{want[first:first + 4]}"


def merged_rows(path) -> tuple[list[str], list[tuple[str, int, dict]]]:
    """The merged table of a run manifest: (columns, [(raw file, its row number, row)]); every raw row of
    every run once, in manifest order, with suite and run first. All runs must share one header."""
    fields, out = None, []
    for run, suite, raw in manifest_runs(path):
        with open(raw, newline="") as f:
            rd = csv.DictReader(f)
            rows = list(rd)
            have = ["suite", "run"] + list(rd.fieldnames or [])
        if fields is None:
            fields = have
        elif have != fields:
            raise InputError(f"{raw}: header: {_header_diff(have, fields)}; expected the columns of the manifest's "
                             f"first run (same microbench version)")
        out += [(str(raw), i + 2, {"suite": suite, "run": run, **r}) for i, r in enumerate(rows)]
    return fields, out


def write_merged(path, out_csv) -> int:
    """Write a run manifest's merged table as one CSV (what <prefix>_ops.csv held); returns its rows."""
    fields, rows = merged_rows(path)
    with open(out_csv, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for _src, _i, r in rows:
            w.writerow(r)
    return len(rows)


def _read(path) -> list[dict]:
    p = Path(path)
    if not p.is_file():
        hint = ""
        if p.name.endswith("_ops.csv"):
            man = p.with_name(p.name[: -len("_ops.csv")] + "_runs.csv")
            if man.is_file():  # the device's runs are listed in a manifest now (the flat file was removed)
                hint = f" ({man} is there: the run manifest that replaced it; give that)"
        raise InputError(f"{p}: measurements: no such file; expected a CSV written by cosim calibrate{hint}")
    with open(p, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise InputError(f"{p}: measurements: empty; expected at least one measured row")
    return rows


def positive_time(row: dict, field: str, src: str) -> float:
    """row[field] as seconds > 0 (a finite number), or one InputError naming src, the field and the value."""
    v = row.get(field)
    try:
        t = float(v)
    except (TypeError, ValueError):
        t = float("nan")
    if not (math.isfinite(t) and t > 0):
        raise InputError(f"{src}: {field}: got {v!r}; expected a positive time in seconds")
    return t


def reliable(row: dict, src: str = "") -> bool:
    """Whether a row's repeats spread by at most MAX_SPREAD of its median. The spread columns are required:
    a missing or unparseable median_s / p10_s / p90_s is an InputError naming src, the field and the value
    (never a silent 'reliable')."""
    med = positive_time(row, "median_s", src)
    p10, p90 = (positive_time(row, f, src) for f in ("p10_s", "p90_s"))
    return (p90 - p10) <= MAX_SPREAD * med


def split_of(row: dict) -> str:
    """fit (default suite), test (held-out suite), test2 (the second, fresh held-out suite);
    variant kernels (fp8 fast accumulation)
    are 'other': measured, reported, but neither fitted nor counted in the targets."""
    if "fast_accum" in (row.get("impl") or ""):
        return "other"
    return HELDOUT_SPLITS.get(row.get("suite"), "fit")


# suite -> split of every measured suite, in the order the suites were first measured: the one table a
# new suite is added to (cosim calibrate --variant and cosim validate --split read their choices from it).
# default, fit3 .. fit8 are fitted; the held-out suites are never fitted.
# heldout2: the fresh held-out suite measured after the 2026-12-04 model freeze; heldout3: the
# one measured after the session-4 freeze (rules: validation/heldout3_rules.md); heldout4: after the
# session-6 freeze (validation/heldout4_rules.md) (issue 11). fit4 and fit5 (session 6, run 8; merged
# in session 7) are fitted.
# heldout5: after the session-7 freeze (validation/heldout5_rules.md); heldout6: after the session-7
# second-round freeze (validation/heldout6_rules.md); heldout7: after the session-8 freeze
# (validation/heldout7_rules.md). fit6 (run 10), fit7 (run 12, session 8) and fit8 (run 14, session 8 second
# round) are fitted. heldout8: after the session-8 second-round freeze (validation/heldout8_rules.md);
# heldout9: after the session-8 third-round freeze (validation/heldout9_rules.md); heldout10: after the
# session-9 freeze (validation/heldout10_rules.md); heldout11: drawn and frozen in session 10, retired
# unmeasured when the session-11 model moved its prices (validation/heldout11_rules.md); heldout12: drawn and
# frozen in session 11, retired unmeasured when round 7's FA2 soft_c (session 12) moved its prices
# (validation/heldout12_rules.md); heldout13: after the session-12 freeze (validation/heldout13_rules.md).
# heldout14: after the session-15 H100 re-fit (validation/heldout14_rules.md). heldout15: after the round-9
# (session 18) freeze, on the H200 and / or the H100 (validation/heldout15_rules.md). heldout16: after the round-10
# (session 18) freeze, on the H200 and / or the H100 (validation/heldout16_rules.md). heldout17: after the round-11
# freeze, on the H200 and / or the H100 (validation/heldout17_rules.md). heldout18: after the round-12 freeze, on the
# H200 and / or the H100 (validation/heldout18_rules.md). heldout19: after the round-14 freeze, on the H200 and / or the
# H100 (validation/heldout19_rules.md). fit9 (session 24, after heldout19 on the H100): fitted. heldout20: after the
# round-15 freeze, on the H200 and / or the H100 (validation/heldout20_rules.md). fit10 (session 24, after heldout20
# on the H100): fitted. heldout21: after the round-16 freeze, on the H200 and / or the H100
# (validation/heldout21_rules.md). heldout22: after the round-17 freeze, on the H200 and / or the H100
# (validation/heldout22_rules.md). heldout23: after the round-18 freeze, on the H200 and / or the H100
# (validation/heldout23_rules.md). heldout24: after the round-19 freeze, on the H200 and / or the H100
# (validation/heldout24_rules.md). fit11 (session 31): fresh GEMM fit rows, scored once as the next GEMM round's
# validation rows before they are fitted (validation/fit11_rules.md). fit12 (session 32): the same for round 22, which
# fits fit11 (validation/fit12_rules.md). heldout25: after the round-22 freeze, on the H100 and / or the H200
# (validation/heldout25_rules.md).
SUITES = {"default": "fit", "heldout": "test", "heldout2": "test2", "fit3": "fit", "heldout3": "test3", "fit4": "fit",
          "heldout4": "test4", "fit5": "fit", "heldout5": "test5", "fit6": "fit", "heldout6": "test6", "fit7": "fit",
          "heldout7": "test7", "fit8": "fit", "heldout8": "test8", "heldout9": "test9",
          "heldout10": "test10", "heldout11": "test11", "heldout12": "test12",
          "heldout13": "test13", "heldout14": "test14", "heldout15": "test15",
          "heldout16": "test16", "heldout17": "test17",
          "heldout18": "test18", "heldout19": "test19", "fit9": "fit",
          "heldout20": "test20", "fit10": "fit",
          "heldout21": "test21", "heldout22": "test22", "heldout23": "test23",
          "heldout24": "test24", "fit11": "fit", "fit12": "fit", "heldout25": "test25"}
# suite -> split of the held-out suites; every other suite is fitted
HELDOUT_SPLITS = {suite: split for suite, split in SUITES.items() if split != "fit"}


def _act(name, shape, fmt="bf16"):
    return TensorSpec(name, shape, fmt, "activation")


def op_from_row(row: dict, source: str = "") -> Op | None:
    kind, fmt = row["kind"], row.get("fmt") or "bf16"
    try:
        d = json.loads(row["dims"])
    except (KeyError, ValueError) as e:
        raise InputError(f"{source}: dims: got {row.get('dims')!r}; expected JSON dims ({e})") from None
    if kind == "gemm":
        m, n, k = int(d["m"]), int(d["n"]), int(d["k"])
        return Op(f"gemm_{m}x{n}x{k}", "gemm", {"m": m, "n": n, "k": k},
                  (_act("x", (m, k), fmt), TensorSpec("w", (k, n), fmt, "weight")), (_act("y", (m, n)),), fmt)
    if kind == "attention":
        b, h, kvh, q, kv, hd = (int(d[x]) for x in ("batch", "heads", "kv_heads", "q_len", "kv_len", "head_dim"))
        dims = {"batch": b, "heads": h, "kv_heads": kvh, "q_len": q, "kv_len": kv, "head_dim": hd,
                "causal": bool(d.get("causal", True)), "backend": backend_of(row.get("impl") or "")}
        ins = (_act("q", (b, q, h, hd)), TensorSpec("k", (b, kv, kvh, hd), "bf16", "kv"),
               TensorSpec("v", (b, kv, kvh, hd), "bf16", "kv"))
        return Op("attention", "attention", dims, ins, (_act("o", (b, q, h, hd)),), "bf16")
    if kind == "launch":
        return None
    rows, cols = int(d["rows"]), int(d["cols"])
    extra = {}
    if kind == "rope":  # the benchmark ropes one (tokens, heads, 128) tensor
        note = row.get("note") or ""
        heads = int(note.split("heads=")[1].split()[0]) if "heads=" in note else 1
        rows, cols = rows // heads, cols * heads
        extra = {"tensors": 1}
    dims = {"rows": rows, "cols": cols, **extra}
    if kind == "add_rmsnorm":  # as workloads.profiles writes it: x, weight, residual in; y, residual out
        ins = (_act("x", (rows, cols)), TensorSpec("g", (cols,), "bf16", "weight"), _act("r", (rows, cols)))
        return Op(kind, kind, dims, ins, (_act("y", (rows, cols)), _act("r_out", (rows, cols))), "bf16")
    if kind == "rope_fused":  # q and k of `rows` tokens, (heads + kv_heads) * d = cols, one kernel
        dims["tensors"] = 1
    if kind in ("add", "silu_mul", "mul"):
        ins = (_act("a", (rows, cols)), _act("b", (rows, cols)))
    elif kind in ("rmsnorm", "layernorm"):
        ins = (_act("x", (rows, cols)), TensorSpec("g", (cols,), "bf16", "weight"))
    elif kind == "embedding":
        ins = (TensorSpec("table_rows", (rows, cols), "bf16", "weight"),)
    else:
        ins = (_act("x", (rows, cols)),)
    return Op(kind, kind, dims, ins, (_act("y", (rows, cols)),), "bf16")


# microbench impl -> attention backend of hwmodels.gpu ("default": whatever PyTorch's SDPA
# picked, which the calibration's structure.attention_default names)
_BACKENDS = {"sdpa:FLASH_ATTENTION": "fa2", "sdpa:CUDNN_ATTENTION": "cudnn", "sdpa:default": "default",
             "unfused": "unfused"}


def backend_of(impl: str) -> str:
    for prefix, b in _BACKENDS.items():
        if impl.startswith(prefix):
            return b
    return "default"


def op_class(op: Op) -> str:
    """gemm_bf16 | gemm_fp8 | attention_{prefill,decode}[_fa2|_cudnn|_unfused] | elementwise;
    attention without a suffix is the device's default SDPA backend (what users get)."""
    if op.kind == "gemm":
        return "gemm_fp8" if op.compute_fmt.startswith("fp8") else "gemm_bf16"
    if op.kind == "attention":
        base = "attention_decode" if int(op.dims["q_len"]) == 1 else "attention_prefill"
        b = op.dims.get("backend", "default")
        return base if b == "default" else f"{base}_{b}"
    return "elementwise"


_LOADED: dict = {}  # (path, mtime, size) -> parsed rows: the validation scripts score one CSV many times


def load_ops(path) -> list[Measurement]:
    """Every row of a measurement CSV as a Measurement (a fresh list; the rows are parsed once per
    file version and shared, so callers must not mutate them)."""
    if not Path(path).is_file():
        return _parse_ops(path)  # its error names the file
    st = Path(path).stat()
    key = (str(Path(path).resolve()), st.st_mtime_ns, st.st_size)
    if is_manifest(path):  # a raw run changed on disk is a new version too
        key += tuple((r.stat().st_mtime_ns, r.stat().st_size) for _, _, r in manifest_runs(path))
    if key not in _LOADED:
        if len(_LOADED) >= 4:
            _LOADED.pop(next(iter(_LOADED)))
        _LOADED[key] = tuple(_parse_ops(path))
    return list(_LOADED[key])


def _parse_ops(path) -> list[Measurement]:
    out = []
    rows = merged_rows(path)[1] if is_manifest(path) else [(path, i + 2, r) for i, r in enumerate(_read(path))]
    if not rows:
        raise InputError(f"{path}: measurements: empty; expected at least one measured row")
    missing = [c for c in OPS_REQUIRED if c not in rows[0][2]]
    if missing:  # a manifest under another name, or not an ops CSV: its rows would all be skipped below
        raise InputError(f"{path}: header: missing column(s) {', '.join(missing)}; expected an ops CSV with "
                         f"{', '.join(OPS_REQUIRED)} (or a run manifest named <prefix>_runs.csv)")
    for file, line, row in rows:
        src = f"{file}: row {line}"
        if (row.get("note") or "").startswith("FAILED") or not row.get("median_s"):
            continue
        t = positive_time(row, "median_s", src)
        spread_ok = reliable(row, src)
        op = op_from_row(row, src)
        if op is None:
            out.append(Measurement(None, "launch", t, "other", row.get("suite", ""), row.get("impl", ""), row))
            continue
        out.append(Measurement(op, op_class(op), t, split_of(row), row.get("suite", ""), row.get("impl", ""), row,
                               spread_ok))
    return out


def run_files(path, what: str) -> list[tuple[str, str, Path]]:
    """(run, suite, raw_<run>/<what>) of the manifest's runs that have that file (energy.csv, e2e.csv,
    env.json), in manifest order."""
    return [(run, suite, raw.with_name(what)) for run, suite, raw in manifest_runs(path)
            if raw.with_name(what).is_file()]


def _rows_of(path, what: str) -> list[dict]:
    """The rows of a flat <prefix>_<what>.csv, or of a manifest: every listed run's raw_<run>/<what>.csv row in
    manifest order with suite and run first (what merge_run used to append to <prefix>_<what>.csv)."""
    return [r for _src, r in _sourced_rows(path, what)]


def _sourced_rows(path, what: str) -> list[tuple[str, dict]]:
    """_rows_of with each row's "<file>: row <n>" (for errors)."""
    if not is_manifest(path):
        return [(f"{path}: row {i + 2}", r) for i, r in enumerate(_read(path))]
    fields, out = None, []
    for run, suite, f_path in run_files(path, f"{what}.csv"):
        with open(f_path, newline="") as f:
            rd = csv.DictReader(f)
            rows = list(rd)
            have = list(rd.fieldnames or [])
        if fields is None:
            fields = have
        elif have != fields:
            raise InputError(f"{f_path}: header: {_header_diff(have, fields)}; expected the columns of the "
                             f"manifest's first run with a {what}.csv (same microbench version)")
        out += [(f"{f_path}: row {i + 2}", {"suite": suite, "run": run, **r}) for i, r in enumerate(rows)]
    if not out:
        raise InputError(f"{path}: {what} measurements: no listed run has raw_<run>/{what}.csv; expected at least "
                         f"one measured row")
    return out


def load_env(path) -> dict:
    """run -> the device/software readings of that run (microbench's env.json): a manifest's runs' raw_<run>/
    env.json in manifest order, or a flat <prefix>_env.json as merge_run wrote it."""
    p = Path(path)
    if is_manifest(p):
        return {run: json.loads(f.read_text()) for run, _suite, f in run_files(p, "env.json")}
    return json.loads(p.read_text())


def load_energy(path) -> list[dict]:
    rows = []
    for row in _rows_of(path, "energy"):
        if not row.get("energy_j"):
            continue
        r = dict(row)
        r["dims"] = json.loads(row["dims"]) if row.get("dims") else {}
        for key in ("elapsed_s", "energy_j", "avg_power_w", "time_per_iter_s", "energy_per_iter_j",
                    "flops_per_iter", "bytes_per_iter"):
            r[key] = float(row[key]) if row.get(key) not in (None, "") else None
        r["split"] = HELDOUT_SPLITS.get(row.get("suite"), "fit")
        rows.append(r)
    return rows


def load_e2e(path) -> list[dict]:
    rows = []
    for src, row in _sourced_rows(path, "e2e"):
        if not row.get("median_s") or row.get("mode", "").startswith("profile"):
            continue
        r = dict(row)
        for key in ("batch", "seq", "ctx", "layers", "layers_full"):
            r[key] = int(float(row[key]))
        r["median_s"] = positive_time(row, "median_s", src)
        r["split"] = HELDOUT_SPLITS.get(row.get("suite"), "fit")
        rows.append(r)
    return rows


def merge_run(raw_dir, ops_csv, suite: str, run: str) -> dict:
    """Add one microbench output folder (ops.csv, energy.csv, e2e.csv, env.json) to a device's
    measurements, tagging every row with its suite (default = fit, heldout = test) and run name.
    Where ``ops_csv`` is a run manifest (<prefix>_runs.csv) every file stays in the raw folder, which
    must be <manifest dir>/raw_<run>, and one line (run, suite) is appended to the manifest (load_ops,
    load_energy, load_e2e and load_env read the raw files through it). A flat <prefix>_ops.csv gets the rows
    appended, energy/e2e rows go to <prefix>_energy.csv and _e2e.csv, env.json becomes <prefix>_env.json's
    entry ``run``. Returns rows added per file."""
    refuse_retired(suite, f"{ops_csv}: suite")  # a run of a retired suite is never listed, however it was measured
    raw, ops_csv = Path(raw_dir), Path(ops_csv)
    added = {}
    whats = ("ops", "energy", "e2e")
    if is_manifest(ops_csv):
        whats = ()
        src = raw / "ops.csv"
        if raw.resolve() != (ops_csv.parent / f"raw_{run}").resolve():
            raise InputError(f"{ops_csv}: run {run!r}: raw folder {raw}; expected {ops_csv.parent / f'raw_{run}'} "
                             f"(a manifest's runs live beside it as raw_<run>/)")
        if not src.is_file():
            raise InputError(f"{src}: no such file; expected the run's microbench ops.csv (a manifest lists a run by "
                             f"its raw_<run>/ops.csv)")
        if src.is_file():
            exists = ops_csv.is_file()
            if suite not in SUITES:
                raise InputError(f"{ops_csv}: suite: got {suite!r}; expected one of {list(SUITES)}")
            if exists:
                listed = manifest_runs(ops_csv)
                if run in {r for r, _, _ in listed}:
                    raise InputError(f"{ops_csv}: run: got {run!r}, already listed; expected a new run name")
                with open(listed[0][2], newline="") as f:
                    want = next(csv.reader(f), [])
                with open(src, newline="") as f:
                    have = next(csv.reader(f), [])
                if have != want:  # checked before the line is written: a refused run leaves the manifest as it was
                    raise InputError(f"{src}: header: {_header_diff(have, want)}; expected the columns of "
                                     f"{listed[0][2]} (the manifest's first run; same microbench version)")
            with open(src, newline="") as f:
                n = len(list(csv.DictReader(f)))
            data = ops_csv.read_bytes() if exists else b""
            with open(ops_csv, "a", newline="") as f:
                if data and not data.endswith(b"\n"):  # a last line without its newline: end it first
                    f.write("\n")
                w = csv.writer(f, lineterminator="\n")
                if not exists:
                    w.writerow(MANIFEST_FIELDS)
                w.writerow([run, suite])
            added[str(ops_csv)] = n
    for what in whats:
        src = raw / f"{what}.csv"
        if not src.is_file():
            continue
        dst = sibling(ops_csv, what)
        with open(src, newline="") as f:
            rows = list(csv.DictReader(f))
        fields = ["suite", "run"] + (list(rows[0].keys()) if rows else [])
        exists = dst.is_file()
        if exists:
            with open(dst, newline="") as f:
                have = next(csv.reader(f), [])
            if have and have != fields:
                raise InputError(f"{dst}: header: got {have[:6]}...; expected the columns of {src} "
                                 f"with suite, run first (same microbench version)")
        with open(dst, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            if not exists:
                w.writeheader()
            for r in rows:
                w.writerow({"suite": suite, "run": run, **r})
        added[str(dst)] = len(rows)
    env_src = raw / "env.json"
    if env_src.is_file() and not is_manifest(ops_csv):
        env_dst = sibling(ops_csv, "env", "json")
        env = json.loads(env_dst.read_text()) if env_dst.is_file() else {}
        env[run] = json.loads(env_src.read_text())
        env_dst.write_text(jsonio.dumps(env, indent=1))
    return added


def carve_validation(meas: list, k: int = 5) -> tuple[list, list]:
    """Split fit rows into (train, validation): a row whose (kind, fmt, dims, impl) hashes
    (crc32) to 0 modulo k is held back. Model choices are scored on the validation rows,
    never on the held-out suite (docs/gpu-validation.md, held-out rules)."""
    import zlib
    train, val = [], []
    for m in meas:
        key = f"{m.row.get('kind')}|{m.row.get('fmt')}|{m.row.get('dims')}|{m.row.get('impl')}".encode()
        (val if zlib.crc32(key) % k == 0 else train).append(m)
    return train, val
