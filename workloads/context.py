"""The cross-field rule 'context within the model's maximum': a `seq` beyond the longest
context a model supports (`ModelSpec.max_context`: HF `max_position_embeddings`, extended
by a rope-scaling factor, or `max_context:` in our model YAML) is refused unless the caller
opts in. Long-context studies extrapolate on purpose, so the opt-in exists, and every
trace (and so every report row) priced that way carries a note saying so."""

from __future__ import annotations

from workloads.io import InputError

__all__ = ["OPT_IN", "context_note"]

OPT_IN = "allow_beyond_max_context"  # one name: build_trace keyword, experiment/sweep key, --allow-beyond-max-context


def context_note(model, seq: int, allow: bool, source: str = "build_trace", field: str = "seq") -> str | None:
    """None when `seq` is within the model's maximum context (or the model states none);
    the note to carry when it is beyond and `allow` is set; otherwise an InputError naming
    the field, the value, the model's maximum and how to opt in."""
    limit = getattr(model, "max_context", None)
    if not limit or seq <= limit:
        return None
    where = f"max_context, from {model.source or 'its file'}"
    if not allow:
        raise InputError(f"{source}: {field}: got {seq:,}; expected at most {limit:,}, {model.name}'s maximum "
                         f"context ({where}); to price a context the model was not trained for (a long-context "
                         f"study), set {OPT_IN}: true in the experiment or sweep (Python: {OPT_IN}=True; CLI: "
                         f"--allow-beyond-max-context), or use a model config whose rope scaling extends it")
    return (f"seq {seq:,} is beyond {model.name}'s maximum context of {limit:,} positions ({where}); "
            f"priced on request ({OPT_IN}); the model was not trained there")
