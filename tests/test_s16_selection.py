"""Session-16 selection (issue 11 round 9; validation/model_selection/s16_candidates.txt, rule RULE_round7.md): the
register block softmax and cuBLASLt's fp8 split-K rule (facts of validation/logs/kdp_h100) resolved no gain on the
H200 validation split, so the rule kept the current form in both groups; the candidates' code left the model and the
record is frozen at the commit that has it."""
import runpy

import pytest

from tests.test_s13_selection import SEL, _groups, assert_rejected_left_the_model

REJECTED_KEYS = ("ew.softmax_reg.mult", "gemm.fp8_splitk_rule")
REJECTED_SWITCHES = ("softmax_reg", "gemm_fp8_splitk_rule")


def test_no_gain_resolved_so_the_current_form_stays():
    """Eligibility by hand from the recorded intervals (resolved only when the upper end is below 0); the recorded
    point difference is the validation table's p90 difference (to its rounding). H200 groups first, then the H100's
    second opinion."""
    groups = _groups("s16_candidates.txt")
    assert [g[0] for g in groups] == ["h200 elementwise fit rows (46 train softmax rows of 2,049-9,216 elements)",
                                      "h200 GEMM fit rows",
                                      "h100_sxm elementwise fit rows (46 train softmax rows of 2,049-9,216 elements)",
                                      "h100_sxm GEMM fit rows"]
    for title, table, gains, chosen in groups:
        current = next(iter(table))
        assert chosen == current == "A current form (session-12)", title
        assert len(gains) == 1, title
        label, stat, diff, vs, lo, hi, verdict = gains[0]
        assert stat == "p90" and vs == current and float(hi) >= 0 and verdict != "resolved"
        assert float(lo) <= float(diff) <= float(hi)
        assert abs((table[label][1] - table[current][1]) - float(diff)) <= 0.1 + 1e-9


def test_recorded_numbers_by_hand():
    """H200 elementwise p90 14.1 -> 13.7, GEMM 13.2 -> 13.0 (validation rows)."""
    g = {x[0].split(" (")[0]: x[1] for x in _groups("s16_candidates.txt")}
    assert g["h200 elementwise fit rows"]["A current form (session-12)"] == (4.4, 14.1)
    assert g["h200 elementwise fit rows"]["B + register softmax: one pass, own multiplier"] == (4.3, 13.7)
    assert g["h200 GEMM fit rows"]["D + fp8 split-K only at m <= 128, k > 2048"] == (4.3, 13.0)


def test_frozen_record_names_its_commit():
    with pytest.raises(SystemExit) as e:
        runpy.run_path(str(SEL / "s16_candidates.py"), run_name="__main__")
    assert "frozen record of commit ade8184" in str(e.value) and "s16_candidates.txt" in str(e.value)


def test_rejected_candidates_left_the_model():
    assert_rejected_left_the_model(REJECTED_KEYS, REJECTED_SWITCHES, ("fp8_no_split",))
