"""Session 16 review leftovers in the functional core and one benchmark (helper h16a): one source of truth for
RoPE, the stable softmax and the commit label; scaled_decode_attention's dead quant_p gone; serving_vs_vidur
says how many requests its TPOT percentiles leave out. Each test fails on the code before its fix."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from cosim.functional.lm import attention as A
from cosim.functional.rope import apply_rope, rope_angles, rope_tables, rotate_half
from cosim.functional.softmax import softmax


# -- 1. RoPE: one rotation (cosim.functional.rope), the decoder's, StreamingLLM's and the twins' ---------------------
def test_apply_rope_by_hand():
    # d = 4, theta = 10000: pairs (0, 2) turn by 1 rad per position, (1, 3) by 10000^(-1/2) = 0.01 rad
    cos, sin = rope_tables(3, 4, 10000.0)
    x = np.array([[[1.0, 2.0, 3.0, 4.0]]], np.float32)
    got = apply_rope(x, cos, sin, positions=np.array([1]))[0, 0]
    c1, s1, c2, s2 = math.cos(1), math.sin(1), math.cos(0.01), math.sin(0.01)
    want = [1 * c1 - 3 * s1, 2 * c2 - 4 * s2, 1 * s1 + 3 * c1, 2 * s2 + 4 * c2]
    np.testing.assert_allclose(got, want, rtol=1e-6)


def _rope_rows_before(x, pos, cos, sin):
    """attention._rope_rows as it was (session 15), the second copy of the decoder's rotation."""
    half = x.shape[-1] // 2
    a, b = x[..., :half], x[..., half:]
    c, s = cos[pos][:, None, :], sin[pos][:, None, :]
    return np.concatenate([a * c - b * s, a * s + b * c], axis=-1)


def test_rope_at_positions_is_bit_identical_to_the_copy_it_replaced():
    rng = np.random.default_rng(0)
    cos, sin = rope_tables(64, 16, 10000.0)
    x = rng.standard_normal((5, 3, 16)).astype(np.float32)
    pos = np.array([0, 7, 8, 40, 63])
    np.testing.assert_array_equal(apply_rope(x, cos, sin, positions=pos), _rope_rows_before(x, pos, cos, sin))
    np.testing.assert_array_equal(apply_rope(x, cos[pos], sin[pos]), _rope_rows_before(x, pos, cos, sin))


def test_twins_rope_is_the_same_rotation_in_float64():
    from cosim.functional.compression.quant import rope
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 8))
    pos = np.arange(3, 9)
    ang = rope_angles(pos, 8, 500.0)
    via_decoder = apply_rope(x[:, None, :], np.cos(ang), np.sin(ang))[:, 0].astype(np.float32)
    np.testing.assert_array_equal(rope(x, pos, 500.0), via_decoder)
    # the angles the twins computed before: theta^(-2i/d) from -arange(d/2) * 2.0 / d
    old = np.asarray(pos, np.float64)[:, None] * (500.0 ** (-np.arange(4) * 2.0 / 8))[None, :]
    np.testing.assert_array_equal(ang, old)
    np.testing.assert_array_equal(rope(x, pos, 500.0), rotate_half(x, np.cos(old), np.sin(old)).astype(np.float32))


def test_streaming_sink_keys_are_rotated_by_the_decoders_rope(monkeypatch):
    calls = []

    def counting(x, cos, sin, positions=None):
        calls.append(None if positions is None else np.asarray(positions).tolist())
        return apply_rope(x, cos, sin, positions)

    monkeypatch.setattr(A, "apply_rope", counting)  # was: attention had its own _rope_rows
    assert not hasattr(A, "_rope_rows")
    rng = np.random.default_rng(2)
    N, d = 12, 8
    cos, sin = rope_tables(N, d, 10000.0)
    q = rng.standard_normal((N, 2, d)).astype(np.float32)
    k_pre = rng.standard_normal((N, 1, d)).astype(np.float32)
    v = rng.standard_normal((N, 1, d)).astype(np.float32)
    k = apply_rope(k_pre, cos, sin)
    A.streaming_attention(apply_rope(q, cos, sin), k, v, k_pre, cos, sin, 1, 3, True, 6, A.PolicyStats())
    # sinks = 1, recent = 3: from t = 4 on the sink key is read at cache index t - 3 (shift t - (cap - 1))
    assert calls == [[t - 3] for t in range(4, N)]


