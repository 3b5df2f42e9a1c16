"""Fit suite 5 (issue 11, session 6): the shapes the held-out-4 tails were made of, drawn at random
with a fixed seed, measured on the H200 (validation/raw_h200_run8/) for the next session's model
work. Its case lists are pinned, no case is a case of any held-out suite, and the draws follow the
ranges microbench.py states."""
from cosim.calibrate import microbench as mb
from cosim.calibrate.suite_digest import suite_cases, suite_digest
from tests.suite_checks import suite_shapes

FIT5_DIGEST = "cb855e9ad784e62ccc37e263635c36a9b89b6e26e2f6883a9f9dba5dcc80ab27"
HELDOUT_SUITES = ("heldout", "heldout2", "heldout3", "heldout4")


def test_fit5_case_lists_are_pinned():
    assert {k: len(v) for k, v in suite_cases("fit5").items()} == {"attention": 216, "elementwise": 64, "gemm": 156}
    assert suite_digest("fit5") == FIT5_DIGEST


def test_fit5_has_no_held_out_shape():
    fit5 = suite_shapes("fit5")
    assert len(fit5) == 216 + 64 + 156  # no duplicate cases either
    for v in HELDOUT_SUITES:
        assert not fit5 & suite_shapes(v), v


def test_overlap_check_sees_a_shared_shape():
    # the check above can fail: heldout4's first GEMM, as fit5 would list it, is found
    m, n, k = suite_cases("heldout4")["gemm"][0]
    assert ("gemm", m, n, k) in suite_shapes("heldout4")


def test_fit5_draws_follow_the_stated_ranges():
    c = suite_cases("fit5")
    bands = mb.FIT5_M_BANDS
    tile = [x for x in c["gemm"] if x[0] > 64]
    small = [x for x in c["gemm"] if x[0] <= 64]
    assert len(tile) == 108 and len(small) == 48
    assert all(any(lo <= m <= hi for lo, hi in bands) for m, _, _ in tile)
    assert all(n % 128 == 0 and k % 128 == 0 and 1024 <= n <= 32768 and n * k <= 2 ** 28 for _, n, k in tile)
    assert all(16384 <= k <= 32768 and n * k <= 2 ** 28 for _, n, k in small)
    pre = [x for x in c["attention"] if x[0] == "prefill"]
    dec = [x for x in c["attention"] if x[0] == "decode"]
    assert len(pre) == 42 and all(200 <= L <= 500 and causal and 1 <= b <= 4 for _, b, _, _, _, L, _, causal in pre)
    assert {(h, kvh) for _, _, h, kvh, *_ in dec} == set(mb.FIT5_DECODE_LAYOUTS)
    assert all(2 * b * kvh * ctx * 128 * 2 <= 8e9 and 128 <= ctx <= 32768 for _, b, _, kvh, _, _, ctx, _ in dec)
    assert sum(ctx % 8 != 0 for *_, ctx, _ in dec) >= 40  # unaligned contexts present (unfused bmm)
    emb = [(cols, sz) for kind, cols, sz in c["elementwise"] if kind == "embedding"]
    soft = [(cols, sz) for kind, cols, sz in c["elementwise"] if kind == "softmax"]
    assert len(emb) == 32 and all(1 <= sz // 2 // cols <= 32 for cols, sz in emb)
    assert len(soft) == 32 and all(10000 <= cols <= 16384 and 2 ** 16 - 2 <= sz <= 2 ** 30 for cols, sz in soft)


def test_fit5_tail_table_is_the_committed_one():
    """The per-tail figures in docs/gpu-validation.md come from validation/fit5_tails.txt, which is
    the current model on the raw run-8 rows."""
    from pathlib import Path

    from tests.script_loader import load_script
    mod = load_script("validation/fit5_tails.py", "fit5_tails")
    groups = mod.rows()
    assert sum(len(v) for v in groups.values()) == 1240  # 1241 rows less the one fast-accum fp8 row
    assert mod.table(groups) == Path("validation/fit5_tails.txt").read_text()


def test_fit5_is_merged_as_a_fit_suite_row_for_row():
    """Session 7: run 8 merged into h200_runs.csv as suite fit5 (run h200_run8), every raw row once,
    unchanged, and fitted (split fit, except the fast-accumulation fp8 row)."""
    from tests.suite_checks import merged_row_for_row
    merged = merged_row_for_row(8, "fit5", 1241)
    from cosim.calibrate import dataset
    splits = [dataset.split_of(r) for r in merged]
    assert splits.count("fit") == 1240 and splits.count("other") == 1
