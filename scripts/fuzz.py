"""Run the fuzz corpus (tests/fuzz/corpus.jsonl): every case in its own forked process,
killed after 10 s, its peak memory measured; a case fails on a traceback, a hang, a
result that differs from its expectation (an error that should have been raised and
was not is a silent wrong result) or peak memory over 1 GB.

    python scripts/fuzz.py                 # all cases; exit 1 on any failure
    python scripts/fuzz.py --kind cli -v   # one kind, each case printed
"""

from __future__ import annotations

import os

# numba's OpenMP layer aborts a forked child; the workqueue layer is fork safe
os.environ.setdefault("NUMBA_THREADING_LAYER", "workqueue")

import argparse  # noqa: E402
import base64  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import select  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
import warnings  # noqa: E402
from contextlib import redirect_stderr, redirect_stdout  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CORPUS = ROOT / "tests" / "fuzz" / "corpus.jsonl"
TIMEOUT_S = 10.0
MEMORY_LIMIT = 1 << 30
SUFFIX = {"model_yaml": ".yaml", "hf_json": ".json", "recipe_yaml": ".yaml", "experiment_yaml": ".yaml",
          "sweep_yaml": ".yaml", "hw_yaml": ".yaml"}


def _content(case) -> bytes:
    data = base64.b64decode(case["b64"]) if "b64" in case else case.get("text", "").encode()
    gen = case.get("gen")
    if gen:
        data += (gen["repeat"] * gen["times"]).encode()
    return data


def _load_file(kind: str, path: Path):
    if kind in ("model_yaml", "hf_json"):
        from workloads.models import load_model
        return load_model(path)
    if kind == "recipe_yaml":
        from workloads.compression import load_recipe
        return load_recipe(path)
    if kind == "experiment_yaml":
        from cosim.experiment import load_experiment
        return load_experiment(path)
    if kind == "sweep_yaml":
        from cosim.dse import load_sweep
        s = load_sweep(path)
        return s.columns()[0]
    if kind == "hw_yaml":
        from hwmodels.spec import load_hw
        return load_hw(path)
    raise KeyError(kind)


def _cli(case, tmp: Path) -> dict:
    from cosim.cli import main
    argv = [a.replace("{tmp}", str(tmp)) for a in case["argv"]]
    err, out = io.StringIO(), io.StringIO()
    with redirect_stderr(err), redirect_stdout(out):
        try:
            rc = main(argv)
        except SystemExit as e:  # argparse's own usage errors: exit 2 with its usage line
            rc = e.code
    lines = err.getvalue().strip().splitlines()
    if "Traceback" in err.getvalue():
        return {"outcome": "traceback", "detail": err.getvalue()[-2000:]}
    if rc == 0:
        return {"outcome": "ok"}
    argparse_error = len(lines) >= 1 and lines[-1].startswith("cosim") and ": error:" in lines[-1]
    if rc == 2 and ((len(lines) == 1 and lines[0].startswith("error: ")) or argparse_error):
        return {"outcome": "error", "detail": lines[-1]}
    return {"outcome": "bad-exit", "detail": f"rc={rc}: {lines[-3:]}"}


def _array(spec):
    import numpy as np
    shape, fill = tuple(spec["shape"]), spec["fill"]
    rng = np.random.default_rng(0)
    if fill == "normal":
        return rng.standard_normal(shape).astype(np.float32)
    if fill == "int":
        return np.ones(shape, dtype=np.int32)
    if fill == "object":
        return np.full(shape, "x", dtype=object)
    if fill == "empty":
        return np.zeros((0,) + shape[1:], dtype=np.float32)
    x = np.zeros(shape, dtype=np.float32)
    if fill == "subnormal":
        x[:] = np.float32(1e-45) * rng.integers(-3, 4, shape)
    elif fill == "nan":
        x[:] = rng.standard_normal(shape)
        x[0, 0] = np.nan
    elif fill == "inf":
        x[:] = rng.standard_normal(shape)
        x[1, 3] = np.inf
    elif fill == "huge":
        x[:] = 3e38 * np.sign(rng.standard_normal(shape))
    return x


