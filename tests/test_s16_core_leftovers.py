"""Session 16 review leftovers in the functional core and one benchmark (helper h16a): one source of truth for
RoPE, the stable softmax and the commit label; scaled_decode_attention's dead quant_p gone; serving_vs_vidur
says how many requests its TPOT percentiles leave out. Each test fails on the code before its fix."""
import math

import numpy as np
import pytest

from cosim.functional.lm import attention as A
from cosim.functional.rope import apply_rope, rope_angles, rope_tables, rotate_half


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
