"""An activation block that does not divide head_dim, in the real-checkpoint attention:
what the code does (Q and K blocked per head along head_dim, clipped to it, never across
heads; P and V blocked along the keys/tokens), and the note that says so."""
from types import SimpleNamespace

import numpy as np

from cosim.functional.lm import Numerics
from cosim.functional.lm.decoder import _short_group_notes

C = SimpleNamespace(hidden=576, intermediate=1536, heads=9, head_dim=64)  # SmolLM2-135M's shape


def _q(seed=0, n=5, heads=4, d=64):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((n, heads, d)).astype(np.float32)
    q[:, 1] *= 100.0  # one loud head: a block spanning heads would crush its neighbours
    return q


def test_q_blocks_longer_than_head_dim_are_clipped_per_head_never_spanning_heads():
    q = _q()
    for fmt in ("mxfp8_e4m3_b128", "bfp16_b128", "int4_g128"):
        num = Numerics.from_options(acts=fmt)
        got = num.attn_operand(q)
        per_head = np.stack([num.attn_operand(np.ascontiguousarray(q[:, h])) for h in range(q.shape[1])], 1)
        assert np.array_equal(got, per_head), fmt
        # ... and equal to a block of exactly head_dim (the block is clipped to the row)
        clipped = Numerics.from_options(acts=fmt.replace("_b128", "_b64").replace("_g128", "_g64")).attn_operand(q)
        assert np.array_equal(got, clipped), fmt
        spanning = num.attn_operand(q.reshape(q.shape[0], -1)).reshape(q.shape)  # what spanning heads would give
        assert not np.array_equal(got, spanning), fmt


def test_note_says_what_a_block_longer_than_head_dim_does():
    notes = _short_group_notes(C, Numerics.from_options(acts="mxfp8_e4m3_b128"))
    att = [n for n in notes if "in attention" in n]
    assert len(att) == 1
    # one e8m0 scale per 64 elements: 8 + 8/64 = 8.125 bits, not the 128-block's 8 + 8/128 = 8.0625
    assert ("head_dim 64 is shorter than one block of 128, so each (token, head) row is one zero-padded block "
            "(the block is clipped to head_dim, never spanning heads: one scale per 64 elements, 8.125 "
            "bits/element where the format's 128-element block is 8.0625)") in att[0]
    assert "P.V reduces over the keys" in att[0] and "head_dim does not limit its blocks" in att[0]
    g = [n for n in _short_group_notes(C, Numerics.from_options(acts="int4_g128")) if "in attention" in n]
    assert len(g) == 1 and "4.25 bits/element" in g[0] and "group of 128" in g[0]  # 4 + 16/64; 4 + 16/128 = 4.125
    short = [n for n in _short_group_notes(C, Numerics.from_options(acts="bfp16_b48")) if "in attention" in n]
    assert len(short) == 1 and "head_dim 64 is not a multiple of the block of 48" in short[0]


def test_no_attention_note_when_the_block_divides_head_dim_or_attention_is_unquantized():
    assert _short_group_notes(C, Numerics.from_options(acts="mxfp8_e4m3")) == ()  # 32 | 64
    assert not [n for n in _short_group_notes(C, Numerics.from_options(weights="mxfp4_b128")) if "in attention" in n]
    # compute: native keeps Q.K and P.V in fp32: no attention note, only the GEMM one
    nat = Numerics.from_options(recipe="mxfp4_native")
    assert not nat.attention_acts
    assert not [n for n in _short_group_notes(C, nat) if "in attention" in n]


# --- V is blocked along tokens: a decode step's open block holds only the tokens that exist at it ---------

def _attend(num, q, k, v, prefill):
    from cosim.functional.lm.attention import PolicyStats
    from cosim.functional.lm.decoder import DecoderLM
    fake = SimpleNamespace(num=num, _kv_policy_factory=lambda: None)  # the method reads only these
    return DecoderLM.attention(fake, q, k, v, prefill, PolicyStats())


def test_a_later_token_does_not_set_the_scale_of_an_earlier_steps_v_block():
    """3 tokens, one mxfp4 block of 32 along tokens, q = 0 so each row attends uniformly.
    V = 1.0, 0.75, then 100 at token 2. Decode row 1 reads tokens 0-1, whose block (as it exists
    at that step) has amax 1.0: scale 2^(0-2) = 0.25, 1.0 -> 4 x 0.25 and 0.75 -> 3 x 0.25 exactly;
    P = [0.5, 0.5] is exact too, so the row is 0.875. Before, token 2's 100 set the block's scale
    (2^(6-2) = 16), both earlier values rounded to 0 and the row read 0."""
    num = Numerics.from_options(acts="mxfp4")
    assert num.token_block == 32
    q = np.zeros((3, 1, 2), np.float32)
    v = np.array([1.0, 0.75, 100.0], np.float32).reshape(3, 1, 1).repeat(2, axis=2)
    out = _attend(num, q, q.copy(), v, prefill=1)
    assert out[0, 0, 0] == 1.0  # the prompt row reads token 0 alone
    assert out[1, 0, 0] == 0.875  # was 0.0
    # row 2 closes on all three tokens: block scale 16, 1.0 and 0.75 -> 0, 100 -> 6 x 16 = 96; P = 1/3
    # -> mxfp4 of [1/3]*3: scale 2^(-2-2), 1/3 / (1/16) = 5.33 -> 6 -> 0.375; 0.375 x 96 = 36
    assert out[2, 0, 0] == 36.0


def test_decode_rows_match_quantizing_each_steps_v_from_its_own_tokens():
    """Against the direct definition: row t's V is the acts format of V[:t+1] (any block length,
    any prompt length, GQA); the prompt rows' V is the prompt's."""
    from cosim.functional.lm.attention import causal_attention
    rng = np.random.default_rng(1)
    N, H, hkv, d, P = 150, 6, 2, 16, 37
    q = rng.standard_normal((N, H, d)).astype(np.float32)
    k = rng.standard_normal((N, hkv, d)).astype(np.float32)
    v = (rng.standard_normal((N, hkv, d)) * np.exp(2 * rng.standard_normal((N, 1, 1)))).astype(np.float32)
    for fmt in ("mxfp8_e4m3", "mxfp4", "bfp12", "int4_g64"):
        num = Numerics.from_options(acts=fmt)
        qp = lambda p: num.attn_operand(p)  # noqa: E731
        got = _attend(num, q, k, v, P)
        qa, ka = num.attn_operand(q), num.attn_operand(k)
        pre = causal_attention(qa, ka, num.attn_operand(v[:P], axis=0), range(0, P), qp)
        ref = np.stack([causal_attention(qa, ka, num.attn_operand(v[:t + 1], axis=0), range(t, t + 1), qp)[0]
                        for t in range(P, N)])
        np.testing.assert_array_equal(got[:P], pre)
        np.testing.assert_allclose(got[P:], ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())


def test_formats_with_a_tensor_scale_have_no_token_block():
    for fmt in ("fp8_e4m3", "nvfp4", "int8", "fp32"):
        assert Numerics.from_options(acts=fmt).token_block is None, fmt
    assert Numerics.from_options(acts="int4_g128").token_block == 128
    assert Numerics.from_options(recipe="mxfp4_native").token_block is None  # attention stays fp32
