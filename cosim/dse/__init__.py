"""Design-space exploration: `cosim.sweep(...)` / `cosim sweep sweep.yaml`.

    from cosim.dse import sweep       # (cosim/__init__ may re-export it as cosim.sweep)
    df = sweep("cosim/configs/sweeps/hbm_vs_compute.yaml", quiet=True)
    df = sweep({"base": "quickstart", "axes": [{"grid": {"weights": ["mxfp4", "bf16"]}}]})

A sweep is a base experiment plus axes (grid, zip, random) and/or an NSGA-II search,
objectives and constraints (cosim.dse.spec). Points run in vectorised batches on a
local process pool or a Dask cluster (cosim.dse.executors); every result is appended
to a SIGKILL-safe JSONL store keyed by the configuration's hash, so a re-run resumes
(cosim.dse.store). The return value is a pandas DataFrame, one row per configuration.
"""

from __future__ import annotations

from pathlib import Path

from cosim.dse.spec import SweepSpec, load_sweep, sweep_from_dict

__all__ = ["sweep", "load_sweep", "sweep_from_dict", "SweepSpec"]


def sweep(spec, *, scheduler=None, executor: str | None = None, workers: int | None = None,
          output: str | Path | None = None, store: str | Path | None = None, batch_size: int | None = None,
          quiet: bool = False, write: bool = True):
    """Run (or resume) a sweep and return its results as a pandas DataFrame.

    `spec`: a sweep YAML path, a bundled sweep name, a mapping, or a SweepSpec.
    Keyword arguments override the file: `scheduler` ("tcp://host:8786" or a
    distributed.Client; implies executor="dask"), `executor` ("local" | "dask"),
    `workers`, `output` (directory), `store` (JSONL path), `batch_size`, `quiet`
    (no progress bar), `write` (False: return the table, write no files but the store).
    An existing output directory that is neither empty nor a sweep's own output (its
    results.jsonl store or summary.json) is refused with an InputError before anything is
    written, as `cosim sweep` refuses it.
    """
    from cosim.dse.runner import run_sweep

    over = {"scheduler": scheduler, "executor": executor, "workers": workers,
            "output": str(output) if output is not None else None,
            "store": str(store) if store is not None else None, "batch_size": batch_size}
    if isinstance(spec, SweepSpec):
        if any(v is not None for v in over.values()):
            raise TypeError("pass overrides when loading the spec (load_sweep(path, overrides=...))")
        s = spec
    elif isinstance(spec, dict):
        s = sweep_from_dict(spec, overrides=over)
    else:
        s = load_sweep(spec, overrides=over)
    return run_sweep(s, quiet=quiet, write=write, output_flag="output=" if output is not None else None)
