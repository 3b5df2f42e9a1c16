"""The note a bare bundled name owes the user when a same-named file or folder sits in the
working directory: every loader reads the bundled file (workloads.io.resolve_bundled's one
rule; `./name` reads the local one), and the CLI says which local path it did not read."""

from __future__ import annotations

from pathlib import Path

__all__ = ["shadow_notes", "FLAG_KINDS"]

# argparse dest -> the bundled kinds a bare name of it may be (hw: a device or, for serve/plan, a system)
FLAG_KINDS = {"model": ("models",), "draft_model": ("models",), "hw": ("hw", "systems"), "system": ("systems",),
              "recipe": ("recipes",), "spec": ("recipes",), "experiment": ("experiments",),
              "sweep": ("sweeps",), "trace": ("traces",), "lengths_from": ("traces",)}


def _bundled(kind: str, name: str) -> Path | None:
    from workloads.io import bundled_dir
    if kind == "traces":
        from cosim.serving.arrivals import bundled_trace
        return bundled_trace(name)
    p = bundled_dir(kind) / f"{name}.yaml"
    return p if p.is_file() else None


def _names(dest: str, value: str) -> list[str]:
    if dest not in ("recipe", "spec"):
        return [value]
    from workloads.compression.recipe import _split_top
    return [p.split("(", 1)[0].strip() for p in _split_top(value, "+")]  # kivi2(group_size=64)+h2o


def shadow_notes(args) -> list[str]:
    """One note per flag whose bare bundled name hides a local file or folder of that name."""
    from workloads.io import shadow_note
    notes = []
    for dest, kinds in FLAG_KINDS.items():
        value = getattr(args, dest, None)
        if not isinstance(value, str):
            continue
        for name in _names(dest, value):
            bundled = next((b for b in (_bundled(k, name) for k in kinds) if b is not None), None)
            note = shadow_note(name, bundled, dest.replace("_", "-"))
            if note:
                notes.append(note)
    return notes
