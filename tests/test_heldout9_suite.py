"""Held-out suite 9 (issue 11, session 8 third round): its case lists are pinned in
validation/heldout9_rules.md before it is measured; it is heldout8's construction with a new seed, and
shares no case with any earlier suite."""
from cosim.calibrate import dataset
from cosim.calibrate import microbench as mb
from cosim.calibrate.suite_digest import suite_cases, suite_digest
from tests.suite_checks import suite_shapes

HELDOUT9_DIGEST = "7cea4503fd4f3c10d7c11bc77847b22b16a0e6ec1b9cab7ecd38390db76f5799"
EARLIER = ("default", "fit3", "fit4", "fit5", "fit6", "fit7", "fit8", "heldout", "heldout2", "heldout3", "heldout4",
           "heldout5", "heldout6", "heldout7", "heldout8")


def test_heldout9_case_lists_are_pinned_in_the_rules_file():
    assert {k: len(v) for k, v in suite_cases("heldout9").items()} == {"attention": 270, "elementwise": 206,
                                                                      "gemm": 184, "e2e": 2}
    assert suite_digest("heldout9") == HELDOUT9_DIGEST
    text = open("validation/heldout9_rules.md").read()
    assert HELDOUT9_DIGEST in text and str(mb.HELDOUT9_SEED) in text


def test_heldout9_is_heldout8s_construction_with_a_new_seed():
    suite, a, at, e, et, dec, pre = mb._heldout8_draw(mb.HELDOUT9_SEED)
    c = suite_cases("heldout9")
    assert c["gemm"] == suite["gemm_mnk"] and c["attention"] == a + at and c["elementwise"] == e + et
    assert c["e2e"] == [dec, pre]
    # its five generators (seed .. seed + 4) are no earlier suite's
    assert not set(range(mb.HELDOUT9_SEED, mb.HELDOUT9_SEED + 5)) & set(range(mb.HELDOUT8_SEED, mb.HELDOUT8_SEED + 5))
    assert mb.HELDOUT9_SEED - mb.HELDOUT8_SEED > 4 and mb.HELDOUT9_SEED - mb.FIT8_SEED > 4


def test_heldout9_shares_no_case_with_any_earlier_suite():
    h9 = suite_shapes("heldout9")
    for v in EARLIER:
        assert not h9 & suite_shapes(v), v


def test_heldout9_is_a_held_out_split():
    assert dataset.split_of({"suite": "heldout9", "impl": "F.linear"}) == "test9"


def test_heldout9_is_merged_row_for_row_and_never_fitted():
    """Run 16 merged into h200_ops.csv as suite heldout9 (run h200_run16), every raw row once, unchanged,
    split test9 (never fitted)."""
    from tests.suite_checks import merged_row_for_row
    merged = merged_row_for_row(16, "heldout9", 1649)
    assert {dataset.split_of(r) for r in merged} <= {"test9", "other"}
