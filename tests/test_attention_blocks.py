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
