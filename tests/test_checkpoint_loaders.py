"""Checkpoint loaders on tiny files written here: GGUF types, safetensors dtypes, the
Q/K un-permute, and one clear error for every kind of bad checkpoint."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cosim.functional.checkpoint import CheckpointError, load_checkpoint
from tests.checkpoint_helpers import (hf_config, tiny_weights, write_tiny_gguf, write_tiny_mixtral,
                                     write_tiny_safetensors)

pytest.importorskip("gguf")
pytest.importorskip("safetensors")

# worst relative (Frobenius) error of each GGUF type on Gaussian weights: F16 ~ 2^-11;
# Q8_0 (8-bit, per-32 scale) ~ 1/(127*sqrt(3)*...) ; Q4 ~ 1/(7*...)
GGUF_TOL = {"F32": 0.0, "F16": 1e-3, "BF16": 1e-2, "Q8_0": 1e-2, "Q4_0": 0.15, "Q4_1": 0.12}


@pytest.mark.parametrize("qtype", ["F32", "F16", "Q8_0", "Q4_0", "Q4_1"])
def test_gguf_round_trip_and_unpermute(tmp_path, qtype):
    w = tiny_weights()
    ck = load_checkpoint(write_tiny_gguf(tmp_path / f"m_{qtype}.gguf", w, qtype))
    assert ck.config.layers == 2 and ck.config.heads == 4 and ck.config.kv_heads == 2 and not ck.config.tied_embeddings
    for name in ("layers.0.q", "layers.1.k", "layers.0.mlp_down", "embed"):
        ref, got = w[name], ck.tensor(name)
        err = np.linalg.norm(got - ref) / np.linalg.norm(ref)
        assert err <= GGUF_TOL[qtype] + 1e-7, (name, err)  # un-permuted Q/K land back on the HF rows
    assert qtype in ck.file_format or qtype == "F32"


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(heads=st.sampled_from([2, 4, 8]), group=st.sampled_from([1, 2]), seed=st.integers(0, 1000))
def test_gguf_unpermute_is_exact_inverse_for_any_head_layout(tmp_path_factory, heads, group, seed):
    kv = heads // group
    w = tiny_weights(seed, heads=heads, kv_heads=kv)
    path = write_tiny_gguf(tmp_path_factory.mktemp("g") / "m.gguf", w, "F32", heads=heads, kv_heads=kv)
    ck = load_checkpoint(path)
    assert np.array_equal(ck.tensor("layers.1.q"), w["layers.1.q"])
    assert np.array_equal(ck.tensor("layers.1.k"), w["layers.1.k"])


def test_safetensors_fp32_and_bf16(tmp_path):
    import ml_dtypes
    w = tiny_weights()
    ck = load_checkpoint(write_tiny_safetensors(tmp_path / "f32", w))
    assert np.array_equal(ck.tensor("layers.1.v"), w["layers.1.v"])
    ck16 = load_checkpoint(write_tiny_safetensors(tmp_path / "bf16", w, dtype=ml_dtypes.bfloat16))
    err = np.abs(ck16.tensor("layers.0.o") - w["layers.0.o"]).max() / np.abs(w["layers.0.o"]).max()
    assert 0 < err < 2 ** -7  # bf16 keeps 8 significant bits


def test_gguf_and_safetensors_give_the_same_forward(tmp_path):
    from cosim.functional.lm import DecoderLM
    w = tiny_weights(3)
    a = load_checkpoint(write_tiny_gguf(tmp_path / "m.gguf", w))
    b = load_checkpoint(write_tiny_safetensors(tmp_path / "st", w))
    ids = np.arange(20) % 64
    la = DecoderLM(a).forward(ids, 10).logits
    lb = DecoderLM(b).forward(ids, 10).logits
    np.testing.assert_allclose(la, lb, rtol=1e-5, atol=1e-5)


# -- bad checkpoints: one clear error naming file and tensor/field ------------------------------

def test_missing_tensor_is_named(tmp_path):
    with pytest.raises(CheckpointError, match=r"missing tensor\(s\) layers\.1\.mlp_up"):
        load_checkpoint(write_tiny_gguf(tmp_path / "m.gguf", tiny_weights(), drop="layers.1.mlp_up"))


def test_truncated_gguf(tmp_path):
    p = write_tiny_gguf(tmp_path / "m.gguf", tiny_weights())
    data = p.read_bytes()
    (tmp_path / "t.gguf").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"t\.gguf"):
        load_checkpoint(tmp_path / "t.gguf")


def test_wrong_architecture(tmp_path):
    with pytest.raises(CheckpointError, match="general.architecture='gpt2' is not supported"):
        load_checkpoint(write_tiny_gguf(tmp_path / "m.gguf", tiny_weights(), arch="gpt2"))
    cfg = hf_config()
    cfg["architectures"] = ["GPT2LMHeadModel"]
    cfg["model_type"] = "gpt2"
    with pytest.raises(CheckpointError, match="GPT2LMHeadModel"):
        load_checkpoint(write_tiny_safetensors(tmp_path / "st", tiny_weights(), cfg))


def test_nan_weights_are_refused(tmp_path):
    w = tiny_weights()
    w["layers.0.mlp_gate"][3, 5] = np.nan
    with pytest.raises(CheckpointError, match=r"'layers\.0\.mlp_gate' holds 1 non-finite"):
        load_checkpoint(write_tiny_safetensors(tmp_path / "st", w))


def test_integer_dtype_is_refused(tmp_path):
    w = tiny_weights()
    ck_dir = write_tiny_safetensors(tmp_path / "st", w, dtype=np.int32)
    with pytest.raises(CheckpointError, match="dtype int32; expected a floating-point dtype"):
        load_checkpoint(ck_dir)


def test_shape_mismatch_and_misnamed(tmp_path):
    w = tiny_weights()
    w["layers.0.k"] = w["layers.0.k"][:16]
    with pytest.raises(CheckpointError, match=r"'layers\.0\.k' has shape \(16, 64\); the config implies \(32, 64\)"):
        load_checkpoint(write_tiny_safetensors(tmp_path / "a", w))
    import safetensors.numpy
    d = tmp_path / "b"
    d.mkdir()
    safetensors.numpy.save_file({"transformer.h.0.attn.c_attn.weight": np.zeros((4, 4), np.float32)},
                                str(d / "model.safetensors"))
    (d / "config.json").write_text(__import__("json").dumps(hf_config()))
    with pytest.raises(CheckpointError, match="transformer.h.0.attn.c_attn.weight"):
        load_checkpoint(d)


def test_not_a_checkpoint(tmp_path):
    (tmp_path / "x.safetensors").write_bytes(b"\x00" * 40)
    with pytest.raises(CheckpointError, match="x.safetensors"):
        load_checkpoint(tmp_path / "x.safetensors")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "nope.gguf")


@settings(max_examples=25, deadline=None)
@given(st.binary(min_size=0, max_size=300))
def test_random_bytes_never_crash_the_gguf_loader(tmp_path_factory, blob):
    p = tmp_path_factory.mktemp("fuzz") / "f.gguf"
    p.write_bytes(b"GGUF" + blob)
    with pytest.raises(CheckpointError):
        load_checkpoint(p)


def test_mixtral_style_moe_checkpoint_routes_like_a_per_token_reference(tmp_path):
    """A tiny Mixtral-layout safetensors checkpoint: the stacked experts load by name, and
    the MoE MLP equals a plain per-token loop (softmax over the top-k router logits)."""
    import safetensors.numpy
    from cosim.functional.lm import DecoderLM
    from cosim.functional.lm.decoder import silu
    rng = np.random.default_rng(1)
    E, k, ff, h = 4, 2, 96, 64
    d, out = write_tiny_mixtral(tmp_path / "moe", E, k)
    ck = load_checkpoint(d)
    assert ck.tensor("layers.1.experts_gate").shape == (E, ff, h)
    m = DecoderLM(ck)
    x = rng.standard_normal((7, h)).astype(np.float32)
    got = m.mlp(x, 1)
    ref = np.zeros_like(x)
    for t in range(7):
        logits = out["model.layers.1.block_sparse_moe.gate.weight"] @ x[t]
        top = np.argsort(-logits)[:k]
        g = np.exp(logits[top] - logits[top].max())
        g /= g.sum()
        for e, ge in zip(top, g):
            p = f"model.layers.1.block_sparse_moe.experts.{e}."
            a = silu(out[p + "w1.weight"] @ x[t]) * (out[p + "w3.weight"] @ x[t])
            ref[t] += ge * (out[p + "w2.weight"] @ a)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
    assert np.isfinite(m.forward(np.arange(12) % 64, 6).logits).all()
    missing = dict(out)
    del missing["model.layers.0.block_sparse_moe.experts.3.w2.weight"]
    safetensors.numpy.save_file(missing, str(d / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"layers\.0\.experts_down: experts \[3\] are missing"):
        load_checkpoint(d)


def test_short_int_group_is_reported_and_fp8_kv_saturates_at_the_prompt_scale(tmp_path):
    from cosim.functional.lm import DecoderLM, Numerics
    from cosim.functional.lm.decoder import kv_cache_view
    ck = load_checkpoint(write_tiny_safetensors(tmp_path / "st", tiny_weights()))
    out = DecoderLM(ck, Numerics.from_options(weights="int4_g128")).forward(np.arange(12) % 64, 6)
    assert any("not a multiple of the group of 128" in n and "[64, 96]" in n for n in out.notes)
    # per-KV-head scale = prompt amax / 448: a later value 10x the prompt's range saturates at it
    k = np.ones((4, 2, 8), np.float32)
    k[3, 0, 0] = 10.0
    kc, _ = kv_cache_view(k, k, "fp8_e4m3", prefill=3)
    assert kc[3, 0, 0] == pytest.approx(1.0) and np.isfinite(kc).all()