# -- 2. one stable softmax (cosim.functional.softmax) ---------------------------------------------------------------
def test_softmax_by_hand():
    np.testing.assert_allclose(softmax([0.0, math.log(3.0)]), [0.25, 0.75], rtol=1e-15)
    assert softmax(np.array([1000.0, 1000.0], np.float32)).tolist() == [0.5, 0.5]  # no overflow
    assert softmax(np.array([1.0, 2.0], np.float32)).dtype == np.float32
    assert softmax([1, 2]).dtype == np.float64 and softmax([1, 2], dtype=np.float32).dtype == np.float32
    s = np.array([[0.0, 0.0], [-np.inf, -np.inf]])
    with np.errstate(invalid="ignore"):
        out = softmax(s, axis=1, inplace=True)
    assert out is s and out[0].tolist() == [0.5, 0.5] and np.isnan(out[1]).all()  # no key: NaN, not a guess
    with pytest.raises(ValueError, match=r"inplace=True\) needs a float ndarray of the dtype computed; got ndarray of dtype int64"):
        softmax(np.array([1, 2]), inplace=True)


def _inline_before(s, axis):
    """The inline softmax kv.py and streaming_attention had: s -= max; p = exp(s); p /= sum."""
    s = s.copy()
    s -= s.max(axis=axis, keepdims=True)
    p = np.exp(s)
    p /= p.sum(axis=axis, keepdims=True)
    return p


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 9)),
              elements=st.floats(-300, 300, allow_nan=False)), st.sampled_from([np.float32, np.float64]),
       st.booleans())
def test_softmax_is_the_inline_formula_bit_for_bit_and_a_distribution(x, dtype, mask):
    x = x.astype(dtype)
    if mask and min(x.shape) > 1:
        x[0, -1] = -np.inf  # a causal mask's -inf (its row and column keep finite scores)
    for axis in (0, 1):
        p = softmax(x, axis=axis)
        np.testing.assert_array_equal(p, _inline_before(x, axis))
        assert np.all(p >= 0) and np.allclose(p.sum(axis=axis), 1.0, rtol=1e-5)
    np.testing.assert_allclose(softmax(x + 7.0), softmax(x), rtol=1e-4, atol=1e-30)  # shift invariant


def test_kv_twins_and_streaming_take_their_probabilities_from_the_one_softmax(monkeypatch):
    import cosim.functional.compression.kv as kv
    calls = {"kv": 0, "attention": 0}

    def counting(key):
        def f(*a, **kw):
            calls[key] += 1
            return softmax(*a, **kw)
        return f

    monkeypatch.setattr(kv, "softmax", counting("kv"))  # was: inline exp/sum in kv.py, no such name
    monkeypatch.setattr(A, "softmax", counting("attention"))
    rng = np.random.default_rng(3)
    N, d = 16, 8
    q = rng.standard_normal((N, 2, d)).astype(np.float32)
    k = rng.standard_normal((N, 1, d)).astype(np.float32)
    v = rng.standard_normal((N, 1, d)).astype(np.float32)
    for sal, gap in (("probe", 2), ("accumulated", 0)):
        A.policy_attention(q, k, v, 8, lambda: kv.MixedPrecisionPolicy(4, 2, 0.5, saliency=sal, requant_interval=gap),
                           A.PolicyStats())
    # ZipCache scores a completed chunk every 2nd of 8 steps (4 calls); MiKV scores every step (8 calls)
    assert calls["kv"] == 4 + 8
    cos, sin = rope_tables(N, d, 10000.0)
    A.streaming_attention(q, k, v, k, cos, sin, 1, 3, False, 8, A.PolicyStats())
    # every row reads its window (16 calls); the 8 decode rows past the window also take the exact mass (8)
    assert calls["attention"] == 16 + 8


