"""Session-7 model terms (issue 11): the library dispatch rules of hwmodels/gpu_library.py by
hand, and how hwmodels.gpu prices them when a calibration carries their parameter."""
import dataclasses
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cosim
from cosim.calibrate import dataset
from hwmodels import gpu, gpu_library, gpu_params


def test_softmax_shared_memory_rule_by_hand():
    # 48 KiB per block less 32 fp32 warp sums = 49,024 B: rows of < 24,512 bf16 elements that are
    # a multiple of 8 (16-byte vectors) stay in shared memory; the others re-read the row per pass
    assert (gpu_library.SMEM_PER_BLOCK - gpu_library._REDUCE_SCRATCH) / 2 == 24512
    got = gpu_library.softmax_multipass([12800, 10263, 24504, 24512, 32000, 16384, 16385])
    assert list(got) == [False, True, False, True, True, False, True]


def test_small_index_embedding_and_mqa_copies_by_hand():
    assert list(gpu_library.index_select_small([1, 16, 17, 32])) == [True, True, False, False]
    assert gpu_library.mqa_copies(1, 32, 1) == (False, False)  # batch 1: matmul folds (1, h) as a view
    assert gpu_library.mqa_copies(2, 32, 1) == (True, True)
    assert gpu_library.mqa_copies(2, 32, 8) is None  # GQA: repeat_kv copies itself
    assert gpu_library.mqa_copies(2, 1, 1) is None  # MHA of one head: nothing to broadcast


def _attn(b, h, kvh, q, kv, d=128, causal=False, impl="unfused:hf_eager"):
    return dataset.op_from_row({"kind": "attention", "fmt": "bf16", "impl": impl, "dims": json.dumps(
        {"batch": b, "heads": h, "kv_heads": kvh, "q_len": q, "kv_len": kv, "head_dim": d, "causal": causal})})


def test_eager_mqa_kernels_by_hand():
    """batch 1: no copy at all; batch 3, 16 heads, 1000 keys: K^T (transposing) and V copies of
    3 x 16 x 1000 x 128 bf16 written from 3 x 1000 x 128 read; GQA keeps repeat_kv's copies."""
    names = lambda op: [p.name for p in gpu.unfused_parts(op)]  # noqa: E731
    assert names(_attn(1, 16, 1, 1, 1000)) == ["qk", "scale", "softmax", "cast", "pv"]
    parts = {p.name: p for p in gpu.unfused_parts(_attn(3, 16, 1, 1, 1000))}
    assert list(parts)[:2] == ["bcast_kT", "bcast_v"]
    assert parts["bcast_kT"].bytes == 2 * (3 * 1000 * 128 + 3 * 16 * 1000 * 128)
    assert names(_attn(3, 16, 8, 1, 1000))[:2] == ["repeat_k", "repeat_v"]


def test_mqa_transposing_copy_takes_its_own_multiplier():
    hw = cosim.load_hw("h200")
    P = gpu.params_for(hw)
    P = dataclasses.replace(P, values={**P.values, "unfused.transpose_mult": 7.0, "unfused.gather_mult": 2.0})
    scaled = {p.name: Pp for p, Pp in gpu.unfused_scaled(_attn(3, 16, 1, 1, 1000), P)}
    assert scaled["bcast_kT"]["ew.copy.mult"] == pytest.approx(P["ew.copy.mult"] * 7.0)
    assert scaled["bcast_v"]["ew.copy.mult"] == pytest.approx(P["ew.copy.mult"] * 2.0)


def _ew_params(**extra):
    P = gpu.params_for(cosim.load_hw("h200"))
    values = {k: v for k, v in P.values.items() if k not in ("ew.softmax.multipass", "ew.embedding.small_idx")}
    return dataclasses.replace(P, values={**values, **extra})