def _api(case) -> dict:
    import numpy as np
    import cosim.functional as F
    x = _array(case["array"])
    kw = case.get("kwargs", {})
    if case["call"] == "quantize":
        F.quantize(x, case["fmt"], **kw)
        return {"outcome": "ok"}
    if case["call"] == "encode":
        F.encode(x, case["fmt"], **kw)
        return {"outcome": "ok"}
    q = F.encode(x, case["fmt"], saturate=True if case["fmt"] in ("fp8_e4m3",) else None, **kw)
    y = F.decode(q)
    ref = F.quantize(x, case["fmt"], saturate=True if case["fmt"] in ("fp8_e4m3",) else None, **kw)
    if not np.array_equal(y, ref, equal_nan=True):
        return {"outcome": "wrong", "detail": "decode(encode(x)) != quantize(x)"}
    if case.get("check") == "no_nan" and np.isnan(y).any():
        return {"outcome": "wrong", "detail": "NaN from finite input"}
    return {"outcome": "ok"}


def _qtensor(case, tmp: Path) -> dict:
    import numpy as np
    import cosim.functional as F
    from cosim.functional.qtensor import QTensor
    path = tmp / "q.npz"
    if "raw_b64" in case:
        path.write_bytes(base64.b64decode(case["raw_b64"]))
    else:
        q = F.encode(np.random.default_rng(0).standard_normal((4, 128)).astype(np.float32), case["fmt"])
        arrays = {k: getattr(q, k) for k in ("codes", "scales", "micro", "zero_points") if getattr(q, k) is not None}
        header = dict(fmt=q.fmt, shape=list(q.shape), axis=q.axis, block_size=q.block_size,
                      tensor_scale=q.tensor_scale, meta={}, version=1)
        header.update(case["header"])
        for k, how in case["arrays"].items():
            if how == "truncate":
                arrays[k] = arrays[k][: len(arrays[k]) // 2]
        np.savez(path, header=np.array(json.dumps(header)), **arrays)
        if case["arrays"].get("codes") == "bomb":  # an .npy header claiming 2^31 float64 in a few bytes
            import zipfile
            buf = io.BytesIO()
            np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False, "shape": (1 << 31,)})
            with zipfile.ZipFile(path, "w") as z:
                z.writestr("codes.npy", buf.getvalue() + b"\0" * 64)
                z.writestr("header.npy", b"")
    F.decode(QTensor.load(path))
    return {"outcome": "ok"}


def _store(case, tmp: Path) -> dict:
    import numpy as np
    from cosim.dse.store import ResultStore, read_records
    path = tmp / "r.jsonl"
    path.write_bytes(_content(case))
    rec = {"version": "t", "config": {"hw": {"name": "h100_sxm", "overrides": {}}}, "fields": ["x"],
           "values": np.array([[9.0]]), "keys": ["fresh"], "index": [0], "point": {},
           "metrics": {"latency_s": np.array([1.0])}, "status": "ok", "error": None}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with ResultStore(path) as s:
            s.append(rec)
        keys = [k for r in read_records(path) for k in r["keys"]]
    if len(keys) != len(set(keys)) or "fresh" not in keys:
        return {"outcome": "wrong", "detail": f"keys after resume: {keys[:10]}"}
    return {"outcome": "ok"}


def run_case(case: dict, tmp: Path) -> dict:
    """In the child: the case's outcome (ok / error with message / traceback / wrong)."""
    from workloads.io import InputError
    kind = case["kind"]
    try:
        if kind in SUFFIX:
            path = tmp / f"case{SUFFIX[kind]}"
            path.write_bytes(_content(case))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _load_file(kind, path)
            return {"outcome": "ok"}
        if kind == "cli":
            return _cli(case, tmp)
        if kind == "api":
            return _api(case)
        if kind == "qtensor":
            return _qtensor(case, tmp)
        if kind == "store":
            return _store(case, tmp)
        raise KeyError(kind)
    except InputError as e:
        return {"outcome": "error", "detail": str(e)}
    except (ValueError, TypeError) as e:
        if kind in ("api", "qtensor"):  # the numeric API's documented errors
            return {"outcome": "error", "detail": str(e)}
        return {"outcome": "traceback", "detail": traceback.format_exc()[-2000:]}
    except BaseException:  # noqa: BLE001 - everything else is a finding
        return {"outcome": "traceback", "detail": traceback.format_exc()[-2000:]}


