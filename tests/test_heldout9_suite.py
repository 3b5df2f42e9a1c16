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
    """Run 16 merged into h200_runs.csv as suite heldout9 (run h200_run16), every raw row once, unchanged,
    split test9 (never fitted)."""
    from tests.suite_checks import merged_row_for_row
    merged = merged_row_for_row(16, "heldout9", 1649)
    assert {dataset.split_of(r) for r in merged} <= {"test9", "other"}


def test_heldout9_figures_as_scored():
    """Scored once after the session-8 third-round freeze (a6bf9e1; docs/gpu-validation.md,
    validation/heldout_tables.txt): pinned so that any later change that moves them is seen. Met and
    missed as published."""
    from cosim.validate import ape, summarize, validate
    res = validate("h200", "validation/h200_runs.csv", split="test9", include_unreliable=True)
    a = {k: v["analytical"] for k, v in res.classes.items()}
    assert a["all"]["n"] == 1645
    assert (round(a["all"]["median"], 1), round(a["all"]["p90"], 1)) == (4.8, 15.4)
    met = {k for k, v in a.items() if v["n"] and v["median"] <= 5.0 and v["p90"] <= 15.0}
    assert met == {"attention_prefill", "attention_prefill_cudnn", "attention_decode_fa2"}
    pins = {"gemm_bf16": (5.6, 15.7), "gemm_fp8": (6.3, 17.9), "attention_decode": (4.9, 15.8),
            "attention_decode_cudnn": (5.5, 16.3), "attention_prefill_fa2": (6.2, 13.2),
            "attention_prefill_unfused": (8.9, 18.6), "attention_decode_unfused": (6.9, 16.9),
            "elementwise": (4.3, 19.3)}
    for cls, want in pins.items():
        assert (round(a[cls]["median"], 1), round(a[cls]["p90"], 1)) == want, cls
    for fusion, want in (("eager", 2.8), ("engine", 1.5), ("engine_fused", 2.8)):
        g = [r for r in res.e2e if r["mode"] == "graph" and r["fusion"] == fusion]
        s = summarize(ape([r["analytical_s"] for r in g], [r["measured_s"] for r in g]))
        assert s["n"] == 20 and round(s["median"], 1) == want and s["median"] <= 4.0, (fusion, s)