def test_multipass_softmax_and_small_index_embedding_terms_by_hand():
    P0, P1 = _ew_params(), _ew_params(**{"ew.softmax.multipass": 2.0, "ew.embedding.small_idx": 1e-6})
    for cols, f in ((10263, 2.0), (12800, 1.0)):
        rows = 4096
        a, b = gpu.ew_terms(P0, "softmax", 4 * rows * cols, 1, cols, rows), gpu.ew_terms(P1, "softmax", 4 * rows * cols, 1, cols, rows)
        assert float(b[2]) == pytest.approx(f * float(a[2]))  # stream
        assert float(b[4]) == pytest.approx(f * float(a[4]))  # row waves
    for rows, extra in ((16, 16e-6), (17, 0.0)):
        a, b = gpu.ew_terms(P0, "embedding", 4 * rows * 4096, 1, 4096, rows), gpu.ew_terms(P1, "embedding", 4 * rows * 4096, 1, 4096, rows)
        assert float(b[3]) - float(a[3]) == pytest.approx(extra)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 8192), st.integers(8, 256), st.integers(8, 256))
def test_more_tile_candidates_never_slow_a_gemm(m, n128, k128):
    """gemm.tile_set = 1 adds the 192 x 192 tile to the candidates; the fastest candidate wins, so
    no GEMM gets slower, and the 192 x 192 tile is in the list."""
    P = gpu.params_for(cosim.load_hw("h200"))
    P0 = dataclasses.replace(P, values={k: v for k, v in P.values.items() if k != "gemm.tile_set"})
    P1 = dataclasses.replace(P, values={**P.values, "gemm.tile_set": 1.0})
    assert (192, 192) in gpu_library.tiles(gpu_params.TILES, 1.0)
    args = ([m], [128 * n128], [128 * k128], [1], 989e12, 2.0, 2.0, "bf16")
    assert gpu.gemm_time(P1, *args)[0] <= gpu.gemm_time(P0, *args)[0] * (1 + 1e-12)


def test_calibrations_carry_the_chosen_terms_only(h100_session9):
    """The H200 split chose four of the five session-7 terms (s7_candidates.txt); the H100 split
    none: its session-9 calibration has none of their parameters (the session-16 re-fit takes the H200's set:
    tests/test_h100_refit.py), and FA2's forward split-KV is in neither."""
    h200 = gpu.params_for(cosim.load_hw("h200")).values
    h100 = gpu.params_for(h100_session9).values
    s7 = ("gemm.tile_set", "ew.softmax.multipass", "ew.embedding.small_idx", "unfused.transpose_mult")
    assert all(k in h200 for k in s7) and h200["gemm.tile_set"] == 1.0
    assert not any(k in h100 for k in s7 + ("attn.fwd_split",)) and "attn.fwd_split" not in h200
    # round 13 (s24): with per-path waves the register and shared-memory rows are priced by their waves (the fitted
    # ew.softmax.mult is ~0.01) and multipass applies to the global-memory path alone, so their product is that path's
    # bytes moved over compulsory bytes: between 1 (read once) and 3 (a read per pass and the write, over 2)
    assert 1.0 < h200["ew.softmax.mult"] * h200["ew.softmax.multipass"] < 3.0
    assert 1e-7 < h200["ew.embedding.small_idx"] < 5e-6


def test_fit_adds_a_term_only_where_its_rows_identify_it():
    from cosim.calibrate import fit
    rows = [m for m in dataset.load_ops("validation/h200_runs.csv") if m.split == "fit" and m.op is not None]
    ew = [m for m in rows if m.cls == "elementwise"]
    values = {}
    assert fit._s7_optional("elementwise", ew, values, fit.TERMS) == ["ew.softmax.multipass", "ew.embedding.small_idx"]
    assert fit._s7_optional("elementwise", ew, {}, fit.S7_OFF) == []
    big = [m for m in ew if m.op.kind != "embedding" or m.op.dims["rows"] > 16]
    assert "ew.embedding.small_idx" not in fit._s7_optional("elementwise", big, {}, fit.TERMS)
    unf = [m for m in rows if m.cls.endswith("_unfused") and m.op.dims["kv_heads"] > 1]
    # no MQA row with batch > 1: only the second round's score-softmax multiplier (every unfused row has one)
    assert fit._s7_optional("unfused", unf, {}, fit.TERMS) == ["unfused.softmax_mult"]
    assert fit._s7_optional("unfused", unf, {}, fit.S7_OFF) == []
