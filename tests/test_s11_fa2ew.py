"""Session-11 FA2 prefill and elementwise selection (issue 11 round 6;
validation/model_selection/s11_fa2ew_candidates.txt): the rule kept the session-10 form in every group, the
rejected candidates left the model, the record reproduces at the commit that has their code, and the shared
scoring helper fits FA2's prefill terms as the calibration fit does."""
import re
import runpy

import pytest

from cosim.calibrate import fit
from hwmodels import gpu_params
from validation.model_selection import common

RECORD = "validation/model_selection/s11_fa2ew_candidates.txt"


def _table(title):
    """(label, params, train (med, p90), validation (med, p90)) rows of one group of the record."""
    lines = open(RECORD).read().splitlines()
    i = next(k for k, line in enumerate(lines) if line.startswith(title))
    rows = []
    for line in lines[i + 2:]:
        if line.startswith("chosen: "):
            return rows, line[len("chosen: "):]
        label, n, tr, va = (x.strip() for x in line.split("|"))
        num = [float(x) for x in re.findall(r"\d+\.\d", tr + " " + va)]
        rows.append((label, int(n), tuple(num[:2]), tuple(num[2:])))
    raise AssertionError(f"{title}: no chosen line")


@pytest.mark.parametrize("title, chosen", [("h200 FA2 prefill", "A session-10 form"),
                                           ("h200 elementwise", "A session-10 form"),
                                           ("h100_sxm FA2 prefill", "A session-10 form")])
def test_the_rule_on_the_recorded_scores_keeps_the_session_10_form(title, chosen):
    rows, recorded = _table(title)
    assert recorded == chosen and common.choose(rows, []) == chosen


def test_h200_prefill_record_by_hand():
    """D has the lowest validation p90 (13.0); A's 13.8 is within 2 points (<= 15.0) with 6 parameters, not 7."""
    rows, _ = _table("h200 FA2 prefill")
    by = {r[0][0]: r for r in rows}
    assert min(rows, key=lambda r: r[3][1])[0].startswith("D")
    assert by["A"][1:] == (6, (6.2, 14.8), (5.1, 13.8)) and by["D"][1:] == (7, (5.9, 14.8), (4.7, 13.0))
    assert by["A"][3][1] <= by["D"][3][1] + 2.0


def test_frozen_record_names_its_commit():
    with pytest.raises(SystemExit) as e:
        runpy.run_path("validation/model_selection/s11_fa2ew_candidates.py", run_name="__main__")
    assert "frozen record of commit dfdd120" in str(e.value) and "s11_fa2ew_candidates.txt" in str(e.value)


def test_rejected_candidates_left_the_model():
    for key in ("attn.ragged_step", "attn.wave_fill", "ew.softmax.reg_kernel"):
        assert key not in gpu_params.OPTIONAL_PARAMS and key not in gpu_params.SWITCH_PARAMS
    assert not {"ragged_step", "wave_fill"} & set(gpu_params.ATTN_OPTIONAL_KEYS)
    for terms in fit.TERM_SETS.values():
        assert not {"ragged_step", "wave_fill", "softmax_reg_kernel"} & set(terms)
    # round 6 did not give FA2 the head-dim-independent softmax cost (cuDNN only on the H200, nobody on the H100);
    # round 7 did, on the H200 only (tests/test_s12_fa2.py): the session-11 form is S12_FA2_OFF
    assert fit.S12_FA2_OFF["prefill_soft"] == ("cudnn",) and fit.TERMS_BY_HW["h100_sxm"]["prefill_soft"] == ()


@pytest.mark.parametrize("hw_name, extra", [("h200", ["attn.soft_c", "attn.ragged", "attn.ragged_wave"]),
                                            ("h100_sxm", [])])
def test_score_group_fits_fa2_prefill_terms_as_the_calibration_does(monkeypatch, hw_name, extra):
    """common.score_group on the prefill group fits fit.GROUPS' four parameters plus the GPU set's FA2 prefill
    terms (the H200's softmax cost since session 12, its uneven-length fixed time and single-wave part; none on the
    H100), each dropped key restarting from fit._prefill_optional's start (3 us, 8 us)."""
    seen = {}

    def fake_fit(names, rows, hw, values, sms, l2, default="fa2"):
        seen["names"], seen["values"] = list(names), dict(values)

    monkeypatch.setattr(fit, "_fit_group", fake_fit)
    monkeypatch.setattr(common, "score_fitted", lambda *a: None)
    common.score_group(hw_name, None, [], [], "attention_prefill", fit.TERM_SETS[hw_name], [], "A",
                       drop=("attn.ragged", "attn.ragged_wave"))
    assert seen["names"] == fit.GROUPS["attention_prefill"] + extra
    if extra:
        assert seen["values"]["attn.ragged"] == 3e-6 and seen["values"]["attn.ragged_wave"] == 8e-6
    assert all(seen["values"][k] == fit.INITIAL[k] for k in fit.GROUPS["attention_prefill"])
