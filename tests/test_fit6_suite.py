"""Fit suite 6 (issue 11, session 7, second round): more fit rows of the classes heldout5 missed,
drawn from seeds no held-out suite uses. Its case lists are pinned, no case is a case of any held-out
suite, and the draws follow the ranges microbench.py states."""

from cosim.calibrate import heldout4_shapes
from cosim.calibrate import microbench as mb
from cosim.calibrate.suite_digest import suite_cases, suite_digest
from tests.suite_checks import suite_shapes

FIT6_DIGEST = "755e718fc9d1053f8a52850471c520aa0a423ef23eff745dc34c46c2d63d0b5f"
HELDOUT_SUITES = ("heldout", "heldout2", "heldout3", "heldout4", "heldout5")


def test_fit6_case_lists_are_pinned():
    assert {k: len(v) for k, v in suite_cases("fit6").items()} == {"attention": 240, "elementwise": 180, "gemm": 184}
    assert suite_digest("fit6") == FIT6_DIGEST


def test_fit6_seed_is_no_held_out_seed_and_shares_no_held_out_shape():
    held_seeds = {heldout4_shapes.HELDOUT4_SEED, mb.HELDOUT5_SEED, mb.HELDOUT5_SEED + 1}
    assert not {mb.FIT6_SEED, mb.FIT6_SEED + 1} & held_seeds
    fit6 = suite_shapes("fit6")
    for v in HELDOUT_SUITES:
        assert not fit6 & suite_shapes(v), v


def test_fit6_draws_follow_the_stated_ranges():
    c = suite_cases("fit6")
    pre = [x for x in c["attention"][120:] if x[0] == "prefill"]
    dec = [x for x in c["attention"][120:] if x[0] == "decode"]
    assert len(pre) == 48 and all(L % 128 and 129 <= L <= 4000 and causal and b * L <= 24576
                                  for _, b, _, _, _, L, _, causal in pre)
    short, long_ = dec[:48], dec[48:]
    assert len(long_) == 24 and all(128 <= ctx <= 1024 and 1 <= b <= 128 for _, b, *_, ctx, _ in short)
    assert all(4096 <= ctx <= 32768 and 1 <= b <= 8 for _, b, *_, ctx, _ in long_)
    soft = [cols for kind, cols, _ in c["elementwise"][140:]]
    assert len(soft) == 40 and all(8192 <= w <= 32768 for w in soft)


def test_heldout5_digest_unchanged_by_the_shared_construction():
    assert suite_digest("heldout5") == "9342e6c466f574bad993134979293738e7225a879ad1969a5e8a952278fd4afd"


def test_fit6_is_merged_as_a_fit_suite_row_for_row():
    """Run 10 merged into h200_runs.csv as suite fit6 (run h200_run10), every raw row once,
    unchanged, and fitted (split fit, except the fast-accumulation fp8 row)."""
    from cosim.calibrate import dataset
    from tests.suite_checks import merged_row_for_row
    merged = merged_row_for_row(10, "fit6", 1493)
    splits = [dataset.split_of(r) for r in merged]
    assert splits.count("other") == sum("fast_accum" in r["impl"] for r in merged) and "test" not in "".join(splits)
