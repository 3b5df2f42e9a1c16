"""The selection rule every model-selection script shares (validation/model_selection/common.py):
per group the lowest validation p90, a candidate with fewer parameters within 2 points preferred."""
from validation.model_selection.common import HEADER, score_candidates


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
