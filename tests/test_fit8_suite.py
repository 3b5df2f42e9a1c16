"""Fit suite 8 (issue 11, session 8 second round): more fit rows of the classes heldout7 missed
(split-K fp8 GEMMs, short causal prefills, cuDNN decode over GQA groups 2 and 4 at short contexts,
unfused attention, elementwise of the kinds it missed), drawn from seeds no held-out suite uses. Its
case lists are pinned, no case is a case of any earlier suite, and the draws follow the ranges
microbench.py states."""
import math

from cosim.calibrate import heldout4_shapes
from cosim.calibrate import microbench as mb
from cosim.calibrate.suite_digest import suite_cases, suite_digest
from tests.suite_checks import suite_shapes

FIT8_DIGEST = "8f82aa7f96c732bc97460f9b16de0d99af0b386b0adca7dc8347443de071dffb"
EARLIER = ("default", "fit3", "fit4", "fit5", "fit6", "fit7", "heldout", "heldout2", "heldout3", "heldout4",
           "heldout5", "heldout6", "heldout7")


def test_fit8_case_lists_are_pinned():
    assert {k: len(v) for k, v in suite_cases("fit8").items()} == {"attention": 276, "elementwise": 240, "gemm": 216}
    assert suite_digest("fit8") == FIT8_DIGEST


def test_fit8_seeds_are_no_held_out_seed_and_it_shares_no_shape_with_any_earlier_suite():
    held = {heldout4_shapes.HELDOUT4_SEED, mb.HELDOUT5_SEED, mb.HELDOUT5_SEED + 1}
    held |= {s + i for s in (mb.HELDOUT6_SEED, mb.HELDOUT7_SEED) for i in range(4)}
    assert not {mb.FIT8_SEED, mb.FIT8_SEED + 1} & held
    fit8 = suite_shapes("fit8")
    for v in EARLIER:
        assert not fit8 & suite_shapes(v), v


def test_fit8_tails_follow_the_stated_ranges():
    c = suite_cases("fit8")
    pre = [x for x in c["attention"][120:] if x[0] == "prefill"]
    dec = [x for x in c["attention"][120:] if x[0] == "decode"]
    assert len(pre) == 60 and len(dec) == 96
    # one or two waves of FA2 CTAs (128-row query blocks over 132 SMs), every fourth length a multiple of 64
    assert all(129 <= L <= 1024 and causal and b * h * math.ceil(L / 128) <= 264 for _, b, h, _, _, L, _, causal in pre)
    assert all(L % 64 == 0 for _, _, _, _, _, L, _, _ in pre[3::4])
    assert all(h // kvh in (2, 4, 8) and 8 <= h <= 64 for _, _, h, kvh, *_ in dec)
    assert all(128 <= ctx <= 2048 and 1 <= b <= 128 for _, b, *_, ctx, _ in dec[:72])
    assert all(2048 <= ctx <= 32768 and 1 <= b <= 32 for _, b, *_, ctx, _ in dec[72:])
    tails = mb._fit8_gemm(__import__("random").Random(mb.FIT8_SEED + 1))
    assert set(tails) <= set(c["gemm"]) and len(tails) == 96
    assert all(40 <= m <= 320 and 4096 <= k <= 28672 for m, _, k in tails[:60])
    assert all(480 <= m <= 1150 and k >= 10240 for m, _, k in tails[60:])
    assert {kind for kind, *_ in c["elementwise"][140:]} <= set(mb.FIT8_EW_KINDS)


def test_fit8_is_merged_as_a_fit_suite_row_for_row():
    """Run 14 merged into h200_runs.csv as suite fit8 (run h200_run14), every raw row once, unchanged,
    and fitted (split fit, except the fast-accumulation fp8 rows)."""
    from cosim.calibrate import dataset
    from tests.suite_checks import merged_row_for_row
    merged = merged_row_for_row(14, "fit8", 1773)
    splits = [dataset.split_of(r) for r in merged]
    assert splits.count("other") == sum("fast_accum" in r["impl"] for r in merged) and "test" not in "".join(splits)