def _fork_case(case: dict) -> dict:
    r, w = os.pipe()
    t0 = time.time()
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        try:
            with tempfile.TemporaryDirectory() as d:
                res = run_case(case, Path(d))
        except BaseException as e:  # noqa: BLE001
            res = {"outcome": "traceback", "detail": repr(e)}
        os.write(w, json.dumps(res).encode()[: 60000])
        os._exit(0)
    os.close(w)
    data, hung = b"", False
    while True:
        left = TIMEOUT_S - (time.time() - t0)
        if left <= 0:
            hung = True
            os.kill(pid, signal.SIGKILL)
            break
        ready, _, _ = select.select([r], [], [], left)
        if ready:
            chunk = os.read(r, 65536)
            if not chunk:
                break
            data += chunk
    os.close(r)
    _, status, usage = os.wait4(pid, 0)
    res = {"outcome": "hang", "detail": f"killed after {TIMEOUT_S:g} s"} if hung else (
        json.loads(data) if data else {"outcome": "crash", "detail": f"wait status {status}"})
    res["seconds"] = round(time.time() - t0, 3)
    res["peak_rss"] = usage.ru_maxrss * 1024
    return res


def verdict(case: dict, res: dict) -> str | None:
    """None when the case passed, else why it failed."""
    out = res["outcome"]
    if out in ("traceback", "hang", "crash", "bad-exit", "wrong"):
        return out
    small = len(_content(case)) < (1 << 20)
    if small and res["peak_rss"] > MEMORY_LIMIT:
        return f"memory {res['peak_rss'] / 2**20:.0f} MiB"
    want = case.get("expect", "any")
    if want != "any" and out != want:
        return f"expected {want}, got {out}"
    needle = case.get("needle")
    if out == "error" and needle and needle not in res.get("detail", ""):
        return f"error does not name {needle!r}"
    return None


def _warm() -> None:
    """Import and compile in the parent so each forked case starts warm."""
    import numpy as np
    import cosim  # noqa: F401
    import cosim.cli  # noqa: F401
    import cosim.dse.runner  # noqa: F401
    import cosim.functional as F
    from workloads.compression import list_methods
    list_methods()
    x = np.random.default_rng(0).standard_normal((4, 64)).astype(np.float32)
    for fmt in ("mxfp4", "nvfp4", "int8", "fp8_e4m3", "int4_g128", "int4_g128_zp", "mx6", "bfp16", "bf16",
                "fp4_e2m1", "mxint8"):
        F.decode(F.encode(x, fmt, saturate=True if fmt in ("fp8_e4m3", "fp4_e2m1") else None))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kind", help="only cases of this kind")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--json", help="write every case's result here")
    args = ap.parse_args(argv)
    cases = [json.loads(ln) for ln in CORPUS.read_text().splitlines() if ln.strip()]
    if args.kind:
        cases = [c for c in cases if c["kind"] == args.kind]
    _warm()
    results, failures = [], []
    t0 = time.time()
    for c in cases:
        res = _fork_case(c)
        why = verdict(c, res)
        results.append({"id": c["id"], **res, "verdict": why})
        if why:
            failures.append((c, res, why))
        if args.verbose or why:
            print(f"{c['id']:<22} {res['outcome']:<9} {res['seconds']:6.2f} s {res['peak_rss'] / 2**20:6.0f} MiB"
                  + (f"  FAIL: {why}: {res.get('detail', '')[:300]}" if why else ""), flush=True)
    worst = max(results, key=lambda r: r["seconds"]) if results else None
    peak = max((r["peak_rss"] for r in results), default=0)
    by = {}
    for r in results:
        by[r["outcome"]] = by.get(r["outcome"], 0) + 1
    print(f"{len(cases)} cases in {time.time() - t0:.1f} s: " + ", ".join(f"{k} {v}" for k, v in sorted(by.items()))
          + f"; {len(failures)} failed; slowest {worst['id'] if worst else '-'} {worst['seconds'] if worst else 0} s; "
          f"peak RSS {peak / 2**20:.0f} MiB")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
