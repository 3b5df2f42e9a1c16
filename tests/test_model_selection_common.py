"""The selection rule every model-selection script shares (validation/model_selection/common.py):
per group the lowest validation p90, a candidate with fewer parameters within 2 points preferred."""
from validation.model_selection.common import HEADER, choose, score_candidates


def _run(cands):
    lines = []
    table = {label: (label, n, (0.0, 0.0), (med, p90)) for label, n, med, p90 in cands}
    chosen = score_candidates([1, 2, 3], [4], [({}, c[0]) for c in cands], lambda on, label: table[label], lines,
                              "h200 GEMM fit rows")
    return chosen, lines


def test_lowest_validation_p90_wins_when_no_smaller_candidate_is_within_two_points():
    chosen, lines = _run([("A", 6, 4.6, 13.8), ("B", 7, 4.0, 11.7)])
    assert chosen == "B"
    assert lines[:2] == ["h200 GEMM fit rows: 3 train, 1 validation", HEADER]
    assert lines[-2:] == ["chosen: B", ""]


def test_fewer_parameters_within_two_points_are_preferred():
    # C is best (13.3) but A is within 2 points with one parameter fewer (14.1 <= 15.3): A, as s9 chose
    chosen, _ = _run([("A", 29, 4.4, 14.1), ("C", 30, 3.8, 13.3)])
    assert chosen == "A"


def test_tie_in_parameters_takes_the_lower_p90():
    chosen, _ = _run([("A", 6, 4.6, 13.8), ("B", 6, 4.4, 13.4)])
    assert chosen == "B"


def test_score_group_takes_the_switches_from_the_candidates_terms_not_the_calibration(monkeypatch):
    """The committed H200 calibration has gemm.stream_k = 1 and gemm.fp8_no_stream_k = 1; a GEMM candidate whose
    terms turn them off is fitted and scored without them (review finding: they carried over)."""
    from cosim.calibrate import fit
    from validation.model_selection import common

    seen = {}
    monkeypatch.setattr(fit, "_fit_group", lambda names, tr, hw, values, *a: None)
    monkeypatch.setattr(common, "score_fitted", lambda values, *a: seen.setdefault("v", dict(values)))
    base, _, _ = common.start_values("h200")
    assert base["gemm.stream_k"] == 1.0 and base["gemm.fp8_no_stream_k"] == 1.0
    assert base["gemm.tile_set"] == 1.0
    off = {**fit.TERMS, "gemm_stream_k": False, "gemm_fp8_no_stream_k": False, "gemm_tile_set": 0}
    common.score_group("h200", None, [], [], "gemm", off, [], "A")
    assert not {"gemm.stream_k", "gemm.fp8_no_stream_k", "gemm.tile_set"} & set(seen["v"])
    seen.clear()
    common.score_group("h200", None, [], [], "gemm", dict(fit.TERMS), [], "B")
    assert seen["v"]["gemm.stream_k"] == 1.0 and seen["v"]["gemm.fp8_no_stream_k"] == 1.0
    assert seen["v"]["gemm.tile_set"] == 1.0


def _cand(label, n, err):
    import numpy as np
    err = np.asarray(err, float)
    return label, n, (0.0, 0.0), (float(np.median(err)), float(np.percentile(err, 90))), err


def test_round7_target_is_the_median_only_when_only_the_median_misses():
    from validation.model_selection.common import target_stat
    assert target_stat((5.1, 13.8)) == "median"  # FA2 prefill, s11 validation
    assert target_stat((4.4, 13.4)) == "p90" and target_stat((6.9, 15.5)) == "p90" and target_stat((4.9, 17.0)) == "p90"


def test_round7_an_unresolved_gain_at_equal_parameters_keeps_the_current_form():
    import numpy as np
    from validation.model_selection.common import choose_resolved
    rng = np.random.default_rng(0)
    a = rng.exponential(5.0, 400)
    b = a + rng.normal(0.0, 2.0, 400)  # the same rows, noise only: its p90 differs by chance
    assert np.percentile(np.abs(b), 90) < np.percentile(a, 90)  # lower by chance: rounds 1-6's rule would take B
    assert choose([_cand("A", 6, a)[:4], _cand("B", 6, np.abs(b))[:4]], []) == "B"
    lines = []
    assert choose_resolved([_cand("A", 6, a), _cand("B", 6, np.abs(b))], lines) == "A"
    assert "not resolved" in lines[0] and lines[-2] == "chosen (p90, resolved gains only): A"


def test_round7_a_resolved_median_gain_is_chosen_for_a_median_miss():
    import numpy as np
    from validation.model_selection.common import choose_resolved
    rng = np.random.default_rng(1)
    a = np.abs(rng.normal(6.0, 3.0, 400))          # median ~6 (misses), p90 ~10 (meets)
    c = a * 0.6                                      # every row better: median ~3.6
    lines = []
    assert choose_resolved([_cand("A", 6, a), _cand("C", 7, c)], lines) == "C"
    assert lines[0].startswith("  C: median -") and "resolved" in lines[0]
    # within the 1-point median margin, fewer parameters win: a resolved but small gain at one more parameter
    d = a - 0.5
    assert choose_resolved([_cand("A", 6, a), _cand("D", 7, np.abs(d))], []) == "A"


def test_score_candidates_takes_the_round7_rule():
    """score_candidates applies `rule` (round 7: choose_resolved, reading each candidate's validation errors); the
    default stays rounds 1-6's choose."""
    import numpy as np
    from validation.model_selection.common import choose_resolved
    a = np.abs(np.random.default_rng(1).normal(6.0, 3.0, 400))
    table = {"A": _cand("A", 6, a), "C": _cand("C", 7, a * 0.6)}
    lines = []
    assert score_candidates([1], [2], [({}, "A"), ({}, "C")], lambda on, label: table[label], lines, "t",
                            rule=choose_resolved) == "C"
    assert lines[:2] == ["t: 1 train, 1 validation", HEADER] and lines[-2].startswith("chosen (median, resolved")
    lines = []
    assert score_candidates([1], [2], [({}, "A"), ({}, "C")], lambda on, label: table[label][:4], lines, "t") == "C"
    assert lines[-2] == "chosen: C"