# -- 3. scaled_decode_attention: P always quantized, no dead switch ------------------------------------------------
def test_scaled_decode_attention_has_no_quant_p_switch_and_quantizes_p():
    from cosim.functional.lm.numerics import CallScaled, Numerics
    rng = np.random.default_rng(4)
    q = rng.standard_normal((24, 4, 16)).astype(np.float32)
    k = rng.standard_normal((24, 2, 16)).astype(np.float32)
    v = rng.standard_normal((24, 2, 16)).astype(np.float32)
    rows = range(10, 24)
    with pytest.raises(TypeError):  # was: quant_p=False silently left P unquantized; no caller ever passed it
        A.scaled_decode_attention(q, k, v, rows, CallScaled("nvfp4"), quant_p=False)
    op = Numerics.from_options(acts="nvfp4").attn_operand
    got = A.scaled_decode_attention(q, k, v, rows, CallScaled("nvfp4"))
    np.testing.assert_array_equal(got, A.decode_attention(q, k, v, rows, op, op))
    assert not np.array_equal(got, A.decode_attention(q, k, v, rows, op, None))  # P's quantization acts


# -- 4. one commit label: cosim.report.git_commit --------------------------------------------------------------------
def test_benchmarks_label_results_with_reports_commit(monkeypatch):
    from cosim import report
    from tests.script_loader import load_script
    monkeypatch.setattr(report, "_GIT", ["0123abc (modified tracked files)"])
    for path in ("benchmarks/window_noise.py", "benchmarks/attention_order.py", "benchmarks/real_accuracy_recheck.py"):
        mod = load_script(path, "s16_" + path.split("/")[1][:-3])
        assert mod.git_commit is report.git_commit, path  # was: window_noise._commit, a second git lookup
        assert mod.git_commit() == "0123abc (modified tracked files)"
        assert not hasattr(mod, "_commit"), path
    assert report.json_header()["git_commit"] == "0123abc (modified tracked files)"


# -- 5. serving_vs_vidur: TPOT percentiles say how many one-token requests they leave out ----------------------------
@pytest.fixture(scope="module")
def svv():
    pytest.importorskip("pandas")
    from tests.script_loader import load_script
    return load_script("benchmarks/serving_vs_vidur.py", "s16_serving_vs_vidur")


def test_tpot_stats_by_hand(svv):
    s = svv.tpot_stats([float("nan"), 0.010, 0.020, 0.030, float("nan")], [1, 2, 3, 5, 1])
    assert s["tpot_excluded"] == 2 and s["tpot_requests"] == 3
    # the 3 timed requests' 10, 20, 30 ms: p50 20, p90 20 + 0.8 x 10 = 28, p99 20 + 0.98 x 10 = 29.8 (linear)
    assert s["tpot_p50_ms"] == pytest.approx(20.0) and s["tpot_p90_ms"] == pytest.approx(28.0)
    assert s["tpot_p99_ms"] == pytest.approx(29.8)
    none = svv.tpot_stats([float("nan")], [1])
    assert none["tpot_excluded"] == 1 and none["tpot_requests"] == 0 and math.isnan(none["tpot_p50_ms"])


def test_tpot_stats_refuses_a_missing_or_stray_tpot(svv):
    with pytest.raises(ValueError, match="request 1 has 3 output tokens and TPOT nan"):
        svv.tpot_stats([0.01, float("nan")], [2, 3])
    with pytest.raises(ValueError, match="request 0 has 1 output tokens and TPOT 0.01"):
        svv.tpot_stats([0.01], [1])


def test_vidur_rows_count_their_one_token_requests(svv):
    import pandas as pd
    df = pd.DataFrame({"Request Id": [1, 0], "prefill_e2e_time": [0.02, 0.01], "request_num_decode_tokens": [3, 1],
                       "decode_time_execution_plus_preemption_normalized": [0.02, 0.01],
                       "request_e2e_time": [0.1, 0.05]})
    ttft, tpot, n, thr = svv.vidur_stats(df, pd.DataFrame({"arrived_at": [0.0, 1.0]}))
    s = svv.tpot_stats(tpot, n)
    # request 0 (1 token) has no TPOT; request 1: 0.02 s x 3 / 2 gaps = 30 ms; 4 tokens over 1.1 s
    assert s["tpot_excluded"] == 1 and s["tpot_requests"] == 1 and s["tpot_p50_ms"] == pytest.approx(30.0)
    assert thr == pytest.approx(4 / 1.1)
