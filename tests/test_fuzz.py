"""Issue 15 acceptance: the fuzz corpus (tests/fuzz/corpus.jsonl, run whole in the slow
tier) and hypothesis-generated YAML / JSON / array / store inputs (fast tier): no input
gives a traceback; each either works or raises the documented error."""

from __future__ import annotations

import json
import string
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from workloads.io import InputError

from tests.script_loader import load_script

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "fuzz" / "corpus.jsonl"


def _fuzz_module():
    return load_script("scripts/fuzz.py", "cosim_fuzz")


def test_corpus_covers_every_input_kind_with_300_cases():
    cases = [json.loads(ln) for ln in CORPUS.read_text().splitlines()]
    kinds = {c["kind"] for c in cases}
    assert len(cases) >= 300 and len({c["id"] for c in cases}) == len(cases)
    assert kinds == {"model_yaml", "hf_json", "recipe_yaml", "experiment_yaml", "sweep_yaml", "hw_yaml", "cli",
                     "qtensor", "store", "api"}


def test_a_sample_of_the_corpus_in_process(tmp_path):
    fz = _fuzz_module()
    cases = [json.loads(ln) for ln in CORPUS.read_text().splitlines()]
    sample = [c for c in cases[::15] if c["kind"] not in ("cli",)] + [c for c in cases if c["kind"] == "store"]
    for c in sample:
        d = tmp_path / c["id"]
        d.mkdir(exist_ok=True)
        res = fz.run_case(c, d)
        res.setdefault("peak_rss", 0)
        assert fz.verdict(c, res) is None, (c["id"], res)


@pytest.mark.slow
def test_whole_corpus_no_traceback_hang_or_blowup():
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "fuzz.py")], capture_output=True, text=True,
                       timeout=1800, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "0 failed" in r.stdout


# ---------------------------------------------------------------------------- hypothesis (fast tier)

_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10 ** 12, 10 ** 12), st.floats(allow_nan=True),
                     st.text(max_size=8))
_values = st.recursive(_scalars, lambda kids: st.one_of(st.lists(kids, max_size=4),
                                                        st.dictionaries(st.text(max_size=6), kids, max_size=4)),
                       max_leaves=12)


@settings(max_examples=150, deadline=None)
@given(text=st.text(alphabet=string.printable + "&*!|>-[]{}:", max_size=300))
def test_yaml_text_loads_or_raises_input_error(text):
    from workloads.yamlsafe import load_yaml_text
    try:
        load_yaml_text(text, "<fuzz>")
    except InputError:
        pass


MODEL_KEYS = ["hidden", "layers", "heads", "kv_heads", "intermediate", "vocab", "head_dim", "norm", "moe", "mla",
              "sliding_window", "max_context", "tie_embeddings", "qkv_bias", "hiden"]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=st.dictionaries(st.sampled_from(MODEL_KEYS), st.one_of(st.integers(-4, 4096), _values), max_size=9))
def test_model_documents_build_or_raise_input_error(tmp_path, doc):
    import yaml

    from workloads.models import ModelSpec, load_model
    base = {"hidden": 256, "layers": 2, "heads": 4, "intermediate": 512, "vocab": 100}
    p = tmp_path / "m.yaml"
    p.write_text(yaml.safe_dump({**base, **doc}))
    try:
        m = load_model(p)
    except InputError:
        return
    assert isinstance(m, ModelSpec) and m.params > 0
    assert m.hidden % m.heads == 0 or doc.get("head_dim") or m.mla  # never a truncated head width


HF_KEYS = ["hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "intermediate_size",
           "vocab_size", "num_local_experts", "num_experts_per_tok", "kv_lora_rank", "v_head_dim", "sliding_window",
           "tie_word_embeddings", "text_config", "max_position_embeddings", "first_k_dense_replace"]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=st.dictionaries(st.sampled_from(HF_KEYS), st.one_of(st.integers(-2, 4096), _values), max_size=8))
def test_hf_configs_build_or_raise_input_error(tmp_path, doc):
    from workloads.models import load_model
    base = {"hidden_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 100,
            "intermediate_size": 512}
    p = tmp_path / "config.json"
    try:
        p.write_text(json.dumps({**base, **doc}))
    except ValueError:  # NaN keys etc. JSON cannot write
        return
    try:
        load_model(p)
    except InputError:
        pass


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.integers(1, 40), cols=st.integers(1, 90), axis=st.sampled_from([0, -1]),
       fmt=st.sampled_from(["mxfp4", "nvfp4", "int4_g32_zp", "mx6", "bfp16", "int8", "bf16", "mxint8"]),
       scale=st.floats(1e-30, 1e30), seed=st.integers(0, 2 ** 16))
def test_blocked_encode_decode_equals_quantize(monkeypatch, rows, cols, axis, fmt, scale, seed):
    import cosim.functional as F
    from cosim.functional import stream
    monkeypatch.setattr(stream, "CHUNK_ELEMENTS", 48)
    x = (np.random.default_rng(seed).standard_normal((rows, cols)) * scale).astype(np.float32)
    q = F.encode(x, fmt, axis=axis)
    np.testing.assert_array_equal(F.decode(q), F.quantize(x, fmt, axis=axis))


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=600), lines=st.lists(st.sampled_from([
    b'{}', b'[]', b'{"keys": [1]}', b'null', b'{"version":"t","keys":["a"],"index":[0],"values":[[1]],"fields":["x"],'
    b'"metrics":{},"config":{"hw":{"overrides":{}}},"status":"ok"}']), max_size=5))
def test_any_store_bytes_are_read_without_raising(data, lines):
    from cosim.dse.store import scan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        records, problems, end = scan("<fuzz>", b"\n".join(lines) + b"\n" + data)
    assert end <= len(b"\n".join(lines)) + 1 + len(data)
    assert all(isinstance(p[0], int) for p in problems)
