"""Held-out suite 10 (issue 11, session 9): its case lists are pinned in validation/heldout10_rules.md
before it is measured; it is heldout8's construction with a seed from a new base, and shares no case with
any earlier suite."""
from cosim.calibrate import dataset
from cosim.calibrate import microbench as mb
from cosim.calibrate.suite_digest import suite_cases, suite_digest
from tests.suite_checks import suite_shapes

HELDOUT10_DIGEST = "d9a386a98c23008c691aee396563a6ad698fd3a9e9b356a8b1d229be42679885"
EARLIER = ("default", "fit3", "fit4", "fit5", "fit6", "fit7", "fit8", "heldout", "heldout2", "heldout3", "heldout4",
           "heldout5", "heldout6", "heldout7", "heldout8", "heldout9")


def test_heldout10_case_lists_are_pinned_in_the_rules_file():
    assert {k: len(v) for k, v in suite_cases("heldout10").items()} == {"attention": 269, "elementwise": 206,
                                                                       "gemm": 184, "e2e": 2}
    assert suite_digest("heldout10") == HELDOUT10_DIGEST
    text = open("validation/heldout10_rules.md").read()
    assert HELDOUT10_DIGEST in text and str(mb.HELDOUT10_SEED) in text


def test_heldout10_is_heldout8s_construction_with_a_new_seed():
    suite, a, at, e, et, dec, pre = mb._heldout8_draw(mb.HELDOUT10_SEED)
    c = suite_cases("heldout10")
    assert c["gemm"] == suite["gemm_mnk"] and c["attention"] == a + at and c["elementwise"] == e + et
    assert c["e2e"] == [dec, pre]
    # its five generators (seed .. seed + 4) are no earlier suite's
    for s in (mb.HELDOUT9_SEED, mb.HELDOUT8_SEED, mb.FIT8_SEED):
        assert not set(range(mb.HELDOUT10_SEED, mb.HELDOUT10_SEED + 5)) & set(range(s, s + 5))


def test_heldout10_seed_is_the_first_of_its_base_sharing_no_shape():
    seen = set().union(*(suite_shapes(v) for v in EARLIER))

    def shapes(seed):
        suite, a, at, e, et, _, _ = mb._heldout8_draw(seed)
        ew = {(k, c, s) if k == "rope_fused" else (k, (s // 2) // c, c) for k, c, s in e + et}
        return {("gemm",) + tuple(x) for x in suite["gemm_mnk"]} | {tuple(x) for x in a + at} | ew
    assert not shapes(mb.HELDOUT10_SEED) & seen
    for s in range(20261205000, mb.HELDOUT10_SEED):
        assert shapes(s) & seen, s


def test_heldout10_shares_no_case_with_any_earlier_suite():
    h10 = suite_shapes("heldout10")
    for v in EARLIER:
        assert not h10 & suite_shapes(v), v


def test_heldout10_is_a_held_out_split():
    assert dataset.split_of({"suite": "heldout10", "impl": "F.linear"}) == "test10"


def test_heldout10_is_merged_row_for_row_and_never_fitted():
    """Run 17 merged into h200_ops.csv as suite heldout10 (run h200_run17), every raw row once, unchanged,
    split test10 (never fitted)."""
    from tests.suite_checks import merged_row_for_row
    merged = merged_row_for_row(17, "heldout10", 1647)
    assert {dataset.split_of(r) for r in merged} <= {"test10", "other"}


def test_heldout10_figures_as_scored():
    """Scored once after the session-9 freeze (e7842fc; docs/gpu-validation.md, validation/heldout_tables.txt):
    pinned so that any later change that moves them is seen. Met and missed as published; no row excluded."""
    from cosim.validate import ape, summarize, validate
    res = validate("h200", "validation/h200_ops.csv", split="test10", include_unreliable=True)
    a = {k: v["analytical"] for k, v in res.classes.items()}
    assert a["all"]["n"] == 1644
    assert (round(a["all"]["median"], 1), round(a["all"]["p90"], 1)) == (4.4, 14.3)
    met = {k for k, v in a.items() if v["n"] and v["median"] <= 5.0 and v["p90"] <= 15.0}
    assert met == {"gemm_bf16", "attention_prefill", "attention_decode", "attention_prefill_cudnn",
                   "attention_decode_cudnn", "attention_decode_fa2", "all"}
    pins = {"gemm_bf16": (4.9, 12.7), "gemm_fp8": (6.9, 15.5), "attention_prefill": (2.1, 6.2),
            "attention_decode": (3.7, 12.4), "attention_prefill_cudnn": (2.1, 5.9), "attention_decode_cudnn": (3.1, 11.5),
            "attention_prefill_fa2": (6.2, 14.6), "attention_decode_fa2": (3.3, 8.6),
            "attention_prefill_unfused": (9.1, 17.0), "attention_decode_unfused": (7.3, 17.0), "elementwise": (4.4, 17.4)}
    for cls, want in pins.items():
        assert (round(a[cls]["median"], 1), round(a[cls]["p90"], 1)) == want, cls
    excl = validate("h200", "validation/h200_ops.csv", split="test10")
    assert excl.classes["all"]["analytical"]["n"] == 1644  # no row meets the spread rule
    for fusion, want in (("eager", 2.6), ("engine", 1.0), ("engine_fused", 1.7)):
        g = [r for r in res.e2e if r["mode"] == "graph" and r["fusion"] == fusion]
        s = summarize(ape([r["analytical_s"] for r in g], [r["measured_s"] for r in g]))
        assert s["n"] == 20 and round(s["median"], 1) == want and s["median"] <= 4.0, (fusion, s)
