"""The note a bare bundled name owes the user when a same-named file (or, for a model, a checkpoint
folder) sits in the working directory: every loader reads the bundled file (workloads.io.resolve_bundled's
one rule; `./name` reads the local one), and the user is told which local path was not read: by the CLI
for its flags (`shadow_notes`), and by `cosim run` / `cosim sweep` for the names an experiment or sweep
file gives (`shadow_notes_for`, the same function). The loaders themselves tell a Python caller with a
workloads.io.ShadowedNameWarning, once per name and local path; with ``tell=True`` (the CLI, which prints
the notes) only the notes not told yet are returned, and they count as told, so none is given twice."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

__all__ = ["shadow_notes", "shadow_notes_for", "experiment_shadow_notes", "sweep_shadow_notes", "FLAG_KINDS",
           "warnings_as_notes"]

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
    from workloads.compression.recipe import recipe_part_names
    return recipe_part_names(value)  # kivi2(group_size=64)+h2o -> kivi2, h2o


def shadow_notes_for(pairs, tell: bool = False) -> list[str]:
    """One note per (field, value) whose bare bundled name hides a local file, or for a model a local
    checkpoint folder (only a model reads a folder, its config.json); `field` as in FLAG_KINDS. `tell`:
    the caller prints them: only the notes not given yet in this process (workloads.io.untold_shadow_note)."""
    from workloads.io import shadow_note, untold_shadow_note
    notes = []
    for dest, value in pairs:
        if not isinstance(value, str):
            continue
        kinds = FLAG_KINDS[dest]
        for name in _names(dest, value):
            bundled = next((b for b in (_bundled(k, name) for k in kinds) if b is not None), None)
            note = (untold_shadow_note if tell else shadow_note)(name, bundled, dest.replace("_", "-"),
                                                                 folders="models" in kinds)
            if note:
                notes.append(note)
    return list(dict.fromkeys(notes))


def shadow_notes(args) -> list[str]:
    """The CLI's: one note per flag whose bare bundled name hides a local file or model folder (not told yet)."""
    return shadow_notes_for(((dest, getattr(args, dest, None)) for dest in FLAG_KINDS), tell=True)


def _experiment_pairs(exp) -> list:
    hw = ("system", exp.system) if exp.system else ("hw", getattr(exp.hw, "name", exp.hw))
    return [("model", exp.model), ("recipe", exp.recipe), hw]


def experiment_shadow_notes(exp, tell: bool = False) -> list[str]:
    """The notes for the bare names an experiment file gives (model, recipe, hw or system)."""
    return shadow_notes_for(_experiment_pairs(exp), tell)


def sweep_shadow_notes(spec, tell: bool = False) -> list[str]:
    """The notes for the bare names a sweep gives: its base experiment's, and every value of a grid or
    zip axis (or random choice) over model, recipe, hw or system."""
    pairs = _experiment_pairs(spec.base)
    for kind, body in spec.axes:
        fields = body["fields"] if kind == "random" else body
        for f, values in fields.items():
            if f in ("model", "recipe", "hw", "system"):
                vals = values.get("choices", ()) if isinstance(values, dict) else values
                pairs += [(f, v) for v in vals]
    return shadow_notes_for(pairs, tell)


@contextmanager
def warnings_as_notes(file=None):
    """The CLI's: a ShadowedNameWarning a loader gives inside the block is printed as the CLI's own
    `note: <text>` line on stderr (told once: workloads.io); every other warning is shown as before."""
    import sys
    import warnings

    from workloads.io import ShadowedNameWarning
    with warnings.catch_warnings():
        shown = warnings.showwarning

        def show(message, category, filename, lineno, file_=None, line=None):
            if issubclass(category, ShadowedNameWarning):
                print(f"note: {message}", file=file or sys.stderr)
            else:
                shown(message, category, filename, lineno, file_, line)
        warnings.showwarning = show
        warnings.simplefilter("always", ShadowedNameWarning)  # once per name is workloads.io's rule
        yield
