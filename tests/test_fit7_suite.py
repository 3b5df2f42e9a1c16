"""Fit suite 7 (issue 11, session 8): more fit rows of the classes heldout6 missed (decode tails
on cuDNN/default at short contexts and MQA/GQA groups, bf16 GEMMs, unfused attention, FA2 decode and
elementwise for transfer), drawn from seeds no held-out suite uses. Its case lists are pinned, no
case is a case of any earlier suite, and the draws follow the ranges microbench.py states."""

from cosim.calibrate import heldout4_shapes
from cosim.calibrate import microbench as mb
from cosim.calibrate.suite_digest import suite_cases, suite_digest
from tests.suite_checks import suite_shapes

FIT7_DIGEST = "ca1ee20007a51c849f36c0819058b0d8f50c0c9ddd048d7e251426c9e63dfc61"
EARLIER = ("default", "fit3", "fit4", "fit5", "fit6", "heldout", "heldout2", "heldout3", "heldout4", "heldout5",
           "heldout6")


def test_fit7_case_lists_are_pinned():
    assert {k: len(v) for k, v in suite_cases("fit7").items()} == {"attention": 288, "elementwise": 200, "gemm": 240}
    assert suite_digest("fit7") == FIT7_DIGEST


def test_fit7_seeds_are_no_held_out_seed_and_it_shares_no_shape_with_any_earlier_suite():
    held = {heldout4_shapes.HELDOUT4_SEED, mb.HELDOUT5_SEED, mb.HELDOUT5_SEED + 1, mb.HELDOUT6_SEED,
            mb.HELDOUT6_SEED + 1, mb.HELDOUT6_SEED + 2}
    assert not {mb.FIT7_SEED, mb.FIT7_SEED + 1, mb.FIT7_SEED + 2} & held
    fit7 = suite_shapes("fit7")
    for v in EARLIER:
        assert not fit7 & suite_shapes(v), v


def test_fit7_decode_grid_follows_the_stated_ranges():
    dec = [x for x in suite_cases("fit7")["attention"][144:] if x[0] == "decode"]
    short, long_ = dec[:96], dec[96:]
    assert len(long_) == 48
    assert all(128 <= ctx <= 2048 and 1 <= b <= 128 for _, b, *_, ctx, _ in short)
    assert all(2048 <= ctx <= 32768 and 1 <= b <= 32 for _, b, *_, ctx, _ in long_)
    assert all(kvh in mb.FIT7_DECODE_KVH and 8 <= h <= 64 and h % kvh == 0 for _, _, h, kvh, *_ in dec)
    mqa = [x for x in dec if x[3] == 1]
    assert len(mqa) >= 40  # MQA is weighted (3 of 7 KV-head choices)


def test_fit7_is_merged_as_a_fit_suite_row_for_row():
    """Run 12 merged into h200_runs.csv as suite fit7 (run h200_run12), every raw row once, unchanged,
    and fitted (split fit, except the fast-accumulation fp8 rows)."""
    from cosim.calibrate import dataset
    from tests.suite_checks import merged_row_for_row
    merged = merged_row_for_row(12, "fit7", 1822)
    splits = [dataset.split_of(r) for r in merged]
    assert splits.count("other") == sum("fast_accum" in r["impl"] for r in merged) and "test" not in "".join(splits)
